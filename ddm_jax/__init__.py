"""ddm-jax: embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching."""

from ._network import (
    init_network as init_network,
    LowRankRNN as LowRankRNN,
    off_subspace_residual as off_subspace_residual,
    private_noise_drift_bias as private_noise_drift_bias,
)
from ._simulate import (
    Run as Run,
    simulate_network as simulate_network,
    simulate_target as simulate_target,
    SimulationDiverged as SimulationDiverged,
    SOLVERS as SOLVERS,
)
from ._targets import (
    from_callables as from_callables,
    make_target as make_target,
    ou_stationary_covariance as ou_stationary_covariance,
    system_defaults as system_defaults,
    SYSTEMS as SYSTEMS,
    Target as Target,
)

__version__ = "0.1.0"
from ._matching import (
    attractor_points as attractor_points,
    diffusion_error as diffusion_error,
    diffusion_loss as diffusion_loss,
    drift_error as drift_error,
    drift_loss as drift_loss,
    fit as fit,
    FitResult as FitResult,
    init_train_state as init_train_state,
    run_training as run_training,
    sample_box as sample_box,
    SAMPLERS as SAMPLERS,
    TrainConfig as TrainConfig,
    TrainState as TrainState,
)
from ._io import (
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_json as atomic_write_json,
    atomic_write_text as atomic_write_text,
    CorruptFileError as CorruptFileError,
    export_weights as export_weights,
    load_model as load_model,
    load_weights as load_weights,
    save_model as save_model,
)
from ._fidelity import (
    FidelityReport as FidelityReport,
    fidelity_report as fidelity_report,
    limit_cycle as limit_cycle,
    lyapunov_exponent as lyapunov_exponent,
    moment_errors as moment_errors,
    sliced_wasserstein as sliced_wasserstein,
)
