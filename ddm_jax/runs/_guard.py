"""What every training command does around training.

Refuse a folder that holds something else, and write the loss histories atomically.
"""

import io
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes
from ._folder import RunError, read_config
from ._lock import LOCK_FILE
from ._settings import differences
from ._status import describe


def check_folder(path: Path, settings: dict, *, overwrite: bool) -> None:
    """Refuse an output folder that holds something else (read-only; see `clear`)."""
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} exists and is not a folder.")
    has_run = (path / "config.json").is_file()
    if has_run and not overwrite:
        diff = differences(read_config(path)["settings"], settings)
        what = f"a different run ({'; '.join(diff)})" if diff else "this run"
        raise RunError(
            f"{path} already holds {what}, {describe(path)}; pass --overwrite to replace it"
            + ("." if diff else " or --resume to continue it.")
        )
    others = [p for p in path.iterdir() if p.name != LOCK_FILE] if path.is_dir() else []
    if not has_run and others and not overwrite:
        raise RunError(
            f"{path} is not empty and holds no ddm-jax run; choose another --out or pass "
            "--overwrite (only ddm-jax's own files are ever deleted)."
        )


def write_losses(path: Path, losses, noise_losses) -> None:
    """``losses.npz`` with the drift and noise histories, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, drift=losses, noise=noise_losses)
    atomic_write_bytes(path / "losses.npz", buf.getvalue())
