"""What a trained run folder produces: simulations, fidelity reports with figures, exports.

`simulate_run` writes ``simulation.npz``, `evaluate_run` writes ``metrics.json``,
``report.md`` and ``figures/*.png``, `export_run` writes ``weights.npz``; each reads the
finished run with `load_run`.
"""

import io
import os
from pathlib import Path

import jax.random as jr
import numpy as np

from ._fidelity import (
    FidelityReport,
    fidelity_report,
    relative_moment_errors,
    stationary_samples,
)
from ._io import (
    CorruptFileError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    export_weights,
    load_weights,
    model_from_weights,
)
from ._matching import attractor_points
from ._network import LowRankRNN
from ._plotting import (
    plot_drift_field,
    plot_losses,
    plot_marginals,
    plot_neurons,
    plot_residual,
    plot_trajectories,
    save_figure,
)
from ._runs import FIGURES, RunError, TrainedRun, _finite, load_run
from ._simulate import simulate_network, simulate_target, stationary_moments

EXPORT_FORMATS = ("npz",)


# ---------------------------------------------------------------- simulation


def residual_trace(model: LowRankRNN, xs) -> np.ndarray:
    """Off-subspace residual of each saved neuron state, ``(B, T)``.

    ``||(I - P)(x_t - b)|| / sqrt(mean_t ||x_t - b||^2)`` per trajectory, with P the
    orthogonal projector onto span(Gamma) (float64 NumPy, so it adds no rounding of its own).
    """
    d = np.asarray(xs, dtype=float) - np.asarray(model.b, dtype=float)
    q, _ = np.linalg.qr(np.asarray(model.Gamma, dtype=float))
    perp = np.linalg.norm(d - (d @ q) @ q.T, axis=-1)
    return perp / np.sqrt(np.mean(np.sum(d**2, axis=-1), axis=-1, keepdims=True))


def _side_by_side(model, target, z0s, *, key, t1, dt, save_dt, solver, neuron_trajectories):
    k_net, k_tgt, k_neu = jr.split(key, 3)
    sim = dict(t1=t1, dt=dt, save_dt=save_dt)
    net = simulate_network(model, z0s, key=k_net, solver=solver, **sim)
    ref = simulate_target(target, z0s, key=k_tgt, solver=solver, **sim)
    few = simulate_network(
        model, z0s[:neuron_trajectories], key=k_neu, solver=solver, keep_neurons=True, **sim
    )
    return net, ref, few


