"""Attractor census of the noise-free skeleton: where do deterministic orbits end up?

Small drift errors can give a network's deterministic latent flow an attractor its target
lacks (a stable cycle inside a chaotic attractor, say) while its noisy stationary statistics
still look right. The census integrates the noise-free latent drift of network and target from
many starts on the target's attractor, measures the largest Lyapunov exponent of every orbit
and sorts the orbits into fixed points, (quasi-)periodic orbits and chaotic ones.

Classes (``CLASSES``), with the thresholds of `orbit_census`:
    - fixed point: the orbit's RMS spread over the averaging window is below
      ``fixed_tolerance`` times the box's half-width norm, or ``lambda < -chaos_threshold``;
    - chaotic: ``lambda > chaos_threshold``;
    - periodic: otherwise (``|lambda| <= chaos_threshold``, a limit cycle or a torus);
    - diverged: the orbit or its exponent became non-finite (it left every bounded region, or
      RK4's step was too long for the drift): never counted as one of the three above.
The RK4 step follows the drifts' stiffness (`census_step`): 0.02 time units, shorter where the
Jacobian at the starts has eigenvalues so large that 0.02 would be unstable.
For a limit cycle the finite-time estimate of the zero exponent is the log of a speed ratio
over the window, ``O(1 / time)``: about 0.001 for Van der Pol over 300 time units, well inside
the default threshold of 0.02 per time unit; the paper's chaotic targets have 0.37 (Dadras)
and 0.91 (Lorenz).
"""

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, Int

from .._custom_types import Key
from ..network import LowRankRNN
from ..simulation import POOL_DT, attractor_points, rk4_step
from ..targets import Target
from ._statistics import sliced_wasserstein, spread

FIXED, PERIODIC, CHAOTIC, DIVERGED = 0, 1, 2, 3
CLASSES = ("fixed point", "periodic", "chaotic", "diverged")
KINDS = ("fixed_point", "limit_cycle", "chaotic")  # the classes as `Target.attractor` names them


class Orbits(eqx.Module):
    """Per-start results of `orbit_census`.

    Attributes:
        exponent: largest Lyapunov exponent of each orbit, per time unit, ``(starts,)``.
        spread: RMS spread of each orbit over the averaging window, relative to the norm of
            the box half-widths, ``(starts,)``.
        classes: ``FIXED``, ``PERIODIC``, ``CHAOTIC`` or ``DIVERGED`` per start (names in
            ``CLASSES``).
        points: states saved along each orbit after the transient, ``(starts, samples, k)``.
    """

    exponent: Float[Array, " starts"]
    spread: Float[Array, " starts"]
    classes: Int[Array, " starts"]
    points: Float[Array, "starts samples k"]


@eqx.filter_jit
def _orbits(f, starts, dt, transient_steps, align_steps, saves, per_save):
    step = lambda z: rk4_step(f, z, dt)

    def tangent_step(carry, _):
        z, w = carry
        z1, w1 = jax.jvp(step, (z,), (w,))
        norm = jnp.linalg.norm(w1)
        return (z1, w1 / norm), jnp.log(norm)

    def one(z0):
        z = jax.lax.fori_loop(0, transient_steps, lambda _, z: step(z), z0)
        w = jnp.ones_like(z0) / jnp.sqrt(z0.shape[0])
        (z, w), _ = jax.lax.scan(tangent_step, (z, w), None, length=align_steps)

        def save(carry, _):
            carry, logs = jax.lax.scan(tangent_step, carry, None, length=per_save)
            return carry, (carry[0], jnp.sum(logs))

        _, (points, logs) = jax.lax.scan(save, (z, w), None, length=saves)
        return points, jnp.sum(logs)

    return jax.vmap(one)(starts)


DT = 0.02  # the census's RK4 step where no drift is stiff at the starts
STIFFNESS = 0.5  # the most a step may be times the largest Jacobian eigenvalue's modulus


