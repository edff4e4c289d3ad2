"""The documentation's benchmark pages, generated from ``benchmarks/results/*.json``.

    python benchmarks/pages.py OUT_DIR      (writes OUT_DIR/index.md, OUT_DIR/NAME.md, PNGs)

``mkdocs build`` runs this file as a hook (``hooks:`` in ``mkdocs.yml``): the pages are made
at every build and never stored, so they always show what the JSON files hold. Every table
is stamped with the commit it was measured on, the device, the library versions, the date
and the machine's load (when the run recorded them). Results written before the stamp held a
commit are dated by the commit that last wrote their JSON file. A result is marked **stale**
when the library (``ddm_jax/``) has changed in later commits, or when its version differs
from the package's.
"""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PREFIX = "benchmarks"  # where the pages sit in the site

# (key, header, format); a key "a.b" reads row["a"]["b"]. Formats: "%" per cent, "e" 1e-6
# style, "s" seconds, "g" a number, "" as is. Names not listed get every scalar column.
COLUMNS = {
    "fidelity": [
        ("system", "system", ""), ("n", "n", ""), ("seed", "seed", ""),
        ("train_s", "train (s)", "s"), ("drift_error_box", "drift err. box", "%"),
        ("drift_error_attractor", "drift err. attractor", "%"),
        ("residual", "off-subspace residual", "e"), ("sw", "SW / spread", "%"),
        ("sw_null", "SW null", "%"), ("mean_error", "mean err.", "%"),
        ("mean_error_null", "mean null", "%"), ("cov_error", "cov. err.", "%"),
        ("cov_error_null", "cov. null", "%"), ("period_network", "period net", "g"),
        ("period_target", "period target", "g"),
    ],
    "training": [
        ("system", "system", ""), ("n", "n", ""), ("steps", "steps", ""),
        ("steps_per_s", "steps/s", "g"), ("compile_s", "compile (s)", "s"),
        ("seconds_to_1pct", "time to 1% attractor error (s)", "s"),
        ("final_error", "final error", "%"),
    ],
    "census": [
        ("system", "system", ""), ("n", "n", ""), ("seed", "seed", ""),
        ("rounds_run", "remedy rounds", ""), ("before.mismatch", "other class, before", "%"),
        ("after.mismatch", "other class, after", "%"),
        ("before.lyapunov_network", "exponent net, before", "g"),
        ("after.lyapunov_network", "exponent net, after", "g"),
        ("after.lyapunov_target", "exponent target", "g"),
        ("before.sw", "orbit SW before", "%"), ("after.sw", "orbit SW after", "%"),
        ("after.sw_null", "orbit SW null", "%"),
        ("drift_error_before", "drift err. before", "%"),
        ("drift_error_after", "drift err. after", "%"),
    ],
    "from_data": [
        ("system", "system", ""), ("dt", "dt", "g"), ("trajectories", "trajectories", ""),
        ("time", "time", "g"), ("n", "n", ""), ("drift_plain", "drift err. plain", "%"),
        ("drift_corrected", "drift err. corrected", "%"), ("drift_sfi", "drift err. SFI", "%"),
        ("sfi_degree", "SFI degree", ""), ("D_plain", "D err. plain", "%"),
        ("D_corrected", "D err. corrected", "%"), ("D_sfi", "D err. SFI", "%"),
        ("net_vs_true_sw", "net vs true SW", "%"), ("net_vs_true_sw_null", "SW null", "%"),
        ("net_vs_true_mean_error", "mean err.", "%"),
    ],
    "recordings": [
        ("system", "system", ""), ("noise", "noise", "%"), ("correct_noise", "correction", ""),
        ("seconds", "fit (s)", "s"), ("drift_ddm", "drift err.", "%"), ("D_ddm", "D err.", "%"),
        ("r2_ddm", "R^2", "g"), ("r2_ceiling", "R^2 ceiling", "g"),
        ("d_stsp_ddm", "D_stsp", "g"), ("d_stsp_null", "D_stsp null", "g"),
        ("d_h_ddm", "D_H", "g"), ("d_h_null", "D_H null", "g"),
        ("period_ddm", "period", "g"), ("period_teacher", "period teacher", "g"),
        ("drift_lds", "LDS drift err.", "%"), ("D_lds", "LDS D err.", "%"),
        ("r2_lds", "LDS R^2", "g"), ("d_stsp_lds", "LDS D_stsp", "g"),
        ("d_h_lds", "LDS D_H", "g"), ("period_lds", "LDS period", "g"),
    ],
    "memory": [
        ("system", "system", ""), ("alpha", "alpha", "g"),
        ("target.fraction", "preferred fraction, target", "g"),
        ("network.fraction", "preferred fraction, network", "g"),
        ("fraction_inside", "network inside target's interval", ""),
        ("target.hop_rate", "hops / time, target", "g"),
        ("hop_rate_ratio", "hop rate net / target", "g"),
        ("occupancy_error", "occupancy err. net", "%"),
        ("target.epr_exact", "EPR exact", "g"), ("target.epr", "EPR target", "g"),
        ("network.epr", "EPR network", "g"),
    ],
    "analysis": [
        ("system", "system", ""), ("n", "n", ""), ("drift_error", "drift err.", "%"),
        ("phi_target.value", "EPR target", "g"), ("phi_network.value", "EPR network", "g"),
        ("split.sw_reversible_vs_network", "SW rev. vs network", "%"),
        ("split.sw_reversible_vs_target", "SW rev. vs target", "%"),
        ("split.epr_ratio", "EPR rev. / network", "g"),
    ],
    "compare_torchsde": [
        ("n", "n", ""), ("batch", "B", ""), ("steps", "steps", ""),
        ("ddm_jax_s", "ddm-jax (s)", "g"), ("torchsde_s", "torchsde (s)", "g"),
        ("speedup", "speed-up", "g"),
    ],
    "throughput": [
        ("n", "n", ""), ("batch", "B", ""), ("path", "path", ""), ("update", "update", ""),
        ("steps", "steps", ""), ("neuron_steps_per_s", "neuron-steps/s", "g"),
        ("ratio_to_fused", "time / fused anchor", "g"), ("ratio_to_scan", "time / naive scan", "g"),
    ],
    "zoo": [
        ("system", "flow", ""), ("n", "n", ""), ("dim", "k", ""), ("status", "status", ""),
        ("drift_error_attractor", "drift err. attractor", "%"),
        ("drift_error_box", "drift err. box", "%"), ("sw_ratio", "SW / null", "g"),
        ("lyapunov_target", "exponent target", "g"), ("lyapunov_network", "exponent net", "g"),
        ("lyapunov_dysts", "exponent dysts", "g"), ("train_s", "train (s)", "s"),
        ("reason", "reason", ""),
    ],
}  # fmt: skip
COLUMNS |= {  # a result with "parts": one table a part, its columns under "NAME/PART"
    "closed_form/census": [
        ("system", "system", ""), ("n", "n", ""), ("seed", "seed", ""), ("starts", "starts", ""),
        ("train_s", "train (s)", "s"), ("drift_error_attractor", "drift err. attractor", "%"),
        ("max_abs_W_s", "max abs W_s", "g"), ("mismatch", "other class", "%"),
        ("lyapunov_network", "exponent net", "g"), ("lyapunov_target", "exponent target", "g"),
        ("lyapunov_error", "exponent err.", "%"), ("sw", "orbit SW", "%"),
        ("sw_null", "orbit SW null", "%"), ("clean", "clean", ""),
    ],
    "closed_form/statistics": [
        ("system", "system", ""), ("n", "n", ""), ("method", "method", ""),
        ("report_key", "report key", ""),
        ("train_s", "train (s)", "s"), ("census", "census", ""),
        ("drift_error_attractor", "drift err. attractor", "%"), ("sw", "SW / spread", "%"),
        ("sw_null", "SW null", "%"), ("mean_error", "mean err.", "%"),
        ("mean_error_null", "mean null", "%"), ("cov_error", "cov. err.", "%"),
        ("cov_error_null", "cov. null", "%"), ("lyapunov_network", "exponent net", "g"),
        ("lyapunov_target", "exponent target", "g"), ("period_network", "period net", "g"),
        ("period_target", "period target", "g"),
    ],
    "closed_form/paths": [
        ("path", "path", ""), ("target", "target", ""), ("n", "n", ""), ("method", "method", ""),
        ("train_s", "time (s)", "s"), ("drift_error_attractor", "drift err. attractor", "%"),
        ("drift_error_cycle", "drift err. cycle", "%"),
        ("diffusion_error_attractor", "diffusion err. attractor", "%"),
        ("diffusion_error_cycle", "diffusion err. cycle", "%"),
        ("max_abs_W_s", "max abs W_s", "g"), ("census", "census", ""),
    ],
    "closed_form/scaling": [
        ("n", "n", ""), ("points", "fit points", ""), ("closed_form_s", "closed form (s)", "s"),
        ("drift_error_attractor", "drift err. attractor", "%"),
        ("max_abs_W_s", "max abs W_s", "g"), ("peak_rss_mb", "peak RSS (MB)", "g"),
    ],
    "closed_form/cli": [
        ("system", "system", ""), ("n", "n", ""), ("method", "method", ""),
        ("repeat", "run", ""), ("wall_s", "wall (s)", "s"), ("train_s", "train_seconds", "s"),
        ("drift_error_monitor", "monitor drift err.", "%"),
    ],
}  # fmt: skip
COLUMNS["census-dadras"] = COLUMNS["census"]
COLUMNS["recordings-lorenz"] = COLUMNS["recordings"]
SCRIPT = {"census-dadras": "census", "recordings-lorenz": "recordings"}  # result -> script


