"""``ddm-jax train``: `train_run`, checkpointed as it goes and resumable.

The result is bit for bit that of `fit` with the same settings, interrupted or not: both
take their keys and noise-matching settings from `_matching.fit_plan`, step ``i`` draws
its batch from ``fold_in(key, i)``, the optimiser state is checkpointed with the network,
and the attractor pool is kept in ``pool.npy``.

A start is validated whole before anything is written: the settings, the network built from
them, the target's values at ``z0`` and the attractor pool. A failed start leaves the folder
exactly as it was (absent, or unchanged).
"""

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..fidelity import diffusion_error, drift_error
from ..io import atomic_write_bytes, atomic_write_json, save_model
from ..network import LowRankRNN, init_network
from ..simulation import attractor_points, sample_box
from ..targets import Target
from ..training import (
    TrainConfig,
    adam_steps,
    drift_finish,
    drift_start,
    fit_plan,
    init_train_state,
    remedy,
    remedy_settings,
    run_training,
    solve_noise_readout,
)
from ._census_report import census_outcome
from ._checkpoint import load_pool, read_checkpoint, save_pool, write_checkpoint
from ._data_files import is_data_file
from ._folder import (
    RUN_FORMAT,
    RunError,
    check_finite,
    clear,
    environment,
    now,
    read_config,
    remove_stale_temporaries,
)
from ._guard import check_folder, write_losses
from ._loading import TrainedRun, default_run_folder, load_run
from ._lock import hold_folder
from ._progress import TrainProgress
from ._settings import TRAIN_FIELDS, differences, resumed_settings, settings_for
from ._target_spec import is_target_file, load_target, target_spec


class _Start(NamedTuple):
    """Everything a training session starts from, computed before anything is written."""

    config: TrainConfig
    plan: Any
    model: LowRankRNN
    pool: jax.Array | None
    pool_is_new: bool


def _check_target_values(target: Target) -> None:
    for name, value in (("drift f", target.f(target.z0)), ("diffusion G", target.g(target.z0))):
        if not np.all(np.isfinite(np.asarray(value))):
            raise RunError(
                f"Expected the target's {name} to be finite at z0 = "
                f"{np.asarray(target.z0).tolist()}; got {np.asarray(value).tolist()}."
            )


def _start(path: Path, target: Target, settings: dict, *, resume: bool) -> _Start:
    """The network, plan and pool of a session: every setting checked, nothing written.

    A resumed session reuses the run's ``pool.npy``; a new one never reads it.
    """
    config = TrainConfig(**settings["train"])
    plan = fit_plan(jr.key(settings["seed"]), config)  # as in fit()
    model = init_network(
        target, settings["neurons"], key=plan.init_key, tau=settings["tau"],
        private_noise=settings["private_noise"],
    )  # fmt: skip
    _check_target_values(target)
    pool, pool_is_new = None, False
    if config.sampler != "box":
        if resume and (path / "pool.npy").is_file():
            pool = load_pool(path / "pool.npy", target)
        else:
            pool, pool_is_new = attractor_points(target, key=plan.pool_key, dt=config.pool_dt), True
    return _Start(config, plan, model, pool, pool_is_new)


