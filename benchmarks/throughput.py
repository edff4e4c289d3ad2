"""How fast does ddm-jax simulate full networks, against a hand-written scan and a dense W?

Side by side in one run, on the default JAX device (CPU or GPU, unchanged), float32,
Euler-Maruyama, k = 3, dt = 1e-3, the same random Lorenz network, step count and dtype on
every path:
  default      `ddm.simulate_network(method="scan")`: diffrax `Euler.step` driven by `lax.scan`,
               increments drawn in blocks of 1024 steps (the library's default path);
  diffeqsolve  `ddm.simulate_network(method="diffeqsolve")`, same increments;
  fused        the anchor: the loop a speed-minded user writes by hand, `x += dt (b - x) +
               sum_j Gamma[:, j] c_j` with `c = dt W_s tanh(x) + Ghat dW` as k multiply-adds,
               Brownian increments drawn 1,000 steps at a time, nothing saved;
  scan         a naive hand-written `lax.scan` Euler-Maruyama loop, noise drawn per step;
  dense        the same hand-written loop with the n x n matrix W = Gamma W_s, run for fewer
               steps (at most 2e10 multiply-adds, at least 100 steps) and compared per step.
Only the initial and final states are saved. Throughput is neuron-steps per second
(n x B x steps / time); times are the minimum (and median) of repeats of a blocking call after
one warm-up call; compile time (first call minus the minimum) is reported apart. Each problem
runs for about 0.2 s or more. Writes results/throughput.{json,md,png}, again after each
ensemble size, so that a run cut short keeps the rows it finished.

    python benchmarks/throughput.py [--full] [--work W] [--max-steps S]

`--work` is the neuron-steps of one problem (n x B x steps) and `--max-steps` caps its step
count. On a GPU the small problems are bound by the time of one step, not by the work, so a
GPU run uses more work and fewer steps (`--full --work 2e10 --max-steps 5000`) to finish the
grid in minutes.
"""

import argparse
import functools
import resource
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import plt, stamp, write_results

import ddm_jax as ddm
from ddm_jax.simulation._integrate import _shards
from ddm_jax.simulation._network_sde import fused_update

DT = 1e-3
PATHS = ("default", "diffeqsolve", "fused", "scan", "dense")
FUSED_BLOCK = 1000


def baseline(dense: bool):
    """Hand-written Euler-Maruyama of the full network, vmapped over the ensemble."""

    def simulate(model, x0s, key, steps):
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

    return jax.jit(simulate, static_argnames="steps")


def fused_kernel():
    """The hand-written fused Euler-Maruyama kernel: k multiply-adds, blocked increments."""

    def simulate(model, x0s, key, steps):
        columns, k = model.Gamma.T, model.k

        def block(x, key, length):
            dws = jnp.sqrt(DT) * jr.normal(key, (length, model.m))

            def step(x, dw):
                c = DT * (model.W_s @ jnp.tanh(x)) + model.noise_const @ dw
                inc = DT * (model.b - x)
                for j in range(k):
                    inc = inc + columns[j] * c[j]
                return x + inc / model.tau, None

            return jax.lax.scan(step, x, dws)[0]

        def one(x0, key):
            full, rest = divmod(steps, FUSED_BLOCK)
            x = jax.lax.fori_loop(
                0, full, lambda j, x: block(x, jr.fold_in(key, j), FUSED_BLOCK), x0
            )
            return block(x, jr.fold_in(key, full), rest) if rest else x

        return jax.vmap(one)(x0s, jr.split(key, x0s.shape[0]))

    return jax.jit(simulate, static_argnames="steps")


def call_cost(n: int = 1024, steps: int = 10, repeats: int = 200) -> dict:
    """Median wall time of one short call (``steps`` steps, B = 1): the fixed cost per call."""
    target = ddm.make_target("lorenz")
    model = ddm.init_network(target, n, key=jr.key(n))
    fused = fused_kernel()
    x0s = model.embed(target.z0)[None]
    calls = {
        "default": lambda: ddm.simulate_network(model, target.z0, key=jr.key(1),
                                                t1=steps * DT, dt=DT, check=False).zs,
        "fused": lambda: fused(model, x0s, jr.key(1), steps=steps),
    }  # fmt: skip
    out = {"n": n, "steps": steps}
    for name, fn in calls.items():
        jax.block_until_ready(fn())
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times.append(time.perf_counter() - start)
        out[f"{name}_ms"] = 1e3 * float(np.median(times))
    return out


def timed(fns: dict, repeats: int, budget: float = 10.0) -> dict[str, tuple[float, float, float]]:
    """(first call, min, median) wall time of each ``fn()`` in seconds, blocking on the result.

    After the first call of each (compile + run), rounds of one timed call of every ``fn`` in
    turn, so that all paths see the same machine (a path timed alone for seconds can see
    another load, cache or clock than the next); ``repeats`` rounds, fewer (at least one)
    when they would take more than ``budget`` seconds together.
    """
    first, times = {}, {name: [] for name in fns}

    def call(fn):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - start

    for name, fn in fns.items():
        first[name] = call(fn)
    for rounds in range(1, repeats + 1):
        for name, fn in fns.items():
            times[name].append(call(fn))
        if sum(map(sum, times.values())) * (rounds + 1) / rounds > budget:
            break  # the next round would pass the budget
    return {name: (first[name], min(t), float(np.median(t))) for name, t in times.items()}


