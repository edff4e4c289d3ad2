"""The zoo: every continuous flow of dysts embedded at several sizes, and a leaderboard.

For each flow (`ddm.targets.dysts_systems`, or ``--systems``) and each size (``--neurons``):
`ddm.targets.from_dysts` (time in periods of the flow, noise 2% of each coordinate's spread
per square root of a period, box = a deterministic run's range enlarged 15%), `ddm.fit`
with `ddm.TrainConfig` defaults but the drift-matching method (``--method``: the closed form
``lstsq`` by default, ``adam`` the gradient default of `TrainConfig`; ``--steps`` and
``--remedy`` change Adam's steps and the remedy rounds), then `ddm.fidelity_report` (drift
error on held-out attractor and box points, sliced Wasserstein to the target against its
null, mean and covariance errors) and, unless ``--no-census``, `ddm.attractor_census`, whose
exponents (network and target, means over its chaotic starts) are the ones compared; without
the census the report measures them from one start. dysts's own exponent estimate (per
period) sits beside the measured ones. A flow whose phases became (cos, sin) pairs shows its
embedded dimension in brackets after dysts's.

Cost, chosen where it does not change what a statistic means: the report's statistics come
from 256 runs of 12.5 periods, the first 2.5 discarded (10 periods of samples a run: every
flow's time is in periods, so that is ten crossings of its attractor), with one null pair
(``--null-pairs``); its sliced Wasserstein sorts on the host on a CPU (XLA's CPU sort took
half the report). The census keeps its defaults (32 starts, 300 time units, RK4 at
`ddm.fidelity.census_step`: 0.02 periods, shorter for a stiff flow): the exponents are judged
on it, within 10% where most of the target's census orbits are chaotic, else by the class of
the orbits (`exponent_agrees`); its ``census_lyapunov_null`` (the target's own exponent from
other starts) sits beside them. A flow costs about a minute at n = 256 on a 2-core CPU.

``--fit-points attractor`` fits the closed form on attractor points only
(``TrainConfig.attractor_fraction = 1``; the default mixture draws half of them from the
enlarged box): its rows are method ``lstsq-attractor``, in their own cache folder.

A target that diverges (in the training pool or the report's ensemble: its noise carries
trajectories out of a small basin, or Euler's step of 1e-3 periods is too coarse for a stiff
or conservative flow) is retried in the fixed order of `RETRIES`, (noise, step): a quarter of
the noise (`QUIET`) at the same step; then the step 1e-4 (`FINE`: the pool's
``TrainConfig.pool_dt``, the report's ``dt`` and ``pool_dt``, the census's starts; the
census's RK4 step is `ddm.fidelity.census_step`'s) at the full noise, at a quarter of it,
and at a sixteenth. The first attempt that diverges nowhere is the row (else the last): its
``noise``, its ``step`` where it is not 1e-3, ``noise_retry`` the first failure and, past one
retry, ``retries`` every failed attempt. An attempt whose noisy report ensemble diverges
still measures the drift errors on the report's held-out points (`drift_errors`) and the
census, neither of which needs a noisy run: when every retry fails so, the flow's row is the
last attempt, judged by its drift error and exponent (`measured`) and marked as having no
noisy statistics. One JSON per flow, size and method in ``--cache`` (results/zoo/ for
Adam, results/zoo/lstsq/ for the closed form, and so on): a rerun skips what is there
(``--redo`` reruns), so the run resumes. A failure (translation, escape from the box,
divergence, stiffness) is recorded with its reason and the run goes on. ``--keep`` keeps
each network under ``--out``/NAME-N (model.eqx and weights.npz, whose latent coordinates are
the flow's own, phases as (cos, sin) pairs). The leaderboard, results/zoo.{md,json,png}, is
rebuilt from every method's JSONs: a flow's row is its smallest n reaching 1% attractor
drift error with any method, else its best run.

    python benchmarks/zoo.py --systems Halvorsen SprottB --neurons 256 --keep --out zoo-runs
    python benchmarks/zoo.py --neurons 256 1024               # the whole zoo (hours on a CPU)
    python benchmarks/zoo.py --method adam --neurons 256       # Adam's runs, in their folder
    python benchmarks/zoo.py --fit-points attractor --neurons 1024 --systems LorenzCoupled
    python benchmarks/zoo.py --table                           # only rebuild the leaderboard
"""

