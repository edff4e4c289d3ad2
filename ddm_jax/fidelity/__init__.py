"""How faithful a network is.

Drift and diffusion errors, stationary statistics against their nulls, Lyapunov exponents, limit
cycles and the attractor census.
"""

from ._census import (
    CLASSES as CLASSES,
    Census as Census,
    Orbits as Orbits,
    attractor_census as attractor_census,
    census_applies as census_applies,
    census_step as census_step,
    orbit_census as orbit_census,
)
from ._errors import (
    diffusion_error as diffusion_error,
    drift_error as drift_error,
)
from ._fidelity import (
    FidelityReport as FidelityReport,
    fidelity_report as fidelity_report,
    increment_covariance as increment_covariance,
    limit_cycle as limit_cycle,
    lyapunov_exponent as lyapunov_exponent,
    stationary_samples as stationary_samples,
)
from ._statistics import (
    moment_errors as moment_errors,
    relative_moment_errors as relative_moment_errors,
    sliced_wasserstein as sliced_wasserstein,
    spread as spread,
)
