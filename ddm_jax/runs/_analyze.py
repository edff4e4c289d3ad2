"""``ddm-jax analyze``: Hopfield energy, entropy production and the recovered subspace of a run.

`analyze_run` writes ``analysis.json`` and ``figures/{energy_fields, epr, explained_variance,
recovered}.png``. Every setting and the constant-D requirement are
checked, and everything is computed and drawn, before the first file is written.
"""

import os

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..analysis import (
    antisymmetric_field,
    diffusion_matrix,
    epr_from_samples,
    epr_from_trajectories,
    hodge_split,
    hopfield_energy,
    sub_network_state,
    symmetric_drift,
    symmetric_network,
    without_noise,
)
from ..data import recover_subspace, relative_trajectory_error
from ..io import atomic_write_json
from ..plotting import (
    plot_energy_fields,
    plot_epr_bars,
    plot_explained_variance,
    plot_recovered,
    save_figure,
)
from ..simulation import POOL_DT, attractor_points, simulate_network, simulate_target
from ._checkpoint import load_pool
from ._folder import check_count, check_simulation
from ._loading import load_run
from ._lock import holds_run_folder


def _same(key):
    """A copy of ``key``: the target then draws the network's Brownian increments, on purpose."""
    return jr.wrap_key_data(jr.key_data(key))


def _estimates(f, D, zs, dt, thin):
    """Both EPR estimators on one stationary ensemble, as JSON-ready numbers."""
    out = {}
    for name, est in [
        ("samples", epr_from_samples(f, D, zs[:, ::thin])),
        ("trajectories", epr_from_trajectories(f, D, zs, dt)),
    ]:
        out[name] = {"value": est.value, "stderr": est.stderr, "low": est.low, "high": est.high}
    return out


def _energy_plane(model, target, size: int = 25):
    """Grid of the first two latent coordinates (others at the box centre), fields, energy."""
    low, high = np.asarray(target.box_low), np.asarray(target.box_high)
    a, b = (np.linspace(low[i], high[i], size) for i in (0, 1))
    grid = np.stack(np.meshgrid(a, b, indexing="ij"), axis=-1)
    zs = np.broadcast_to(np.asarray(target.centre), (size, size, target.dim)).copy()
    zs[..., :2] = grid
    pinv = jnp.linalg.pinv(model.embed_matrix)

    def at(z):
        x = model.embed(z)
        return (
            pinv @ symmetric_drift(model, x),
            pinv @ antisymmetric_field(model, x),
            (hopfield_energy(model, x)),
        )

    sym, anti, energy = jax.vmap(jax.vmap(at))(jnp.asarray(zs, dtype=model.b.dtype))
    return grid, np.asarray(sym)[..., :2], np.asarray(anti)[..., :2], np.asarray(energy)


def _starts(path, target, trajectories: int, key, pool_dt=POOL_DT) -> tuple[jax.Array, str]:
    """Start states on the target's attractor, and where they come from.

    Drawn from the run's ``pool.npy`` (the training's attractor points) or, without one (a
    box-sampled run), from fresh `attractor_points` at the run's step ``pool_dt``.
    """
    k_pick, k_pool = jr.split(key)
    if (path / "pool.npy").is_file():
        pool, source = jnp.asarray(load_pool(path / "pool.npy", target)), "pool.npy"
    else:
        pool, source = attractor_points(target, key=k_pool, dt=pool_dt), "attractor_points"
    pick = jr.choice(k_pick, pool.shape[0], (trajectories,), replace=pool.shape[0] < trajectories)
    return pool[pick].astype(target.centre.dtype), source


