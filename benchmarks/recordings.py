"""Teacher-student: recover a network's latent SDE from noisy recordings of its neurons.

The teacher is a ddm-jax network trained on a registered target (`ddm.fit`: Van der Pol with
noise 0.3 in 128 neurons; with ``--systems lorenz``, Lorenz with noise 1 in 512; with
``cycling_wells``, the wells with circulation alpha = 3 in 256). 64 trajectories of 100 time
units (quick: 32 of 50) are simulated from its attractor (Euler-Maruyama dt = 1e-3, Lorenz
5e-4, saved every dt = 0.01) and N = 100 of its neurons are recorded with white measurement
noise of 0%, 5% and 20% of each neuron's spread. The student is `ddm.data.fit_recording`
(VDP: 64 neurons, Lorenz: 512, cycling_wells: 256; ``--method``: the drift fit, by default
the closed form) on the first 80% of every trajectory; at 20% noise also without the noise
correction. Beside it, the baseline a user would otherwise fit: a linear dynamical system
``y_{t+dt} = M y_t + c + w`` by least squares on the same latents (its drift
``(M - I) y / dt + c / dt``, its D the residual covariance over 2 dt). With ``--peer
dynamax`` (optional: ``pip install 'ddm-jax[peers]'``; skipped with a note when it does not
import), also a peer's method: dynamax's linear Gaussian state-space model fitted by EM on
the recorded neurons themselves (``x' = F x + b + N(0, Q)``, ``y = H x + d + N(0, R)``, k
latent dimensions, R diagonal: one noise variance a neuron), the natural peer of a method
for noisy recordings; its drift ``(F - I) x / dt + b / dt``, D ``Q / (2 dt)``, its latents
aligned to the teacher's as the student's (read from the noise-free neurons by generalised
least squares), its one-step prediction from the Kalman filter.

Reported, against the teacher (its latent coordinates, after the best affine map from the
student's latents, fitted on the noise-free projected states): the relative drift error on
held-out teacher states and the D error; the held-out one-step R^2 of the 100 recorded
neurons (mean); D_stsp (30 bins a dimension) and D_H (smoothing 20) of the student's free
simulations from held-out starts against the teacher's held-out latents (with the null of
two halves of the teacher's data); a dynamical measure: the period of VDP's noise-free limit
cycle, Lorenz's largest Lyapunov exponent (of the drift in the teacher's coordinates; for the
LDS ``2 pi / |Im lambda|`` or the largest real part of its drift matrix's eigenvalues), or
cycling_wells' preferred-direction fraction of neighbour hops (`ddm.memory.cycling`'s
measure on 400 trajectories of 100 time units from the wells' centres, the student's read
through the alignment) against the teacher network's and the target SDE's, each with its
Wilson 95% interval; the wall and CPU
time of the fit (and of the peer's, compilation included). Default JAX device, float32.
Writes results/recordings.{json,md,png} (other systems: recordings-SYSTEMS.*; ``--quick``
adds ``-quick``).

    python benchmarks/recordings.py [--quick] [--steps N] [--method M]
        [--systems vdp lorenz cycling_wells] [--peer dynamax]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import plt, stamp, write_results

import ddm_jax as ddm

DT = 0.01
METHOD = "lstsq"  # the closed form: as accurate as Adam here, and no gradient steps
RECORDED = 100
NOISE = (0.0, 0.05, 0.2)


def teacher_data(system, params, n_teacher, trajectories, time_units, steps, sim_dt, key):
    target = ddm.make_target(system, **params)
    k_fit, k_start, k_sim = jr.split(key, 3)
    start = time.perf_counter()
    teacher = ddm.fit(target, n_teacher, key=k_fit, config=ddm.TrainConfig(steps=steps)).model
    train_s = time.perf_counter() - start
    z0s = ddm.attractor_points(target, key=k_start, num=trajectories)
    run = ddm.simulate_network(
        teacher, z0s, key=k_sim, t1=time_units, dt=sim_dt, save_dt=DT, keep_neurons=True
    )
    return teacher, np.asarray(run.xs, float), np.asarray(run.zs, float), train_s


def dynamics_measure(system, drift, z0) -> float:
    """VDP: the period of the noise-free limit cycle; Lorenz: the largest Lyapunov exponent."""
    if system == "vdp":
        return ddm.fidelity.limit_cycle(drift, jnp.asarray(z0, jnp.float32))[0]
    return ddm.fidelity.lyapunov_exponent(drift, jnp.asarray(z0, jnp.float32), time=200.0)


# cycling_wells: the preferred-direction fraction of neighbour hops (`ddm.memory.cycling`'s
# protocol, smaller: CYCLE_TRAJ trajectories of CYCLE_T time units from the wells' centres)
CYCLE_TRAJ, CYCLE_T, CYCLE_BURN, CYCLE_DT, CYCLE_SAVE = 400, 100.0, 10.0, 0.005, 0.02


def hop_fraction(target, zs_teacher, save_dt) -> tuple[float, int]:
    """Share of neighbour hops in the target's preferred direction, and the number of hops."""
    centres, width = ddm.memory.well_geometry(target)
    labels = ddm.memory.well_labels(
        jnp.asarray(zs_teacher, jnp.float32), centres, ddm.memory._memory.CORE * width
    )
    first = int(np.ceil(CYCLE_BURN / save_dt - 1e-9))
    hops = ddm.memory.count_hops(labels[:, first:], centres.shape[0])
    fwd, bwd = int(hops.forward.sum()), int(hops.backward.sum())
    good = bwd if ddm.memory.preferred_direction(target) < 0 else fwd
    return good / max(fwd + bwd, 1), fwd + bwd


