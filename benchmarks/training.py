"""How fast does drift matching train: steps per second and time to 1% attractor drift error?

For vdp-64, lorenz-512 and dadras-1024 with the default `ddm.TrainConfig` (Adam, lr 1e-2
cosine-decayed, batch 1024, mixture sampler), on the default JAX device in float32. The clock
counts training only: compilation (the first chunk) is reported apart, and the held-out error
checks between chunks are not counted. Writes results/training.{json,md,png}.

    python benchmarks/training.py [--full]     # quick: 10,000 steps; full: 20,000
"""

import argparse
import time

import jax.random as jr
import numpy as np
from _results import plt, stamp, write_results

import ddm_jax as ddm

SIZES = {"vdp": 64, "lorenz": 512, "dadras": 1024}


def run(system: str, steps: int) -> dict:
    target = ddm.make_target(system)
    n = SIZES[system]
    config = ddm.TrainConfig(steps=steps)
    k_init, k_pool, k_train, k_test = jr.split(jr.key(0), 4)
    pool = ddm.attractor_points(target, key=k_pool)
    held = ddm.attractor_points(target, key=k_test, num=16384)
    state = ddm.init_train_state(ddm.init_network(target, n, key=k_init), config)
    clock = {"train": 0.0, "last": time.perf_counter(), "compile": None}
    curve = []

    def on_chunk(state, losses):
        now = time.perf_counter()
        spent = now - clock["last"]
        if clock["compile"] is None:  # the first chunk includes compilation
            clock["compile"] = spent
        clock["train"] += spent
        error = float(ddm.drift_error(state.model, target, held))
        curve.append((int(state.step), clock["train"], error))
        clock["last"] = time.perf_counter()

    ddm.run_training(state, target, key=k_train, config=config, pool=pool, on_chunk=on_chunk)
    steps_done = np.array([c[0] for c in curve])
    seconds = np.array([c[1] for c in curve])
    errors = np.array([c[2] for c in curve])
    # steady rate: chunks after the first (which compiles)
    rate = (steps_done[-1] - steps_done[0]) / (seconds[-1] - seconds[0])
    reached = np.nonzero(errors <= 0.01)[0]
    return {
        "system": system, "n": n, "steps": steps, "steps_per_s": float(rate),
        "first_chunk_s": clock["compile"], "train_s": float(seconds[-1]),
        "final_error": float(errors[-1]),
        "steps_to_1pct": int(steps_done[reached[0]]) if reached.size else None,
        "seconds_to_1pct": float(seconds[reached[0]]) if reached.size else None,
        "curve": curve,
    }  # fmt: skip


def markdown(rows: list[dict]) -> str:
    lines = [
        "| system | n | steps | steps/s | first chunk incl. compile (s) | time to 1% (s) "
        "| steps to 1% | total (s) | final attractor error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        to1 = "not reached" if r["seconds_to_1pct"] is None else f"{r['seconds_to_1pct']:.1f}"
        lines.append(
            f"| {r['system']} | {r['n']} | {r['steps']} | {r['steps_per_s']:.0f} "
            f"| {r['first_chunk_s']:.1f} | {to1} | {r['steps_to_1pct']} | {r['train_s']:.1f} "
            f"| {100 * r['final_error']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for r in rows:
        curve = np.array(r["curve"])
        ax.semilogy(curve[:, 1], 100 * curve[:, 2], label=f"{r['system']}-{r['n']}")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="training time (s)", ylabel="attractor drift error (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="20,000 steps (the default config)")
    args = parser.parse_args()
    steps = 20000 if args.full else 10000
    rows = []
    for system in SIZES:
        rows.append(run(system, steps))
        r = rows[-1]
        to1 = r["seconds_to_1pct"]
        final = 100 * r["final_error"]
        print(
            f"{system}-{r['n']}: {r['steps_per_s']:.0f} steps/s, 1% at {to1} s, final {final:.2f}%"
        )
    write_results("training", {**stamp(), "rows": rows}, markdown(rows), lambda p: plot(rows, p))


if __name__ == "__main__":
    main()
