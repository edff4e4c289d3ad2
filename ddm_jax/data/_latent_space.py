"""The latent space of a recording: its orthonormal map, k and the measurement noise.

Shared by `fit_recording` (in memory) and `stream_projection` (in chunks); the method is in
the docstring of ``_recordings``. `latent_space` turns the autocovariances at lags 0..4 into
the map, k and the noise, by either projection (`PROJECTIONS`):

- ``"lag1"``: the leading eigenvectors of the lag-1 autocovariance, an orthonormal map.
- ``"fa"``: factor analysis for neurons with unequal measurement noise. k is chosen as for
  ``"lag1"``; the per-neuron noise variances psi are the uniquenesses of a k-factor model of
  the lag-0 covariance, ``C(0) = L L^T + diag(psi)`` (`factor_analysis`, EM); the activity is
  whitened by ``psi^-1/2`` and the lag-1 subspace found there (k is chosen again on the
  whitened spectrum, and psi refitted once if it changed). The map is the generalised
  least-squares projection onto that subspace, ``y = V psi^-1/2 (x - mean)`` with inverse
  ``x = mean + psi^1/2 V^T y`` (V orthonormal rows): noisy neurons weigh less in the latents.
  ``noise_sd`` is ``sqrt(psi)`` and the latent noise covariance ``R = W diag(psi) W^T`` of
  the projection W, which is the identity in these coordinates.
"""

import dataclasses

import numpy as np

FLOOR_FACTOR = 3.0
PROJECTIONS = ("lag1", "fa")
FA_ITERATIONS = 500
FA_TOLERANCE = 1e-8
FA_PSI_FLOOR = 1e-6  # uniquenesses stay above this fraction of the mean variance
MAX_LATENT_DIM = 20
_EXTRAPOLATE = np.array([4.0, -6.0, 4.0, -1.0])  # lags 1..4 -> lag 0, exact for cubics


@dataclasses.dataclass(frozen=True)
class LatentMap:
    """The projection ``y = W (x - mean)`` and its inverse ``x = mean + L^T y``.

    ``encode(decode(y)) = y`` (``W L^T = I``). The lag-1 projection is orthonormal (W = U,
    no ``loadings``); factor analysis has ``W = V psi^-1/2`` and ``L = V psi^1/2``.

    Attributes:
        mean: ``(N,)`` mean activity.
        components: ``(k, N)`` rows W of the projection (orthonormal rows U spanning the
            latent subspace for the lag-1 projection).
        loadings: ``(k, N)`` rows L of the inverse map; None: the same as ``components``.
    """

    mean: np.ndarray
    components: np.ndarray
    loadings: np.ndarray | None = None

    def encode(self, x):
        """Latents ``(..., k)`` of activity ``(..., N)`` (NaN propagates)."""
        return (np.asarray(x, float) - self.mean) @ self.components.T

    def decode(self, y):
        """Activity ``(..., N)`` predicted from latents ``(..., k)``."""
        rows = self.components if self.loadings is None else self.loadings
        return self.mean + np.asarray(y, float) @ rows


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


def factor_analysis(c0: np.ndarray, k: int, *, iterations: int = FA_ITERATIONS):
    """Uniquenesses psi of a k-factor model ``C(0) = L L^T + diag(psi)`` of a covariance (EM).

    The EM of Rubin & Thayer (1982) on the covariance itself (no samples): from the leading
    eigenvectors, ``beta = L^T (L L^T + Psi)^-1`` (by Woodbury, O(N^2 k) a step),
    ``L <- C beta^T (I - beta L + beta C beta^T)^-1``, ``psi <- diag(C - L beta C)``, until
    the log-likelihood changes by less than `FA_TOLERANCE` relative. psi is kept above
    `FA_PSI_FLOOR` of the mean variance (a neuron without noise would otherwise get an
    infinite weight).

    Returns:
        ``(psi (N,), L (N, k))``.
    """
    c0 = _sym(np.asarray(c0, float))
    N = c0.shape[0]
    floor = FA_PSI_FLOOR * max(np.trace(c0) / N, 1e-300)
    w, v = np.linalg.eigh(c0)
    L = v[:, ::-1][:, :k] * np.sqrt(np.clip(w[::-1][:k], 0.0, None))
    psi = np.clip(np.diag(c0) - np.sum(L**2, axis=1), floor, None)
    last = -np.inf
    for _ in range(iterations):
        Lp = L / psi[:, None]  # Psi^-1 L
        M = np.linalg.inv(np.eye(k) + L.T @ Lp)
        beta = M @ Lp.T  # L^T (L L^T + Psi)^-1
        bc = beta @ c0
        L = bc.T @ np.linalg.inv(np.eye(k) - beta @ L + bc @ beta.T)
        psi = np.clip(np.diag(c0) - np.sum(L * bc.T, axis=1), floor, None)
        # log-likelihood (up to constants and -n/2): log det S + tr(S^-1 C), S = L L^T + Psi
        Lp = L / psi[:, None]
        cap = np.eye(k) + L.T @ Lp
        logdet = np.sum(np.log(psi)) + np.linalg.slogdet(cap)[1]
        trace = np.sum(np.diag(c0) / psi) - np.sum((np.linalg.solve(cap, Lp.T) @ c0) * Lp.T)
        ll = -(logdet + trace)
        if abs(ll - last) <= FA_TOLERANCE * abs(ll):
            break
        last = ll
    return psi, L


def latent_space(covs: list[np.ndarray], latent_dim: int | None = None, projection="lag1"):
    """The map, k, the per-neuron noise sd and the latent noise covariance R.

    Args:
        covs: the autocovariances at lags 0..4 (`lag_covariances`).
        latent_dim: k (default: chosen from the spectrum, `choose_latent_dim`).
        projection: ``"lag1"`` or ``"fa"`` (see the module docstring).

    Returns:
        ``(W (k, N), L (k, N) or None, LatentChoice, noise_sd (N,), R (k, k))``: the rows of
        `LatentMap` (its ``components`` and ``loadings``), how k was chosen, the noise.

    Raises:
        ValueError: (one line) for an unknown projection, and as `choose_latent_dim`.
    """
    if not isinstance(projection, str) or projection not in PROJECTIONS:
        raise ValueError(f"Expected projection in {PROJECTIONS}; got {projection!r}.")
    choice, U = choose_latent_dim(covs[0], covs[1], latent_dim)
    if projection == "lag1":
        noise_var = np.clip(np.diag(noise_covariance(covs)), 0.0, None)
        R = noise_covariance([U @ c @ U.T for c in covs])
        w, v = np.linalg.eigh(R)
        R = (v * np.clip(w, 0.0, None)) @ v.T
        return U, None, choice, np.sqrt(noise_var), R
    k = choice.latent_dim
    for _ in range(2):  # psi for k factors; k again on the whitened spectrum
        psi = factor_analysis(covs[0], k)[0]
        scale = 1.0 / np.sqrt(psi)
        white = [c * scale[:, None] * scale[None, :] for c in covs[:2]]
        choice, V = choose_latent_dim(white[0], white[1], latent_dim)
        if choice.latent_dim == k:
            break
        k = choice.latent_dim
    W, L = V * scale[None, :], V / scale[None, :]
    return W, L, choice, np.sqrt(psi), (W * psi[None, :]) @ W.T
