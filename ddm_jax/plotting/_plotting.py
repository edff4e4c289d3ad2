"""Figures of a trained network against its target.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so importing
ddm_jax never changes anyone's matplotlib backend or global state; `save_figure` renders it
with Agg to a PNG, atomically. Targets are dimensionless, so axes are in "target units"
(the coordinates of the target SDE) and "time units". The target is drawn in blue, the
network (latent read-out of the full n-neuron simulation) in orange.
"""

import io
import os

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..io import atomic_write_bytes
from ..network import LowRankRNN
from ..targets import Target

TARGET_COLOUR = "tab:blue"
NETWORK_COLOUR = "tab:orange"
_COORDINATES = {"vdp": ("x", "y"), "lorenz": ("x", "y", "w"), "dadras": ("x", "y", "w")}
Arrayish = np.ndarray | Array


def coordinate_names(system: str, k: int) -> tuple[str, ...]:
    """Names of the latent coordinates: the paper's for its systems, else z1..zk."""
    names = _COORDINATES.get(system)
    return names if names is not None and len(names) == k else tuple(f"z{i + 1}" for i in range(k))


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Render ``fig`` with Agg and write it as a PNG, atomically."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())


def _limits(*arrays) -> list[tuple[float, float]]:
    stacked = np.concatenate([np.asarray(a).reshape(-1, a.shape[-1]) for a in arrays])
    low, high = np.nanmin(stacked, 0), np.nanmax(stacked, 0)
    pad = 0.05 * np.maximum(high - low, 1e-12)
    return [(float(a), float(b)) for a, b in zip(low - pad, high + pad, strict=True)]


def plot_trajectories(
    target_zs: Float[Arrayish, "batch time k"],
    network_zs: Float[Arrayish, "batch time k"],
    *,
    ts: Float[Arrayish, " time"] | None = None,
    system: str = "",
    title: str | None = None,
) -> Figure:
    """Latent trajectories of the target (left) and of the network (right), same axes.

    A 3-D view for k >= 3 (the first three coordinates), the phase plane for k = 2, the
    state against time for k = 1. Trajectory i has the same colour in both panels.
    """
    target_zs, network_zs = np.asarray(target_zs), np.asarray(network_zs)
    k = target_zs.shape[-1]
    names = coordinate_names(system, k)
    lims = _limits(target_zs, network_zs)
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    colours = [f"C{i % 10}" for i in range(target_zs.shape[0])]
    panels = (("target SDE", target_zs), ("network (latent read-out)", network_zs))
    for col, (label, zs) in enumerate(panels):
        if k >= 3:
            ax = fig.add_subplot(1, 2, col + 1, projection="3d")
            for z, c in zip(zs, colours, strict=True):
                ax.plot(z[:, 0], z[:, 1], z[:, 2], lw=0.5, color=c)
            ax.set_zlim(*lims[2])
            ax.set_zlabel(f"{names[2]} (target units)")
        else:
            ax = fig.add_subplot(1, 2, col + 1)
            t = np.arange(zs.shape[1]) if ts is None else np.asarray(ts)
            for z, c in zip(zs, colours, strict=True):
                if k == 2:
                    ax.plot(z[:, 0], z[:, 1], lw=0.6, color=c)
                    ax.plot(z[0, 0], z[0, 1], "o", ms=4, color=c)
                else:
                    ax.plot(t, z[:, 0], lw=0.6, color=c)
        if k >= 2:
            ax.set_xlim(*lims[0])
            ax.set_ylim(*lims[1])
            ax.set_xlabel(f"{names[0]} (target units)")
            ax.set_ylabel(f"{names[1]} (target units)")
        else:
            ax.set_ylim(*lims[0])
            ax.set_xlabel("t (time units)" if ts is not None else "saved state")
            ax.set_ylabel(f"{names[0]} (target units)")
        ax.set_title(label)
    if title:
        fig.suptitle(title)
    return fig