import argparse
import inspect
import json
import math
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

import jax.random as jr
import numpy as np
from _results import RESULTS, plt, stamp, write_results

import ddm_jax as ddm

THRESHOLD = 0.01  # "reaches": drift error on the attractor below 1%
# from_dysts's noise: 2% of a coordinate's spread per square root of a period
NOISE = inspect.signature(ddm.targets.from_dysts).parameters["noise"].default
QUIET = NOISE / 4  # the retry's noise where the noisy target diverges (leaves the basin)
STEP, FINE = ddm.simulation.POOL_DT, 1e-4  # Euler steps (periods): the default, the finer one
RETRIES = ((QUIET, STEP), (NOISE, FINE), (QUIET, FINE), (NOISE / 16, FINE))  # in this order
FIDELITY_T1, FIDELITY_BURN_IN = 12.5, 2.5  # periods: statistics over 10 periods x 256 runs
METRICS = ("drift_error_attractor", "drift_error_box", "sw", "sw_null", "sw_ratio",
           "mean_error", "mean_error_null", "cov_error", "cov_error_null", "lyapunov_target",
           "lyapunov_network", "residual")  # fmt: skip


def _failure(stage: str, err: BaseException) -> dict:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return {"status": "failed", "stage": stage, "error": type(err).__name__, "reason": reason}


def run_one(name: str, n: int, config: ddm.TrainConfig, census: bool, keep: Path | None,
            null_pairs: int = 1) -> dict:  # fmt: skip
    """One flow at one size; a target that diverges is retried as `RETRIES` says, in order."""
    row = {"system": name, "n": n, "method": config.method, "steps": config.steps,
           "attractor_fraction": config.attractor_fraction,
           "remedy_rounds": config.remedy_rounds, "null_pairs": null_pairs,
           "fidelity_t1": FIDELITY_T1, "fidelity_burn_in": FIDELITY_BURN_IN}  # fmt: skip
    meta = ddm.targets.dysts_metadata(name)
    row.update(dim=meta["dimension"], period=meta["period"],
               lyapunov_dysts=meta["maximum_lyapunov_estimated"] * meta["period"])  # fmt: skip
    first = _attempt(name, n, config, census, keep, null_pairs, row | {"noise": NOISE})
    failed, result = [first], first
    for noise, step in RETRIES:
        if result["status"] == "ok" or result.get("error") != "SimulationDiverged":
            break
        attempt = row | {"noise": noise} | ({"step": step} if step != STEP else {})
        result = _attempt(name, n, config, census, keep, null_pairs, attempt)
        failed.append(result)
    if len(failed) == 1:
        return first
    tried = [f"noise {r['noise']:g}, step {r.get('step', STEP):g}: {r['stage']}: {r['reason']}"
             for r in failed if r["status"] != "ok"]  # fmt: skip
    extra = {"retries": tried} if len(failed) > 2 or result["status"] != "ok" else {}
    return result | {"noise_retry": f"{first['stage']}: {first['reason']}"} | extra


