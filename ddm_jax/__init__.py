"""ddm-jax: embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching.

The pipeline, one private module each: targets (`_targets`, `_systems`) -> network
(`_network`) -> simulation (`_integrate`, `_simulate`) -> matching (`_sampling`, `_losses`,
`_matching`) -> fidelity (`_fidelity`, `_census`; the remedy `_remedy`); then files (`_io`),
figures (`_plotting`), and the application on top: run folders (the `_runs` package, one
module per command) and the command line (the `_cli` package).
"""

import importlib
from typing import TYPE_CHECKING

from .analysis._decompose import (
    ConnectivitySplit as ConnectivitySplit,
    antisymmetric_field as antisymmetric_field,
    antisymmetric_network as antisymmetric_network,
    connectivity_split as connectivity_split,
    hopfield_energy as hopfield_energy,
    hopfield_energy_rate as hopfield_energy_rate,
    sub_network_state as sub_network_state,
    symmetric_drift as symmetric_drift,
    symmetric_network as symmetric_network,
    without_noise as without_noise,
)
from .analysis._fokker_planck import (
    GridDensity as GridDensity,
    stationary_density as stationary_density,
    total_variation as total_variation,
    whitened_box as whitened_box,
)
from .analysis._hodge import (
    HodgeSplit as HodgeSplit,
    furthest_point_sampling as furthest_point_sampling,
    hodge_split as hodge_split,
)
from .analysis._irreversibility import (
    Estimate as Estimate,
    OUIrreversibility as OUIrreversibility,
    diffusion_matrix as diffusion_matrix,
    epr_from_samples as epr_from_samples,
    epr_from_trajectories as epr_from_trajectories,
    mean_with_interval as mean_with_interval,
    ou_entropy_production as ou_entropy_production,
    potential_entropy_production as potential_entropy_production,
)
from .analysis._reversible import (
    ReversibleSplit as ReversibleSplit,
    reversible_split as reversible_split,
)
from .data._data import (
    Increments as Increments,
    data_box as data_box,
    increments as increments,
    load_trajectories as load_trajectories,
    split_held_out as split_held_out,
    trajectory_segments as trajectory_segments,
)
from .data._data_diffusion import (
    diffusion_from_covariance as diffusion_from_covariance,
    jacobian_moments as jacobian_moments,
    residual_diffusion as residual_diffusion,
)
from .data._from_data import (
    DataFit as DataFit,
    entropy_production as entropy_production,
    fit_data as fit_data,
    fitted_linear_drift as fitted_linear_drift,
    learned_target as learned_target,
    refit_readout as refit_readout,
)
from .data._subspace import (
    PCA as PCA,
    AffineMap as AffineMap,
    SubspaceRecovery as SubspaceRecovery,
    affine_map_from_embedding as affine_map_from_embedding,
    fit_affine_map as fit_affine_map,
    pca as pca,
    recover_subspace as recover_subspace,
    relative_trajectory_error as relative_trajectory_error,
)
from .fidelity._census import (
    CLASSES as CLASSES,
    Census as Census,
    Orbits as Orbits,
    attractor_census as attractor_census,
    census_applies as census_applies,
    orbit_census as orbit_census,
)
from .fidelity._fidelity import (
    FidelityReport as FidelityReport,
    fidelity_report as fidelity_report,
    increment_covariance as increment_covariance,
    limit_cycle as limit_cycle,
    lyapunov_exponent as lyapunov_exponent,
    moment_errors as moment_errors,
    sliced_wasserstein as sliced_wasserstein,
)
from .io._io import (
    CorruptFileError as CorruptFileError,
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_json as atomic_write_json,
    atomic_write_text as atomic_write_text,
    export_weights as export_weights,
    load_model as load_model,
    load_weights as load_weights,
    model_from_weights as model_from_weights,
    save_model as save_model,
)
from .memory._memory import (
    Curve as Curve,
    Cycling as Cycling,
    boltzmann_occupancy as boltzmann_occupancy,
    cycling as cycling,
    exact_epr as exact_epr,
    memory_experiments as memory_experiments,
    preferred_direction as preferred_direction,
    recall as recall,
    sample_epr as sample_epr,
    switching as switching,
)
from .memory._wells import (
    WELLS_FAMILY as WELLS_FAMILY,
    Hops as Hops,
    count_hops as count_hops,
    dwell_times as dwell_times,
    first_passage_times as first_passage_times,
    well_geometry as well_geometry,
    well_labels as well_labels,
    well_occupancy as well_occupancy,
    wilson_interval as wilson_interval,
)
from .network._network import (
    LowRankRNN as LowRankRNN,
    init_network as init_network,
    off_subspace_residual as off_subspace_residual,
    private_noise_drift_bias as private_noise_drift_bias,
)
from .simulation._inputs import (
    Schedule as Schedule,
    cue as cue,
    pulse as pulse,
    pulses as pulses,
)
from .simulation._integrate import SOLVERS as SOLVERS
from .simulation._sampling import (
    SAMPLERS as SAMPLERS,
    attractor_points as attractor_points,
    sample_box as sample_box,
)
from .simulation._simulate import (
    Moments as Moments,
    Run as Run,
    SimulationDiverged as SimulationDiverged,
    simulate_network as simulate_network,
    simulate_target as simulate_target,
    stationary_moments as stationary_moments,
)
from .targets._systems import (
    SYSTEMS as SYSTEMS,
    make_target as make_target,
    ou_stationary_covariance as ou_stationary_covariance,
    system_defaults as system_defaults,
)
from .targets._targets import (
    Target as Target,
    from_callables as from_callables,
)
from .training._losses import (
    diffusion_error as diffusion_error,
    diffusion_loss as diffusion_loss,
    drift_error as drift_error,
    drift_loss as drift_loss,
)
from .training._matching import (
    FitResult as FitResult,
    TrainConfig as TrainConfig,
    TrainState as TrainState,
    fit as fit,
    fit_noise_readout as fit_noise_readout,
    fit_seeds as fit_seeds,
    init_train_state as init_train_state,
    run_training as run_training,
)
from .training._remedy import refine_attractors as refine_attractors

