"""ddm-jax: embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching."""

from ._network import (
    LowRankRNN as LowRankRNN,
)
from ._network import (
    init_network as init_network,
)
from ._network import (
    off_subspace_residual as off_subspace_residual,
)
from ._network import (
    private_noise_drift_bias as private_noise_drift_bias,
)
from ._simulate import (
    SOLVERS as SOLVERS,
)
from ._simulate import (
    Run as Run,
)
from ._simulate import (
    SimulationDiverged as SimulationDiverged,
)
from ._simulate import (
    simulate_network as simulate_network,
)
from ._simulate import (
    simulate_target as simulate_target,
)
from ._targets import (
    SYSTEMS as SYSTEMS,
)
from ._targets import (
    Target as Target,
)
from ._targets import (
    from_callables as from_callables,
)
from ._targets import (
    make_target as make_target,
)
from ._targets import (
    ou_stationary_covariance as ou_stationary_covariance,
)
from ._targets import (
    system_defaults as system_defaults,
)

__version__ = "0.1.0"
from ._fidelity import (
    FidelityReport as FidelityReport,
)
from ._fidelity import (
    fidelity_report as fidelity_report,
)
from ._fidelity import (
    limit_cycle as limit_cycle,
)
from ._fidelity import (
    lyapunov_exponent as lyapunov_exponent,
)
from ._fidelity import (
    moment_errors as moment_errors,
)
from ._fidelity import (
    sliced_wasserstein as sliced_wasserstein,
)
from ._io import (
    CorruptFileError as CorruptFileError,
)
from ._io import (
    atomic_write_bytes as atomic_write_bytes,
)
from ._io import (
    atomic_write_json as atomic_write_json,
)
from ._io import (
    atomic_write_text as atomic_write_text,
)
from ._io import (
    export_weights as export_weights,
)
from ._io import (
    load_model as load_model,
)
from ._io import (
    load_weights as load_weights,
)
from ._io import (
    save_model as save_model,
)
from ._matching import (
    SAMPLERS as SAMPLERS,
)
from ._matching import (
    FitResult as FitResult,
)
from ._matching import (
    TrainConfig as TrainConfig,
)
from ._matching import (
    TrainState as TrainState,
)
from ._matching import (
    attractor_points as attractor_points,
)
from ._matching import (
    diffusion_error as diffusion_error,
)
from ._matching import (
    diffusion_loss as diffusion_loss,
)
from ._matching import (
    drift_error as drift_error,
)
from ._matching import (
    drift_loss as drift_loss,
)
from ._matching import (
    fit as fit,
)
from ._matching import (
    init_train_state as init_train_state,
)
from ._matching import (
    run_training as run_training,
)
from ._matching import (
    sample_box as sample_box,
)
