"""Distances between two samples of a stationary distribution, and the spread that scales them.

Sliced Wasserstein over fixed random directions, mean and covariance errors relative to the
reference's spread.
"""

import functools

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float


def projections(k: int, num: int = 128, seed: int = 20260214) -> Float[Array, "num k"]:
    """``num`` fixed unit directions in R^k (the same for every comparison)."""
    d = jr.normal(jr.key(seed), (num, k))
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


def _sliced_w2(xp, a, b, dirs):
    """The formula, in ``xp`` (``jax.numpy`` or NumPy): sorted projections, RMS difference."""
    pa = xp.sort(a @ dirs.T, axis=0)
    pb = xp.sort(b @ dirs.T, axis=0)
    return xp.sqrt(xp.mean((pa - pb) ** 2))


_sw = jax.jit(functools.partial(_sliced_w2, jnp))


def sliced_wasserstein(
    a: Float[Array, "N k"], b: Float[Array, "N k"], num_projections: int = 128, *,
    host: bool = False,
) -> float:  # fmt: skip
    """Sliced 2-Wasserstein distance between two equal-size samples, fixed projections.

    ``sqrt(mean_theta W2^2(theta.a, theta.b))``; each 1-d W2 is exact for empirical samples
    of equal size (sorted differences). With ``host=True`` the same projections and formula
    run in float64 NumPy: XLA's CPU sort takes ~10 s for 2 x 48,000 states x 128
    projections on a 2-core machine, NumPy's well under a second (`attractor_census` uses it).
    """
    if np.shape(a) != np.shape(b) or np.ndim(a) != 2:
        raise ValueError(
            f"Expected two samples of equal shape (N, k); got {np.shape(a)} and {np.shape(b)}."
        )
    dirs = projections(np.shape(a)[1], num_projections)
    if host:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return float(_sliced_w2(np, a, b, np.asarray(dirs, dtype=np.float64)))
    return float(_sw(jnp.asarray(a), jnp.asarray(b), dirs))


def spread(samples: Float[Array, "N k"]) -> float:
    """RMS spread ``sqrt(trace Cov)`` of a sample."""
    return float(jnp.sqrt(jnp.sum(jnp.var(samples, axis=0))))


def moment_errors(a: Float[Array, "N k"], ref: Float[Array, "N k"]) -> tuple[float, float]:
    """(mean error relative to the spread of ``ref``, relative Frobenius covariance error)."""
    return relative_moment_errors(a.mean(0), jnp.cov(a.T), ref.mean(0), jnp.cov(ref.T), spread(ref))


def relative_moment_errors(mean, cov, ref_mean, ref_cov, ref_spread) -> tuple[float, float]:
    """``(||mean - ref_mean|| / ref_spread, ||cov - ref_cov||_F / ||ref_cov||_F)``.

    In the precision of the inputs: `moment_errors` of samples, `moments_run` of moments
    streamed in float64.
    """
    mean_err = np.linalg.norm(np.asarray(mean) - np.asarray(ref_mean)) / ref_spread
    cov, ref_cov = np.asarray(cov), np.asarray(ref_cov)
    return float(mean_err), float(np.linalg.norm(cov - ref_cov) / np.linalg.norm(ref_cov))
