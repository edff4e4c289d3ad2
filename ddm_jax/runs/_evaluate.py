"""``ddm-jax evaluate``: the fidelity report of a run, with its figures.

`evaluate_run` writes ``metrics.json``, ``report.md`` and ``figures/*.png``; everything is
computed and drawn before the first file is written.
"""

import os

import jax.random as jr
import numpy as np

from ..fidelity import (
    FidelityReport,
    attractor_census,
    census_applies,
    fidelity_report,
    stationary_samples,
)
from ..io import atomic_write_json, atomic_write_text
from ..plotting import (
    plot_census,
    plot_drift_field,
    plot_losses,
    plot_marginals,
    plot_neurons,
    plot_residual,
    plot_trajectories,
    save_figure,
)
from ._census_report import census_sentence
from ._evaluate_data import DataReport, evaluate_data_run, is_data_run
from ._folder import FIGURES, check_count, check_simulation
from ._loading import TrainedRun, load_run
from ._lock import holds_run_folder
from ._simulate import residual_trace, side_by_side


def _clean_json(metrics: dict) -> dict:
    """Floats as they are; non-finite values as None (strict JSON has no NaN)."""
    return {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}


@holds_run_folder
def evaluate_run(
    run: str | os.PathLike,
    *,
    trajectories: int = 256,
    time: float = 20.0,
    burn_in: float = 5.0,
    dt: float = 1e-3,
    save_dt: float = 0.05,
    null_pairs: int = 3,
    solver: str = "euler",
    seed: int = 0,
    figures: bool = True,
    display_trajectories: int = 3,
    census: bool = True,
) -> FidelityReport | DataReport:
    """Measure a trained run against its target; write ``metrics.json``, ``report.md``, figures.

    Runs `fidelity_report` with these settings, then simulates
    ``display_trajectories`` trajectories from stationary target states for the figures,
    keeping the network's neuron states (``min(time, 20)`` time units saved every
    ``max(dt, 0.01)``). Everything is seeded, so evaluating again reproduces
    ``metrics.json`` and ``report.md`` exactly on the same machine.

    Figures (``figures/*.png``): ``latent`` (target and network trajectories side by side),
    ``neurons`` (a few neuron traces), ``drift_field`` (target vs network drift on a slice),
    ``loss`` (training loss), ``marginals`` (stationary histograms) and ``residual``
    (off-subspace residual over time).

    With ``census`` (the default), targets whose noise-free orbits are not all fixed points
    (`census_applies`) also get the attractor census (`attractor_census`, 32 starts): its
    ``census_*`` metrics join ``metrics.json`` and ``report.md``, and the figure ``census``
    shows the exponent per start, target against network.

    A run trained on recorded trajectories (`train_data_run`) has no true SDE: it is compared
    with its held-out data instead (`evaluate_data_run`: sliced Wasserstein, moments, drift
    consistency), using only ``trajectories``, ``dt`` and ``seed``, and returns a `DataReport`.
    """
    loaded = load_run(run)
    if is_data_run(loaded.config):  # no true SDE: compare with the held-out recordings
        return evaluate_data_run(loaded, trajectories=trajectories, dt=dt, seed=seed)
    path, model, target = loaded.path, loaded.model, loaded.target
    check_simulation(target.additive, solver=solver, time=time, dt=dt, save_dt=save_dt,
                     burn_in=burn_in)  # fmt: skip
    check_count("trajectories", trajectories, 2)
    check_count("null_pairs", null_pairs, 1)
    check_count("display_trajectories", display_trajectories, 1)
    k_report, k_display = jr.split(jr.key(seed))
    pool_dt = loaded.pool_dt  # held-out points and census starts at the training's step
    report = fidelity_report(
        model, target, key=k_report, trajectories=trajectories, t1=time, burn_in=burn_in,
        dt=dt, save_dt=save_dt, null_pairs=null_pairs, solver=solver, pool_dt=pool_dt,
    )  # fmt: skip
    found = None
    k_census = jr.fold_in(jr.key(seed), 15)  # leaves the keys of the report as they were
    if census and census_applies(target, key=jr.fold_in(k_census, 0), pool_dt=pool_dt):
        found = attractor_census(model, target, key=jr.fold_in(k_census, 1), pool_dt=pool_dt)
        report.metrics.update(found.metrics)
    figs = {}
    if figures:
        figs = _figures(loaded, report, key=k_display, dt=dt, t1=min(time, 20.0), solver=solver,
                        trajectories=min(display_trajectories, trajectories))  # fmt: skip
        if found is not None:
            figs["census"] = plot_census(found, system=target.name,
                                         title=f"{target.name}, {model.n} neurons")  # fmt: skip
    settings = {**report.settings, "burn_in": burn_in, "seed": seed}
    training = loaded.training
    train = loaded.config["settings"]["train"]
    lines = [
        f"# {loaded.config['system']} in {model.n} neurons",
        "",
        f"Trained by {_how_trained(train)}, seed {loaded.config['settings']['seed']}"
        + (f", {training['train_seconds']:.1f} s" if "train_seconds" in training else "")
        + f". Evaluated with seed {seed}.",
        "",
        *_census_lines(training.get("census")),
        report.to_markdown(),
    ]
    lines += [f"![{name}.png](figures/{name}.png)" for name in figs]
    atomic_write_json(path / "metrics.json", {
        "system": loaded.config["system"], "neurons": model.n,
        "settings": settings, "metrics": _clean_json(report.metrics),
        "training_census": training.get("census"),
    })  # fmt: skip
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
    for name, fig in figs.items():
        save_figure(fig, path / "figures" / f"{name}.png")
    return report


