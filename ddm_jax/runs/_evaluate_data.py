"""``ddm-jax evaluate`` of a data run: the network against the held-out recordings.

There is no true SDE to simulate, so the network is compared with the data it did not see
(the last fraction of every trajectory, see `train_data_run`):

- ``sw``, ``sw_null``: sliced Wasserstein distance between the held-out states and states
  of the full n-neuron network simulated from held-out starting states for the same
  duration, over the data's RMS spread; the null is the same distance between the two
  halves of the held-out trajectories (what sampling alone gives);
- ``mean_error``, ``cov_error``: stationary mean (over the spread) and covariance errors;
- ``drift_consistency``: ``mean ||dz - E[dz | z]||^2 / (2 tr(D) dt)`` on the held-out
  increments (``E[dz | z]`` from the learned drift, see `increment_means`),
  1 + O(dt) for a drift and D that explain the data, larger for a drift that misses;
- ``diffusion_error_held_out``: D from the held-out residuals against the network's D.

A recording (``latents.npz``, see `train_data_run`) is evaluated on its held-out latents, and
`recording_metrics` adds the held-out one-step R^2 of every recorded neuron (``r2_mean``,
``r2_min``), the state-space divergence ``d_stsp`` and the spectral Hellinger distance
``d_h`` of the latents (with their nulls between halves of the held-out data).
"""

import dataclasses

import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..data import diffusion_from_residuals, increment_means, increments
from ..fidelity import moment_errors, sliced_wasserstein, spread
from ..io import atomic_write_json, atomic_write_text
from ..simulation import simulate_network
from ._data_files import check_data_copy, data_segments
from ._folder import check_count, check_finite
from ._loading import TrainedRun
from ._recording_run import read_latents, recording_metrics


@dataclasses.dataclass(frozen=True)
class DataReport:
    """What `evaluate_run` returns for a data run: the metrics and the markdown report."""

    metrics: dict
    settings: dict
    markdown: str

    def to_markdown(self) -> str:
        """The report's table (as written to ``report.md``)."""
        return self.markdown


def _equal(a, b, rng):
    num = min(len(a), len(b))
    return a[rng.choice(len(a), num, replace=False)], b[rng.choice(len(b), num, replace=False)]