def cycling_reference(target, key, model=None) -> dict:
    """The target's fraction (the teacher network's: ``model``) with its Wilson 95% interval."""
    res = ddm.memory.cycling(target, key=key, model=model, trajectories=CYCLE_TRAJ, t1=CYCLE_T,
                             burn_in=CYCLE_BURN, dt=CYCLE_DT, save_dt=CYCLE_SAVE)  # fmt: skip
    return {"fraction": res.fraction, "low": res.fraction_low, "high": res.fraction_high}


def student_fraction(target, model, A, a, Ainv, key) -> float:
    """The student network's fraction, read in the teacher's coordinates (``z = A y + a``).

    Simulated from the wells' centres, as `cycling_reference`.
    """
    centres = np.asarray(ddm.memory.well_geometry(target)[0], float)
    starts = (centres[np.arange(CYCLE_TRAJ) % len(centres)] - a) @ Ainv.T
    run = ddm.simulate_network(model, jnp.asarray(starts, model.W_s.dtype), key=key,
                               t1=CYCLE_T, dt=CYCLE_DT, save_dt=CYCLE_SAVE)  # fmt: skip
    return hop_fraction(target, np.asarray(run.zs, float) @ A.T + a, CYCLE_SAVE)[0]


def lds_fraction(target, M, c, Q, A, a, Ainv, rng) -> float:
    """The same for the linear system (steps of DT, every second one read)."""
    centres = np.asarray(ddm.memory.well_geometry(target)[0], float)
    starts = (centres[np.arange(CYCLE_TRAJ) % len(centres)] - a) @ Ainv.T
    ys = simulate_lds(M, c, Q, starts, int(round(CYCLE_T / DT)), rng)[:, ::2]
    return hop_fraction(target, ys @ A.T + a, 2 * DT)[0]


def aligned_drift(model, A, a, Ainv):
    """The student's drift in the teacher's coordinates, ``A f(A^-1 (z - a))``."""
    A, a, Ainv = (jnp.asarray(m, jnp.float32) for m in (A, a, Ainv))
    return lambda z: A @ model.target_drift(Ainv @ (z - a))


def linear_measure(system, J) -> float:
    """The same for a linear drift: ``2 pi / |Im lambda|``, or the largest real part."""
    lam = np.linalg.eigvals(J)
    if system != "vdp":
        return float(np.max(lam.real))
    im = np.max(np.abs(lam.imag))
    return float(2 * np.pi / im) if im > 0 else float("inf")


def simulate_student(model, starts, steps, key):
    run = ddm.simulate_network(
        model, jnp.asarray(starts, model.W_s.dtype), key=key, t1=DT * steps, dt=DT / 10,
        save_dt=DT,
    )  # fmt: skip
    return np.asarray(run.zs, float)


def simulate_lds(M, c, Q, starts, steps, rng):
    out = np.empty((len(starts), steps + 1, len(c)))
    out[:, 0] = starts
    L = np.linalg.cholesky(Q + 1e-12 * np.eye(len(c)))
    for t in range(steps):
        out[:, t + 1] = out[:, t] @ M.T + c + rng.standard_normal(starts.shape) @ L.T
    return out