def _attempt(name, n, config, census, keep, null_pairs, row) -> dict:
    start = time.perf_counter()
    try:
        target = ddm.targets.from_dysts(name, noise=row["noise"])
    except ddm.targets.DystsError as err:
        return row | _failure("translation", err)
    row["target_s"] = time.perf_counter() - start
    row["embedded_dim"] = target.dim  # a phase becomes a (cos, sin) pair: one more
    row["attractor"] = target.attractor
    row["box_ratio"] = float(np.max(target.scale) / np.min(target.scale))  # dynamic range
    stage = "training"
    try:
        start = time.perf_counter()
        step = row.get("step", STEP)
        result = ddm.fit(target, n, key=jr.key(0), config=replace(config, pool_dt=step))
        row["train_s"] = time.perf_counter() - start
        losses = np.asarray(result.losses)  # empty for the closed form: no gradient step
        if losses.size and not np.isfinite(losses[-1]):
            raise FloatingPointError("the drift-matching loss became non-finite")
        if not np.all(np.isfinite(np.asarray(result.model.W_s))):
            raise FloatingPointError("the read-out is not finite")
        stage = "fidelity"
        start = time.perf_counter()
        # with the census, its exponents (the mean over its chaotic starts) are the ones
        # compared: the report's own (one start) would only repeat them
        try:
            report = ddm.fidelity_report(
                result.model, target, key=jr.key(1), null_pairs=null_pairs,
                deterministic=not census, t1=FIDELITY_T1, burn_in=FIDELITY_BURN_IN, dt=step,
                pool_dt=step,
            )  # fmt: skip
            row.update({k: float(report.metrics[k]) for k in METRICS if k in report.metrics})
            noisy_failure = None
        except ddm.SimulationDiverged as err:
            # the noisy ensemble diverged (a conservative flow's noise pumps energy into it, a
            # stiff one's Euler step): the drift errors and the census are still measured,
            # and the attempt is recorded as failed at this stage (the retries may do better)
            noisy_failure = err
            row.update(drift_errors(result.model, target, jr.key(1), null_pairs, step))
        row["fidelity_s"] = time.perf_counter() - start
        if not np.isfinite(row["drift_error_attractor"]):
            raise FloatingPointError("the attractor drift error is not finite")
        if census:
            stage = "census"
            start = time.perf_counter()
            cen = ddm.attractor_census(result.model, target, key=jr.key(2), pool_dt=step)
            row["census_s"] = time.perf_counter() - start
            row.update({k: float(v) for k, v in cen.metrics.items() if np.ndim(v) == 0})
        if keep is not None:
            folder = keep / f"{name}-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            ddm.save_model(folder / "model.eqx", result.model)
            ddm.export_weights(folder / "weights.npz", result.model, f"dysts:{name}")
        if noisy_failure is not None:
            stage = "fidelity"
            raise noisy_failure
    except ddm.SimulationDiverged as err:
        return row | _failure("escape" if stage == "training" else stage, err)
    except Exception as err:  # a failure is a result: record it, go on
        traceback.print_exc()
        return row | _failure(stage, err)
    return row | {"status": "ok"}


def drift_errors(model, target, key, null_pairs: int, step: float) -> dict:
    """The report's drift errors alone, on the points `ddm.fidelity_report` holds out.

    The same keys and draws as the report (its first two keys: 16,384 attractor points at
    Euler step ``step``, 16,384 box points), so a flow whose report fails later, in its noisy
    ensemble, keeps the numbers the report would have given.
    """
    keys = iter(jr.split(key, 8 + 2 * null_pairs))
    held = ddm.attractor_points(target, key=next(keys), num=16384, dt=step)
    box = ddm.simulation.sample_box(next(keys), target, 16384)
    return {"drift_error_attractor": float(ddm.drift_error(model, target, held)),
            "drift_error_box": float(ddm.drift_error(model, target, box))}  # fmt: skip


def measured(row: dict) -> bool:
    """Whether a row has its drift errors: it ran through, or only its noisy ensemble failed.

    A flow whose noisy target diverges in the report's ensemble at every retry keeps the drift
    errors on the report's held-out points and its census (`drift_errors`); it reaches 1% and
    its exponent agrees as any other row, and it counts as failed only for the noisy
    statistics (sliced Wasserstein, moments).
    """
    error = row.get("drift_error_attractor")
    finite = error is not None and math.isfinite(error)
    return row["status"] == "ok" or (row.get("stage") == "fidelity" and finite)


def method_of(row: dict) -> str:
    """The drift-matching method of a cached row (the first runs, before ``--method``: Adam).

    With ``-attractor`` where its fit points all came from the attractor (``--fit-points``).
    """
    label = row.get("method", "adam").removesuffix("-attractor")
    return label + ("-attractor" if row.get("attractor_fraction") == 1.0 else "")


def method_cache(cache: Path, method: str) -> Path:
    """Where the JSONs of one method live: Adam's in ``cache`` itself, others in a subfolder."""
    return cache if method == "adam" else cache / method.replace("+", "-")


def _fmt(x, spec=".3f", pct=False):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:.2f}%" if pct else format(x, spec)


def exponents(r: dict) -> tuple[float | None, float | None]:
    """(target, network) largest exponents per period, census first.

    The census's means over its chaotic starts where it ran (one start can land on another
    attractor of a multistable flow, as Aizawa's do), else the fidelity report's, from one
    held-out point.
    """
    t, n = r.get("census_lyapunov_target"), r.get("census_lyapunov_network")
    if t is not None and math.isfinite(t):
        return t, n if n is not None and math.isfinite(n) else None
    return r.get("lyapunov_target"), r.get("lyapunov_network")


