"""``ddm-jax simulate`` and ``ddm-jax moments``: the network and its target side by side.

`simulate_run` writes ``simulation.npz`` (trajectories, a few neuron traces, the off-subspace
residual); `moments_run` writes ``moments.json`` (long-run mean and covariance, reduced while
simulating). Both check every setting before simulating and write only at the end.
"""

import io
import os
from pathlib import Path

import jax.random as jr
import numpy as np

from ..fidelity import relative_moment_errors
from ..io import atomic_write_bytes, atomic_write_json, load_weights, model_from_weights
from ..network import LowRankRNN
from ..simulation import attractor_points, simulate_network, simulate_target, stationary_moments
from ._folder import RunError, check_count, check_simulation
from ._loading import load_run
from ._lock import holds_run_folder


def residual_trace(model: LowRankRNN, xs) -> np.ndarray:
    """Off-subspace residual of each saved neuron state, ``(B, T)``.

    ``||(I - P)(x_t - b)|| / sqrt(mean_t ||x_t - b||^2)`` per trajectory, with P the
    orthogonal projector onto span(Gamma) (float64 NumPy, so it adds no rounding of its own).
    """
    d = np.asarray(xs, dtype=float) - np.asarray(model.b, dtype=float)
    q, _ = np.linalg.qr(np.asarray(model.Gamma, dtype=float))
    perp = np.linalg.norm(d - (d @ q) @ q.T, axis=-1)
    return perp / np.sqrt(np.mean(np.sum(d**2, axis=-1), axis=-1, keepdims=True))


def side_by_side(model, target, z0s, *, key, t1, dt, save_dt, solver, neuron_trajectories):
    k_net, k_tgt, k_neu = jr.split(key, 3)
    sim = dict(t1=t1, dt=dt, save_dt=save_dt)
    net = simulate_network(model, z0s, key=k_net, solver=solver, **sim)
    ref = simulate_target(target, z0s, key=k_tgt, solver=solver, **sim)
    few = simulate_network(
        model, z0s[:neuron_trajectories], key=k_neu, solver=solver, keep_neurons=True, **sim
    )
    return net, ref, few


@holds_run_folder
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
    check_simulation(loaded.target.additive, solver=solver, time=time, dt=dt, save_dt=save_dt)
    check_count("trajectories", trajectories, 1)
    if neuron_trajectories < 0 or neurons_kept < 0:
        raise ValueError(
            f"Expected trajectories >= 1 and non-negative neuron counts; got {trajectories}, "
            f"{neuron_trajectories}, {neurons_kept}."
        )
    k_start, k_sim = jr.split(jr.key(seed))
    z0s = attractor_points(loaded.target, key=k_start, num=trajectories, dt=loaded.pool_dt)
    net, ref, few = side_by_side(
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


@holds_run_folder
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
    check_simulation(loaded.target.additive, solver=solver, time=time, dt=dt, save_dt=save_dt,
                     burn_in=burn_in)  # fmt: skip
    check_count("trajectories", trajectories, 1)
    k_start, k_net, k_tgt = jr.split(jr.key(seed), 3)
    z0s = attractor_points(loaded.target, key=k_start, num=trajectories, dt=loaded.pool_dt)
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
