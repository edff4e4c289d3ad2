"""How fast and how well does drift matching train, by method: Adam, the closed form, both?

For vdp-64 and lorenz-512 (and dadras-1024 with --full) the drift-matching methods of
`ddm.TrainConfig` side by side: ``"adam"`` (today's default: Adam, lr 1e-2 cosine-decayed,
batch 1024, mixture sampler, driven by `ddm.training.run_training`), ``"lstsq"`` (the closed
form: data-anchored hidden layer, float64 ridge read-out, scale and ridge chosen on held-out
points) and ``"lstsq+adam"`` (Adam at lr 1e-3 from the closed form for a quarter of the steps,
then the ridge refit; once with the held-out ridge, once with the ridge fixed at 1e-6). Also
the closed form along its ridge path (the held-out scale, ridge fixed) - the front of drift
error against max |W_s| and the drift bias private neuron noise causes
(`ddm.network.private_noise_drift_bias`, sigma 0.01 and 0.1, 2,048 attractor points) - and,
at sigma 0.1, the drift error of the *noisy* network (`ddm.training.noisy_drift_error`) for
Adam and for the closed form solved without and with noise-aware features.

Errors are on 16,384 held-out `ddm.attractor_points`, in float32 networks, on the default JAX
device. Time to 1% / 0.1%: training time after which every later check stays below (Adam:
checked every 250 steps, compilation and checks not counted; the closed form: its wall time,
compilation included, when its error is below). The attractor pool is timed apart. Writes
results/training.{json,md,png}.

    python benchmarks/training.py [--full]     # quick: 10,000 Adam steps; full: 20,000 + dadras
    python benchmarks/training.py --systems dadras   # one system, merged into the stored results
"""

import argparse
import json
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import RESULTS, plt, result_name, stamp, write_results

import ddm_jax as ddm
from ddm_jax import training

SIZES = {"vdp": 64, "lorenz": 512, "dadras": 1024}
PATH_RIDGES = (1e-12, 1e-10, 1e-8, 1e-6, 1e-5, 1e-4)
SIGMAS = (0.01, 0.1)


def noise_bias(model, zs, sigma: float, chunk: int = 256) -> float:
    """`private_noise_drift_bias` at ``sigma`` over ``zs``, in chunks of points (memory)."""
    model = eqx.tree_at(lambda m: m.private_noise, model, jnp.asarray(sigma, model.W_s.dtype))
    bias2 = drift2 = 0.0
    for i in range(0, len(zs), chunk):
        part = zs[i : i + chunk]
        drift = float(jnp.mean(jnp.sum(jax.vmap(model.target_drift)(part) ** 2, -1)))
        rel = float(ddm.network.private_noise_drift_bias(model, part, key=jr.key(i)))
        bias2, drift2 = bias2 + rel**2 * drift, drift2 + drift
    return float(np.sqrt(bias2 / drift2))


def measures(model, target, held) -> dict:
    return {
        "final_error": float(ddm.drift_error(model, target, held)),
        "max_abs_W_s": float(jnp.max(jnp.abs(model.W_s))),
        **{f"bias_{s}": noise_bias(model, held[:2048], s) for s in SIGMAS},
    }


def settled(curve: np.ndarray, level: float):
    """(seconds, step) after which every check stays below ``level``, or None."""
    above = np.nonzero(curve[:, 2] > level)[0]
    first = 0 if not above.size else above[-1] + 1
    return None if first >= len(curve) else (float(curve[first, 1]), int(curve[first, 0]))


def adam_phase(model, target, pool, key, config, held, offset: float = 0.0):
    """Adam from ``model``: the final model and the curve (step, seconds, error)."""
    chunks, last = [], [time.perf_counter()]

    def on_chunk(state, losses):
        spent = time.perf_counter() - last[0]
        chunks.append((int(state.step), spent, float(ddm.drift_error(state.model, target, held))))
        last[0] = time.perf_counter()

    state, _ = training.run_training(
        training.init_train_state(model, config), target, key=key, config=config, pool=pool,
        on_chunk=on_chunk,
    )  # fmt: skip
    steps, spent, errors = (np.array(c) for c in zip(*chunks, strict=True))
    steady = float(np.median(spent[1:]))
    compile_s = max(spent[0] - steady, 0.0)
    seconds = offset + np.cumsum(spent) - compile_s
    rate = (steps[-1] - steps[0]) / max(seconds[-1] - seconds[0], 1e-9)
    return state.model, np.column_stack([steps, seconds, errors]), compile_s, float(rate)