def census_step(drifts, starts: Float[Array, "starts k"], save_dt: float = 0.2) -> float:
    """The census's RK4 step for these drifts: `DT`, or shorter where one of them is stiff.

    With ``rho`` the largest modulus of an eigenvalue of a drift's Jacobian at the starts,
    the step keeps ``rho * dt <= STIFFNESS``: `DT` where it does, else the longest step that
    divides ``save_dt`` and does. RK4 is stable to about ``|lambda dt| = 2.8``, but it damps
    an oscillation at ``|lambda dt| = 1`` by 0.6% a step, a spurious exponent of ``-0.006 /
    dt``; at 0.5, by 0.01% a step. A flow measured in periods of a fast-slow oscillation has
    ``rho`` in the hundreds, where 0.02 makes its orbits diverge (or, nearer the limit, turns
    a chaotic orbit periodic); Lorenz's is about 21 on its attractor, 0.02 unchanged.
    """
    rho = 0.0
    for f in drifts:
        jac = np.asarray(jax.vmap(jax.jacfwd(f))(jnp.asarray(starts)), dtype=float)
        jac = jac[np.all(np.isfinite(jac), axis=(1, 2))]
        if jac.size:
            rho = max(rho, float(np.abs(np.linalg.eigvals(jac)).max()))
    if rho * DT <= STIFFNESS:
        return DT
    return save_dt / int(np.ceil(save_dt * rho / STIFFNESS))


def orbit_census(
    f,
    starts: Float[Array, "starts k"],
    *,
    scale: Float[Array, " k"],
    dt: float | None = None,
    transient: float = 50.0,
    time: float = 300.0,
    save_dt: float = 0.2,
    chaos_threshold: float = 0.02,
    fixed_tolerance: float = 1e-3,
) -> Orbits:
    """Integrate the noise-free flow ``dz/dt = f(z)`` from every start and classify the orbits.

    RK4 with step ``dt`` (`census_step` of ``f`` by default; float32 is enough: the exponents
    agree with float64 to 1e-3 on Lorenz), vectorised over starts. Each orbit runs
    ``transient`` time units, then 10 more to align the tangent vector, then ``time`` units
    over which the largest Lyapunov exponent is averaged (tangent map by ``jax.jvp``,
    renormalised every step) and a state is saved every ``save_dt``. The cost is
    ``8 (transient + 10 + time) / dt`` drift evaluations per start.

    Args:
        f: the drift, ``f(z) -> (k,)`` (a target's ``f`` or a network's ``target_drift``).
        starts: initial states, ``(starts, k)``.
        scale: box half-widths, the unit of ``fixed_tolerance``.
        dt: RK4 step; None: `census_step` of ``f`` at the starts.
        transient: time discarded before measuring.
        time: averaging time.
        save_dt: interval between saved states (a multiple of ``dt``).
        chaos_threshold: exponents above it are chaotic, below minus it fixed points.
        fixed_tolerance: orbits with a smaller relative spread are fixed points.
    """
    starts = jnp.asarray(starts)
    if starts.ndim != 2 or starts.shape[0] < 1:
        raise ValueError(f"Expected starts of shape (starts, k); got {starts.shape}.")
    if dt is None:
        dt = census_step([f], starts, save_dt)
    for name, value in (("dt", dt), ("time", time), ("save_dt", save_dt)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"Expected a finite {name} > 0; got {value!r}.")
    if not (np.isfinite(transient) and transient >= 0):
        raise ValueError(f"Expected a finite transient >= 0; got {transient!r}.")
    per_save = round(save_dt / dt)
    saves = round(time / (per_save * dt))
    if per_save < 1 or abs(per_save * dt - save_dt) > 1e-6 * save_dt or saves < 2:
        raise ValueError(
            f"Expected save_dt a multiple of dt and time >= 2 save_dt; got dt={dt}, "
            f"save_dt={save_dt}, time={time}."
        )
    points, log_sum = _orbits(
        f, starts, dt, round(transient / dt), round(10.0 / dt), saves, per_save
    )
    exponent = log_sum / (saves * per_save * dt)
    rel_spread = jnp.sqrt(jnp.sum(jnp.var(points, axis=1), axis=-1)) / jnp.linalg.norm(scale)
    fixed = (rel_spread < fixed_tolerance) | (exponent < -chaos_threshold)
    classes = jnp.where(fixed, FIXED, jnp.where(exponent > chaos_threshold, CHAOTIC, PERIODIC))
    finite = jnp.isfinite(exponent) & jnp.all(jnp.isfinite(points), axis=(1, 2))
    classes = jnp.where(finite, classes, DIVERGED)  # NaN compares false: not "periodic"
    return Orbits(exponent, rel_spread, classes, points)


# ---------------------------------------------------------------- network against target