# Figures and run folders load on first use: `import ddm_jax` is the JAX library alone (no
# matplotlib, no file layer), which keeps it about a second faster to import.
_LAZY = {
    **dict.fromkeys(
        (
            "coordinate_names",
            "plot_drift_field",
            "plot_losses",
            "plot_marginals",
            "plot_neurons",
            "plot_residual",
            "plot_trajectories",
            "save_figure",
        ),
        ".plotting._plotting",
    ),
    **dict.fromkeys(
        (
            "plot_energy_fields",
            "plot_epr_bars",
            "plot_explained_variance",
            "plot_recovered",
        ),
        ".plotting._plotting_analysis",
    ),
    **dict.fromkeys(("plot_census",), ".plotting._plotting_census"),
    **dict.fromkeys(
        (
            "plot_curves",
            "plot_cycling",
            "plot_occupancy",
        ),
        ".plotting._plotting_memory",
    ),
    **dict.fromkeys(
        (
            "MEMORY_FIGURES",
            "DataReport",
            "RunError",
            "TrainedRun",
            "TrainProgress",
            "analyze_run",
            "default_run_folder",
            "evaluate_run",
            "export_run",
            "load_run",
            "load_target",
            "memory_run",
            "moments_run",
            "read_checkpoint_header",
            "residual_trace",
            "run_status",
            "simulate_run",
            "train_data_run",
            "train_run",
        ),
        ".runs",
    ),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'ddm_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:
    from .plotting._plotting import (
        coordinate_names as coordinate_names,
        plot_drift_field as plot_drift_field,
        plot_losses as plot_losses,
        plot_marginals as plot_marginals,
        plot_neurons as plot_neurons,
        plot_residual as plot_residual,
        plot_trajectories as plot_trajectories,
        save_figure as save_figure,
    )
    from .plotting._plotting_analysis import (
        plot_energy_fields as plot_energy_fields,
        plot_epr_bars as plot_epr_bars,
        plot_explained_variance as plot_explained_variance,
        plot_recovered as plot_recovered,
    )
    from .plotting._plotting_census import (
        plot_census as plot_census,
    )
    from .plotting._plotting_memory import (
        plot_curves as plot_curves,
        plot_cycling as plot_cycling,
        plot_occupancy as plot_occupancy,
    )
    from .runs import (
        MEMORY_FIGURES as MEMORY_FIGURES,
        DataReport as DataReport,
        RunError as RunError,
        TrainedRun as TrainedRun,
        TrainProgress as TrainProgress,
        analyze_run as analyze_run,
        default_run_folder as default_run_folder,
        evaluate_run as evaluate_run,
        export_run as export_run,
        load_run as load_run,
        load_target as load_target,
        memory_run as memory_run,
        moments_run as moments_run,
        read_checkpoint_header as read_checkpoint_header,
        residual_trace as residual_trace,
        run_status as run_status,
        simulate_run as simulate_run,
        train_data_run as train_data_run,
        train_run as train_run,
    )

__version__ = "0.1.0"
