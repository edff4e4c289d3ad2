"""Run folders: train, simulate, evaluate and export from files, resumably.

This is the engine of the ``ddm-jax`` command line; every subcommand is a thin wrapper over
one function here, so a Python session can do exactly what the shell does. A run folder is
self-describing:

- ``config.json``: every setting, the package and JAX versions, the device and the date;
- ``target.py``: a copy of the user's target file (user-defined targets only);
- ``pool.npy``: the attractor points training samples from (kept, so a resume reuses them);
- ``checkpoint.eqx``: training state and loss history, rewritten atomically as training goes;
- ``model.eqx``: the trained network, written last (its presence means training finished);
- ``losses.npz``, ``training.json``: loss per step, wall time and final errors;
- ``simulation.npz``: written by `simulate_run`;
- ``metrics.json``, ``report.md``, ``figures/*.png``: written by `evaluate_run`;
- ``weights.npz``: written by `export_run` (SPEC section 10).

Every file is written atomically (temporary name, then rename), so an interrupted command
never leaves a half-written file in place of a good one.
"""

import dataclasses
import datetime
import hashlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ._fidelity import FidelityReport, fidelity_report
from ._io import (
    CorruptFileError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    export_weights,
    load_model,
    load_weights,
    save_model,
)
from ._matching import (
    TrainConfig,
    TrainState,
    attractor_points,
    diffusion_error,
    drift_error,
    init_train_state,
    run_training,
    sample_box,
)
from ._network import LowRankRNN, init_network
from ._plotting import (
    plot_drift_field,
    plot_losses,
    plot_marginals,
    plot_neurons,
    plot_residual,
    plot_trajectories,
    save_figure,
)
from ._simulate import simulate_network, simulate_target
from ._targets import SYSTEMS, Target, make_target, system_defaults

RUN_FORMAT = "ddm-jax-run/1"
CHECKPOINT_FORMAT = "ddm-jax-checkpoint/1"
RUN_FILES = (
    "config.json", "target.py", "pool.npy", "checkpoint.eqx", "model.eqx", "losses.npz",
    "training.json", "simulation.npz", "metrics.json", "report.md", "weights.npz",
)  # fmt: skip
FIGURES = ("latent", "neurons", "drift_field", "loss", "marginals", "residual")
EXPORT_FORMATS = ("npz",)
_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


class RunError(ValueError):
    """A run folder cannot be used as asked: missing, unfinished, or holding another run."""


# ---------------------------------------------------------------- targets from a spec


def _finite(name: str, value) -> None:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected a number or an array for {name}; got {value!r}.") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Expected finite values for {name}; got {value!r}.")


def _jsonable(obj):
    """Tuples to lists, arrays to lists, via a JSON round trip (how config.json stores it)."""
    return json.loads(json.dumps(obj, default=lambda a: np.asarray(a).tolist()))


def _is_target_file(system: str) -> bool:
    file, sep, _ = system.rpartition(":")
    return bool(sep) and file.endswith(".py")


def _import_target(file: Path, attr: str, params: dict, label: str, search: Path) -> Target:
    module_name = "_ddm_user_target_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise RunError(f"{label}: cannot import {file} as a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(search))  # so the user's file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except ValueError as err:  # from_callables: shapes or values
        raise RunError(f"{label}: {err}") from err
    except Exception as err:
        raise RunError(f"{label}: importing {file} failed ({type(err).__name__}: {err}).") from err
    finally:
        sys.path.remove(str(search))
    if not hasattr(module, attr):
        raise RunError(
            f"{label}: {file.name} defines no {attr!r}; expected a Target or a function "
            "returning one."
        )
    obj = getattr(module, attr)
    if isinstance(obj, Target):
        if params:
            raise RunError(
                f"{label} is a Target object and takes no parameters; got {sorted(params)}. "
                "Define a function returning a Target to accept parameters."
            )
        return obj
    if not callable(obj):
        raise RunError(f"{label}: expected a Target or a function returning one; got {obj!r}.")
    try:
        inspect.signature(obj).bind(**params)
    except TypeError as err:
        raise RunError(f"{label}: cannot pass parameters {sorted(params)} ({err}).") from err
    try:
        target = obj(**params)
    except ValueError as err:
        raise RunError(f"{label}: {err}") from err
    if not isinstance(target, Target):
        raise RunError(
            f"{label}: expected the function to return a Target (see ddm_jax.from_callables); "
            f"got {type(target).__name__}."
        )
    return target