def git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def package_version() -> str | None:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    return match.group(1) if match else None


def provenance(name: str, data: dict) -> dict:
    """Commit, how it was found, and whether the library changed since."""
    commit = data.get("commit")
    source = "recorded by the run"
    if not commit:
        commit = git("log", "-1", "--format=%h", "--", f"benchmarks/results/{name}.json")
        source = "the last commit to write the results file; the run recorded none"
    dirty = bool(commit) and commit.endswith("+dirty")
    base = commit.removesuffix("+dirty") if commit else None
    changes = None
    if base:
        count = git("rev-list", "--count", f"{base}..HEAD", "--", "ddm_jax")
        changes = int(count) if count is not None else None
    version = package_version()
    stale = []
    if changes:
        stale.append(f"the library (`ddm_jax/`) has changed in {changes} commit(s) since")
    if version and data.get("ddm_jax") and data["ddm_jax"] != version:
        stale.append(f"it was measured with ddm-jax {data['ddm_jax']}, the package is {version}")
    if dirty:
        stale.append("it ran with uncommitted changes to the library")
    return {"commit": commit or "unknown (no git history)", "source": source, "stale": stale,
            "changes": changes}  # fmt: skip


def stamp_table(name: str, data: dict) -> list[str]:
    p = provenance(name, data)
    load = data.get("load")
    load_text = (f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min averages)"
                 if load else "not recorded")  # fmt: skip
    rows = [
        ("commit", f"`{p['commit']}` ({p['source']})"),
        ("device", data.get("device", "not recorded")),
        ("machine", data.get("machine", "not recorded")),
        (
            "versions",
            ", ".join(
                f"{k} {data[k]}" for k in ("ddm_jax", "jax", "diffrax", "torch") if data.get(k)
            ),
        ),  # fmt: skip
        ("dtype", data.get("dtype", "not recorded")),
        ("date", data.get("date", "not recorded")),
        ("machine load", load_text),
    ]
    lines = ["| measured | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    if p["stale"]:
        why = "; ".join(p["stale"])
        script = SCRIPT.get(name.removesuffix("-gpu"), name.removesuffix("-gpu"))
        lines += ['!!! warning "Stale: measured on older code"',
                  f"    This table may not describe the current code: {why}. Rerun "
                  f"`python benchmarks/{script}.py` to refresh it.", ""]  # fmt: skip
    else:
        lines += ['!!! success "Current"', "    Measured on the library as it is now.", ""]
    return lines


def value(row: dict, key: str):
    for part in key.split("."):
        if not isinstance(row, dict) or part not in row:
            return None
        row = row[part]
    return row


def fmt(x, kind: str) -> str:
    if x is None:
        return ""
    if isinstance(x, bool) or kind == "":
        return str(x)
    if isinstance(x, dict) and "value" in x:  # an estimate with its interval
        return f"{x['value']:.4g} [{x['low']:.4g}, {x['high']:.4g}]"
    if not isinstance(x, int | float):
        return str(x)
    if kind == "%":
        return f"{100 * x:.2f}%"
    if kind == "e":
        return f"{x:.1e}"
    if kind == "s":
        return f"{x:.1f}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def table(rows: list[dict], columns) -> list[str]:
    if columns is None:
        keys = [k for k, v in rows[0].items() if not isinstance(v, list | dict)]
        columns = [(k, k, "g") for k in keys]
    columns = [c for c in columns if any(value(r, c[0]) is not None for r in rows)]
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |",
             "|" + "---|" * len(columns)]  # fmt: skip
    for r in rows:
        lines.append("| " + " | ".join(fmt(value(r, k), f) for k, _, f in columns) + " |")
    return lines + [""]


