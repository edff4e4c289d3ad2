"""Fidelity: how faithfully a trained network reproduces its target SDE.

Every statistic is computed for the network and, beside it, for the target against itself
(a null of the same size), so a reader can tell model error from sampling noise.
"""

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Key
from ..network import LowRankRNN
from ..simulation import (
    POOL_DT,
    Run,
    attractor_points,
    rk4_step,
    sample_box,
    simulate_network,
    simulate_target,
)
from ..targets import Target
from ._census import attractor_kind
from ._errors import diffusion_error, drift_error
from ._statistics import (
    moment_errors,
    sliced_wasserstein,
    spread,
)

# ---------------------------------------------------------------- deterministic features


def lyapunov_exponent(
    f, z0: Float[Array, " k"], *, dt: float = 0.01, transient: float = 50.0, time: float = 500.0
) -> float:
    """Largest Lyapunov exponent of ``dz/dt = f(z)`` (RK4 and its tangent map, renormalised).

    Independent of the coordinates, so a network's latent drift in any affine coordinates
    gives the same exponent as in the target's.
    """
    step = lambda z: rk4_step(f, z, dt)
    z = jax.lax.fori_loop(0, int(transient / dt), lambda _, z: step(z), z0)

    def body(carry, _):
        z, w = carry
        z1, w1 = jax.jvp(step, (z,), (w,))
        norm = jnp.linalg.norm(w1)
        return (z1, w1 / norm), jnp.log(norm)

    w0 = jnp.ones_like(z0) / jnp.sqrt(z0.shape[0])
    _, logs = jax.lax.scan(body, (z, w0), None, length=int(time / dt))
    return float(jnp.sum(logs) / time)


def limit_cycle(
    f, z0: Float[Array, " k"], *, dt: float = 1e-3, transient: float = 50.0, time: float = 100.0
) -> tuple[float, float]:
    """(period, amplitude) of a limit cycle of ``dz/dt = f(z)``.

    Period: mean interval between upward crossings of the first coordinate through its mean
    over the window (linearly interpolated; NaN with fewer than two); amplitude: the largest
    first coordinate after the transient.
    """
    step = lambda z: rk4_step(f, z, dt)
    z = jax.lax.fori_loop(0, int(transient / dt), lambda _, z: step(z), z0)
    _, zs = jax.lax.scan(lambda z, _: (step(z), step(z)), z, None, length=int(time / dt))
    x = np.asarray(zs[:, 0], dtype=float)
    amplitude = float(x.max())
    x = x - x.mean()
    up = np.nonzero((x[:-1] < 0) & (x[1:] >= 0))[0]
    if up.size < 2:
        return float("nan"), amplitude
    crossings = (up + x[up] / (x[up] - x[up + 1])) * dt
    return float(np.mean(np.diff(crossings))), amplitude


# ---------------------------------------------------------------- the report


