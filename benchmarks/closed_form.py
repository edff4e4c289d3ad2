"""Does closed-form drift matching (``method="lstsq"``) meet its acceptance bounds on every path?

Five parts, float32 networks on the CPU, the default `ddm.TrainConfig` unless said:

1. ``census``: Dadras-1024, seeds 0-4, ``method="lstsq"``, ``remedy_rounds=0`` (no remedy):
   drift error on 16,384 held-out attractor points and the attractor census
   (`ddm.attractor_census`, 32 starts): starts in another class, mean exponent over chaotic
   starts against the target's. Clean: no start in another class and the exponent within 3%.
2. ``statistics``: `ddm.fidelity_report` of lstsq (and Adam) networks, VDP-64, Lorenz-512,
   Dadras-1024, seed 1: sliced Wasserstein, mean and covariance errors beside their
   target-vs-target nulls, the exponent or period.
3. ``paths``: Adam against lstsq on the other paths: state-dependent noise (a Stuart-Landau
   oscillator, ``G = 0.2 diag(sqrt(1 + z^2))``, n = 128), the fit to data (`ddm.fit_data` on
   simulated Van der Pol trajectories, n = 64), the memory wells (``cycling_wells``, n = 256)
   and a user target (`ddm.from_callables`: FitzHugh-Nagumo with additive noise, n = 64):
   drift and diffusion errors, max |W_s|, wall time.
4. ``scaling``: lstsq on Lorenz against n (16 ... 4096; the closed form alone, the attractor
   pool apart) and against the number of fit points at n = 512, with the process's peak
   resident memory.
5. ``cli``: ``ddm-jax train SYSTEM --remedy-rounds 0`` with and without ``--method lstsq``,
   VDP-64, Lorenz-512, Dadras-1024, each twice, alternating: process wall time and the
   ``train_seconds`` of ``training.json``.

Every row is cached as it finishes (``--cache``, results/.cache/closed_form.json; rows of
another commit are dropped), so an interrupted run resumes. ``--quick`` runs a tiny subset
(small networks, few steps; under a minute) into its own cache and prints the tables
without writing results. Writes results/closed_form.{json,md,png}.

    python benchmarks/closed_form.py [--quick] [--parts census statistics ...] [--redo]
"""

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import RESULTS, plt, stamp, write_results

import ddm_jax as ddm
from ddm_jax import training

jax.config.update("jax_default_device", jax.devices("cpu")[0])

PARTS = ("census", "statistics", "paths", "scaling", "cli")
METHODS = ("adam", "lstsq")
ROOT = Path(__file__).resolve().parent.parent

FULL = {
    "census_seeds": (0, 1, 2, 3, 4), "census_system": ("dadras", 1024), "census_starts": 32,
    "census_settings": {}, "census_more_starts": 128,
    "statistics": (("vdp", 64), ("lorenz", 512), ("dadras", 1024)), "statistics_seed": 1,
    "statistics_methods": ("lstsq", "adam"), "statistics_reports": {"vdp": 3},
    "trajectories": 256, "t1": 20.0, "burn_in": 5.0,
    "paths": ("state_dependent", "data", "wells", "user"), "path_n": {}, "statistics_config": {},
    "path_config": {}, "data_trajectories": 64, "data_time": 100.0,
    "scaling_n": (16, 64, 256, 1024, 4096), "scaling_points": (2048, 8192, 32768, 131072),
    "points_n": 512,
    "cli": (("vdp", 64), ("lorenz", 512), ("dadras", 1024)), "cli_repeats": 2, "cli_args": (),
}  # fmt: skip
QUICK = {
    **FULL,
    "census_seeds": (0,), "census_system": ("vdp", 32), "census_starts": 4,
    "census_settings": {"transient": 5.0, "time": 20.0}, "census_more_starts": None,
    "statistics": (("vdp", 32),), "statistics_methods": ("lstsq",), "statistics_reports": {},
    "trajectories": 8,
    "t1": 3.0, "burn_in": 1.0, "paths": ("user",), "path_n": {"user": 16},
    "path_config": {"steps": 200, "chunk": 100, "remedy_rounds": 0},
    "statistics_config": {"remedy_rounds": 0},
    "scaling_n": (16,), "scaling_points": (2048,), "points_n": 16,
    "cli": (("vdp", 16),), "cli_repeats": 1, "cli_args": ("--steps", "200", "--chunk", "100"),
}  # fmt: skip
PATH_N = {"state_dependent": 128, "data": 64, "wells": 256, "user": 64}


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- targets


