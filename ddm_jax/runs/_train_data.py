"""``ddm-jax train data.npz --dt 0.01``: a run folder embedding recorded trajectories.

`train_data_run` learns drift and diffusion from the trajectories in a ``.npz``/``.npy`` file
(`fit_data`) and writes a normal run folder. The file is copied into the run (``data.npz`` or
``data.npy``); the last ``held_out`` fraction of every trajectory is kept out of the fit, for
`evaluate_run` to compare the network with. Everything (file, dt, settings, the number of
increments for the network size, the folder) is checked before anything is written. Such a
run is not resumable: training is one pass of a few seconds to minutes.
"""

import hashlib
import os
import shutil
import time
from pathlib import Path

import jax.random as jr
import numpy as np

from ..data import (
    check_data,
    fit_data,
    fit_recording,
    is_recording_file,
    load_recording,
    project_recording,
    recording_segments,
    split_held_out,
    trajectory_segments,
)
from ..io import atomic_write_json, save_model
from ..training import TrainConfig
from ._data_files import data_segments
from ._folder import RUN_FORMAT, check_finite, clear, environment, now, read_config
from ._guard import check_folder, write_losses
from ._loading import TrainedRun
from ._lock import hold_folder
from ._progress import TrainProgress
from ._recording_run import write_latents
from ._settings import TRAIN_FIELDS

HELD_OUT = 0.2


def _settings(
    file: Path, dt, neurons, seed, tau, explicit_train, latent_dim=None, projection=None
) -> dict:
    loaded, file_dt, _ = load_recording(file)
    if dt is None and file_dt is None:
        raise ValueError(
            f"Expected the sampling interval: pass --dt (or store a scalar 'dt' in {file.name})."
        )
    dt = file_dt if dt is None else dt
    check_finite("dt", dt)
    for name, value in {"tau": tau, "seed": seed}.items():
        if value is not None:
            check_finite(name, value)
    config = TrainConfig(**{k: v for k, v in explicit_train.items() if v is not None})
    neurons = 64 if neurons is None else neurons
    recording = latent_dim is not None or is_recording_file(file)  # N neurons -> k latents
    if projection is not None and not recording:
        raise ValueError(
            f"Expected --projection only for a recording of neurons (an 'activity' array, an "
            f"NWB file, or --latent-dim); {file.name} holds latent trajectories."
        )
    segments = recording_segments(loaded, dt) if recording else trajectory_segments(loaded, dt)
    fit_part, held = split_held_out(segments, HELD_OUT)
    if not fit_part or not held:
        raise ValueError(
            "Expected trajectories long enough to hold out their last "
            f"{HELD_OUT:.0%} for evaluation (at least 10 samples each)."
        )
    extra = {}
    if recording:
        projection = "lag1" if projection is None else projection
        latent_map, choice, _, _ = project_recording(fit_part, latent_dim, projection)
        fit_part = [latent_map.encode(s) for s in fit_part]
        extra = {"latent_dim": choice.latent_dim, "correct_noise": True, "projection": projection}
    check_data(fit_part, dt, neurons, correct=True)
    return {
        "target": {
            "kind": "data", "file": file.name, "dt": float(dt), "held_out": HELD_OUT,
            "correct": True, "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
            "params": {}, **extra,
        },
        "neurons": neurons, "seed": 0 if seed is None else seed,
        "tau": 1.0 if tau is None else float(tau), "private_noise": 0.0,
        "train": config.to_dict(),
    }  # fmt: skip