def evaluate(row, name, drift_fn, D, latent_map, held_act, predict_next, gen, ctx, period_fn):
    """Metrics of a student (drift in its latents, D, one-step predictor, free simulations)."""
    A, a, Ainv, zT_pts, fT, DT_true, zT_held = ctx
    y = (zT_pts - a) @ Ainv.T
    f = drift_fn(y) @ A.T
    row[f"drift_{name}"] = float(np.sqrt(np.sum((f - fT) ** 2) / np.sum(fT**2)))
    row[f"D_{name}"] = float(np.linalg.norm(A @ D @ A.T - DT_true) / np.linalg.norm(DT_true))
    obs = np.concatenate([s[1:] for s in held_act])
    pred = np.concatenate([predict_next(latent_map.encode(s[:-1])) for s in held_act])
    row[f"r2_{name}"] = float(np.nanmean(ddm.data.one_step_r2(obs, latent_map.decode(pred))))
    gen_T = gen @ A.T + a
    row[f"d_stsp_{name}"] = ddm.data.state_space_divergence(zT_held, gen_T)
    row[f"d_h_{name}"] = ddm.data.spectral_distance(zT_held, gen_T)
    row[f"period_{name}"] = period_fn(A, a, Ainv)


PEER_ITERS = 100  # EM iterations of the dynamax peer
PEER = (
    "dynamax's LinearGaussianSSM fitted by EM on the recorded neurons (k latent dimensions, "
    f"one noise variance a neuron, {PEER_ITERS} iterations from PCA); its one-step R^2 from "
    "the Kalman filter; its latents read from the noise-free neurons by GLS for the alignment; "
    "fit s includes compiling."
)


def evaluate_linear(row, name, lds, latent_map, held_act, gen, ctx, system, target, rng):
    """`evaluate` for a linear model ``y' = M y + c + w``, ``Cov(w) = Q`` (the LDS, the peer)."""
    M, c, Q = lds
    k = M.shape[0]
    evaluate(
        row, name, lambda y: (y @ M.T + c - y) / DT, Q / (2 * DT), latent_map, held_act,
        lambda y: y @ M.T + c, gen, ctx,
        (lambda A, a, Ainv: lds_fraction(target, M, c, Q, A, a, Ainv, rng))
        if system == "cycling_wells"
        else (lambda *_: linear_measure(system, (M - np.eye(k)) / DT)),
    )  # fmt: skip


def peer_available(name) -> str | None:
    """None when the peer ``name`` imports, else the reason it is skipped."""
    try:
        import dynamax.linear_gaussian_ssm  # noqa: F401
    except Exception as exc:  # ImportError, or a JAX it does not work with
        return f"{type(exc).__name__}: {exc}"
    return None


class PeerMap:
    """The peer's read of neurons: a Kalman filter (``encode``) and its emissions (``decode``)."""

    def __init__(self, model, params):
        self.params = params
        self._filter = jax.jit(lambda p, s: model.filter(p, s).filtered_means)
        e = params.emissions
        self.H, self.d = np.asarray(e.weights, float), np.asarray(e.bias, float)
        self.R = np.asarray(e.cov, float)
        Hr = self.H / self.R[:, None]
        self.gls = np.linalg.solve(self.H.T @ Hr, Hr.T)  # (H^T R^-1 H)^-1 H^T R^-1

    def project(self, x):
        """The latent state that explains activity ``x`` best, sample by sample (GLS)."""
        return (np.asarray(x, float) - self.d) @ self.gls.T

    def encode(self, s):
        """Filtered means of one trajectory ``(T, N)``: each from the samples up to it."""
        return np.asarray(self._filter(self.params, jnp.asarray(s, jnp.float64)), float)

    def decode(self, y):
        """The neurons' means ``H y + d``."""
        return np.asarray(y, float) @ self.H.T + self.d


