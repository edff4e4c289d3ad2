"""The low-rank recurrent network and its latent manifold.

``tau dx = (-x + Gamma W_s phi(x) + b + B_in u) dt + Sigma(x) dW`` (Ito), with the
connectivity ``W = Gamma W_s`` never materialised: one step costs O(n k), not O(n^2).
On ``M = {x = Gamma v + b}`` the drift is ``Gamma (-v + W_s phi(Gamma v + b))``, so M is
invariant and attracting at rate ``1 / tau``, and the latent dynamics are the perceptron
``tau dv/dt = -v + W_s phi(Gamma v + b)``. Target coordinates are ``z = c + S v``.
"""

import numbers
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float

from .._custom_types import Key, LatentVec, NeuronVec
from ..targets import Target

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh}


def _activation(name: str) -> Callable:
    if name not in ACTIVATIONS:
        raise ValueError(f"Expected activation in {sorted(ACTIVATIONS)}; got {name!r}.")
    return ACTIVATIONS[name]


class LowRankRNN(eqx.Module):
    """Low-rank rate network ``tau dx = (-x + Gamma W_s phi(x) + b + B_in u) dt + Sigma dW``.

    The noise is ``Sigma(x) dW = Gamma Ghat(x) dW_latent + sigma dW_private`` with
    ``Ghat(x) = noise_const + reshape(noise_readout phi(x), (k, m))``: a constant matrix for
    additive targets (exact, nothing to train) plus, for state-dependent targets, a second
    read-out of the hidden layer. ``sigma`` is optional private isotropic neuron noise; it
    leaves the manifold (see `private_noise_drift_bias`). The input matrix is
    ``B_in = tau Gamma S^-1``, so a latent input u enters the target as ``dz = (f + u) dt``.

    Attributes:
        Gamma: ``(n, k)`` left factor of the connectivity (hidden-layer weights).
        W_s: ``(k, n)`` right factor (read-out).
        b: ``(n,)`` bias (hidden-layer biases).
        centre: ``(k,)`` c in ``z = c + S v``.
        scale: ``(k,)`` diagonal of S.
        noise_const: ``(k, m)`` constant part of Ghat.
        noise_readout: ``(k m, n)`` state-dependent part of Ghat, or None.
        private_noise: scalar sigma of the private neuron noise (0 for none).
        tau: scalar time constant.
        activation: name of phi (``"tanh"``).
    """

    Gamma: Float[Array, "n k"]
    W_s: Float[Array, "k n"]
    b: Float[Array, " n"]
    centre: Float[Array, " k"]
    scale: Float[Array, " k"]
    noise_const: Float[Array, "k m"]
    noise_readout: Float[Array, "km n"] | None
    private_noise: Float[Array, ""]
    tau: Float[Array, ""]
    activation: str = eqx.field(static=True, default="tanh")

    def __check_init__(self):
        n, k = self.Gamma.shape
        if self.W_s.shape != (k, n) or self.b.shape != (n,):
            raise ValueError(
                f"Expected W_s of shape ({k}, {n}) and b of shape ({n},) for Gamma of shape "
                f"({n}, {k}); got {self.W_s.shape} and {self.b.shape}."
            )
        if self.centre.shape != (k,) or self.scale.shape != (k,):
            raise ValueError(
                f"Expected centre and scale of shape ({k},); "
                f"got {self.centre.shape} and {self.scale.shape}."
            )
        if self.noise_const.ndim != 2 or self.noise_const.shape[0] != k:
            raise ValueError(
                f"Expected noise_const of shape ({k}, m); got {self.noise_const.shape}."
            )
        if self.noise_readout is not None and self.noise_readout.shape != (
            self.noise_const.size,
            n,
        ):
            raise ValueError(
                f"Expected noise_readout of shape ({self.noise_const.size}, {n}); "
                f"got {self.noise_readout.shape}."
            )
        _activation(self.activation)

    # ---------------------------------------------------------------- sizes and maps
    @property
    def n(self) -> int:
        """Number of neurons."""
        return self.Gamma.shape[0]

    @property
    def k(self) -> int:
        """Latent dimension."""
        return self.Gamma.shape[1]

    @property
    def m(self) -> int:
        """Number of latent Brownian motions."""
        return self.noise_const.shape[1]

    @property
    def phi(self) -> Callable:
        """The activation function."""
        return _activation(self.activation)

    @property
    def embed_matrix(self) -> Float[Array, "n k"]:
        """E = Gamma S^-1 in ``x = E z + e``."""
        return self.Gamma / self.scale

    @property
    def offset(self) -> Float[Array, " n"]:
        """The offset e = b - Gamma S^-1 c in ``x = E z + e``."""
        return self.b - self.embed_matrix @ self.centre

    @property
    def input_matrix(self) -> Float[Array, "n k"]:
        """B_in = tau Gamma S^-1 = tau E: a latent input u then enters as ``dz = (f + u) dt``."""
        return self.embed_matrix * self.tau

    def embed(self, z: LatentVec) -> NeuronVec:
        """Neuron state ``x = E z + e`` of a target point z (a point of M)."""
        return self.Gamma @ ((z - self.centre) / self.scale) + self.b

    def readout(self, x: NeuronVec) -> LatentVec:
        """Least-squares read-out ``z = E^+ (x - e)`` (exact on M)."""
        v = jnp.linalg.lstsq(self.Gamma, x - self.b)[0]
        return self.centre + self.scale * v

    # ---------------------------------------------------------------- dynamics
    def latent_field(self, v: LatentVec) -> LatentVec:
        """``-v + W_s phi(Gamma v + b)``: the latent velocity in units of tau, ``tau dv/dt``.

        The one place the perceptron's drift is written: the drift loss matches it to
        ``tau S^-1 f(c + S v)``, `latent_drift` divides it by tau.
        """
        return -v + self.W_s @ self.phi(self.Gamma @ v + self.b)

    def latent_drift(self, v: LatentVec) -> LatentVec:
        """``(-v + W_s phi(Gamma v + b)) / tau``: the network's drift in coordinates v."""
        return self.latent_field(v) / self.tau

    def target_drift(self, z: LatentVec) -> LatentVec:
        """The network's latent drift in target coordinates z (compare with ``f(z)``)."""
        v = (z - self.centre) / self.scale
        return self.scale * self.latent_drift(v)

    def neuron_drift(self, x: NeuronVec, u: LatentVec | None = None) -> NeuronVec:
        """``(-x + Gamma (W_s phi(x)) + b + B_in u) / tau``, O(n k)."""
        rec = self.W_s @ self.phi(x)
        if u is not None:
            rec = rec + u / self.scale * self.tau
        return (-x + self.Gamma @ rec + self.b) / self.tau

    def latent_noise(self, x: NeuronVec) -> Float[Array, "k m"]:
        """Ghat(x), the ``(k, m)`` latent noise factor (target noise is ``S Ghat / tau``)."""
        if self.noise_readout is None:
            return self.noise_const
        return self.noise_const + (self.noise_readout @ self.phi(x)).reshape(self.noise_const.shape)

    def noise_prod(self, x: NeuronVec, dw: Float[Array, " m"], dw_private=None) -> NeuronVec:
        """``Sigma(x) dW / tau`` without forming the ``(n, m)`` matrix."""
        out = self.Gamma @ (self.latent_noise(x) @ dw)
        if dw_private is not None:
            out = out + self.private_noise * dw_private
        return out / self.tau

    def latent_noise_target(self, z: LatentVec) -> Float[Array, "k m"]:
        """The network's noise factor in target coordinates, ``S Ghat / tau`` (compare G)."""
        return self.scale[:, None] * self.latent_noise(self.embed(z)) / self.tau

    def dense_weights(self) -> Float[Array, "n n"]:
        """The n x n matrix ``W = Gamma W_s``: for analysis and baselines, never the hot path."""
        return self.Gamma @ self.W_s


