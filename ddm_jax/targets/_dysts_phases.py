"""Phases of dysts flows: an angle becomes a point of a circle that the drift attracts.

Some dysts flows have coordinates that grow without bound (dysts's ``unbounded_indices``):
angles of pendulums and of the ABC flow, the phase of a periodic forcing, a clock that
drives a blinking protocol. No box holds them, but where the right-hand side is periodic in
such a coordinate ``theta`` (``f(z + P e_i) == f(z)``, checked numerically in float64) the
flow lives on a cylinder, and ``theta`` can be embedded as the point
``(c, s) = (cos(2 pi theta / P), sin(2 pi theta / P))``. The pair takes the coordinate's
place (the dimension grows by one per phase). Its drift is the rotation at the phase's
angular velocity ``w = 2 pi f_theta / P`` plus a radial term that makes the unit circle
attracting, so that noise and a network's errors do not carry the state off it:

    c' = -w s + kappa c (1 - c^2 - s^2),    s' = w c + kappa s (1 - c^2 - s^2),

and the other coordinates see ``theta = atan2(s, c) P / (2 pi)``, which does not depend on
the radius. Linearised, the radius relaxes to 1 at rate ``2 kappa``.
"""

import math
from typing import NamedTuple

import numpy as np

KAPPA = 1.0
"""Radial restoring rate of a phase's circle, per period of the flow.

The noise on ``c`` and ``s`` is 2% of their spread per square root of a period (about
0.7 for a phase that turns: 0.014); the radius is then an Ornstein-Uhlenbeck process of
rate ``2 KAPPA`` whose standard deviation is ``0.014 / sqrt(4 KAPPA) = 0.7%`` of the radius.
A rate of one per period is slow beside the flow's own time scales, so it adds no stiffness
(the package's Euler step is 1e-3 periods), and it is fast enough that an error of a few
percent of the drift displaces the radius by a few percent at most.

Euler's step itself turns ``(c, s)`` by ``w dt`` and lengthens it by ``sqrt(1 + (w dt)^2)``,
which the radial term balances ``w^2 dt / (4 KAPPA)`` above the circle: 2-3% for a phase
turning 10 radians a period at ``dt`` = 1e-3 periods, 80% for ArnoldWeb's fastest (67).
Target and network share that offset (it is the integrator's); a rate equal to each phase's
own angular velocity removed it but made the drift harder to fit (its radial part large
across the box), and the fits worse.
"""
TWO_PI = 2 * math.pi


class Phases(NamedTuple):
    """Which of dysts's ``k`` coordinates are phases, and each one's period."""

    k: int
    period: dict  # dysts coordinate -> its period P

    def position(self, j: int) -> int:
        """Where dysts's coordinate ``j`` (or its ``c``) sits in the embedded state."""
        return j + sum(1 for i in self.period if i < j)

    @property
    def dim(self) -> int:
        return self.k + len(self.period)

    def labels(self) -> tuple[str, ...]:
        """The embedded coordinates in words: ``x2`` is dysts's third coordinate."""
        out = []
        for j in range(self.k):
            if j not in self.period:
                out.append(f"x{j}")
                continue
            p = self.period[j]
            arg = f"x{j}" if math.isclose(p, TWO_PI) else f"2pi x{j}/{p:.6g}"
            out += [f"cos({arg})", f"sin({arg})"]
        return tuple(out)


def repeats(ref, points, i: int, period: float) -> bool:
    """Whether ``ref`` (dysts's rhs) repeats to 1e-9 at every point shifted by 1 and -3 periods."""
    for z in points:
        want = ref(z)
        if not np.all(np.isfinite(want)):
            return False
        for m in (1, -3):
            shifted = np.array(z, dtype=float)
            shifted[i] += m * period
            tol = 1e-9 * (1 + np.abs(want).max())
            if not np.allclose(ref(shifted), want, rtol=1e-9, atol=tol):
                return False
    return True


def find_period(ref, points, i: int, params: dict) -> float | None:
    """The period of ``ref`` (dysts's rhs) in coordinate ``i`` at every point, or None.

    Candidates, in order: 2 pi (an angle), then each positive scalar parameter ``p`` of the
    flow as ``p`` itself (a named period, such as a blinking protocol's ``tau``) and as
    ``2 pi / p`` (an angular frequency). The first under which the right-hand side `repeats`
    is the period.
    """
    scalars = [float(v) for v in params.values() if np.ndim(v) == 0 and np.isreal(v)]
    positive = [p for p in scalars if np.isfinite(p) and p > 0]
    candidates = [TWO_PI] + [c for p in positive for c in (p, TWO_PI / p)]
    return next((p for p in candidates if repeats(ref, points, i, p)), None)


def lift(z, phases: Phases) -> np.ndarray:
    """The embedded states of points of dysts (each phase replaced by its (c, s) in place)."""
    z = np.asarray(z, dtype=float)
    out = []
    for j in range(phases.k):
        if j in phases.period:
            a = (TWO_PI / phases.period[j]) * z[..., j]
            out += [np.cos(a), np.sin(a)]
        else:
            out.append(z[..., j])
    return np.stack(out, axis=-1)


def lower(u, phases: Phases, xp):
    """The embedded state -> dysts's coordinates (phases in ``(-P/2, P/2]``), any batch shape."""
    out = []
    for j in range(phases.k):
        p = phases.position(j)
        if j in phases.period:
            out.append(xp.arctan2(u[..., p + 1], u[..., p]) * (phases.period[j] / TWO_PI))
        else:
            out.append(u[..., p])
    return xp.stack(out, axis=-1)


def lifted_rhs(fz, u, phases: Phases, scale: float, kappa: float, xp):
    """The embedded drift at ``u`` from dysts's rhs ``fz`` at ``lower(u)`` (one state).

    Other coordinates: ``scale * f``. A phase's ``(c, s)``: rotation at ``w = scale * 2 pi
    f_theta / P`` plus ``kappa (c, s) (1 - c^2 - s^2)``.
    """
    out = []
    for j in range(phases.k):
        p = phases.position(j)
        if j not in phases.period:
            out.append(scale * fz[j])
            continue
        c, s = u[p], u[p + 1]
        w = (scale * TWO_PI / phases.period[j]) * fz[j]
        radial = kappa * (1 - c * c - s * s)
        out += [-w * s + radial * c, w * c + radial * s]
    return xp.stack(out)
