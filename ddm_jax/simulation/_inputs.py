"""Latent inputs ``u(t)`` for simulations, and the protocols of the memory experiments.

An input enters the target SDE as ``dz = (f(z) + u(t)) dt + G dB`` and the network through
``B_in = tau Gamma S^-1`` (see `LowRankRNN`), so the network's read-out obeys the same
equation.
For a gradient target ``f = -grad U`` a constant ``u`` tilts the landscape, ``U -> U - u.z``.

An input is either any pure function ``u(t) -> (k,)`` shared by every trajectory, or a
`Schedule`: a piecewise-constant input made of pulses, with an optional leading batch axis
that gives each trajectory its own pulses (the amplitudes of an experiment, vmapped). The
engine holds ``u`` constant over each step at its value at the step's midpoint
``t + dt / 2``: a pulse on ``[start, stop)`` acts on exactly the steps whose midpoints it
covers, and for smooth ``u`` it is the midpoint rule for ``int u dt``.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._custom_types import ArrayLike, LatentVec

Input = Callable[[Float[Array, ""]], LatentVec]


class Schedule(eqx.Module):
    """Piecewise-constant input ``u(t) = sum_p values[p] 1[starts[p] <= t < stops[p]]``.

    Pulses may overlap (they add). With a leading batch axis on every field, trajectory i of
    an ensemble of B gets ``u_i(t)`` from row i (`batch` is then B).

    Attributes:
        starts: ``(*batch, P)`` onsets of the P pulses.
        stops: ``(*batch, P)`` ends (exclusive).
        values: ``(*batch, P, k)`` latent input during each pulse, in target coordinates.
    """

    starts: Float[Array, "*batch P"]
    stops: Float[Array, "*batch P"]
    values: Float[Array, "*batch P k"]

    def __check_init__(self):
        if (
            self.values.ndim not in (2, 3)
            or self.values.shape[:-1] != self.starts.shape
            or (self.stops.shape != self.starts.shape)
        ):
            raise ValueError(
                "Expected starts and stops of shape ([B,] P) and values of shape ([B,] P, k); "
                f"got {self.starts.shape}, {self.stops.shape} and {self.values.shape}."
            )

    @property
    def batch(self) -> int | None:
        """B when each trajectory has its own pulses, else None."""
        return self.starts.shape[0] if self.starts.ndim == 2 else None

    @property
    def dim(self) -> int:
        """k, the latent dimension."""
        return self.values.shape[-1]

    def __call__(self, t: Float[Array, ""]) -> Float[Array, "*batch k"]:
        """The input at time t (one row per trajectory when batched)."""
        on = (self.starts <= t) & (t < self.stops)
        return jnp.sum(jnp.where(on[..., None], self.values, 0.0), axis=-2)


def _floats(x) -> Array:
    return jnp.asarray(x, dtype=jnp.result_type(float))


def pulses(values: ArrayLike, starts: ArrayLike, durations: ArrayLike) -> Schedule:
    """A sequence of pulses: ``values[p]`` on ``[starts[p], starts[p] + durations[p])``.

    Args:
        values: ``(P, k)`` inputs, or ``(B, P, k)`` for one sequence per trajectory.
        starts: onsets, broadcast to ``values.shape[:-1]``.
        durations: lengths (>= 0), broadcast likewise.

    Raises:
        ValueError: for a negative or non-finite duration or onset, or bad shapes.
    """
    values = _floats(values)
    if values.ndim not in (2, 3):
        raise ValueError(f"Expected values of shape (P, k) or (B, P, k); got {values.shape}.")
    try:
        starts = jnp.broadcast_to(_floats(starts), values.shape[:-1])
        durations = jnp.broadcast_to(_floats(durations), values.shape[:-1])
    except ValueError as err:
        raise ValueError(
            f"Expected starts and durations that broadcast to {values.shape[:-1]}: {err}"
        ) from err
    if not bool(jnp.all(jnp.isfinite(starts) & jnp.isfinite(durations) & (durations >= 0))):
        raise ValueError("Expected finite onsets and finite durations >= 0.")
    if not bool(jnp.all(jnp.isfinite(values))):
        raise ValueError("Expected finite input values.")
    return Schedule(starts, starts + durations, values)


def pulse(
    direction: ArrayLike, *, amplitude: ArrayLike = 1.0, onset: float = 0.0, duration: float
) -> Schedule:
    """One pulse ``amplitude * direction`` on ``[onset, onset + duration)``.

    Args:
        direction: ``(k,)`` direction (normalised here), or ``(B, k)``, one per trajectory.
        amplitude: a scalar, or ``(B,)`` amplitudes (one trajectory each, vmapped by the
            engine); broadcast against ``direction``.
        onset: start time.
        duration: length (>= 0).

    Raises:
        ValueError: for a zero direction or a non-finite amplitude.
    """
    direction = _floats(direction)
    norm = jnp.linalg.norm(direction, axis=-1, keepdims=True)
    if direction.ndim not in (1, 2) or not bool(jnp.all(norm > 0)):
        raise ValueError(f"Expected a non-zero direction of shape (k,) or (B, k); got {direction}.")
    amplitude = _floats(amplitude)
    if amplitude.ndim > 1 or not bool(jnp.all(jnp.isfinite(amplitude))):
        raise ValueError(f"Expected a finite scalar or (B,) amplitude; got {amplitude}.")
    values = amplitude[..., None] * (direction / norm)
    return pulses(values[..., None, :], onset, duration)


def cue(
    pattern: ArrayLike, *, strength: ArrayLike, duration: float, onset: float = 0.0
) -> Schedule:
    """A cue: a pulse of ``strength`` toward a stored pattern (a point of the latent space).

    The input points from the origin (for the ring of wells: the ring centre) toward
    ``pattern``; started from a noisy state near the centre, it tilts the landscape toward
    the cued well for ``duration``. ``strength`` may be ``(B,)``, one per trajectory.
    """
    return pulse(pattern, amplitude=strength, onset=onset, duration=duration)


def check_input(inputs, k: int, batch: int) -> bool:
    """Validate an input for an ensemble of ``batch`` in k dimensions; True when per trajectory.

    Raises:
        ValueError: when ``u(t)`` is not a ``(k,)`` vector or a batched `Schedule` does not
            have ``batch`` rows.
        TypeError: when ``inputs`` is neither a `Schedule` nor callable.
    """
    if isinstance(inputs, Schedule):
        if inputs.dim != k:
            raise ValueError(
                f"Expected an input of dimension k = {k} (the latent dimension); got a schedule "
                f"of dimension {inputs.dim}."
            )
        if inputs.batch is not None and inputs.batch != batch:
            raise ValueError(
                f"Expected a per-trajectory schedule with one row per trajectory ({batch}); got "
                f"{inputs.batch} rows."
            )
        return inputs.batch is not None
    if not callable(inputs):
        raise TypeError(f"Expected inputs to be a Schedule or a function u(t); got {inputs!r}.")
    t = jax.ShapeDtypeStruct((), jnp.result_type(float))
    shape = jax.eval_shape(inputs, t).shape
    if shape != (k,):
        raise ValueError(f"Expected u(t) to return shape ({k},); got {shape}.")
    return False