def plot_neurons(
    ts: Float[Arrayish, " time"],
    xs: Float[Arrayish, "time neurons"],
    *,
    ids: list[int] | None = None,
    title: str | None = None,
) -> Figure:
    """States ``x_i(t)`` (pre-activation) of a few neurons along one simulated trajectory."""
    ts, xs = np.asarray(ts), np.asarray(xs)
    ids = list(range(xs.shape[1])) if ids is None else ids
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for i, x in zip(ids, xs.T, strict=True):
        ax.plot(ts, x, lw=0.8, label=f"neuron {i}")
    ax.set_xlabel("t (time units)")
    ax.set_ylabel("neuron state x_i (a.u.)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(title or "neuron traces")
    return fig


def plot_drift_field(
    target: Target,
    model: LowRankRNN,
    *,
    at: Float[Arrayish, " k"] | None = None,
    plane: tuple[int, int] = (0, 1),
    resolution: int = 25,
    samples: Float[Arrayish, "num k"] | None = None,
    system: str | None = None,
) -> Figure:
    """Drift of the target and of the network on a 2-D slice of the box, and their error.

    The slice varies coordinates ``plane`` over the target's box with the others fixed at
    ``at`` (default: the box centre). Streamlines are coloured by speed ``|f|`` (target
    units per time unit); the right panel is ``|f_net - f|`` relative to the RMS of ``|f|``
    over the slice, in percent, with stationary ``samples`` (projected) drawn over it.
    For k = 1 both drifts are drawn as curves.
    """
    k = target.dim
    names = coordinate_names(system or target.name, k)
    low, high = np.asarray(target.box_low), np.asarray(target.box_high)
    at = np.asarray(target.centre if at is None else at, dtype=float)
    dtype = jnp.result_type(float)
    f_target = jax.jit(jax.vmap(target.f))
    f_net = jax.jit(jax.vmap(model.target_drift))
    if k == 1:
        z = np.linspace(low[0], high[0], 200)[:, None]
        ft = np.asarray(f_target(jnp.asarray(z, dtype)))[:, 0]
        fn = np.asarray(f_net(jnp.asarray(z, dtype)))[:, 0]
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(z[:, 0], ft, color=TARGET_COLOUR, label="target f(z)")
        ax.plot(z[:, 0], fn, "--", color=NETWORK_COLOUR, label="network")
        ax.set_xlabel(f"{names[0]} (target units)")
        ax.set_ylabel("drift (target units / time unit)")
        ax.legend()
        return fig
    i, j = plane
    gx = np.linspace(low[i], high[i], resolution)
    gy = np.linspace(low[j], high[j], resolution)
    X, Y = np.meshgrid(gx, gy)
    Z = np.tile(at, (X.size, 1))
    Z[:, i], Z[:, j] = X.ravel(), Y.ravel()
    Zj = jnp.asarray(Z, dtype)
    ft, fn = np.asarray(f_target(Zj), dtype=float), np.asarray(f_net(Zj), dtype=float)
    speed_t = np.linalg.norm(ft, axis=-1).reshape(X.shape)
    speed_n = np.linalg.norm(fn, axis=-1).reshape(X.shape)
    rms = np.sqrt(np.mean(speed_t**2))
    err = 100 * np.linalg.norm(fn - ft, axis=-1).reshape(X.shape) / rms
    norm = Normalize(0, max(speed_t.max(), speed_n.max()))
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, f, speed, label in (
        (axes[0], ft, speed_t, "target drift"),
        (axes[1], fn, speed_n, f"network drift ({model.n} neurons)"),
    ):
        stream = ax.streamplot(
            gx, gy, f[:, i].reshape(X.shape), f[:, j].reshape(X.shape), color=speed,
            norm=norm, cmap="viridis", density=1.2, linewidth=0.8, arrowsize=0.8,
        )  # fmt: skip
        ax.set_title(label)
    fig.colorbar(stream.lines, ax=axes[:2], label="speed |f| (target units / time unit)")
    mesh = axes[2].pcolormesh(X, Y, err, cmap="magma", shading="auto")
    fig.colorbar(mesh, ax=axes[2], label="|f_net - f| / RMS |f| (%)")
    if samples is not None:
        pts = np.asarray(samples)[:: max(1, len(samples) // 3000)]
        axes[2].plot(pts[:, i], pts[:, j], ",", color="white", alpha=0.5)
    axes[2].set_title("drift error (dots: stationary samples)")
    others = [f"{names[m]} = {at[m]:.3g}" for m in range(k) if m not in plane]
    for ax in axes:
        ax.set_xlim(low[i], high[i])
        ax.set_ylim(low[j], high[j])
        ax.set_xlabel(f"{names[i]} (target units)")
        ax.set_ylabel(f"{names[j]} (target units)")
    if others:
        fig.suptitle("slice at " + ", ".join(others))
    return fig


def _running_mean(x: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or x.size < window:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    return (c[window:] - c[:-window]) / window


def plot_losses(
    losses: Float[Arrayish, " steps"],
    noise_losses: Float[Arrayish, " noise_steps"] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Training loss per optimiser step (log scale), raw and as a running mean.

    The drift loss is the mean squared drift mismatch in the network's normalised
    coordinates v (``z = c + S v``); the diffusion loss (state-dependent noise only) is the
    squared Frobenius mismatch of ``Ghat Ghat^T``.
    """
    curves = [("drift matching", np.asarray(losses, dtype=float), "loss (normalised units²)")]
    if noise_losses is not None and np.size(noise_losses):
        curves.append(
            ("diffusion matching", np.asarray(noise_losses, dtype=float), "covariance loss")
        )
    fig = Figure(figsize=(6 * len(curves), 4), layout="constrained")
    for ax, (label, y, ylabel) in zip(fig.subplots(1, len(curves), squeeze=False)[0], curves,
                                      strict=True):  # fmt: skip
        if y.size == 0:
            ax.text(0.5, 0.5, "no losses recorded", ha="center", va="center")
        else:
            steps = np.arange(1, y.size + 1)
            window = max(1, y.size // 100)
            ax.plot(steps, y, lw=0.5, alpha=0.35, color=TARGET_COLOUR, label="per step")
            smooth = _running_mean(y, window)
            ax.plot(steps[window - 1 :][: smooth.size], smooth, color="k", lw=1.2,
                    label=f"mean of {window} steps")  # fmt: skip
            if np.all(y > 0):
                ax.set_yscale("log")
            ax.legend()
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(ylabel)
        ax.set_title(label)
    if title:
        fig.suptitle(title)
    return fig


def plot_marginals(
    target_samples: Float[Arrayish, "n1 k"],
    network_samples: Float[Arrayish, "n2 k"],
    *,
    system: str = "",
    bins: int = 60,
    title: str | None = None,
) -> Figure:
    """Stationary marginal densities of each latent coordinate, target vs network."""
    a, b = np.asarray(target_samples, dtype=float), np.asarray(network_samples, dtype=float)
    k = a.shape[1]
    names = coordinate_names(system, k)
    fig = Figure(figsize=(4.2 * k, 3.6), layout="constrained")
    for m, ax in enumerate(fig.subplots(1, k, squeeze=False)[0]):
        edges = np.histogram_bin_edges(np.concatenate([a[:, m], b[:, m]]), bins=bins)
        ax.hist(a[:, m], edges, density=True, color=TARGET_COLOUR, alpha=0.5, label="target")
        ax.hist(b[:, m], edges, density=True, histtype="step", lw=1.5, color=NETWORK_COLOUR,
                label="network")  # fmt: skip
        ax.set_xlabel(f"{names[m]} (target units)")
        ax.set_ylabel("probability density (1 / target unit)")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_residual(
    ts: Float[Arrayish, " time"],
    residual: Float[Arrayish, "batch time"],
    *,
    dt: float | None = None,
    dtype: str | None = None,
    title: str | None = None,
) -> Figure:
    """Off-subspace residual ``||(I - P)(x - b)|| / RMS ||x - b||`` over time (log scale).

    With ``dt`` and a floating ``dtype``, the rounding level ``eps / sqrt(2 dt)`` is drawn
    for reference: each step rounds at relative size eps and the leak removes off-manifold
    error at rate ``1 / tau``.
    """
    ts, r = np.asarray(ts), np.asarray(residual, dtype=float)
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.add_subplot()
    positive = np.where(r > 0, r, np.nan)
    for i, row in enumerate(positive):
        ax.plot(ts, row, lw=0.7, label=f"trajectory {i}")
    if dt is not None and dtype is not None and np.issubdtype(np.dtype(dtype), np.floating):
        level = np.finfo(np.dtype(dtype)).eps / np.sqrt(2 * dt)
        ax.axhline(level, color="k", ls="--", lw=0.8, label=f"{dtype} rounding ε/√(2dt)")
    if np.any(np.isfinite(positive)):
        ax.set_yscale("log")
    ax.set_xlabel("t (time units)")
    ax.set_ylabel("off-subspace residual")
    ax.legend(fontsize=8)
    ax.set_title(title or "distance of the neuron state from the latent subspace")
    return fig
