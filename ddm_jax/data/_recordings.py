"""From recordings: find the latent SDE in noisy high-dimensional activity and embed it.

A recording is ``(B, T, N)`` activity of N neurons (or a list of ``(T_i, N)`` arrays) sampled
every ``dt``, each neuron ``x_i = c_i . z + m_i + eta_i``: a mixture of k latent variables z
plus white measurement noise eta (independent in time, any covariance across neurons).
`fit_recording` does, in order:

1. **Subspace and k.** The symmetrised lag-1 autocovariance ``C_1 = sym Cov(x_{t+dt}, x_t)``
   holds no white noise (eta_t and eta_{t+dt} are independent), so its eigenvectors are the
   latent subspace even for unequal noise across neurons (lag-0 PCA is biased towards noisy
   neurons). Its eigenvalues are the signal's variances (up to O(dt)) for the k latent
   directions and sampling noise of either sign for the others: the most negative eigenvalue
   estimates the sampling fluctuations, and k is the number of eigenvalues above
   ``FLOOR_FACTOR`` (3) times its magnitude (and above ``1e-6`` of the largest).
   ``latent_dim`` overrides the choice. The projection is orthonormal: ``y = U (x - mean)``,
   ``x = mean + U^T y`` (`LatentMap`). ``projection="fa"`` instead whitens by per-neuron
   noise variances from factor analysis first (see ``_latent_space``).
2. **Measurement noise.** The autocovariance of the signal is smooth in the lag ``h >= 0``,
   the noise only adds to lag 0: ``C(0) = C_z(0) + R``. ``C_z(0)`` is extrapolated from lags
   1..4 by the cubic through them (``4 C_1 - 6 C_2 + 4 C_3 - C_4``, error O(dt^4)), so
   ``R = C(0) - (4 C_1 - 6 C_2 + 4 C_3 - C_4)``: per neuron (the diagonal, reported as
   ``noise_sd``) and in latent coordinates (the full ``(k, k)`` ``noise_latent``).
   Equivalently: observation noise adds ``2 R`` to the increments' covariance and ``-R`` to
   their lag-1 autocovariance.
3. **Drift, corrected for the noise.** Regressing ``(y_{t+dt} - y_t) / dt`` on ``y_t``
   puts ``-eta_t / dt`` in the target and ``eta_t`` in the regressor: a bias of order
   ``R / (Var(z) dt)`` (25% at 5% noise and dt = 0.01). When the noise is not negligible
   (it adds more than `NOISE_NEGLIGIBLE` of the lag-1 increment covariance) the target
   skips sample t: ``(-2.5 y_{t+1} + 4 y_{t+2} - 1.5 y_{t+3}) / dt``, whose conditional mean
   given ``z_t`` is ``f(z_t) + O(dt^2)`` (it is exact for quadratic mean paths) and whose
   noise is independent of the regressor's. Its discretisation error, ``-(11/6) dt^2`` times
   the third derivative of the mean path (5% of the drift on Lorenz at dt = 0.01), is removed
   by defect correction: the stencil applied to the learned drift's own flow (RK4) less that
   drift is subtracted from the targets and the read-out refitted (`STENCIL_ROUNDS` times).
   What remains is the attenuation by the noise in
   the regressor, of relative order ``R / Var(z)`` (0.25% at 5% noise); it is removed to
   first order by SIMEX (Cook & Stefanski 1994): the exact read-out is refitted with noise
   of covariance R added to the regressor, and extrapolated linearly to no noise,
   ``W = 2 W(R) - W(2R)`` evaluated as ``2 W_0 - W_1``.
4. **Diffusion, corrected.** Residuals ``r_h = y_{t+h} - phi_h(y_t)`` (``phi_h`` the flow of
   the learned drift) over lags dt and 2 dt have covariance ``Q_z(h) + R + Phi_h R Phi_h^T``,
   ``Phi_h ~ I + h J`` the flow's Jacobian; subtracting the noise terms (with the learned
   drift's Jacobians averaged over the states) leaves ``Q_z(h) = 2 D h + O(h^2)``, and D is
   the Richardson combination ``Q_z(dt) / dt - Q_z(2 dt) / (4 dt)``.
5. **Embedding and read-out.** The network carries the learned latent SDE (as `fit_data`);
   every recorded neuron is predicted by ``mean + U^T z`` from its latent read-out
   (`RecordingFit.neurons`).

A sample with any neuron missing (NaN) is dropped as a whole (it splits its trajectory, as in
`trajectory_segments`). With ``correct_noise=False`` the latents go to `fit_data` unchanged.
"""

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Key
from ..training import TrainConfig
from ._data import Increments, _check_dt, load_trajectories, trajectory_segments
from ._data_diffusion import increment_means
from ._from_data import (
    DataFit,
    fit_data,
)
from ._latent_space import LatentChoice, LatentMap, latent_space
from ._noise_correction import _fit_noisy
from ._nwb import load_nwb
from ._streaming import stream_projection

NOISE_NEGLIGIBLE = 0.02