def _stuart_landau_drift(t, z, args):
    x, y = z
    r2 = x**2 + y**2
    return jnp.array([x - 2 * y - x * r2, 2 * x + y - y * r2])


def stuart_landau() -> ddm.Target:
    """The README's Hopf oscillator (limit cycle r = 1), multiplicative noise."""
    return ddm.from_callables(
        _stuart_landau_drift, lambda t, z, args: 0.2 * jnp.diag(jnp.sqrt(1 + z**2)),
        box=([-1.8, -1.8], [1.8, 1.8]), z0=[1.0, 0.0], name="stuart_landau",
        attractor="limit_cycle",
    )  # fmt: skip


def _fhn_drift(t, z, args):
    v, w = z
    return 3.0 * jnp.array([v - v**3 / 3 - w + 0.5, 0.08 * (v + 0.7 - 0.8 * w)])


def fitzhugh_nagumo() -> ddm.Target:
    """FitzHugh-Nagumo (a = 0.7, b = 0.8, eps = 0.08, I = 0.5, time x 3), noise 0.1 I."""
    return ddm.from_callables(
        _fhn_drift, lambda t, z, args: 0.1 * jnp.eye(2), box=([-2.5, -1.0], [2.5, 2.5]),
        z0=[-1.0, 1.0], name="fitzhugh_nagumo", attractor="limit_cycle",
    )  # fmt: skip


def cycle_points(num: int = 512):
    theta = jnp.linspace(0.0, 2 * jnp.pi, num, endpoint=False)
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)


# ---------------------------------------------------------------- parts


def census_outcome(result) -> str:
    """What the automatic census said (`FitResult.remedy`): none, clean or rounds run."""
    if result.remedy is None:
        return "no census"
    clean = result.remedy[-1].get("clean") if isinstance(result.remedy[-1], dict) else None
    return f"{len(result.remedy) - 1} round(s), " + ("clean" if clean else "not clean")


def census_part(seed: int, starts: int, s: dict) -> dict:
    system, n = s["census_system"]
    target = ddm.make_target(system)
    config = ddm.TrainConfig(method="lstsq", remedy_rounds=0)
    start = time.perf_counter()
    result = ddm.fit(target, n, key=jr.key(seed), config=config)
    train_s = time.perf_counter() - start
    held = ddm.attractor_points(target, key=jr.key(1000 + seed), num=16384)
    start = time.perf_counter()
    census = ddm.attractor_census(result.model, target, key=jr.key(2000 + seed),
                                  starts=starts, **s["census_settings"])  # fmt: skip
    m = census.metrics
    error = m["census_lyapunov_error"]
    return {
        "system": system, "n": n, "seed": seed, "starts": starts, "train_s": train_s,
        "census_s": time.perf_counter() - start,
        "drift_error_attractor": float(ddm.drift_error(result.model, target, held)),
        "max_abs_W_s": float(jnp.max(jnp.abs(result.model.W_s))),
        "gamma_scale": result.closed_form["gamma_scale"], "ridge": result.closed_form["ridge"],
        "mismatch": m["census_mismatch"], "lyapunov_network": m["census_lyapunov_network"],
        "lyapunov_network_std": m["census_lyapunov_network_std"],
        "lyapunov_target": m["census_lyapunov_target"], "lyapunov_error": error,
        "sw": m["census_sw"], "sw_null": m["census_sw_null"],
        "clean": bool(m["census_mismatch"] == 0 and (not np.isfinite(error) or abs(error) <= 0.03)),
    }  # fmt: skip