def train_data_run(
    file: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    dt: float | None = None,
    neurons: int | None = None,
    seed: int | None = None,
    tau: float | None = None,
    overwrite: bool = False,
    progress=None,
    latent_dim: int | None = None,
    projection: str | None = None,
    **train_settings,
) -> TrainedRun:
    """Learn the SDE of the trajectories in ``file`` and embed it; write a run folder.

    Args:
        file: a ``.npz``/``.npy`` trajectory file (see `load_trajectories`).
        out: the run folder (default ``runs/<file stem>-<neurons>``).
        dt: sampling interval (default: the file's scalar ``dt``).
        neurons: network size (default 64).
        seed: PRNG seed (default 0).
        tau: neuron time constant (default 1).
        overwrite: replace a run in ``out``.
        progress: called with a `TrainProgress` after every chunk of steps.
        latent_dim: fit the file as a recording of neurons with k = ``latent_dim`` latents
            (`fit_recording`); a file with an ``activity`` array is always a recording, and
            its k is chosen from the data unless given. Writes ``latents.npz``.
        projection: how a recording is projected to its latents (`fit_recording`):
            ``"lag1"`` (default) or ``"fa"`` (factor analysis, for unequal noise across
            neurons); recorded in the run's settings and ``training.json``.
        **train_settings: fields of `TrainConfig` (``steps``, ``batch``, ``lr``, ...).

    Raises:
        RunError: when ``out`` holds something else.
        ValueError: for a bad file, dt or settings, or too few increments for the network.
    """
    unknown = sorted(set(train_settings) - set(TRAIN_FIELDS))
    if unknown:
        raise ValueError(f"Expected training settings among {list(TRAIN_FIELDS)}; got {unknown}.")
    file = Path(file)
    settings = _settings(file, dt, neurons, seed, tau, train_settings, latent_dim, projection)
    n = settings["neurons"]
    path = Path(f"runs/{file.stem}-{n}" if out is None else out)
    with hold_folder(path, create=True):  # checked and written by this command alone
        return _train(file, path, settings, overwrite, progress)


def _train(file: Path, path: Path, settings: dict, overwrite: bool, progress) -> TrainedRun:
    n = settings["neurons"]
    check_folder(path, settings, overwrite=overwrite)
    if overwrite:
        clear(path)
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, path / f"data{file.suffix}")
    spec = settings["target"]
    fit_part, _ = data_segments(path / f"data{file.suffix}", spec["dt"], spec["held_out"])
    config = TrainConfig(**settings["train"])
    started = time.monotonic()

    def on_chunk(state, losses):
        if progress is not None:
            progress(TrainProgress(
                "drift", int(state.step), config.steps, float(np.mean(losses)), float("nan"),
                False, time.monotonic() - started,
            ))  # fmt: skip

    common = dict(key=jr.key(settings["seed"]), config=config, tau=settings["tau"],
                  name=file.stem, on_chunk=on_chunk)  # fmt: skip
    rec = None
    if spec.get("latent_dim") is not None:  # a recording: latents, noise, then the SDE
        rec = fit_recording(fit_part, spec["dt"], n, latent_dim=spec["latent_dim"],
                            projection=spec.get("projection", "lag1"), **common)  # fmt: skip
        result = rec.fit
        write_latents(path, rec, load_recording(path / f"data{file.suffix}")[0])
    else:
        result = fit_data(fit_part, spec["dt"], n, correct=spec["correct"], **common)
    model = result.model
    atomic_write_json(path / "config.json", {
        "format": RUN_FORMAT, "system": str(file), "settings": settings,
        "target": {
            "name": file.stem, "dim": model.k, "noise_dim": model.m, "additive_noise": True,
            "paper_neurons": None, "box_low": (model.centre - model.scale).tolist(),
            "box_high": (model.centre + model.scale).tolist(), "z0": result.target.z0.tolist(),
            "source": str(file.resolve()),
        },
        "environment": environment(), "created": now(),
    })  # fmt: skip
    write_losses(path, result.losses, np.zeros(0, np.float32))
    summary = {
        "steps": int(result.losses.size), "noise_steps": 0,
        "train_seconds": round(time.monotonic() - started, 3),
        "final_loss": float(np.mean(result.losses[-100:])) if result.losses.size else None,
        "method": config.method,
        "drift_error_monitor": None, "diffusion_error_monitor": None,
        "D": np.asarray(result.D).tolist(), "finished": now(),
    }  # fmt: skip
    if rec is not None:
        summary["recording"] = {
            "neurons_recorded": int(rec.map.mean.size), "latent_dim": rec.latent_dim,
            "latent_dim_detected": rec.choice.detected, "noise_floor": rec.choice.floor,
            "noise_sd_median": float(np.median(rec.noise_sd)),
            "noise_corrected": rec.noise_corrected, "projection": rec.projection,
        }  # fmt: skip
    atomic_write_json(path / "training.json", summary)
    save_model(path / "model.eqx", model)
    return TrainedRun(path, read_config(path), result.target, model, result.losses, None,
                      summary)  # fmt: skip
