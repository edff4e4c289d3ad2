"""Relative drift and diffusion errors of a network against its target, in target units."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..network import LowRankRNN
from ..targets import Target


@eqx.filter_jit
def drift_error(model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]) -> Float[Array, ""]:
    """Relative L2 drift error in target units, ``sqrt(mean ||f_net - f||^2 / mean ||f||^2)``."""
    pred = jax.vmap(model.target_drift)(zs)
    true = jax.vmap(target.f)(zs)
    return jnp.sqrt(jnp.sum((pred - true) ** 2) / jnp.sum(true**2))


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
