"""The attractor census as a figure: exponent per start, and the orbits, target against network.

Built without pyplot, like every figure of `_plotting` (target blue, network orange).
"""

import numpy as np
from matplotlib.figure import Figure

from ..fidelity import CLASSES, Census
from ._plotting import NETWORK_COLOUR, TARGET_COLOUR, coordinate_names

_MARKERS = {"fixed point": "x", "periodic": "s", "chaotic": "o"}


def plot_census(census: Census, *, system: str = "", title: str = "") -> Figure:
    """Left: largest Lyapunov exponent per start, target and network, marked by class.

    Right: the saved states of every deterministic orbit on the first two coordinates, so a
    spurious attractor shows where it sits. Starts are ordered by the target's exponent.
    """
    fig = Figure(figsize=(11, 4.2))
    ax, ax_orbits = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    order = np.argsort(np.asarray(census.target.exponent))
    x = np.arange(order.size)
    for orbits, colour, who in ((census.target, TARGET_COLOUR, "target"),
                                (census.network, NETWORK_COLOUR, "network")):  # fmt: skip
        lam = np.asarray(orbits.exponent)[order]
        classes = np.asarray(orbits.classes)[order]
        for c, name in enumerate(CLASSES):
            pick = classes == c
            if pick.any():
                ax.scatter(x[pick], lam[pick], color=colour, marker=_MARKERS[name], s=28,
                           label=f"{who}: {name} ({pick.sum()})")  # fmt: skip
    ax.axhline(0.0, color="0.6", lw=0.8)
    m = census.metrics
    ax.set_xlabel("start (ordered by the target's exponent)")
    ax.set_ylabel("largest Lyapunov exponent (1 / time unit)")
    ax.set_title(
        f"{100 * m['census_mismatch']:.0f}% of starts in another class; "
        f"orbit SW {100 * m['census_sw']:.1f}% of spread (null {100 * m['census_sw_null']:.1f}%)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="best")
    k = census.starts.shape[1]
    names = coordinate_names(system, k)
    j = 1 if k > 1 else 0
    for orbits, colour in ((census.target, TARGET_COLOUR), (census.network, NETWORK_COLOUR)):
        pts = np.asarray(orbits.points).reshape(-1, k)
        ax_orbits.plot(pts[:, 0], pts[:, j], ",", color=colour, alpha=0.5)
    ax_orbits.set_xlabel(names[0])
    ax_orbits.set_ylabel(names[j])
    ax_orbits.set_title("deterministic orbits after the transient", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
