"""``ddm-jax train``: progress on the terminal, resumable on interrupt."""

import json
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

import ddm_jax as ddm

from ._common import console, errors, fail


class _ProgressView:
    """Shows `TrainProgress` reports: a rich progress bar on a terminal, lines otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.reports = 0
        self.censuses = 0  # census lines shown as they were made
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

    def __call__(self, p: "ddm.runs.TrainProgress"):
        self.reports += 1
        if p.census is not None:  # the remedy's census: one line each, as it is made
            self.censuses += 1
            line = _census_line(p.census)
            self.console.print(line) if self.bar is not None else typer.echo(line, err=True)
            return
        loss = f"{p.loss:.3e}"
        err = f"{100 * p.rel_error:.3f}%" if np.isfinite(p.rel_error) else "n/a (data)"
        if self.bar is not None:
            if p.phase not in self.tasks:
                label = {"drift": "drift matching", "remedy": "attractor remedy"}.get(
                    p.phase, "diffusion matching"
                )
                self.tasks[p.phase] = self.bar.add_task(label, total=p.total, loss="", err="")
            self.bar.update(self.tasks[p.phase], completed=p.step, loss=loss, err=err)
        elif p.checkpoint or p.step == p.total or self.reports == 1:
            mark = "  [checkpoint]" if p.checkpoint else ""
            typer.echo(
                f"{p.phase} step {p.step}/{p.total}  loss {loss}  rel. error {err}  "
                f"({p.elapsed:.1f} s){mark}",
                err=True,
            )


def _census_line(r: dict) -> str:
    """One census summary of the remedy (`refine_attractors`) as a line."""
    lam = [r[f"census_lyapunov_{w}"] for w in ("network", "target")]
    when = f"after {r.get('stage', 'drift matching' if r['round'] == 0 else 'the remedy')}"
    exponent = f", Lyapunov exponent {lam[0]:.3f} against {lam[1]:.3f}" if None not in lam else ""
    return (
        f"census {when}: {100 * r['census_mismatch']:.0f}% of starts in another class than "
        f"the target's{exponent}."
    )


def _remedy_rounds(text: str | None) -> int | str | None:
    """``--remedy-rounds``: ``auto`` or a count (TrainConfig checks the range)."""
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        fail(f"Expected --remedy-rounds auto or an integer >= 0; got {text!r}.")


def _parse_params(items: list[str] | None, noise: float | None) -> dict | None:
    params = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name:
            fail(f"Expected --param NAME=VALUE; got {item!r}.")
        try:
            params[name] = float(text)
        except ValueError:
            try:
                params[name] = json.loads(text)
            except ValueError:
                fail(f"Expected a number or a JSON array for --param {name}; got {text!r}.")
    if noise is not None:
        params["noise"] = noise
    for name, value in params.items():
        try:
            finite = np.all(np.isfinite(np.asarray(value, dtype=float)))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            flag = "--noise" if name == "noise" and noise is not None else f"--param {name}"
            fail(f"Expected a finite number for {flag}; got {value!r}.")
    return params or None


def _interrupt_message(out: Path | None, system: str) -> str:
    if out is None or not (out / "checkpoint.eqx").is_file():
        return "interrupted before the first checkpoint; start again (nothing to resume)."
    try:
        header = ddm.runs.read_checkpoint_header(out / "checkpoint.eqx")
    except ddm.io.CorruptFileError as err:  # cannot happen with atomic writes, but say so
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


def train(
    system: Annotated[
        str,
        typer.Argument(
            help="A registered system, dysts:Name, path/to/file.py:name, or trajectories.npz"
        ),
    ],
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
    remedy_rounds: Annotated[
        Str,
        _opt(
            "Census after training and remedy rounds: auto, a number, or 0 (off)", "remedy_rounds"
        ),
    ] = None,
    remedy_steps: Annotated[Int, _opt("Steps per remedy round", "remedy_steps")] = None,
    method: Annotated[
        Str, _opt("Drift matching: adam, lstsq (closed form) or lstsq+adam", "method")
    ] = None,
    ridge: Annotated[
        Float, _opt("Closed-form ridge (relative) \\[default: chosen on held-out points]")
    ] = None,
    lstsq_points: Annotated[Int, _opt("Closed-form fit points", "lstsq_points")] = None,
    weight_decay: Annotated[Float, _opt("Adam weight decay of W_s", "weight_decay")] = None,
    pool_dt: Annotated[
        Float, _opt("Euler step of the attractor pool's target runs", "pool_dt")
    ] = None,
    out: Annotated[Path | None, _opt("Run folder \\[default: runs/<system>-<neurons>]")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the run in --out")
    ] = False,
    checkpoint_every: Annotated[float, _opt("Seconds between checkpoints (0: each chunk)")] = 5.0,
    dt: Annotated[Float, _opt("Sampling interval of a .npz/.npy trajectory file")] = None,
    latent_dim: Annotated[
        Int, _opt("Latents of a recording of neurons \\[default: chosen from the data]")
    ] = None,
    projection: Annotated[
        Str, _opt("Projection of a recording: lag1, or fa (factor analysis) \\[default: lag1]")
    ] = None,
):
    """Train a network by drift (and diffusion) matching, checkpointing as it goes."""
    params = _parse_params(param, noise)
    with errors(lambda: _interrupt_message(out, system)):
        data_file = system.endswith((".npz", ".npy", ".nwb"))
        if out is None and data_file:
            out = Path("runs") / f"{Path(system).stem}-{64 if neurons is None else neurons}"
        elif out is None:
            out = ddm.runs.default_run_folder(ddm.runs.load_target(system, params), neurons)
        settings = dict(
            steps=steps, batch=batch, lr=lr, sampler=sampler, chunk=chunk,
            noise_steps=noise_steps, final_lr_fraction=final_lr_fraction,
            attractor_fraction=attractor_fraction, enlarge=enlarge,
            remedy_rounds=_remedy_rounds(remedy_rounds), remedy_steps=remedy_steps,
            method=method, ridge=ridge,
            lstsq_points=lstsq_points, weight_decay=weight_decay, pool_dt=pool_dt,
        )  # fmt: skip
        if data_file and (resume or params or private_noise):
            fail(
                "Expected no --resume, --param/--noise or --private-noise with a trajectory "
                "file; a data run learns its target and trains in one pass."
            )
        if not data_file and (dt is not None or latent_dim is not None or projection is not None):
            fail(
                "Expected --dt/--latent-dim/--projection only with a .npz/.npy/.nwb file; got "
                f"{system!r}."
            )
        with _ProgressView(console()) as view:
            if data_file:  # recorded trajectories: learn the SDE, then embed it
                result = ddm.runs.train_data_run(
                    system, out, dt=dt, neurons=neurons, seed=seed, tau=tau,
                    overwrite=overwrite, progress=view, latent_dim=latent_dim,
                    projection=projection, **settings,
                )  # fmt: skip
            else:
                result = ddm.runs.train_run(
                    system, out, neurons=neurons, params=params, seed=seed, tau=tau,
                    private_noise=private_noise, resume=resume, overwrite=overwrite,
                    checkpoint_every=checkpoint_every, progress=view, **settings,
                )  # fmt: skip
    if resume and view.reports == 0:
        typer.echo(f"{result.path}: training had finished; nothing left to do.")
    training = result.training
    if training.get("drift_error_monitor") is None:  # learned from data: no true drift
        D = np.array2string(np.asarray(training["D"]), precision=4, separator=", ")
        typer.echo(
            f"learned {result.config['system']} and embedded it in {result.model.n} neurons: "
            f"{training['steps']} steps in {training['train_seconds']:.1f} s; D = {D}."
        )
        if "recording" in training:  # N recorded neurons -> k latents (latents.npz)
            r = training["recording"]
            typer.echo(
                f"recording of {r['neurons_recorded']} neurons: k = {r['latent_dim']} latents "
                f"({r['latent_dim_detected']} above the noise floor), measurement noise s "
                f"{r['noise_sd_median']:.3g} (median), corrected: {r['noise_corrected']}; "
                f"projection {r.get('projection', 'lag1')}."
            )
        typer.echo(f"run folder: {result.path}   next: ddm-jax evaluate {result.path}")
        return
    how = training.get("method", "adam")
    what = "the closed form (lstsq)" if how == "lstsq" else f"{training['steps']} steps ({how})"
    typer.echo(
        f"trained {result.config['system']} in {result.model.n} neurons: "
        f"{what} in {training['train_seconds']:.1f} s; on monitor points, "
        f"relative drift error {100 * training['drift_error_monitor']:.3f}%, diffusion error "
        f"{100 * training['diffusion_error_monitor']:.3f}%."
    )
    for r in training.get("remedy", [])[view.censuses :]:  # those not shown as they came
        typer.echo(_census_line(r))
    outcome = training.get("census")
    if outcome is not None:
        typer.echo(f"attractor census: {ddm.runs.census_sentence(outcome)}")
    typer.echo(f"run folder: {result.path}   next: ddm-jax evaluate {result.path}")
