"""Run folders: the application layer under the ``ddm-jax`` command line.

Every subcommand is a thin wrapper over one function here, so a Python session can do
exactly what the shell does. One module per command, over shared folder mechanics:

- ``_folder``: the files of a run, ``config.json``, shared checks (`check_finite`,
  `check_count`, `check_simulation`), clearing;
- ``_target_spec``: which target a run embeds (registered name or ``file.py:name``);
- ``_loading``: `load_run` and `TrainedRun` (a finished run read back);
- ``_settings``: defaults, resumed settings and their differences;
- ``_checkpoint``: ``checkpoint.eqx`` and ``pool.npy``;
- ``_status``: `run_status` (``ddm-jax info``);
- ``_train``: `train_run` (``ddm-jax train``);
- ``_simulate``: `simulate_run`, `moments_run` (``ddm-jax simulate``, ``ddm-jax moments``);
- ``_evaluate``: `evaluate_run` (``ddm-jax evaluate``);
- ``_export``: `export_run` (``ddm-jax export``);
- ``_memory``: `memory_run` (``ddm-jax memory``, wells-family runs).
- ``_analyze``: `analyze_run` (``ddm-jax analyze``).
- ``_train_data``, ``_evaluate_data``: `train_data_run` (``ddm-jax train data.npz --dt``)
  and the evaluation of such a run against its held-out recordings (`DataReport`).

A run folder is self-describing:

- ``config.json``: every setting, the package and JAX versions, the device and the date;
- ``target.py``: a copy of the user's target file (user-defined targets only);
- ``pool.npy``: the attractor points training samples from (kept, so a resume reuses them);
- ``checkpoint.eqx``: training state and loss history, rewritten atomically as training goes;
- ``model.eqx``: the trained network, written last (its presence means training finished);
- ``losses.npz``, ``training.json``: loss per step, wall time and final errors;
- ``simulation.npz``: written by `simulate_run`; ``moments.json`` by `moments_run`;
- ``metrics.json``, ``report.md``, ``figures/*.png``: written by `evaluate_run`;
- ``weights.npz``: written by `export_run`;
- ``memory.json``, ``figures/memory_*.png``: written by `memory_run`.
- ``analysis.json``, ``figures/{energy_fields,epr,explained_variance,recovered}.png``:
  written by `analyze_run`.
- ``data.npz`` / ``data.npy``: a data run's copy of its trajectory file.

Every command that writes into a folder holds it alone while it runs (``.ddm-jax.lock``, with
its process id; a second command is refused naming it, a stale lock of a dead process is
taken over), so the files of a finished run all come from one run. Every command checks all
its settings before it writes anything, so a failed start leaves
the folder as it was, and every file is written atomically (temporary name, then rename), so
an interrupted command never leaves a half-written file in place of a good one.
"""

from ._analyze import analyze_run as analyze_run
from ._census_report import census_sentence as census_sentence
from ._checkpoint import read_checkpoint_header as read_checkpoint_header
from ._evaluate import evaluate_run as evaluate_run
from ._evaluate_data import DataReport as DataReport
from ._export import export_run as export_run
from ._folder import MEMORY_FIGURES as MEMORY_FIGURES, RunError as RunError
from ._loading import (
    TrainedRun as TrainedRun,
    default_run_folder as default_run_folder,
    load_run as load_run,
)
from ._memory import memory_run as memory_run
from ._progress import TrainProgress as TrainProgress
from ._simulate import (
    moments_run as moments_run,
    residual_trace as residual_trace,
    simulate_run as simulate_run,
)
from ._status import run_status as run_status
from ._target_spec import load_target as load_target
from ._train import train_run as train_run
from ._train_data import train_data_run as train_data_run