def statistics_part(system: str, n: int, method: str, s: dict, which: int = 0) -> dict:
    """One network (seed ``statistics_seed``) and its fidelity report (``which``: its key)."""
    target = ddm.make_target(system)
    seed = s["statistics_seed"]
    start = time.perf_counter()
    config = ddm.TrainConfig(method=method, **s["statistics_config"])
    result = ddm.fit(target, n, key=jr.key(seed), config=config)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    key = jr.key(1000 + seed) if which == 0 else jr.fold_in(jr.key(1000 + seed), which)
    report = ddm.fidelity_report(result.model, target, key=key,
                                 trajectories=s["trajectories"], t1=s["t1"],
                                 burn_in=s["burn_in"])  # fmt: skip
    keys = ("drift_error_attractor", "drift_error_box", "sw", "sw_null", "sw_ratio",
            "mean_error", "mean_error_null", "cov_error", "cov_error_null", "lyapunov_network",
            "lyapunov_target", "period_network", "period_target", "residual")  # fmt: skip
    return {
        "system": system, "n": n, "seed": seed, "method": method, "train_s": train_s,
        "report_key": which, "report_s": time.perf_counter() - start,
        "census": census_outcome(result),
        "trajectories": s["trajectories"], "t1": s["t1"],
        **{k: float(report.metrics[k]) for k in keys if k in report.metrics},
    }  # fmt: skip


def path_part(path: str, method: str, s: dict) -> dict:
    n = s["path_n"].get(path, PATH_N[path])
    config = ddm.TrainConfig(method=method, **s["path_config"])
    row = {"path": path, "n": n, "method": method}
    if path == "data":
        return row | data_path(n, config, s)
    target = {"state_dependent": stuart_landau, "user": fitzhugh_nagumo,
              "wells": lambda: ddm.make_target("cycling_wells")}[path]()  # fmt: skip
    start = time.perf_counter()
    result = ddm.fit(target, n, key=jr.key(0), config=config)
    row["train_s"] = time.perf_counter() - start
    model = result.model
    held = ddm.attractor_points(target, key=jr.key(12345), num=16384)
    box = ddm.simulation.sample_box(jr.key(3), target, 4096)
    places = {"attractor": held, "box": box}
    if path == "state_dependent":  # the limit cycle itself, as in the README
        places["cycle"] = cycle_points()
    for where, zs in places.items():
        row[f"drift_error_{where}"] = float(ddm.drift_error(model, target, zs))
        row[f"diffusion_error_{where}"] = float(ddm.diffusion_error(model, target, zs))
    row["max_abs_W_s"] = float(jnp.max(jnp.abs(model.W_s)))
    if model.noise_readout is not None:
        row["max_abs_W_g"] = float(jnp.max(jnp.abs(model.noise_readout)))
    row["census"] = census_outcome(result)
    row["target"] = target.name
    return row


def data_path(n: int, config, s: dict) -> dict:
    """`fit_data` on Van der Pol trajectories (G = 0.3 I) sampled every 0.01."""
    target = ddm.make_target("vdp")
    k_start, k_sim, k_test, k_fit = jr.split(jr.key(0), 4)
    z0s = ddm.attractor_points(target, key=k_start, num=s["data_trajectories"])
    run = ddm.simulate_target(target, z0s, key=k_sim, t1=s["data_time"], dt=1e-3, save_dt=0.01)
    data = np.asarray(run.zs, float)
    held = ddm.attractor_points(target, key=k_test, num=16384)
    start = time.perf_counter()
    fit = ddm.fit_data(data, 0.01, n, key=k_fit, config=config)
    seconds = time.perf_counter() - start
    f_hat = np.asarray(jax.vmap(fit.target.f)(held), float)
    f_true = np.asarray(jax.vmap(target.f)(held), float)
    g = np.asarray(target.g(target.z0), float)
    d_true = g @ g.T / 2
    pairs = data.shape[0] * (data.shape[1] - 1)  # sampling s.e. of D from that many increments
    var = np.outer(np.diag(d_true), np.diag(d_true)) + d_true**2
    return {
        "target": "vdp data", "train_s": seconds,
        "trajectories": s["data_trajectories"], "time": s["data_time"],
        "drift_error_attractor": float(np.sqrt(np.sum((f_hat - f_true) ** 2) / np.sum(f_true**2))),
        "diffusion_error_attractor": float(np.linalg.norm(np.asarray(fit.D) - d_true)
                                           / np.linalg.norm(d_true)),
        "diffusion_se": float(np.sqrt(np.sum(var) / pairs) / np.linalg.norm(d_true)),
        "max_abs_W_s": float(jnp.max(jnp.abs(fit.model.W_s))),
    }  # fmt: skip


