"""Memory experiments on the ring of wells, for a target or its network.

Each experiment takes a wells-family target, one with wells metadata (``well_centres`` and
``well_width`` fix the geometry; see `Target`), which is the reference SDE, and, optionally,
a trained network that embeds it: with ``model`` the same protocol runs on the full n-neuron
network, with the same key, hence the same Brownian increments
trajectory by trajectory (target and network both draw ``dW`` from ``split(key, B)[i]``).
Every trial and amplitude of a protocol is one batched simulation with a per-trajectory
`Schedule`.

1. `switching`: start in well i, a pulse toward well j; probability of ending in j.
2. `recall`: start near the ring centre, a cue toward a stored well; fraction ending there.
3. `cycling`: no input; hops, their preferred direction, first-passage times, occupancy
   and the entropy production rate.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._custom_types import Key
from ..analysis import epr_from_samples
from ..network import LowRankRNN
from ..simulation import cue, pulse, simulate_network, simulate_target
from ..targets import Target
from ._wells import (
    count_hops,
    dwell_times,
    well_geometry,
    well_labels,
    well_occupancy,
    wilson_interval,
)

CORE = 0.75  # core radius / well width of the hysteresis labels


def _simulate(target: Target, model: LowRankRNN | None, z0s, **kwargs):
    if model is None:
        return simulate_target(target, z0s, **kwargs)
    if model.k != target.dim:
        raise ValueError(
            f"Expected a network of the target's dimension {target.dim}; got {model.k}."
        )
    return simulate_network(model, z0s, **kwargs)


def _final_labels(target: Target, zs) -> np.ndarray:
    centres, width = well_geometry(target)
    return np.asarray(well_labels(zs, centres, CORE * width)[:, -1])


def _check_protocol(trials: int, dt: float, **times: float) -> None:
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"Expected a positive integer number of trials; got {trials!r}.")
    for name, value in {"dt": dt, **times}.items():
        if not (np.isfinite(value) and value >= 0 and (name != "dt" or value > 0)):
            raise ValueError(f"Expected a finite {name} >= 0 (dt > 0); got {name}={value!r}.")


class Curve(NamedTuple):
    """Success counts against a protocol parameter, with binomial 95% (Wilson) intervals.

    Attributes:
        x: ``(A,)`` the parameter (pulse amplitude or cue strength).
        successes: ``(A,)`` trials that ended in the intended well.
        trials: trials per point.
        probability: ``successes / trials``.
        low: ``(A,)`` lower end of the 95% interval.
        high: ``(A,)`` upper end.
    """

    x: np.ndarray
    successes: np.ndarray
    trials: int
    probability: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _curve(x, hits: np.ndarray, trials: int) -> Curve:
    successes = hits.reshape(len(x), trials).sum(1)
    low, high = wilson_interval(successes, trials)
    return Curve(np.asarray(x), successes, trials, successes / trials, np.asarray(low),
                 np.asarray(high))  # fmt: skip


def switching(
    target: Target, *, key: Key, model: LowRankRNN | None = None,
    amplitudes=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0), trials: int = 200, source: int = 0,
    dest: int = 1, onset: float = 0.5, duration: float = 2.0, relax: float = 2.0,
    dt: float = 0.005, save_dt: float = 0.05,
) -> Curve:  # fmt: skip
    """Input-driven switching: probability of ending in well ``dest`` after a pulse toward it.

    Every trial starts at the centre of well ``source``, rests for ``onset`` (to spread in
    the well), gets a pulse ``a (c_dest - c_source) / |c_dest - c_source|`` for ``duration``
    (a tilt ``U -> U - u.z`` of the landscape) and relaxes for ``relax``; it succeeds when its
    hysteresis label at the end is ``dest``. All ``len(amplitudes) x trials`` trials run as
    one batched simulation (of ``model`` if given, else of the target).
    """
    _check_protocol(trials, dt, onset=onset, duration=duration, relax=relax)
    centres, _ = well_geometry(target)
    num = centres.shape[0]
    if not (0 <= source < num and 0 <= dest < num and source != dest):
        raise ValueError(f"Expected two different wells among 0..{num - 1}; got {source}, {dest}.")
    a = np.repeat(np.asarray(amplitudes, dtype=float), trials)
    u = pulse(centres[dest], amplitude=jnp.asarray(a), onset=onset, duration=duration)
    z0s = jnp.tile(centres[source], (a.size, 1))
    run = _simulate(target, model, z0s, key=key, t1=onset + duration + relax, dt=dt,
                    save_dt=save_dt, inputs=u)  # fmt: skip
    return _curve(amplitudes, _final_labels(target, run.zs) == dest, trials)


def recall(
    target: Target, *, key: Key, model: LowRankRNN | None = None,
    strengths=(0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0), trials: int = 200, spread: float = 0.2,
    duration: float = 2.0, relax: float = 2.0, dt: float = 0.005, save_dt: float = 0.05,
) -> Curve:  # fmt: skip
    """Associative recall: fraction of trials that end in the cued well, against cue strength.

    Trial i starts at a noisy state ``N(0, spread^2 I)`` about the ring centre (where no well
    is favoured: chance is 1/K) and is cued toward well ``i mod K`` by `cue` for ``duration``
    from t = 0, then relaxes for ``relax``.
    """
    _check_protocol(trials, dt, spread=spread, duration=duration, relax=relax)
    centres, _ = well_geometry(target)
    s = np.repeat(np.asarray(strengths, dtype=float), trials)
    cued = np.arange(s.size) % centres.shape[0]
    k_start, k_sim = jr.split(key)
    z0s = spread * jr.normal(k_start, (s.size, centres.shape[1]), centres.dtype)
    u = cue(centres[cued], strength=jnp.asarray(s), duration=duration)
    run = _simulate(target, model, z0s, key=k_sim, t1=duration + relax, dt=dt, save_dt=save_dt,
                    inputs=u)  # fmt: skip
    return _curve(strengths, _final_labels(target, run.zs) == cued, trials)


class CyclingResult(NamedTuple):
    """Autonomous hopping around the ring, after a burn-in (see `cycling`).

    Attributes:
        forward: hops counter-clockwise (to the next well), all trajectories.
        backward: hops clockwise.
        other: hops to a non-neighbouring well (across the centre).
        preferred: +1 when counter-clockwise is the preferred direction, -1 clockwise.
        fraction: share of neighbour hops in the preferred direction, with its Wilson 95%
            interval ``fraction_low, fraction_high``.
        hop_rate: hops per trajectory per unit time, and its standard error ``hop_rate_se``
            (over independent trajectories).
        mfpt: mean first-passage time from entering a core to entering another one.
        occupancy: ``(K,)`` share of time per well (hysteresis labels).
        boltzmann: ``(K,)`` mass of ``exp(-U/T)`` in each well's angular sector (None for a
            target without ``potential``).
        epr: entropy production rate ``E_p[f^T D^-1 f + div f]`` over the stationary samples
            of the run (constant ``D = T I``), and its standard error
            ``epr_se`` over trajectories. A direct estimate: it weighs the sampled density by
            ``|f|^2 / T``, so the O(dt) error of the Euler-Maruyama stationary density shows;
            on ``cycling_wells`` alpha = 3 (400 x 40 time units) it gave 89.2, 84.3 and 83.1
            at dt = 0.005, 0.002 and 0.001 against the exact 81.4 (+- 0.5).
        epr_exact: for ``-(I + alpha J) grad U``: ``alpha^2 / T E_p |grad U|^2`` with
            ``p ~ exp(-U/T)``, by quadrature; None otherwise.
    """

    forward: int
    backward: int
    other: int
    preferred: int
    fraction: float
    fraction_low: float
    fraction_high: float
    hop_rate: float
    hop_rate_se: float
    mfpt: float
    occupancy: np.ndarray
    boltzmann: np.ndarray | None
    epr: float
    epr_se: float
    epr_exact: float | None


def _temperature(target: Target) -> float:
    """``T`` of the noise ``D = G G^T / 2 = T I``: ``D_00`` at the first well's centre."""
    g = np.asarray(target.g(well_geometry(target)[0][0]), dtype=float)
    return float((g @ g.T)[0, 0]) / 2