def exponent_agrees(r: dict) -> bool:
    """Whether the network's largest exponent agrees with the target's own (census first).

    For a chaotic target (most of the census's target orbits chaotic): within 10% of it. For
    one whose orbits are mostly limit cycles, tori or fixed points, the largest exponent is
    zero or negative and a relative error has no meaning: the network's orbits must then end
    in the target's class at least as often as the target's own orbits do.
    """
    if r.get("census_chaotic_target") is not None and r["census_chaotic_target"] <= 0.5:
        return r["census_mismatch"] <= r["census_target_mismatch"]
    lam_t, lam_n = exponents(r)
    return bool(lam_n is not None and lam_t and abs(lam_n / lam_t - 1) <= 0.1)


def _why(r: dict) -> str:
    """A failed row's reason for the table, with the retries it went through (`RETRIES`)."""
    why = ("most of the pool's trajectories leave the box or become non-finite"
           if r["stage"] == "escape" else r["reason"][:90])  # fmt: skip
    tried = len(r.get("retries", ())) - 1
    last = f"noise {r.get('noise', NOISE):g}, step {r.get('step', STEP):g}"
    return f"{why} (also after {tried} retries, the last at {last})" if tried > 0 else why


def leaderboard(rows: list[dict]) -> tuple[list[dict], str]:
    """One entry per system: the smallest n reaching 1% attractor drift error (else the best)."""
    board = []
    for name in sorted({r["system"] for r in rows}):
        mine = sorted((r for r in rows if r["system"] == name), key=lambda r: r["n"])
        ok = [r for r in mine if measured(r)]
        # the smallest n that reaches 1% with the exponent agreeing, else the smallest that
        # reaches 1%
        reach = sorted((r for r in ok if r["drift_error_attractor"] < THRESHOLD),
                       key=lambda r: (not exponent_agrees(r), r["n"],
                                      r["drift_error_attractor"]))  # fmt: skip
        best = (
            reach[0] if reach else min(ok, key=lambda r: r["drift_error_attractor"], default=None)
        )
        entry = {"system": name, "dim": mine[0]["dim"],
                 "sizes": sorted({r["n"] for r in mine}),
                 "methods": sorted({method_of(r) for r in mine}),
                 "reached": bool(reach), "row": best or mine[-1]}  # fmt: skip
        board.append(entry)
    lines = [
        "| system | dim | exponent / period (target, dysts) | smallest n < 1% | method | drift "
        "error attractor / box | exponent network | SW / spread (null) | train s | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in sorted(board, key=lambda e: (not e["reached"], e["row"].get("drift_error_attractor",
                                                                          math.inf))):  # fmt: skip
        r = e["row"]
        lam_t, lam_n = exponents(r)
        rel = lam_n / lam_t - 1 if lam_n is not None and lam_t and math.isfinite(lam_t) else None
        # the target's own exponent from the census's other starts: how far 10% is from noise
        null = r.get("census_lyapunov_null_error")
        null = f"; null {100 * null:+.0f}%" if null is not None and math.isfinite(null) else ""
        retried = [f"noise {r['noise']:g}"] if r.get("noise", NOISE) != NOISE else []
        retried += [f"step {r['step']:g}"] if r.get("step", STEP) != STEP else []
        quiet = f" ({', '.join(retried)}: retried)" if retried else ""
        lifted = f" ({r['embedded_dim']})" if r.get("embedded_dim", e["dim"]) != e["dim"] else ""
        noisy = f"; no noisy statistics: {_why(r)}" if r["status"] == "failed" else ""
        status = (
            f"ok{quiet}{noisy}" if e["reached"]
            else f"{r['stage']}: {_why(r)}" if r["status"] == "failed"
            else f"best of n = {', '.join(map(str, e['sizes']))} ({', '.join(e['methods'])})"
        )  # fmt: skip
        lines.append(
            f"| {e['system']} | {e['dim']}{lifted} "
            f"| {_fmt(lam_t)}, {_fmt(r.get('lyapunov_dysts'))} "
            f"| {r['n'] if e['reached'] else '-'} | {method_of(r)} "
            f"| {_fmt(r.get('drift_error_attractor'), pct=True)} / "
            f"{_fmt(r.get('drift_error_box'), pct=True)} "
            f"| {_fmt(lam_n)}"
            + (f" ({100 * rel:+.0f}%{null})" if rel is not None else "")
            + f" | {_fmt(r.get('sw'), pct=True)} ({_fmt(r.get('sw_null'), pct=True)}) "
            f"| {_fmt(r.get('train_s'), '.0f')} | {status} |"
        )
    return board, "\n".join(lines) + "\n"


