"""Figures of the analysis: fields and energy, EPR, PCA, recovery.

Every function takes arrays already computed by the analysis core and returns a matplotlib
`Figure` (drawn, not written; write it with `save_figure`).
"""

import numpy as np
from matplotlib.figure import Figure

from ._plotting import coordinate_names


def plot_energy_fields(
    grid: np.ndarray,
    symmetric: np.ndarray,
    antisymmetric: np.ndarray,
    energy: np.ndarray,
    *,
    system: str = "",
    k: int = 2,
    title: str = "",
) -> Figure:
    """Symmetric (Hopfield) and antisymmetric fields on a latent plane, over energy contours.

    Args:
        grid: ``(G, G, 2)`` plane coordinates (the first two latent coordinates).
        symmetric: ``(G, G, 2)`` read-out of ``-x + W^S phi(x) + b`` at the embedded points.
        antisymmetric: ``(G, G, 2)`` read-out of ``W^A phi(x)``.
        energy: ``(G, G)`` Hopfield energy ``E(phi(x))``.
        system: name, for axis labels.
        k: latent dimension of the system (for its coordinate names).
        title: figure title.
    """
    names = coordinate_names(system, k)[:2]
    fig = Figure(figsize=(10, 4.2))
    for i, (field, label) in enumerate(
        [(symmetric, "symmetric part (descends E)"), (antisymmetric, "antisymmetric part")]
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.contour(grid[..., 0], grid[..., 1], energy, levels=15, cmap="viridis",
                   linewidths=0.8)  # fmt: skip
        ax.streamplot(grid[..., 0].T, grid[..., 1].T, field[..., 0].T, field[..., 1].T,
                      color="k", density=0.9, linewidth=0.6)  # fmt: skip
        ax.set(xlabel=names[0], ylabel=names[1], title=label)
    fig.suptitle(f"{title}: energy isopotentials (colour) and fields" if title else "")
    fig.tight_layout()
    return fig


def plot_epr_bars(values: dict[str, tuple[float, float]], *, title: str = "") -> Figure:
    """Bars of entropy production rates with 95% intervals: ``{label: (value, half_width)}``."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    labels = list(values)
    ax.bar(range(len(labels)), [values[k][0] for k in labels],
           yerr=[values[k][1] for k in labels], capsize=4, color="C0")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set(ylabel="entropy production rate", title=title or "EPR, 95% intervals")
    fig.tight_layout()
    return fig


def plot_explained_variance(explained: np.ndarray, k: int, *, title: str = "") -> Figure:
    """Explained-variance ratios of neuron activity on a log axis; the first k are the latents."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    r = np.arange(1, len(explained) + 1)
    ratio = np.maximum(np.asarray(explained), np.finfo(float).tiny)
    ax.semilogy(r, ratio, "o-", ms=3)
    ax.axvline(k + 0.5, color="grey", ls="--", lw=0.8)
    ax.set(xlabel="principal component", ylabel="explained variance ratio",
           title=title or "PCA of neuron activity")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_recovered(
    ts: np.ndarray, recovered: np.ndarray, true: np.ndarray, *, system: str = "", title: str = ""
) -> Figure:
    """Latent trajectory recovered from PCA scores against the true one, per coordinate."""
    k = true.shape[-1]
    names = coordinate_names(system, k)
    fig = Figure(figsize=(8, 1.9 * k))
    for i in range(k):
        ax = fig.add_subplot(k, 1, i + 1)
        ax.plot(ts, true[:, i], lw=1.5, color="0.7", label="true")
        ax.plot(ts, recovered[:, i], lw=0.8, color="C3", ls="--", label="recovered from PCA")
        ax.set_ylabel(names[i])
    ax.set_xlabel("time")
    fig.axes[0].legend(fontsize=8, loc="upper right")
    fig.axes[0].set_title(title or "recovered vs true latent trajectory")
    fig.tight_layout()
    return fig