def _potential(target: Target):
    if target.potential is None:
        raise ValueError(
            f"Expected a target with a potential U(z, args) (metadata ``potential``) for the "
            f"Boltzmann reference; got {target.name!r} without one."
        )
    return lambda z: target.potential(z, target.args)


def _grid(target: Target, points: int = 201):
    line = jnp.linspace(-2.5, 2.5, points)
    zs = jnp.stack(jnp.meshgrid(line, line, indexing="ij"), -1).reshape(-1, 2)
    energy = jax.vmap(_potential(target))(zs)
    temperature = _temperature(target)
    weight = jnp.exp(-(energy - energy.min()) / temperature)
    return zs, weight / weight.sum(), temperature


def boltzmann_occupancy(target: Target) -> np.ndarray:
    """Mass of ``exp(-U/T)`` (``target.potential``) in each well's angular sector.

    Quadrature on a 201^2 grid of ``[-2.5, 2.5]^2`` (2-d wells).
    """
    zs, p, _ = _grid(target)
    centres, _ = well_geometry(target)
    angle = lambda v: jnp.arctan2(v[..., 1], v[..., 0])
    gap = jnp.angle(jnp.exp(1j * (angle(zs)[:, None] - angle(centres)[None])))
    return np.asarray(jnp.zeros(centres.shape[0]).at[jnp.argmin(jnp.abs(gap), 1)].add(p))


