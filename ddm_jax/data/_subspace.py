"""Recovering the k-dimensional affine subspace from neuron activity.

A network started on ``M = {x = Gamma v + b}`` without private noise stays on it, so its
neuron states have exactly k non-zero principal components (up to float rounding). The PCA
scores y relate to target coordinates by an affine map ``z = A y + a``: given the embedding
``x = E z + e`` it is ``A = E^+ U_k``, ``a = E^+ (mean - e)`` (`affine_map_from_embedding`);
without it, fit it to known latent states by least squares (`estimate_affine_map`).
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..network import LowRankRNN


class PCA(NamedTuple):
    """Principal components of neuron states.

    Attributes:
        mean: ``(n,)`` mean state.
        components: ``(r, n)`` principal directions, by decreasing variance (r = min(N, n)).
        variances: ``(r,)`` variance along each direction.
        explained: ``(r,)`` explained-variance ratios (sum 1).
    """

    mean: Float[Array, " n"]
    components: Float[Array, "r n"]
    variances: Float[Array, " r"]
    explained: Float[Array, " r"]

    def scores(self, xs: Float[Array, "*batch n"], k: int) -> Float[Array, "*batch k"]:
        """The first k PCA scores ``y = U_k^T (x - mean)``."""
        return (xs - self.mean) @ self.components[:k].T


def principal_components(xs: Float[Array, "*batch n"], *, max_samples: int = 20_000) -> PCA:
    """PCA of neuron states by a thin SVD of the centred data (no n x n covariance).

    The SVD keeps small singular values to about ``eps * sigma_1``, so in float32 variance
    ratios down to about ``1e-13`` are resolved (the covariance route squares the error).

    Args:
        xs: neuron states, any leading shape, last axis n.
        max_samples: at most this many states are used (evenly strided).
    """
    xs = jnp.asarray(xs)
    if xs.ndim < 2:
        raise ValueError(f"Expected neuron states of shape (..., n); got {xs.shape}.")
    flat = xs.reshape(-1, xs.shape[-1])
    if flat.shape[0] < 2:
        raise ValueError(f"Expected at least 2 states for a PCA; got {flat.shape[0]}.")
    if not isinstance(max_samples, int | np.integer) or max_samples < 2:
        raise ValueError(f"Expected max_samples >= 2; got {max_samples!r}.")
    flat = flat[:: -(-flat.shape[0] // max_samples)]  # a ceiling: at most max_samples rows
    mean = flat.mean(axis=0)
    _, sing, vt = jnp.linalg.svd(flat - mean, full_matrices=False)
    var = sing**2 / (flat.shape[0] - 1)
    return PCA(mean, vt, var, var / jnp.sum(var))


class AffineMap(NamedTuple):
    """``z = A y + a`` from k PCA scores to target coordinates."""

    A: Float[Array, "k k"]
    a: Float[Array, " k"]

    def __call__(self, ys: Float[Array, "*batch k"]) -> Float[Array, "*batch k"]:
        """Apply the map to scores of any leading shape."""
        return ys @ self.A.T + self.a


def affine_map_from_embedding(model: LowRankRNN, components: PCA) -> AffineMap:
    """The map from the first k PCA scores to target coordinates, given ``x = E z + e``.

    On M, ``x = mean + U_k y`` and ``x = E z + e``, so ``z = E^+ U_k y + E^+ (mean - e)``.
    """
    k = model.k
    pinv = jnp.linalg.pinv(model.embed_matrix)
    return AffineMap(pinv @ components.components[:k].T, pinv @ (components.mean - model.offset))


def estimate_affine_map(ys: Float[Array, "N k"], zs: Float[Array, "N k"]) -> AffineMap:
    """Least-squares ``z = A y + a`` from paired scores and latent states (no embedding needed)."""
    ys, zs = jnp.asarray(ys), jnp.asarray(zs)
    if ys.ndim != 2 or ys.shape[0] != zs.shape[0] or ys.shape[0] <= ys.shape[1]:
        raise ValueError(
            f"Expected paired samples ys (N, k) and zs (N, k) with N > k; got {ys.shape} and "
            f"{zs.shape}."
        )
    design = jnp.concatenate([ys, jnp.ones((ys.shape[0], 1), ys.dtype)], axis=1)
    coef = jnp.linalg.lstsq(design, zs)[0]
    return AffineMap(coef[:-1].T, coef[-1])


def relative_trajectory_error(z: Float[Array, "*batch k"], ref: Float[Array, "*batch k"]) -> float:
    """``sqrt(mean ||z - ref||^2 / mean ||ref - mean(ref)||^2)``: RMS error over the spread."""
    z, ref = jnp.asarray(z).reshape(-1, z.shape[-1]), jnp.asarray(ref).reshape(-1, ref.shape[-1])
    spread2 = jnp.mean(jnp.sum((ref - ref.mean(0)) ** 2, axis=-1))
    return float(jnp.sqrt(jnp.mean(jnp.sum((z - ref) ** 2, axis=-1)) / spread2))


class SubspaceRecovery(NamedTuple):
    """PCA of a network's neuron activity and the latent trajectory recovered from it.

    Attributes:
        explained: explained-variance ratios.
        gap: ``explained[k] / explained[0]``, the (k+1)-th ratio relative to the first.
        recovered: latent states ``A y + a`` from the first k PCA scores.
        error: `relative_trajectory_error` of ``recovered`` against the reference.
    """

    explained: Float[Array, " r"]
    gap: float
    recovered: Float[Array, "*batch k"]
    error: float


def recover_subspace(
    model: LowRankRNN, xs: Float[Array, "*batch n"], reference: Float[Array, "*batch k"]
) -> SubspaceRecovery:
    """PCA of neuron states ``xs``, map their k scores to target coordinates, compare.

    Args:
        model: the network (its embedding ``x = E z + e`` gives the affine map).
        xs: neuron states of shape ``(..., n)``.
        reference: latent states of the same shape ``(..., k)`` to compare with: the
            read-out ``E^+ (x - e)`` checks the PCA and the map; a target trajectory driven by
            the same noise checks the embedding too.
    """
    xs = jnp.asarray(xs)
    if xs.shape[-1] != model.n or jnp.shape(reference) != (*xs.shape[:-1], model.k):
        raise ValueError(
            f"Expected neuron states (..., {model.n}) and reference (..., {model.k}) with the "
            f"same leading shape; got {xs.shape} and {jnp.shape(reference)}."
        )
    comps = principal_components(xs)
    recovered = affine_map_from_embedding(model, comps)(comps.scores(xs, model.k))
    explained = comps.explained
    gap = float(explained[model.k] / explained[0]) if explained.size > model.k else 0.0
    return SubspaceRecovery(
        comps.explained, gap, recovered, relative_trajectory_error(recovered, reference)
    )