@dataclass
class Census:
    """The census of a network against its target, from the same starts.

    Attributes:
        network: `Orbits` of the network's noise-free latent drift.
        target: `Orbits` of the target's drift.
        metrics: JSON-able dict of floats (see `attractor_census`).
        starts: the initial states, ``(starts, k)``.
    """

    network: Orbits
    target: Orbits
    metrics: dict
    starts: Float[Array, "starts k"]
    settings: dict = field(default_factory=dict)

    @property
    def majority(self) -> int:
        """The target's most common class (``FIXED``, ``PERIODIC``, ``CHAOTIC`` or ``DIVERGED``)."""
        return int(np.bincount(np.asarray(self.target.classes), minlength=4).argmax())

    @property
    def mismatched(self) -> np.ndarray:
        """Boolean ``(starts,)``: the network's orbit is not of the target's majority class."""
        return np.asarray(self.network.classes) != self.majority

    def clean(self, exponent_tolerance: float = 0.05) -> bool:
        """Whether every start ends in the target's majority class.

        For chaotic targets the mean exponents must also agree within
        ``exponent_tolerance``, relatively.
        """
        if self.mismatched.any():
            return False
        error = self.metrics["census_lyapunov_error"]
        return self.majority != CHAOTIC or abs(error) <= exponent_tolerance


def _chaotic_moments(orbits: Orbits) -> tuple[float, float]:
    lam = np.asarray(orbits.exponent)[np.asarray(orbits.classes) == CHAOTIC]
    return (float(lam.mean()), float(lam.std())) if lam.size else (float("nan"),) * 2


