"""The matching losses, in the network's normalised coordinates.

With ``z = c + S v`` the drift loss is
``E_{v ~ rho} || -v + W_s phi(Gamma v + b) - tau S^-1 f(c + S v) ||^2``, and the diffusion loss
``|| Ghat Ghat^T - tau^2 S^-1 G G^T S^-1 ||_F^2`` (invariant to rotations of the noise).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..network import LowRankRNN
from ..targets import Target


def drift_loss(model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]) -> Float[Array, ""]:
    """Mean squared drift mismatch in normalised coordinates v (the training loss)."""

    def one(z):
        v = (z - model.centre) / model.scale
        return jnp.sum((model.latent_field(v) - model.tau * target.f(z) / model.scale) ** 2)

    return jnp.mean(jax.vmap(one)(zs))


def diffusion_loss(
    model: LowRankRNN, target: Target, zs: Float[Array, "batch k"]
) -> Float[Array, ""]:
    """``mean || Ghat Ghat^T - tau^2 S^-1 G G^T S^-1 ||_F^2`` (invariant to noise rotations)."""

    def one(z):
        ghat = model.latent_noise(model.embed(z))
        g = model.tau * target.g(z) / model.scale[:, None]
        return jnp.sum((ghat @ ghat.T - g @ g.T) ** 2)

    return jnp.mean(jax.vmap(one)(zs))
