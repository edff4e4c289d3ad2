"""Drift and diffusion matching.

The losses, the training loop, `fit` and `fit_seeds`, the closed-form noise read-out and the
spurious-attractor remedy, and the closed-form drift fit (`closed_form`).
"""

from ._closed_form import (
    METHODS as METHODS,
    NOISE_RIDGES as NOISE_RIDGES,
    anchored_layer as anchored_layer,
    closed_form as closed_form,
    noise_points as noise_points,
    noise_readout as noise_readout,
    noisy_drift_error as noisy_drift_error,
    normal_equations as normal_equations,
    ridge_refit as ridge_refit,
    ridge_solve as ridge_solve,
    select_ridge as select_ridge,
)
from ._loop import (
    TrainConfig as TrainConfig,
    TrainState as TrainState,
    drift_params as drift_params,
    init_train_state as init_train_state,
    noise_params as noise_params,
    noise_phase_config as noise_phase_config,
    optimiser as optimiser,
    optimiser_steps as optimiser_steps,
    run_chunks as run_chunks,
    run_training as run_training,
    train_chunk as train_chunk,
)
from ._losses import (
    diffusion_loss as diffusion_loss,
    drift_loss as drift_loss,
)
from ._matching import (
    FitPlan as FitPlan,
    FitResult as FitResult,
    adam_steps as adam_steps,
    drift_finish as drift_finish,
    drift_start as drift_start,
    fit as fit,
    fit_plan as fit_plan,
    fit_seeds as fit_seeds,
    remedy as remedy,
    solve_noise_readout as solve_noise_readout,
)
from ._remedy import (
    AUTO_REMEDY_ROUNDS as AUTO_REMEDY_ROUNDS,
    census_score as census_score,
    drift_jacobian_loss as drift_jacobian_loss,
    refine_attractors as refine_attractors,
    remedy_settings as remedy_settings,
)
