"""Run every benchmark (quick CPU versions, or ``--full``) and collect their tables.

    python benchmarks/run_all.py [--full | --collect]

Writes results/*.{json,md,png} and results/README.md (each table under its question);
``--collect`` only rebuilds results/README.md from the tables already there.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["throughput", "training", "fidelity", "compare_torchsde"]


def collect() -> None:
    sections = ["# Benchmark results", ""]
    for name in SCRIPTS:
        question = (HERE / f"{name}.py").read_text().split('"""')[1].splitlines()[0]
        table = (HERE / "results" / f"{name}.md").read_text()
        sections += [f"## {name}: {question}", "", table]
        if (HERE / "results" / f"{name}.png").exists():
            sections += [f"![{name}]({name}.png)", ""]
    (HERE / "results" / "README.md").write_text("\n".join(sections))


def main() -> None:
    full = "--full" in sys.argv[1:]
    if "--collect" not in sys.argv[1:]:
        for name in SCRIPTS:
            args = [sys.executable, str(HERE / f"{name}.py")]
            if full and name == "fidelity":
                args += ["--seeds", "3"]
            elif full and name in ("throughput", "training"):
                args.append("--full")
            print(f"== {name}", flush=True)
            subprocess.run(args, check=True)
    collect()


if __name__ == "__main__":
    main()
