"""Learning from recorded trajectories.

Increments, diffusion estimates, `fit_data`, the subspace tools (PCA, affine maps) that
relate recordings to latent coordinates, `fit_recording` (the latent SDE of noisy
high-dimensional activity) and the reconstruction measures (D_stsp, D_H, one-step R^2).
"""

from ._data import (
    Increments as Increments,
    data_box as data_box,
    increments as increments,
    load_trajectories as load_trajectories,
    split_held_out as split_held_out,
    trajectory_segments as trajectory_segments,
)
from ._data_diffusion import (
    diffusion_from_covariance as diffusion_from_covariance,
    diffusion_from_residuals as diffusion_from_residuals,
    increment_means as increment_means,
    jacobian_moments as jacobian_moments,
    residual_diffusion as residual_diffusion,
)
from ._dsr_measures import (
    one_step_r2 as one_step_r2,
    spectral_distance as spectral_distance,
    state_space_divergence as state_space_divergence,
)
from ._from_data import (
    DataFit as DataFit,
    check_data as check_data,
    fit_data as fit_data,
    fitted_linear_drift as fitted_linear_drift,
    learned_target as learned_target,
    refit_readout as refit_readout,
)
from ._latent_space import (
    LatentChoice as LatentChoice,
    LatentMap as LatentMap,
    choose_latent_dim as choose_latent_dim,
    factor_analysis as factor_analysis,
    noise_covariance as noise_covariance,
)
from ._nwb import NWBSeries as NWBSeries, load_nwb as load_nwb
from ._recordings import (
    RecordingFit as RecordingFit,
    fit_recording as fit_recording,
    is_recording_file as is_recording_file,
    lag_covariances as lag_covariances,
    load_recording as load_recording,
    one_step_predictions as one_step_predictions,
    project_recording as project_recording,
    recording_segments as recording_segments,
)
from ._streaming import stream_projection as stream_projection
from ._subspace import (
    PCA as PCA,
    AffineMap as AffineMap,
    SubspaceRecovery as SubspaceRecovery,
    affine_map_from_embedding as affine_map_from_embedding,
    estimate_affine_map as estimate_affine_map,
    principal_components as principal_components,
    recover_subspace as recover_subspace,
    relative_trajectory_error as relative_trajectory_error,
)