def simulate_run(
    run: str | os.PathLike,
    *,
    trajectories: int = 16,
    time: float = 20.0,
    dt: float = 1e-3,
    save_dt: float = 0.01,
    solver: str = "euler",
    seed: int = 0,
    neuron_trajectories: int = 2,
    neurons_kept: int = 8,
    weights: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Simulate the trained network (the full n-neuron SDE) and the target side by side.

    Both start from the same ``trajectories`` states of the target's stationary regime
    (`attractor_points`). A further ``neuron_trajectories`` network trajectories keep their
    neuron states, of which the first ``neurons_kept`` neurons and the off-subspace residual
    over time are saved. Writes ``simulation.npz`` in the run folder with ``ts (T,)``,
    ``z0 (B, k)``, ``target (B, T, k)``, ``network (B, T, k)`` (latent read-out in target
    coordinates), ``neurons (b, T, neurons_kept)``, ``neuron_ids``, ``residual_trace (b, T)``
    and the scalars ``residual``, ``residual_max`` of the whole ensemble.

    Args:
        run: the run folder.
        trajectories: ensemble size B.
        time: simulated time units.
        dt: fixed step (Euler-Maruyama by default).
        save_dt: interval between saved states.
        solver: one of `SOLVERS`.
        seed: PRNG seed of the initial states and the noise.
        neuron_trajectories: trajectories whose neuron states are kept.
        neurons_kept: neurons saved per kept trajectory.
        weights: simulate the network of this ``weights.npz`` instead of ``model.eqx``.

    Raises:
        SimulationDiverged: naming the time and trajectory where a state became non-finite.
    """
    loaded = load_run(run)
    model = loaded.model
    if weights is not None:
        model = model_from_weights(load_weights(weights))
        if model.k != loaded.target.dim:
            raise RunError(
                f"{weights}: a network with k = {model.k} latent dimensions cannot simulate "
                f"target {loaded.target.name!r} (k = {loaded.target.dim})."
            )
    for name, value in {"time": time, "dt": dt, "save_dt": save_dt}.items():
        _finite(name, value)
    if trajectories < 1 or neuron_trajectories < 0 or neurons_kept < 0:
        raise ValueError(
            f"Expected trajectories >= 1 and non-negative neuron counts; got {trajectories}, "
            f"{neuron_trajectories}, {neurons_kept}."
        )
    k_start, k_sim = jr.split(jr.key(seed))
    z0s = attractor_points(loaded.target, key=k_start, num=trajectories)
    net, ref, few = _side_by_side(
        model, loaded.target, z0s, key=k_sim, t1=time, dt=dt, save_dt=save_dt, solver=solver,
        neuron_trajectories=min(neuron_trajectories, trajectories) or 1,
    )  # fmt: skip
    keep = min(neurons_kept, model.n)
    out = {
        "ts": np.asarray(net.ts), "z0": np.asarray(z0s),
        "target": np.asarray(ref.zs), "network": np.asarray(net.zs),
        "neurons": np.asarray(few.xs[..., :keep])[:neuron_trajectories],
        "neuron_ids": np.arange(keep),
        "residual_trace": residual_trace(model, few.xs)[:neuron_trajectories],
        "residual": np.asarray(net.residual), "residual_max": np.asarray(net.residual_max),
    }  # fmt: skip
    buf = io.BytesIO()
    np.savez(buf, **out)
    atomic_write_bytes(Path(run) / "simulation.npz", buf.getvalue())
    return out


# ---------------------------------------------------------------- evaluation and export


def _clean_json(metrics: dict) -> dict:
    """Floats as they are; non-finite values as None (strict JSON has no NaN)."""
    return {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}


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
) -> FidelityReport:
    """Measure a trained run against its target; write ``metrics.json``, ``report.md``, figures.

    Runs `fidelity_report` with these settings (SPEC section 9), then simulates
    ``display_trajectories`` trajectories from stationary target states for the figures,
    keeping the network's neuron states (``min(time, 20)`` time units saved every
    ``max(dt, 0.01)``). Everything is seeded, so evaluating again reproduces
    ``metrics.json`` and ``report.md`` exactly on the same machine.

    Figures (``figures/*.png``): ``latent`` (target and network trajectories side by side),
    ``neurons`` (a few neuron traces), ``drift_field`` (target vs network drift on a slice),
    ``loss`` (training loss), ``marginals`` (stationary histograms) and ``residual``
    (off-subspace residual over time).
    """
    loaded = load_run(run)
    path, model, target = loaded.path, loaded.model, loaded.target
    for name, value in {"time": time, "burn_in": burn_in, "dt": dt, "save_dt": save_dt}.items():
        _finite(name, value)
    if trajectories < 2 or null_pairs < 1:
        raise ValueError(
            f"Expected trajectories >= 2 and null_pairs >= 1; got {trajectories} and {null_pairs}."
        )
    k_report, k_display = jr.split(jr.key(seed))
    report = fidelity_report(
        model, target, key=k_report, trajectories=trajectories, t1=time, burn_in=burn_in,
        dt=dt, save_dt=save_dt, null_pairs=null_pairs, solver=solver,
    )  # fmt: skip
    settings = {**report.settings, "burn_in": burn_in, "seed": seed}
    atomic_write_json(path / "metrics.json", {
        "system": loaded.config["system"], "neurons": model.n,
        "settings": settings, "metrics": _clean_json(report.metrics),
    })  # fmt: skip
    names = [f"{name}.png" for name in FIGURES] if figures else []
    training = loaded.training
    train = loaded.config["settings"]["train"]
    lines = [
        f"# {loaded.config['system']} in {model.n} neurons",
        "",
        f"Trained by drift matching: {train['steps']} steps, batch {train['batch']}, "
        f"lr {train['lr']}, {train['sampler']} sampling, seed {loaded.config['settings']['seed']}"
        + (f", {training['train_seconds']:.1f} s" if "train_seconds" in training else "")
        + f". Evaluated with seed {seed}.",
        "",
        report.to_markdown(),
    ]
    lines += [f"![{name}](figures/{name})" for name in names]
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
    if figures:
        _figures(loaded, report, key=k_display, dt=dt, t1=min(time, 20.0),
                 solver=solver, trajectories=display_trajectories)  # fmt: skip
    return report


def _figures(loaded: TrainedRun, report: FidelityReport, *, key, dt, t1, solver, trajectories):
    path, model, target = loaded.path, loaded.model, loaded.target
    stationary = report.target_run.ts >= report.burn_in
    first = int(np.argmax(stationary))
    z0s = report.target_run.zs[:trajectories, first]
    net, ref, few = _side_by_side(
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
    for name, fig in figs.items():
        save_figure(fig, path / "figures" / f"{name}.png")


def moments_run(
    run: str | os.PathLike,
    *,
    trajectories: int = 64,
    time: float = 1000.0,
    burn_in: float = 10.0,
    dt: float = 1e-3,
    save_dt: float = 0.01,
    solver: str = "euler",
    seed: int = 0,
) -> dict:
    """Long-run mean and covariance of the network and of the target, in constant memory.

    Both ensembles start from the same ``trajectories`` states of the target's stationary
    regime and are reduced while simulating (`stationary_moments`), so ``time`` can be far
    longer than `simulate_run` could store. Writes ``moments.json`` in the run folder: the
    settings, each side's ``mean``, ``cov``, ``count`` (and the network's residuals), the
    mean error relative to the target's spread ``sqrt(tr Cov)`` and the relative Frobenius
    covariance error, as in the fidelity report (unfolded).

    Returns:
        What ``moments.json`` holds.
    """
    loaded = load_run(run)
    for name, value in {"time": time, "burn_in": burn_in, "dt": dt, "save_dt": save_dt}.items():
        _finite(name, value)
    if trajectories < 1:
        raise ValueError(f"Expected trajectories >= 1; got {trajectories}.")
    k_start, k_net, k_tgt = jr.split(jr.key(seed), 3)
    z0s = attractor_points(loaded.target, key=k_start, num=trajectories)
    grid = dict(t1=time, burn_in=burn_in, dt=dt, save_dt=save_dt, solver=solver)
    net = stationary_moments(loaded.model, z0s, key=k_net, **grid)
    ref = stationary_moments(loaded.target, z0s, key=k_tgt, **grid)
    as_dict = lambda m: {f: np.asarray(v).tolist() for f, v in m._asdict().items() if v is not None}
    spread = np.sqrt(np.trace(ref.cov))
    errors = relative_moment_errors(net.mean, net.cov, ref.mean, ref.cov, spread)
    out = {
        "settings": {"trajectories": trajectories, "seed": seed, **grid},
        "network": as_dict(net),
        "target": as_dict(ref),
        "mean_error": errors[0],
        "cov_error": errors[1],
    }
    atomic_write_json(Path(run) / "moments.json", out)
    return out


def export_run(run: str | os.PathLike, format: str = "npz") -> Path:
    """Write the run's network in an interchange format; returns the file written.

    ``"npz"``: ``weights.npz`` (SPEC section 10), read back and checked after writing.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"Expected format in {EXPORT_FORMATS}; got {format!r}.")
    loaded = load_run(run)
    file = loaded.path / "weights.npz"
    export_weights(file, loaded.model, loaded.target.name)
    back = load_weights(file)
    if not np.array_equal(back["Gamma"], np.asarray(loaded.model.Gamma)):
        raise CorruptFileError(f"{file}: reading it back does not give the model's weights.")
    return file
