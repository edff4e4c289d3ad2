"""The latent space of a recording: its orthonormal map, k and the measurement noise.

Shared by `fit_recording` (in memory) and `stream_projection` (in chunks); the method is in
the docstring of ``_recordings``.
"""

import dataclasses

import numpy as np

FLOOR_FACTOR = 3.0
MAX_LATENT_DIM = 20
_EXTRAPOLATE = np.array([4.0, -6.0, 4.0, -1.0])  # lags 1..4 -> lag 0, exact for cubics


@dataclasses.dataclass(frozen=True)
class LatentMap:
    """The orthonormal projection ``y = U (x - mean)`` and its inverse ``x = mean + U^T y``.

    Attributes:
        mean: ``(N,)`` mean activity.
        components: ``(k, N)`` orthonormal rows U spanning the latent subspace.
    """

    mean: np.ndarray
    components: np.ndarray

    def encode(self, x):
        """Latents ``(..., k)`` of activity ``(..., N)`` (NaN propagates)."""
        return (np.asarray(x, float) - self.mean) @ self.components.T

    def decode(self, y):
        """Activity ``(..., N)`` predicted from latents ``(..., k)``."""
        return self.mean + np.asarray(y, float) @ self.components


def _sym(c):
    return (c + c.T) / 2


def noise_covariance(covs: list[np.ndarray]) -> np.ndarray:
    """Measurement-noise covariance ``R = C(0) - (4 C_1 - 6 C_2 + 4 C_3 - C_4)`` (symmetrised).

    Args:
        covs: the autocovariances at lags 0..4 (`lag_covariances`), exact or estimated.
    """
    extrapolated = sum(w * _sym(c) for w, c in zip(_EXTRAPOLATE, covs[1:5], strict=True))
    return _sym(covs[0]) - extrapolated


@dataclasses.dataclass(frozen=True)
class LatentChoice:
    """How k was chosen: the lag-1 spectrum, its noise floor, the chosen and detected k."""

    spectrum: np.ndarray
    floor: float
    detected: int
    latent_dim: int
    rank: int


def choose_latent_dim(c0: np.ndarray, c1: np.ndarray, latent_dim: int | None = None):
    """The latent dimension from the lag-1 autocovariance's spectrum against its noise floor.

    Returns:
        ``(LatentChoice, U)`` with U the ``(k, N)`` leading eigenvectors.

    Raises:
        ValueError: when ``latent_dim`` exceeds N or the rank of the activity, or no
            direction rises above the noise floor.
    """
    N = c0.shape[0]
    evals, evecs = np.linalg.eigh(_sym(c1))
    evals, evecs = evals[::-1], evecs[:, ::-1]
    ev0 = np.linalg.eigvalsh(_sym(c0))
    rank = int(np.sum(ev0 > 1e-10 * max(ev0.max(), 1e-300)))
    floor = max(FLOOR_FACTOR * max(-evals.min(), 0.0), 1e-6 * max(evals[0], 0.0))
    detected = int(np.sum(evals > floor))
    if latent_dim is not None:
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int | np.integer):
            raise ValueError(f"Expected latent_dim a positive integer; got {latent_dim!r}.")
        if not 1 <= latent_dim <= N:
            raise ValueError(f"Expected 1 <= latent_dim <= N = {N} neurons; got {latent_dim}.")
        if latent_dim > rank:
            raise ValueError(
                f"Expected activity of rank >= latent_dim = {latent_dim}; its covariance has "
                f"rank {rank}."
            )
        k = int(latent_dim)
    else:
        if detected == 0:
            raise ValueError(
                "Expected activity with temporal structure; no direction of the lag-1 "
                f"autocovariance rises above its noise floor {floor:.3g}."
            )
        k = min(detected, MAX_LATENT_DIM, N)
    return LatentChoice(evals, float(floor), detected, k, rank), evecs[:, :k].T
