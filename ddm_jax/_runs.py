"""Run folders: where a run lives, how it is read back, and what it holds.

This module and the two that build on it are the engine of the ``ddm-jax`` command line;
every subcommand is a thin wrapper over one function of theirs (`train_run` in
``_training_runs.py``; `simulate_run`, `evaluate_run` and `export_run` in
``_run_outputs.py``; `run_status` here), so a Python session can do exactly what the shell
does. A run folder is self-describing:

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
import json
import os
import platform
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._io import CorruptFileError, load_model, load_weights
from ._matching import TrainConfig
from ._network import LowRankRNN
from ._systems import SYSTEMS, make_target, system_defaults
from ._targets import Target

RUN_FORMAT = "ddm-jax-run/1"
CHECKPOINT_FORMAT = "ddm-jax-checkpoint/1"
RUN_FILES = (
    "config.json", "target.py", "pool.npy", "checkpoint.eqx", "model.eqx", "losses.npz",
    "training.json", "simulation.npz", "metrics.json", "report.md", "weights.npz",
)  # fmt: skip
FIGURES = ("latent", "neurons", "drift_field", "loss", "marginals", "residual")
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


# ---------------------------------------------------------------- config.json


def _jsonable(obj):
    """Tuples to lists, arrays to lists, via a JSON round trip (how config.json stores it)."""
    return json.loads(json.dumps(obj, default=lambda a: np.asarray(a).tolist()))


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


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
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


def default_run_folder(target: Target, neurons: int | None = None) -> Path:
    """``runs/<target name>-<neurons>``; neurons default to the paper's size, else 64."""
    n = (target.paper_neurons or 64) if neurons is None else neurons
    return Path("runs") / f"{target.name}-{n}"


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


# ---------------------------------------------------------------- status


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