@holds_run_folder
def analyze_run(
    run: str | os.PathLike,
    *,
    trajectories: int = 128,
    time: float = 20.0,
    burn_in: float = 10.0,
    dt: float = 1e-3,
    cells: int = 100,
    seed: int = 0,
    figures: bool = True,
) -> dict:
    """Analyse a trained run; write ``analysis.json`` (and figures); return its contents.

    From stationary target states, the target and the full network are simulated for ``time``
    with the same Brownian increments (Euler-Maruyama, step ``dt``, every step saved). The
    states start on the target's attractor (`_starts`: the run's ``pool.npy``, else
    `attractor_points`) and the target runs ``burn_in`` first (10 time units, the burn-in of
    `attractor_points` itself). Measured on Lorenz (a 64-neuron run, seeds 0, 1, 2, against
    24,083 +- 57 from 1,024 target trajectories of 50 time units): started uniformly in the
    box with 5 time units of burn-in and 32 trajectories, the target's EPR came out 21,870,
    23,390 and 22,970, the first interval missing; from the pool with these defaults 24,360,
    23,850 and 23,950, 95% half-widths 1.6-2.4%, every interval covering.

    Reported: the entropy production rate of both by the sample and the
    trajectory estimators (95% intervals from the trajectories); the largest rise of the
    Hopfield energy along deterministic trajectories of the symmetric sub-network and of the
    full network (5 time units); the explained-variance ratios of two neuron trajectories and
    the latent trajectory recovered from their PCA scores, against the read-out and against
    the target driven by the same noise over one time unit; the Helmholtz-Hodge curl fraction
    of the network's latent read-out (qualitative in 3-d).

    Raises:
        RunError: when the folder has no trained model.
        ValueError: for a bad setting, or state-dependent / private noise (the estimators need
            a constant D), before anything is written.
    """
    loaded = load_run(run)
    path, model, target = loaded.path, loaded.model, loaded.target
    check_simulation(target.additive, solver="euler", time=time, dt=dt, save_dt=dt,
                     burn_in=burn_in)  # fmt: skip
    check_count("trajectories", trajectories, 2)
    check_count("cells", cells, 8)
    if not 0 <= burn_in:
        raise ValueError(f"Expected burn_in >= 0; got {burn_in}.")
    D = diffusion_matrix(target)
    diffusion_matrix(model)  # the network's noise must be constant too

    k_start, k_burn, k_sim, k_hop, k_pca = jr.split(jr.key(seed), 5)
    z0s, starts = _starts(path, target, trajectories, k_start, loaded.pool_dt)
    if burn_in > 0:
        burn = simulate_target(target, z0s, key=k_burn, t1=burn_in, dt=dt, save_dt=burn_in)
        z0s = burn.zs[:, -1]
    net = simulate_network(model, z0s, key=k_sim, t1=time, dt=dt).zs
    ref = simulate_target(target, z0s, key=_same(k_sim), t1=time, dt=dt).zs  # same increments
    thin = max(1, int(round(0.01 / dt)))
    epr = {
        "target": _estimates(target.f, D, ref, dt, thin),
        "network": _estimates(model.target_drift, D, net, dt, thin),
    }
    epr["relative_difference"] = (
        epr["network"]["samples"]["value"] / epr["target"]["samples"]["value"] - 1
    )

    hop = dict(t1=5.0, dt=dt, save_dt=0.01, keep_neurons=True)
    w0 = sub_network_state(model, z0s[0])
    k_sym, k_full = jr.split(k_hop)
    xs_sym = simulate_network(symmetric_network(model, noise=False), w0, key=k_sym, **hop).xs[0]
    xs_full = simulate_network(without_noise(model), z0s[0], key=k_full, **hop).xs[0]
    energy = jax.vmap(lambda x: hopfield_energy(model, x))
    e_sym, e_full = energy(xs_sym), energy(xs_full)

    few = simulate_network(model, z0s[:2], key=k_pca, **{**hop, "t1": time})
    rec = recover_subspace(model, few.xs, few.zs)
    same = simulate_target(target, z0s[:2], key=_same(k_pca), t1=time, dt=dt, save_dt=0.01).zs
    horizon = slice(0, 101)
    hodge = hodge_split(np.asarray(net[:, ::thin]), dt * thin, cells=cells)

    result = {
        "system": loaded.config["system"],
        "neurons": model.n,
        "settings": {
            "trajectories": trajectories,
            "starts": starts,
            "time": time,
            "burn_in": burn_in,
            "dt": dt,
            "cells": cells,
            "seed": seed,
        },  # fmt: skip
        "diffusion_matrix": np.asarray(D).tolist(),
        "entropy_production": epr,
        "hopfield": {
            "energy_start": float(e_sym[0]),
            "symmetric_max_rise": float(jnp.max(jnp.diff(e_sym))),
            "symmetric_total_change": float(e_sym[-1] - e_sym[0]),
            "full_max_rise": float(jnp.max(jnp.diff(e_full))),
        },
        "subspace": {
            "explained_variance": np.asarray(rec.explained[: model.k + 3]).tolist(),
            "gap": rec.gap,
            "recovery_error_readout": rec.error,
            "recovery_error_target_1tu": relative_trajectory_error(
                rec.recovered[:, horizon], same[:, horizon]
            ),
        },
        "hodge": {
            "curl_fraction": hodge.curl_fraction,
            "cells": int(hodge.centres.shape[0]),
            "unassigned_fraction": hodge.unassigned_fraction,
        },  # fmt: skip
    }
    figs = {}
    if figures:
        label = f"{target.name}, {model.n} neurons"
        grid, sym, anti, en = _energy_plane(model, target)
        half = lambda e: e["high"] - e["value"]  # the estimate's own 95% half-width
        figs = {
            "energy_fields": plot_energy_fields(grid, sym, anti, en, system=target.name,
                                                k=target.dim, title=label),  # fmt: skip
            "epr": plot_epr_bars({
                f"{who}\n{how}": (epr[who][how]["value"], half(epr[who][how]))
                for who in ("target", "network") for how in ("samples", "trajectories")
            }, title=f"entropy production, {label}"),  # fmt: skip
            "explained_variance": plot_explained_variance(np.asarray(rec.explained), model.k,
                                                          title=label),  # fmt: skip
            "recovered": plot_recovered(few.ts, np.asarray(rec.recovered[0]),
                                        np.asarray(few.zs[0]), system=target.name, title=label),
        }  # fmt: skip
    atomic_write_json(path / "analysis.json", result)
    for name, fig in figs.items():
        save_figure(fig, path / "figures" / f"{name}.png")
    return result
