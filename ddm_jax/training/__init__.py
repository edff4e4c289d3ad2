"""Drift and diffusion matching.

The losses, the training loop, `fit` and `fit_seeds`, the closed-form noise read-out and the
spurious-attractor remedy.
"""

from ._loop import (
    TrainConfig as TrainConfig,
    TrainState as TrainState,
    drift_params as drift_params,
    init_train_state as init_train_state,
    noise_params as noise_params,
    optimiser as optimiser,
    optimiser_steps as optimiser_steps,
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
    fit as fit,
    fit_plan as fit_plan,
    fit_seeds as fit_seeds,
    solve_noise_readout as solve_noise_readout,
)
from ._remedy import (
    drift_jacobian_loss as drift_jacobian_loss,
    refine_attractors as refine_attractors,
)
