"""The matching losses and the relative errors reported beside them.

With ``z = c + S v`` the drift loss is
``E_{v ~ rho} || -v + W_s phi(Gamma v + b) - tau S^-1 f(c + S v) ||^2``, and the diffusion loss
``|| Ghat Ghat^T - tau^2 S^-1 G G^T S^-1 ||_F^2`` (invariant to rotations of the noise).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..network._network import LowRankRNN
from ..targets._targets import Target


def drift_loss(model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]) -> Float[Array, ""]:
    """Mean squared drift mismatch in normalised coordinates v (the training loss)."""

    def one(z):
        v = (z - model.centre) / model.scale
        pred = -v + model.W_s @ model.phi(model.Gamma @ v + model.b)
        return jnp.sum((pred - model.tau * target.f(z) / model.scale) ** 2)

    return jnp.mean(jax.vmap(one)(zs))


@eqx.filter_jit
def drift_error(model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]) -> Float[Array, ""]:
    """Relative L2 drift error in target units, ``sqrt(mean ||f_net - f||^2 / mean ||f||^2)``."""
    pred = jax.vmap(model.target_drift)(zs)
    true = jax.vmap(target.f)(zs)
    return jnp.sqrt(jnp.sum((pred - true) ** 2) / jnp.sum(true**2))


def diffusion_loss(
    model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]
) -> Float[Array, ""]:
    """``mean || Ghat Ghat^T - tau^2 S^-1 G G^T S^-1 ||_F^2`` (invariant to noise rotations)."""

    def one(z):
        ghat = model.latent_noise(model.embed(z))
        g = model.tau * target.g(z) / model.scale[:, None]
        return jnp.sum((ghat @ ghat.T - g @ g.T) ** 2)

    return jnp.mean(jax.vmap(one)(zs))


@eqx.filter_jit
def diffusion_error(
    model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]
) -> Float[Array, ""]:
    """Relative error of the diffusion matrix in target units, over the points ``zs``.

    ``sqrt(sum ||G_net G_net^T - G G^T||_F^2 / sum ||G G^T||_F^2)``.
    """
    net = jax.vmap(model.latent_noise_target)(zs)
    true = jax.vmap(target.g)(zs)
    cov = lambda g: jnp.einsum("bij,bkj->bik", g, g)
    return jnp.sqrt(jnp.sum((cov(net) - cov(true)) ** 2) / jnp.sum(cov(true) ** 2))
