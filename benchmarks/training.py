"""How fast does drift matching train: steps per second and time to 1% attractor drift error?

For vdp-64, lorenz-512 and dadras-1024 with the default `ddm.TrainConfig` (Adam, lr 1e-2
cosine-decayed over the run, batch 1024, mixture sampler) driven by `ddm.training.run_training`, on
the default JAX device (CPU or GPU, unchanged) in float32. The drift error is measured after
every chunk of 250 steps on 16,384 held-out `ddm.attractor_points`; time to 1% is where it
stays below 1% for the rest of the run. The training clock counts training only:
compilation (first chunk minus a steady chunk) and the sampling of the attractor pool are
reported apart, and the error checks are not counted. Writes results/training.{json,md,png}.

    python benchmarks/training.py [--full]     # quick: 10,000 steps; full: 20,000 (default)
"""

import argparse
import time

import jax
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
    start = time.perf_counter()
    pool = jax.block_until_ready(ddm.attractor_points(target, key=k_pool))
    pool_s = time.perf_counter() - start
    held = ddm.attractor_points(target, key=k_test, num=16384)
    state = ddm.training.init_train_state(ddm.init_network(target, n, key=k_init), config)
    chunks = []  # (step, wall seconds of the chunk, held-out attractor error)
    last = [time.perf_counter()]

    def on_chunk(state, losses):
        spent = time.perf_counter() - last[0]  # the losses are already on the host
        error = float(ddm.drift_error(state.model, target, held))
        chunks.append((int(state.step), spent, error))
        last[0] = time.perf_counter()  # the error check is not counted

    ddm.training.run_training(
        state, target, key=k_train, config=config, pool=pool, on_chunk=on_chunk
    )
    steps_done, spent, errors = (np.array(c) for c in zip(*chunks, strict=True))
    steady = float(np.median(spent[1:]))  # the first chunk also compiles
    compile_s = max(spent[0] - steady, 0.0)
    seconds = np.cumsum(spent) - compile_s
    rate = (steps_done[-1] - steps_done[0]) / (seconds[-1] - seconds[0])
    # the error oscillates while the learning rate is high: count from where it stays below 1%
    above = np.nonzero(errors > 0.01)[0]
    settled = 0 if not above.size else (above[-1] + 1 if above[-1] + 1 < errors.size else None)
    dips = np.nonzero(errors <= 0.01)[0]
    return {
        "system": system, "n": n, "steps": steps, "steps_per_s": float(rate),
        "compile_s": compile_s, "pool_s": pool_s, "train_s": float(seconds[-1]),
        "final_error": float(errors[-1]),
        "steps_to_1pct": None if settled is None else int(steps_done[settled]),
        "seconds_to_1pct": None if settled is None else float(seconds[settled]),
        "seconds_first_below_1pct": float(seconds[dips[0]]) if dips.size else None,
        "curve": np.column_stack([steps_done, seconds, errors]).tolist(),  # step, s, error
    }  # fmt: skip


def markdown(rows: list[dict]) -> str:
    lines = [
        "| system | n | steps | steps/s | compile (s) | attractor pool (s) | time to 1% (s) "
        "| steps to 1% | first dip below 1% (s) | training (s) | final attractor error |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sec = lambda x: "not reached" if x is None else f"{x:.1f}"
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['n']} | {r['steps']} | {r['steps_per_s']:.0f} "
            f"| {r['compile_s']:.1f} | {r['pool_s']:.1f} | {sec(r['seconds_to_1pct'])} "
            f"| {r['steps_to_1pct']} | {sec(r['seconds_first_below_1pct'])} "
            f"| {r['train_s']:.1f} | {100 * r['final_error']:.2f}% |"
        )
    lines += [
        "",
        "Time to 1%: training time after which every later check stays below 1% (the error "
        "oscillates while the learning rate is high); compilation not included.",
    ]
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
        to1 = "never" if r["seconds_to_1pct"] is None else f"{r['seconds_to_1pct']:.1f} s"
        final = 100 * r["final_error"]
        print(f"{system}-{r['n']}: {r['steps_per_s']:.0f} steps/s, 1% at {to1}, final {final:.2f}%")
    write_results("training", {**stamp(), "rows": rows}, markdown(rows), lambda p: plot(rows, p))


if __name__ == "__main__":
    main()
