"""Does the network's noise-free flow have the target's attractors, and does the remedy help?

For dadras-1024 (seeds given), vdp-64 and lorenz-512 (seed 0), all with the default
`ddm.TrainConfig` (20,000 steps, mixture sampler), on the default JAX device in float32: the
attractor census (`ddm.attractor_census`, 32 starts, RK4 dt 0.02, 50 + 10 + 300 time units)
of the network as trained, then `ddm.training.refine_attractors` with ``remedy_rounds`` rounds (the
same key and pool as ``ddm.fit(..., config=TrainConfig(remedy_rounds=...))``) and a census of
its result from other starts. Reported per network: share of starts in another class than the
target's, mean exponent over chaotic starts (network, target), orbit sliced Wasserstein over
the target's spread, attractor drift error, and the seconds of one census (compiled) and of
the remedy. Writes results/census.{json,md,png}.

    python benchmarks/census.py [--seeds 0 1 2 3 4] [--rounds 4] [--systems dadras vdp lorenz]
                                [--keep] [--name census]  # --keep: the rows not rerun stay
"""

import argparse
import json
import time
from dataclasses import replace

import jax.random as jr
import numpy as np
from _results import RESULTS, plt, result_name, stamp, write_results

import ddm_jax as ddm

SIZES = {"vdp": 64, "lorenz": 512, "dadras": 1024}


def census_row(census: ddm.Census) -> dict:
    m = census.metrics
    keys = ("census_mismatch", "census_lyapunov_network", "census_lyapunov_network_std",
            "census_lyapunov_target", "census_lyapunov_error", "census_sw",
            "census_sw_null")  # fmt: skip
    return {k.removeprefix("census_"): m[k] for k in keys} | {
        "exponents_network": np.asarray(census.network.exponent).tolist(),
        "exponents_target": np.asarray(census.target.exponent).tolist(),
    }


def run(system: str, seed: int, rounds: int) -> dict:
    target = ddm.make_target(system)
    config = ddm.TrainConfig()
    start = time.perf_counter()
    result = ddm.fit(target, SIZES[system], key=jr.key(seed), config=config)
    train_s = time.perf_counter() - start
    held = ddm.attractor_points(target, key=jr.key(1000 + seed), num=16384)
    k_census = jr.key(2000 + seed)  # starts independent of the remedy's own census
    before = ddm.attractor_census(result.model, target, key=k_census)  # compiles
    start = time.perf_counter()
    before = ddm.attractor_census(result.model, target, key=k_census)
    census_s = time.perf_counter() - start
    start = time.perf_counter()
    model, losses, history = ddm.training.refine_attractors(
        result.model, target, key=jr.fold_in(jr.key(seed), 1),  # as fit() with remedy_rounds
        config=replace(config, remedy_rounds=rounds), pool=result.pool,
    )  # fmt: skip
    remedy_s = time.perf_counter() - start
    after = ddm.attractor_census(model, target, key=k_census, reference=before)
    return {
        "system": system, "n": SIZES[system], "seed": seed, "train_s": train_s,
        "census_s": census_s, "remedy_s": remedy_s, "remedy_steps": int(losses.size),
        "rounds_run": len(history) - 1, "history": history,
        "drift_error_before": float(ddm.drift_error(result.model, target, held)),
        "drift_error_after": float(ddm.drift_error(model, target, held)),
        "before": census_row(before), "after": census_row(after),
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = [
        "| system | n | seed | when | other class | exponent network | exponent target "
        "| orbit SW / spread (null) | attractor drift error | census s | remedy s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for when in ("before", "after"):
            c = r[when]
            lines.append(
                f"| {r['system']} | {r['n']} | {r['seed']} | {when} "
                f"| {100 * c['mismatch']:.0f}% "
                f"| {c['lyapunov_network']:.3f} +- {c['lyapunov_network_std']:.3f} "
                f"| {c['lyapunov_target']:.3f} "
                f"| {100 * c['sw']:.1f}% ({100 * c['sw_null']:.1f}%) "
                f"| {100 * r[f'drift_error_{when}']:.3f}% "
                f"| {r['census_s']:.1f} | "
                + (f"{r['remedy_s']:.0f} ({r['rounds_run']} rounds) |" if when == "after" else "|")
            )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.2), squeeze=False)
    for ax, r in zip(axes[0], rows, strict=True):
        order = np.argsort(r["before"]["exponents_target"])
        ax.plot(np.asarray(r["before"]["exponents_target"])[order], "o", label="target", ms=3)
        ax.plot(np.asarray(r["before"]["exponents_network"])[order], "s", label="before", ms=3)
        ax.plot(np.asarray(r["after"]["exponents_network"])[order], "^", label="after", ms=3)
        ax.set_title(f"{r['system']}-{r['n']}, seed {r['seed']}", fontsize=9)
        ax.set_xlabel("start")
    axes[0][0].set_ylabel("largest Lyapunov exponent")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--systems", nargs="+", default=["dadras", "vdp", "lorenz"])
    parser.add_argument("--keep", action="store_true", help="keep the rows not rerun")
    parser.add_argument("--name", default="census", help="results/NAME.{json,md,png}")
    args = parser.parse_args()
    rows = []
    old = RESULTS / f"{result_name(args.name)}.json"
    if args.keep and old.exists():
        rows = json.loads(old.read_text())["rows"]
    for system in args.systems:
        for seed in args.seeds if system == "dadras" else [0]:
            rows = [r for r in rows if (r["system"], r["seed"]) != (system, seed)]
            rows.append(run(system, seed, args.rounds))
            print(table(rows[-1:]), flush=True)
            data = {**stamp(), "rounds": args.rounds, "rows": rows}
            write_results(args.name, data, table(rows), lambda path, rows=rows: plot(rows, path))


if __name__ == "__main__":
    main()
