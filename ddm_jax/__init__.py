"""ddm-jax: embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching.

The pipeline, one private module each: targets (`_targets`, `_systems`) -> network
(`_network`) -> simulation (`_integrate`, `_simulate`) -> matching (`_sampling`, `_losses`,
`_matching`) -> fidelity (`_fidelity`, `_census`; the remedy `_remedy`); then files (`_io`),
figures (`_plotting`), and the application on top: run folders (the `_runs` package, one
module per command) and the command line (the `_cli` package).
"""

from ._census import (
    CLASSES as CLASSES,
    Census as Census,
    Orbits as Orbits,
    attractor_census as attractor_census,
    census_applies as census_applies,
    orbit_census as orbit_census,
)
from ._fidelity import (
    FidelityReport as FidelityReport,
    fidelity_report as fidelity_report,
    limit_cycle as limit_cycle,
    lyapunov_exponent as lyapunov_exponent,
    moment_errors as moment_errors,
    sliced_wasserstein as sliced_wasserstein,
)
from ._integrate import SOLVERS as SOLVERS
from ._io import (
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
from ._losses import (
    diffusion_error as diffusion_error,
    diffusion_loss as diffusion_loss,
    drift_error as drift_error,
    drift_loss as drift_loss,
)
from ._matching import (
    FitResult as FitResult,
    TrainConfig as TrainConfig,
    TrainState as TrainState,
    fit as fit,
    fit_noise_readout as fit_noise_readout,
    fit_seeds as fit_seeds,
    init_train_state as init_train_state,
    run_training as run_training,
)
from ._network import (
    LowRankRNN as LowRankRNN,
    init_network as init_network,
    off_subspace_residual as off_subspace_residual,
    private_noise_drift_bias as private_noise_drift_bias,
)
from ._plotting import (
    coordinate_names as coordinate_names,
    plot_drift_field as plot_drift_field,
    plot_losses as plot_losses,
    plot_marginals as plot_marginals,
    plot_neurons as plot_neurons,
    plot_residual as plot_residual,
    plot_trajectories as plot_trajectories,
    save_figure as save_figure,
)
from ._plotting_census import plot_census as plot_census
from ._remedy import refine_attractors as refine_attractors
from ._runs import (
    RunError as RunError,
    TrainedRun as TrainedRun,
    TrainProgress as TrainProgress,
    default_run_folder as default_run_folder,
    evaluate_run as evaluate_run,
    export_run as export_run,
    load_run as load_run,
    load_target as load_target,
    moments_run as moments_run,
    read_checkpoint_header as read_checkpoint_header,
    residual_trace as residual_trace,
    run_status as run_status,
    simulate_run as simulate_run,
    train_run as train_run,
)
from ._sampling import (
    SAMPLERS as SAMPLERS,
    attractor_points as attractor_points,
    sample_box as sample_box,
)
from ._simulate import (
    Moments as Moments,
    Run as Run,
    SimulationDiverged as SimulationDiverged,
    simulate_network as simulate_network,
    simulate_target as simulate_target,
    stationary_moments as stationary_moments,
)
from ._systems import (
    SYSTEMS as SYSTEMS,
    make_target as make_target,
    ou_stationary_covariance as ou_stationary_covariance,
    system_defaults as system_defaults,
)
from ._targets import (
    Target as Target,
    from_callables as from_callables,
)

__version__ = "0.1.0"