def _how_trained(train: dict) -> str:
    """The drift fit in words, from the run's training settings."""
    adam = (f"{train['steps']} Adam steps, batch {train['batch']}, lr {train['lr']}, "
            f"{train['sampler']} sampling")  # fmt: skip
    method = train.get("method", "adam")
    if method == "adam":
        return f"drift matching: {adam}"
    closed = f"closed-form drift matching ({train['lstsq_points']} fit points)"
    return closed if method == "lstsq" else f"{closed}, then {adam}"


def _census_lines(outcome: dict | None) -> list[str]:
    """The training census (`census_outcome` in ``training.json``) as a report paragraph."""
    if outcome is None:
        return []
    return [f"Attractor census after training: {census_sentence(outcome)}", ""]


def _figures(loaded: TrainedRun, report: FidelityReport, *, key, dt, t1, solver, trajectories):
    """The report's figures, drawn (not written), in the order of `FIGURES`."""
    model, target = loaded.model, loaded.target
    stationary = report.target_run.ts >= report.burn_in
    first = int(np.argmax(stationary))
    z0s = report.target_run.zs[:trajectories, first]
    net, ref, few = side_by_side(
        model, target, z0s, key=key, t1=t1, dt=dt, save_dt=max(dt, 0.01), solver=solver,
        neuron_trajectories=min(trajectories, 2),
    )  # fmt: skip
    label = f"{target.name}, {model.n} neurons"
    target_samples = np.asarray(stationary_samples(report.target_run, report.burn_in))
    network_samples = np.asarray(stationary_samples(report.network_run, report.burn_in))
    figs = {
        "latent": plot_trajectories(
            np.asarray(ref.zs), np.asarray(net.zs), system=target.name, title=label
        ),
        "neurons": plot_neurons(net.ts, np.asarray(few.xs[0, :, :6]), title=label),
        "drift_field": plot_drift_field(
            target, model, at=target_samples.mean(0), samples=target_samples
        ),
        "loss": plot_losses(loaded.losses, loaded.noise_losses, title=label),
        "marginals": plot_marginals(
            target_samples, network_samples, system=target.name, title=label
        ),
        "residual": plot_residual(
            few.ts,
            residual_trace(model, few.xs),
            dt=dt,
            dtype=str(model.Gamma.dtype),
            title=label,
        ),
    }
    return {name: figs[name] for name in FIGURES if name in figs}