def measure(
    n: int, batch: int, work: float, repeats: int, dense_limit: float, max_steps: int = 1_000_000
) -> list[dict]:
    target = ddm.make_target("lorenz")
    model = ddm.init_network(target, n, key=jr.key(n))
    steps = int(np.clip(work / (n * batch), 100, max_steps))
    z0s = jnp.tile(target.z0, (batch, 1))
    x0s = jax.vmap(model.embed)(z0s)
    key = jr.key(1)
    sim = dict(key=key, t1=steps * DT, dt=DT, save_dt=steps * DT, check=False)
    low_rank, dense, fused = baseline(dense=False), baseline(dense=True), fused_kernel()
    paths = {
        "default": lambda: ddm.simulate_network(model, z0s, **sim).zs,
        "diffeqsolve": lambda: ddm.simulate_network(model, z0s, method="diffeqsolve", **sim).zs,
        "fused": lambda: fused(model, x0s, key, steps=steps),
        "scan": lambda: low_rank(model, x0s, key, steps=steps),
    }
    # the dense path does n^2 B multiply-adds a step: fewer steps, at most dense_limit of them
    dense_steps = int(min(steps, dense_limit // (n * n * batch)))
    if dense_steps >= 100:
        paths["dense"] = lambda: dense(model, x0s, key, steps=dense_steps)
    rows = []
    form = "fused" if fused_update(model, batch // _shards(batch)) else "product"
    # the anchor and the default path interleaved and timed more often: their ratio is the
    # acceptance number; the other paths are context
    anchor = {path: paths.pop(path) for path in ("default", "fused")}
    timings = timed(anchor, 2 * repeats, budget=15.0) | timed(paths, repeats)
    for path, (first, best, median) in timings.items():
        path_steps = dense_steps if path == "dense" else steps
        rows.append({
            "n": n, "batch": batch, "steps": path_steps, "path": path, "time_s": best,
            "median_s": median, "compile_s": max(first - best, 0.0),
            "step_s": best / path_steps, "neuron_steps_per_s": n * batch * path_steps / best,
            "update": form if path in ("default", "diffeqsolve") else None,
        })  # fmt: skip
    base = next(r["step_s"] for r in rows if r["path"] == "scan")
    anchor = next(r["step_s"] for r in rows if r["path"] == "fused")
    for r in rows:
        r["ratio_to_scan"] = r["step_s"] / base
        r["ratio_to_fused"] = r["step_s"] / anchor
    return rows


def exponent(rows: list[dict], axis: str, fixed: str, path: str = "default") -> dict:
    """Least-squares slope of log(time per step) against log(axis), per value of ``fixed``.

    Only problems above the dispatch-bound regime (n B >= 64 x 256) enter the fit.
    """
    out = {}
    for value in sorted({r[fixed] for r in rows}):
        sel = [r for r in rows if r[fixed] == value and r["path"] == path]
        sel = [r for r in sel if r[axis] * r[fixed] >= 64 * 256]
        if len({r[axis] for r in sel}) >= 2:
            x = np.log([r[axis] for r in sel])
            y = np.log([r["time_s"] / r["steps"] for r in sel])
            out[str(value)] = float(np.polyfit(x, y, 1)[0])
    return out


def summary(rows: list[dict]) -> dict:
    """The issue's acceptance numbers: ratios to the baseline, dense speed-up, exponents."""

    def worst_ratio(path, batches):
        sel = [
            r["ratio_to_scan"]
            for r in rows
            if r["path"] == path and r["n"] <= 1024 and batches(r["batch"])
        ]
        return max(sel) if sel else None

    times = {(r["n"], r["batch"], r["path"]): r["step_s"] for r in rows}
    dense_speedup = {
        str(b): {
            "dense_over_default": t / times[(n, b, "default")],
            "dense_over_scan": t / times[(n, b, "scan")],
        }
        for (n, b, path), t in times.items()
        if path == "dense" and n == 1024
    }
    over_fused = [r for r in rows if r["path"] == "default"]
    worst = max(over_fused, key=lambda r: r["ratio_to_fused"])
    return {
        "default_over_fused_worst": worst["ratio_to_fused"],
        "default_over_fused_worst_cell": f"n = {worst['n']}, B = {worst['batch']}",
        "default_over_scan_worst_B1": worst_ratio("default", lambda b: b == 1),
        "default_over_scan_worst_B64up": worst_ratio("default", lambda b: b >= 64),
        "diffeqsolve_over_scan_worst": worst_ratio("diffeqsolve", lambda b: True),
        "dense_speedup_n1024": dense_speedup,
        "exponent_n": exponent(rows, "n", "batch"),
        "exponent_batch": exponent(rows, "batch", "n"),
    }


def markdown(rows: list[dict], summ: dict) -> str:
    fmt = lambda d: ", ".join(f"{k}: {v:.2f}" for k, v in d.items()) or "too few sizes"
    num = lambda x: "n/a" if x is None else f"{x:.2f}"
    dense = "; ".join(
        f"B = {b}: {d['dense_over_default']:.1f}x the default path, {d['dense_over_scan']:.1f}x "
        "the scan baseline"
        for b, d in summ["dense_speedup_n1024"].items()
    )
    call = summ["call_10_steps"]
    lines = [
        "Time of the default path over the hand-written fused kernel (the anchor, target <= 1.1"
        f" everywhere): worst {summ['default_over_fused_worst']:.2f} at "
        f"{summ['default_over_fused_worst_cell']}. One call of {call['steps']} steps at "
        f"n = {call['n']}, B = 1 (the fixed cost per call, target < 1 ms): default path "
        f"{call['default_ms']:.2f} ms, fused kernel {call['fused_ms']:.2f} ms.",
        "",
        "Time of the default path over the naive hand-written scan (worst case, n <= 1024): "
        f"{num(summ['default_over_scan_worst_B1'])} at B = 1 (target < 2), "
        f"{num(summ['default_over_scan_worst_B64up'])} at B >= 64 (target < 1.25); "
        f"`diffeqsolve` {num(summ['diffeqsolve_over_scan_worst'])}.",
        "",
        f"Dense n x n network over low-rank at n = 1024 (target >= 20x): {dense or 'not run'}.",
        "",
        "Fitted exponents of time per step (default path, n B >= 64 x 256): in n at fixed B "
        f"({fmt(summ['exponent_n'])}); in B at fixed n ({fmt(summ['exponent_batch'])}). "
        f"Peak process memory {summ['peak_rss_mb']:.0f} MB, largest case {summ['largest']} "
        "(only the saved states are kept).",
        "",
        f"Each problem is {summ['work']:.0e} neuron-steps (n x B x steps), 100 to "
        f"{summ['max_steps']:,} steps.",
        "",
        "The update column is the form of the network update the default path ran for that "
        "shape (`fused_update`; measured per machine when DDM_JAX_UPDATE=measure).",
        "",
        "| n | B | steps | path | update | min (s) | median (s) | compile (s) "
        "| M neuron-steps/s | time / fused | time / scan |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['batch']} | {r['steps']} | {r['path']} | {r['update'] or ''} "
            f"| {r['time_s']:.3f} "
            f"| {r['median_s']:.3f} | {r['compile_s']:.2f} "
            f"| {r['neuron_steps_per_s'] / 1e6:.0f} | {r['ratio_to_fused']:.2f} "
            f"| {r['ratio_to_scan']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(
        2, len(batches), figsize=(3.6 * len(batches), 6), squeeze=False, sharex=True
    )
    for col, batch in enumerate(batches):
        top, bottom = axes[0][col], axes[1][col]
        for name in PATHS:
            sel = [r for r in rows if r["batch"] == batch and r["path"] == name]
            if sel:
                ns = [r["n"] for r in sel]
                top.loglog(ns, [r["neuron_steps_per_s"] for r in sel], "o-", label=name)
                bottom.semilogx(ns, [r["ratio_to_fused"] for r in sel], "o-", label=name)
        top.set(ylabel="neuron-steps / s", title=f"ensemble B = {batch}")
        bottom.axhline(1.0, color="grey", lw=0.8, ls="--")
        bottom.axhline(1.1, color="red", lw=0.8, ls=":")  # the target for the default path
        bottom.set(xlabel="neurons n", ylabel="time / hand-written fused kernel", yscale="log")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the whole n x B grid")
    parser.add_argument("--work", type=float, help="neuron-steps per problem (2e9 full, 2e8 quick)")
    parser.add_argument("--max-steps", type=int, default=1_000_000, help="most steps per problem")
    args = parser.parse_args()
    if args.full:
        ns, batches, work = [64, 128, 256, 512, 1024, 4096], [1, 64, 1024, 4096], 2e9
    else:  # B = 256 too, so both exponents have two sizes above the dispatch floor
        ns, batches, work = [64, 256, 1024], [1, 64, 256], 2e8
    work = args.work or work
    call = call_cost()
    print(f"one call of 10 steps at n = 1024: {call}", flush=True)
    rows = []
    for batch in batches:
        for n in ns:
            new = measure(n, batch, work, 3, dense_limit=2e10, max_steps=args.max_steps)
            for r in new:
                print(f"n={n:5d} B={batch:5d} {r['path']:12s} {r['time_s']:.3f} s "
                      f"{r['neuron_steps_per_s'] / 1e6:8.0f} M/s  x{r['ratio_to_fused']:.2f} "
                      f"of fused", flush=True)  # fmt: skip
            rows += new
        summ = summary(rows) | {"call_10_steps": call, "work": work, "max_steps": args.max_steps}
        largest = max(rows, key=lambda r: r["n"] * r["batch"])
        summ["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
        summ["largest"] = f"n = {largest['n']}, B = {largest['batch']}"
        write_results("throughput", {**stamp(), "summary": summ, "rows": rows},
                      markdown(rows, summ), functools.partial(plot, rows))  # fmt: skip


if __name__ == "__main__":
    main()
