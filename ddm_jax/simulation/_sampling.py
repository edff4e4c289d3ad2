"""Where drift matching looks: points uniform in the box, and points of the attractor.

``"box"`` draws uniformly in the target's box enlarged by 20%, ``"attractor"`` from a pool of
points of simulated target trajectories (`attractor_points`), ``"mixture"`` half of each.
"""

import warnings

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Key
from ..targets import Target
from ._simulate import SimulationDiverged, simulate_target

SAMPLERS = ("box", "attractor", "mixture")
POOL_DT = 1e-3
"""The default Euler-Maruyama step of `attractor_points` (``TrainConfig.pool_dt``)."""


def sample_box(key: Key, target: Target, num: int, enlarge: float = 0.0) -> Float[Array, "num k"]:
    """``num`` points uniform in the target's box, enlarged by ``enlarge`` on every side."""
    half = target.scale * (1 + enlarge)
    u = jr.uniform(key, (num, target.dim), minval=-1.0, maxval=1.0)
    return target.centre + half * u


def attractor_points(
    target: Target,
    *,
    key: Key,
    num: int = 65536,
    trajectories: int = 64,
    burn_in: float = 10.0,
    dt: float = POOL_DT,
    spread: float = 0.5,
) -> Float[Array, "num k"]:
    """``num`` points of the target's stationary regime, from simulated noisy trajectories.

    Trajectories start at ``z0 + spread * S xi`` (``xi ~ N(0, I)``, S the box's half-widths,
    clipped to the box; when fewer than half stay, again at a quarter of that spread, a
    sixteenth, then all at ``z0``, for attractors with small basins), run ``burn_in`` time
    units, then are sampled every ``max(10 dt, 20 / per_trajectory)`` so that each covers at
    least 20 time units, however few points are asked for. Starting near ``z0`` rather than
    anywhere in the box matters for chaotic flows whose box holds regions that escape to
    infinity: a trajectory that becomes non-finite or goes ten half-widths from the box
    centre is dropped (with a ``RuntimeWarning`` saying how many) and the points come from
    the others.

    Raises:
        SimulationDiverged: when fewer than half of the trajectories remain.
    """
    if not (np.isfinite(spread) and spread >= 0):
        raise ValueError(f"Expected a finite spread >= 0 (box half-widths); got {spread!r}.")
    k_init, k_sim, k_pick = jr.split(key, 3)
    per_traj = -(-num // trajectories)
    save_dt = dt * max(10, round(20 / (per_traj * dt)))
    xi = jr.normal(k_init, (trajectories, target.dim))
    for tried in (spread, spread / 4, spread / 16, 0.0):  # small basins: start nearer z0
        z0s = jnp.clip(target.z0 + tried * target.scale * xi, target.box_low, target.box_high)
        run = simulate_target(
            target, z0s, key=jr.clone(k_sim), t1=burn_in + per_traj * save_dt, dt=dt,
            save_dt=save_dt, check=False,
        )  # fmt: skip
        far = np.abs(np.asarray(run.zs) - np.asarray(target.centre)) > 10 * np.asarray(target.scale)
        kept = ~np.any(far | ~np.isfinite(np.asarray(run.zs)), axis=(1, 2))
        if kept.sum() >= trajectories / 2 or spread == 0:
            break
    if kept.sum() < trajectories / 2:
        raise SimulationDiverged(
            f"Expected the attractor of {target.name!r} to hold most trajectories started at "
            f"z0 {np.asarray(target.z0).tolist()} +- {spread} box half-widths; "
            f"{trajectories - kept.sum()} of {trajectories} diverged (non-finite, or ten "
            "half-widths from the box centre), and still at spreads down to 0. Give the "
            "target a z0 on its attractor, or reduce dt."
        )
    if not kept.all():
        warnings.warn(
            f"attractor_points: {trajectories - kept.sum()} of {trajectories} trajectories of "
            f"{target.name!r} diverged and were dropped; the points come from the other "
            f"{kept.sum()}.",
            RuntimeWarning,
            stacklevel=2,
        )
    first = int(round(burn_in / save_dt)) + 1
    pts = run.zs[np.flatnonzero(kept), first : first + per_traj].reshape(-1, target.dim)
    if kept.all():
        return jr.permutation(k_pick, pts)[:num]
    return pts[jr.choice(k_pick, pts.shape[0], (num,), replace=pts.shape[0] < num)]


def batch_points(key, target, pool, config):
    """A batch of ``config.batch`` points drawn as ``config.sampler`` says (see `TrainConfig`)."""
    if config.sampler == "box" or pool is None:
        return sample_box(key, target, config.batch, config.enlarge)
    k_box, k_pool = jr.split(key)
    from_pool = (
        config.batch
        if config.sampler == "attractor"
        else round(config.batch * config.attractor_fraction)
    )
    idx = jr.randint(k_pool, (from_pool,), 0, pool.shape[0])
    box = sample_box(k_box, target, config.batch - from_pool, config.enlarge)
    return jnp.concatenate([pool[idx], box])
