"""How fast and how faithfully do the defaults embed vdp-64, lorenz-512 and dadras-1024?

For each system: wall time of `ddm.fit` (compilation included, attractor sampling included),
then `ddm.fidelity_report` (256 trajectories x 20 time units, burn-in 5, Euler-Maruyama
dt = 1e-3, null = median of 3 target-vs-target pairs). Runs on whatever device JAX picks
(CPU here); float32. Writes results/fidelity.{json,md,png}.

    python benchmarks/fidelity.py [--seeds 1] [--systems vdp lorenz dadras]
"""

import argparse
import time

import jax
import jax.random as jr
import numpy as np
from _results import plt, stamp, write_results

import ddm_jax as ddm

SIZES = {"vdp": 64, "lorenz": 512, "dadras": 1024}


def run(system: str, seed: int) -> dict:
    target = ddm.make_target(system)
    n = SIZES[system]
    start = time.perf_counter()
    result = ddm.fit(target, n, key=jr.key(seed))
    jax.block_until_ready(result.model)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    report = ddm.fidelity_report(result.model, target, key=jr.key(1000 + seed))
    eval_s = time.perf_counter() - start
    return {"system": system, "n": n, "seed": seed, "train_s": train_s, "eval_s": eval_s,
            **report.metrics}  # fmt: skip


def markdown(rows: list[dict]) -> str:
    pct = lambda x: f"{100 * x:.2f}%"
    lines = [
        "| system | n | seed | train (s) | drift err. box | drift err. attractor | residual (RMS) "
        "| SW / spread (null) | SW ratio | mean err. (null) | cov. err. (null) | "
        "Lyapunov net / target | VDP period net / target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lyap = (
            f"{r['lyapunov_network']:.3f} / {r['lyapunov_target']:.3f}"
            if "lyapunov_network" in r
            else ""
        )
        period = (
            f"{r['period_network']:.4f} / {r['period_target']:.4f}" if "period_network" in r else ""
        )
        lines.append(
            f"| {r['system']} | {r['n']} | {r['seed']} | {r['train_s']:.1f} "
            f"| {pct(r['drift_error_box'])} | {pct(r['drift_error_attractor'])} "
            f"| {r['residual']:.1e} | {pct(r['sw'])} ({pct(r['sw_null'])}) | {r['sw_ratio']:.2f} "
            f"| {pct(r['mean_error'])} ({pct(r['mean_error_null'])}) "
            f"| {pct(r['cov_error'])} ({pct(r['cov_error_null'])}) | {lyap} | {period} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    labels = [f"{r['system']}-{r['n']}\nseed {r['seed']}" for r in rows]
    x = np.arange(len(rows))
    for ax, (key, title) in zip(
        axes,
        [("sw", "sliced Wasserstein / spread"), ("mean_error", "mean error / spread"),
         ("cov_error", "covariance error")],
        strict=True,
    ):  # fmt: skip
        ax.bar(x - 0.2, [100 * r[key] for r in rows], 0.4, label="network vs target")
        ax.bar(x + 0.2, [100 * r[f"{key}_null"] for r in rows], 0.4, label="target vs target")
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("%")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--systems", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    rows = []
    for system in args.systems:
        for seed in range(args.seeds):
            rows.append(run(system, seed))
            r = rows[-1]
            print(
                f"{system}-{r['n']} seed {seed}: train {r['train_s']:.1f} s, attractor drift "
                f"error {100 * r['drift_error_attractor']:.2f}%, SW {100 * r['sw']:.2f}% "
                f"(null {100 * r['sw_null']:.2f}%), eval {r['eval_s']:.1f} s",
                flush=True,
            )
    write_results("fidelity", {**stamp(), "rows": rows}, markdown(rows), lambda p: plot(rows, p))


if __name__ == "__main__":
    main()