@dataclass
class FidelityReport:
    """Metrics of a trained network against its target, plus the runs behind them.

    Attributes:
        metrics: JSON-able dict of floats (see `fidelity_report`).
        target_run: the reference target ensemble (burn-in included; see ``burn_in``).
        network_run: the network ensemble, same size and times.
        burn_in: time discarded before statistics.
    """

    metrics: dict
    target_run: Run
    network_run: Run
    burn_in: float
    settings: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The fidelity table: the network's value beside the target's own."""
        m = self.metrics
        pct = lambda x: f"{100 * x:.2f}%"
        rows = [
            ("drift error, box", pct(m["drift_error_box"]), "0"),
            ("drift error, attractor", pct(m["drift_error_attractor"]), "0"),
            ("diffusion error (model)", pct(m["diffusion_error"]), "0"),
            ("diffusion error (increments)", pct(m["diffusion_error_empirical"]),
             f"{pct(m['diffusion_error_empirical_se'])} (1 s.e.)"),
            ("off-subspace residual (RMS / max)",
             f"{m['residual']:.2e} / {m['residual_max']:.2e}", "0"),
            ("sliced Wasserstein / spread", pct(m["sw"]), f"{pct(m['sw_null'])} (null)"),
            ("SW ratio to null", f"{m['sw_ratio']:.2f}", "1"),
            ("stationary mean error / spread", pct(m["mean_error"]),
             f"{pct(m['mean_error_null'])} (null)"),
            ("stationary covariance error", pct(m["cov_error"]),
             f"{pct(m['cov_error_null'])} (null)"),
        ]  # fmt: skip
        source = lambda name: "measured" if m[f"{name}_reference_measured"] else "given"
        if "lyapunov_network" in m:
            rows.append(
                ("largest Lyapunov exponent", f"{m['lyapunov_network']:.4f}",
                 f"{m['lyapunov_target']:.4f} (reference {m['lyapunov_reference']:.4f}, "
                 f"{source('lyapunov')})")
            )  # fmt: skip
        if "census_mismatch" in m:  # added by `attractor_census` (ddm-jax evaluate)
            lam = lambda w: (f"{m[f'census_lyapunov_{w}']:.4f} +- "
                             f"{m[f'census_lyapunov_{w}_std']:.4f}")  # fmt: skip
            rows += [
                ("census: starts in another class than the target's",
                 pct(m["census_mismatch"]), pct(m["census_target_mismatch"])),
                ("census: orbit SW / spread", pct(m["census_sw"]),
                 f"{pct(m['census_sw_null'])} (null)"),
            ]  # fmt: skip
            if np.isfinite(m["census_lyapunov_target"]):
                rows.append(("census: Lyapunov exponent over chaotic starts (mean +- sd)",
                             lam("network"), lam("target")))  # fmt: skip
        if "period_network" in m:
            rows.append(("limit-cycle period", f"{m['period_network']:.4f}",
                         f"{m['period_target']:.4f} (reference {m['period_reference']:.4f}, "
                         f"{source('period')})"))  # fmt: skip
            rows.append(("limit-cycle amplitude", f"{m['amplitude_network']:.4f}",
                         f"{m['amplitude_target']:.4f}"))  # fmt: skip
        s = self.settings
        lines = [
            f"Fidelity of a {s.get('n', '?')}-neuron network to `{s.get('system', '?')}`: "
            f"{s.get('trajectories')} trajectories x {s.get('t1')} time units, burn-in "
            f"{self.burn_in}, dt {s.get('dt')}, {s.get('solver')} solver"
            + (", statistics folded by the target's symmetry" if s.get("folded") else "")
            + ".",
            "",
            "| quantity | network | target (exact, reference or null) |",
            "|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        return "\n".join(lines) + "\n"


def stationary_samples(run: Run, burn_in: float, fold=None) -> Float[Array, "N k"]:
    """Every saved state from ``burn_in`` on, pooled over trajectories (folded if asked)."""
    keep = run.ts >= burn_in
    zs = run.zs[:, keep].reshape(-1, run.zs.shape[-1])
    return jax.vmap(fold)(zs) if fold is not None else zs


def empirical_diffusion_error(
    model: LowRankRNN, target: Target, z0s: Float[Array, "B k"], *, key: Key, dt: float,
    steps: int = 200,
) -> tuple[float, float]:  # fmt: skip
    """Diffusion error measured from one-step latent increments of the full network.

    Simulates ``steps`` Euler steps of ``B`` trajectories, forms
    ``r = dz - f_net(z) dt`` and compares ``mean r r^T / dt`` with ``mean G G^T`` over the
    same states. Returns (relative Frobenius error, its standard error under Gaussian
    increments).
    """
    run = simulate_network(model, z0s, key=key, t1=steps * dt, dt=dt)
    z = run.zs[:, :-1].reshape(-1, target.dim)
    dz = (run.zs[:, 1:] - run.zs[:, :-1]).reshape(-1, target.dim)
    r = dz - jax.vmap(model.target_drift)(z) * dt
    emp = r.T @ r / (r.shape[0] * dt)
    g = jax.vmap(target.g)(z)
    true = jnp.mean(jnp.einsum("bij,bkj->bik", g, g), axis=0)
    err = float(jnp.linalg.norm(emp - true) / jnp.linalg.norm(true))
    var = jnp.outer(jnp.diag(true), jnp.diag(true)) + true**2  # Var of a Gaussian cov entry
    se = float(jnp.sqrt(jnp.sum(var) / r.shape[0]) / jnp.linalg.norm(true))
    return err, se


def increment_covariance(
    model: LowRankRNN, zs: Float[Array, "N k"], *, key: Key, dt: float = 1e-3, draws: int = 4096
) -> Float[Array, "N k k"]:
    """Covariance of one-step latent increments of the full network, per start state, over dt.

    Each state z is embedded (``x = E z + e``), ``draws`` single Euler-Maruyama steps of the
    n-neuron SDE are taken from it (`simulate_network`, so the noise goes through neuron space
    and the read-out), and the sample covariance of the read-out increments divided by ``dt``
    is returned. Compare it with ``G(z) G(z)^T`` (``2 D``): a check of the learned noise that
    never uses the noise read-out's formula. Its standard error per entry is about
    ``sqrt((C_ii C_jj + C_ij^2) / draws)``.
    """
    zs = jnp.asarray(zs)
    run = simulate_network(model, jnp.repeat(zs, draws, axis=0), key=key, t1=dt, dt=dt)
    dz = (run.zs[:, 1] - run.zs[:, 0]).reshape(zs.shape[0], draws, zs.shape[1])
    dz = dz - dz.mean(axis=1, keepdims=True)
    return jnp.einsum("nbi,nbj->nij", dz, dz) / ((draws - 1) * dt)


def _reference(name: str, given: float | None, measured: float) -> dict:
    """``{name}_reference``: the target's metadata, else its own measured value (flagged)."""
    return {
        f"{name}_reference": measured if given is None else given,
        f"{name}_reference_measured": float(given is None),
    }