def exact_epr(target: Target) -> float | None:
    """``alpha^2 / T E_p |grad U|^2`` for ``-(I + alpha J) grad U`` (gradient flow: 0).

    For a target whose metadata gives that form (``circulation`` alpha and ``potential`` U);
    None otherwise. With ``D = T I`` the stationary density is ``exp(-U/T)`` and
    ``f_irr = -alpha J grad U``, so the entropy production ``E_p[f_irr^T D^-1 f_irr]`` is this;
    computed by quadrature.
    """
    if target.circulation is None or target.potential is None:
        return None
    zs, p, temperature = _grid(target)
    grad = jax.vmap(jax.grad(_potential(target)))(zs)
    alpha = target.circulation
    return alpha**2 / temperature * float(jnp.sum(p * jnp.sum(grad**2, -1)))


def preferred_direction(target: Target) -> int:
    """+1 (counter-clockwise) or -1: the sign of the net ring current of a wells target.

    ``target.ring_direction`` when set (``rotating_wells``: the sign of its rotation
    ``alpha J z``). Else from ``target.circulation``: for ``-(I + alpha J) grad U`` the
    current ``alpha T J grad p`` crosses any ray from the centre with net flux
    ``-alpha T p(centre)``, clockwise for alpha > 0. Else (no circulation known) +1.
    """
    well_geometry(target)
    if target.ring_direction is not None:
        return target.ring_direction
    if target.circulation is not None and target.circulation > 0:
        return -1
    return 1


