"""Run every benchmark (quick CPU versions, or ``--full``) and collect their tables.

    python benchmarks/run_all.py [--full | --collect]

Writes results/*.{json,md,png} and results/README.md: a summary of the headline numbers,
then each table under its question, CPU and GPU results side by side where both exist (a
script run on a GPU writes NAME-gpu.*). ``--collect`` only rebuilds results/README.md from the
results already there.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SCRIPTS = ["throughput", "training", "fidelity", "compare_torchsde", "memory"]
PLATFORMS = {"": "CPU", "-gpu": "GPU"}


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary_lines(suffix: str) -> list[str]:
    """Headline numbers of one platform's results, each with the issue's target.

    The targets set for the CPU (ratios to the naive scan and the dense network, exponents)
    are marked as such on the GPU, where small problems are bound by the time of a step.
    """
    cpu = "target" if suffix == "" else "CPU target"
    lines = []
    if (t := load(f"throughput{suffix}")) and "summary" in t:
        s = t["summary"]
        big = max(t["rows"], key=lambda r: r["n"] * r["batch"] * (r["path"] == "default"))
        if "default_over_fused_worst" in s:
            call = s["call_10_steps"]
            lines.append(
                f"- Simulation, default path over the hand-written fused kernel (worst): "
                f"{s['default_over_fused_worst']:.2f} at {s['default_over_fused_worst_cell']} "
                f"(target <= 1.1); one call of 10 steps at n = {call['n']}: "
                f"{call['default_ms']:.2f} ms (target < 1; the kernel: {call['fused_ms']:.2f})."
            )
        lines.append(
            f"- Simulation, default path over the hand-written scan (worst, n <= 1024): "
            f"{s['default_over_scan_worst_B1']:.2f} at B = 1 ({cpu} < 2), "
            f"{s['default_over_scan_worst_B64up']:.2f} at B >= 64 ({cpu} < 1.25)."
        )
        for batch, d in sorted(s["dense_speedup_n1024"].items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"- Dense n x n over low-rank at n = 1024, B = {batch}: "
                f"{d['dense_over_default']:.1f}x ({cpu} >= 20x)."
            )
        lines.append(
            f"- Throughput at n = {big['n']}, B = {big['batch']}: "
            f"{big['neuron_steps_per_s'] / 1e9:.2f} x 10^9 neuron-steps/s (default path)."
        )
        goal = [r for r in t["rows"] if (r["n"], r["batch"], r["path"]) == (1024, 4096, "default")]
        if suffix and goal:  # the GPU goal of issue 10
            lines.append(
                f"- Throughput at n = 1024, B = 4096: {goal[0]['neuron_steps_per_s'] / 1e9:.0f} "
                "x 10^9 neuron-steps/s (default path; target >= 100 x 10^9)."
            )
        exps = list(s["exponent_n"].values()) + list(s["exponent_batch"].values())
        if exps:
            lines.append(
                f"- Fitted exponents of cost in n and B: {min(exps):.2f} to {max(exps):.2f} "
                f"({cpu} 0.85-1.15)."
            )
    if t := load(f"training{suffix}"):
        for r in t["rows"]:
            to1 = r.get("seconds_to_1pct")
            to1 = "not reached" if to1 is None else f"{to1:.1f} s"
            if r.get("method", "adam") == "adam":
                lines.append(
                    f"- Training {r['system']}-{r['n']}: {r['steps_per_s']:.0f} steps/s, 1% "
                    f"attractor drift error after {to1}."
                )
            elif r["method"] == "lstsq":
                lines.append(
                    f"- Closed form {r['system']}-{r['n']}: {100 * r['final_error']:.4f}% "
                    f"attractor drift error in {r['train_s']:.1f} s, "
                    f"max |W_s| {r['max_abs_W_s']:.0f}."
                )
    if (t := load(f"compare_torchsde{suffix}")) and "rows" in t:
        targets = {(1024, 1): 30, (1024, 64): 6, (64, 64): 10}
        for r in t["rows"]:
            goal = targets.get((r["n"], r["batch"]))
            goal = f" (target >= {goal}x)" if goal else ""
            lines.append(
                f"- Against torchsde at n = {r['n']}, B = {r['batch']}: {r['speedup']:.1f}x{goal}."
            )
    return lines


def collect() -> None:
    sections = ["# Benchmark results", ""]
    for suffix, platform in PLATFORMS.items():
        lines = summary_lines(suffix)
        if lines:
            sections += [f"## Summary, {platform}", "", *lines, ""]
        elif suffix:
            sections += [f"## {platform}", "", "No GPU results yet: run the scripts on one.", ""]
    for name in SCRIPTS:
        question = (HERE / f"{name}.py").read_text().split('"""')[1].splitlines()[0]
        sections += [f"## {name}: {question}", ""]
        for suffix, platform in PLATFORMS.items():
            table = RESULTS / f"{name}{suffix}.md"
            if table.exists():
                sections += [f"### {platform}", "", table.read_text()]
                if (RESULTS / f"{name}{suffix}.png").exists():
                    sections += [f"![{name} {platform}]({name}{suffix}.png)", ""]
    (RESULTS / "README.md").write_text("\n".join(sections))


def main() -> None:
    full = "--full" in sys.argv[1:]
    if "--collect" not in sys.argv[1:]:
        for name in SCRIPTS:
            args = [sys.executable, str(HERE / f"{name}.py")]
            if full and name == "fidelity":
                args += ["--seeds", "3"]
            elif full and name in ("throughput", "training"):
                args.append("--full")
            elif not full and name == "memory":
                args.append("--quick")
            print(f"== {name}", flush=True)
            subprocess.run(args, check=True)
    collect()


if __name__ == "__main__":
    main()