def scaling_part(n: int, points: int) -> dict:
    target = ddm.make_target("lorenz")
    config = ddm.TrainConfig(method="lstsq", lstsq_points=points, remedy_rounds=0)
    plan = training.fit_plan(jr.key(0), config)
    start = time.perf_counter()
    pool = jax.block_until_ready(ddm.attractor_points(target, key=plan.pool_key))
    pool_s = time.perf_counter() - start
    init = ddm.init_network(target, n, key=plan.init_key)
    start = time.perf_counter()
    model, info = training.closed_form(init, target, pool, key=plan.closed_form_key,
                                       config=config)  # fmt: skip
    seconds = time.perf_counter() - start
    held = ddm.attractor_points(target, key=jr.key(12345), num=16384)
    return {
        "system": "lorenz", "n": n, "points": points, "closed_form_s": seconds, "pool_s": pool_s,
        "drift_error_attractor": float(ddm.drift_error(model, target, held)),
        "max_abs_W_s": info["max_abs_W_s"], "gamma_scale": info["gamma_scale"],
        "ridge": info["ridge"], "peak_rss_mb": peak_rss_mb(),
        "normal_equations_mb": 2 * n * n * 8 / 2**20,
    }  # fmt: skip


def cli_part(system: str, n: int, method: str, repeat: int, s: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "ddm_jax.cli", "train", system, "--neurons", str(n),
               "--remedy-rounds", "0", "--out", str(out), *s["cli_args"]]  # fmt: skip
        if method != "adam":
            cmd += ["--method", method]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        summary = json.loads((out / "training.json").read_text())
    shown = [c if c != sys.executable else "python" for c in cmd]
    return {
        "system": system, "n": n, "method": method, "repeat": repeat, "wall_s": wall,
        "train_s": summary["train_seconds"], "steps": summary["steps"],
        "drift_error_monitor": summary["drift_error_monitor"],
        "command": " ".join(shown).replace(str(out), "RUN"),
    }  # fmt: skip


def jobs(settings: dict, parts) -> list[tuple[str, str, Callable]]:
    """(part, key, thunk) for every row, in the order they run."""
    s = settings
    out = []
    if "census" in parts:
        system, n = s["census_system"]
        for seed in s["census_seeds"]:
            out.append(("census", f"census/{system}-{n}/{seed}",
                        lambda seed=seed: census_part(seed, s["census_starts"], s)))  # fmt: skip
    if "statistics" in parts:
        for method in s["statistics_methods"]:
            for system, n in s["statistics"]:
                out.append(("statistics", f"statistics/{system}-{n}/{method}",
                            lambda a=(system, n, method): statistics_part(*a, s)))  # fmt: skip
    if "paths" in parts:
        for path in s["paths"]:
            for method in METHODS:
                out.append(("paths", f"paths/{path}/{method}",
                            lambda a=(path, method): path_part(*a, s)))  # fmt: skip
    if "scaling" in parts:
        for n in s["scaling_n"]:
            out.append(("scaling", f"scaling/n/{n}", lambda n=n: scaling_part(n, 32768)))
        for p in s["scaling_points"]:
            out.append(("scaling", f"scaling/points/{p}",
                        lambda p=p: scaling_part(s["points_n"], p)))  # fmt: skip
    if "census" in parts and s["census_more_starts"]:  # the exponent's own noise, last
        system, n, more = *s["census_system"], s["census_more_starts"]
        for seed in s["census_seeds"]:
            out.append(("census", f"census/{system}-{n}/{seed}/{more}",
                        lambda seed=seed: census_part(seed, more, s)))  # fmt: skip
    if "statistics" in parts:  # other report keys: how far the ratios swing, last
        for system, n in s["statistics"]:
            for which in range(1, s["statistics_reports"].get(system, 1)):
                for method in s["statistics_methods"]:
                    out.append(
                        (
                            "statistics",
                            f"statistics/{system}-{n}/{method}/{which}",
                            lambda a=(system, n, method, s, which): statistics_part(*a),
                        )
                    )
    if "cli" in parts:
        for system, n in s["cli"]:
            for repeat in range(s["cli_repeats"]):
                for method in METHODS:
                    out.append(("cli", f"cli/{system}-{n}/{method}/{repeat}",
                                lambda a=(system, n, method, repeat): cli_part(*a, s)))  # fmt: skip
    return out