def row(system, n, method, model, target, held, seconds, curve=None, **extra) -> dict:
    out = {"system": system, "n": n, "method": method, "train_s": float(seconds),
           **measures(model, target, held), **extra}  # fmt: skip
    if curve is None:  # one solve: reached when its error is below
        curve = np.array([[0, seconds, out["final_error"]]])
    for name, level in (("1pct", 0.01), ("01pct", 0.001)):
        hit = settled(curve, level)
        out[f"seconds_to_{name}"] = None if hit is None else hit[0]
    out["curve"] = curve.tolist()
    return out


def run(system: str, steps: int) -> list[dict]:
    target = ddm.make_target(system)
    n = SIZES[system]
    plan = training.fit_plan(jr.key(0), ddm.TrainConfig())
    start = time.perf_counter()
    pool = jax.block_until_ready(ddm.attractor_points(target, key=plan.pool_key))
    pool_s = time.perf_counter() - start
    held = ddm.attractor_points(target, key=jr.key(12345), num=16384)
    init = ddm.init_network(target, n, key=plan.init_key)
    rows = []

    def closed(config, model=init):
        t0 = time.perf_counter()
        model, info = training.closed_form(model, target, pool, key=plan.closed_form_key,
                                           config=config)  # fmt: skip
        return model, info, time.perf_counter() - t0

    # today's Adam
    config = ddm.TrainConfig(steps=steps)
    model, curve, compile_s, rate = adam_phase(init, target, pool, plan.drift_key, config, held)
    adam = row(system, n, "adam", model, target, held, curve[-1, 1], curve, steps=steps,
               steps_per_s=rate, compile_s=compile_s, pool_s=pool_s)  # fmt: skip
    adam["noisy_error_0.1"] = noisy_error(model, target, held, 0.1)
    rows.append(adam)
    # the closed form, scale and ridge chosen on held-out points
    lstsq = ddm.TrainConfig(method="lstsq")
    model, info, seconds = closed(lstsq)
    r = row(system, n, "lstsq", model, target, held, seconds, **info)
    r["noisy_error_0.1"] = noisy_error(model, target, held, 0.1)
    rows.append(r)
    scale = info["gamma_scale"]
    # its ridge path at that scale
    for ridge in PATH_RIDGES:
        model, info, seconds = closed(ddm.TrainConfig(method="lstsq", gamma_scale=scale,
                                                      ridge=ridge))  # fmt: skip
        rows.append(row(system, n, f"lstsq ridge {ridge:g}", model, target, held, seconds,
                        **info))  # fmt: skip
    # Adam from the closed form, then the ridge refit
    for ridge in (None, 1e-6):
        config = ddm.TrainConfig(method="lstsq+adam", steps=steps // 4, lr=1e-3, ridge=ridge)
        model, info, seconds = closed(config)
        model, curve, _, _ = adam_phase(model, target, pool, plan.drift_key, config, held,
                                        offset=seconds)  # fmt: skip
        t0 = time.perf_counter()
        model, refit = training.ridge_refit(model, target, pool, key=plan.refit_key,
                                            config=config)  # fmt: skip
        total = curve[-1, 1] + time.perf_counter() - t0
        curve = np.vstack([curve, [steps // 4, total,
                                   float(ddm.drift_error(model, target, held))]])  # fmt: skip
        label = "lstsq+adam" + ("" if ridge is None else f" ridge {ridge:g}")
        rows.append(row(system, n, label, model, target, held, total, curve,
                        **{**info, **refit}))  # fmt: skip
    # private noise sigma = 0.1: the closed form without and with noise-aware features
    noisy = ddm.init_network(target, n, key=plan.init_key, private_noise=0.1)
    for aware in (False, True):
        model, info, seconds = closed(ddm.TrainConfig(method="lstsq", noise_aware=aware), noisy)
        r = row(system, n, f"lstsq, sigma 0.1, noise-aware {aware}", model, target, held,
                seconds, **info)  # fmt: skip
        r["noisy_error_0.1"] = noisy_error(model, target, held, 0.1)
        rows.append(r)
    return rows


def noisy_error(model, target, held, sigma: float) -> float:
    model = eqx.tree_at(lambda m: m.private_noise, model, jnp.asarray(sigma, model.W_s.dtype))
    return training.noisy_drift_error(model, target, held[:4096])


def markdown(rows: list[dict]) -> str:
    pct = lambda x, d=3: "-" if x is None else f"{100 * x:.{d}f}%"
    sec = lambda x: "not reached" if x is None else f"{x:.1f}"
    lines = [
        "| system | method | time (s) | to 1% (s) | to 0.1% (s) | attractor error | max abs W_s "
        "| bias sigma 0.01 | bias sigma 0.1 | noisy-network error sigma 0.1 | scale, ridge |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        chosen = (f"{r['gamma_scale']:g}, {r.get('refit_ridge', r['ridge']):g}"
                  if "gamma_scale" in r else "-")  # fmt: skip
        lines.append(
            f"| {r['system']}-{r['n']} | {r['method']} | {r['train_s']:.1f} "
            f"| {sec(r['seconds_to_1pct'])} | {sec(r['seconds_to_01pct'])} "
            f"| {pct(r['final_error'], 4)} | {r['max_abs_W_s']:.2f} | {pct(r['bias_0.01'], 4)} "
            f"| {pct(r['bias_0.1'])} | {pct(r.get('noisy_error_0.1'), 4)} | {chosen} |"
        )
    lines += [
        "",
        "Bias: `private_noise_drift_bias` (the drift the private noise adds, relative to the "
        "drift) of the network given private noise sigma. Noisy-network error: the drift of the "
        "network *with* private noise 0.1 against the target (for the noise-aware rows the "
        "read-out was solved for that noise, so the bias column measures how far its noise-free "
        "drift is from the target, not an error). Adam times exclude compilation; closed-form "
        "times include it. The attractor pool is shared and timed apart.",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        path_rows = [r for r in mine if r["method"].startswith("lstsq ridge")]
        ax0.loglog(
            [100 * r["bias_0.1"] for r in path_rows],
            [100 * r["final_error"] for r in path_rows],
            "o-",
            label=f"{system} ridge path",
        )
        for r in mine:
            if r["method"] in ("adam", "lstsq", "lstsq+adam", "lstsq+adam ridge 1e-06"):
                ax0.loglog(100 * r["bias_0.1"], 100 * r["final_error"], "s", ms=5)
                ax0.annotate(f"{system} {r['method']}", (100 * r["bias_0.1"],
                             100 * r["final_error"]), fontsize=6)  # fmt: skip
            if r["method"] in ("adam", "lstsq+adam"):
                curve = np.array(r["curve"])
                ax1.semilogy(curve[:, 1], 100 * curve[:, 2], label=f"{system} {r['method']}")
            if r["method"] == "lstsq":
                ax1.semilogy(r["train_s"], 100 * r["final_error"], "*", ms=9,
                             label=f"{system} lstsq")  # fmt: skip
    ax0.set(xlabel="private-noise drift bias at sigma 0.1 (%)",
            ylabel="attractor drift error (%)")  # fmt: skip
    ax1.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax1.set(xlabel="training time (s)", ylabel="attractor drift error (%)")
    for ax in (ax0, ax1):
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="20,000 Adam steps and dadras-1024")
    parser.add_argument("--systems", nargs="*", default=None, help="a subset of the systems")
    args = parser.parse_args()
    steps = 20000 if args.full else 10000
    systems = args.systems or (list(SIZES) if args.full else ["vdp", "lorenz"])
    rows = []
    for system in systems:
        rows += run(system, steps)
        for r in rows:
            if r["system"] == system:
                print(f"{system}-{r['n']} {r['method']}: {r['train_s']:.1f} s, error "
                      f"{100 * r['final_error']:.4f}%, max|W_s| {r['max_abs_W_s']:.1f}, bias(0.1) "
                      f"{100 * r['bias_0.1']:.3f}%", flush=True)  # fmt: skip
    if args.systems:  # a subset: keep the other systems' rows of the stored results
        stored = RESULTS / f"{result_name('training')}.json"
        if stored.exists():
            kept = json.loads(stored.read_text()).get("rows", [])
            rows = [r for r in kept if r["system"] not in systems and "method" in r] + rows
    write_results("training", {**stamp(), "steps": steps, "rows": rows}, markdown(rows),
                  lambda p: plot(rows, p))  # fmt: skip


if __name__ == "__main__":
    main()