def attractor_census(
    model: LowRankRNN,
    target: Target,
    *,
    key: Key,
    starts: int = 32,
    reference: Census | None = None,
    pool_dt: float = POOL_DT,
    **orbit_settings,
) -> Census:
    """Census of the network's noise-free latent flow against the target's (same starts).

    The starts are ``starts`` points of the target's stationary regime (`attractor_points`).
    Metrics (fractions, not percent): ``census_mismatch``, the share of starts whose network
    orbit is not of the target's majority class; ``census_target_mismatch``, the same for the
    target's own orbits (0 unless the target is multistable); ``census_chaotic_network`` and
    ``census_chaotic_target``, shares of chaotic orbits; ``census_lyapunov_{network,target}``
    and ``_std``, mean and spread of the exponent over chaotic starts (NaN if none);
    ``census_lyapunov_error``, network mean over target mean minus 1;
    ``census_lyapunov_null`` and ``census_lyapunov_null_error``, the same mean and error for
    the target's own orbits from as many other starts (how far two censuses of the target
    itself differ: the error's null); ``census_sw``, the
    sliced Wasserstein distance between all saved orbit states of network and target over the
    target's RMS spread (folded by the target's symmetry, if any), and ``census_sw_null``, the
    same between the target's orbits and the target's from as many other starts.

    Args:
        model: the trained network.
        target: its target.
        key: PRNG key (the starts, and those of the null).
        starts: number of starts (>= 32 recommended).
        reference: an earlier census of the same target and settings whose starts, target
            orbits and null are reused (the training remedy censuses one target many times).
        pool_dt: Euler-Maruyama step of the trajectories that give the starts
            (`attractor_points`; ``TrainConfig.pool_dt``).
        **orbit_settings: passed to `orbit_census` (``dt``, ``transient``, ``time``, ...).
            Without ``dt`` (or with a reference, whose step is reused) network and target
            share one step, `census_step` of the target's drift at the starts.
    """
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 2:
        raise ValueError(f"Expected starts to be an integer >= 2; got {starts!r}.")
    dt = orbit_settings.pop("dt", None)  # None: the target's `census_step` (or the reference's)
    run = lambda f, z, dt: orbit_census(f, z, scale=target.scale, dt=dt, **orbit_settings)
    fold = (lambda z: jax.vmap(target.fold)(z)) if target.fold is not None else (lambda z: z)
    # the distances compare the orbits of the starts where the target's stayed finite (the
    # network's from the same starts; one diverged network orbit makes its distance infinite)
    kept = lambda o: np.flatnonzero(np.asarray(o.classes) != DIVERGED)
    states = lambda o, rows: fold(o.points[rows].reshape(-1, target.dim))
    if reference is None:
        k_starts, k_null = jr.split(key)
        z0s = attractor_points(target, key=k_starts, num=starts, dt=pool_dt)
        save_dt = orbit_settings.get("save_dt", 0.2)
        # the target's stiffness sets the step: a network fit to it has about the same, and
        # one far stiffer (a failed fit) diverges at it, a mismatch, rather than costing a
        # step as small as its Jacobian is wrong
        dt = census_step([target.f], z0s, save_dt) if dt is None else dt
        ref = run(target.f, z0s, dt)
        if not np.any(np.asarray(ref.classes) != DIVERGED):
            raise ValueError(
                f"Expected the target's noise-free orbits to stay finite; all {starts} diverged "
                f"with the RK4 step {dt:g} (pass a smaller dt)."
            )
        null = run(target.f, attractor_points(target, key=k_null, num=starts, dt=pool_dt), dt)
        m = min(kept(ref).size, kept(null).size)
        r = states(ref, kept(ref)[:m])
        sw_null = (sliced_wasserstein(states(null, kept(null)[:m]), r, host=True) / spread(r)
                   if m else np.nan)  # fmt: skip
        lam_null = _chaotic_moments(null)[0]
    else:
        z0s, ref, sw_null = reference.starts, reference.target, reference.metrics["census_sw_null"]
        lam_null = reference.metrics["census_lyapunov_null"]
        dt = reference.settings["dt"] if dt is None else dt
    net = run(model.target_drift, z0s, dt)
    r, a = states(ref, kept(ref)), states(net, kept(ref))
    scale = spread(r)
    census = Census(net, ref, {}, z0s, {"starts": z0s.shape[0], "dt": dt, **orbit_settings})
    lam_net, lam_net_std = _chaotic_moments(net)
    lam_ref, lam_ref_std = _chaotic_moments(ref)
    finite = np.all(np.isfinite(net.points))
    census.metrics.update({
        "census_starts": float(z0s.shape[0]),
        "census_mismatch": float(census.mismatched.mean()),
        "census_target_mismatch": float(np.mean(np.asarray(ref.classes) != census.majority)),
        "census_chaotic_network": float(np.mean(np.asarray(net.classes) == CHAOTIC)),
        "census_chaotic_target": float(np.mean(np.asarray(ref.classes) == CHAOTIC)),
        "census_lyapunov_network": lam_net,
        "census_lyapunov_network_std": lam_net_std,
        "census_lyapunov_target": lam_ref,
        "census_lyapunov_target_std": lam_ref_std,
        "census_lyapunov_error": lam_net / lam_ref - 1,
        "census_lyapunov_null": lam_null,
        "census_lyapunov_null_error": lam_null / lam_ref - 1,
        "census_sw": sliced_wasserstein(a, r, host=True) / scale if finite else np.inf,
        "census_sw_null": sw_null,
    })  # fmt: skip
    return census


def attractor_kind(target: Target, starts: Float[Array, "starts k"], **orbit_settings) -> str:
    """The kind of the target's attractor, one of `KINDS`, measured by `orbit_census`.

    The majority class of the target's noise-free orbits from ``starts`` (ties go to the
    simpler class); ``target.attractor`` is not consulted.
    """
    orbits = orbit_census(target.f, starts, scale=target.scale, **orbit_settings)
    kind = int(np.bincount(np.asarray(orbits.classes), minlength=4).argmax())
    if kind == DIVERGED:
        raise ValueError(
            f"Expected the target's noise-free orbits to stay finite; most of the {len(starts)} "
            "diverged (pass a smaller dt)."
        )
    return KINDS[kind]


def census_applies(
    target: Target, *, key: Key, starts: int = 8, pool_dt: float = POOL_DT, **orbit_settings
) -> bool:
    """Whether the census says something: the target's orbits are not all fixed points.

    ``target.attractor`` answers when set (``"fixed_point"``: no). When it is None, a cheap
    look (``starts`` target orbits only, no network, from `attractor_points` at step
    ``pool_dt``) skips targets whose only attractors are fixed points.
    """
    if target.attractor is not None:
        return target.attractor != "fixed_point"
    z0s = attractor_points(target, key=key, num=starts, dt=pool_dt)
    orbits = orbit_census(target.f, z0s, scale=target.scale, **orbit_settings)
    classes = np.asarray(orbits.classes)
    return bool(np.any((classes == PERIODIC) | (classes == CHAOTIC)))