def load_recording(path: str | os.PathLike):
    """Activity, sampling interval and neuron names from a ``.npz``, ``.npy`` or ``.nwb`` file.

    A ``.npz`` with an array ``activity`` (``(B, T, N)`` or ``(T, N)``), an optional scalar
    ``dt`` and optional ``names`` (N strings); an NWB file as `load_nwb` reads it (trials as
    trajectories); any other file as `load_trajectories` reads it.

    Returns:
        ``(activity, dt or None, names or None)``.
    """
    path = Path(path)
    if path.suffix == ".nwb":
        return load_nwb(path)
    if path.suffix == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as loaded:
                if "activity" in loaded.files:
                    dt = float(loaded["dt"]) if "dt" in loaded.files else None
                    names = [str(s) for s in loaded["names"]] if "names" in loaded.files else None
                    return loaded["activity"], dt, names
        except ValueError:
            raise
        except Exception as err:
            raise ValueError(f"{path}: expected a NumPy file; it is corrupt ({err}).") from err
    data, dt = load_trajectories(path)
    return data, dt, None


def is_recording_file(path: str | os.PathLike) -> bool:
    """Whether a file is a recording of neurons: an NWB file, or a ``.npz`` with ``activity``."""
    path = Path(path)
    if path.suffix == ".nwb":
        return True
    if path.suffix != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as loaded:
            return "activity" in loaded.files
    except Exception:
        return False


def recording_segments(activity, dt) -> list[np.ndarray]:
    """The runs of fully recorded samples, each ``(T_i, N)``, every input checked.

    Raises:
        ValueError: (one line) for a wrong shape, inf, a neuron never recorded, or fewer than
            2 neurons.
    """
    _check_dt(dt)
    if isinstance(activity, list | tuple):
        parts = [np.asarray(a, float) for a in activity]
        shapes = {a.shape[-1] if a.ndim == 2 else None for a in parts}
        if None in shapes or len(shapes) != 1:
            raise ValueError(
                "Expected a list of (T_i, N) arrays with the same N; got shapes "
                f"{[a.shape for a in parts]}."
            )
        flat = np.concatenate(parts)
    else:
        arr = np.asarray(activity, float)
        if arr.ndim not in (2, 3):
            raise ValueError(
                f"Expected activity of shape (B, T, N) or (T, N); got rank {arr.ndim}, shape "
                f"{arr.shape}."
            )
        flat = arr.reshape(-1, arr.shape[-1])
    if flat.shape[-1] < 2:
        raise ValueError(f"Expected at least 2 recorded neurons; got {flat.shape[-1]}.")
    if np.any(np.isinf(flat)):
        raise ValueError("Expected finite activity (NaN for missing samples); got inf.")
    never = np.flatnonzero(np.all(np.isnan(flat), axis=0))
    if never.size:
        raise ValueError(
            f"Expected every neuron recorded at some sample; neuron(s) {never[:10].tolist()} are "
            "all NaN: drop them."
        )
    return trajectory_segments(activity, dt)


def lag_covariances(segments: list[np.ndarray], lags, mean=None) -> list[np.ndarray]:
    """``C(h) = mean_t (x_{t+h} - mean)(x_t - mean)^T`` pooled over segments, for each lag."""
    mean = np.concatenate(segments).mean(0) if mean is None else mean
    out = []
    for h in lags:
        num, acc = 0, 0.0
        for s in segments:
            if len(s) > h:
                a, b = s[h:] - mean, s[: len(s) - h] - mean
                acc = acc + a.T @ b
                num += len(a)
        if num == 0:
            raise ValueError(f"Expected segments longer than {h} samples; none is.")
        out.append(acc / num)
    return out


@dataclasses.dataclass(frozen=True)
class RecordingFit:
    """Output of `fit_recording`.

    Attributes:
        map: the `LatentMap` between activity and latents.
        latent_dim: k.
        choice: how k was chosen (`LatentChoice`).
        noise_sd: ``(N,)`` measurement-noise standard deviation s per neuron.
        noise_latent: ``(k, k)`` measurement-noise covariance R in latent coordinates.
        noise_corrected: whether the drift and D were corrected for R.
        fit: the `DataFit` of the latent SDE (network, learned target, D).
        latents: the inferred latent segments ``(T_i, k)`` the fit used.
        projection: ``"lag1"`` or ``"fa"``, how the subspace was found.
    """

    map: LatentMap
    latent_dim: int
    choice: LatentChoice
    noise_sd: np.ndarray
    noise_latent: np.ndarray
    noise_corrected: bool
    fit: DataFit
    latents: list
    projection: str = "lag1"

    @property
    def model(self):
        """The fitted network."""
        return self.fit.model

    def neurons(self, x_net):
        """Every recorded neuron predicted from network states ``(..., n)``: ``(..., N)``."""
        model = self.fit.model
        z = jax.vmap(model.readout)(jnp.asarray(x_net).reshape(-1, model.n))
        return self.map.decode(np.asarray(z, float)).reshape(*np.shape(x_net)[:-1], -1)

    def predict_step(self, activity_segments, dt: float):
        """One-step predictions: ``(observed x_{t+dt}, predicted)`` pooled, each ``(M, N)``."""
        return one_step_predictions(self.fit.model, self.map, activity_segments, dt)