def evaluate_data_run(
    loaded: TrainedRun, *, trajectories: int = 256, dt: float = 1e-3, seed: int = 0
) -> DataReport:
    """Compare a data run's network with its held-out data; write ``metrics.json``, ``report.md``.

    Args:
        loaded: the run (see `load_run`).
        trajectories: network trajectories, started at held-out states chosen at random.
        dt: Euler-Maruyama step of the network simulation.
        seed: PRNG seed.

    Returns:
        A `DataReport` (metrics: see the module docstring).
    """
    check_count("trajectories", trajectories, 2)
    check_finite("dt", dt)
    path, model, config = loaded.path, loaded.model, loaded.config
    spec = config["settings"]["target"]
    _, held = data_segments(check_data_copy(path, config), spec["dt"], spec["held_out"])
    recorded = None
    if spec.get("latent_dim") is not None:  # a recording: evaluate on its held-out latents
        latent_map, noise_latent = read_latents(path)
        recorded, held = held, [latent_map.encode(s) for s in held]
    data_dt = spec["dt"]
    if not (0 < dt <= data_dt):
        raise ValueError(f"Expected 0 < dt <= the data's sampling interval {data_dt}; got {dt}.")
    rng = np.random.default_rng(seed)
    states = np.concatenate(held)
    duration = float(np.median([len(s) - 1 for s in held]) * data_dt)
    starts = states[rng.choice(len(states), trajectories, replace=len(states) < trajectories)]
    save_dt = data_dt * max(1, round(duration / data_dt / 200))
    steps_per_save = max(1, round(save_dt / dt))
    run = simulate_network(
        model, jnp.asarray(starts, model.W_s.dtype), key=jr.key(seed),
        t1=save_dt * max(1, round(duration / save_dt)), dt=save_dt / steps_per_save,
        save_dt=save_dt,
    )  # fmt: skip
    net = np.asarray(run.zs, float)[:, 1:].reshape(-1, model.k)
    data_pts, net_pts = _equal(states, net, rng)
    ref_spread = spread(jnp.asarray(data_pts))
    half = len(held) // 2
    if half:
        a, b = np.concatenate(held[:half]), np.concatenate(held[half:])
    else:
        mid = len(held[0]) // 2
        a, b = held[0][:mid], held[0][mid:]
    a, b = _equal(a, b, rng)
    mean_err, cov_err = moment_errors(jnp.asarray(net_pts), jnp.asarray(data_pts))
    inc = increments(held, data_dt, two_lags=spec["correct"])
    m1, _ = increment_means(model, inc, spec["correct"], both=False)
    g = np.asarray(model.latent_noise_target(jnp.asarray(states[0], model.W_s.dtype)), float)
    D_net = g @ g.T / 2
    resid = inc.dz1 - m1
    D_held = diffusion_from_residuals(model, inc, resid, spec["correct"])
    metrics = {
        "sw": sliced_wasserstein(jnp.asarray(net_pts), jnp.asarray(data_pts)) / ref_spread,
        "sw_null": sliced_wasserstein(jnp.asarray(a), jnp.asarray(b)) / ref_spread,
        "mean_error": float(mean_err), "cov_error": float(cov_err),
        "drift_consistency": float(
            np.mean(np.sum(resid**2, -1)) / (2 * np.trace(D_net) * data_dt)
        ),
        "diffusion_error_held_out": float(
            np.linalg.norm(D_held - D_net) / np.linalg.norm(D_held)
        ),
    }  # fmt: skip
    if recorded is not None:
        metrics |= recording_metrics(model, latent_map, noise_latent, recorded, data_dt, seed)
    settings = {"trajectories": trajectories, "dt": dt, "seed": seed, "time": duration,
                "held_out_segments": len(held), "held_out_states": len(states)}  # fmt: skip
    atomic_write_json(path / "metrics.json", {
        "system": config["system"], "neurons": model.n, "settings": settings,
        "metrics": {k: float(v) for k, v in metrics.items()},
    })  # fmt: skip
    lines = [
        f"# {config['system']} (recorded data) in {model.n} neurons",
        "",
        f"The network against the held-out {spec['held_out']:.0%} of every trajectory "
        f"({len(states)} states): {trajectories} network trajectories of {duration:g} time "
        f"units from held-out states, Euler-Maruyama dt {dt}, seed {seed}.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| sliced Wasserstein / spread | {100 * metrics['sw']:.2f}% "
        f"({100 * metrics['sw_null']:.2f}% between halves of the data) |",
        f"| stationary mean error / spread | {100 * metrics['mean_error']:.2f}% |",
        f"| stationary covariance error | {100 * metrics['cov_error']:.2f}% |",
        f"| drift consistency (1 + O(dt) expected) | {metrics['drift_consistency']:.3f} |",
        f"| D from held-out residuals vs network | "
        f"{100 * metrics['diffusion_error_held_out']:.2f}% |",
    ]
    if recorded is not None:
        lines += [
            f"| one-step R^2 of the {latent_map.mean.size} recorded neurons, mean (min) | "
            f"{metrics['r2_mean']:.4f} ({metrics['r2_min']:.4f}) |",
            f"| D_stsp of the latents | {metrics['d_stsp']:.4f} "
            f"({metrics['d_stsp_null']:.4f} between halves of the data) |",
            f"| D_H of the latents | {metrics['d_h']:.4f} "
            f"({metrics['d_h_null']:.4f} between halves of the data) |",
        ]
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
    return DataReport(metrics, settings, "\n".join(lines[4:]))


def is_data_run(config: dict) -> bool:
    """Whether a run's config describes a data run."""
    return config["settings"]["target"].get("kind") == "data"