def cycling(
    target: Target, *, key: Key, model: LowRankRNN | None = None, trajectories: int = 2000,
    t1: float = 200.0, burn_in: float = 10.0, dt: float = 0.005, save_dt: float = 0.02,
    chunk: int = 1000, epr_every: float = 1.0,
) -> CyclingResult:  # fmt: skip
    """Autonomous cycling between the wells: hops, direction, first passage, occupancy, EPR.

    ``trajectories`` start spread evenly over the wells (trajectory i at well ``i mod K``)
    and run ``t1`` time units without input; labels use saves every ``save_dt`` and
    statistics count from ``burn_in`` on. The ensemble is simulated in batches of ``chunk``
    trajectories, to bound memory; each batch has its own key, so the noise of a trajectory
    depends on ``chunk`` (target and network with the same settings share it). The EPR is
    the sample estimator (`epr_from_samples` with ``D = T I``; docs: Theory) on states every
    ``epr_every`` time units after the burn-in, with the drift of ``model`` when given (its
    read-out drift) and the target's otherwise. At least 2 trajectories: the standard
    errors are over trajectories.
    """
    _check_protocol(trajectories, dt, t1=t1, burn_in=burn_in, save_dt=save_dt)
    if trajectories < 2:
        raise ValueError(
            f"Expected at least 2 trajectories (the standard errors are over trajectories); "
            f"got {trajectories}."
        )
    if not 0 <= burn_in < t1:
        raise ValueError(f"Expected 0 <= burn_in < t1; got burn_in={burn_in}, t1={t1}.")
    centres, width = well_geometry(target)
    num = centres.shape[0]
    chunk = min(chunk, trajectories)
    keys = jr.split(key, -(-trajectories // chunk))
    counts, totals, dwell, dwell_n, occ, samples = [], [], 0.0, 0, 0.0, []
    for c, k in enumerate(keys):
        size = min(chunk, trajectories - c * chunk)
        z0s = centres[(c * chunk + jnp.arange(size)) % num]
        run = _simulate(target, model, z0s, key=k, t1=t1, dt=dt, save_dt=save_dt)
        first = int(np.ceil(burn_in / save_dt - 1e-9))
        labels = well_labels(run.zs, centres, CORE * width)
        hops = count_hops(labels[:, first:], num)  # a hop needs two labelled saves after burn-in
        counts.append(np.array([hops.forward.sum(), hops.backward.sum(), hops.other.sum()]))
        totals.append(np.asarray(hops.total))
        total, n = dwell_times(hops.mask, jnp.asarray(run.ts[first:]))
        dwell, dwell_n = dwell + float(total.sum()), dwell_n + int(n.sum())
        occ = occ + np.asarray(well_occupancy(labels[:, first:], num)) * size
        stride = max(1, int(round(epr_every / save_dt)))
        samples.append(run.zs[:, first::stride])
    forward, backward, other = (int(v) for v in np.sum(counts, 0))
    preferred = preferred_direction(target)
    good = backward if preferred < 0 else forward
    low, high = wilson_interval(good, max(forward + backward, 1))
    per_traj = np.concatenate(totals) / (t1 - burn_in)
    temperature = _temperature(target)
    drift = target.f if model is None else model.target_drift
    noise = temperature * jnp.eye(target.dim)  # D = T I
    epr = epr_from_samples(drift, noise, jnp.concatenate(samples))
    return CyclingResult(
        forward, backward, other, preferred, good / max(forward + backward, 1), float(low),
        float(high), float(per_traj.mean()), float(per_traj.std(ddof=1) / np.sqrt(trajectories)),
        dwell / max(dwell_n, 1), occ / trajectories,
        None if target.potential is None else boltzmann_occupancy(target), epr.value, epr.stderr,
        exact_epr(target),
    )  # fmt: skip


def _jsonable(result: "Curve | CyclingResult") -> dict:
    to = lambda v: v.tolist() if isinstance(v, np.ndarray | jax.Array) else v
    return {name: to(value) for name, value in result._asdict().items()}


def memory_experiments(
    target: Target, model: LowRankRNN | None, *, key: Key, trials: int = 200,
    amplitudes=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0), strengths=(0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
    duration: float = 2.0, trajectories: int = 2000, t1: float = 200.0, burn_in: float = 10.0,
    dt: float = 0.005,
) -> dict:  # fmt: skip
    """Switching, recall and cycling for the target and (if given) its network, as a dict.

    Target and network get the same keys, so trial i sees the same Brownian increments on
    both sides. Returns ``{"switching": {"target": ..., "network": ...}, "recall": ...,
    "cycling": ...}`` with every array as a list (ready for JSON); the network entries are
    absent without ``model``.
    """
    k_switch, k_recall, k_cycle = jr.split(key, 3)
    systems = {"target": None} if model is None else {"target": None, "network": model}
    out = {"switching": {}, "recall": {}, "cycling": {}}
    for side, system in systems.items():
        out["switching"][side] = _jsonable(switching(
            target, key=jr.clone(k_switch), model=system, amplitudes=amplitudes, trials=trials,
            duration=duration, dt=dt,
        ))  # fmt: skip
        out["recall"][side] = _jsonable(recall(
            target, key=jr.clone(k_recall), model=system, strengths=strengths, trials=trials,
            duration=duration, dt=dt,
        ))  # fmt: skip
        out["cycling"][side] = _jsonable(cycling(
            target, key=jr.clone(k_cycle), model=system, trajectories=trajectories, t1=t1,
            burn_in=burn_in, dt=dt,
        ))  # fmt: skip
    return out
