"""Execute every notebook at full size and keep the executed copies with their wall times.

    python notebooks/execute.py [NAME ...]      (``make notebooks`` runs them all)

Each ``notebooks/NAME.ipynb`` runs top to bottom (``DDM_SMALL`` unset, on whatever device
JAX picks: the GPU where there is one) and is written with its outputs to
``docs/notebooks/NAME.ipynb``; ``docs/notebooks/README.md`` lists each with its device and
wall time. The notebooks in ``notebooks/`` stay without outputs.
"""

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
OUT = HERE.parent / "docs" / "notebooks"


def device() -> str:
    probe = "import jax; d = jax.devices()[0]; print(f'{d.platform}: {d.device_kind}')"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def main(names: list[str]) -> None:
    env_small = os.environ.pop("DDM_SMALL", None)
    if env_small is not None:
        print("DDM_SMALL is ignored here: notebooks run at full size", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    times_file = OUT / "times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    where = device()
    paths = [HERE / f"{n}.ipynb" for n in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=3600, kernel_name="python3").execute(cwd=str(HERE))
        wall = time.perf_counter() - start
        nbformat.write(nb, OUT / path.name)
        times[path.stem] = {"wall_s": round(wall, 1), "device": where, "date": str(date.today())}
        print(f"{path.name}: {wall:.0f} s on {where}")
        times_file.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    lines = ["# Executed notebooks", "", "Full size, written by `make notebooks`.", "",
             "| notebook | device | wall time | date |", "|---|---|---|---|"]  # fmt: skip
    for name, t in sorted(times.items()):
        lines.append(f"| [{name}]({name}.ipynb) | {t['device']} | {t['wall_s']:.0f} s | "
                     f"{t['date']} |")  # fmt: skip
    (OUT / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
