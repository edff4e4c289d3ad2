"""Files: the saved model, the ``weights.npz`` interchange format, atomic writes.

Every file is written to a temporary name in the same folder and then renamed over the
destination, so an interrupted write never replaces a good file with a half-written one.
"""

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..network import LowRankRNN

MODEL_FORMAT = "ddm-jax-model/1"


class CorruptFileError(ValueError):
    """A saved file is unreadable, truncated or not what it claims to be."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically (UTF-8)."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Write JSON atomically, indented, with a trailing newline."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _model_header(model: LowRankRNN) -> dict:
    return {
        "format": MODEL_FORMAT,
        "n": model.n,
        "k": model.k,
        "m": model.m,
        "state_dependent_noise": model.noise_readout is not None,
        "activation": model.activation,
        "dtype": str(model.Gamma.dtype),
    }


def _skeleton(header: dict) -> LowRankRNN:
    n, k, m = header["n"], header["k"], header["m"]
    dtype = jnp.dtype(header["dtype"])
    z = lambda *shape: jnp.zeros(shape, dtype)
    return LowRankRNN(
        Gamma=z(n, k), W_s=z(k, n), b=z(n), centre=z(k), scale=jnp.ones(k, dtype),
        noise_const=z(k, m),
        noise_readout=z(k * m, n) if header["state_dependent_noise"] else None,
        private_noise=z(), tau=jnp.ones((), dtype), activation=header["activation"],
    )  # fmt: skip


def save_model(path: str | os.PathLike, model: LowRankRNN) -> None:
    """Save the full model (every array, bit for bit) to one file, atomically.

    The file is a JSON header line followed by equinox's serialised leaves.
    """
    buf = io.BytesIO()
    buf.write((json.dumps(_model_header(model)) + "\n").encode())
    eqx.tree_serialise_leaves(buf, model)
    atomic_write_bytes(path, buf.getvalue())


def load_model(path: str | os.PathLike) -> LowRankRNN:
    """Load a model written by `save_model`.

    Raises:
        FileNotFoundError: when the file does not exist.
        CorruptFileError: when it is truncated, corrupt or not a ddm-jax model.
    """
    path = Path(path)
    with open(path, "rb") as f:
        line = f.readline()
        try:
            header = json.loads(line)
            if header.get("format") != MODEL_FORMAT:
                raise ValueError(f"format {header.get('format')!r}")
            model = eqx.tree_deserialise_leaves(f, _skeleton(header))
            trailing = f.read(1)
        except Exception as err:
            raise CorruptFileError(
                f"{path}: expected a ddm-jax model file ({MODEL_FORMAT}); it is corrupt or "
                f"truncated ({type(err).__name__}: {err})."
            ) from err
    if trailing:
        raise CorruptFileError(f"{path}: unexpected bytes after the model data.")
    return model


def export_weights(path: str | os.PathLike, model: LowRankRNN, system: str) -> None:
    """Write the interchange file ``weights.npz``, atomically.

    Arrays: ``Gamma (n, k)``, ``W_s (k, n)``, ``b (n,)``, ``embed (n, k) = E``,
    ``offset (n,) = e``, ``tau ()``, ``noise (n, m) = Sigma`` (the neuron noise matrix at the
    box centre; exact for additive noise), ``centre``, ``scale``, ``private_noise``, and the
    strings ``activation`` and ``system``. The network is
    ``tau dx = (-x + Gamma W_s tanh(x) + b) dt + noise dW`` and ``z = pinv(embed) (x - offset)``.
    """
    arrays = {
        "Gamma": model.Gamma,
        "W_s": model.W_s,
        "b": model.b,
        "embed": model.embed_matrix,
        "offset": model.offset,
        "tau": model.tau,
        "noise": model.Gamma @ model.latent_noise(model.b),
        "centre": model.centre,
        "scale": model.scale,
        "private_noise": model.private_noise,
    }
    out = {name: np.asarray(value) for name, value in arrays.items()}
    out["activation"] = np.asarray(model.activation)
    out["system"] = np.asarray(system)
    buf = io.BytesIO()
    np.savez(buf, **out)
    atomic_write_bytes(path, buf.getvalue())


WEIGHT_KEYS = ("Gamma", "W_s", "b", "embed", "offset", "tau", "noise", "activation", "system")


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``weights.npz`` into a dict of NumPy arrays, checking names and shapes.

    Raises:
        CorruptFileError: for a truncated/corrupt file, missing arrays or wrong shapes.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise CorruptFileError(f"{path}: expected a weights.npz archive; got a single array.")
        with data:
            out = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        if isinstance(err, CorruptFileError):
            raise
        if isinstance(err, FileNotFoundError):
            raise
        raise CorruptFileError(
            f"{path}: expected a weights.npz archive; it is corrupt or truncated ({err})."
        ) from err
    missing = [name for name in WEIGHT_KEYS if name not in out]
    if missing:
        raise CorruptFileError(f"{path}: missing arrays {missing}; expected {list(WEIGHT_KEYS)}.")
    n, k = out["Gamma"].shape
    expected = {"W_s": (k, n), "b": (n,), "embed": (n, k), "offset": (n,), "tau": ()}
    for name, shape in expected.items():
        if out[name].shape != shape:
            raise CorruptFileError(
                f"{path}: expected {name} of shape {shape}; got {out[name].shape}."
            )
    if out["noise"].ndim != 2 or out["noise"].shape[0] != n:
        raise CorruptFileError(
            f"{path}: expected noise of shape ({n}, m); got {out['noise'].shape}."
        )
    return out


def model_from_weights(weights: dict[str, np.ndarray]) -> LowRankRNN:
    """Rebuild a network from the arrays of ``weights.npz`` (see `load_weights`).

    The noise becomes the constant latent factor ``Ghat = Gamma^+ noise`` (exact for additive
    noise; a state-dependent read-out is not part of the interchange format). When the file
    lacks ``centre``/``scale`` they are recovered from ``embed = Gamma S^-1`` and
    ``offset = b - embed c``.
    """
    w = {name: np.asarray(value, dtype=float) for name, value in weights.items()
         if name not in ("activation", "system")}  # fmt: skip
    gamma, embed = w["Gamma"], w["embed"]
    if "scale" in w and "centre" in w:
        scale, centre = w["scale"], w["centre"]
    else:  # embed = Gamma S^-1 column by column, offset = b - embed c
        scale = np.sum(gamma * embed, 0) / np.sum(embed * embed, 0)
        centre = np.linalg.lstsq(embed, w["b"] - w["offset"], rcond=None)[0]
    dtype = jnp.result_type(float)
    a = lambda x: jnp.asarray(x, dtype)
    return LowRankRNN(
        Gamma=a(gamma), W_s=a(w["W_s"]), b=a(w["b"]), centre=a(centre), scale=a(scale),
        noise_const=a(np.linalg.pinv(gamma) @ w["noise"]), noise_readout=None,
        private_noise=a(w.get("private_noise", 0.0)), tau=a(w["tau"]),
        activation=str(weights["activation"]),
    )  # fmt: skip
