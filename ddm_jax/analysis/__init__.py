"""Taking a network apart.

Hopfield energy, the symmetric/antisymmetric split, entropy production and the
reversible/irreversible split of the drift.
"""

from ._decompose import (
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
from ._fokker_planck import (
    GridDensity as GridDensity,
    stationary_density as stationary_density,
    total_variation as total_variation,
    whitened_box as whitened_box,
)
from ._hodge import (
    HodgeSplit as HodgeSplit,
    furthest_point_sampling as furthest_point_sampling,
    hodge_split as hodge_split,
)
from ._irreversibility import (
    Estimate as Estimate,
    OUIrreversibility as OUIrreversibility,
    diffusion_matrix as diffusion_matrix,
    epr_from_samples as epr_from_samples,
    epr_from_trajectories as epr_from_trajectories,
    mean_with_interval as mean_with_interval,
    ou_entropy_production as ou_entropy_production,
    potential_entropy_production as potential_entropy_production,
    quantile95 as quantile95,
)
from ._reversible import (
    ReversibleSplit as ReversibleSplit,
    reversible_split as reversible_split,
)