def one_step_predictions(model, latent_map: LatentMap, activity_segments, dt: float):
    """``x_{t+dt}`` and ``mean + U^T phi_dt(U (x_t - mean))`` (RK4 flow of the learned drift)."""
    segs = [latent_map.encode(s) for s in activity_segments if len(s) >= 2]
    z = np.concatenate([s[:-1] for s in segs])
    inc = Increments(z, np.zeros_like(z), None, dt)
    m1, _ = increment_means(model, inc, True, both=False)
    observed = np.concatenate([s[1:] for s in activity_segments if len(s) >= 2])
    return observed, latent_map.decode(z + m1)


def project_recording(
    segments: list[np.ndarray], latent_dim: int | None = None, projection: str = "lag1"
):
    """The subspace, k and the measurement noise of activity segments (steps 1 and 2).

    Args:
        segments: activity segments ``(T_i, N)`` (`recording_segments`).
        latent_dim: k (default: chosen from the spectrum).
        projection: ``"lag1"`` (orthonormal, lag-1 autocovariance) or ``"fa"`` (whitened by
            the per-neuron noise of a factor analysis; `latent_space`).

    Returns:
        ``(LatentMap, LatentChoice, noise_sd (N,), R (k, k))``.
    """
    mean = np.concatenate(segments).mean(0)
    covs = lag_covariances(segments, range(5), mean)
    W, L, choice, noise_sd, R = latent_space(covs, latent_dim, projection)
    return LatentMap(mean, W, L), choice, noise_sd, R


def fit_recording(
    activity,
    dt: float,
    n: int,
    *,
    key: Key,
    latent_dim: int | None = None,
    projection: str = "lag1",
    correct_noise: bool = True,
    simex: bool = True,
    config: TrainConfig | None = None,
    tau: float = 1.0,
    name: str = "recording",
    on_chunk: Callable | None = None,
    chunk: int | None = None,
) -> RecordingFit:
    """Find the latent SDE of a noisy recording and embed it (see the module docstring).

    Args:
        activity: ``(B, T, N)`` or ``(T, N)`` activity (NaN: missing), or a list of
            ``(T_i, N)`` arrays, sampled every ``dt``.
        dt: sampling interval (> 0).
        n: network size.
        key: PRNG key.
        latent_dim: k; default chosen from the lag-1 spectrum (`choose_latent_dim`).
        projection: ``"lag1"`` (default: the lag-1 autocovariance's eigenvectors, an
            orthonormal map) or ``"fa"`` (factor analysis: per-neuron noise variances psi,
            the subspace of the activity whitened by them, the generalised least-squares
            projection; ``noise_sd`` is ``sqrt(psi)`` and the correction starts from
            ``R = W diag(psi) W^T``). See ``_latent_space``.
        correct_noise: correct drift and diffusion for the estimated measurement noise
            (when it is not negligible); False fits the raw latents with `fit_data`.
        simex: with the correction, also remove the regressor's attenuation (SIMEX).
        config: as in `fit_data`.
        tau: as in `fit_data`.
        name: as in `fit_data`.
        on_chunk: as in `fit_data`.
        chunk: read a ``(B, T, N)`` array (e.g. a memory map, or the `NWBSeries` of
            ``load_nwb(path, lazy=True)``) in chunks of this many samples
            (`stream_projection`): only the latents are held in memory.

    Raises:
        ValueError: (one line) for a bad recording or settings.
    """
    config = TrainConfig() if config is None else config
    if chunk is not None:  # larger than memory: chunked passes, then the small latents
        latent_map, choice, noise_sd, R, all_latents = stream_projection(
            activity, dt, latent_dim, chunk=chunk, projection=projection
        )
        latents = trajectory_segments(all_latents, dt)
    else:
        segments = recording_segments(activity, dt)
        latent_map, choice, noise_sd, R = project_recording(segments, latent_dim, projection)
        latents = [latent_map.encode(s) for s in segments]
    inc_cov = lag_covariances([np.diff(s, axis=0) for s in latents], [0], np.zeros(len(R)))[0]
    noisy = bool(np.trace(2 * R) > NOISE_NEGLIGIBLE * np.trace(inc_cov))
    if correct_noise and noisy:
        result, R = _fit_noisy(
            latents, float(dt), int(n), R, key=key, config=config, tau=tau, name=name,
            on_chunk=on_chunk, simex=simex,
        )  # fmt: skip
    else:
        result = fit_data(
            latents, dt, n, key=key, config=config, tau=tau, name=name, on_chunk=on_chunk
        )
    return RecordingFit(
        latent_map, choice.latent_dim, choice, noise_sd, R, bool(correct_noise and noisy),
        result, latents, projection,
    )  # fmt: skip
