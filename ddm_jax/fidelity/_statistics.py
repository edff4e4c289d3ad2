"""Distances between two samples of a stationary distribution, and the spread that scales them.

Sliced Wasserstein over fixed random directions, mean and covariance errors relative to the
reference's spread.
"""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float


def projections(k: int, num: int = 128, seed: int = 20260214) -> Float[Array, "num k"]:
    """``num`` fixed unit directions in R^k (the same for every comparison)."""
    d = jr.normal(jr.key(seed), (num, k))
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


@jax.jit
def _sw(a, b, dirs):
    pa = jnp.sort(a @ dirs.T, axis=0)
    pb = jnp.sort(b @ dirs.T, axis=0)
    return jnp.sqrt(jnp.mean((pa - pb) ** 2))


def sliced_wasserstein(
    a: Float[Array, "N k"], b: Float[Array, "N k"], num_projections: int = 128
) -> float:
    """Sliced 2-Wasserstein distance between two equal-size samples, fixed projections.

    ``sqrt(mean_theta W2^2(theta.a, theta.b))``; each 1-d W2 is exact for empirical samples
    of equal size (sorted differences).
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"Expected two samples of equal shape (N, k); got {a.shape} and {b.shape}."
        )
    return float(_sw(a, b, projections(a.shape[1], num_projections)))


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
