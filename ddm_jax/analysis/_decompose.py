"""The connectivity split ``W = W^S + W^A`` in low-rank form, and the Hopfield energy.

``W = Gamma W_s`` has rank k; its symmetric part ``W^S = (W + W^T) / 2`` and antisymmetric
part ``W^A = (W - W^T) / 2`` both factor through ``U = [Gamma, s W_s^T]`` (n x 2k):
``W^S = U M_S U^T``, ``W^A = U M_A U^T`` with the 2k x 2k cores
``M_S = [[0, I], [I, 0]] / (2 s)`` and ``M_A = [[0, I], [-I, 0]] / (2 s)``. So ``rank W^S <= 2k``
and each part is itself a low-rank network ``-x + (U) (M U^T) phi(x) + b`` with a 2k-dim
invariant manifold, simulable with `simulate_network`; the n x n matrix is never formed.
(``s`` balances the column norms of the two blocks; it cancels in the products.)

The symmetric sub-network ``tau dx/dt = -x + W^S phi(x) + b + B_in u`` is a graded-response
Hopfield network: with ``V = phi(x)`` it descends the energy
``E(V) = -1/2 V^T W^S V - (b + B_in u)^T V + sum_i int_0^{V_i} phi^-1(s) ds``,
``dE/dt = -tau sum_i phi'(x_i) (dx_i/dt)^2 <= 0``; ``W^A phi(x)`` circulates.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._custom_types import LatentVec, NeuronVec
from ..network import LowRankRNN


def _log_cosh(x):
    ax = jnp.abs(x)
    return ax + jnp.log1p(jnp.exp(-2 * ax)) - jnp.log(2.0)


# ``int_0^{phi(x)} phi^-1(s) ds`` as a function of x (stable where phi saturates):
# for tanh, ``V artanh V + log(1 - V^2) / 2`` with ``V = tanh x`` is ``x tanh x - log cosh x``.
INVERSE_INTEGRALS: dict[str, Callable] = {"tanh": lambda x: x * jnp.tanh(x) - _log_cosh(x)}


class ConnectivitySplit(eqx.Module):
    """``W^S = U M_S U^T`` and ``W^A = U M_A U^T`` with ``U = [Gamma, s W_s^T]``, n x 2k.

    Attributes:
        U: ``(n, 2k)`` common left and right factor.
        sym_core: ``(2k, 2k)`` symmetric core ``M_S``.
        anti_core: ``(2k, 2k)`` antisymmetric core ``M_A``.
    """

    U: Float[Array, "n k2"]
    sym_core: Float[Array, "k2 k2"]
    anti_core: Float[Array, "k2 k2"]

    def symmetric_matvec(self, v: NeuronVec) -> NeuronVec:
        """``W^S v`` in O(n k)."""
        return self.U @ (self.sym_core @ (self.U.T @ v))

    def antisymmetric_matvec(self, v: NeuronVec) -> NeuronVec:
        """``W^A v`` in O(n k)."""
        return self.U @ (self.anti_core @ (self.U.T @ v))

    def dense_symmetric(self) -> Float[Array, "n n"]:
        """The n x n ``W^S`` (for checks at small n only)."""
        return self.U @ self.sym_core @ self.U.T

    def dense_antisymmetric(self) -> Float[Array, "n n"]:
        """The n x n ``W^A`` (for checks at small n only)."""
        return self.U @ self.anti_core @ self.U.T


def connectivity_split(model: LowRankRNN) -> ConnectivitySplit:
    """Split ``W = Gamma W_s`` into symmetric and antisymmetric parts, both of rank <= 2k.

    Returns:
        The factors of `ConnectivitySplit`; ``W^S + W^A = W`` exactly in exact arithmetic.
    """
    k = model.k
    s = jnp.linalg.norm(model.Gamma) / jnp.linalg.norm(model.W_s)
    U = jnp.concatenate([model.Gamma, s * model.W_s.T], axis=1)
    eye, zero = jnp.eye(k, dtype=U.dtype), jnp.zeros((k, k), U.dtype)
    sym = jnp.block([[zero, eye], [eye, zero]]) / (2 * s)
    anti = jnp.block([[zero, eye], [-eye, zero]]) / (2 * s)
    return ConnectivitySplit(U, sym, anti)


def _sub_network(model: LowRankRNN, core, noise: bool) -> LowRankRNN:
    """The network ``-x + U (core U^T) phi(x) + b`` with model's noise, on 2k coordinates.

    Its coordinates are ``x = U w + b`` (centre 0, scale 1). The noise ``Gamma Ghat`` is
    ``U [Ghat; 0]``, so the neuron noise is the model's own.
    """
    split = connectivity_split(model)
    k, m = model.k, model.m
    pad = lambda a: jnp.concatenate([a, jnp.zeros_like(a)], axis=0)
    readout = model.noise_readout
    if readout is not None:
        readout = pad(readout.reshape(k, m, model.n)).reshape(2 * k * m, model.n)
    sub = LowRankRNN(
        Gamma=split.U,
        W_s=core(split) @ split.U.T,
        b=model.b,
        centre=jnp.zeros(2 * k, model.b.dtype),
        scale=jnp.ones(2 * k, model.b.dtype),
        noise_const=pad(model.noise_const),
        noise_readout=readout,
        private_noise=model.private_noise,
        tau=model.tau,
        activation=model.activation,
    )
    return sub if noise else without_noise(sub)


def without_noise(model: LowRankRNN) -> LowRankRNN:
    """The same network with every noise term set to zero (deterministic flows)."""
    readout = None if model.noise_readout is None else jnp.zeros_like(model.noise_readout)
    return eqx.tree_at(
        lambda m: (m.noise_const, m.noise_readout, m.private_noise),
        model,
        (jnp.zeros_like(model.noise_const), readout, jnp.zeros_like(model.private_noise)),
        is_leaf=lambda x: x is None,
    )


def symmetric_network(model: LowRankRNN, *, noise: bool = True) -> LowRankRNN:
    """The Hopfield sub-network ``tau dx = (-x + W^S phi(x) + b) dt + Sigma dW``.

    A `LowRankRNN` of latent dimension 2k (coordinates ``x = U w + b``), so `simulate_network`
    simulates it in O(n k) per step. Start it where the full network starts with
    `sub_network_state`. ``noise=False`` drops the noise (a deterministic Hopfield flow).
    """
    return _sub_network(model, lambda s: s.sym_core, noise)


def antisymmetric_network(model: LowRankRNN, *, noise: bool = True) -> LowRankRNN:
    """The circulating sub-network ``tau dx = (-x + W^A phi(x) + b) dt + Sigma dW`` (2k-dim)."""
    return _sub_network(model, lambda s: s.anti_core, noise)


def sub_network_state(model: LowRankRNN, z: LatentVec) -> Float[Array, " k2"]:
    """Coordinates w of a sub-network (`symmetric_network`) at the full network's ``x = E z + e``.

    ``x - b = Gamma v`` with ``v = S^-1 (z - c)`` is ``U [v; 0]``, so ``w = [v; 0]``.
    """
    v = (z - model.centre) / model.scale
    return jnp.concatenate([v, jnp.zeros_like(v)])


def _external(model: LowRankRNN, u):
    """``b + B_in u``: the constant drive of the energy."""
    return model.b if u is None else model.b + model.input_matrix @ u


def _inverse_integral(model: LowRankRNN) -> Callable:
    if model.activation not in INVERSE_INTEGRALS:
        raise ValueError(
            f"Expected an activation with a known Hopfield energy in {sorted(INVERSE_INTEGRALS)};"
            f" got {model.activation!r}."
        )
    return INVERSE_INTEGRALS[model.activation]


def hopfield_energy(
    model: LowRankRNN, x: NeuronVec, u: LatentVec | None = None
) -> Float[Array, ""]:
    """Graded-response energy ``E(V)`` of the symmetric part at ``V = phi(x)``, O(n k).

    ``E = -1/2 V^T W^S V - (b + B_in u)^T V + sum_i int_0^{V_i} phi^-1(s) ds``; the quadratic
    form of ``W^S`` equals that of ``W = Gamma W_s`` (``V^T W^A V = 0``), so
    ``V^T W^S V = (Gamma^T V) . (W_s V)``. The symmetric sub-network (`symmetric_network`)
    descends E; the full network need not.

    Args:
        model: the network (only ``Gamma``, ``W_s``, ``b``, ``scale``, ``tau`` and phi enter).
        x: ``(n,)`` neuron state.
        u: optional constant ``(k,)`` latent input (it tilts the energy).
    """
    integral = _inverse_integral(model)
    V = model.phi(x)
    quadratic = jnp.dot(model.Gamma.T @ V, model.W_s @ V)
    return -quadratic / 2 - jnp.dot(_external(model, u), V) + jnp.sum(integral(x))


def hopfield_energy_rate(
    model: LowRankRNN, x: NeuronVec, velocity: NeuronVec, u: LatentVec | None = None
) -> Float[Array, ""]:
    """Analytic ``dE/dt`` along a flow with ``dx/dt = velocity`` at ``x``.

    ``dE/dt = sum_i (x_i - (W^S V)_i - (b + B_in u)_i) phi'(x_i) dx_i/dt``, using
    ``phi^-1(V_i) = x_i``. Along the symmetric sub-network's own flow this is
    ``-tau sum_i phi'(x_i) (dx_i/dt)^2 <= 0``.
    """
    _inverse_integral(model)
    split = connectivity_split(model)
    V, slope = jax.jvp(model.phi, (x,), (jnp.ones_like(x),))
    grad_V = x - split.symmetric_matvec(V) - _external(model, u)
    return jnp.sum(grad_V * slope * velocity)


def symmetric_drift(model: LowRankRNN, x: NeuronVec, u: LatentVec | None = None) -> NeuronVec:
    """``(-x + W^S phi(x) + b + B_in u) / tau``: the Hopfield sub-network's drift at x."""
    split = connectivity_split(model)
    return (-x + split.symmetric_matvec(model.phi(x)) + _external(model, u)) / model.tau


def antisymmetric_field(model: LowRankRNN, x: NeuronVec) -> NeuronVec:
    """``W^A phi(x) / tau``: the circulating part of the full drift (no leak, no bias)."""
    return connectivity_split(model).antisymmetric_matvec(model.phi(x)) / model.tau
