"""Which well a trajectory is in: hysteresis labels, hops and first-passage times.

A state belongs to a well once it enters that well's *core* (a disc of radius
``core * width`` about the well's centre) and keeps the label until it enters another core,
so crossing the saddle and falling back is not a hop. Everything acts on ``(B, T)`` label
arrays at once (no loop over trajectories); labels are -1 before the first core is entered.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..analysis import quantile95
from ..targets import Target


def well_geometry(target: Target) -> tuple[Float[Array, "K k"], Float[Array, ""]]:
    """Centres ``(K, k)`` and width of a target's wells, from its metadata.

    ``well_centres`` and ``well_width``, set by the registry's wells or by `from_callables`.

    Raises:
        ValueError: when ``target`` has no wells metadata.
    """
    if target.well_centres is None or target.well_width is None:
        raise ValueError(
            "Expected a target of the wells family (one with well_centres and well_width "
            f"metadata, see from_callables); got {target.name!r} without them."
        )
    return jnp.asarray(target.well_centres), jnp.asarray(target.well_width)


@jax.jit
def well_labels(
    zs: Float[Array, "B T 2"], centres: Float[Array, "K 2"], radius: Float[Array, ""]
) -> Int[Array, "B T"]:
    """Hysteresis labels: the well whose core (disc of ``radius``) was entered last, or -1.

    Args:
        zs: ``(B, T, 2)`` trajectories (saved states, in time order).
        centres: ``(K, 2)`` well centres.
        radius: core radius (for the registry's wells: a fraction of the width, less than
            half the distance between neighbouring centres, so cores do not overlap).
    """
    dist = jnp.linalg.norm(zs[..., None, :] - centres, axis=-1)  # (B, T, K)
    core = jnp.where(jnp.min(dist, -1) < radius, jnp.argmin(dist, -1), -1)
    steps = jnp.arange(zs.shape[1])
    last = jax.lax.cummax(jnp.where(core >= 0, steps, -1), axis=1)
    return jnp.where(last >= 0, jnp.take_along_axis(core, jnp.maximum(last, 0), 1), -1)


class Hops(NamedTuple):
    """Hops between wells of a ring of K, per trajectory.

    Attributes:
        forward: ``(B,)`` hops to the next well counter-clockwise (label + 1 mod K).
        backward: ``(B,)`` hops clockwise (label - 1 mod K).
        other: ``(B,)`` hops to a well that is not a neighbour (K > 3).
        mask: ``(B, T)`` True at the save where a hop completes (a new core is entered).
    """

    forward: Int[Array, " B"]
    backward: Int[Array, " B"]
    other: Int[Array, " B"]
    mask: Array

    @property
    def total(self) -> Int[Array, " B"]:
        """All hops of each trajectory."""
        return self.forward + self.backward + self.other


@partial(jax.jit, static_argnames="num_wells")
def count_hops(labels: Int[Array, "B T"], num_wells: int) -> Hops:
    """Hops of labelled trajectories on a ring of ``num_wells`` wells (see `Hops`).

    A hop is a change of label between two labelled saves; with K = 2 every hop counts as
    forward.
    """
    prev, new = labels[:, :-1], labels[:, 1:]
    hop = (prev >= 0) & (new != prev)
    step = jnp.mod(new - prev, num_wells)
    forward = hop & (step == 1)
    backward = hop & (step == num_wells - 1) & ~forward
    other = hop & ~forward & ~backward
    mask = jnp.pad(hop, ((0, 0), (1, 0)))
    return Hops(forward.sum(1), backward.sum(1), other.sum(1), mask)


@jax.jit
def dwell_times(hop_mask: Array, ts: Float[Array, " T"]) -> tuple[Array, Array]:
    """Sum and count of the times between consecutive hops, per trajectory.

    Each interval is a first-passage time from entering a well's core to entering the core
    of another (for neighbours on a ring: the mean first-passage time between neighbouring
    wells, whichever comes first). Only intervals with a hop at both ends count, so the
    first visit (whose start is not a core entry seen by the label) and the last (censored
    by the end of the run) are left out. Returns ``(total (B,), count (B,))``.
    """
    index = jnp.arange(ts.shape[0])
    marked = jnp.where(hop_mask, index, -1)
    before = jnp.pad(jax.lax.cummax(marked, axis=1)[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    counted = hop_mask & (before >= 0)
    total = jnp.sum(jnp.where(counted, ts[index] - ts[jnp.maximum(before, 0)], 0.0), axis=1)
    return total, counted.sum(1)


@jax.jit
def first_passage_times(
    labels: Int[Array, "B T"],
    ts: Float[Array, " T"],
    source: int | Int[Array, ""],
    dest: int | Int[Array, ""],
) -> Float[Array, " B"]:
    """Time from the first entry into well ``source`` to the first later entry into ``dest``.

    NaN for trajectories that never make that passage within the run.
    """
    index = jnp.arange(ts.shape[0])
    big = ts.shape[0]
    start = jnp.min(jnp.where(labels == source, index, big), axis=1)
    after = (labels == dest) & (index >= start[:, None])
    end = jnp.min(jnp.where(after, index, big), axis=1)
    ok = (start < big) & (end < big)
    return jnp.where(ok, ts[jnp.minimum(end, big - 1)] - ts[jnp.minimum(start, big - 1)], jnp.nan)


@partial(jax.jit, static_argnames="num_wells")
def well_occupancy(labels: Int[Array, "B T"], num_wells: int) -> Float[Array, " K"]:
    """Fraction of labelled saves spent in each well, over all trajectories."""
    counts = jnp.sum(labels[..., None] == jnp.arange(num_wells), axis=(0, 1))
    return counts / jnp.maximum(counts.sum(), 1)


def wilson_interval(successes, trials, z: float = quantile95()):
    """Wilson score interval of a binomial proportion: ``(low, high)``.

    ``z``: the normal quantile of the interval's level, by default the 95% one
    (`quantile95`, 1.95996).

    Better than ``p +- z sqrt(p (1 - p) / n)`` near 0 and 1, where that one collapses to a
    point.
    """
    successes, trials = jnp.asarray(successes, float), jnp.asarray(trials, float)
    p = successes / jnp.maximum(trials, 1)
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * jnp.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denom
    return centre - half, centre + half