def load_target(system: str, params: dict | None = None) -> Target:
    """The target named by ``system``: a registered name or ``path/to/file.py:name``.

    A target file must define ``name`` as a `Target` (e.g. from `from_callables`) or as a
    function returning one; ``params`` are passed to a registered constructor or to that
    function as keyword arguments.

    Raises:
        RunError: for an unknown name, a missing file or attribute, or a bad target.
        ValueError: for unknown or non-finite parameters.
    """
    params = dict(params or {})
    for name, value in params.items():
        _finite(f"parameter {name!r}", value)
    if _is_target_file(system):
        file, _, attr = system.rpartition(":")
        path = Path(file)
        if not path.is_file():
            raise RunError(f"Target file {file} not found (from {system!r}).")
        return _import_target(path.resolve(), attr, params, system, path.resolve().parent)
    if system not in SYSTEMS:
        raise RunError(
            f"Unknown system {system!r}; known systems: {', '.join(SYSTEMS)} "
            "(or a target file, path/to/file.py:name)."
        )
    return make_target(system, **params)


# ---------------------------------------------------------------- the run folder


@dataclasses.dataclass
class TrainedRun:
    """A finished run folder, loaded.

    Attributes:
        path: the folder.
        config: the contents of ``config.json``.
        target: the target SDE, rebuilt from the config.
        model: the trained network.
        losses: drift-matching loss per step.
        noise_losses: diffusion-matching loss per step (state-dependent noise), else None.
        training: the contents of ``training.json`` (steps, wall time, final errors).
    """

    path: Path
    config: dict
    target: Target
    model: LowRankRNN
    losses: np.ndarray
    noise_losses: np.ndarray | None
    training: dict


@dataclasses.dataclass(frozen=True)
class TrainProgress:
    """What a `train_run` progress callback receives after every chunk of steps.

    Attributes:
        phase: ``"drift"`` or ``"noise"`` (diffusion matching of state-dependent noise).
        step: steps done in this phase.
        total: steps of this phase.
        loss: mean loss over the last chunk.
        rel_error: relative L2 drift (or diffusion) error on fixed monitor points.
        checkpoint: whether a checkpoint was written after this chunk.
        elapsed: training seconds so far, over all sessions of this run.
    """

    phase: str
    step: int
    total: int
    loss: float
    rel_error: float
    checkpoint: bool
    elapsed: float


