"""Do trained networks switch, recall and cycle between wells like their target SDEs?

On the default JAX device (CPU here), float32, Euler-Maruyama with dt = 0.005, networks of
n = 256 neurons trained by `ddm.fit` with its defaults. Two parts:
  one network  the full experiment set (`ddm.memory.memory_experiments`: switching against pulse
               amplitude, recall against cue strength, cycling) for a `wells` network and its
               target, timed end to end including training (the budget: 5 minutes);
  cycling      `ddm.memory.cycling` for `cycling_wells` (alpha 0, 1, 3) and `rotating_wells`
               (alpha 0.25, 0.5, 1), target and a network trained on each, 2,000
               trajectories x 200 time units each (FACTS.md: 0.50 / 0.61 / 0.73 and
               0.77 / 0.91 / 0.98 preferred-direction fractions).
Target and network use the same keys, hence the same Brownian increments per trajectory.
Writes results/memory.{json,md,png}.

    python benchmarks/memory.py [--quick]
"""

import argparse
import time

import jax.random as jr
import numpy as np
from _results import RESULTS, plt, result_name, stamp, write_results

import ddm_jax as ddm

N = 256
REFERENCE = {  # FACTS.md: preferred-direction fraction, hops relative to alpha = 0
    ("cycling_wells", 0.0): (0.50, 1.0), ("cycling_wells", 1.0): (0.61, 1.23),
    ("cycling_wells", 3.0): (0.73, 2.6), ("rotating_wells", 0.25): (0.77, 1.2),
    ("rotating_wells", 0.5): (0.91, 1.9), ("rotating_wells", 1.0): (0.98, 4.6),
}  # fmt: skip


def train(target, key):
    start = time.perf_counter()
    model = ddm.fit(target, N, key=key).model
    return model, time.perf_counter() - start


def one_network(args) -> dict:
    """Every experiment for one trained `wells` network, timed with its training."""
    target = ddm.make_target("wells")
    start = time.perf_counter()
    model, train_s = train(target, jr.key(0))
    out = ddm.memory.memory_experiments(target, model, key=jr.key(1), trials=args.trials,
                                 trajectories=args.trajectories, t1=args.time)  # fmt: skip
    out["seconds"] = {"train": train_s, "total": time.perf_counter() - start}
    box = ddm.simulation.sample_box(jr.key(2), target, 4096)
    out["drift_error"] = float(ddm.drift_error(model, target, box))
    for name in ("switching", "recall"):
        t, n = out[name]["target"], out[name]["network"]
        inside = [lo <= p <= hi for p, lo, hi in zip(n["probability"], t["low"], t["high"],
                                                      strict=True)]  # fmt: skip
        out[name]["network_inside_target_interval"] = inside
    return out


def cycling_rows(args) -> list[dict]:
    rows = []
    for name, alpha in REFERENCE:
        target = ddm.make_target(name, alpha=alpha)
        model, train_s = train(target, jr.key(10))
        row = {"system": name, "alpha": alpha, "train_s": train_s}
        for side, system in (("target", None), ("network", model)):
            start = time.perf_counter()
            result = ddm.memory.cycling(target, key=jr.key(11), model=system,
                                 trajectories=args.trajectories, t1=args.time)  # fmt: skip
            row[side] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                         for k, v in result._asdict().items()}  # fmt: skip
            row[f"{side}_s"] = time.perf_counter() - start
        t, n = row["target"], row["network"]
        row["reference_fraction"], row["reference_hops"] = REFERENCE[(name, alpha)]
        row["fraction_inside"] = t["fraction_low"] <= n["fraction"] <= t["fraction_high"]
        row["hop_rate_ratio"] = n["hop_rate"] / t["hop_rate"]
        row["occupancy_error"] = float(np.max(np.abs(np.subtract(n["occupancy"], t["boltzmann"]))))
        row["target_occupancy_error"] = float(
            np.max(np.abs(np.subtract(t["occupancy"], t["boltzmann"])))
        )
        rows.append(row)
        print(f"{name} alpha={alpha}: fraction {t['fraction']:.3f} / {n['fraction']:.3f}, hop rate "
              f"{t['hop_rate']:.4f} / {n['hop_rate']:.4f}", flush=True)  # fmt: skip
    base = next(r for r in rows if r["alpha"] == 0.0)  # -grad U, as in FACTS.md
    for r in rows:
        r["target_hops_relative"] = r["target"]["hop_rate"] / base["target"]["hop_rate"]
    return rows