def question(name: str) -> str:
    path = ROOT / "benchmarks" / f"{SCRIPT.get(name, name).split('-')[0]}.py"
    doc = ast.get_docstring(ast.parse(path.read_text())) if path.exists() else None
    return doc.split("\n\n")[0].replace("\n", " ") if doc else name


def rows_of(name: str, data: dict) -> list[dict]:
    if name.startswith("throughput"):
        return [r for r in data.get("rows", []) if r.get("path") == "default"]
    if name == "memory":
        return data.get("cycling", [])
    return data.get("rows", [])


def page(name: str, data: dict) -> str:
    base = name.removesuffix("-gpu")
    lines = [f"# {name}", "", f"*{question(base)}*", "", *stamp_table(name, data)]
    if name == "memory" and "one_network" in data:
        one = data["one_network"]
        for exp, label in (("switching", "pulse amplitude"), ("recall", "cue strength")):
            t, n = one[exp]["target"], one[exp]["network"]
            lines += [f"**{exp}** ({t['trials']} trials a point; Wilson 95% intervals):", "",
                      f"| {label} | target | network |", "|---|---|---|"]  # fmt: skip
            for i, x in enumerate(t["x"]):
                lines.append(f"| {x:g} | {t['probability'][i]:.3f} [{t['low'][i]:.3f}, "
                             f"{t['high'][i]:.3f}] | {n['probability'][i]:.3f} |")  # fmt: skip
            lines.append("")
        lines += ["**cycling** (no input):", ""]
    rows = rows_of(name, data)
    if name.startswith("throughput"):
        lines += ["Default path only; the anchors and baselines are in the JSON file.", ""]
    if rows:
        lines += table(rows, COLUMNS.get(base))
    if verdicts := data.get("acceptance"):
        lines += ["Acceptance:", "", "| criterion | measured | met |", "|---|---|---|"]
        lines += [f"| {v['criterion']} | {v['measured']} | {'yes' if v['met'] else 'no'} |"
                  for v in verdicts] + [""]  # fmt: skip
    for part, part_rows in (data.get("parts") or {}).items():
        if part_rows:
            lines += [f"**{part}**", ""] + table(part_rows, COLUMNS.get(f"{base}/{part}"))
    if isinstance(data.get("summary"), dict):
        lines += ["Summary:", ""] + [f"- `{k}`: {fmt(v, 'g') if not isinstance(v, dict) else v}"
                                     for k, v in data["summary"].items()] + [""]  # fmt: skip
    if isinstance(data.get("state_dependent"), dict):
        sd = data["state_dependent"]
        text = ", ".join(f"{k} {fmt(v, 'g')}" for k, v in sd.items())
        lines += [f"State-dependent noise: {text}", ""]
    if data.get("skipped"):
        lines += [f"Skipped: {data['skipped']}", ""]
    if (RESULTS / f"{name}.png").exists():
        lines += [f"![{name}]({name}.png)", ""]
    lines += [f"Raw results: `benchmarks/results/{name}.json`; reproduce with "
              f"`python benchmarks/{SCRIPT.get(base, base)}.py`"
              + (" on a GPU." if name.endswith("-gpu") else "."), ""]  # fmt: skip
    return "\n".join(lines)