def train_run(
    system: str,
    out: str | os.PathLike | None = None,
    *,
    neurons: int | None = None,
    params: dict | None = None,
    seed: int | None = None,
    tau: float | None = None,
    private_noise: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    checkpoint_every: float = 5.0,
    progress: Callable[[TrainProgress], Any] | None = None,
    **train_settings,
) -> TrainedRun:
    """Train a network for ``system`` in the run folder ``out``, checkpointing as it goes.

    The result is bit for bit that of ``fit(target, neurons, key=jr.key(seed), config=...)``
    with the same settings, whether or not the run was interrupted and resumed: step ``i``
    draws its batch from ``fold_in(key, i)``, the optimiser state is checkpointed with the
    network, and the attractor pool is saved in ``pool.npy``. Every setting, the network
    built from them, the target and the attractor pool are checked before anything is
    written, so a failed start leaves ``out`` as it was.

    Args:
        system: a registered name (see `SYSTEMS`) or ``path/to/file.py:name`` (recorded
            trajectories train with `train_data_run`).
        out: the run folder (default ``runs/<system>-<neurons>``).
        neurons: network size (default: the paper's size for the system, else 64).
        params: target parameters, e.g. ``{"noise": 0.5}``.
        seed: PRNG seed (default 0).
        tau: neuron time constant (default 1).
        private_noise: private neuron noise sigma (default 0).
        resume: continue the run in ``out``. Settings left as None are taken from it; those
            given must match it.
        overwrite: replace a run in ``out`` (only ddm-jax's own files are deleted).
        checkpoint_every: seconds between checkpoints (0: after every chunk of steps). A
            checkpoint is also written at the end of each phase and on KeyboardInterrupt.
        progress: called with a `TrainProgress` after every chunk of steps.
        **train_settings: fields of `TrainConfig` (``steps``, ``batch``, ``lr``,
            ``sampler``, ``chunk``, ``noise_steps``, ...).

    Raises:
        RunError: when ``out`` holds a different run (or any run, without ``overwrite`` or
            ``resume``), or there is nothing to resume.
        CorruptFileError: when a checkpoint or pool file is corrupt.
        ValueError: for bad settings.
    """
    if is_data_file(system):
        raise ValueError(
            f"Expected a registered target or file.py:name; got the trajectory file {system!r}: "
            "train on recorded data with train_data_run."
        )
    unknown = sorted(set(train_settings) - set(TRAIN_FIELDS))
    if unknown:
        raise ValueError(f"Expected training settings among {list(TRAIN_FIELDS)}; got {unknown}.")
    for name, value in {"tau": tau, "private_noise": private_noise}.items():
        if value is not None:
            check_finite(name, value)  # the training settings are checked by TrainConfig
    if not (np.isfinite(checkpoint_every) and checkpoint_every >= 0):
        raise ValueError(f"Expected checkpoint_every >= 0 seconds; got {checkpoint_every}.")
    if resume and overwrite:
        raise RunError("Expected at most one of --resume and --overwrite; got both.")
    target = load_target(system, params)
    explicit = dict(neurons=neurons, seed=seed, tau=tau, private_noise=private_noise)
    explicit.update(train_settings)
    path = Path(default_run_folder(target, neurons) if out is None else out)
    with hold_folder(path, create=not resume):  # checked and written by this command alone
        return _train_run(path, system, target, params, explicit, resume, overwrite,
                          checkpoint_every, progress)  # fmt: skip


def _train_run(path, system, target, params, explicit, resume, overwrite, checkpoint_every,
               progress) -> TrainedRun:  # fmt: skip
    if resume:
        if not (path / "config.json").is_file():
            raise RunError(f"Nothing to resume in {path} (no config.json); drop --resume.")
        stored = read_config(path)
        dtype = stored.get("environment", {}).get("dtype")
        if dtype is not None and dtype != str(jnp.zeros(()).dtype):
            raise RunError(
                f"{path} was trained in {dtype} and JAX now computes in "
                f"{jnp.zeros(()).dtype}; set JAX_ENABLE_X64 as it was to resume it."
            )
        stored_target = stored["settings"]["target"]
        if (
            params is None
            and stored_target["params"]
            and is_target_file(system) == (stored_target["kind"] == "file")
        ):
            params = stored_target["params"]  # resume with the run's own parameters
            target = load_target(system, params)
        settings = resumed_settings(stored["settings"], target_spec(system, params), explicit)
        diff = differences(stored["settings"], settings)
        if diff:
            raise RunError(
                f"{path} holds a different run ({'; '.join(diff)}); resume it with its own "
                "settings, or start again with --overwrite."
            )
        if (path / "model.eqx").is_file():
            return load_run(path)
        start = _start(path, target, settings, resume=True)
    else:
        settings = settings_for(target, target_spec(system, params), explicit)
        check_folder(path, settings, overwrite=overwrite)
        start = _start(path, target, settings, resume=False)
        _write_new_run(path, system, target, settings, overwrite=overwrite)
    if start.pool_is_new:
        save_pool(path / "pool.npy", start.pool)
    return _train(path, target, start, checkpoint_every, progress)


