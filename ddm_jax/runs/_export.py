"""``ddm-jax export``: the trained network in an interchange format (``weights.npz``)."""

import os
from pathlib import Path

import numpy as np

from ..io import CorruptFileError, export_weights, load_weights
from ._loading import load_run
from ._lock import holds_run_folder

EXPORT_FORMATS = ("npz",)


@holds_run_folder
def export_run(run: str | os.PathLike, format: str = "npz") -> Path:
    """Write the run's network in an interchange format; returns the file written.

    ``"npz"``: ``weights.npz``, read back and checked after writing.
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
