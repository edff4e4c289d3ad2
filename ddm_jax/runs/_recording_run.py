"""A data run on a recording of neurons: ``latents.npz`` and the recording's evaluation.

`train_data_run` fits a recording (an ``activity`` file, or any file with ``--latent-dim``)
by `fit_recording` and writes ``latents.npz`` beside the network: the inferred latents of
every trajectory of the file (``latents``, or ``latents_0``, ``latents_1``, ... for
trajectories of different lengths; NaN where a sample is missing), the map (``mean``,
``components``: ``y = components (x - mean)``, ``x = mean + components^T y``; with factor
analysis also ``loadings``: ``x = mean + loadings^T y``, and ``projection``), the
measurement noise (``noise_sd`` per neuron, ``noise_latent`` the latent covariance R), ``k``
and the lag-1 spectrum it was chosen from. `evaluate_run` then works on the held-out latents
and adds `recording_metrics`.
"""

import io
from pathlib import Path

import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..data import (
    LatentMap,
    one_step_predictions,
    one_step_r2,
    spectral_distance,
    state_space_divergence,
)
from ..io import atomic_write_bytes
from ..simulation import simulate_network
from ._folder import RunError

LATENTS = "latents.npz"


def write_latents(path: Path, rec, activity) -> None:
    """``latents.npz`` of a `RecordingFit` and the file's whole activity, atomically."""
    arrays = {
        "mean": rec.map.mean, "components": rec.map.components, "noise_sd": rec.noise_sd,
        "noise_latent": rec.noise_latent, "k": np.int64(rec.latent_dim),
        "spectrum": rec.choice.spectrum, "floor": np.float64(rec.choice.floor),
        "noise_corrected": np.bool_(rec.noise_corrected), "projection": np.str_(rec.projection),
    }  # fmt: skip
    if rec.map.loadings is not None:
        arrays["loadings"] = rec.map.loadings
    if isinstance(activity, list | tuple):
        arrays |= {f"latents_{i}": rec.map.encode(a) for i, a in enumerate(activity)}
    else:
        arrays["latents"] = rec.map.encode(activity)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path / LATENTS, buf.getvalue())


def read_latents(path: Path) -> tuple[LatentMap, np.ndarray]:
    """The map and the latent noise covariance R from a run's ``latents.npz``."""
    if not (path / LATENTS).is_file():
        raise RunError(f"{path}: the recording run's {LATENTS} is missing.")
    with np.load(path / LATENTS) as f:
        loadings = f["loadings"] if "loadings" in f.files else None
        return LatentMap(f["mean"], f["components"], loadings), f["noise_latent"]


def _equal_length(segments: list[np.ndarray]) -> np.ndarray:
    """The segments cut to the length most of them reach: ``(B, L, d)``."""
    lengths = np.array([len(s) for s in segments])
    L = int(np.median(lengths))
    return np.stack([s[:L] for s in segments if len(s) >= L])


def recording_metrics(model, latent_map: LatentMap, R, held_activity, dt: float, seed: int = 0):
    """Held-out one-step R^2 per neuron, and D_stsp and D_H of the latents with their nulls.

    The network is simulated from the first held-out latent of every held-out segment for its
    length (Euler-Maruyama at a tenth of dt, saved every dt), and the measurement noise R is
    added to its latents, so that it is compared with what was recorded. The nulls compare
    the two halves of the held-out segments.
    """
    observed, predicted = one_step_predictions(model, latent_map, held_activity, dt)
    r2 = one_step_r2(observed, predicted)
    data = _equal_length([latent_map.encode(s) for s in held_activity])
    run = simulate_network(
        model, jnp.asarray(data[:, 0], model.W_s.dtype), key=jr.key(seed),
        t1=dt * (data.shape[1] - 1), dt=dt / 10, save_dt=dt,
    )  # fmt: skip
    gen = np.asarray(run.zs, float)[:, : data.shape[1]]
    rng = np.random.default_rng(seed)
    w, v = np.linalg.eigh(R)
    gen = gen + rng.standard_normal(gen.shape) @ (v * np.sqrt(np.clip(w, 0, None))).T @ v.T
    half = len(data) // 2
    null_stsp = state_space_divergence(data[:half], data[half:]) if half else float("nan")
    null_h = spectral_distance(data[:half], data[half:]) if half else float("nan")
    return {
        "r2_mean": float(np.nanmean(r2)), "r2_min": float(np.nanmin(r2)),
        "d_stsp": state_space_divergence(data, gen), "d_stsp_null": null_stsp,
        "d_h": spectral_distance(data, gen), "d_h_null": null_h,
    }  # fmt: skip
