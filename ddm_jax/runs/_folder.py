"""The run folder itself: its files, ``config.json``, checks shared by every command.

What a command computes lives in its own module beside this one.
"""

import datetime
import importlib.metadata
import json
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..io import CorruptFileError
from ..simulation import check_grid, check_solver

RUN_FORMAT = "ddm-jax-run/1"
RUN_FILES = (
    "config.json", "target.py", "pool.npy", "checkpoint.eqx", "model.eqx", "losses.npz",
    "training.json", "simulation.npz", "metrics.json", "report.md", "weights.npz",
    "moments.json", "data.npz", "data.npy", "data.nwb", "analysis.json", "memory.json",
    "latents.npz",
)  # fmt: skip
# figures/*.png, by the command that draws them; --overwrite clears all of them
FIGURES = ("latent", "neurons", "drift_field", "loss", "marginals", "residual", "census")
ANALYSIS_FIGURES = ("energy_fields", "epr", "explained_variance", "recovered")
MEMORY_FIGURES = ("memory_switching", "memory_recall", "memory_occupancy")


class RunError(ValueError):
    """A run folder cannot be used as asked: missing, unfinished, or holding another run."""


def check_finite(name: str, value) -> None:
    """Raise a one-line `ValueError` unless ``value`` is a finite number or array."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected a number or an array for {name}; got {value!r}.") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Expected finite values for {name}; got {value!r}.")


def check_count(name: str, value, minimum: int) -> None:
    """Raise a one-line `ValueError` unless ``value`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"Expected {name} to be an integer >= {minimum}; got {value!r}.")


def check_simulation(
    additive: bool,
    *,
    solver: str,
    time: float,
    dt: float,
    save_dt: float | None,
    burn_in: float | None = None,
) -> None:
    """The checks the simulation engine makes, made before a command writes anything."""
    for name, value in {"time": time, "dt": dt, "save_dt": save_dt, "burn_in": burn_in}.items():
        if value is not None:
            check_finite(name, value)
    check_solver(solver, additive)
    check_grid(time, dt, save_dt)  # burn_in is checked by the core, before it simulates


# ---------------------------------------------------------------- config.json


def jsonable(obj):
    """Tuples to lists, arrays to lists, via a JSON round trip (how config.json stores it)."""
    return json.loads(json.dumps(obj, default=lambda a: np.asarray(a).tolist()))


def environment() -> dict:
    """Package versions, device, machine and dtype, as recorded in ``config.json``."""

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


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def read_json(path: Path) -> dict:
    """A JSON file of the run, or `CorruptFileError` naming it."""
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptFileError(
            f"{path}: expected JSON; it is corrupt or truncated ({err})."
        ) from err


def read_config(path: Path) -> dict:
    """The run's ``config.json``, checked to be a ddm-jax run configuration."""
    config = read_json(path / "config.json")
    if config.get("format") != RUN_FORMAT or "settings" not in config:
        raise CorruptFileError(
            f"{path / 'config.json'}: expected a ddm-jax run configuration ({RUN_FORMAT})."
        )
    return config


# ---------------------------------------------------------------- clearing


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files of atomic writes that a hard kill (SIGKILL, power loss) left behind."""
    for name in RUN_FILES:
        for tmp in path.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def clear(path: Path) -> None:
    """Delete ddm-jax's own files from ``path`` (and nothing else)."""
    remove_stale_temporaries(path)
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    if (path / "figures").is_dir():
        for name in FIGURES + ANALYSIS_FIGURES + MEMORY_FIGURES:
            (path / "figures" / f"{name}.png").unlink(missing_ok=True)