def index(pages: dict[str, dict]) -> str:
    lines = ["# Benchmarks", "",
             "Generated at every docs build from `benchmarks/results/*.json` by "
             "`benchmarks/pages.py`. `make bench` (quick) and `make bench-full` rerun them; "
             "each script writes its JSON, a Markdown table and a figure. A result measured "
             "before the library last changed is marked stale on its page.", "",
             "| benchmark | question | device | date | commit | status |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, data in pages.items():
        p = provenance(name, data)
        status = "stale" if p["stale"] else "current"
        lines.append(f"| [{name}]({name}.md) | {question(name.removesuffix('-gpu'))} | "
                     f"{data.get('device', '?')} | {data.get('date', '?')} | "
                     f"`{p['commit']}` | {status} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str | Path]:
    """Page path (inside the site) -> Markdown text, or the Path of a figure to copy."""
    pages = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    out: dict[str, str | Path] = {f"{PREFIX}/index.md": index(pages)}
    for name, data in pages.items():
        out[f"{PREFIX}/{name}.md"] = page(name, data)
        if (RESULTS / f"{name}.png").exists():
            out[f"{PREFIX}/{name}.png"] = RESULTS / f"{name}.png"
    return out


def on_files(files, config):  # the mkdocs hook
    from mkdocs.structure.files import File

    for uri, content in generate().items():
        if isinstance(content, Path):
            files.append(File.generated(config, uri, abs_src_path=str(content)))
        else:
            files.append(File.generated(config, uri, content=content))
    return files


def main(out: str) -> None:
    for uri, content in generate().items():
        path = Path(out) / Path(uri).relative_to(PREFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_text(content)
        print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "site-benchmarks")
