"""What a run folder holds, checking every file it can read (``ddm-jax info``)."""

import os
from pathlib import Path

from ..io import CorruptFileError, load_model, load_weights
from ._checkpoint import load_pool, read_checkpoint_header
from ._folder import RunError, read_config, read_json
from ._target_spec import target_from_config


def describe(path: Path) -> str:
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
    config = read_config(path)
    status = {"system": config["system"], "neurons": config["settings"]["neurons"],
              "state": describe(path), "created": config.get("created")}  # fmt: skip
    if (path / "checkpoint.eqx").is_file():
        header = read_checkpoint_header(path / "checkpoint.eqx")
        status["checkpoint"] = f"{header['phase']} step {header['step']}"
    if (path / "pool.npy").is_file():
        target = target_from_config(path, config)
        status["pool"] = f"{load_pool(path / 'pool.npy', target).shape[0]} points"
    if (path / "model.eqx").is_file():
        status["model"] = f"{load_model(path / 'model.eqx').n} neurons"
    if (path / "weights.npz").is_file():
        status["weights"] = f"{load_weights(path / 'weights.npz')['Gamma'].shape} Gamma"
    for name in ("training.json", "metrics.json"):
        if (path / name).is_file():
            status[name] = "ok" if read_json(path / name) is not None else "empty"
    status["files"] = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    return status