def fit_peer_dynamax(obs, k, iters):
    """A linear Gaussian state-space model fitted by EM (dynamax) on the recorded neurons.

    ``x_{t+1} = F x_t + b + N(0, Q)``, ``y_t = H x_t + d + N(0, diag(R))``: k latent
    dimensions, one noise variance per neuron (the M-step's R is the diagonal of the full
    one, the exact M-step for a diagonal R; the Kalman filter then costs O(N k^2) a sample).
    Started from PCA: H the leading k components scaled to unit latent variance, R the
    remaining variance, F, b, Q the least-squares fit on those latents.
    """
    from dynamax.linear_gaussian_ssm import LinearGaussianSSM

    class DiagonalLGSSM(LinearGaussianSSM):
        def m_step(self, params, props, batch_stats, m_step_state):
            params, state = super().m_step(params, props, batch_stats, m_step_state)
            cov = jnp.maximum(jnp.diag(params.emissions.cov), 1e-6)
            # the initial covariance over a batch of trajectories: E[x0 x0^T] - m m^T (the
            # M-step's (sum x0 x0^T - sum x0 sum x0^T) / B is negative for B > 1)
            x0, x0x0, count = (jnp.sum(s, 0) for s in batch_stats[0])
            m = x0 / count
            S = x0x0 / count - jnp.outer(m, m) + 1e-6 * jnp.eye(k)
            return params._replace(
                initial=params.initial._replace(mean=m, cov=S),
                emissions=params.emissions._replace(cov=cov),
            ), state

    B, T, N = obs.shape
    flat = obs.reshape(-1, N)
    mean = flat.mean(0)
    lam, V = np.linalg.eigh(np.cov(flat.T))
    lam, V = lam[::-1][:k], V[:, ::-1][:, :k]
    H = V * np.sqrt(lam)
    R = np.maximum(flat.var(0) - np.sum(H**2, 1), 1e-3 * flat.var(0))
    x = (obs - mean) @ V / np.sqrt(lam)
    X, Y = x[:, :-1].reshape(-1, k), x[:, 1:].reshape(-1, k)
    coef = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Y, rcond=None)[0]
    F, b = coef[:k].T, coef[k]
    res = Y - X @ F.T - b
    model = DiagonalLGSSM(k, N)
    f64 = lambda m: jnp.asarray(m, jnp.float64)
    params, props = model.initialize(
        jr.key(0), initial_mean=f64(x[:, 0].mean(0)),
        initial_covariance=f64(np.cov(x[:, 0].T) + 1e-3 * np.eye(k)),
        dynamics_weights=f64(F), dynamics_bias=f64(b),
        dynamics_covariance=f64(res.T @ res / len(res)),
        emission_weights=f64(H), emission_bias=f64(mean), emission_covariance=f64(R),
    )  # fmt: skip

    # dynamax's EM step (its E-step, our diagonal M-step), jitted with the data as an
    # argument: fit_em closes over the data, and XLA then spends minutes constant-folding it
    @jax.jit
    def em_step(params, data):
        stats, lls = jax.vmap(lambda y: model.e_step(params, y))(data)
        return model.m_step(params, props, stats, None)[0], lls.sum()

    data, lls = f64(obs), []
    for _ in range(iters):
        params, ll = em_step(params, data)
        lls.append(float(ll))
    return model, params, np.asarray(lls)


