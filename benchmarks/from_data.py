"""How well does drift matching on increments learn a known SDE from its trajectories?

Synthetic data from registered targets (the truth is known): OU with a non-normal B, Van der
Pol (G = 0.3 I), Lorenz (G = I) sampled at dt = 0.01 and 0.002, and the nonequilibrium wells
(`cycling_wells`, alpha = 1, a non-polynomial drift). Trajectories start on the attractor
(`ddm.attractor_points`) and are simulated by Euler-Maruyama at a finer step, then sampled
every dt (OU: exact discrete-time samples). For each case `ddm.fit_data` is run with and
without the Richardson bias correction, and StochasticForceInference (``SFI``, optional extra
``[data]``; skipped when missing) fits polynomials of a fixed degree to the same data.
Reported: relative L2 drift error on held-out attractor points and the relative Frobenius
error of the constant D; for ddm-jax's corrected fit also the network simulated against the
*true* target (`ddm.fidelity_report`: sliced Wasserstein, mean and covariance), the entropy
production of the learned SDE (`ddm.analysis.epr_from_samples`) against the truth, and a case of
state-dependent noise (``G = sigma diag(sqrt(1 + z^2))``). Default JAX device, float32.
Writes results/from_data.{json,md,png}.

    python benchmarks/from_data.py [--quick] [--steps N] [--only SYSTEM ...]
    # quick: 16 trajectories, 5,000 steps
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import scipy.linalg
from _results import RESULTS, plt, result_name, stamp, write_results

import ddm_jax as ddm

# name, registry parameters, sampling dt, time units, neurons, simulation step, SFI degree
CASES = [
    ("ou", {}, 0.01, 200.0, 64, None, 1),
    ("vdp", {"noise": 0.3}, 0.01, 100.0, 64, 1e-3, 3),
    ("lorenz", {"noise": 1.0}, 0.01, 100.0, 512, 5e-4, 2),
    ("lorenz", {"noise": 1.0}, 0.002, 100.0, 512, 5e-4, 2),
    ("cycling_wells", {"alpha": 1.0}, 0.01, 100.0, 128, 1e-3, 5),
]


def ou_exact(target, trajectories, time_units, dt, seed):
    B = np.asarray(target.args["B"], float)
    G = np.asarray(target.args["noise"], float)
    S = np.asarray(
        ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(G @ G.T / 2)), float
    )
    A = scipy.linalg.expm(-B * dt)
    L = np.linalg.cholesky(S - A @ S @ A.T)
    rng = np.random.default_rng(seed)
    steps = int(round(time_units / dt))
    z = np.empty((trajectories, steps + 1, B.shape[0]))
    z[:, 0] = rng.multivariate_normal(np.zeros(B.shape[0]), S, trajectories)
    for t in range(steps):
        z[:, t + 1] = z[:, t] @ A.T + rng.standard_normal(z[:, 0].shape) @ L.T
    return z


def make_data(target, trajectories, time_units, dt, sim_dt, key):
    if sim_dt is None:
        return ou_exact(target, trajectories, time_units, dt, seed=0)
    k_start, k_sim = jr.split(key)
    z0s = ddm.attractor_points(target, key=k_start, num=trajectories)
    run = ddm.simulate_target(target, z0s, key=k_sim, t1=time_units, dt=sim_dt, save_dt=dt)
    return np.asarray(run.zs, float)


def rel_drift(f_hat, f_true):
    return float(np.sqrt(np.sum((f_hat - f_true) ** 2) / np.sum(f_true**2)))


def rel_d(d_hat, d_true):
    return float(np.linalg.norm(np.asarray(d_hat) - d_true) / np.linalg.norm(d_true))


def sfi_fit(data, dt, degree, points):
    """StochasticForceInference on the same data: polynomial force, constant D."""
    try:
        from SFI import OverdampedLangevinInference, TrajectoryCollection
        from SFI.bases import monomials_up_to
    except ImportError:
        return None
    start = time.perf_counter()
    X = jnp.asarray(np.swapaxes(data, 0, 1))  # SFI wants (T, particles, d)
    inf = OverdampedLangevinInference(TrajectoryCollection.from_arrays(X=X, dt=dt))
    inf.compute_diffusion_constant()
    inf.infer_force_linear(monomials_up_to(degree, dim=data.shape[-1], rank="vector"))
    f = np.asarray(inf.force_inferred(jnp.asarray(points)), float)
    return f, np.asarray(inf.diffusion_average, float), time.perf_counter() - start


def run_case(name, params, dt, time_units, n, sim_dt, degree, *, trajectories, config, quick):
    target = ddm.make_target(name, **params)
    k_data, k_test, k_fit, k_report = jr.split(jr.key(0), 4)
    data = make_data(target, trajectories, time_units, dt, sim_dt, k_data)
    held = np.asarray(ddm.attractor_points(target, key=k_test, num=16384), float)
    f_true = np.asarray(jax.vmap(target.f)(jnp.asarray(held)), float)
    g = np.asarray(target.g(target.z0), float)
    d_true = g @ g.T / 2
    row = {"system": name, "dt": dt, "trajectories": trajectories, "time": time_units, "n": n}
    for correct in (False, True):
        start = time.perf_counter()
        fit = ddm.fit_data(data, dt, n, key=k_fit, config=config, correct=correct)
        seconds = time.perf_counter() - start
        f_hat = np.asarray(jax.vmap(fit.target.f)(jnp.asarray(held, jnp.float32)), float)
        tag = "corrected" if correct else "plain"
        row[f"drift_{tag}"] = rel_drift(f_hat, f_true)
        row[f"D_{tag}"] = rel_d(fit.D, d_true)
        row[f"seconds_{tag}"] = seconds
        if name == "ou":  # the learned drift matrix, by a least-squares linear fit
            A = np.asarray(ddm.data.fitted_linear_drift(fit.target, jnp.asarray(held, jnp.float32)))
            B = np.asarray(target.args["B"], float)
            row[f"B_{tag}"] = float(np.linalg.norm(-A[:, :2] - B) / np.linalg.norm(B))
    sfi = sfi_fit(data, dt, degree, held)
    if sfi is not None:
        row["drift_sfi"] = rel_drift(sfi[0], f_true)
        row["D_sfi"] = rel_d(sfi[1], d_true)
        row["sfi_degree"], row["seconds_sfi"] = degree, sfi[2]
    samples = jnp.asarray(data[:, ::10], jnp.float32)  # (trajectories, times, k)
    if name in ("ou", "cycling_wells"):
        row["epr_learned"] = ddm.analysis.epr_from_samples(fit.target.f, fit.D, samples).value
        d = jnp.asarray(d_true, jnp.float32)
        row["epr_true_on_data"] = ddm.analysis.epr_from_samples(target.f, d, samples).value
        if name == "ou":
            B = np.asarray(target.args["B"], float)
            S = np.asarray(
                ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(d_true))
            )
            row["epr_exact"] = float(-np.trace(np.linalg.inv(d_true) @ B @ (B @ S - d_true)))
    report = ddm.fidelity_report(
        fit.model, target, key=k_report, trajectories=64 if quick else 256, t1=20.0,
        deterministic=False,
    )  # fmt: skip
    m = report.metrics
    row.update({f"net_vs_true_{k}": float(m[k]) for k in ("sw", "sw_null", "mean_error",
                                                         "cov_error", "cov_error_null")
                if k in m})  # fmt: skip
    return row


def state_dependent_case(trajectories, config):
    """OU drift with ``G = 0.3 diag(sqrt(1 + z^2))``: the learned read-out's covariance error."""
    drift = lambda t, z, args: -args["B"] @ z
    diffusion = lambda t, z, args: 0.3 * jnp.diag(jnp.sqrt(1 + z**2))
    target = ddm.from_callables(
        drift, diffusion, box=([-2.0, -2.0], [2.0, 2.0]), z0=[0.0, 0.0],
        args={"B": jnp.array([[1.0, 2.0], [-0.5, 1.0]])}, name="ou_multiplicative",
    )  # fmt: skip
    k_data, k_test, k_fit = jr.split(jr.key(1), 3)
    data = make_data(target, trajectories, 100.0, 0.01, 1e-3, k_data)
    held = ddm.attractor_points(target, key=k_test, num=16384)
    fit = ddm.fit_data(data, 0.01, 64, key=k_fit, config=config, state_dependent_noise=True)
    f_hat = np.asarray(jax.vmap(fit.target.f)(held), float)
    f_true = np.asarray(jax.vmap(target.f)(held), float)
    return {
        "system": "ou, G = 0.3 sqrt(1 + z^2)", "dt": 0.01, "trajectories": trajectories,
        "time": 100.0, "n": 64, "drift_corrected": rel_drift(f_hat, f_true),
        "covariance_error": float(ddm.diffusion_error(fit.model, target, held)),
    }  # fmt: skip


