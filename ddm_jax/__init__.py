"""ddm-jax: embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching.

One folder a stage, in the order the data flows: ``targets`` -> ``network`` -> ``simulation``
-> ``fidelity`` -> ``training`` -> ``data`` -> ``analysis``, ``memory`` -> ``io`` ->
``plotting`` -> ``runs`` -> ``cli``. The top level holds the main path (a target, a network,
``fit``, simulation, fidelity, files); every stage is also a namespace with the rest
(``ddm.analysis.hopfield_energy``, ``ddm.memory.switching``, ``ddm.runs.train_run``...).
``import ddm_jax`` loads the numerical core; ``analysis``, ``memory``, ``plotting`` and
``runs`` (scipy's sparse solvers, matplotlib, run folders) load on first use.
"""

import importlib
from typing import TYPE_CHECKING

from . import data, fidelity, io, network, simulation, targets, training
from .data import DataFit, fit_data, load_trajectories
from .fidelity import (
    Census,
    FidelityReport,
    attractor_census,
    diffusion_error,
    drift_error,
    fidelity_report,
)
from .io import export_weights, load_model, load_weights, save_model
from .network import LowRankRNN, init_network
from .simulation import (
    Moments,
    Run,
    Schedule,
    SimulationDiverged,
    attractor_points,
    simulate_network,
    simulate_target,
    stationary_moments,
)
from .targets import SYSTEMS, Target, from_callables, make_target
from .training import FitResult, TrainConfig, fit, fit_seeds

_LAZY = ("analysis", "memory", "plotting", "runs")  # heavier stages, imported on first use

__all__ = [
    # stages (namespaces)
    "targets", "network", "simulation", "fidelity", "training", "data", "analysis",
    "memory", "io", "plotting", "runs",
    # targets
    "Target", "from_callables", "make_target", "SYSTEMS",
    # network
    "LowRankRNN", "init_network",
    # simulation
    "simulate_network", "simulate_target", "stationary_moments", "attractor_points", "Run",
    "Moments", "SimulationDiverged", "Schedule",
    # fidelity
    "drift_error", "diffusion_error", "fidelity_report", "FidelityReport", "attractor_census",
    "Census",
    # training
    "TrainConfig", "fit", "fit_seeds", "FitResult",
    # data
    "fit_data", "DataFit", "load_trajectories",
    # files
    "save_model", "load_model", "export_weights", "load_weights",
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ddm_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from . import analysis, memory, plotting, runs  # noqa: F401

__version__ = "0.1.0"