def init_network(
    target: Target,
    n: int | numbers.Integral,
    *,
    key: Key,
    tau: float = 1.0,
    activation: str = "tanh",
    state_dependent_noise: bool | None = None,
    private_noise: float = 0.0,
) -> LowRankRNN:
    """A random network for ``target``, ready for drift matching.

    Initialisation: ``Gamma ~ N(0, 1)``, ``W_s ~ N(0, 1) / n``, ``b ~ N(0, 1)``; the
    coordinates are normalised to the target's box (``z = c + S v``) so tanh is not saturated.
    For additive targets the noise is matched exactly here: ``Ghat = tau S^-1 G``.

    Args:
        target: the target SDE.
        n: number of neurons, at least the latent dimension k.
        key: a JAX PRNG key.
        tau: neuron time constant (> 0).
        activation: name of the non-linearity.
        state_dependent_noise: learn a noise read-out (default: when the target's noise is
            not additive).
        private_noise: sigma of private isotropic noise on every neuron (>= 0).

    Raises:
        ValueError: for ``n < k``, non-positive ``tau`` or negative/non-finite noise.
    """
    k, m = target.dim, target.noise_dim
    if not isinstance(n, numbers.Integral) or n < k:  # NumPy integers too
        raise ValueError(
            f"Expected the number of neurons n >= k = {k} (the latent dimension); got {n}."
        )
    n = int(n)
    if not (tau > 0 and jnp.isfinite(tau)):
        raise ValueError(f"Expected a finite time constant tau > 0; got {tau}.")
    if not (private_noise >= 0 and jnp.isfinite(private_noise)):
        raise ValueError(f"Expected private_noise >= 0 and finite; got {private_noise}.")
    if state_dependent_noise is None:
        state_dependent_noise = not target.additive
    kg, kw, kb = jr.split(key, 3)
    dtype = jnp.result_type(float)
    G0 = target.g(target.centre)
    noise_const = tau * G0 / target.scale[:, None]
    return LowRankRNN(
        Gamma=jr.normal(kg, (n, k), dtype),
        W_s=jr.normal(kw, (k, n), dtype) / n,
        b=jr.normal(kb, (n,), dtype),
        centre=target.centre,
        scale=target.scale,
        noise_const=noise_const,
        noise_readout=jnp.zeros((k * m, n), dtype) if state_dependent_noise else None,
        private_noise=jnp.asarray(private_noise, dtype),
        tau=jnp.asarray(tau, dtype),
        activation=activation,
    )