def markdown(data: dict) -> str:
    one, rows = data["one_network"], data["cycling"]
    lines = [
        f"One `wells` network (n = {N}, drift error {one['drift_error']:.2%} in the box): all "
        f"experiments in {one['seconds']['total']:.0f} s including training "
        f"({one['seconds']['train']:.0f} s).",
        "",
    ]
    for name, label in (("switching", "pulse amplitude"), ("recall", "cue strength")):
        t, n = one[name]["target"], one[name]["network"]
        lines += [f"**{name}** ({t['trials']} trials a point; 95% Wilson intervals):", "",
                  f"| {label} | target | network | network inside target's interval |",
                  "|---|---|---|---|"]  # fmt: skip
        for i, x in enumerate(t["x"]):
            lines.append(
                f"| {x:g} | {t['probability'][i]:.3f} [{t['low'][i]:.3f}, {t['high'][i]:.3f}] "
                f"| {n['probability'][i]:.3f} [{n['low'][i]:.3f}, {n['high'][i]:.3f}] "
                f"| {'yes' if one[name]['network_inside_target_interval'][i] else 'no'} |"
            )
        lines.append("")
    lines += [
        "**cycling** (preferred-direction fraction of neighbour hops with its 95% interval; hop "
        "rate per trajectory and time unit; MFPT from one core to the next; occupancy error "
        "is the largest deviation from exp(-U/T) in percentage points; EPR in 1/time):",
        "",
        "| system | alpha | fraction target [95%] (FACTS) | fraction network | hops target "
        "(rel. to alpha 0; FACTS) | hop rate net / target | MFPT target / net | occupancy "
        "error target / net | EPR exact / target / network |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, n = r["target"], r["network"]
        exact = "-" if t["epr_exact"] is None else f"{t['epr_exact']:.3f}"
        lines.append(
            f"| {r['system']} | {r['alpha']:g} | {t['fraction']:.3f} [{t['fraction_low']:.3f}, "
            f"{t['fraction_high']:.3f}] ({r['reference_fraction']:.2f}) | {n['fraction']:.3f} "
            f"({'inside' if r['fraction_inside'] else 'outside'}) | {t['hop_rate']:.4f} "
            f"({r.get('target_hops_relative', float('nan')):.2f}; {r['reference_hops']:g}) "
            f"| {r['hop_rate_ratio']:.3f} | {t['mfpt']:.2f} / {n['mfpt']:.2f} "
            f"| {100 * r['target_occupancy_error']:.1f} / {100 * r['occupancy_error']:.1f} "
            f"| {exact} / {t['epr']:.3f} +- {t['epr_se']:.3f} / {n['epr']:.3f} +- "
            f"{n['epr_se']:.3f} |"
        )
    lines += ["", f"Cycling: {data['cycling_seconds']:.0f} s for all six alphas (training, "
              "target and network).", ""]  # fmt: skip
    return "\n".join(lines)


def plot(data: dict, path) -> None:
    one = data["one_network"]
    one = {
        **one,
        **{k: {s: one[k][s] for s in ("target", "network")} for k in ("switching", "recall")},
    }  # the curves, not their checks
    figs = [
        ddm.plotting.plot_curves(one["switching"], xlabel="pulse amplitude",
                        ylabel="P(end in the pulsed well)", title="switching, wells"),
        ddm.plotting.plot_curves(one["recall"], xlabel="cue strength",
                                 ylabel="P(end in the cued well)",
                        title="recall from a cue", chance=0.25),
    ]  # fmt: skip
    for name in ("cycling_wells", "rotating_wells"):
        figs.append(ddm.plotting.plot_cycling([r for r in data["cycling"] if r["system"] == name],
                                     title=name))  # fmt: skip
    names = ["switching", "recall", "cycling_wells", "rotating_wells"]
    for fig, name in zip(figs, names, strict=True):
        ddm.plotting.save_figure(fig, RESULTS / f"{result_name('memory')}-{name}.png")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = {  # inputs are latent drifts: units of z per unit time
        "switching": (
            "pulse amplitude (z per unit time, for 2 time units)",
            "P(end in the pulsed well)",
        ),
        "recall": ("cue strength (z per unit time)", "P(end in the cued well)"),
    }
    for ax, name in zip(axes, ("switching", "recall"), strict=True):
        for side, colour in (("target", "black"), ("network", "tab:orange")):
            c = one[name][side]
            ax.plot(c["x"], c["probability"], "o-", color=colour, label=side)
            ax.fill_between(c["x"], c["low"], c["high"], color=colour, alpha=0.15,
                            label=f"{side}, Wilson 95% interval")  # fmt: skip
        xlabel, ylabel = labels[name]
        ax.set(title=f"{name} ({one[name]['target']['trials']} trials a point)", ylim=(0, 1),
               xlabel=xlabel, ylabel=ylabel)  # fmt: skip
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 trajectories x 50 time units")
    args = parser.parse_args()
    args.trials = 200
    args.trajectories, args.time = (200, 50.0) if args.quick else (2000, 200.0)
    data = {**stamp(), "n": N, "trajectories": args.trajectories, "time": args.time}
    data["one_network"] = one_network(args)
    print(f"one network: {data['one_network']['seconds']}", flush=True)
    start = time.perf_counter()
    data["cycling"] = cycling_rows(args)
    data["cycling_seconds"] = time.perf_counter() - start
    write_results("memory", data, markdown(data), lambda p: plot(data, p))


if __name__ == "__main__":
    main()
