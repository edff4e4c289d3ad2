"""How irreversible are the embedded networks, and is their activity exactly k-dimensional?

For vdp-64, lorenz-512 and dadras-1024 trained with the defaults (20,000 steps): entropy
production rate of target and network (sample and Stratonovich trajectory estimators, 64
trajectories x 30 time units, 256 for dadras, from stationary target states, Euler-Maruyama
dt = 1e-3, same Brownian increments on both sides; 95% intervals from the trajectories, for
the difference from the paired per-trajectory differences); PCA of neuron
activity (2 trajectories x 20 time units) and the latent trajectory recovered from it. For
vdp-64 and cycling_wells-64 the reversible/irreversible split of the read-out: the reversible
sub-network's EPR and stationary density (simulated from many stationary network states, and
from a Fokker-Planck solve), see `split_row`. CPU, float32. Writes
results/analysis.{json,md,png}; each system's seed is fixed (`SEEDS`), whatever the order.

    python benchmarks/analysis.py [--systems vdp lorenz dadras cycling_wells] [--split-only]
                                  [--keep]
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import RESULTS, plt, result_name, stamp, write_results

import ddm_jax as ddm

SIZES = {"vdp": 64, "lorenz": 512, "dadras": 1024, "cycling_wells": 64}
EPR_SYSTEMS = ("vdp", "lorenz", "dadras")
# Dadras is heavy-tailed: 64 trajectories leave a 19% interval on the difference (unpaired)
EPR_TRAJECTORIES = {"vdp": 64, "lorenz": 64, "dadras": 256}
SPLIT_SYSTEMS = ("vdp", "cycling_wells")
DT = 1e-3
SEEDS = {"lorenz": 100, "dadras": 101, "vdp": 102, "cycling_wells": 103}  # order-free
STARTS, SHORT_T, SW_SIZE = 8192, 5.0, 131072  # reversible runs: starts, length, SW sample


def same(key):
    return jr.wrap_key_data(jr.key_data(key))


def spread(a):
    return float(jnp.sqrt(jnp.sum(jnp.var(a, axis=0))))


def stationary_starts(target, key, num=64, burn_in=10.0):
    k0, k1 = jr.split(key)
    z0s = ddm.simulation.sample_box(k0, target, num)
    return ddm.simulate_target(target, z0s, key=k1, t1=burn_in, dt=DT, save_dt=burn_in).zs[:, -1]


def as_dict(est):
    return {"value": est.value, "stderr": est.stderr, "low": est.low, "high": est.high}


def epr_row(system, target, model, key) -> dict:
    k_start, k_sim, k_pca = jr.split(key, 3)
    D = ddm.analysis.diffusion_matrix(target)
    z0s = stationary_starts(target, k_start, num=EPR_TRAJECTORIES[system])
    start = time.perf_counter()
    net = ddm.simulate_network(model, z0s, key=k_sim, t1=30.0, dt=DT).zs
    ref = ddm.simulate_target(target, z0s, key=same(k_sim), t1=30.0, dt=DT).zs
    row = {"simulate_s": time.perf_counter() - start, "trajectories": int(z0s.shape[0])}
    start = time.perf_counter()
    estimates = {}
    for who, f, zs in [("target", target.f, ref), ("network", model.target_drift, net)]:
        estimates[who, "samples"] = ddm.analysis.epr_from_samples(f, D, zs[:, ::10])
        estimates[who, "trajectories"] = ddm.analysis.epr_from_trajectories(f, D, zs, DT)
        for how in ("samples", "trajectories"):
            row[f"{who}_{how}"] = as_dict(estimates[who, how])
    row["estimate_s"] = time.perf_counter() - start
    for how in ("samples", "trajectories"):
        t, n = estimates["target", how], estimates["network", how]
        # paired: trajectory i of both sides starts at the same state with the same increments
        diffs = np.asarray(n.groups, float) - np.asarray(t.groups, float)
        z = ddm.analysis.quantile95()  # the normal 95% quantile
        half = z * diffs.std(ddof=1) / np.sqrt(diffs.size)
        row[f"difference_{how}"] = (n.value - t.value) / t.value
        row[f"interval_{how}"] = half / t.value  # 95% half-width of the difference, relative
        row[f"interval_unpaired_{how}"] = z * np.hypot(t.stderr, n.stderr) / t.value
        row[f"covered_{how}"] = bool(abs(n.value - t.value) <= half)
    few = ddm.simulate_network(model, z0s[:2], key=k_pca, t1=20.0, dt=DT, save_dt=0.01,
                               keep_neurons=True)  # fmt: skip
    rec = ddm.data.recover_subspace(model, few.xs, few.zs)
    ref2 = ddm.simulate_target(target, z0s[:2], key=same(k_pca), t1=20.0, dt=DT, save_dt=0.01).zs
    row |= {
        "explained": np.asarray(rec.explained[: model.k + 2]).tolist(),
        "gap": rec.gap,
        "recovery_error_readout": rec.error,
        "recovery_error_target_1tu": ddm.data.relative_trajectory_error(
            rec.recovered[:, :101], ref2[:, :101]
        ),
        "recovery_error_target_20tu": ddm.data.relative_trajectory_error(rec.recovered, ref2),
    }
    return row


def _subset(key, a, num):
    return a[jr.choice(key, a.shape[0], (num,), replace=False)]


def _grid_sample(density, num, rng):
    """``num`` states drawn from a grid density (uniform within the cell, in y = L^-1 z)."""
    i = rng.choice(density.p.size, size=num, p=density.p)
    ys = np.linalg.solve(density.chol, density.centres[i].T).T
    cell = np.ptp(np.linalg.solve(density.chol, density.centres.T).T, axis=0) / (density.num - 1)
    return (ys + (rng.random(ys.shape) - 0.5) * cell) @ density.chol.T


def split_row(system, target, model, key) -> dict:
    """The reversible sub-network against the full network (and the target).

    Along VDP's ring and between the wells the reversible flow only diffuses (mixing time
    ~ L^2 / D, thousands of time units), so a few long runs of it cannot sample its density:
    64 frozen stationary states are already 11% (vdp) / 8% (cycling_wells) of the spread away
    from the network's density. It is therefore started from STARTS stationary network states
    and run for a short time; the full network is run with the same design as its null.
    """
    k_start, k_net, k_net2, k_rev, k_tgt, k_many, k_full, k_sub = jr.split(key, 8)
    D = ddm.analysis.diffusion_matrix(target)
    z0s = stationary_starts(target, k_start)
    grid = dict(t1=30.0, dt=DT, save_dt=0.01)
    net = ddm.simulate_network(model, z0s, key=k_net, **grid).zs
    net2 = ddm.simulate_network(model, z0s, key=k_net2, **grid).zs
    tgt = ddm.simulate_target(target, z0s, key=k_tgt, **grid).zs
    start = time.perf_counter()
    split = ddm.analysis.reversible_split(model, net.reshape(-1, target.dim))
    split_s = time.perf_counter() - start
    many = _subset(k_many, net.reshape(-1, target.dim), STARTS)
    short = dict(t1=SHORT_T, dt=DT, save_dt=0.1)
    rev = ddm.simulate_network(split.reversible, many, key=k_rev, **short).zs[:, 1:]
    full = ddm.simulate_network(model, many, key=k_full, **short).zs[:, 1:]
    ks = jr.split(k_sub, 4)
    a, b, c, d = (_subset(kk, x.reshape(-1, target.dim), SW_SIZE)
                  for kk, x in zip(ks, (rev, net2, tgt, full), strict=True))  # fmt: skip
    dot = jax.vmap(jax.vmap(lambda z: split.f_irr(z) @ split.score(z)))(net2)
    scale = jax.vmap(jax.vmap(lambda z: split.f_rev(z) @ split.score(z)))(net2)
    epr_full = ddm.analysis.epr_from_samples(model.target_drift, D, net2)
    epr_rev = ddm.analysis.epr_from_samples(split.reversible.target_drift, D, rev)
    frozen = jnp.repeat(many, SW_SIZE // STARTS, axis=0)
    # sample-free: the reversible sub-network's Fokker-Planck density against the network's
    box = ddm.analysis.whitened_box(net.reshape(-1, target.dim), D)
    p_net = ddm.analysis.stationary_density(model.target_drift, D, *box, num=400)
    p_rev = ddm.analysis.stationary_density(split.f_rev, D, *box, num=400)
    rng = np.random.default_rng(0)
    g_net, g_rev = (jnp.asarray(_grid_sample(p, SW_SIZE, rng), jnp.float32) for p in (p_net, p_rev))
    sw = lambda x, y: ddm.fidelity.sliced_wasserstein(x, y) / spread(y)
    return {
        "method": "grid" if target.dim == 2 else "score_matching",
        "ridge": split.ridge,
        "split_s": split_s,
        "starts": STARTS,
        "short_t": SHORT_T,
        "epr_full": as_dict(epr_full),
        "epr_reversible": as_dict(epr_rev),
        "epr_ratio": epr_rev.value / epr_full.value,
        "sw_reversible_vs_network": sw(a, b),
        "sw_reversible_vs_target": sw(a, c),
        "sw_network_vs_target": sw(b, c),
        "sw_network_vs_network": sw(d, b),  # the same design (STARTS short runs): the null
        "sw_frozen_starts": sw(frozen, b),
        "sw_64_long_runs_null": sw(_subset(ks[0], net.reshape(-1, target.dim), SW_SIZE), b),
        "grid_sw_reversible_vs_network": sw(g_rev, g_net),
        "grid_tv_reversible_vs_network": ddm.analysis.total_variation(p_rev.p, p_net.p),
        "grid_sw_network_vs_simulation": sw(g_net, b),
        "f_irr_dot_score": as_dict(ddm.analysis.mean_with_interval(dot)),
        "f_rev_dot_score": float(jnp.mean(scale)),
    }


def markdown(rows) -> str:
    pct = lambda x: f"{100 * x:.2f}%"
    out = [
        "| system | n | trajectories | train (s) | attractor drift err. | Phi target (samples) "
        "| Phi network (samples) | diff. (95% half-width paired; unpaired) | Phi target (traj.) "
        "| Phi network (traj.) | diff. (95% half-width paired; unpaired) | EV(k+1)/EV(1) "
        "| recovery err. (read-out) | vs target, 1 t.u. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda e: f"{e['value']:.4g} +- {e['stderr']:.2g}"

    def interval(r, how):
        unpaired = r.get(f"interval_unpaired_{how}")
        paired = pct(r[f"interval_{how}"])
        return paired if unpaired is None else f"{paired}; {pct(unpaired)}"

    for r in rows:
        if "target_samples" not in r:
            continue
        out.append(
            f"| {r['system']} | {r['n']} | {r.get('trajectories', 64)} | {r['train_s']:.0f} "
            f"| {pct(r['drift_error'])} "
            f"| {fmt(r['target_samples'])} | {fmt(r['network_samples'])} "
            f"| {pct(r['difference_samples'])} ({interval(r, 'samples')}) "
            f"| {fmt(r['target_trajectories'])} | {fmt(r['network_trajectories'])} "
            f"| {pct(r['difference_trajectories'])} ({interval(r, 'trajectories')}) "
            f"| {r['gap']:.1e} | {r['recovery_error_readout']:.1e} "
            f"| {pct(r['recovery_error_target_1tu'])} |"
        )
    out += [
        "",
        "| system | n | ridge | Phi full | Phi reversible | ratio | SW rev. vs network | SW rev. "
        "vs target | SW network vs target | null: network, same design | floor: frozen starts "
        "| Fokker-Planck: SW rev. vs network (TV) | E[f_irr . grad log p] | "
        "E[f_rev . grad log p] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "split" not in r:
            continue
        s = r["split"]
        d = s["f_irr_dot_score"]
        out.append(
            f"| {r['system']} | {r['n']} | {s['ridge']:.0e} | {fmt(s['epr_full'])} "
            f"| {fmt(s['epr_reversible'])} | {pct(s['epr_ratio'])} "
            f"| {pct(s['sw_reversible_vs_network'])} | {pct(s['sw_reversible_vs_target'])} "
            f"| {pct(s['sw_network_vs_target'])} | {pct(s['sw_network_vs_network'])} "
            f"| {pct(s['sw_frozen_starts'])} | {pct(s['grid_sw_reversible_vs_network'])} "
            f"({pct(s['grid_tv_reversible_vs_network'])}) | {d['value']:.3g} [{d['low']:.3g}, "
            f"{d['high']:.3g}] | {s['f_rev_dot_score']:.3g} |"
        )
    out += [
        "",
        f"Reversible split: the reversible sub-network (and, as the null, the full network) "
        f"started from {STARTS} stationary network states for {SHORT_T:g} time units; SW over "
        f"{SW_SIZE} states against 64 x 30 time units of the full network; the floor is the "
        "SW of the frozen starts themselves. Fokker-Planck: both densities on a 400 x 400 grid.",
    ]
    return "\n".join(out) + "\n"


def plot(rows, path) -> None:
    rows = [r for r in rows if "target_samples" in r]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    x = np.arange(len(rows))
    for i, who in enumerate(("target", "network")):
        axes[0].bar(x + 0.4 * i - 0.2, [r[f"{who}_samples"]["value"] for r in rows], 0.4,
                    yerr=[ddm.analysis.quantile95() * r[f"{who}_samples"]["stderr"] for r in rows],
                    label=who)  # fmt: skip
    axes[0].set_yscale("log")
    axes[0].set_xticks(x, [f"{r['system']}-{r['n']}" for r in rows])
    axes[0].set_title("entropy production rate (samples)")
    axes[0].legend()
    for r in rows:
        axes[1].semilogy(np.arange(1, len(r["explained"]) + 1), r["explained"], "o-",
                         label=f"{r['system']}-{r['n']}")  # fmt: skip
    axes[1].set(xlabel="principal component", ylabel="explained variance ratio")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--split-only", action="store_true",
                        help="retrain and redo only the reversible split of these systems, "
                        "keeping every other number of results/analysis.json")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="keep the rows of the systems not rerun")  # fmt: skip
    args = parser.parse_args()
    old = json.loads((RESULTS / f"{result_name('analysis')}.json").read_text())
    rows = old["rows"] if args.split_only else []
    if args.keep:  # the systems not rerun keep their rows
        rows = [r for r in old["rows"] if r["system"] not in args.systems]
    for system in args.systems:
        if args.split_only and system not in SPLIT_SYSTEMS:
            continue
        target, n = ddm.make_target(system), SIZES[system]
        k_fit, k_eval, k_err, k_split = jr.split(jr.key(SEEDS[system]), 4)
        start = time.perf_counter()
        model = ddm.fit(target, n, key=k_fit).model
        jax.block_until_ready(model)
        row = {"system": system, "n": n, "train_s": time.perf_counter() - start}
        pts = ddm.attractor_points(target, key=k_err, num=4096)
        row["drift_error"] = float(ddm.drift_error(model, target, pts))
        if system in EPR_SYSTEMS and not args.split_only:
            row |= epr_row(system, target, model, k_eval)
        if system in SPLIT_SYSTEMS:
            row["split"] = split_row(system, target, model, k_split)
        if args.split_only:
            kept = next((r for r in rows if r["system"] == system), None)
            if kept is None:
                rows.append(row)
            else:
                kept["split"] = row["split"]
        else:
            rows.append(row)
        print({k: v for k, v in row.items() if k != "split"}, row.get("split"), flush=True)
    write_results("analysis", {**stamp(), "rows": rows}, markdown(rows), lambda p: plot(rows, p))


if __name__ == "__main__":
    main()
