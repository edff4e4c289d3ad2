"""Time-irreversibility: entropy production rate (EPR) and the reversible/irreversible split.

For ``dz = f dt + sqrt(2D) dB`` (Ito, ``D = G G^T / 2`` constant) with stationary density p,
``f = f_rev + f_irr``, ``f_rev = D grad log p``, ``f_irr = J / p`` and
``Phi = int f_irr^T D^-1 f_irr p dz`` (per unit time, in units of k_B). Exact forms: OU
(`ou_entropy_production`) and ``f = -(D + Q) grad U`` with quadratic U
(`potential_entropy_production`). Two estimators need only the drift and D:
`epr_from_samples` (``E_p[f^T D^-1 f + div f]``) and `epr_from_trajectories` (Stratonovich
``(1/T) int f^T D^-1 o dz``), each with an interval from independent trajectories.
The network's split ``W_s = W_rev + W_irr`` is in `_reversible.py`.

Everything here composes with ``jax.jit``, ``jax.vmap`` and ``jax.grad``: shape checks run
eagerly; value checks (positive-definite D, antisymmetric Q, no private noise) raise on the
host when the values are concrete and become `eqx.error_if` when they are traced; an
`Estimate` holds Python floats and a float64 NumPy array when its groups are concrete, JAX
arrays when they are traced.
"""

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..network import LowRankRNN
from ..targets import Target, ou_stationary_covariance


@functools.cache
def quantile95(groups: int | np.integer | None = None) -> float:
    """Half-width of a two-sided 95% interval in standard errors, from ``groups`` values.

    Student's t quantile with ``groups - 1`` degrees of freedom (the mean of few independent
    groups over its estimated standard error is t-distributed, not normal): 12.71 for 2
    groups, 3.18 for 4, 2.04 for 32, 1.97 for 256; the normal 1.96 for ``None`` (a standard
    error that is known, or from very many values). The one place the library takes it from.
    """
    if groups is None:
        return 1.959963984540054
    if int(groups) < 2:
        raise ValueError(f"Expected at least 2 groups for a t quantile; got {groups}.")
    from scipy.stats import t  # scipy.stats takes a while to import: on first use only

    return float(t.ppf(0.975, int(groups) - 1))


