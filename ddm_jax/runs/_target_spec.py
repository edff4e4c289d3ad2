"""Which target a run embeds: a registered system, ``dysts:Name`` or ``path/to/file.py:name``.

``config.json`` identifies a registered target by name and parameters, a dysts flow by its
name and `from_dysts` options, a file target by its attribute, parameters and the content
hash of the copy kept as ``target.py``.
"""

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

from ..io import CorruptFileError
from ..targets import (
    SYSTEMS,
    DystsError,
    Target,
    dysts_metadata,
    from_dysts,
    make_target,
    system_defaults,
)
from ._folder import RunError, check_finite


def is_dysts(system: str) -> bool:
    return system.startswith("dysts:")


def dysts_target(system: str, params: dict) -> Target:
    try:
        return from_dysts(system.removeprefix("dysts:"), **params)
    except DystsError as err:
        raise RunError(str(err)) from err
    except TypeError as err:
        raise RunError(f"{system}: cannot pass parameters {sorted(params)} ({err}).") from err


def dysts_params(system: str, params: dict | None) -> dict:
    """The `from_dysts` options a config keeps: the given ones, and ``phases`` where it counts.

    A flow with phases records how they were embedded (the default, unless given), so that
    the run rebuilds the same target should the default change.
    """
    params = dict(params or {})
    if (
        "phases" not in params
        and dysts_metadata(system.removeprefix("dysts:"))["unbounded_indices"]
    ):
        params = {"phases": inspect.signature(from_dysts).parameters["phases"].default, **params}
    return params


def is_target_file(system: str) -> bool:
    file, sep, _ = system.rpartition(":")
    return bool(sep) and file.endswith(".py")


def import_target(file: Path, attr: str, params: dict, label: str, search: Path) -> Target:
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
        check_finite(f"parameter {name!r}", value)
    if is_target_file(system):
        file, _, attr = system.rpartition(":")
        path = Path(file)
        if not path.is_file():
            raise RunError(f"Target file {file} not found (from {system!r}).")
        return import_target(path.resolve(), attr, params, system, path.resolve().parent)
    if is_dysts(system):
        return dysts_target(system, params)
    if system not in SYSTEMS:
        raise RunError(
            f"Unknown system {system!r}; known systems: {', '.join(SYSTEMS)} "
            "(or a dysts flow, dysts:Name, or a target file, path/to/file.py:name)."
        )
    return make_target(system, **params)


def target_spec(system: str, params: dict | None) -> dict:
    """How config.json identifies the target (file targets by content hash)."""
    if is_target_file(system):
        source = Path(system.rpartition(":")[0])
        return {
            "kind": "file", "attr": system.rpartition(":")[2], "params": dict(params or {}),
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        }  # fmt: skip
    if is_dysts(system):
        return {"kind": "dysts", "name": system, "params": dysts_params(system, params)}
    return {"kind": "registry", "name": system,
            "params": {**system_defaults(system), **(params or {})}}  # fmt: skip


def target_from_config(path: Path, config: dict) -> Target:
    spec = config["settings"]["target"]
    if spec["kind"] == "registry":
        return make_target(spec["name"], **spec["params"])
    if spec["kind"] == "dysts":
        return dysts_target(spec["name"], spec["params"])
    copy = path / "target.py"
    if not copy.is_file():
        raise RunError(f"{path}: the run's target file copy target.py is missing.")
    if hashlib.sha256(copy.read_bytes()).hexdigest() != spec["sha256"]:
        raise CorruptFileError(f"{copy}: its contents differ from the file the run was trained on.")
    source = config["target"].get("source")  # the original's folder, for its own imports
    search = Path(source).parent if source and Path(source).parent.is_dir() else path
    label = f"{config['system']} (copy in {copy})"
    return import_target(copy.resolve(), spec["attr"], spec["params"], label, search)
