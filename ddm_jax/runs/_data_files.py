"""A data run's files.

Recognising a trajectory file, its segments, its checked copy, and the learned target rebuilt
from a saved network.
"""

import hashlib
from pathlib import Path

import jax.numpy as jnp

from ..data import learned_target, load_recording, split_held_out, trajectory_segments
from ..io import CorruptFileError
from ._folder import RunError


def is_data_file(system: str) -> bool:
    """Whether ``system`` names a trajectory file rather than a target."""
    return str(system).endswith((".npz", ".npy", ".nwb"))


def data_segments(path: Path, dt: float, held_out: float):
    """The fitting and held-out segments of a run's data file."""
    data, _, _ = load_recording(path)  # a recording's activity, or trajectories
    return split_held_out(trajectory_segments(data, dt), held_out)


def data_target(config: dict, model):
    """The learned target of a data run, rebuilt from its network."""
    z0 = config["target"].get("z0")
    z0 = None if z0 is None else jnp.asarray(z0)
    return learned_target(model, z0=z0, name=config["target"]["name"])


def check_data_copy(path: Path, config: dict) -> Path:
    """The run's copy of its data file, checked against the hash in ``config.json``."""
    spec = config["settings"]["target"]
    copy = path / f"data{Path(spec['file']).suffix}"
    if not copy.is_file():
        raise RunError(f"{path}: the run's data copy {copy.name} is missing.")
    if hashlib.sha256(copy.read_bytes()).hexdigest() != spec["sha256"]:
        raise CorruptFileError(f"{copy}: its contents differ from the data the run was trained on.")
    return copy
