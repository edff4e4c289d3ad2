"""``ddm-jax memory``: switching, recall and cycling of a trained wells-family run."""

from pathlib import Path
from typing import Annotated

import typer

import ddm_jax as ddm

from ._common import RunArg, errors


def memory(
    run: RunArg,
    trials: Annotated[int, typer.Option(help="Trials per amplitude and cue strength.")] = 200,
    trajectories: Annotated[int, typer.Option(help="Trajectories of the cycling run.")] = 1000,
    time_: Annotated[float, typer.Option("--time", help="Time units of the cycling run.")] = 200.0,
    burn_in: Annotated[
        float, typer.Option(help="Time discarded before cycling statistics.")
    ] = 10.0,
    dt: Annotated[float, typer.Option(help="Euler-Maruyama step.")] = 0.005,
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    figures: Annotated[bool, typer.Option(help="Write figures/memory_*.png.")] = True,
):
    """Memory experiments, network beside target: memory.json and figures/memory_*.png."""
    with errors():
        out = ddm.runs.memory_run(
            run, trials=trials, trajectories=trajectories, time=time_, burn_in=burn_in, dt=dt,
            seed=seed, figures=figures,
        )  # fmt: skip
    for side in ("target", "network"):
        s, c = out["switching"][side], out["cycling"][side]
        typer.echo(
            f"{side:>7}: switching {s['probability'][0]:.2f} -> {s['probability'][-1]:.2f} "
            f"(pulse {s['x'][0]:g} -> {s['x'][-1]:g}); {c['hop_rate']:.3f} hops per unit time, "
            f"preferred-direction fraction {c['fraction']:.2f}"
        )
    for side in ("target", "network"):
        c = out["cycling"][side]
        half = ddm.analysis.quantile95(trajectories) * c["epr_se"]
        line = f"{side:>7}: entropy production {c['epr']:.4g} +- {half:.2g} (dt {dt:g})"
        if c.get("epr_exact") is not None:
            line += (
                f"; the target's exact value {c['epr_exact']:.4g}: the estimate is "
                f"{c['epr_bias']:+.3g} off, the O(dt) bias of Euler-Maruyama (smaller --dt "
                "shrinks it)"
            )
        typer.echo(line)
    written = "memory.json" + (", figures/memory_*.png" if figures else "")
    typer.echo(f"wrote {written} in {Path(run)}")
