"""Choices measured on this machine at first use, remembered per machine and shape.

Used only when asked (``DDM_JAX_UPDATE=measure``, `fused_update`): a measured choice makes the
numbers depend on a stopwatch, so no default measures. Which of two equal forms of a
computation runs faster depends on the processor, not only on the shapes (a rule tuned on
one CPU was 1.4x off on another), so it is measured where it runs, once, and the answer is
kept: in memory for the process, and in a small JSON file (``$DDM_JAX_CACHE_DIR``, else
``$XDG_CACHE_HOME/ddm-jax``, else ``~/.cache/ddm-jax``) so the next process on the same
machine makes the same choice and gets the same numbers. An empty ``DDM_JAX_CACHE_DIR``
keeps the choices in memory only. The file is written atomically and a cache that cannot be
read or written is ignored: it only ever costs a measurement.
"""

import json
import os
import platform
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import jax

_FILE = "choices.json"
_chosen: dict[str, bool] = {}


@cache
def machine() -> str:
    """The processor (or accelerator) and JAX version a measured choice holds for."""
    device = jax.devices()[0]
    name = device.device_kind
    if device.platform == "cpu":
        name = f"{_cpu_model()} x{os.cpu_count()}"
    return f"{device.platform}:{name}:jax {jax.__version__}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir() -> Path | None:
    """Where ddm-jax keeps what it learns about this machine; None: keep nothing on disk."""
    if "DDM_JAX_CACHE_DIR" in os.environ:
        value = os.environ["DDM_JAX_CACHE_DIR"]
        return Path(value) if value else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ddm-jax"


def _load(folder: Path | None) -> dict:
    try:
        stored = json.loads((folder / _FILE).read_text()) if folder else {}
        return stored if isinstance(stored, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(folder: Path | None, key: str, value: bool) -> None:
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stored = _load(folder) | {key: value}  # another process may have added choices
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
            json.dump(stored, f, indent=1, sort_keys=True)
        os.replace(f.name, folder / _FILE)
    except OSError:
        pass


def recall(what: str) -> bool | None:
    """The choice for ``what`` remembered on this machine (in memory or on disk), else None."""
    key = f"{machine()} | {what}"
    if key not in _chosen:
        stored = _load(cache_dir()).get(key)
        if not isinstance(stored, bool):
            return None
        _chosen[key] = stored
    return _chosen[key]


def choose(what: str, measure: Callable[[], bool]) -> bool:
    """The choice for ``what`` on this machine: ``measure()`` at first use, then remembered."""
    remembered = recall(what)
    if remembered is not None:
        return remembered
    key = f"{machine()} | {what}"
    _chosen[key] = bool(measure())
    _store(cache_dir(), key, _chosen[key])
    return _chosen[key]