def fidelity_report(
    model: LowRankRNN,
    target: Target,
    *,
    key: Key,
    trajectories: int = 256,
    t1: float = 20.0,
    burn_in: float = 5.0,
    dt: float = 1e-3,
    save_dt: float = 0.05,
    null_pairs: int = 3,
    solver: str = "euler",
    deterministic: bool = True,
    pool_dt: float = POOL_DT,
) -> FidelityReport:
    """Measure a trained network against its target.

    Metrics (relative errors are fractions, not percent):
        ``drift_error_box``, ``drift_error_attractor``: relative L2 drift errors on held-out
        uniform-box and stationary points. ``diffusion_error``: of ``G G^T`` on stationary
        points; ``diffusion_error_empirical`` (and ``_se``): from one-step increments of the
        simulated network. ``residual``, ``residual_max``: off-subspace residual of the full
        simulation. ``sw``: sliced-Wasserstein distance between stationary samples of the
        network and of the target, over the target's RMS spread; ``sw_null``: the median of
        the same between ``null_pairs`` pairs of independent target runs; ``sw_ratio``. Both
        sort on the host, in float64 NumPy, on every backend (XLA's CPU sort is ~10x slower).
        ``mean_error``, ``cov_error`` (and ``_null``): stationary moments. With
        ``deterministic``, the kind of the target's attractor (``target.attractor``, or when
        that is None the majority class of `attractor_kind` over 8 of the held-out points)
        decides the rest. Chaotic: ``lyapunov_target``, ``lyapunov_network``
        (`lyapunov_exponent` of the noise-free drifts from one held-out point) and
        ``lyapunov_reference``: ``target.lyapunov``, or when that is None the measured
        ``lyapunov_target``, with ``lyapunov_reference_measured`` 1.0 (0.0 when given).
        Limit cycle: ``period_*`` and ``amplitude_*`` (`limit_cycle`, same start), with
        ``period_reference`` and ``period_reference_measured`` alike. Fixed points: nothing
        more. ``settings`` records ``attractor`` and ``attractor_measured``. Statistics are
        folded by ``target.fold`` when set.

    Args:
        model: the trained network.
        target: its target.
        key: PRNG key.
        trajectories: ensemble size (>= 256 recommended).
        t1: simulated time per trajectory.
        burn_in: time discarded before statistics.
        dt: Euler-Maruyama step for network and target.
        save_dt: sampling interval of the statistics.
        null_pairs: independent target-vs-target pairs for the null (median).
        solver: network solver (see `SOLVERS`).
        deterministic: also measure Lyapunov exponent / limit cycle where applicable.
        pool_dt: Euler-Maruyama step of the target trajectories that give the held-out
            stationary points and the starts (`attractor_points`; ``TrainConfig.pool_dt``).
    """
    if not 0 <= burn_in < t1:
        raise ValueError(f"Expected 0 <= burn_in < t1; got burn_in={burn_in}, t1={t1}.")
    keys = iter(jr.split(key, 8 + 2 * null_pairs))
    held = attractor_points(target, key=next(keys), num=16384, dt=pool_dt)
    box = sample_box(next(keys), target, 16384)
    metrics = {
        "drift_error_box": float(drift_error(model, target, box)),
        "drift_error_attractor": float(drift_error(model, target, held)),
        "diffusion_error": float(diffusion_error(model, target, held)),
    }
    starts = lambda k: held[jr.choice(k, held.shape[0], (trajectories,), replace=False)]
    emp, se = empirical_diffusion_error(model, target, starts(next(keys)), key=next(keys), dt=dt)
    metrics["diffusion_error_empirical"], metrics["diffusion_error_empirical_se"] = emp, se

    sim = dict(t1=t1, dt=dt, save_dt=save_dt)
    net = simulate_network(model, starts(next(keys)), key=next(keys), solver=solver, **sim)
    metrics["residual"], metrics["residual_max"] = net.residual, net.residual_max
    ref = simulate_target(target, starts(next(keys)), key=next(keys), **sim)
    a = stationary_samples(net, burn_in, target.fold)
    r = stationary_samples(ref, burn_in, target.fold)
    scale = spread(r)
    # on the host in float64 on every backend (the same numbers on any machine): NumPy's sort
    # beats XLA's on a CPU by ~10x, and on a GPU these samples are small
    metrics["sw"] = sliced_wasserstein(a, r, host=True) / scale
    metrics["mean_error"], metrics["cov_error"] = moment_errors(a, r)
    null_sw, null_mean, null_cov = [], [], []
    for _ in range(null_pairs):
        pair = [
            stationary_samples(
                simulate_target(target, starts(kz), key=ks, **sim), burn_in, target.fold
            )
            for kz, ks in jr.split(next(keys), (2, 2))
        ]
        null_sw.append(sliced_wasserstein(*pair, host=True) / scale)
        mean_err, cov_err = moment_errors(*pair)
        null_mean.append(mean_err)
        null_cov.append(cov_err)
    metrics["sw_null"] = float(np.median(null_sw))
    metrics["sw_ratio"] = metrics["sw"] / metrics["sw_null"]
    metrics["mean_error_null"] = float(np.median(null_mean))
    metrics["cov_error_null"] = float(np.median(null_cov))
    metrics["spread"] = scale

    kind, measured = target.attractor, target.attractor is None
    if deterministic and measured:
        kind = attractor_kind(target, held[:8])
    if deterministic and kind == "chaotic":
        z0 = held[0]
        metrics["lyapunov_target"] = lyapunov_exponent(target.f, z0)
        metrics["lyapunov_network"] = lyapunov_exponent(model.target_drift, z0)
        metrics.update(_reference("lyapunov", target.lyapunov, metrics["lyapunov_target"]))
    if deterministic and kind == "limit_cycle":
        z0 = held[0]
        metrics["period_target"], metrics["amplitude_target"] = limit_cycle(target.f, z0)
        metrics["period_network"], metrics["amplitude_network"] = limit_cycle(
            model.target_drift, z0
        )
        metrics.update(_reference("period", target.period, metrics["period_target"]))
    settings = {
        "system": target.name, "n": model.n, "trajectories": trajectories, "t1": t1,
        "dt": dt, "save_dt": save_dt, "null_pairs": null_pairs, "solver": solver,
        "folded": target.fold is not None, "attractor": kind,
        "attractor_measured": bool(deterministic and measured),
    }  # fmt: skip
    return FidelityReport(metrics, ref, net, burn_in, settings)
