"""The mean and the diffusion of recorded increments, given a learned drift.

`increment_means` gives ``E[dz | z]`` over lags dt and 2 dt: ``h f`` for a drift fitted to
``dz / dt`` (plain), the flow of the learned drift for a corrected one. `residual_diffusion`
turns the residuals ``r = dz - E[dz | z]`` into a constant D: ``E[r r^T] / (2 dt)`` (plain,
O(dt)) or, corrected, the solution of the increment covariance along the flow to O(dt^3),
`diffusion_from_covariance` with the Jacobian moments of the drift (`jacobian_moments`).
`fit_data` in `_from_data` uses them; `_runs/_evaluate_data` too, on held-out data.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..network import LowRankRNN
from ..simulation import rk4_step
from ._data import Increments

FLOW_SUBSTEPS = 1  # RK4 steps per lag dt for the conditional mean (1, 2 and 4 agree on
# Lorenz at dt = 0.01 to 1e-5 in D: the local error O((dt |J|)^5) is far below the noise)
MOMENT_STATES = 65536  # states for the Jacobian moments (evenly strided: smooth averages)


def _map_blocks(fn, zs, dtype, block: int = 65536) -> tuple[np.ndarray, ...]:
    """``fn`` (jitted, vmapped) over blocks of ``zs``; outputs concatenated in float64."""
    parts = [tuple(np.asarray(a, float) for a in fn(jnp.asarray(zs[i : i + block], dtype)))
             for i in range(0, len(zs), block)]  # fmt: skip
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def _flow(drift, h: float, substeps: int):
    """The deterministic flow map of ``drift`` over time ``h`` (classical RK4)."""

    def flow(z):
        step = lambda z, _: (rk4_step(drift, z, h / substeps), None)
        return jax.lax.scan(step, z, None, length=substeps)[0]

    return flow


def increment_means(model: LowRankRNN, inc: Increments, correct: bool, *, both: bool = True):
    """The conditional means of ``dz1`` and (``both``) ``dz2`` that the residuals subtract.

    A drift fitted to ``dz / dt`` already holds the O(dt) term: ``dt f`` and ``2 dt f``. A
    corrected drift is f itself (to O(dt^2)), and the mean of an increment over lag h is
    ``phi_h(z) - z``, ``phi_h`` the flow of the learned drift (RK4, `FLOW_SUBSTEPS` steps a
    lag; the Ito term ``(h^2 / 2) D : grad grad f`` is neglected). The Taylor form
    ``h f + (h^2 / 2) J f`` is not enough for Lorenz at dt = 0.01: its O(h^3) error at lag
    2 dt biased D by 3.5% with the true drift, the flow by 1.0%. Without ``both`` the second
    mean is None (and costs nothing).
    """
    f = model.target_drift
    if not correct:
        one, two = (lambda z: inc.dt * f(z)), (lambda z: 2 * inc.dt * f(z))
    else:
        flow1, flow2 = _flow(f, inc.dt, FLOW_SUBSTEPS), _flow(f, 2 * inc.dt, 2 * FLOW_SUBSTEPS)
        one, two = (lambda z: flow1(z) - z), (lambda z: flow2(z) - z)
    if not both:
        return _map_blocks(jax.jit(jax.vmap(lambda z: (one(z),))), inc.z, model.W_s.dtype)[0], None
    return _map_blocks(jax.jit(jax.vmap(lambda z: (one(z), two(z)))), inc.z, model.W_s.dtype)


def jacobian_moments(drift, zs, dtype) -> dict[str, np.ndarray]:
    """Averages over ``zs`` of ``J``, ``J^2``, ``J (x) J`` and ``dJ/dt = (f . grad) J``.

    ``J`` the Jacobian of ``drift``; ``J (x) J`` as the ``(k^2, k^2)`` Kronecker product.
    Over at most `MOMENT_STATES` states, evenly strided through ``zs``.
    """
    zs = zs[:: -(-len(zs) // MOMENT_STATES)]
    jac = jax.jacfwd(drift)

    def one(z):
        J, dJ = jax.jvp(jac, (z,), (drift(z),))
        return J, J @ J, dJ

    J, J2, dJ = _map_blocks(jax.jit(jax.vmap(one)), zs, dtype)
    k = J.shape[-1]
    JJ = np.einsum("nij,nkl->ikjl", J, J).reshape(k * k, k * k) / len(J)
    return {"J": J.mean(0), "J2": J2.mean(0), "JJ": JJ, "dJ": dJ.mean(0)}


def diffusion_from_covariance(C: np.ndarray, h: float, moments: dict) -> np.ndarray:
    """Constant D from the mean residual covariance ``C`` of increments over lag h.

    Along the flow the covariance of an increment obeys ``P' = J P + P J^T + 2 D``, ``P(0) =
    0``, ``J`` the Jacobian along the mean path, so to O(h^4)
    ``P(h) = 2 D h + h^2 (J D + D J^T) + (h^3 / 3) (J^2 D + 2 J D J^T + D J^T^2
    + 2 J' D + 2 D J'^T)``, ``J' = (f . grad) J``. Averaged over the states this is linear in
    D (`jacobian_moments`); solved as a ``k^2 x k^2`` system and symmetrised. With the true
    Lorenz drift at dt = 0.01 it leaves 0.5% (``C / 2h`` alone: 7%).
    """
    k = C.shape[0]
    eye = np.eye(k)
    kron_sum = lambda A: np.kron(A, eye) + np.kron(eye, A)  # vec(A D + D A^T), row-major
    M = (2 * h * np.eye(k * k) + h**2 * kron_sum(moments["J"])
         + h**3 / 3 * (kron_sum(moments["J2"]) + 2 * moments["JJ"]
                       + 2 * kron_sum(moments["dJ"])))  # fmt: skip
    D = np.linalg.solve(M, C.reshape(-1)).reshape(k, k)
    return (D + D.T) / 2


def residual_diffusion(model: LowRankRNN, inc: Increments, correct: bool) -> np.ndarray:
    """Constant D from the residuals ``r = dz - E[dz | z]`` over lag dt.

    Plain: ``E[r r^T] / (2 dt)``, biased by O(dt). Corrected: `diffusion_from_covariance`,
    with the Jacobian moments of the learned drift over the states.
    """
    m1, _ = increment_means(model, inc, correct, both=False)
    return diffusion_from_residuals(model, inc, inc.dz1 - m1, correct)


def diffusion_from_residuals(
    model: LowRankRNN, inc: Increments, r1: np.ndarray, correct: bool
) -> np.ndarray:
    """`residual_diffusion` given the residuals ``r1 = dz1 - E[dz1 | z]`` of `increment_means`."""
    C = r1.T @ r1 / len(r1)
    if not correct:
        D = C / (2 * inc.dt)
        return (D + D.T) / 2
    moments = jacobian_moments(model.target_drift, inc.z, model.W_s.dtype)
    return diffusion_from_covariance(C, inc.dt, moments)