def summary(rows: list[dict], board: list[dict]) -> str:
    attempted = len(board)
    reached = [e for e in board if e["reached"]]
    close = [e for e in reached if exponent_agrees(e["row"])]
    # the noisy statistics too: the stationary distribution within twice its sampling null
    steady = [e for e in close if e["row"].get("sw", math.inf) <= 2 * e["row"].get("sw_null", 0)]
    reasons = {}
    for e in board:
        if e["row"]["status"] == "failed" and not e["reached"]:
            reasons[e["row"]["stage"]] = reasons.get(e["row"]["stage"], 0) + 1
    sizes = sorted({r["n"] for r in rows})
    # reached, but the noisy target diverged in the report's ensemble at every retry
    noisy = [e for e in reached if e["row"]["status"] == "failed"]
    partial = (f" ({len(noisy)} of the {len(reached)} without noisy statistics: the noisy "
               "target diverges in the report's ensemble)" if noisy else "")  # fmt: skip
    lines = [
        f"{attempted} systems attempted at n = {', '.join(map(str, sizes))}; "
        f"{len(reached)} reach 1% drift error on the attractor, {len(close)} of them with the "
        f"network's exponent agreeing with the target's own (within 10% where the target is "
        f"chaotic, else the same class of orbit), and {len(steady)} of those with the sliced "
        f"Wasserstein distance of the noisy network to the target within twice its null"
        f"{partial}; failures by stage (of the systems that do not reach 1%): "
        f"{', '.join(f'{k} {v}' for k, v in sorted(reasons.items())) or 'none'}. Each "
        "system's row is its smallest n reaching 1% with any method (else its best)."
    ]
    for method in sorted({method_of(r) for r in rows}):
        mine = [r for r in rows if method_of(r) == method]
        ran = [r for r in mine if "train_s" in r]
        total = [r["total_s"] for r in ran if "total_s" in r]
        hit = {r["system"] for r in mine if measured(r)
               and r["drift_error_attractor"] < THRESHOLD}  # fmt: skip
        lines.append(
            f"- {method}: {len({r['system'] for r in mine})} systems, {len(ran)} runs trained, "
            f"{len(hit)} systems reach 1%; per run (median) train "
            f"{np.median([r['train_s'] for r in ran]) if ran else 0:.0f} s, fidelity "
            f"{np.median([r.get('fidelity_s', 0) for r in ran]) if ran else 0:.0f} s, census "
            f"{np.median([r.get('census_s', 0) for r in ran]) if ran else 0:.0f} s, all "
            f"{np.median(total) if total else 0:.0f} s; {sum(total) / 60:.0f} min in all."
        )
    both = {}
    for r in rows:
        if measured(r):
            both.setdefault((r["system"], r["n"]), {})[method_of(r)] = r["drift_error_attractor"]
    pairs = [v for v in both.values() if "adam" in v and "lstsq" in v]
    if pairs:
        ratio = [v["adam"] / v["lstsq"] for v in pairs]
        lines.append(
            f"- same system and n with both: lstsq's attractor drift error is "
            f"{np.median(ratio):.0f}x smaller than Adam's (median of {len(pairs)}; range "
            f"{min(ratio):.1f}x to {max(ratio):.0f}x)."
        )
    lines.append(hardness(board))
    return "\n".join(lines) + "\n\n"


def hardness(board: list[dict]) -> str:
    """What goes with a hard flow: rank correlations of the best run's log drift error."""
    ok = [e["row"] for e in board if measured(e["row"])]
    if len(ok) < 5:
        return ""
    from scipy.stats import spearmanr

    err = [r["drift_error_attractor"] for r in ok]
    lam = [exponents(r)[0] for r in ok]
    lam = [v if v is not None and math.isfinite(v) else 0.0 for v in lam]
    parts = []
    for label, x in [("dimension", [r["dim"] for r in ok]),
                     ("box range (largest / smallest half-width)", [r["box_ratio"] for r in ok]),
                     ("target's exponent per period", lam)]:  # fmt: skip
        rho = spearmanr(x, err).statistic
        parts.append(f"{label} {rho:+.2f}")
    return (
        f"- rank correlation of the best run's attractor drift error with: {', '.join(parts)} "
        f"({len(ok)} flows that trained)."
    )


