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
    Run,
    attractor_points,
    rk4_step,
    sample_box,
    simulate_network,
    simulate_target,
)
from ..targets import Target
from ._errors import diffusion_error, drift_error

CHAOTIC = {"lorenz": 0.9056, "dadras": 0.41}  # reference largest Lyapunov exponents
OSCILLATORS = {"vdp"}


# ---------------------------------------------------------------- distribution distances


def projections(k: int, num: int = 128, seed: int = 20260214) -> Float[Array, "num k"]:
    """``num`` fixed unit directions in R^k (the same for every comparison)."""
    d = jr.normal(jr.key(seed), (num, k))
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


@jax.jit
def _sw(a, b, dirs):
    pa = jnp.sort(a @ dirs.T, axis=0)
    pb = jnp.sort(b @ dirs.T, axis=0)
    return jnp.sqrt(jnp.mean((pa - pb) ** 2))


def sliced_wasserstein(
    a: Float[Array, "N k"], b: Float[Array, "N k"], num_projections: int = 128
) -> float:
    """Sliced 2-Wasserstein distance between two equal-size samples, fixed projections.

    ``sqrt(mean_theta W2^2(theta.a, theta.b))``; each 1-d W2 is exact for empirical samples
    of equal size (sorted differences).
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"Expected two samples of equal shape (N, k); got {a.shape} and {b.shape}."
        )
    return float(_sw(a, b, projections(a.shape[1], num_projections)))


def spread(samples: Float[Array, "N k"]) -> float:
    """RMS spread ``sqrt(trace Cov)`` of a sample."""
    return float(jnp.sqrt(jnp.sum(jnp.var(samples, axis=0))))


def moment_errors(a: Float[Array, "N k"], ref: Float[Array, "N k"]) -> tuple[float, float]:
    """(mean error relative to the spread of ``ref``, relative Frobenius covariance error)."""
    return relative_moment_errors(a.mean(0), jnp.cov(a.T), ref.mean(0), jnp.cov(ref.T), spread(ref))


def relative_moment_errors(mean, cov, ref_mean, ref_cov, ref_spread) -> tuple[float, float]:
    """``(||mean - ref_mean|| / ref_spread, ||cov - ref_cov||_F / ||ref_cov||_F)``.

    In the precision of the inputs: `moment_errors` of samples, `moments_run` of moments
    streamed in float64.
    """
    mean_err = np.linalg.norm(np.asarray(mean) - np.asarray(ref_mean)) / ref_spread
    cov, ref_cov = np.asarray(cov), np.asarray(ref_cov)
    return float(mean_err), float(np.linalg.norm(cov - ref_cov) / np.linalg.norm(ref_cov))


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

    Period: mean interval between upward zero crossings of the first coordinate (linearly
    interpolated); amplitude: the largest first coordinate after the transient.
    """
    step = lambda z: rk4_step(f, z, dt)
    z = jax.lax.fori_loop(0, int(transient / dt), lambda _, z: step(z), z0)
    _, zs = jax.lax.scan(lambda z, _: (step(z), step(z)), z, None, length=int(time / dt))
    x = np.asarray(zs[:, 0], dtype=float)
    up = np.nonzero((x[:-1] < 0) & (x[1:] >= 0))[0]
    if up.size < 2:
        return float("nan"), float(x.max())
    crossings = (up + x[up] / (x[up] - x[up + 1])) * dt
    return float(np.mean(np.diff(crossings))), float(x.max())


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
        if "lyapunov_network" in m:
            rows.append(
                ("largest Lyapunov exponent", f"{m['lyapunov_network']:.4f}",
                 f"{m['lyapunov_target']:.4f}")
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
                         f"{m['period_target']:.4f}"))  # fmt: skip
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
) -> FidelityReport:
    """Measure a trained network against its target.

    Metrics (relative errors are fractions, not percent):
        ``drift_error_box``, ``drift_error_attractor``: relative L2 drift errors on held-out
        uniform-box and stationary points. ``diffusion_error``: of ``G G^T`` on stationary
        points; ``diffusion_error_empirical`` (and ``_se``): from one-step increments of the
        simulated network. ``residual``, ``residual_max``: off-subspace residual of the full
        simulation. ``sw``: sliced-Wasserstein distance between stationary samples of the
        network and of the target, over the target's RMS spread; ``sw_null``: the median of
        the same between ``null_pairs`` pairs of independent target runs; ``sw_ratio``.
        ``mean_error``, ``cov_error`` (and ``_null``): stationary moments. Chaotic targets
        add ``lyapunov_target``/``lyapunov_network``, Van der Pol ``period_*`` and
        ``amplitude_*`` (deterministic drifts). Lorenz statistics are folded by its symmetry.

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
    """
    if not 0 <= burn_in < t1:
        raise ValueError(f"Expected 0 <= burn_in < t1; got burn_in={burn_in}, t1={t1}.")
    keys = iter(jr.split(key, 8 + 2 * null_pairs))
    held = attractor_points(target, key=next(keys), num=16384)
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
    metrics["sw"] = sliced_wasserstein(a, r) / scale
    metrics["mean_error"], metrics["cov_error"] = moment_errors(a, r)
    null_sw, null_mean, null_cov = [], [], []
    for _ in range(null_pairs):
        pair = [
            stationary_samples(
                simulate_target(target, starts(kz), key=ks, **sim), burn_in, target.fold
            )
            for kz, ks in jr.split(next(keys), (2, 2))
        ]
        null_sw.append(sliced_wasserstein(*pair) / scale)
        mean_err, cov_err = moment_errors(*pair)
        null_mean.append(mean_err)
        null_cov.append(cov_err)
    metrics["sw_null"] = float(np.median(null_sw))
    metrics["sw_ratio"] = metrics["sw"] / metrics["sw_null"]
    metrics["mean_error_null"] = float(np.median(null_mean))
    metrics["cov_error_null"] = float(np.median(null_cov))
    metrics["spread"] = scale

    if deterministic and target.name in CHAOTIC:
        z0 = held[0]
        metrics["lyapunov_target"] = lyapunov_exponent(target.f, z0)
        metrics["lyapunov_network"] = lyapunov_exponent(model.target_drift, z0)
        metrics["lyapunov_reference"] = CHAOTIC[target.name]
    if deterministic and target.name in OSCILLATORS:
        z0 = target.z0
        metrics["period_target"], metrics["amplitude_target"] = limit_cycle(target.f, z0)
        metrics["period_network"], metrics["amplitude_network"] = limit_cycle(
            model.target_drift, z0
        )
    settings = {
        "system": target.name, "n": model.n, "trajectories": trajectories, "t1": t1,
        "dt": dt, "save_dt": save_dt, "null_pairs": null_pairs, "solver": solver,
        "folded": target.fold is not None,
    }  # fmt: skip
    return FidelityReport(metrics, ref, net, burn_in, settings)