def _traced(tree) -> bool:
    """Whether a leaf of ``tree`` is a tracer (inside jit, vmap or grad)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


# ---------------------------------------------------------------- the diffusion matrix


def diffusion_matrix(system: Target | LowRankRNN) -> Float[Array, "k k"]:
    """The constant ``D = G G^T / 2`` of a target, or of a network in target coordinates.

    For a network ``G = S Ghat / tau`` (`LowRankRNN.latent_noise_target`).

    Pure in the system's arrays (jit, vmap, grad); a traced ``private_noise`` is checked at
    run time (`eqx.error_if`), a concrete one here.

    Raises:
        ValueError: for state-dependent noise or private neuron noise, where D is not a
            constant matrix in the latent coordinates and the constant-D estimators do not apply.
    """
    if isinstance(system, LowRankRNN):
        if system.noise_readout is not None:
            raise ValueError(
                "Expected a network with additive (constant) noise for the constant-D "
                "entropy production estimators; got a state-dependent noise read-out."
            )
        if not _traced(system.private_noise) and float(system.private_noise) > 0:
            raise ValueError(
                "Expected a network without private neuron noise for the constant-D "
                f"estimators; got private_noise={float(system.private_noise)}."
            )
        G = system.scale[:, None] * system.noise_const / system.tau
        if _traced(system.private_noise):
            G = eqx.error_if(
                G,
                system.private_noise > 0,
                "Expected a network without private neuron noise for the constant-D "
                "estimators; got private_noise > 0.",
            )
    elif isinstance(system, Target):
        if not system.additive:
            raise ValueError(
                "Expected a target with additive (constant) noise for the constant-D entropy "
                f"production estimators; got state-dependent noise in target {system.name!r}."
            )
        G = system.g(system.centre)
    else:
        raise TypeError(f"Expected a Target or a LowRankRNN; got {type(system).__name__}.")
    return G @ G.T / 2


def _check_D(D, k: int) -> Float[Array, "k k"]:
    D = jnp.asarray(D)
    if D.shape != (k, k):
        raise ValueError(f"Expected a ({k}, {k}) diffusion matrix D; got shape {D.shape}.")
    if _traced(D):
        positive = jnp.all(jnp.linalg.eigvalsh((D + D.T) / 2) > 0)
        message = "Expected a symmetric positive-definite D (the estimators divide by it)."
        return eqx.error_if((D + D.T) / 2, ~positive, message)
    with jax.ensure_compile_time_eval():  # a concrete D is checked now, inside jit as well
        positive = bool(jnp.all(jnp.linalg.eigvalsh((D + D.T) / 2) > 0))
    if not positive:
        raise ValueError(
            "Expected a symmetric positive-definite D (the estimators divide by it); got "
            f"eigenvalues {np.linalg.eigvalsh(np.asarray((D + D.T) / 2))}."
        )
    return (D + D.T) / 2


# ---------------------------------------------------------------- exact answers


class OUIrreversibility(NamedTuple):
    """Exact stationary quantities of ``dz = -B z dt + sqrt(2D) dB``.

    Attributes:
        cov: S, solving ``B S + S B^T = 2D``.
        Q: ``B S - D`` (antisymmetric): ``f_irr = -Q S^-1 z``, ``f_rev = -D S^-1 z``.
        epr: ``Phi = -tr(D^-1 B Q) = tr(S^-1 Q^T D^-1 Q)``.
    """

    cov: Float[Array, "k k"]
    Q: Float[Array, "k k"]
    epr: Float[Array, ""]


def ou_entropy_production(B: Float[Array, "k k"], D: Float[Array, "k k"]) -> OUIrreversibility:
    """Exact EPR of the OU process ``dz = -B z dt + sqrt(2D) dB`` (B stable, D > 0)."""
    B = jnp.asarray(B)
    D = _check_D(D, B.shape[0])
    S = ou_stationary_covariance(B, D)
    Q = B @ S - D
    return OUIrreversibility(S, Q, -jnp.trace(jnp.linalg.solve(D, B @ Q)))


def potential_entropy_production(
    D: Float[Array, "k k"], Q: Float[Array, "k k"], A: Float[Array, "k k"]
) -> Float[Array, ""]:
    """Exact EPR of ``f = -(D + Q) grad U`` with ``U = z^T A z / 2`` (A > 0, Q^T = -Q).

    The stationary density is ``exp(-U)``, ``f_rev = -D grad U``, ``f_irr = -Q grad U``, so
    ``Phi = E[(A z)^T Q^T D^-1 Q (A z)] = tr(A Q^T D^-1 Q)``, which is the OU value for
    ``B = (D + Q) A`` (then ``S = A^-1`` and ``B S - D = Q``). Zero for ``Q = 0``.
    """
    D = _check_D(D, jnp.shape(A)[0])
    Q, A = jnp.asarray(Q), jnp.asarray(A)
    message = "Expected an antisymmetric Q (Q^T = -Q); got a matrix that is not."
    if _traced(Q):
        Q = eqx.error_if(Q, ~jnp.allclose(Q, -Q.T), message)
    else:
        with jax.ensure_compile_time_eval():  # a concrete Q is checked now, inside jit as well
            if not bool(jnp.allclose(Q, -Q.T)):
                raise ValueError(message)
    return jnp.trace(A @ Q.T @ jnp.linalg.solve(D, Q))


# ---------------------------------------------------------------- estimators


class Estimate(NamedTuple):
    """An estimate with a 95% interval from independent groups (trajectories).

    Python floats and a float64 NumPy array from concrete groups (the eager layer); JAX arrays
    in the groups' dtype from traced ones (inside jit or vmap).

    Attributes:
        value: mean of the per-group estimates.
        stderr: their standard deviation over ``sqrt(groups)``.
        low: ``value - t stderr``, with t Student's 97.5% quantile for ``groups - 1``
            degrees of freedom (`quantile95`: 12.71 for 2 groups, 2.04 for 32).
        high: ``value + t stderr``.
        groups: the per-group estimates ``(B,)``.
    """

    value: float
    stderr: float
    low: float
    high: float
    groups: np.ndarray

    def covers(self, x: float) -> bool | Array:
        """Whether ``x`` lies in the 95% interval (a boolean array when traced)."""
        if _traced((self.low, self.high, x)):
            return (self.low <= x) & (x <= self.high)
        return self.low <= x <= self.high


def _estimate(groups) -> Estimate:
    """The interval of the per-group estimates.

    In float64 on the host when they are concrete (the eager layer), in JAX in their own
    dtype when they are traced.
    """
    if _traced(groups):
        groups = jnp.asarray(groups)
        _check_groups(groups.shape)
        value = jnp.mean(groups)
        stderr = jnp.std(groups, ddof=1) / np.sqrt(groups.size)
        half = quantile95(groups.size) * stderr
        return Estimate(value, stderr, value - half, value + half, groups)
    groups = np.asarray(groups, dtype=np.float64)
    _check_groups(groups.shape)
    value = float(groups.mean())
    stderr = float(groups.std(ddof=1) / np.sqrt(groups.size))
    half = quantile95(groups.size) * stderr
    return Estimate(value, stderr, value - half, value + half, groups)


def _check_groups(shape: tuple) -> None:
    if len(shape) != 1 or int(np.prod(shape)) < 2:
        raise ValueError(
            "Expected at least 2 independent trajectories for an interval; got "
            f"{int(np.prod(shape))}."
        )


def _grouped(zs, k: int, name: str) -> Float[Array, "B T k"]:
    zs = jnp.asarray(zs)
    if zs.ndim != 3 or zs.shape[-1] != k:
        raise ValueError(f"Expected {name} of shape (trajectories, times, {k}); got {zs.shape}.")
    return zs


TRAJECTORY_BATCH = 8  # trajectories evaluated at once: bounds memory by 8 x T x n activations


def _per_trajectory(fn, zs):
    """``fn`` of every trajectory of ``zs``, `TRAJECTORY_BATCH` at a time (one compiled call)."""
    return jax.jit(lambda zs: jax.lax.map(fn, zs, batch_size=TRAJECTORY_BATCH))(zs)


def epr_from_samples(f, D: Float[Array, "k k"], samples: Float[Array, "B T k"]) -> Estimate:
    """``Phi = E_p[f^T D^-1 f + div f]`` over stationary samples, constant D.

    Valid because ``f^T D^-1 f + div f`` integrates against p to ``E_p[f^T D^-1 f_irr]`` (by
    parts) and ``E_p[f_rev^T D^-1 f_irr] = int J . grad log p = 0`` since ``div J = 0``.
    ``div f`` is the trace of the autodiff Jacobian (cheap for k <= 3).

    Args:
        f: the drift ``f(z) -> (k,)``, a pure JAX function.
        D: ``(k, k)`` diffusion matrix ``G G^T / 2``.
        samples: ``(B, T, k)`` stationary states of B independent trajectories (burn-in
            discarded); the interval comes from the spread of the B per-trajectory means.

    Pure in ``D``, ``samples`` and what ``f`` closes over (jit, vmap, grad); the eager layer is
    `Estimate`'s float64 summary of the per-trajectory values, made when they are concrete.
    """
    D = _check_D(D, jnp.shape(D)[0])
    samples = _grouped(samples, D.shape[0], "samples")
    Dinv = jnp.linalg.inv(D)

    def one(z):
        fz, jac = f(z), jax.jacfwd(f)(z)
        return fz @ Dinv @ fz + jnp.trace(jac)

    per_traj = _per_trajectory(lambda zs: jnp.mean(jax.vmap(one)(zs)), samples)
    return _estimate(per_traj)


def epr_from_trajectories(
    f, D: Float[Array, "k k"], zs: Float[Array, "B T k"], dt: float
) -> Estimate:
    """``Phi = (1/T) int f(z)^T D^-1 o dz`` along trajectories (Stratonovich), constant D.

    Each step uses f at its midpoint, ``f((z_t + z_{t+dt}) / 2)^T D^-1 (z_{t+dt} - z_t)``; the
    discretisation error vanishes as ``dt -> 0``, so save states often (``dt`` of the order
    of the simulation step). It is the log-ratio of forward and time-reversed path
    probabilities per unit time.

    Args:
        f: the drift ``f(z) -> (k,)``.
        D: ``(k, k)`` diffusion matrix ``G G^T / 2``.
        zs: ``(B, T, k)`` stationary trajectories saved every ``dt``.
        dt: time between saved states.

    Pure in ``D``, ``zs`` and what ``f`` closes over, as `epr_from_samples`; ``dt`` is a
    static setting.
    """
    D = _check_D(D, jnp.shape(D)[0])
    zs = _grouped(zs, D.shape[0], "trajectories")
    if zs.shape[1] < 2 or not dt > 0:
        raise ValueError(
            f"Expected at least 2 saved states per trajectory and dt > 0; got {zs.shape[1]} "
            f"and dt={dt}."
        )
    Dinv = jnp.linalg.inv(D)

    def one(path):
        mid, dz = (path[1:] + path[:-1]) / 2, path[1:] - path[:-1]
        work = jnp.einsum("ti,ij,tj->t", jax.vmap(f)(mid), Dinv, dz)
        return jnp.sum(work) / (dt * (path.shape[0] - 1))

    return _estimate(_per_trajectory(one, zs))


def mean_with_interval(values: Float[Array, "B T"]) -> Estimate:
    """``E[values]`` with a 95% interval from the B independent rows (trajectories).

    Pure (jit, vmap, grad) as `epr_from_samples`.
    """
    values = jnp.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"Expected values of shape (trajectories, times); got {values.shape}.")
    return _estimate(jnp.mean(values, axis=1))
