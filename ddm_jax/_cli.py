"""The ``ddm-jax`` command line, a thin wrapper over the run-folder functions.

Each subcommand calls one public function (`train_run`, `simulate_run`, `evaluate_run`,
`export_run`, `run_status`), so the Python API does exactly what the shell does. Bad input
ends with a one-line ``error: ...`` on stderr and exit status 1, never a traceback; an
interrupted training (Ctrl-C or SIGTERM) keeps its last good checkpoint, says how to
resume, and exits with 130 (SIGINT) or 143 (SIGTERM).
"""

import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

import ddm_jax as ddm

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching.",
)


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler, so a kill unwinds like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _console() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=140)


def _fail(message: str, code: int = 1):
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _errors(on_interrupt=None):
    """Expected failures become one line on stderr; interrupts exit with 128 + signal."""
    try:
        yield
    except KeyboardInterrupt as err:
        code = 143 if isinstance(err, Terminated) else 130
        typer.echo(on_interrupt() if on_interrupt else "interrupted.", err=True)
        raise typer.Exit(code) from None
    except (ValueError, OSError, FloatingPointError) as err:
        _fail(str(err) or type(err).__name__)


# ---------------------------------------------------------------- systems


def _noise_text(g: np.ndarray) -> str:
    k, m = g.shape
    if k == m and np.allclose(g, g[0, 0] * np.eye(k)):
        return f"{g[0, 0]:.4g} I"
    if k == m and np.allclose(g, np.diag(np.diag(g))):
        return "diag(" + ", ".join(f"{v:.3g}" for v in np.diag(g)) + ")"
    return f"({k}x{m}) matrix"


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return str(value)


@app.command()
def systems():
    """List the registered target systems: dimension, default parameters, noise, paper size."""
    table = Table(title="registered systems (ddm-jax train SYSTEM)")
    for column in ("system", "k", "default parameters", "noise G", "paper n"):
        table.add_column(column)
    for name in ddm.SYSTEMS:
        target = ddm.make_target(name)
        params = ddm.system_defaults(name)
        noise = params.pop("noise", None)
        g = np.asarray(target.g(target.centre))
        noise_text = _noise_text(g) + ("" if target.additive else " (state-dependent)")
        if noise is None:
            noise_text += " (from temperature)"
        table.add_row(
            name, str(target.dim),
            ", ".join(f"{key}={_value_text(v)}" for key, v in params.items()),
            noise_text, str(target.paper_neurons or "-"),
        )  # fmt: skip
    console = Console() if Console().is_terminal else Console(width=140)
    console.print(table)
    console.print("or a target of your own: ddm-jax train path/to/file.py:name")


# ---------------------------------------------------------------- train


class _ProgressView:
    """Shows `TrainProgress` reports: a rich progress bar on a terminal, lines otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.reports = 0
        self.tasks: dict[str, int] = {}
        self.bar = None
        if console.is_terminal:
            self.bar = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TextColumn("rel. error {task.fields[err]}"), TimeElapsedColumn(),
                TimeRemainingColumn(), console=console,
            )  # fmt: skip

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, p: "ddm.TrainProgress"):
        self.reports += 1
        loss, err = f"{p.loss:.3e}", f"{100 * p.rel_error:.3f}%"
        if self.bar is not None:
            if p.phase not in self.tasks:
                label = "drift matching" if p.phase == "drift" else "diffusion matching"
                self.tasks[p.phase] = self.bar.add_task(label, total=p.total, loss="", err="")
            self.bar.update(self.tasks[p.phase], completed=p.step, loss=loss, err=err)
        elif p.checkpoint or p.step == p.total or self.reports == 1:
            mark = "  [checkpoint]" if p.checkpoint else ""
            typer.echo(
                f"{p.phase} step {p.step}/{p.total}  loss {loss}  rel. error {err}  "
                f"({p.elapsed:.1f} s){mark}",
                err=True,
            )


def _parse_params(items: list[str] | None, noise: float | None) -> dict | None:
    params = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name:
            _fail(f"Expected --param NAME=VALUE; got {item!r}.")
        try:
            params[name] = float(text)
        except ValueError:
            import json

            try:
                params[name] = json.loads(text)
            except ValueError:
                _fail(f"Expected a number or a JSON array for --param {name}; got {text!r}.")
    if noise is not None:
        params["noise"] = noise
    for name, value in params.items():
        try:
            finite = np.all(np.isfinite(np.asarray(value, dtype=float)))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            flag = "--noise" if name == "noise" and noise is not None else f"--param {name}"
            _fail(f"Expected a finite number for {flag}; got {value!r}.")
    return params or None


def _interrupt_message(out: Path | None, system: str) -> str:
    if out is None or not (out / "checkpoint.eqx").is_file():
        return "interrupted before the first checkpoint; start again (nothing to resume)."
    try:
        header = ddm.read_checkpoint_header(out / "checkpoint.eqx")
    except ddm.CorruptFileError as err:  # cannot happen with atomic writes, but say so
        return f"interrupted; {err}"
    return (
        f"interrupted: the last checkpoint ({header['phase']} matching, step {header['step']}) "
        f"is in {out}; continue with: ddm-jax train {system} --out {out} --resume"
    )


_DEFAULTS = ddm.TrainConfig()
Int, Float, Str = int | None, float | None, str | None  # None: not given


def _opt(text: str, name: str | None = None):
    """An option; for a `TrainConfig` field ``name`` its help shows the library's default."""
    default = (
        f" \\[default: {getattr(_DEFAULTS, name)}]" if name else ""
    )  # "\\[" is not rich markup
    return typer.Option(help=text + default)


