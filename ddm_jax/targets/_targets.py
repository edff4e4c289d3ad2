"""Target SDEs and their registry.

A target is the latent Ito SDE ``dz = f(t, z, args) dt + G(t, z, args) dB`` with
``z`` in R^k and ``B`` an m-dimensional Brownian motion; the diffusion matrix is
``D = G G^T / 2``. Drift and diffusion are pure functions with diffrax's signature; every
parameter lives in the ``args`` PyTree. A target also carries the metadata training and
evaluation need: a box that contains the attractor, a typical initial state, the network
size the paper used, and (Lorenz) the symmetry used to fold statistics.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import ArrayLike, LatentVec, PyTree

Drift = Callable[[ArrayLike, LatentVec, PyTree], LatentVec]
Diffusion = Callable[[ArrayLike, LatentVec, PyTree], Float[Array, "k m"]]


class Target(eqx.Module):
    """A latent SDE ``dz = f(t, z, args) dt + G(t, z, args) dB`` (Ito) plus metadata.

    Attributes:
        name: registry name, or a user's label.
        drift: ``f(t, z, args) -> (k,)``. Matching assumes it does not depend on ``t``.
        diffusion: ``G(t, z, args) -> (k, m)``.
        args: parameters of ``f`` and ``G`` (a PyTree of arrays).
        box_low: lower corner of a box that contains the attractor, shape ``(k,)``.
        box_high: upper corner, shape ``(k,)``.
        z0: a typical initial state, shape ``(k,)``.
        noise_dim: m, the number of Brownian motions.
        additive: True when ``G`` does not depend on ``z`` (checked numerically).
        paper_neurons: network size used for this system in the paper, if any.
        fold: map applied before comparing statistics (Lorenz: ``(x, y, w) -> (-x, -y, w)``
            when ``x < 0``), or None.
    """

    name: str = eqx.field(static=True)
    drift: Drift = eqx.field(static=True)
    diffusion: Diffusion = eqx.field(static=True)
    args: PyTree
    box_low: Float[Array, " k"]
    box_high: Float[Array, " k"]
    z0: Float[Array, " k"]
    noise_dim: int = eqx.field(static=True)
    additive: bool = eqx.field(static=True)
    paper_neurons: int | None = eqx.field(static=True, default=None)
    fold: Callable[[LatentVec], LatentVec] | None = eqx.field(static=True, default=None)

    @property
    def dim(self) -> int:
        """k, the latent dimension."""
        return self.z0.shape[0]

    @property
    def centre(self) -> Float[Array, " k"]:
        """Centre ``c`` of the box; the network's coordinates are ``z = c + S v``."""
        return (self.box_low + self.box_high) / 2

    @property
    def scale(self) -> Float[Array, " k"]:
        """Half-widths ``S`` of the box."""
        return (self.box_high - self.box_low) / 2

    def f(self, z: LatentVec) -> LatentVec:
        """Drift at ``t = 0``."""
        return self.drift(0.0, z, self.args)

    def g(self, z: LatentVec) -> Float[Array, "k m"]:
        """Diffusion matrix factor ``G`` at ``t = 0``."""
        return self.diffusion(0.0, z, self.args)


def _check_finite(name: str, **values) -> None:
    for key, value in values.items():
        arr = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"Expected finite values for parameter {key!r} of target {name!r}; got {value!r}."
            )


def _noise_matrix(noise, k: int) -> Float[Array, "k m"]:
    """Turn a scalar, a vector of k per-coordinate levels, or a (k, m) matrix into G."""
    arr = jnp.asarray(noise, dtype=float)
    if arr.ndim == 0:
        return arr * jnp.eye(k)
    if arr.ndim == 1 and arr.shape[0] == k:
        return jnp.diag(arr)
    if arr.ndim == 2 and arr.shape[0] == k:
        return arr
    raise ValueError(
        f"Expected noise as a scalar, a vector of length {k} or a ({k}, m) matrix; "
        f"got shape {arr.shape}."
    )


def _constant_noise(t, z, args):
    return args["noise"]


def _is_additive(diffusion, args, points) -> bool:
    jac = jax.vmap(jax.jacfwd(lambda z: diffusion(0.0, z, args)))(points)
    return bool(jnp.all(jnp.abs(jac) == 0))


def from_callables(
    drift: Drift,
    diffusion: Diffusion,
    *,
    box: tuple[ArrayLike, ArrayLike],
    z0: ArrayLike | None = None,
    args: PyTree = None,
    name: str = "custom",
    paper_neurons: int | None = None,
    fold: Callable[[LatentVec], LatentVec] | None = None,
) -> Target:
    """Build a target from any drift/diffusion pair of the right shapes.

    Args:
        drift: ``f(t, z, args) -> (k,)``, autonomous (``t`` is ignored by matching).
        diffusion: ``G(t, z, args) -> (k, m)``, Ito convention.
        box: ``(low, high)``, each of shape ``(k,)``: a box containing the attractor.
            The network's coordinates are normalised to it.
        z0: initial state of shape ``(k,)``; defaults to the box centre.
        args: parameters passed to ``drift`` and ``diffusion``.
        name: a label for files and reports.
        paper_neurons: suggested network size.
        fold: optional symmetry map applied before comparing statistics.

    Returns:
        A validated `Target`.

    Raises:
        ValueError: when shapes disagree or a value is not finite.
    """
    low = jnp.asarray(box[0], dtype=float)
    high = jnp.asarray(box[1], dtype=float)
    if low.ndim != 1 or low.shape != high.shape:
        raise ValueError(
            f"Expected box = (low, high) with two vectors of equal length k; "
            f"got shapes {low.shape} and {high.shape}."
        )
    k = low.shape[0]
    if not bool(jnp.all(high > low)):
        raise ValueError(f"Expected box low < high in every coordinate; got {low} and {high}.")
    z0 = (low + high) / 2 if z0 is None else jnp.asarray(z0, dtype=float)
    if z0.shape != (k,):
        raise ValueError(f"Expected z0 of shape ({k},) to match the box; got {z0.shape}.")
    _check_finite(name, box_low=low, box_high=high, z0=z0)
    for leaf in jax.tree_util.tree_leaves(args):
        _check_finite(name, args=leaf)
    z_struct = jax.ShapeDtypeStruct((k,), z0.dtype)
    try:
        f_out = jax.eval_shape(lambda z: drift(0.0, z, args), z_struct)
        g_out = jax.eval_shape(lambda z: diffusion(0.0, z, args), z_struct)
    except Exception as err:  # a user's function that cannot take a (k,) state
        raise ValueError(
            f"Expected drift(t, z, args) and diffusion(t, z, args) to accept z of shape "
            f"({k},) (the box dimension); calling them failed with: {err}"
        ) from err
    if f_out.shape != (k,):
        raise ValueError(
            f"Expected drift(t, z, args) to return shape ({k},) (the box dimension); "
            f"got {f_out.shape}."
        )
    if len(g_out.shape) != 2 or g_out.shape[0] != k:
        raise ValueError(
            f"Expected diffusion(t, z, args) to return a ({k}, m) matrix; got {g_out.shape}."
        )
    probe = low + (high - low) * jax.random.uniform(jax.random.key(0), (16, k))
    return Target(
        name=name,
        drift=drift,
        diffusion=diffusion,
        args=args,
        box_low=low,
        box_high=high,
        z0=z0,
        noise_dim=g_out.shape[1],
        additive=_is_additive(diffusion, args, probe),
        paper_neurons=paper_neurons,
        fold=fold,
    )