def run_level(
    system, noise, correct, xs, zs, teacher, idx, cfg, n, key, rng, reference=None, peer=None
):
    B, T, _ = xs.shape
    k = zs.shape[-1]
    clean = xs[..., idx]
    sd = clean.reshape(-1, len(idx)).std(0)
    obs = clean + noise * sd * rng.standard_normal(clean.shape)
    cut = int(round(0.8 * T))
    start, cpu = time.perf_counter(), time.process_time()
    rec = ddm.data.fit_recording(
        obs[:, :cut], DT, n, key=key, config=cfg, correct_noise=correct, latent_dim=k
    )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    lm = rec.map
    # best affine map student latents -> teacher latents, on noise-free projected states
    y_clean = lm.encode(clean[:, :cut]).reshape(-1, k)
    fitA = ddm.data.estimate_affine_map(
        jnp.asarray(y_clean[::10]), jnp.asarray(zs[:, :cut].reshape(-1, k)[::10])
    )
    A, a = np.asarray(fitA.A, float), np.asarray(fitA.a, float)
    zT_held = zs[:, cut:]
    pts = zT_held.reshape(-1, k)[::20]
    fT = np.asarray(jax.vmap(teacher.target_drift)(jnp.asarray(pts, jnp.float32)), float)
    g = np.asarray(teacher.latent_noise_target(jnp.asarray(pts[0], jnp.float32)), float)
    ctx = (A, a, np.linalg.inv(A), pts, fT, g @ g.T / 2, zT_held)
    row = {
        "noise": noise, "correct_noise": correct, "corrected": rec.noise_corrected,
        "k": rec.latent_dim, "k_detected": rec.choice.detected, "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "noise_sd_rel": float(np.median(rec.noise_sd / obs.reshape(-1, len(idx)).std(0))),
    }  # fmt: skip
    held_act = list(obs[:, cut:])
    steps = T - cut - 1
    starts = lm.encode(obs[:, cut])
    model = rec.model
    drift = jax.jit(jax.vmap(model.target_drift))

    def flow(y):  # one step of the learned drift's flow (RK4)
        inc = ddm.data.Increments(y, np.zeros_like(y), None, DT)
        return y + np.asarray(ddm.data.increment_means(model, inc, True, both=False)[0])

    gen = simulate_student(model, starts, steps, jr.fold_in(key, 1))
    target = ddm.make_target(system, **SYSTEMS[system][0])
    if system == "cycling_wells":

        def measure(A, a, Ainv):
            return student_fraction(target, model, A, a, Ainv, jr.fold_in(key, 2))
    else:

        def measure(A, a, Ainv):
            return dynamics_measure(system, aligned_drift(model, A, a, Ainv), zT_held[0, 0])

    evaluate(
        row, "ddm", lambda y: np.asarray(drift(jnp.asarray(y, jnp.float32)), float),
        np.asarray(rec.fit.D, float), lm, held_act, flow, gen, ctx, measure,
    )  # fmt: skip
    row["r2_ceiling"] = float(1 - noise**2 / (1 + noise**2))
    row["d_stsp_null"] = ddm.data.state_space_divergence(zT_held[: B // 2], zT_held[B // 2 :])
    row["d_h_null"] = ddm.data.spectral_distance(zT_held[: B // 2], zT_held[B // 2 :])
    if reference is not None:  # cycling_wells: the teacher's fraction and its interval
        row["period_teacher"] = reference["teacher"]["fraction"]
        row["period_low"], row["period_high"] = (
            reference["teacher"]["low"],
            reference["teacher"]["high"],
        )
        row["period_inside"] = row["period_low"] <= row["period_ddm"] <= row["period_high"]
        row["period_target"] = reference["target"]
        row["period_inside_target"] = (
            reference["target"]["low"] <= row["period_ddm"] <= reference["target"]["high"]
        )
    else:
        row["period_teacher"] = dynamics_measure(system, teacher.target_drift, zT_held[0, 0])
    if correct:  # the linear baseline on the same latents
        ys = rec.latents
        X = np.concatenate([s[:-1] for s in ys])
        Y = np.concatenate([s[1:] for s in ys])
        coef = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Y, rcond=None)[0]
        M, c = coef[:k].T, coef[k]
        res = Y - X @ M.T - c
        Q = res.T @ res / len(res)
        gen_lds = simulate_lds(M, c, Q, starts, steps, rng)
        evaluate_linear(row, "lds", (M, c, Q), lm, held_act, gen_lds, ctx, system, target, rng)
        if peer is not None:  # the peer on the recorded neurons themselves, in float64
            with jax.enable_x64(True):
                peer_level(row, system, obs, clean, zs, idx, cut, steps, held_act, ctx, target, rng)
    return row


def peer_level(row, system, obs, clean, zs, idx, cut, steps, held_act, ctx, target, rng):
    """Fit the dynamax peer on the recorded neurons and add its metrics to ``row``."""
    k = zs.shape[-1]
    start, cpu = time.perf_counter(), time.process_time()
    pmodel, pparams, lls = fit_peer_dynamax(obs[:, :cut], k, PEER_ITERS)
    row["seconds_peer"] = time.perf_counter() - start
    row["cpu_seconds_peer"] = time.process_time() - cpu
    row["peer_loglik"] = [float(lls[0]), float(lls[-1])]
    row["peer_loglik_last_step"] = float(lls[-1] - lls[-2])
    pm = PeerMap(pmodel, pparams)
    dyn = pparams.dynamics
    F, b = np.asarray(dyn.weights, float), np.asarray(dyn.bias, float)
    Qp = np.asarray(dyn.cov, float)
    fitP = ddm.data.estimate_affine_map(
        jnp.asarray(pm.project(clean[:, :cut].reshape(-1, len(idx)))[::10]),
        jnp.asarray(zs[:, :cut].reshape(-1, k)[::10]),
    )
    Ap, ap = np.asarray(fitP.A, float), np.asarray(fitP.a, float)
    ctx_p = (Ap, ap, np.linalg.inv(Ap), *ctx[3:])
    gen_p = simulate_lds(F, b, Qp, pm.project(obs[:, cut]), steps, rng)
    evaluate_linear(row, "peer", (F, b, Qp), pm, held_act, gen_p, ctx_p, system, target, rng)


# system: (registry parameters, teacher neurons, student neurons, simulation step)
SYSTEMS = {
    "vdp": ({"noise": 0.3}, 128, 64, 1e-3),
    "lorenz": ({"noise": 1.0}, 512, 512, 5e-4),
    "cycling_wells": ({"alpha": 3.0}, 256, 256, 1e-3),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="student drift steps")
    parser.add_argument("--systems", nargs="+", default=["vdp"], choices=sorted(SYSTEMS))
    parser.add_argument("--method", default=METHOD, choices=("adam", "lstsq", "lstsq+adam"),
                        help="the student's drift fit (TrainConfig.method)")  # fmt: skip
    parser.add_argument("--peer", choices=("dynamax",), default=None,
                        help="also fit a peer's method (pip install 'ddm-jax[peers]')")  # fmt: skip
    args = parser.parse_args()
    peer = args.peer
    if peer is not None and (why := peer_available(peer)) is not None:
        print(f"peer {peer} skipped: not installed or not working here ({why})", flush=True)
        peer = None
    trajectories, time_units = (32, 50.0) if args.quick else (64, 100.0)
    steps = args.steps or (2000 if args.quick else 5000)
    cfg = ddm.TrainConfig(steps=steps, method=args.method)
    started = stamp()  # the commit and load when the run began
    rows, teachers = [], {}
    for system in args.systems:
        params, n_teacher, n_student, sim_dt = SYSTEMS[system]
        start = time.perf_counter()
        teacher, xs, zs, train_s = teacher_data(
            system, params, n_teacher, trajectories, time_units,
            5000 if args.quick else 20000, sim_dt, jr.key(0),
        )  # fmt: skip
        data_s = time.perf_counter() - start - train_s
        teachers[system] = {"n": n_teacher, "train_seconds": train_s, "data_seconds": data_s}
        print(f"teacher {system}-{n_teacher}: trained {train_s:.0f} s, data {data_s:.0f} s",
              flush=True)  # fmt: skip
        rng = np.random.default_rng(0)
        idx = np.sort(rng.choice(xs.shape[-1], RECORDED, replace=False))
        reference = None
        if system == "cycling_wells":
            target = ddm.make_target(system, **params)
            reference = {"target": cycling_reference(target, jr.key(3)),
                         "teacher": cycling_reference(target, jr.key(3), teacher)}  # fmt: skip
            teachers[system]["reference"] = reference
        for noise in NOISE:
            for correct in (True, False) if noise == 0.2 else (True,):
                row = run_level(system, noise, correct, xs, zs, teacher, idx, cfg, n_student,
                                jr.key(1), rng, reference, peer)  # fmt: skip
                row |= {"system": system, "n_teacher": n_teacher, "n": n_student}
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
                      flush=True)  # fmt: skip
    head = (
        "| system | noise | correction | fit s (CPU s) | drift err | D err | R^2 (ceiling) | "
        "D_stsp (null) | D_H (null) | measure (teacher) | LDS drift err | LDS D err | LDS R^2 | "
        "LDS D_stsp | LDS D_H | LDS period |"
        + (" peer drift err | peer D err | peer R^2 | peer D_stsp | peer D_H | peer period | "
           "peer fit s (CPU s) |" if peer else "")
        + "\n|" + "---|" * (23 if peer else 16) + "\n"
    )  # fmt: skip

    def measure(r):
        if "period_low" in r:  # the teacher's fraction [its 95% interval]; the target's
            inside = "inside" if r["period_inside"] else "outside"
            t = r["period_target"]
            return (f"{r['period_ddm']:.3f} ({r['period_teacher']:.3f} [{r['period_low']:.3f}, "
                    f"{r['period_high']:.3f}], {inside}; target {t['fraction']:.3f} "
                    f"[{t['low']:.3f}, {t['high']:.3f}])")  # fmt: skip
        return f"{r['period_ddm']:.2f} ({r['period_teacher']:.2f})"

    lines = []
    for r in rows:
        lds = (
            f"{100 * r['drift_lds']:.1f}% | {100 * r['D_lds']:.1f}% | {r['r2_lds']:.4f} | "
            f"{r['d_stsp_lds']:.3f} | {r['d_h_lds']:.3f} | {r['period_lds']:.3f}"
            if "drift_lds" in r else " | | | | | "
        )  # fmt: skip
        if peer:
            lds += (
                f" | {100 * r['drift_peer']:.1f}% | {100 * r['D_peer']:.1f}% | "
                f"{r['r2_peer']:.4f} | {r['d_stsp_peer']:.3f} | {r['d_h_peer']:.3f} | "
                f"{r['period_peer']:.3f} | {r['seconds_peer']:.1f} ({r['cpu_seconds_peer']:.0f})"
                if "drift_peer" in r else " | | | | | | | "
            )  # fmt: skip
        lines.append(
            f"| {r['system']}-{r['n_teacher']} | {100 * r['noise']:.0f}% | {r['correct_noise']} | "
            f"{r['seconds']:.1f} ({r['cpu_seconds']:.0f}) | "
            f"{100 * r['drift_ddm']:.1f}% | {100 * r['D_ddm']:.1f}% | {r['r2_ddm']:.4f} "
            f"({r['r2_ceiling']:.4f}) | {r['d_stsp_ddm']:.3f} ({r['d_stsp_null']:.3f}) | "
            f"{r['d_h_ddm']:.3f} ({r['d_h_null']:.3f}) | {measure(r)} | {lds} |"
        )
    names = [(s, t["n"]) for s, t in teachers.items()]
    table = (
        f"Teachers: {', '.join(f'{s}-{t}' for s, t in names)} (ddm.fit); "
        f"{RECORDED} of their neurons recorded, {trajectories} trajectories of {time_units:g} "
        f"time units at dt = {DT}; student fit_recording (VDP in 64 neurons, Lorenz in 512, "
        f"cycling_wells in 256), method {args.method}"
        f"{f', {steps} drift steps' if args.method != 'lstsq' else ''}; k given (detected: "
        f"{', '.join(str(r['k_detected']) for r in rows)}). Measure: VDP's limit-cycle "
        "period; Lorenz's largest Lyapunov exponent; cycling_wells' preferred-direction "
        f"fraction of neighbour hops ({CYCLE_TRAJ} trajectories of {CYCLE_T:g} time units from "
        "the wells' centres), against the teacher network's and the target SDE's, each with "
        "its Wilson 95% interval."
        + (f" Peer: {PEER}" if peer else "")
        + "\n\n"
        + head
        + "\n".join(lines)
        + "\n"
    )

    series = [("ddm", "ddm-jax"), ("lds", "LDS")] + ([("peer", f"{peer} LGSSM")] if peer else [])

    def plot(path):
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        w = 0.27 if peer else 0.4
        labels = [f"{100 * r['noise']:.0f}%{'' if r['correct_noise'] else ' raw'}" for r in rows]
        xpos = np.arange(len(rows))
        for i, (key, label) in enumerate(series):
            vals = [100 * r.get(f"drift_{key}", np.nan) for r in rows]
            ax[0].bar(xpos + (i - (len(series) - 1) / 2) * w, vals, w, label=label)
        ax[0].set(xticks=xpos, xticklabels=labels, ylabel="drift error after alignment (%)")
        ax[0].legend()
        for i, (key, label) in enumerate(series):
            vals = [r.get(f"d_stsp_{key}", np.nan) for r in rows]
            ax[1].bar(xpos + (i - (len(series) - 1) / 2) * w, vals, w, label=label)
        ax[1].axhline(rows[0]["d_stsp_null"], color="k", ls="--", label="null")
        ax[1].set(xticks=xpos, xticklabels=labels, ylabel="D_stsp")
        ax[1].legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    data = {**started, "method": args.method, "steps": steps, "teachers": teachers,
            "trajectories": trajectories, "time_units": time_units, "rows": rows,
            "peer": peer, "peer_iters": PEER_ITERS if peer else None}  # fmt: skip
    name = "recordings" if args.systems == ["vdp"] else "-".join(["recordings", *args.systems])
    name += "-quick" if args.quick else ""  # keeps the full-size pages
    write_results(name, data, table, plot)
    print(table)


if __name__ == "__main__":
    main()
