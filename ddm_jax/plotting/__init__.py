"""Figures (matplotlib, loaded on first use).

Trajectories, marginals, drift fields, the census, energy and irreversibility, memory curves.
"""

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
from ._plotting_analysis import (
    plot_energy_fields as plot_energy_fields,
    plot_epr_bars as plot_epr_bars,
    plot_explained_variance as plot_explained_variance,
    plot_recovered as plot_recovered,
)
from ._plotting_census import (
    plot_census as plot_census,
)
from ._plotting_memory import (
    plot_curves as plot_curves,
    plot_cycling as plot_cycling,
    plot_occupancy as plot_occupancy,
)
