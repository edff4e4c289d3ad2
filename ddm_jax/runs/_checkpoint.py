"""Checkpoints (``checkpoint.eqx``) and the attractor pool (``pool.npy``) of a training run.

A checkpoint is one JSON header line (format, phase, step, elapsed seconds, payload size and
SHA-256, and the remedy's history once it has run) followed by the serialised `TrainState`
and the loss histories in their own dtype (float64 under ``JAX_ENABLE_X64``), so a resumed
run writes every file as the uninterrupted one would, and a truncated or corrupt file is
detected before it is used. The phase is ``"drift"``, ``"remedy"`` (drift matching and the
attractor remedy done; the state is drift matching's) or ``"noise"``.
"""

import hashlib
import io
import json
import os
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..io import CorruptFileError, atomic_write_bytes
from ..targets import Target
from ..training import TrainState

CHECKPOINT_FORMAT = "ddm-jax-checkpoint/1"


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


def load_pool(path: Path, target: Target):
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


def write_checkpoint(
    path: Path,
    phase: str,
    state: TrainState,
    losses,
    noise_losses,
    elapsed,
    *,
    remedy=None,
    closed_form=None,
):
    """The state, losses and clock of a session.

    The remedy's history and the closed form's choices (JSON) ride in the header.
    """
    payload = io.BytesIO()
    eqx.tree_serialise_leaves(payload, state)
    np.save(payload, np.asarray(losses))  # in their own dtype: a resume is bitwise
    np.save(payload, np.asarray(noise_losses))
    data = payload.getvalue()
    header = {
        "format": CHECKPOINT_FORMAT, "phase": phase, "step": int(state.step),
        "elapsed": elapsed, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        **({"remedy": remedy} if remedy is not None else {}),
        **({"closed_form": closed_form} if closed_form is not None else {}),
    }  # fmt: skip
    atomic_write_bytes(path, (json.dumps(header) + "\n").encode() + data)


def read_checkpoint(path: Path, skeletons: dict[str, TrainState]):
    header = read_checkpoint_header(path)
    data = io.BytesIO(path.read_bytes().partition(b"\n")[2])
    try:
        skeleton = skeletons["drift" if header["phase"] == "remedy" else header["phase"]]
        state = eqx.tree_deserialise_leaves(data, skeleton)
        losses = np.load(data)
        noise_losses = np.load(data)
    except Exception as err:
        raise CorruptFileError(
            f"{path}: the checkpoint does not match this run's network "
            f"({type(err).__name__}: {err})."
        ) from err
    if int(state.step) != header["step"]:
        raise CorruptFileError(f"{path}: step {int(state.step)} != header step {header['step']}.")
    return header, state, losses, noise_losses


def save_pool(path: Path, pool) -> None:
    """Write the attractor pool atomically as ``.npy``."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(pool))
    atomic_write_bytes(path, buf.getvalue())
