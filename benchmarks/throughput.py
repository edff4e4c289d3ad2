"""How fast does ddm-jax simulate full networks, against a hand-written scan and a dense W?

Side by side in one run, on the default JAX device, float32, Euler-Maruyama, k = 3, the same
random Lorenz-sized network, step count and dtype on every path:
  default      `ddm.simulate_network(method="scan")`: diffrax `Euler.step` driven by `lax.scan`,
               increments drawn once per saved interval (the library's default path);
  diffeqsolve  `ddm.simulate_network(method="diffeqsolve")`, same increments;
  scan         a hand-written `lax.scan` Euler-Maruyama loop, noise drawn per step (baseline);
  dense        the same hand-written loop with the n x n matrix W = Gamma W_s.
Throughput is neuron-steps per second (n x B x steps / time); times are the minimum of
repeats after one warm-up call, compile time (first call minus steady time) is reported
apart. Writes results/throughput.{json,md,png}.

    python benchmarks/throughput.py [--full]
"""

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import plt, stamp, write_results

import ddm_jax as ddm

DT = 1e-3


def baseline(model, dense: bool):
    """Hand-written Euler-Maruyama of the full network, vmapped over the ensemble."""

    def simulate(x0s, key, steps):
        W = model.Gamma @ model.W_s if dense else None

        def one(x0, key):
            def step(x, i):
                rec = W @ jnp.tanh(x) if dense else model.Gamma @ (model.W_s @ jnp.tanh(x))
                dw = jnp.sqrt(DT) * jr.normal(jr.fold_in(key, i), (model.m,))
                noise = model.Gamma @ (model.noise_const @ dw)
                return x + (DT * (-x + rec + model.b) + noise) / model.tau, None

            x, _ = jax.lax.scan(step, x0, jnp.arange(steps))
            return x

        return jax.vmap(one)(x0s, jr.split(key, x0s.shape[0]))

    return jax.jit(simulate, static_argnums=2)


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(first call, min, median) wall time of ``fn()`` in seconds, blocking on the result."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, min(times), float(np.median(times))


def measure(n: int, batch: int, work: float, repeats: int, dense_limit: float) -> list[dict]:
    target = ddm.make_target("lorenz")
    model = ddm.init_network(target, n, key=jr.key(n))
    steps = int(np.clip(work / (n * batch), 100, 100_000))
    z0s = jnp.tile(target.z0, (batch, 1))
    x0s = jax.vmap(model.embed)(z0s)
    key = jr.key(1)
    sim = dict(key=key, t1=steps * DT, dt=DT, save_dt=steps * DT, check=False)
    low_rank, dense = baseline(model, dense=False), baseline(model, dense=True)
    paths = {
        "default": lambda: ddm.simulate_network(model, z0s, **sim).zs,
        "diffeqsolve": lambda: ddm.simulate_network(model, z0s, method="diffeqsolve", **sim).zs,
        "scan": lambda: low_rank(x0s, key, steps),
    }
    if n * n * batch * steps <= dense_limit:
        paths["dense"] = lambda: dense(x0s, key, steps)
    rows = []
    for path, fn in paths.items():
        first, best, median = timed(fn, repeats)
        rows.append({
            "n": n, "batch": batch, "steps": steps, "path": path, "time_s": best,
            "median_s": median, "compile_s": max(first - best, 0.0),
            "neuron_steps_per_s": n * batch * steps / best,
        })  # fmt: skip
    base = next(r["time_s"] for r in rows if r["path"] == "scan")
    for r in rows:
        r["ratio_to_scan"] = r["time_s"] / base
    return rows


def exponent(rows: list[dict], axis: str, fixed: str, path: str = "default") -> dict:
    """Least-squares slope of log(time per step) against log(axis), per value of ``fixed``."""
    out = {}
    for value in sorted({r[fixed] for r in rows}):
        sel = [r for r in rows if r[fixed] == value and r["path"] == path]
        sel = [r for r in sel if r[axis] * r[fixed] >= 64 * 256]  # above the dispatch floor
        if len({r[axis] for r in sel}) >= 2:
            x = np.log([r[axis] for r in sel])
            y = np.log([r["time_s"] / r["steps"] for r in sel])
            out[str(value)] = float(np.polyfit(x, y, 1)[0])
    return out


def markdown(rows: list[dict], exps: dict) -> str:
    lines = [
        "| n | B | steps | path | time (s) | compile (s) | M neuron-steps/s | time / scan |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['batch']} | {r['steps']} | {r['path']} | {r['time_s']:.3f} "
            f"| {r['compile_s']:.2f} | {r['neuron_steps_per_s'] / 1e6:.0f} "
            f"| {r['ratio_to_scan']:.2f} |"
        )
    lines.append("")
    fmt = lambda d: ", ".join(f"{k}: {v:.2f}" for k, v in d.items())
    lines.append(f"Fitted exponents of time per step (default path): in n at fixed B "
                 f"({fmt(exps['n'])}); in B at fixed n ({fmt(exps['batch'])}). Peak process "
                 f"memory {exps['peak_rss_mb']:.0f} MB, largest case {exps['largest']} (only "
                 "the saved states are kept).")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(4 * len(batches), 3.5), squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        for name in ("default", "diffeqsolve", "scan", "dense"):
            sel = [r for r in rows if r["batch"] == batch and r["path"] == name]
            if sel:
                ax.loglog([r["n"] for r in sel], [r["neuron_steps_per_s"] for r in sel], "o-",
                          label=name)  # fmt: skip
        ax.set(xlabel="neurons n", ylabel="neuron-steps / s", title=f"ensemble B = {batch}")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the whole n x B grid")
    args = parser.parse_args()
    if args.full:
        ns, batches, work = [64, 128, 256, 512, 1024, 4096], [1, 64, 1024, 4096], 2e9
    else:
        ns, batches, work = [64, 256, 1024], [1, 64, 256], 4e8
    rows = []
    for batch in batches:
        for n in ns:
            rows += measure(n, batch, work, repeats=3, dense_limit=4e11)
            for r in rows[-4:]:
                if r["n"] == n and r["batch"] == batch:
                    print(f"n={n:5d} B={batch:5d} {r['path']:12s} {r['time_s']:.3f} s "
                          f"{r['neuron_steps_per_s'] / 1e6:8.0f} M/s  x{r['ratio_to_scan']:.2f}",
                          flush=True)  # fmt: skip
    exps = {"n": exponent(rows, "n", "batch"), "batch": exponent(rows, "batch", "n")}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    largest = max(rows, key=lambda r: r["n"] * r["batch"])
    exps["peak_rss_mb"] = peak_mb
    exps["largest"] = f"n = {largest['n']}, B = {largest['batch']}"
    write_results("throughput", {**stamp(), "rows": rows, "exponents": exps},
                  markdown(rows, exps), lambda p: plot(rows, p))  # fmt: skip


if __name__ == "__main__":
    main()