def off_subspace_residual(model: LowRankRNN, xs: Float[Array, "... n"]) -> Float[Array, ""]:
    """Largest distance of neuron states from M, relative to their RMS distance from b.

    ``max_t ||(I - P_Gamma)(x_t - b)|| / sqrt(mean_t ||x_t - b||^2)``; exactly 0 in exact
    arithmetic for a network started on M without private noise.
    """
    d = xs.reshape(-1, model.n) - model.b
    Q, _ = jnp.linalg.qr(model.Gamma)
    perp = d - (d @ Q) @ Q.T
    return jnp.max(jnp.linalg.norm(perp, axis=-1)) / jnp.sqrt(jnp.mean(jnp.sum(d**2, axis=-1)))


def private_noise_drift_bias(
    model: LowRankRNN, zs: Float[Array, "batch k"], *, key: Key, samples: int = 256
) -> Float[Array, ""]:
    """Relative drift bias caused by private neuron noise, estimated by Monte Carlo.

    Private noise ``sigma dW`` on every neuron pushes x off M; the off-manifold part is an OU
    process with stationary covariance ``sigma^2 / (2 tau) (I - P_Gamma)``, and since
    ``E[tanh(h + xi)] != tanh(h)`` the latent drift becomes
    ``-v + W_s E[phi(Gamma v + b + xi)]``. Returns
    ``sqrt(mean ||bias||^2 / mean ||drift||^2)`` over the points ``zs`` in target units.
    The bias grows as ``sigma^2`` (measured on Lorenz-512: 0.2% at sigma = 0.1, 1.9% at 0.3,
    19% at 1; see the README).
    The in-manifold part of the private noise adds latent covariance
    ``sigma^2 E^+ E^+T`` on top of the matched diffusion.
    """
    Q, _ = jnp.linalg.qr(model.Gamma)
    std = model.private_noise / jnp.sqrt(2 * model.tau)

    def one(z, key):
        x = model.embed(z)
        xi = std * jr.normal(key, (samples, model.n))
        xi = xi - (xi @ Q) @ Q.T
        # antithetic pairs (xi, -xi) cancel the odd orders of the Monte Carlo error
        mean_phi = jnp.mean(model.phi(x + xi) + model.phi(x - xi), axis=0) / 2
        bias = model.scale * (model.W_s @ (mean_phi - model.phi(x))) / model.tau
        return bias, model.target_drift(z)

    bias, drift = jax.vmap(one)(zs, jr.split(key, zs.shape[0]))
    return jnp.sqrt(jnp.mean(jnp.sum(bias**2, -1)) / jnp.mean(jnp.sum(drift**2, -1)))
