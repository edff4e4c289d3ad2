"""Tolerance helpers shared by the tests."""

import jax.random as jr
import numpy as np

import ddm_jax as ddm


def rel_err(a, b) -> float:
    """Relative Frobenius error ||a - b|| / ||b||."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cov_standard_error(cov: np.ndarray, num: int) -> np.ndarray:
    """Standard error of the entries of a sample covariance of ``num`` Gaussian samples."""
    var = np.outer(np.diag(cov), np.diag(cov)) + cov**2
    return np.sqrt(var / num)


def attractor_sample(target, *, key, trajectories=256, t1=20.0, burn_in=10.0, dt=1e-2):
    """Held-out points of the target's stationary regime, ``(trajectories * saves, k)``.

    Trajectories start uniformly in the box (so their phases are spread), run ``burn_in``
    time units and are then saved every ``10 dt``.
    """
    k_init, k_sim = jr.split(key)
    z0s = ddm.simulation.sample_box(k_init, target, trajectories)
    run = ddm.simulate_target(target, z0s, key=k_sim, t1=t1, dt=dt, save_dt=10 * dt)
    first = int(round(burn_in / (10 * dt))) + 1
    return run.zs[:, first:].reshape(-1, target.dim)


def multiplicative_ou():
    """2-d OU with state-dependent noise ``G(z) = diag(0.3 sqrt(1 + z^2))``."""
    import jax.numpy as jnp

    import ddm_jax as ddm

    return ddm.from_callables(
        lambda t, z, args: -z,
        lambda t, z, args: jnp.diag(0.3 * jnp.sqrt(1 + z**2)),
        box=([-2.0, -2.0], [2.0, 2.0]),
        name="multiplicative_ou",
    )