@app.command()
def train(
    system: Annotated[str, typer.Argument(help="A registered system or path/to/file.py:name")],
    neurons: Annotated[Int, _opt("Network size \\[default: the paper's, or 64]")] = None,
    steps: Annotated[Int, _opt("Optimiser steps", "steps")] = None,
    batch: Annotated[Int, _opt("Sampled points per step", "batch")] = None,
    lr: Annotated[Float, _opt("Peak Adam learning rate", "lr")] = None,
    sampler: Annotated[Str, _opt("box, attractor or mixture", "sampler")] = None,
    noise: Annotated[Float, _opt("Target noise level (its 'noise' parameter)")] = None,
    param: Annotated[list[str] | None, _opt("Target parameter NAME=VALUE (repeatable)")] = None,
    seed: Annotated[Int, _opt("PRNG seed \\[default: 0]")] = None,
    tau: Annotated[Float, _opt("Neuron time constant \\[default: 1]")] = None,
    private_noise: Annotated[Float, _opt("Private neuron noise sigma \\[default: 0]")] = None,
    chunk: Annotated[Int, _opt("Steps per jitted call", "chunk")] = None,
    noise_steps: Annotated[Int, _opt("Diffusion-matching steps", "noise_steps")] = None,
    final_lr_fraction: Annotated[Float, _opt("Final lr / lr", "final_lr_fraction")] = None,
    attractor_fraction: Annotated[Float, _opt("Mixture share", "attractor_fraction")] = None,
    enlarge: Annotated[Float, _opt("Box enlargement of the box sampler", "enlarge")] = None,
    out: Annotated[Path | None, _opt("Run folder \\[default: runs/<system>-<neurons>]")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the run in --out")
    ] = False,
    checkpoint_every: Annotated[float, _opt("Seconds between checkpoints (0: each chunk)")] = 5.0,
):
    """Train a network by drift (and diffusion) matching, checkpointing as it goes."""
    params = _parse_params(param, noise)
    with _errors(lambda: _interrupt_message(out, system)):
        if out is None:
            out = ddm.default_run_folder(ddm.load_target(system, params), neurons)
        with _ProgressView(_console()) as view:
            result = ddm.train_run(
                system, out, neurons=neurons, params=params, seed=seed, tau=tau,
                private_noise=private_noise, resume=resume, overwrite=overwrite,
                checkpoint_every=checkpoint_every, progress=view, steps=steps, batch=batch,
                lr=lr, sampler=sampler, chunk=chunk, noise_steps=noise_steps,
                final_lr_fraction=final_lr_fraction, attractor_fraction=attractor_fraction,
                enlarge=enlarge,
            )  # fmt: skip
    if resume and view.reports == 0:
        typer.echo(f"{result.path}: training had finished; nothing left to do.")
    training = result.training
    typer.echo(
        f"trained {result.config['system']} in {result.model.n} neurons: "
        f"{training['steps']} steps in {training['train_seconds']:.1f} s, relative drift error "
        f"{100 * training['drift_error_monitor']:.3f}% on monitor points."
    )
    typer.echo(f"run folder: {result.path}   next: ddm-jax evaluate {result.path}")


# ---------------------------------------------------------------- simulate, evaluate, export


RunArg = Annotated[Path, typer.Argument(help="A run folder written by `ddm-jax train`.")]


@app.command()
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
    with _errors():
        out = ddm.simulate_run(
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


@app.command()
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
):
    """Measure fidelity to the target: metrics.json, report.md and figures/."""
    with _errors():
        report = ddm.evaluate_run(
            run, trajectories=trajectories, time=time_, burn_in=burn_in, dt=dt,
            save_dt=save_dt, null_pairs=null_pairs, solver=solver, seed=seed, figures=figures,
        )  # fmt: skip
    typer.echo(report.to_markdown())
    written = "metrics.json, report.md" + (", figures/*.png" if figures else "")
    typer.echo(f"wrote {written} in {run}")


@app.command()
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
    with _errors():
        out = ddm.moments_run(
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


@app.command()
def export(
    run: RunArg,
    format_: Annotated[str, typer.Option("--format", help="Interchange format: npz.")] = "npz",
):
    """Export the trained network: weights.npz (plain NumPy arrays, SPEC section 10)."""
    with _errors():
        file = ddm.export_run(run, format=format_)
    typer.echo(f"wrote {file}")


@app.command()
def info(run: RunArg):
    """Show what a run folder holds, checking that every file in it is readable."""
    with _errors():
        status = ddm.run_status(run)
    for key, value in status.items():
        text = ", ".join(value) if isinstance(value, list) else value
        typer.echo(f"{key:>14}: {text}")


def main():
    """Entry point of the ``ddm-jax`` console script."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    app(prog_name="ddm-jax")


if __name__ == "__main__":
    sys.exit(main())
