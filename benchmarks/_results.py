"""Shared by the benchmark scripts: the run's stamp and writing JSON + markdown + PNG."""

import datetime
import os
import platform
import subprocess
from pathlib import Path

import diffrax
import jax
import matplotlib

import ddm_jax as ddm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
__all__ = ["RESULTS", "plt", "result_name", "stamp", "write_results"]


def _device() -> jax.Device:
    """The device JAX computes on by default (a script may pin the CPU)."""
    return jax.config.jax_default_device or jax.devices()[0]


def _commit() -> str | None:
    """The commit the benchmark ran on (``+dirty`` with uncommitted changes), None outside git."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        return head + ("+dirty" if git("status", "--porcelain", "--", "ddm_jax") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def stamp() -> dict:
    """Device, versions, dtype, date, commit and the machine's load when this run started."""
    device = _device()
    count = len(jax.devices(device.platform))
    return {
        "commit": _commit(),
        "load": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "device": f"{device.platform}: {device.device_kind}, {count} device(s), "
        f"{os.cpu_count()} CPU cores",
        "machine": platform.machine(),
        "jax": jax.__version__,
        "diffrax": diffrax.__version__,
        "ddm_jax": ddm.__version__,
        "dtype": str(jax.numpy.zeros(()).dtype),
        "date": datetime.date.today().isoformat(),
    }


def result_name(name: str) -> str:
    """NAME on the CPU, NAME-gpu (NAME-PLATFORM) elsewhere: results of both are kept."""
    platform = _device().platform
    return name if platform == "cpu" else f"{name}-{platform}"


def write_results(name: str, data: dict, table: str, plot_fn) -> None:
    """Write results/NAME.json, NAME.md (stamp, then the table) and NAME.png, atomically.

    On an accelerator NAME becomes NAME-PLATFORM (see `result_name`).
    """
    name = result_name(name)
    ddm.io.atomic_write_json(RESULTS / f"{name}.json", data)
    keys = ("device", "jax", "diffrax", "dtype", "date", "commit", "load")
    header = ", ".join(f"{k} {data[k]}" for k in keys if data.get(k) is not None)
    ddm.io.atomic_write_text(RESULTS / f"{name}.md", f"{header}\n\n{table}")
    plot_fn(RESULTS / f"{name}.png")
