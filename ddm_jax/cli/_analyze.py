"""``ddm-jax analyze``: Hopfield energy, entropy production and the recovered subspace."""

from typing import Annotated

import typer

import ddm_jax as ddm

from ._common import RunArg, errors


def analyze(
    run: RunArg,
    trajectories: Annotated[int, typer.Option(help="Ensemble size of the EPR estimates.")] = 128,
    time_: Annotated[float, typer.Option("--time", help="Simulated time units.")] = 20.0,
    burn_in: Annotated[
        float, typer.Option(help="Target time from attractor points to the start states.")
    ] = 10.0,
    dt: Annotated[float, typer.Option(help="Euler-Maruyama step (every step is saved).")] = 1e-3,
    cells: Annotated[int, typer.Option(help="Cells of the Helmholtz-Hodge split.")] = 100,
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    figures: Annotated[bool, typer.Option(help="Write figures/*.png.")] = True,
):
    """Energy, entropy production and subspace recovery: analysis.json and figures/."""
    with errors():
        out = ddm.runs.analyze_run(
            run, trajectories=trajectories, time=time_, burn_in=burn_in, dt=dt, cells=cells,
            seed=seed, figures=figures,
        )  # fmt: skip
    epr = out["entropy_production"]
    for who in ("target", "network"):
        e = epr[who]["samples"]
        typer.echo(f"EPR {who}: {e['value']:.4g}, 95% [{e['low']:.4g}, {e['high']:.4g}] (samples), "
                   f"{epr[who]['trajectories']['value']:.4g} (trajectories)")  # fmt: skip
    sub, hop = out["subspace"], out["hopfield"]
    typer.echo(
        f"explained variance (k+1)/1: {sub['gap']:.2e}; recovered trajectory error "
        f"{sub['recovery_error_readout']:.2e}; Hopfield energy rise: symmetric "
        f"{hop['symmetric_max_rise']:.2e}, full {hop['full_max_rise']:.2e}; curl fraction "
        f"{out['hodge']['curl_fraction']:.3f}"
    )
    typer.echo(f"wrote analysis.json{', figures/*.png' if figures else ''} in {run}")
