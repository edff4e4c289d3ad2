"""Targets.

Latent SDEs ``dz = f(z) dt + G(z) dB`` with their box and metadata, and the registry of named
systems (`make_target`).
"""

from ._dysts import (
    DystsError as DystsError,
    dysts_metadata as dysts_metadata,
    dysts_systems as dysts_systems,
    from_dysts as from_dysts,
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
