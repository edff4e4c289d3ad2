"""Simulation of targets and networks: the engine every later stage runs on.

Fixed-step SDE ensembles, inputs, deterministic RK4 steps and samples of the target's attractor.
"""

from ._inputs import (
    Schedule as Schedule,
    cue as cue,
    pulse as pulse,
    pulses as pulses,
)
from ._integrate import (
    SOLVERS as SOLVERS,
    check_grid as check_grid,
    check_solver as check_solver,
    shard_batch as shard_batch,
)
from ._moments import Moments as Moments, stationary_moments as stationary_moments
from ._rk4 import rk4_step as rk4_step
from ._sampling import (
    POOL_DT as POOL_DT,
    SAMPLERS as SAMPLERS,
    attractor_points as attractor_points,
    batch_points as batch_points,
    sample_box as sample_box,
)
from ._simulate import (
    Run as Run,
    SimulationDiverged as SimulationDiverged,
    simulate_network as simulate_network,
    simulate_target as simulate_target,
)
from ._tuning import (
    cache_dir as cache_dir,
)