def pct(x):
    return "" if x is None else f"{100 * x:.2f}%"


def markdown(rows, state_row, steps) -> str:
    lines = [
        f"Adam steps: {steps}, batch 1024, then the least-squares read-out. Errors are relative "
        "(drift: L2 on 16,384 held-out attractor points; D: Frobenius). 'net vs true': the "
        "network trained on the corrected fit, simulated (256 x 20 time units) against the "
        "true target; null: target against itself.",
        "",
        "| system | dt | data | n | drift err. plain | drift err. corrected | drift err. SFI "
        "| D err. plain | D err. corrected | D err. SFI | net vs true: SW (null) | mean err. "
        "| cov. err. (null) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sfi_drift = pct(r.get("drift_sfi"))
        sfi_drift += f" (degree {r['sfi_degree']})" if "sfi_degree" in r else "not run"
        lines.append(
            f"| {r['system']} | {r['dt']} | {r['trajectories']} x {r['time']:.0f} | {r['n']} "
            f"| {pct(r['drift_plain'])} | {pct(r['drift_corrected'])} | {sfi_drift} "
            f"| {pct(r['D_plain'])} | {pct(r['D_corrected'])} | {pct(r.get('D_sfi'))} "
            f"| {pct(r.get('net_vs_true_sw'))} ({pct(r.get('net_vs_true_sw_null'))}) "
            f"| {pct(r.get('net_vs_true_mean_error'))} "
            f"| {pct(r.get('net_vs_true_cov_error'))} "
            f"({pct(r.get('net_vs_true_cov_error_null'))}) |"
        )
    for r in rows:
        if "B_plain" in r:
            lines.append(
                f"\nOU drift matrix (least-squares linear fit of the learned drift): relative "
                f"error {pct(r['B_plain'])} plain, {pct(r['B_corrected'])} corrected."
            )
        if "epr_learned" in r:
            exact = f", exact {r['epr_exact']:.3f}" if "epr_exact" in r else ""
            lines.append(
                f"\nEntropy production, {r['system']}: learned SDE {r['epr_learned']:.3f}, true "
                f"drift on the same samples {r['epr_true_on_data']:.3f}{exact}."
            )
    if state_row is not None:
        lines.append(
            f"\nState-dependent noise ({state_row['system']}, {state_row['trajectories']} x "
            f"{state_row['time']:.0f} at dt 0.01, n = 64): covariance error of the learned noise "
            f"read-out on the attractor {pct(state_row['covariance_error'])}, drift error "
            f"{pct(state_row['drift_corrected'])}."
        )
    return "\n".join(lines) + "\n"


def plot(rows, path):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [f"{r['system']}\ndt {r['dt']}" for r in rows]
    x = np.arange(len(rows))
    for i, (key, label) in enumerate(
        [("drift_plain", "ddm-jax plain"), ("drift_corrected", "ddm-jax corrected"),
         ("drift_sfi", "SFI")]
    ):  # fmt: skip
        vals = [100 * r.get(key, np.nan) for r in rows]
        ax.bar(x + (i - 1) * 0.27, vals, 0.27, label=label)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("drift error on the attractor (%)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", nargs="*", default=[],
        help="systems to run, 'state' for the state-dependent case (others kept from the last run)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, help="Adam steps (default 20,000; quick 5,000)")
    parser.add_argument("--collect", action="store_true", help="only rewrite .md/.png")
    args = parser.parse_args()
    if args.collect:
        data = json.loads((RESULTS / f"{result_name('from_data')}.json").read_text())
        rows, state_row = data["rows"], data["state_dependent"]
        table = markdown(rows, state_row, data["steps"])
        write_results("from_data", data, table, lambda p: plot(rows, p))
        return
    trajectories = 16 if args.quick else 64
    config = ddm.TrainConfig(steps=args.steps or (5000 if args.quick else 20000))
    previous = {}  # with --only, the other cases' rows are kept from the last results
    old_file = RESULTS / f"{result_name('from_data')}.json"
    if args.only and old_file.exists():
        previous = json.loads(old_file.read_text())
    order = [(c[0], c[2]) for c in CASES]
    rows = [r for r in previous.get("rows", []) if r["system"] not in args.only]
    state_row = previous.get("state_dependent")

    def write():
        rows.sort(key=lambda r: order.index((r["system"], r["dt"])))
        data = {**stamp(), "steps": config.steps, "rows": rows, "state_dependent": state_row}
        write_results(
            "from_data", data, markdown(rows, state_row, config.steps), lambda p: plot(rows, p)
        )

    for case in CASES:
        if args.only and case[0] not in args.only:
            continue
        start = time.perf_counter()
        rows.append(run_case(*case, trajectories=trajectories, config=config, quick=args.quick))
        print(rows[-1], f"{time.perf_counter() - start:.0f} s", flush=True)
        write()
    if not args.only or "state" in args.only:
        state_row = state_dependent_case(trajectories, config)
        print(state_row, flush=True)
        write()


if __name__ == "__main__":
    main()