def _write_new_run(path: Path, system: str, target: Target, settings: dict, *, overwrite: bool):
    if overwrite:
        clear(path)
    path.mkdir(parents=True, exist_ok=True)
    source = Path(system.rpartition(":")[0]).resolve() if is_target_file(system) else None
    if source is not None:
        atomic_write_bytes(path / "target.py", source.read_bytes())
    atomic_write_json(path / "config.json", {
        "format": RUN_FORMAT,
        "system": system,
        "settings": settings,
        "target": {
            "name": target.name, "dim": target.dim, "noise_dim": target.noise_dim,
            "additive_noise": target.additive, "paper_neurons": target.paper_neurons,
            "box_low": target.box_low.tolist(), "box_high": target.box_high.tolist(),
            **({"source": str(source)} if source is not None else {}),
            **({"coordinates": list(target.coordinates)} if target.coordinates else {}),
        },
        "environment": environment(),
        "created": now(),
    })  # fmt: skip


def _monitor_points(target: Target, pool) -> jax.Array:
    box = sample_box(jr.key(0), target, 2048)  # fixed: for progress only, not training
    return box if pool is None else jnp.concatenate([pool[:2048], box])


def _train(path: Path, target: Target, start: _Start, checkpoint_every, progress) -> TrainedRun:
    config, plan, model, pool = start.config, start.plan, start.model, start.pool
    skeletons = {
        "drift": init_train_state(model, config),
        "noise": init_train_state(model, config, noise=True),
    }
    remove_stale_temporaries(path)
    ckpt_file = path / "checkpoint.eqx"
    phase, state = "drift", skeletons["drift"]
    losses, noise_losses, elapsed = np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0
    remedy_history = None
    started = time.monotonic()
    if ckpt_file.is_file():
        header, state, losses, noise_losses = read_checkpoint(ckpt_file, skeletons)
        phase, elapsed = header["phase"], header["elapsed"]
        remedy_history = header.get("remedy")
        info = header.get("closed_form", {"method": config.method})
    else:  # the closed form (methods "lstsq...") is the start of drift matching
        model, info = drift_start(model, target, pool, plan, config)
        state = init_train_state(model, config)
    monitor = _monitor_points(target, pool)
    has_noise_phase = model.noise_readout is not None

    # the latest completed state, replaced in one store so an interrupt never splits it
    last = {"snap": (state, losses, noise_losses), "saved": True, "time": started}
    last["remedy"] = remedy_history  # checkpointed once the remedy has run

    def checkpoint(phase):
        now_elapsed = elapsed + time.monotonic() - started
        write_checkpoint(
            ckpt_file, phase, *last["snap"], now_elapsed, remedy=last["remedy"], closed_form=info
        )
        last["time"], last["saved"] = time.monotonic(), True

    def on_chunk(phase, total):
        def callback(state, chunk_losses):
            _, drift, noise = last["snap"]
            if phase == "drift":
                drift = np.concatenate([drift, chunk_losses])
            else:
                noise = np.concatenate([noise, chunk_losses])
            last["snap"] = (state, drift, noise)
            last["saved"] = False
            step = int(state.step)
            due = time.monotonic() - last["time"] >= checkpoint_every or step == total
            if due:
                checkpoint(phase)
            if progress is not None:
                err_fn = drift_error if phase == "drift" else diffusion_error
                progress(TrainProgress(
                    phase, step, total, float(np.mean(chunk_losses)),
                    float(err_fn(state.model, target, monitor)), due,
                    elapsed + time.monotonic() - started,
                ))  # fmt: skip

        return callback

    def remedy_progress(settings, census=None, state=None, chunk_losses=None):
        if progress is None:
            return
        done = last.setdefault("remedy_steps", 0)
        loss = err = float("nan")
        if state is not None:
            last["remedy_steps"] = done = done + len(chunk_losses)
            loss = float(np.mean(chunk_losses))
            err = float(drift_error(state.model, target, monitor))
        progress(TrainProgress(
            "remedy", done, settings.remedy_rounds * settings.remedy_steps, loss, err, False,
            elapsed + time.monotonic() - started, census,
        ))  # fmt: skip

    try:
        if phase == "drift":
            if adam_steps(config):
                state, _ = run_training(
                    state, target, key=plan.drift_key, config=config, pool=pool,
                    on_chunk=on_chunk("drift", config.steps),
                )  # fmt: skip
            if not last["saved"]:
                checkpoint("drift")
            if config.method == "lstsq+adam":  # the ridge refit, redone on a resume from here
                refit, info = drift_finish(state.model, target, pool, plan, config, info)
                state = eqx.tree_at(lambda s: s.model, state, refit)
                last["snap"] = (state, *last["snap"][1:])
            settings = remedy_settings(config, target, key=plan.census_applies_key)
            if settings is not None:  # interrupted, a resume redoes it, bit for bit
                progress_of = partial(remedy_progress, settings)
                net, remedy_losses, last["remedy"], info = remedy(
                    state.model, target, pool, plan, config, info, settings=settings,
                    on_round=lambda census: progress_of(census=census),
                    on_chunk=lambda s, losses: progress_of(state=s, chunk_losses=losses),
                )  # fmt: skip
                state = eqx.tree_at(lambda s: s.model, state, net)
                last["snap"] = (state, np.concatenate([last["snap"][1], remedy_losses]),
                                last["snap"][2])  # fmt: skip
                phase = "remedy"
                checkpoint("remedy")
        if phase != "noise" and has_noise_phase:
            phase = "noise"
            noisy = solve_noise_readout(state.model, target, key=plan.noise_fit_key, config=config)
            state = init_train_state(noisy, config, noise=True)
            last["snap"] = (state, *last["snap"][1:])
            checkpoint("noise")
        if phase == "noise":
            state, _ = run_training(
                state, target, key=plan.noise_key, config=plan.noise_config, noise=True,
                on_chunk=on_chunk("noise", config.noise_steps),
            )  # fmt: skip
            if not last["saved"]:
                checkpoint("noise")
    except KeyboardInterrupt:
        if not last["saved"]:  # keep the work of the last completed chunk
            checkpoint(phase)
        raise
    _, losses, noise_losses = last["snap"]
    remedy_history = last["remedy"]
    model = state.model
    total_elapsed = elapsed + time.monotonic() - started
    write_losses(path, losses, noise_losses)
    summary = {
        "steps": int(losses.size), "noise_steps": int(noise_losses.size),
        "train_seconds": round(total_elapsed, 3),
        "final_loss": float(np.mean(losses[-min(100, losses.size):])) if losses.size else None,
        "method": config.method,
        **({"closed_form": info} if config.method != "adam" or "census_fallback" in info else {}),
        "max_abs_W_s": float(np.max(np.abs(np.asarray(model.W_s)))),
        "drift_error_monitor": float(drift_error(model, target, monitor)),
        "diffusion_error_monitor": float(diffusion_error(model, target, monitor)),
        "remedy_rounds": config.remedy_rounds,
        "census": census_outcome(remedy_history),
        **({"remedy": remedy_history} if remedy_history is not None else {}),
        "finished": now(),
    }  # fmt: skip
    atomic_write_json(path / "training.json", summary)
    save_model(path / "model.eqx", model)  # last: its presence means training finished
    noise_losses = noise_losses if has_noise_phase else None
    return TrainedRun(path, read_config(path), target, model, losses, noise_losses, summary)
