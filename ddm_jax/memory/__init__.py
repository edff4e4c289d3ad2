"""Memory in the wells targets.

Switching by input tilting, recall, nonequilibrium cycling and the hop statistics they are
measured with.
"""

from ._memory import (
    Curve as Curve,
    CyclingResult as CyclingResult,
    boltzmann_occupancy as boltzmann_occupancy,
    cycling as cycling,
    exact_epr as exact_epr,
    memory_experiments as memory_experiments,
    preferred_direction as preferred_direction,
    recall as recall,
    switching as switching,
)
from ._wells import (
    Hops as Hops,
    count_hops as count_hops,
    dwell_times as dwell_times,
    first_passage_times as first_passage_times,
    well_geometry as well_geometry,
    well_labels as well_labels,
    well_occupancy as well_occupancy,
    wilson_interval as wilson_interval,
)