def plot(rows: list[dict], path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ok = [r for r in rows if measured(r)]
    lams = [r.get("lyapunov_target") or 0.0 for r in ok]
    norm = plt.Normalize(0, max([*lams, 1e-3]))
    cmap = plt.get_cmap("viridis")
    for name in sorted({r["system"] for r in ok}):
        mine = sorted((r for r in ok if r["system"] == name), key=lambda r: r["n"])
        lam = np.mean([r.get("lyapunov_target") or 0.0 for r in mine])
        ax.plot([r["n"] for r in mine], [100 * r["drift_error_attractor"] for r in mine],
                "o-", color=cmap(norm(lam)), ms=3, lw=0.8, alpha=0.8)  # fmt: skip
    ax.axhline(100 * THRESHOLD, color="k", ls="--", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="neurons n", ylabel="drift error on attractor (%)",
           title="dysts zoo: drift error against network size")  # fmt: skip
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label="target's exponent per period")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_leaderboard(cache: Path) -> None:
    """The leaderboard from every method's JSONs in ``cache`` (Adam's) and its subfolders."""
    files = sorted(cache.glob("*.json")) + sorted(cache.glob("*/*.json"))
    rows = [json.loads(p.read_text()) for p in files]
    for r in rows:
        r["method"] = method_of(r)
    if not rows:
        return
    board, table = leaderboard(rows)
    data = {
        **stamp(),
        "rows": rows,
        "leaderboard": [
            {k: v for k, v in e.items() if k != "row"} | {"n": e["row"]["n"]} for e in board
        ],
    }
    write_results("zoo", data, summary(rows, board) + table, lambda p: plot(rows, p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=None, help="dysts names (all flows)")
    parser.add_argument("--neurons", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--steps", type=int, default=ddm.TrainConfig().steps)
    parser.add_argument("--method", default="lstsq", choices=("lstsq", "adam", "lstsq+adam"),
                        help="drift matching (TrainConfig.method)")  # fmt: skip
    parser.add_argument("--fit-points", default="mixture", choices=("mixture", "attractor"),
                        help="mixture: TrainConfig's (half attractor, half box); attractor: "
                        "attractor_fraction=1")  # fmt: skip
    parser.add_argument("--remedy", type=int, default=0, help="remedy rounds (0: off)")
    parser.add_argument("--no-census", action="store_true")
    parser.add_argument("--null-pairs", type=int, default=1, help="of the fidelity report")
    parser.add_argument("--cache", type=Path, default=RESULTS / "zoo", help="one JSON a run")
    parser.add_argument("--keep", action="store_true", help="keep each network under --out")
    parser.add_argument("--out", type=Path, default=Path("zoo-runs"))
    parser.add_argument("--redo", action="store_true", help="rerun what the cache holds")
    parser.add_argument("--table", action="store_true", help="only rebuild the leaderboard")
    args = parser.parse_args()
    config = replace(
        ddm.TrainConfig(), steps=args.steps, remedy_rounds=args.remedy, method=args.method
    )
    if args.fit_points == "attractor":
        config = replace(config, attractor_fraction=1.0)
    cache = method_cache(args.cache, method_of(asdict(config)))
    cache.mkdir(parents=True, exist_ok=True)
    systems = args.systems or ddm.targets.dysts_systems()
    for name in [] if args.table else systems:
        for n in args.neurons:
            file = cache / f"{name}-{n}.json"
            if file.exists() and not args.redo:
                continue
            start = time.perf_counter()
            keep = args.out if args.keep else None
            row = run_one(name, n, config, not args.no_census, keep, args.null_pairs)
            row["total_s"] = time.perf_counter() - start
            ddm.io.atomic_write_json(file, row)
            shown = row.get("reason") or f"{100 * row['drift_error_attractor']:.3f}%"
            print(f"{name}-{n}: {row['status']} {shown} ({row['total_s']:.0f} s)", flush=True)
    write_leaderboard(args.cache)


if __name__ == "__main__":
    main()
