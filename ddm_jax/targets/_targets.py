"""Target SDEs and their registry.

A target is the latent Ito SDE ``dz = f(t, z, args) dt + G(t, z, args) dB`` with
``z`` in R^k and ``B`` an m-dimensional Brownian motion; the diffusion matrix is
``D = G G^T / 2``. Drift and diffusion are pure functions with diffrax's signature; every
parameter lives in the ``args`` PyTree. A target also carries the metadata training and
evaluation need: a box that contains the attractor, a typical initial state, the network
size the paper used, the symmetry used to fold statistics, and what is known of its dynamics
(attractor kind, reference exponent or period, wells geometry). Analysis reads this metadata,
never the target's name; None means "unknown" (measured where needed).
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import ArrayLike, LatentVec, PyTree

Drift = Callable[[ArrayLike, LatentVec, PyTree], LatentVec]
Diffusion = Callable[[ArrayLike, LatentVec, PyTree], Float[Array, "k m"]]
Potential = Callable[[LatentVec, PyTree], Float[Array, ""]]

ATTRACTORS = ("chaotic", "limit_cycle", "fixed_point")


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

    Metadata of the noise-free flow ``dz/dt = f(z)`` (it does not depend on the noise); None
    means unknown, and analyses that need it measure it (`fidelity_report`, `census_applies`):
        attractor: the kind of the attractor(s) typical states end on: ``"chaotic"``,
            ``"limit_cycle"`` or ``"fixed_point"`` (one of `ATTRACTORS`).
        lyapunov: reference largest Lyapunov exponent (per time unit) of a chaotic attractor.
        period: reference period of a limit cycle.

    Wells metadata (the memory experiments need ``well_centres`` and ``well_width``):
        well_centres: centres of the wells, K tuples of k floats.
        well_width: length scale of a well (the labels' cores have radius ``0.75 width``).
        potential: ``U(z, args) -> ()``, the landscape whose Boltzmann weight ``exp(-U/T)``
            is compared with the wells' occupancy.
        circulation: ``alpha`` when the drift is ``-(I + alpha J) grad U`` (``J`` the quarter
            turn; 0 for a gradient flow): the stationary density is then ``exp(-U/T)`` and
            the entropy production is known exactly. None when the drift has no such form.
        ring_direction: +1 (counter-clockwise) or -1, the sense of the net probability
            current around the ring of wells; None: derived from ``circulation`` (clockwise
            for alpha > 0), counter-clockwise when that is None too.

    Coordinates:
        coordinates: what each of the k coordinates is, in words (a dysts flow's phases
            become ``cos`` and ``sin`` pairs), or None: the system's own coordinates.
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
    attractor: str | None = eqx.field(static=True, default=None)
    lyapunov: float | None = eqx.field(static=True, default=None)
    period: float | None = eqx.field(static=True, default=None)
    well_centres: tuple[tuple[float, ...], ...] | None = eqx.field(static=True, default=None)
    well_width: float | None = eqx.field(static=True, default=None)
    potential: Potential | None = eqx.field(static=True, default=None)
    circulation: float | None = eqx.field(static=True, default=None)
    ring_direction: int | None = eqx.field(static=True, default=None)
    coordinates: tuple[str, ...] | None = eqx.field(static=True, default=None)

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

    def sde(self) -> "Target":
        """The same SDE without its analysis metadata.

        Compiled calls take this, so that targets differing only in what is known about
        them (a reference exponent, a period) share one compiled program.
        """
        return dataclasses.replace(self, **dict.fromkeys(_METADATA))


# analysis metadata: static fields that describe the SDE but never enter its simulation
_METADATA = (
    "paper_neurons", "fold", "attractor", "lyapunov", "period", "well_centres", "well_width",
    "potential", "circulation", "ring_direction", "coordinates",
)  # fmt: skip


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
    attractor: str | None = None,
    lyapunov: float | None = None,
    period: float | None = None,
    well_centres: ArrayLike | None = None,
    well_width: float | None = None,
    potential: Potential | None = None,
    circulation: float | None = None,
    ring_direction: int | None = None,
    coordinates: tuple[str, ...] | None = None,
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
        attractor: ``"chaotic"``, ``"limit_cycle"``, ``"fixed_point"`` or None (unknown:
            measured where needed). The rest as in `Target`, None when unknown.
        lyapunov: reference largest Lyapunov exponent of a chaotic attractor.
        period: reference period of a limit cycle.
        well_centres: ``(K, k)`` centres of the wells (for the memory experiments).
        well_width: length scale of a well (for the memory experiments).
        potential: ``U(z, args)``, for the Boltzmann reference ``exp(-U/T)``.
        circulation: ``alpha`` of a drift ``-(I + alpha J) grad U`` (0: gradient flow).
        ring_direction: +1 or -1, the sense of the net current around the wells.
        coordinates: k labels saying what each coordinate is, or None.

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
    if coordinates is not None:
        coordinates = tuple(str(c) for c in coordinates)
        if len(coordinates) != k:
            raise ValueError(
                f"Expected {k} coordinate labels for target {name!r}; got {len(coordinates)}."
            )
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
    meta = _metadata(name, k, attractor, lyapunov, period, well_centres, well_width,
                     circulation, ring_direction)  # fmt: skip
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
        potential=potential,
        coordinates=coordinates,
        **meta,
    )


def _metadata(name, k, attractor, lyapunov, period, centres, width, circulation, direction):
    """Validated metadata of `from_callables`, as the hashable static values `Target` holds."""
    if attractor is not None and attractor not in ATTRACTORS:
        raise ValueError(
            f"Expected attractor among {ATTRACTORS} or None for target {name!r}; got {attractor!r}."
        )
    meta = {"attractor": attractor, "ring_direction": direction}
    for key, value in (("lyapunov", lyapunov), ("period", period), ("well_width", width),
                       ("circulation", circulation)):  # fmt: skip
        if value is not None:
            _check_finite(name, **{key: value})
            if np.ndim(value) != 0:
                raise ValueError(f"Expected a scalar {key} for target {name!r}; got {value!r}.")
            value = float(value)
        meta[key] = value
    if meta["period"] is not None and meta["period"] <= 0:
        raise ValueError(f"Expected period > 0 for target {name!r}; got {period!r}.")
    if meta["well_width"] is not None and meta["well_width"] <= 0:
        raise ValueError(f"Expected well_width > 0 for target {name!r}; got {width!r}.")
    if direction is not None and direction not in (1, -1):
        raise ValueError(
            f"Expected ring_direction +1 or -1 for target {name!r}; got {direction!r}."
        )
    if centres is not None:
        arr = np.asarray(centres, dtype=float)
        _check_finite(name, well_centres=arr)
        if arr.ndim != 2 or arr.shape[1] != k or arr.shape[0] < 1:
            raise ValueError(
                f"Expected well_centres of shape (K, {k}) for target {name!r}; got {arr.shape}."
            )
        centres = tuple(tuple(float(x) for x in row) for row in arr)
    meta["well_centres"] = centres
    if meta["ring_direction"] is not None:
        meta["ring_direction"] = int(meta["ring_direction"])
    return meta
