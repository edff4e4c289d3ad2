"""A finished run read back: `load_run` and `TrainedRun`."""

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..io import CorruptFileError, load_model
from ..network import LowRankRNN
from ..simulation import POOL_DT
from ..targets import Target
from ._data_files import data_target
from ._folder import RunError, read_config, read_json
from ._target_spec import target_from_config


@dataclasses.dataclass
class TrainedRun:
    """A finished run folder, loaded.

    Attributes:
        path: the folder.
        config: the contents of ``config.json``.
        target: the target SDE, rebuilt from the config.
        model: the trained network.
        losses: drift-matching loss per step.
        noise_losses: diffusion-matching loss per step (state-dependent noise), else None.
        training: the contents of ``training.json`` (steps, wall time, final errors).
    """

    path: Path
    config: dict
    target: Target
    model: LowRankRNN
    losses: np.ndarray
    noise_losses: np.ndarray | None
    training: dict

    @property
    def pool_dt(self) -> float:
        """The Euler step of the run's attractor pool (``TrainConfig.pool_dt``, else `POOL_DT`)."""
        return self.config["settings"].get("train", {}).get("pool_dt", POOL_DT)


def default_run_folder(target: Target, neurons: int | None = None) -> Path:
    """``runs/<target name>-<neurons>``; neurons default to the paper's size, else 64."""
    n = (target.paper_neurons or 64) if neurons is None else neurons
    return Path("runs") / f"{target.name}-{n}"


def _model_file(path: Path) -> Path:
    if not (path / "config.json").is_file():
        raise RunError(f"{path} is not a ddm-jax run folder (no config.json).")
    if not (path / "model.eqx").is_file():
        raise RunError(
            f"{path} holds no trained model (model.eqx); finish training with "
            f"`ddm-jax train {read_config(path)['system']} --out {path} --resume`."
        )
    return path / "model.eqx"


def load_run(path: str | os.PathLike) -> TrainedRun:
    """Load a finished run folder: config, target, model and loss history.

    Raises:
        RunError: when the folder is not a run or training has not finished.
        CorruptFileError: when one of its files is corrupt or truncated (named).
    """
    path = Path(path)
    model_file = _model_file(path)
    config = read_config(path)
    model = load_model(model_file)
    losses = np.zeros(0)
    noise_losses = None
    if (path / "losses.npz").is_file():
        try:
            with np.load(path / "losses.npz") as data:
                losses = data["drift"]
                noise_losses = data["noise"] if data["noise"].size else None
        except Exception as err:
            raise CorruptFileError(
                f"{path / 'losses.npz'}: expected arrays 'drift' and 'noise'; it is corrupt "
                f"or truncated ({type(err).__name__}: {err})."
            ) from err
    training = read_json(path / "training.json") if (path / "training.json").is_file() else {}
    if config["settings"]["target"]["kind"] == "data":
        target = data_target(config, model)
    else:
        target = target_from_config(path, config)
    return TrainedRun(path, config, target, model, losses, noise_losses, training)
