"""Figures of the memory experiments (matplotlib only here; the experiments are in `_memory`).

Each function takes the plain results (`Curve`, `CyclingResult`, or their JSON dicts from
`memory_experiments`) and returns a `matplotlib.figure.Figure` built without pyplot, like
`_plotting`; `save_figure` writes it.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..analysis import quantile95

COLOURS = {"target": "black", "network": "tab:orange"}


def _get(result, name):
    return np.asarray(result[name] if isinstance(result, Mapping) else getattr(result, name))


def plot_curves(curves: Mapping, *, xlabel: str, ylabel: str, title: str = "", chance=None):
    """Success probability with 95% intervals against a protocol parameter, one line a side.

    Args:
        curves: ``{"target": Curve, "network": Curve}`` (either may be missing).
        xlabel: the parameter's name.
        ylabel: what succeeds.
        title: figure title.
        chance: draw a dashed line at this probability (e.g. 1/K).
    """
    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.subplots()
    for offset, (side, curve) in zip((-0.01, 0.01), curves.items(), strict=False):
        x, p = _get(curve, "x"), _get(curve, "probability")
        err = np.stack([p - _get(curve, "low"), _get(curve, "high") - p])
        ax.errorbar(x + offset * np.ptp(x), p, yerr=err, fmt="o-", capsize=3, label=side,
                    color=COLOURS.get(side))  # fmt: skip
    if chance is not None:
        ax.axhline(chance, color="grey", lw=0.8, ls="--", label="chance")
    ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8)
    return fig


def plot_cycling(rows: Sequence[Mapping], *, title: str = ""):
    """CyclingResult against alpha: preferred-direction fraction, hop rate, first passage, EPR.

    Args:
        rows: dicts with ``alpha`` and ``target`` / ``network`` `CyclingResult` results (as dicts).
        title: figure title.
    """
    fig = Figure(figsize=(14, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    alphas = np.array([r["alpha"] for r in rows])
    for side in ("target", "network"):
        sel = [r[side] for r in rows if r.get(side) is not None]
        if not sel:
            continue
        a = alphas[[r.get(side) is not None for r in rows]]
        style = dict(color=COLOURS[side], label=side, capsize=3, fmt="o-")
        frac = np.array([_get(c, "fraction") for c in sel])
        err = np.stack([frac - [_get(c, "fraction_low") for c in sel],
                        np.array([_get(c, "fraction_high") for c in sel]) - frac])  # fmt: skip
        axes[0].errorbar(a, frac, yerr=err, **style)
        rate = [_get(c, "hop_rate") for c in sel]
        # standard errors over hundreds of trajectories: the normal quantile (`quantile95`)
        axes[1].errorbar(a, rate, yerr=[_get(c, "hop_rate_se") * quantile95() for c in sel],
                         **style)  # fmt: skip
        axes[2].plot(a, [_get(c, "mfpt") for c in sel], "o-", color=COLOURS[side], label=side)
        epr = [_get(c, "epr") for c in sel]
        axes[3].errorbar(a, epr, yerr=[_get(c, "epr_se") * quantile95() for c in sel], **style)
    exact = [(r["alpha"], r["target"]["epr_exact"]) for r in rows
             if r.get("target") and r["target"].get("epr_exact") is not None]  # fmt: skip
    if exact:
        axes[3].plot(*zip(*exact, strict=True), "s", mfc="none", color="tab:blue",
                     label="exact (quadrature)")  # fmt: skip
    labels = ("preferred-direction fraction", "hops per unit time", "mean first passage",
              "entropy production rate")  # fmt: skip
    for ax, label in zip(axes, labels, strict=True):
        ax.set(xlabel="alpha", ylabel=label)
        ax.legend(fontsize=8)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    fig.suptitle(title)
    return fig


def plot_occupancy(cycling, *, title: str = ""):
    """Share of time per well beside the mass of ``exp(-U/T)`` in each well's sector.

    The ``exp(-U/T)`` bars are left out for a target without a potential.

    Args:
        cycling: one `CyclingResult` result, or ``{"target": ..., "network": ...}``.
        title: figure title.
    """
    sides = cycling if isinstance(cycling, Mapping) and "target" in cycling else {"": cycling}
    first = next(iter(sides.values()))
    boltzmann = _get(first, "boltzmann")
    wells = np.arange(len(_get(first, "occupancy")))
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / (len(sides) + 1)
    if boltzmann is not None:
        ax.bar(wells, boltzmann, width, label="exp(-U/T)", color="lightgrey")
    for i, (side, c) in enumerate(sides.items(), start=1):
        ax.bar(wells + i * width, _get(c, "occupancy"), width, label=side or "occupancy",
               color=COLOURS.get(side))  # fmt: skip
    ax.set(xlabel="well", ylabel="share of time", title=title, xticks=wells)
    ax.legend(fontsize=8)
    return fig
