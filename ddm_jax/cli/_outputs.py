"""``ddm-jax simulate | evaluate | moments | export | info``: what a trained run produces."""

from pathlib import Path
from typing import Annotated

import typer

import ddm_jax as ddm

from ._common import RunArg, errors


def simulate(
    run: RunArg,
    trajectories: Annotated[int, typer.Option(help="Ensemble size.")] = 16,
    time_: Annotated[float, typer.Option("--time", help="Simulated time units.")] = 20.0,
    dt: Annotated[float, typer.Option(help="Fixed time step.")] = 1e-3,
    save_dt: Annotated[float, typer.Option(help="Interval between saved states.")] = 0.01,
    solver: Annotated[str, typer.Option(help="euler, heun, midpoint or ralston.")] = "euler",
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    weights: Annotated[Path | None, typer.Option(help="Simulate this weights.npz instead.")] = None,
):
    """Simulate the network (full n-neuron SDE) and the target side by side: simulation.npz."""
    with errors():
        out = ddm.runs.simulate_run(
            run, trajectories=trajectories, time=time_, dt=dt, save_dt=save_dt, solver=solver,
            seed=seed, weights=weights,
        )  # fmt: skip
    b, t, k = out["network"].shape
    typer.echo(
        f"simulated {b} trajectories x {time_:g} time units (dt {dt:g}, {solver}) of the "
        f"network and the target; off-subspace residual {float(out['residual']):.2e} (RMS), "
        f"{float(out['residual_max']):.2e} (max)."
    )
    typer.echo(f"wrote {Path(run) / 'simulation.npz'}")


def evaluate(
    run: RunArg,
    trajectories: Annotated[int, typer.Option(help="Ensemble size (>= 256 recommended).")] = 256,
    time_: Annotated[float, typer.Option("--time", help="Simulated time units.")] = 20.0,
    burn_in: Annotated[float, typer.Option(help="Time discarded before statistics.")] = 5.0,
    dt: Annotated[float, typer.Option(help="Euler-Maruyama step.")] = 1e-3,
    save_dt: Annotated[float, typer.Option(help="Sampling interval of the statistics.")] = 0.05,
    null_pairs: Annotated[int, typer.Option(help="Target-vs-target pairs for the null.")] = 3,
    solver: Annotated[str, typer.Option(help="Network solver.")] = "euler",
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    figures: Annotated[bool, typer.Option(help="Write figures/*.png.")] = True,
    census: Annotated[
        bool, typer.Option(help="Attractor census of the noise-free flow (not for fixed points).")
    ] = True,
):
    """Measure fidelity to the target: metrics.json, report.md and figures/."""
    with errors():
        report = ddm.runs.evaluate_run(
            run, trajectories=trajectories, time=time_, burn_in=burn_in, dt=dt,
            save_dt=save_dt, null_pairs=null_pairs, solver=solver, seed=seed, figures=figures,
            census=census,
        )  # fmt: skip
    typer.echo(report.to_markdown())
    drawn = figures and not isinstance(report, ddm.runs.DataReport)  # data runs draw none
    written = "metrics.json, report.md" + (", figures/*.png" if drawn else "")
    typer.echo(f"wrote {written} in {run}")


def moments(
    run: RunArg,
    trajectories: Annotated[int, typer.Option(help="Ensemble size.")] = 64,
    time_: Annotated[float, typer.Option("--time", help="Simulated time units.")] = 1000.0,
    burn_in: Annotated[float, typer.Option(help="Time discarded before statistics.")] = 10.0,
    dt: Annotated[float, typer.Option(help="Fixed time step.")] = 1e-3,
    save_dt: Annotated[float, typer.Option(help="Sampling interval of the statistics.")] = 0.01,
    solver: Annotated[str, typer.Option(help="euler, heun, midpoint or ralston.")] = "euler",
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
):
    """Long-run mean and covariance of network and target, in constant memory: moments.json."""
    with errors():
        out = ddm.runs.moments_run(
            run, trajectories=trajectories, time=time_, burn_in=burn_in, dt=dt,
            save_dt=save_dt, solver=solver, seed=seed,
        )  # fmt: skip
    net = out["network"]
    typer.echo(
        f"{trajectories} trajectories x {time_:g} time units ({net['count']} states each side): "
        f"mean error {100 * out['mean_error']:.2f}% of the spread, covariance error "
        f"{100 * out['cov_error']:.2f}%, off-subspace residual {net['residual']:.2e} (RMS)."
    )
    typer.echo(f"wrote {Path(run) / 'moments.json'}")


def export(
    run: RunArg,
    format_: Annotated[str, typer.Option("--format", help="Interchange format: npz.")] = "npz",
):
    """Export the trained network: weights.npz (plain NumPy arrays)."""
    with errors():
        file = ddm.runs.export_run(run, format=format_)
    typer.echo(f"wrote {file}")


def info(run: RunArg):
    """Show what a run folder holds, checking that every file in it is readable."""
    with errors():
        status = ddm.runs.run_status(run)
    for key, value in status.items():
        text = ", ".join(value) if isinstance(value, list) else value
        typer.echo(f"{key:>14}: {text}")
