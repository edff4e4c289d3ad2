"""Shared by the benchmark scripts: the run's stamp and writing JSON + markdown + PNG."""

import datetime
import platform
from pathlib import Path

import diffrax
import jax
import matplotlib

import ddm_jax as ddm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
__all__ = ["RESULTS", "plt", "stamp", "write_results"]


def stamp() -> dict:
    """Device, versions, dtype and date of this run."""
    device = jax.devices()[0]
    return {
        "device": f"{device.platform}: {device.device_kind}, {jax.device_count()} device(s)",
        "machine": platform.machine(),
        "jax": jax.__version__,
        "diffrax": diffrax.__version__,
        "ddm_jax": ddm.__version__,
        "dtype": str(jax.numpy.zeros(()).dtype),
        "date": datetime.date.today().isoformat(),
    }


def write_results(name: str, data: dict, table: str, plot_fn) -> None:
    """Write results/NAME.json, NAME.md (stamp, then the table) and NAME.png, atomically."""
    ddm.atomic_write_json(RESULTS / f"{name}.json", data)
    header = ", ".join(f"{k} {data[k]}" for k in ("device", "jax", "diffrax", "dtype", "date"))
    ddm.atomic_write_text(RESULTS / f"{name}.md", f"{header}\n\n{table}")
    plot_fn(RESULTS / f"{name}.png")