def _environment() -> dict:
    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    device = jax.devices()[0]
    return {
        "ddm_jax": version("ddm-jax"),
        **{name: version(name) for name in ("jax", "jaxlib", "equinox", "optax", "diffrax")},
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": f"{device.platform}: {device.device_kind}",
        "machine": platform.machine(),
        "dtype": str(jnp.zeros(()).dtype),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptFileError(
            f"{path}: expected JSON; it is corrupt or truncated ({err})."
        ) from err


def _read_config(path: Path) -> dict:
    config = _read_json(path / "config.json")
    if config.get("format") != RUN_FORMAT or "settings" not in config:
        raise CorruptFileError(
            f"{path / 'config.json'}: expected a ddm-jax run configuration ({RUN_FORMAT})."
        )
    return config


def _target_from_config(path: Path, config: dict) -> Target:
    spec = config["settings"]["target"]
    if spec["kind"] == "registry":
        return make_target(spec["name"], **spec["params"])
    copy = path / "target.py"
    if not copy.is_file():
        raise RunError(f"{path}: the run's target file copy target.py is missing.")
    if hashlib.sha256(copy.read_bytes()).hexdigest() != spec["sha256"]:
        raise CorruptFileError(f"{copy}: its contents differ from the file the run was trained on.")
    source = config["target"].get("source")  # the original's folder, for its own imports
    search = Path(source).parent if source and Path(source).parent.is_dir() else path
    label = f"{config['system']} (copy in {copy})"
    return _import_target(copy.resolve(), spec["attr"], spec["params"], label, search)


def _needs_model(path: Path) -> Path:
    if not (path / "config.json").is_file():
        raise RunError(f"{path} is not a ddm-jax run folder (no config.json).")
    if not (path / "model.eqx").is_file():
        raise RunError(
            f"{path} holds no trained model (model.eqx); finish training with "
            f"`ddm-jax train {_read_config(path)['system']} --out {path} --resume`."
        )
    return path / "model.eqx"


def load_run(path: str | os.PathLike) -> TrainedRun:
    """Load a finished run folder: config, target, model and loss history.

    Raises:
        RunError: when the folder is not a run or training has not finished.
        CorruptFileError: when one of its files is corrupt or truncated (named).
    """
    path = Path(path)
    model_file = _needs_model(path)
    config = _read_config(path)
    model = load_model(model_file)
    losses = np.zeros(0)
    noise_losses = None
    if (path / "losses.npz").is_file():
        try:
            with np.load(path / "losses.npz") as data:
                losses = data["drift"]
                noise_losses = data["noise"] if data["noise"].size else None
        except Exception as err:
            raise CorruptFileError(
                f"{path / 'losses.npz'}: expected arrays 'drift' and 'noise'; it is corrupt "
                f"or truncated ({type(err).__name__}: {err})."
            ) from err
    training = _read_json(path / "training.json") if (path / "training.json").is_file() else {}
    target = _target_from_config(path, config)
    return TrainedRun(path, config, target, model, losses, noise_losses, training)


# ---------------------------------------------------------------- checkpoints


def _write_checkpoint(path: Path, phase: str, state: TrainState, losses, noise_losses, elapsed):
    payload = io.BytesIO()
    eqx.tree_serialise_leaves(payload, state)
    np.save(payload, np.asarray(losses, dtype=np.float32))
    np.save(payload, np.asarray(noise_losses, dtype=np.float32))
    data = payload.getvalue()
    header = {
        "format": CHECKPOINT_FORMAT, "phase": phase, "step": int(state.step),
        "elapsed": elapsed, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }  # fmt: skip
    atomic_write_bytes(path, (json.dumps(header) + "\n").encode() + data)


def read_checkpoint_header(path: str | os.PathLike) -> dict:
    """The JSON header of a checkpoint (phase, step, elapsed) after checking its checksum.

    Raises:
        CorruptFileError: when the file is truncated or corrupt.
    """
    path = Path(path)
    raw = path.read_bytes()
    line, _, data = raw.partition(b"\n")
    try:
        header = json.loads(line)
        if header.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {header.get('format')!r}")
    except (ValueError, UnicodeDecodeError, AttributeError) as err:
        raise CorruptFileError(
            f"{path}: expected a ddm-jax checkpoint ({CHECKPOINT_FORMAT}); the header is "
            f"corrupt ({err})."
        ) from err
    if len(data) != header.get("bytes"):
        raise CorruptFileError(
            f"{path}: truncated checkpoint ({len(data)} of {header.get('bytes')} bytes); "
            "delete it to restart training, or use --overwrite."
        )
    if hashlib.sha256(data).hexdigest() != header.get("sha256"):
        raise CorruptFileError(
            f"{path}: corrupt checkpoint (checksum mismatch); delete it to restart training, "
            "or use --overwrite."
        )
    return header


def _read_checkpoint(path: Path, skeletons: dict[str, TrainState]):
    header = read_checkpoint_header(path)
    data = io.BytesIO(path.read_bytes().partition(b"\n")[2])
    try:
        state = eqx.tree_deserialise_leaves(data, skeletons[header["phase"]])
        losses = np.load(data)
        noise_losses = np.load(data)
    except Exception as err:
        raise CorruptFileError(
            f"{path}: the checkpoint does not match this run's network "
            f"({type(err).__name__}: {err})."
        ) from err
    if int(state.step) != header["step"]:
        raise CorruptFileError(f"{path}: step {int(state.step)} != header step {header['step']}.")
    return header, state, losses, noise_losses


# ---------------------------------------------------------------- training


def _settings(target: Target, target_spec: dict, explicit: dict) -> dict:
    """Settings of a new run: the given ones, defaults for the rest (validated)."""
    train = {k: explicit[k] for k in _TRAIN_FIELDS if explicit.get(k) is not None}
    neurons = explicit.get("neurons")
    settings = {
        "target": target_spec,
        "neurons": (target.paper_neurons or 64) if neurons is None else neurons,
        "seed": 0, "tau": 1.0, "private_noise": 0.0,
        "train": TrainConfig(**train).to_dict(),  # validates with specific messages
    }  # fmt: skip
    settings.update({k: explicit[k] for k in ("seed", "tau", "private_noise")
                     if explicit.get(k) is not None})  # fmt: skip
    return _jsonable(settings)


def _resumed_settings(stored: dict, target_spec: dict, explicit: dict) -> dict:
    """Settings to resume with: the stored ones, overridden by those given explicitly."""
    wanted = json.loads(json.dumps(stored))
    wanted["target"] = target_spec
    for key in ("neurons", "seed", "tau", "private_noise"):
        if explicit.get(key) is not None:
            wanted[key] = explicit[key]
    wanted["train"].update({k: explicit[k] for k in _TRAIN_FIELDS if explicit.get(k) is not None})
    TrainConfig(**wanted["train"])  # validates with specific messages
    return _jsonable(wanted)


def _differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {json.dumps(a)} there, {json.dumps(b)} asked")
    return out


def _clear(path: Path) -> None:
    _remove_stale_temporaries(path)
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    if (path / "figures").is_dir():
        for name in FIGURES:
            (path / "figures" / f"{name}.png").unlink(missing_ok=True)


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of atomic writes that a hard kill (SIGKILL, power loss) left behind."""
    for name in RUN_FILES:
        for tmp in path.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def _describe(path: Path) -> str:
    if (path / "model.eqx").is_file():
        return "finished"
    if (path / "checkpoint.eqx").is_file():
        try:
            header = read_checkpoint_header(path / "checkpoint.eqx")
            return f"interrupted in {header['phase']} matching at step {header['step']}"
        except CorruptFileError:
            return "interrupted, with a corrupt checkpoint"
    return "not started"


def _prepare_folder(path: Path, settings: dict, *, overwrite: bool) -> None:
    """Check the output folder of a new run; clear it with ``overwrite``."""
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} exists and is not a folder.")
    has_run = (path / "config.json").is_file()
    if has_run and not overwrite:
        stored = _read_config(path)
        diff = _differences(stored["settings"], settings)
        what = f"a different run ({'; '.join(diff)})" if diff else "this run"
        raise RunError(
            f"{path} already holds {what}, {_describe(path)}; pass --overwrite to replace it"
            + ("." if diff else " or --resume to continue it.")
        )
    if not has_run and path.is_dir() and any(path.iterdir()) and not overwrite:
        raise RunError(
            f"{path} is not empty and holds no ddm-jax run; choose another --out or pass "
            "--overwrite (only ddm-jax's own files are ever deleted)."
        )
    if overwrite:
        _clear(path)


def _monitor_points(target: Target, pool) -> jax.Array:
    box = sample_box(jr.key(0), target, 2048)  # fixed: for progress only, not training
    return box if pool is None else jnp.concatenate([pool[:2048], box])


def _load_pool(path: Path, target: Target):
    try:
        pool = np.load(path, allow_pickle=False)
    except Exception as err:
        raise CorruptFileError(
            f"{path}: expected a .npy array of attractor points; it is corrupt or truncated "
            f"({type(err).__name__}: {err})."
        ) from err
    if pool.ndim != 2 or pool.shape[1] != target.dim or not np.all(np.isfinite(pool)):
        raise CorruptFileError(
            f"{path}: expected finite attractor points of shape (N, {target.dim}); "
            f"got {pool.shape}."
        )
    return jnp.asarray(pool)


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
    network, and the attractor pool is saved in ``pool.npy``.

    Args:
        system: a registered name (see `SYSTEMS`) or ``path/to/file.py:name``.
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
    unknown = sorted(set(train_settings) - set(_TRAIN_FIELDS))
    if unknown:
        raise ValueError(f"Expected training settings among {list(_TRAIN_FIELDS)}; got {unknown}.")
    for name, value in {"tau": tau, "private_noise": private_noise}.items():
        if value is not None:
            _finite(name, value)  # the training settings are checked by TrainConfig
    if not (np.isfinite(checkpoint_every) and checkpoint_every >= 0):
        raise ValueError(f"Expected checkpoint_every >= 0 seconds; got {checkpoint_every}.")
    if resume and overwrite:
        raise RunError("Expected at most one of --resume and --overwrite; got both.")
    target = load_target(system, params)
    explicit = dict(neurons=neurons, seed=seed, tau=tau, private_noise=private_noise)
    explicit.update(train_settings)
    path = Path(default_run_folder(target, neurons) if out is None else out)
    if resume:
        if not (path / "config.json").is_file():
            raise RunError(f"Nothing to resume in {path} (no config.json); drop --resume.")
        stored = _read_config(path)
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
            and _is_target_file(system) == (stored_target["kind"] == "file")
        ):
            params = stored_target["params"]  # resume with the run's own parameters
            target = load_target(system, params)
        settings = _resumed_settings(stored["settings"], _target_spec(system, params), explicit)
        diff = _differences(stored["settings"], settings)
        if diff:
            raise RunError(
                f"{path} holds a different run ({'; '.join(diff)}); resume it with its own "
                "settings, or start again with --overwrite."
            )
        if (path / "model.eqx").is_file():
            return load_run(path)
    else:
        settings = _settings(target, _target_spec(system, params), explicit)
        _prepare_folder(path, settings, overwrite=overwrite)
        path.mkdir(parents=True, exist_ok=True)
        source = Path(system.rpartition(":")[0]).resolve() if _is_target_file(system) else None
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
            },
            "environment": _environment(),
            "created": _now(),
        })  # fmt: skip
    return _train(path, target, settings, checkpoint_every, progress)


def default_run_folder(target: Target, neurons: int | None = None) -> Path:
    """``runs/<target name>-<neurons>``; neurons default to the paper's size, else 64."""
    n = (target.paper_neurons or 64) if neurons is None else neurons
    return Path("runs") / f"{target.name}-{n}"


def _target_spec(system: str, params: dict | None) -> dict:
    """How config.json identifies the target (file targets by content hash)."""
    if _is_target_file(system):
        source = Path(system.rpartition(":")[0])
        return {
            "kind": "file", "attr": system.rpartition(":")[2], "params": dict(params or {}),
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        }  # fmt: skip
    return {"kind": "registry", "name": system,
            "params": {**system_defaults(system), **(params or {})}}  # fmt: skip


def _train(path, target, settings, checkpoint_every, progress) -> TrainedRun:
    config = TrainConfig(**settings["train"])
    box_config = dataclasses.replace(config, sampler="box")
    k_init, k_pool, k_drift, k_noise = jr.split(jr.key(settings["seed"]), 4)  # as in fit()
    model = init_network(
        target, settings["neurons"], key=k_init, tau=settings["tau"],
        private_noise=settings["private_noise"],
    )  # fmt: skip
    skeletons = {
        "drift": init_train_state(model, config),
        "noise": init_train_state(model, config, noise=True),
    }
    _remove_stale_temporaries(path)
    ckpt_file = path / "checkpoint.eqx"
    phase, state = "drift", skeletons["drift"]
    losses, noise_losses, elapsed = np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0
    if ckpt_file.is_file():
        header, state, losses, noise_losses = _read_checkpoint(ckpt_file, skeletons)
        phase, elapsed = header["phase"], header["elapsed"]
    pool = None
    if config.sampler != "box":
        if (path / "pool.npy").is_file():
            pool = _load_pool(path / "pool.npy", target)
        else:
            pool = attractor_points(target, key=k_pool)
            buf = io.BytesIO()
            np.save(buf, np.asarray(pool))
            atomic_write_bytes(path / "pool.npy", buf.getvalue())
    monitor = _monitor_points(target, pool)
    has_noise_phase = model.noise_readout is not None

    started = time.monotonic()
    # the latest completed state, replaced in one store so an interrupt never splits it
    last = {"snap": (state, losses, noise_losses), "saved": True, "time": started}

    def checkpoint(phase):
        now_elapsed = elapsed + time.monotonic() - started
        _write_checkpoint(ckpt_file, phase, *last["snap"], now_elapsed)
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

    try:
        if phase == "drift":
            state, _ = run_training(
                state, target, key=k_drift, config=config, pool=pool,
                on_chunk=on_chunk("drift", config.steps),
            )  # fmt: skip
            if not last["saved"]:
                checkpoint("drift")
            if has_noise_phase:
                phase = "noise"
                state = init_train_state(state.model, config, noise=True)
                last["snap"] = (state, *last["snap"][1:])
                checkpoint("noise")
        if phase == "noise":
            state, _ = run_training(
                state, target, key=k_noise, config=box_config, noise=True,
                on_chunk=on_chunk("noise", config.noise_steps),
            )  # fmt: skip
            if not last["saved"]:
                checkpoint("noise")
    except KeyboardInterrupt:
        if not last["saved"]:  # keep the work of the last completed chunk
            checkpoint(phase)
        raise
    _, losses, noise_losses = last["snap"]
    model = state.model
    total_elapsed = elapsed + time.monotonic() - started
    buf = io.BytesIO()
    np.savez(buf, drift=losses, noise=noise_losses)
    atomic_write_bytes(path / "losses.npz", buf.getvalue())
    summary = {
        "steps": int(losses.size), "noise_steps": int(noise_losses.size),
        "train_seconds": round(total_elapsed, 3),
        "final_loss": float(np.mean(losses[-min(100, losses.size):])) if losses.size else None,
        "drift_error_monitor": float(drift_error(model, target, monitor)),
        "finished": _now(),
    }  # fmt: skip
    if has_noise_phase:
        summary["diffusion_error_monitor"] = float(diffusion_error(model, target, monitor))
    atomic_write_json(path / "training.json", summary)
    save_model(path / "model.eqx", model)  # last: its presence means training finished
    noise_losses = noise_losses if has_noise_phase else None
    return TrainedRun(path, _read_config(path), target, model, losses, noise_losses, summary)


# ---------------------------------------------------------------- simulation


def model_from_weights(weights: dict[str, np.ndarray]) -> LowRankRNN:
    """Rebuild a network from the arrays of ``weights.npz`` (see `load_weights`).

    The noise becomes the constant latent factor ``Ghat = Gamma^+ noise`` (exact for additive
    noise; a state-dependent read-out is not part of the interchange format). When the file
    lacks ``centre``/``scale`` they are recovered from ``embed = Gamma S^-1`` and
    ``offset = b - embed c``.
    """
    w = {name: np.asarray(value, dtype=float) for name, value in weights.items()
         if name not in ("activation", "system")}  # fmt: skip
    gamma, embed = w["Gamma"], w["embed"]
    if "scale" in w and "centre" in w:
        scale, centre = w["scale"], w["centre"]
    else:  # embed = Gamma S^-1 column by column, offset = b - embed c
        scale = np.sum(gamma * embed, 0) / np.sum(embed * embed, 0)
        centre = np.linalg.lstsq(embed, w["b"] - w["offset"], rcond=None)[0]
    dtype = jnp.result_type(float)
    a = lambda x: jnp.asarray(x, dtype)
    return LowRankRNN(
        Gamma=a(gamma), W_s=a(w["W_s"]), b=a(w["b"]), centre=a(centre), scale=a(scale),
        noise_const=a(np.linalg.pinv(gamma) @ w["noise"]), noise_readout=None,
        private_noise=a(w.get("private_noise", 0.0)), tau=a(w["tau"]),
        activation=str(weights["activation"]),
    )  # fmt: skip


def residual_trace(model: LowRankRNN, xs) -> np.ndarray:
    """Off-subspace residual of each saved neuron state, ``(B, T)``.

    ``||(I - P)(x_t - b)|| / sqrt(mean_t ||x_t - b||^2)`` per trajectory, with P the
    orthogonal projector onto span(Gamma) (float64 NumPy, so it adds no rounding of its own).
    """
    d = np.asarray(xs, dtype=float) - np.asarray(model.b, dtype=float)
    q, _ = np.linalg.qr(np.asarray(model.Gamma, dtype=float))
    perp = np.linalg.norm(d - (d @ q) @ q.T, axis=-1)
    return perp / np.sqrt(np.mean(np.sum(d**2, axis=-1), axis=-1, keepdims=True))


def _side_by_side(model, target, z0s, *, key, t1, dt, save_dt, solver, neuron_trajectories):
    k_net, k_tgt, k_neu = jr.split(key, 3)
    sim = dict(t1=t1, dt=dt, save_dt=save_dt)
    net = simulate_network(model, z0s, key=k_net, solver=solver, **sim)
    ref = simulate_target(target, z0s, key=k_tgt, solver=solver, **sim)
    few = simulate_network(
        model, z0s[:neuron_trajectories], key=k_neu, solver=solver, keep_neurons=True, **sim
    )
    return net, ref, few


def simulate_run(
    run: str | os.PathLike,
    *,
    trajectories: int = 16,
    time: float = 20.0,
    dt: float = 1e-3,
    save_dt: float = 0.01,
    solver: str = "euler",
    seed: int = 0,
    neuron_trajectories: int = 2,
    neurons_kept: int = 8,
    weights: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Simulate the trained network (the full n-neuron SDE) and the target side by side.

    Both start from the same ``trajectories`` states of the target's stationary regime
    (`attractor_points`). A further ``neuron_trajectories`` network trajectories keep their
    neuron states, of which the first ``neurons_kept`` neurons and the off-subspace residual
    over time are saved. Writes ``simulation.npz`` in the run folder with ``ts (T,)``,
    ``z0 (B, k)``, ``target (B, T, k)``, ``network (B, T, k)`` (latent read-out in target
    coordinates), ``neurons (b, T, neurons_kept)``, ``neuron_ids``, ``residual_trace (b, T)``
    and the scalars ``residual``, ``residual_max`` of the whole ensemble.

    Args:
        run: the run folder.
        trajectories: ensemble size B.
        time: simulated time units.
        dt: fixed step (Euler-Maruyama by default).
        save_dt: interval between saved states.
        solver: one of `SOLVERS`.
        seed: PRNG seed of the initial states and the noise.
        neuron_trajectories: trajectories whose neuron states are kept.
        neurons_kept: neurons saved per kept trajectory.
        weights: simulate the network of this ``weights.npz`` instead of ``model.eqx``.

    Raises:
        SimulationDiverged: naming the time and trajectory where a state became non-finite.
    """
    loaded = load_run(run)
    model = loaded.model
    if weights is not None:
        model = model_from_weights(load_weights(weights))
        if model.k != loaded.target.dim:
            raise RunError(
                f"{weights}: a network with k = {model.k} latent dimensions cannot simulate "
                f"target {loaded.target.name!r} (k = {loaded.target.dim})."
            )
    for name, value in {"time": time, "dt": dt, "save_dt": save_dt}.items():
        _finite(name, value)
    if trajectories < 1 or neuron_trajectories < 0 or neurons_kept < 0:
        raise ValueError(
            f"Expected trajectories >= 1 and non-negative neuron counts; got {trajectories}, "
            f"{neuron_trajectories}, {neurons_kept}."
        )
    k_start, k_sim = jr.split(jr.key(seed))
    z0s = attractor_points(loaded.target, key=k_start, num=trajectories)
    net, ref, few = _side_by_side(
        model, loaded.target, z0s, key=k_sim, t1=time, dt=dt, save_dt=save_dt, solver=solver,
        neuron_trajectories=min(neuron_trajectories, trajectories) or 1,
    )  # fmt: skip
    keep = min(neurons_kept, model.n)
    out = {
        "ts": np.asarray(net.ts), "z0": np.asarray(z0s),
        "target": np.asarray(ref.zs), "network": np.asarray(net.zs),
        "neurons": np.asarray(few.xs[..., :keep])[:neuron_trajectories],
        "neuron_ids": np.arange(keep),
        "residual_trace": residual_trace(model, few.xs)[:neuron_trajectories],
        "residual": np.asarray(net.residual), "residual_max": np.asarray(net.residual_max),
    }  # fmt: skip
    buf = io.BytesIO()
    np.savez(buf, **out)
    atomic_write_bytes(Path(run) / "simulation.npz", buf.getvalue())
    return out


# ---------------------------------------------------------------- evaluation and export


def _clean_json(metrics: dict) -> dict:
    """Floats as they are; non-finite values as None (strict JSON has no NaN)."""
    return {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}


def _stationary(run, burn_in: float) -> np.ndarray:
    keep = np.asarray(run.ts) >= burn_in
    return np.asarray(run.zs)[:, keep].reshape(-1, run.zs.shape[-1])


def evaluate_run(
    run: str | os.PathLike,
    *,
    trajectories: int = 256,
    time: float = 20.0,
    burn_in: float = 5.0,
    dt: float = 1e-3,
    save_dt: float = 0.05,
    null_pairs: int = 3,
    solver: str = "euler",
    seed: int = 0,
    figures: bool = True,
    display_trajectories: int = 3,
) -> FidelityReport:
    """Measure a trained run against its target; write ``metrics.json``, ``report.md``, figures.

    Runs `fidelity_report` with these settings (SPEC section 9), then simulates
    ``display_trajectories`` trajectories from stationary target states for the figures,
    keeping the network's neuron states (``min(time, 20)`` time units saved every
    ``max(dt, 0.01)``). Everything is seeded, so evaluating again reproduces
    ``metrics.json`` and ``report.md`` exactly on the same machine.

    Figures (``figures/*.png``): ``latent`` (target and network trajectories side by side),
    ``neurons`` (a few neuron traces), ``drift_field`` (target vs network drift on a slice),
    ``loss`` (training loss), ``marginals`` (stationary histograms) and ``residual``
    (off-subspace residual over time).
    """
    loaded = load_run(run)
    path, model, target = loaded.path, loaded.model, loaded.target
    for name, value in {"time": time, "burn_in": burn_in, "dt": dt, "save_dt": save_dt}.items():
        _finite(name, value)
    if trajectories < 2 or null_pairs < 1:
        raise ValueError(
            f"Expected trajectories >= 2 and null_pairs >= 1; got {trajectories} and {null_pairs}."
        )
    k_report, k_display = jr.split(jr.key(seed))
    report = fidelity_report(
        model, target, key=k_report, trajectories=trajectories, t1=time, burn_in=burn_in,
        dt=dt, save_dt=save_dt, null_pairs=null_pairs, solver=solver,
    )  # fmt: skip
    settings = {**report.settings, "burn_in": burn_in, "seed": seed}
    atomic_write_json(path / "metrics.json", {
        "system": loaded.config["system"], "neurons": model.n,
        "settings": settings, "metrics": _clean_json(report.metrics),
    })  # fmt: skip
    names = [f"{name}.png" for name in FIGURES] if figures else []
    training = loaded.training
    train = loaded.config["settings"]["train"]
    lines = [
        f"# {loaded.config['system']} in {model.n} neurons",
        "",
        f"Trained by drift matching: {train['steps']} steps, batch {train['batch']}, "
        f"lr {train['lr']}, {train['sampler']} sampling, seed {loaded.config['settings']['seed']}"
        + (f", {training['train_seconds']:.1f} s" if "train_seconds" in training else "")
        + f". Evaluated with seed {seed}.",
        "",
        report.to_markdown(),
    ]
    lines += [f"![{name}](figures/{name})" for name in names]
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
    if figures:
        _figures(loaded, report, key=k_display, dt=dt, t1=min(time, 20.0),
                 solver=solver, trajectories=display_trajectories)  # fmt: skip
    return report


def _figures(loaded: TrainedRun, report: FidelityReport, *, key, dt, t1, solver, trajectories):
    path, model, target = loaded.path, loaded.model, loaded.target
    stationary = report.target_run.ts >= report.burn_in
    first = int(np.argmax(stationary))
    z0s = report.target_run.zs[:trajectories, first]
    net, ref, few = _side_by_side(
        model, target, z0s, key=key, t1=t1, dt=dt, save_dt=max(dt, 0.01), solver=solver,
        neuron_trajectories=min(trajectories, 2),
    )  # fmt: skip
    label = f"{target.name}, {model.n} neurons"
    target_samples = _stationary(report.target_run, report.burn_in)
    network_samples = _stationary(report.network_run, report.burn_in)
    figs = {
        "latent": plot_trajectories(
            np.asarray(ref.zs), np.asarray(net.zs), system=target.name, title=label
        ),
        "neurons": plot_neurons(net.ts, np.asarray(few.xs[0, :, :6]), title=label),
        "drift_field": plot_drift_field(
            target, model, at=target_samples.mean(0), samples=target_samples
        ),
        "loss": plot_losses(loaded.losses, loaded.noise_losses, title=label),
        "marginals": plot_marginals(
            target_samples, network_samples, system=target.name, title=label
        ),
        "residual": plot_residual(
            few.ts,
            residual_trace(model, few.xs),
            dt=dt,
            dtype=str(model.Gamma.dtype),
            title=label,
        ),
    }
    for name, fig in figs.items():
        save_figure(fig, path / "figures" / f"{name}.png")


def export_run(run: str | os.PathLike, format: str = "npz") -> Path:
    """Write the run's network in an interchange format; returns the file written.

    ``"npz"``: ``weights.npz`` (SPEC section 10), read back and checked after writing.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"Expected format in {EXPORT_FORMATS}; got {format!r}.")
    loaded = load_run(run)
    file = loaded.path / "weights.npz"
    export_weights(file, loaded.model, loaded.target.name)
    back = load_weights(file)
    if not np.array_equal(back["Gamma"], np.asarray(loaded.model.Gamma)):
        raise CorruptFileError(f"{file}: reading it back does not give the model's weights.")
    return file


def run_status(run: str | os.PathLike) -> dict:
    """What a run folder holds, checking every file it can read (for ``ddm-jax info``).

    Raises:
        RunError: when the folder is not a run.
        CorruptFileError: naming the first corrupt file.
    """
    path = Path(run)
    if not (path / "config.json").is_file():
        raise RunError(f"{path} is not a ddm-jax run folder (no config.json).")
    config = _read_config(path)
    status = {"system": config["system"], "neurons": config["settings"]["neurons"],
              "state": _describe(path), "created": config.get("created")}  # fmt: skip
    if (path / "checkpoint.eqx").is_file():
        header = read_checkpoint_header(path / "checkpoint.eqx")
        status["checkpoint"] = f"{header['phase']} step {header['step']}"
    if (path / "pool.npy").is_file():
        target = _target_from_config(path, config)
        status["pool"] = f"{_load_pool(path / 'pool.npy', target).shape[0]} points"
    if (path / "model.eqx").is_file():
        status["model"] = f"{load_model(path / 'model.eqx').n} neurons"
    if (path / "weights.npz").is_file():
        status["weights"] = f"{load_weights(path / 'weights.npz')['Gamma'].shape} Gamma"
    for name in ("training.json", "metrics.json"):
        if (path / name).is_file():
            status[name] = "ok" if _read_json(path / name) is not None else "empty"
    status["files"] = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    return status