# ---------------------------------------------------------------- the cache


@functools.cache
def library_commit(commit: str | None) -> str | None:
    """The last commit at or before ``commit`` that changed ``ddm_jax/`` (``+dirty`` kept)."""
    if not commit:
        return None
    base = commit.removesuffix("+dirty")
    out = subprocess.run(["git", "log", "-1", "--format=%h", base, "--", "ddm_jax"], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    found = out.stdout.strip() if out.returncode == 0 else ""
    return (found or base) + ("+dirty" if commit.endswith("+dirty") else "")


class Cache:
    """Rows by key in one JSON file, written after every row.

    Rows measured on another version of the library (``ddm_jax/``) are dropped: a commit that
    changes only benchmarks or docs keeps them.
    """

    def __init__(self, path: Path, commit: str | None, keep_other: bool):
        self.path, self.commit = path, commit
        library = library_commit(commit)
        stored = json.loads(path.read_text()) if path.exists() else {}
        self.rows = {k: r for k, r in stored.get("rows", {}).items()
                     if keep_other or library_commit(r.get("commit")) == library}  # fmt: skip

    def run(self, part: str, key: str, thunk, redo: bool) -> dict:
        """The cached row of ``key``, or ``thunk()`` stamped and cached at once."""
        if key in self.rows and not redo:
            return self.rows[key]
        load = [round(x, 2) for x in os.getloadavg()]
        start = time.perf_counter()
        row = thunk()
        row.update(part=part, key=key, commit=self.commit, load=load,
                   row_s=time.perf_counter() - start)  # fmt: skip
        self.rows[key] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ddm.io.atomic_write_json(self.path, {"rows": self.rows})
        return row


# ---------------------------------------------------------------- tables


def pct(x, digits: int = 4) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def num(x, digits: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def signed(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:+.1f}%"


def sec(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def at_least(new: dict, old: dict, key: str) -> bool:
    """``new[key] <= old[key]``; for a D learned from data, or below D's sampling s.e."""
    bound = old[key]
    if key.startswith("diffusion") and "diffusion_se" in new:
        bound = max(bound, new["diffusion_se"])
    return new[key] <= bound


def acceptance(parts: dict) -> list[tuple[str, str, bool | None]]:
    """(criterion, measured, met) of the closed form's acceptance, from what was run."""
    out = []
    stats = {(r["system"], r["method"]): r for r in parts.get("statistics", [])
             if r.get("report_key", 0) == 0}  # fmt: skip
    census = parts.get("census", [])
    points = {r["points"]: r for r in parts.get("scaling", []) if r["n"] == 512}
    for system, n, bound in (("vdp", 64, 5e-4), ("lorenz", 512, 1e-4), ("dadras", 1024, 5e-4)):
        errors = []  # the acceptance's sizes only
        if (system, "lstsq") in stats and stats[(system, "lstsq")]["n"] == n:
            errors.append(stats[(system, "lstsq")]["drift_error_attractor"])
        if system == "dadras":
            seeds = {r["seed"]: r for r in census if r["n"] == n}  # the same network at any starts
            errors += [r["drift_error_attractor"] for r in seeds.values()]
        if system == "lorenz" and 32768 in points:
            errors.append(points[32768]["drift_error_attractor"])
        if errors:
            out.append((f"{system}-{n} lstsq drift error on the attractor <= {pct(bound, 2)}",
                        ", ".join(pct(e) for e in errors), max(errors) <= bound))  # fmt: skip
    cli = parts.get("cli", [])
    for system in dict.fromkeys(r["system"] for r in cli):
        mine = [r for r in cli if r["system"] == system]
        pairs = [(r, a) for r in mine for a in mine if r["repeat"] == a["repeat"]
                 and (r["method"], a["method"]) == ("lstsq", "adam")]  # fmt: skip
        for what, field in (("process wall time", "wall_s"), ("train_seconds", "train_s")):
            ratios = [r[field] / a[field] for r, a in pairs]
            if ratios:
                label = f"ddm-jax train {system}-{mine[0]['n']}: lstsq {what} <= 1/3 of adam's"
                shown = ", ".join(f"{x:.2f}" for x in ratios)
                out.append((label, shown, max(ratios) <= 1 / 3))
    for starts in dict.fromkeys(r.get("starts", 32) for r in census):
        rows = [r for r in census if r.get("starts", 32) == starts]
        clean = sum(r["clean"] for r in rows)
        out.append((f"{rows[0]['system']}-{rows[0]['n']} seeds clean without the remedy, "
                    f"exponent within 3% ({starts} starts)",
                    f"{clean} of {len(rows)} (other class "
                    + ", ".join(pct(r["mismatch"], 0) for r in rows) + "; exponent errors "
                    + ", ".join(signed(r["lyapunov_error"]) for r in rows) + ")",
                    clean == len(rows)))  # fmt: skip
    for (system, method), r in stats.items():
        if method != "lstsq":
            continue
        within = r["sw"] <= r["sw_null"] and r["cov_error"] <= r["cov_error_null"]
        shown = (f"SW {pct(r['sw'], 2)} (null {pct(r['sw_null'], 2)}), cov. "
                 f"{pct(r['cov_error'], 2)} (null {pct(r['cov_error_null'], 2)})")  # fmt: skip
        out.append((f"{system}-{r['n']} lstsq statistics within their nulls (SW, covariance)",
                    shown, within))  # fmt: skip
    paths = {(r["path"], r["method"]): r for r in parts.get("paths", [])}
    for path in dict.fromkeys(p for p, _ in paths):
        a, new = paths.get((path, "adam")), paths.get((path, "lstsq"))
        if a and new:
            where = "cycle" if path == "state_dependent" else "attractor"
            keys = [f"drift_error_{where}"]
            if path in ("state_dependent", "data"):
                keys.append(f"diffusion_error_{where}")
            met = all(at_least(new, a, k) for k in keys)
            shown = "; ".join(f"{k.split('_')[0]} {pct(new[k])} vs {pct(a[k])}" for k in keys)
            if "diffusion_se" in new:
                shown += f" (D's sampling s.e. {pct(new['diffusion_se'])})"
            out.append((f"{path}: lstsq at least adam's fidelity", shown, met))
    return out


def markdown(parts: dict, settings: dict, quick: bool) -> str:
    lines = []
    verdicts = acceptance(parts)
    if verdicts:
        lines += ["**Acceptance**", "", "| criterion | measured | met |",
                  "|---|---|---|"]  # fmt: skip
        lines += [f"| {c} | {m} | {'yes' if ok else 'no'} |" for c, m, ok in verdicts] + [""]
    if rows := parts.get("census"):
        lines += [
            "**1. Census without the remedy** (`method=\"lstsq\"`, `remedy_rounds=0`; the "
            "rows with more starts refit the same networks, the closed form is deterministic)", "",
            "| system | seed | starts | train (s) | drift err. attractor | max abs W_s "
            "| scale, ridge | other class | exponent net (sd) | exponent target | exponent err. "
            "| orbit SW (null) | clean |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in rows:
            lines.append(
                f"| {r['system']}-{r['n']} | {r['seed']} | {r.get('starts', 32)} "
                f"| {sec(r['train_s'])} "
                f"| {pct(r['drift_error_attractor'])} | {r['max_abs_W_s']:.0f} "
                f"| {r['gamma_scale']:g}, {r['ridge']:g} | {pct(r['mismatch'], 0)} "
                f"| {num(r['lyapunov_network'])} ({num(r['lyapunov_network_std'], 2)}) "
                f"| {num(r['lyapunov_target'])} | {signed(r['lyapunov_error'])} "
                f"| {pct(r['sw'], 2)} ({pct(r['sw_null'], 2)}) | {'yes' if r['clean'] else 'no'} |"
            )
        lines.append("")
    if rows := parts.get("statistics"):
        lines += [
            f"**2. Statistics against their nulls** (`fidelity_report`, {settings['trajectories']} "
            f"trajectories x {settings['t1']:g} time units, seed {settings['statistics_seed']}; "
            "the automatic census as the settings say)", "",
            "| system | method | report key | train (s) | census | drift err. attractor "
            "| SW / spread (null) "
            "| SW / null | mean err. (null) | cov. err. (null) | exponent or period net / target "
            "| report (s) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in rows:
            if "lyapunov_network" in r:
                dyn = f"{num(r['lyapunov_network'])} / {num(r['lyapunov_target'])}"
            elif "period_network" in r:
                dyn = f"{num(r['period_network'], 5)} / {num(r['period_target'], 5)}"
            else:
                dyn = "-"
            lines.append(
                f"| {r['system']}-{r['n']} | {r['method']} | {r.get('report_key', 0)} "
                f"| {sec(r['train_s'])} | {r['census']} "
                f"| {pct(r['drift_error_attractor'])} | {pct(r['sw'], 2)} ({pct(r['sw_null'], 2)}) "
                f"| {r['sw_ratio']:.2f} "
                f"| {pct(r['mean_error'], 2)} ({pct(r['mean_error_null'], 2)}) "
                f"| {pct(r['cov_error'], 2)} ({pct(r['cov_error_null'], 2)}) | {dyn} "
                f"| {sec(r['report_s'])} |"
            )
        lines.append("")
    if rows := parts.get("paths"):
        lines += [
            "**3. Adam (old) against lstsq (new) on the other paths** (seed 0, default "
            "settings)", "",
            "| path | target | n | method | time (s) | drift err. attractor | drift err. box "
            "| drift err. cycle | diffusion err. attractor | diffusion err. box "
            "| diffusion err. cycle | max abs W_s | max abs W_g | census |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in rows:
            lines.append(
                f"| {r['path']} | {r['target']} | {r['n']} | {r['method']} | {sec(r['train_s'])} "
                f"| {pct(r.get('drift_error_attractor'))} | {pct(r.get('drift_error_box'))} "
                f"| {pct(r.get('drift_error_cycle'))} | {pct(r.get('diffusion_error_attractor'))} "
                f"| {pct(r.get('diffusion_error_box'))} | {pct(r.get('diffusion_error_cycle'))} "
                f"| {r['max_abs_W_s']:.3g} | {num(r.get('max_abs_W_g'))} "
                f"| {r.get('census', '-')} |"
            )
        se = [r["diffusion_se"] for r in rows if "diffusion_se" in r]
        lines += ["", "data: `fit_data` on simulated trajectories; its diffusion error is that "
                  "of the fitted constant D (Frobenius), its drift error that of the learned "
                  "target's drift against the true one"
                  + (f"; D's sampling s.e. from that many increments is {pct(se[0])}" if se
                     else "") + ".", ""]  # fmt: skip
    if rows := parts.get("scaling"):
        lines += [
            "**4. Scaling of the closed form** (Lorenz, `remedy_rounds=0`; time of "
            "`training.closed_form` alone, the attractor pool apart; peak memory of the "
            "whole benchmark process so far)", "",
            "| n | fit points | closed form (s) | drift err. attractor | max abs W_s "
            "| scale, ridge | two n x n float64 (MB) | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in rows:
            lines.append(
                f"| {r['n']} | {r['points']:,} | {sec(r['closed_form_s'])} "
                f"| {pct(r['drift_error_attractor'])} | {r['max_abs_W_s']:.0f} "
                f"| {r['gamma_scale']:g}, {r['ridge']:g} | {r['normal_equations_mb']:.0f} "
                f"| {r['peak_rss_mb']:.0f} |"
            )
        lines.append("")
    if rows := parts.get("cli"):
        lines += [
            "**5. `ddm-jax train` wall time** (`--remedy-rounds 0`; process wall time, "
            "start-up and the attractor pool included; `train_seconds` from training.json)", "",
            "| system | method | run | wall (s) | train_seconds | steps | monitor drift err. |",
            "|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in rows:
            lines.append(
                f"| {r['system']}-{r['n']} | {r['method']} | {r['repeat'] + 1} "
                f"| {sec(r['wall_s'])} | {sec(r['train_s'])} | {r['steps']} "
                f"| {pct(r['drift_error_monitor'])} |"
            )
        lines += ["", "Command: `" + rows[0]["command"] + "` (and `--method lstsq`).", ""]
    if quick:
        lines += ["(--quick: small networks and few steps; not the measurement.)", ""]
    return "\n".join(lines) + "\n"


def plot(parts: dict, path) -> None:
    rows = parts.get("scaling", [])
    by_n = sorted((r for r in rows if r["points"] == 32768), key=lambda r: r["n"])
    by_p = sorted((r for r in rows if r["n"] == 512), key=lambda r: r["points"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, mine, x, label in ((axes[0], by_n, "n", "neurons n (32,768 fit points)"),
                               (axes[1], by_p, "points", "fit points (n = 512)")):  # fmt: skip
        if not mine:
            continue
        xs = [r[x] for r in mine]
        ax.loglog(xs, [100 * r["drift_error_attractor"] for r in mine], "o-", color="C0")
        ax.set(xlabel=label, ylabel="attractor drift error (%)", title="lstsq on Lorenz")
        twin = ax.twinx()
        twin.loglog(xs, [r["closed_form_s"] for r in mine], "s--", color="C1")
        twin.set_ylabel("closed form (s)", color="C1")
    errors = [100 * r["drift_error_attractor"] for r in by_n + by_p]
    if errors:  # one error scale for both panels: a flat line looks flat
        for ax in axes:
            ax.set_ylim(min(errors) / 2, max(errors) * 2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny subset, under a minute")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--redo", action="store_true", help="rerun rows the cache holds")
    parser.add_argument("--cache", type=Path, default=None,
                        help="[default: results/.cache/closed_form(-quick).json]")  # fmt: skip
    parser.add_argument("--keep-other-commits", action="store_true",
                        help="keep cached rows measured on another commit")  # fmt: skip
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    header = stamp()
    name = "closed_form-quick" if args.quick else "closed_form"
    cache = Cache(args.cache or RESULTS / ".cache" / f"{name}.json", header["commit"],
                  args.keep_other_commits)  # fmt: skip
    parts: dict[str, list] = {}
    for part, key, thunk in jobs(settings, args.parts):
        row = cache.run(part, key, thunk, args.redo)
        parts.setdefault(part, []).append(row)
        print(f"{key}: {row['row_s']:.1f} s", flush=True)
    # rows of parts not run this time stay, from the cache
    for part, key, _ in jobs(settings, PARTS):
        if part not in args.parts and key in cache.rows:
            parts.setdefault(part, []).append(cache.rows[key])
    parts = {p: parts[p] for p in PARTS if p in parts}
    for row in parts.get("census", []):  # rows cached before the field existed: the default
        row.setdefault("starts", settings["census_starts"])
    table = markdown(parts, settings, args.quick)
    print(table)
    if args.quick:
        return
    settings_json = {k: v for k, v in settings.items()}
    commits = sorted({r["commit"] for rows in parts.values() for r in rows if r.get("commit")})
    data = {**header, "settings": settings_json, "parts": parts, "row_commits": commits,
            "acceptance": [{"criterion": c, "measured": m, "met": ok}
                           for c, m, ok in acceptance(parts)]}  # fmt: skip
    write_results("closed_form", data, table, lambda p: plot(parts, p))


if __name__ == "__main__":
    main()
