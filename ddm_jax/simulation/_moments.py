"""Mean and covariance of long simulations, in memory that does not grow with their length.

`stationary_moments` streams the saved states of `simulate_target` or `simulate_network`
into running moments inside the compiled call (`_integrate`), then combines the
per-trajectory moments: on the host in float64 from an eager call, in JAX when traced.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._custom_types import Key, LatentStates
from ..network import LowRankRNN
from ..targets import Target
from ._inputs import Input, Schedule
from ._integrate import check_grid, traced
from ._network_sde import model_subspace, network_ensemble
from ._simulate import SimulationDiverged, _checked, _name, _plan, target_ensemble


class Moments(NamedTuple):
    """Statistics of the states of an ensemble, accumulated while simulating.

    Attributes:
        mean: ``(k,)`` mean state (for a network: of the read-out) over all trajectories and
            all saved states at ``t >= burn_in``. Float64 NumPy arrays (and Python floats)
            from an eager call; JAX arrays of the states' dtype from a traced one.
        cov: ``(k, k)`` covariance over the same states (divided by ``count - 1``).
        count: how many states (trajectories x saves).
        residual: for a network, the RMS off-subspace residual over the same states, as in
            `Run`; None for targets.
        residual_max: the same with the largest distance in the numerator.
    """

    mean: np.ndarray | Array
    cov: np.ndarray | Array
    count: int
    residual: float | Array | None = None
    residual_max: float | Array | None = None


def stationary_moments(
    system: Target | LowRankRNN,
    z0s: LatentStates,
    *,
    key: Key,
    t1: float,
    burn_in: float = 0.0,
    dt: float = 1e-3,
    save_dt: float | None = None,
    solver: str = "euler",
    inputs: Schedule | Input | None = None,
) -> Moments:
    """Mean and covariance of a long simulation, in memory that does not grow with ``t1``.

    The trajectories are those of `simulate_target` or `simulate_network` with the same
    arguments; instead of being stored, every state saved at ``t >= burn_in`` is folded into
    a per-trajectory running mean and co-moment (Welford), and the trajectories' moments are
    combined exactly (Chan et al.). Use it for long runs, where the stored states would not
    fit; the samples of `simulate_*` are needed for distances between distributions.
    ``inputs`` as for `simulate_target`.

    Transformations: pure in ``system``, ``z0s``, ``key`` and ``inputs`` as for
    `simulate_network`; ``t1``, ``burn_in``, ``dt``, ``save_dt`` and ``solver`` are static.
    Eager layer (concrete outputs): the per-trajectory moments are read back and combined on
    the host in float64. Traced: they are combined in the states' dtype (so a traced call
    equals the eager one to float32 rounding, not bitwise), ``count`` is the static count,
    and the finiteness check is an `eqx.error_if`.

    Raises:
        SimulationDiverged: if the moments are not finite (eager call).
    """
    dt, num_saves, save_every = check_grid(t1, dt, save_dt)
    last = num_saves * save_every * dt
    if not (np.isfinite(burn_in) and 0 <= burn_in <= last):
        raise ValueError(
            f"Expected 0 <= burn_in <= {last:g} (the last save); got burn_in={burn_in}."
        )
    stream = min(int(np.ceil(burn_in / (dt * save_every) - 1e-9)), num_saves)
    y0s, plan, schedule = _plan(system, z0s, solver, (dt, num_saves, save_every), "scan", inputs)
    if isinstance(system, LowRankRNN):
        subspace = model_subspace(system)
        run = lambda stream: network_ensemble(
            system, subspace, y0s, key, schedule, stream, plan=plan
        )[0]
    else:
        run = lambda stream: target_ensemble(system.sde(), y0s, key, schedule, stream, plan)
    if y0s.shape[0] * (num_saves + 1 - stream) < 2:
        raise ValueError(
            "Expected at least 2 states after burn_in for a covariance; got "
            f"{y0s.shape[0]} trajectory x {num_saves + 1 - stream} save."
        )
    acc = run(jnp.asarray(stream))  # traced: another burn_in compiles nothing new
    if traced(acc):  # the pure path: combined in the states' dtype, checked at run time
        mean, m2, _, residuals = _combine(acc, jnp, acc["mean"].dtype)
        count = y0s.shape[0] * (num_saves + 1 - stream)  # static
        finite = jnp.all(jnp.isfinite(mean)) & jnp.all(jnp.isfinite(m2))
        mean, m2, residuals = _checked((mean, m2, residuals), finite, system, "simulate_*")
        return Moments(mean, m2 / (count - 1), count, **residuals)
    mean, m2, count, residuals = _combine(acc, np, np.float64)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(m2))):
        raise SimulationDiverged(
            f"The {_name(system)} simulation became non-finite: reduce dt, "
            "or check the parameters and initial states (simulate_* names the time and "
            "trajectory)."
        )
    residuals = {name: float(value) for name, value in residuals.items()}
    return Moments(mean, m2 / (count - 1), int(count), **residuals)


def _combine(acc: dict, xp, dtype):
    """Exact combination (Chan et al.) of per-trajectory running moments.

    In ``xp`` (NumPy on the host, or jax.numpy when traced) and ``dtype``; returns
    ``(mean, co-moment, count, residuals)``.
    """
    acc = jax.tree.map(lambda a: xp.asarray(a, dtype=dtype), acc)
    means, m2s, counts = acc["mean"] - acc["mean_c"], acc["m2"] - acc["m2_c"], acc["count"]
    count = counts.sum()
    mean = (counts[:, None] * means).sum(0) / count
    spread = means - mean
    m2 = m2s.sum(0) + xp.einsum("b,bi,bj->ij", counts, spread, spread)
    residuals = {}
    if "perp2" in acc:
        scale = xp.sqrt(acc["dist2"].sum() / count)
        residuals = {"residual": xp.sqrt(acc["perp2"].sum() / count) / scale,
                     "residual_max": acc["perp_max"].max() / scale}  # fmt: skip
    m2 = (m2 + m2.T) / 2  # each outer(delta, z - mean) is symmetric up to rounding
    return mean, m2, count, residuals
