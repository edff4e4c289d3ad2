"""Drift and diffusion matching: regression of the latent perceptron on the target SDE.

With ``z = c + S v`` the drift loss is
``E_{v ~ rho} || -v + W_s phi(Gamma v + b) - tau S^-1 f(c + S v) ||^2``; no back-propagation
through time. ``rho`` is uniform in the box enlarged by 20% (``"box"``), points of simulated
target trajectories (``"attractor"``), or half of each (``"mixture"``, the default).
State-dependent noise is matched afterwards, with the hidden layer fixed, by the covariance
loss ``|| Ghat Ghat^T - tau^2 S^-1 G G^T S^-1 ||_F^2``.
"""

import typing
from collections.abc import Callable, Sequence
from dataclasses import replace

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Key
from ..network import LowRankRNN, init_network
from ..simulation import attractor_points, shard_batch
from ..targets import Target
from ._closed_form import closed_form, noise_points, noise_readout, ridge_refit
from ._loop import TrainConfig, TrainState, init_train_state, noise_phase_config, run_training
from ._remedy import census_score, refine_attractors, remedy_settings


class FitResult(eqx.Module):
    """Output of `fit`: the trained model, its loss curves, attractor pool and remedy summaries."""

    model: LowRankRNN
    losses: np.ndarray
    noise_losses: np.ndarray | None
    pool: Float[Array, "pool k"] | None
    remedy: list | None = None  # one census summary per remedy round (`refine_attractors`)
    closed_form: dict | None = None  # what the closed form chose (methods "lstsq...")


# ``fold_in(key, c) == split(key, n)[c]`` for every n > c (partitionable threefry): the
# remedy's and the closed form's streams are folded in with constants no split of ``key``
# reaches ("reme", "lstq").
REMEDY_STREAM = 0x72656D65
CLOSED_FORM_STREAM = 0x6C737471
CENSUS_APPLIES_STREAM = 0x63656E73  # "cens": the look at the target's orbits of "auto"


class FitPlan(typing.NamedTuple):
    init_key: Key
    pool_key: Key
    drift_key: Key
    noise_fit_key: Key
    noise_key: Key
    noise_config: TrainConfig
    remedy_key: Key
    closed_form_key: Key
    refit_key: Key
    census_applies_key: Key


def fit_plan(key: Key, config: TrainConfig) -> FitPlan:
    """How `fit` splits its key and sets up noise matching; `train_run` reuses it, bit for bit.

    Four subkeys: network init, the attractor pool, drift-matching batches, noise matching
    (split again into the least-squares points and the batches); the spurious-attractor
    remedy folds `REMEDY_STREAM` into ``key`` (and ``"auto"``'s look at the target's
    orbits `CENSUS_APPLIES_STREAM`) and the closed form (methods ``"lstsq"``,
    ``"lstsq+adam"``) `CLOSED_FORM_STREAM`, so that the other four are those of runs without
    them. Not small numbers: with JAX's partitionable threefry ``fold_in(key, i)`` equals
    ``split(key, n)[i]``, and ``fold_in(key, 1)`` was the attractor pool's key.
    Noise matching starts from the closed form (`solve_noise_readout`), samples the box only
    and refines at 1/100 of the drift learning rate: at the full rate Adam's first steps
    undo the closed form (measured on a Stuart-Landau oscillator, n = 128: diffusion error
    0.04% before, 24% after 3,000 steps at lr 1e-2, 0.04% at lr 1e-4).
    """
    init_key, pool_key, drift_key, noise_key = jr.split(key, 4)
    noise_fit_key, noise_key = jr.split(noise_key)
    noise_config = noise_phase_config(config)
    remedy_key = jr.fold_in(key, REMEDY_STREAM)
    closed_form_key, refit_key = jr.split(jr.fold_in(key, CLOSED_FORM_STREAM))
    census_applies_key = jr.fold_in(key, CENSUS_APPLIES_STREAM)
    return FitPlan(
        init_key, pool_key, drift_key, noise_fit_key, noise_key, noise_config, remedy_key,
        closed_form_key, refit_key, census_applies_key,
    )  # fmt: skip


def drift_start(
    model: LowRankRNN, target: Target, pool, plan: FitPlan, config: TrainConfig
) -> tuple[LowRankRNN, dict | None]:
    """The network drift matching starts from: ``model`` for Adam, else the closed form.

    Returns the network and, for the closed-form methods, what the closed form chose
    (``{"method": ...}`` for Adam). `fit`, `fit_seeds` and `train_run` share it.
    """
    if config.method == "adam":
        return model, {"method": "adam"}
    model, info = closed_form(model, target, pool, key=plan.closed_form_key, config=config)
    return model, {"method": config.method, **info}


def drift_finish(
    model: LowRankRNN, target: Target, pool, plan: FitPlan, config: TrainConfig, info: dict
) -> tuple[LowRankRNN, dict]:
    """After Adam from the closed form (``"lstsq+adam"``): the ridge read-out refitted."""
    if config.method != "lstsq+adam":
        return model, info
    model, refit = ridge_refit(model, target, pool, key=plan.refit_key, config=config)
    return model, {**info, "closed_form_max_abs_W_s": info["max_abs_W_s"], **refit}


def remedy(
    model: LowRankRNN,
    target: Target,
    pool,
    plan: FitPlan,
    config: TrainConfig,
    info: dict,
    *,
    settings: TrainConfig | None = None,
    on_round: Callable[[dict], None] | None = None,
    on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
) -> tuple[LowRankRNN, np.ndarray, list | None, dict]:
    """The census after drift matching and, where it is not clean, the remedy (`fit`'s way).

    ``settings``: `remedy_settings` of ``config``, if already resolved. With
    ``remedy_rounds="auto"`` and Adam, a census that is not clean first replaces the drift
    fit by the closed form (`closed_form`, method ``"lstsq"``: measured clean on Dadras-1024
    where Adam was not) and censuses again; remedy rounds (`refine_attractors`) run only if
    that is not clean either, and the network with the better census (`census_score`) is
    kept (with no remedy losses when it is the drift fit). Otherwise the
    census and the remedy rounds run on the network as it is.

    Returns the network, the remedy's losses (none when no round ran), the census summaries
    (None when no census ran: ``remedy_rounds=0``, or ``"auto"`` where the census does not
    apply), each with its ``stage`` (``"drift matching"``, ``"closed form"`` or
    ``"remedy round k"``), and ``info`` with ``census_fallback`` and the closed form's choices
    when it replaced the fit.
    """
    if settings is None:
        settings = remedy_settings(config, target, key=plan.census_applies_key)
    none = np.zeros(0, np.float32)
    if settings is None:
        return model, none, None, info
    history = []

    def labelled(first: str):
        def label(summary: dict) -> None:
            stage = first if summary["round"] == 0 else f"remedy round {summary['round']}"
            history.append({"stage": stage, **summary})
            if on_round is not None:
                on_round(history[-1])

        return label  # fmt: skip

    # both censuses from the same starts (one key, cloned: the comparison is the point)
    run = lambda net, rounds, first: refine_attractors(
        net, target, key=jr.clone(plan.remedy_key),
        config=replace(settings, remedy_rounds=rounds), pool=pool, on_round=labelled(first),
        on_chunk=on_chunk,
    )  # fmt: skip
    if not (config.remedy_rounds == "auto" and config.method == "adam"):
        model, losses, _ = run(model, settings.remedy_rounds, "drift matching")
        return model, losses, history, info
    run(model, 0, "drift matching")
    if history[-1]["clean"]:
        return model, none, history, info
    refit, chosen = closed_form(model, target, pool, key=plan.closed_form_key, config=config)
    refit, losses, _ = run(refit, settings.remedy_rounds, "closed form")
    if min(census_score(h) for h in history[1:]) >= census_score(history[0]):
        return model, none, history, {**info, "census_fallback": "kept drift matching"}
    return refit, losses, history, {**info, "census_fallback": "lstsq", **chosen}


def adam_steps(config: TrainConfig) -> bool:
    """Whether drift matching runs Adam steps (every method but ``"lstsq"``)."""
    return config.method != "lstsq"


def solve_noise_readout(
    model: LowRankRNN, target: Target, *, key: Key, config: TrainConfig = TrainConfig()
) -> LowRankRNN:
    """The noise read-out in closed form: least squares on the fixed hidden layer.

    With Gamma and b fixed, ``Ghat(v) = noise_const + reshape(W_g phi(Gamma v + b))`` is
    linear in ``(noise_const, W_g)``, so fitting it to the smooth square root
    ``tau S^-1 G(c + S v)`` of ``tau^2 S^-1 G G^T S^-1`` is a linear least-squares problem.
    It is solved in float64 with bounded memory (`noise_readout`) on ``max(8192, 8 (n + 1))``
    points uniform in the box enlarged by ``config.enlarge``, the ridge (relative to the mean
    feature energy) chosen among `NOISE_RIDGES` by the error on a quarter as many held-out
    points, and is the start of the covariance-loss phase. A fixed ridge of 1e-10 left the
    Stuart-Landau oscillator's read-out (``G = 0.2 diag(sqrt(1 + z^2))``, n = 128) 0.034%
    off on the limit cycle after Adam and 0.061% after the closed form; the held-out choice
    (1e-14 on both) 0.010% and 0.032%. A model without a noise read-out (additive noise) is
    returned unchanged.
    """
    if model.noise_readout is None:
        return model
    gamma, b = np.asarray(model.Gamma, float), np.asarray(model.b, float)
    data = noise_points(target, model, key, config.enlarge)
    coef, _, _ = noise_readout(gamma, b, data, np.dtype(model.noise_const.dtype))
    dtype = model.noise_const.dtype
    return eqx.tree_at(
        lambda m: (m.noise_const, m.noise_readout),
        model,
        (jnp.asarray(coef[0].reshape(model.noise_const.shape), dtype),
         jnp.asarray(coef[1:].T, dtype)),
    )  # fmt: skip


def fit(
    target: Target,
    n: int,
    *,
    key: Key,
    config: TrainConfig = TrainConfig(),
    tau: float = 1.0,
    private_noise: float = 0.0,
    on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
) -> FitResult:
    """Embed ``target`` into an ``n``-neuron low-rank network: init, drift and noise matching.

    Drift matching is followed by the attractor census and, where it is not clean, the
    spurious-attractor remedy (`refine_attractors`; ``config.remedy_rounds``, by default
    ``"auto"``: see `remedy_settings`); the remedy's steps are appended to ``losses`` and
    the census summaries are in ``FitResult.remedy`` (None when no census ran).

    Args:
        target: the target SDE (see `make_target`, `from_callables`).
        n: number of neurons.
        key: PRNG key (split into init, attractor sampling and batch keys).
        config: training settings.
        tau: neuron time constant.
        private_noise: optional private isotropic neuron noise (not matched; biases the drift).
        on_chunk: progress callback, see `run_training`.
    """
    plan = fit_plan(key, config)
    model = init_network(target, n, key=plan.init_key, tau=tau, private_noise=private_noise)
    box_only = config.sampler == "box"
    pool = None if box_only else attractor_points(target, key=plan.pool_key, dt=config.pool_dt)
    model, info = drift_start(model, target, pool, plan, config)
    losses = np.zeros(0, np.float32)
    if adam_steps(config):
        state, losses = run_training(
            init_train_state(model, config), target, key=plan.drift_key, config=config,
            pool=pool, on_chunk=on_chunk,
        )  # fmt: skip
        model = state.model
    model, info = drift_finish(model, target, pool, plan, config, info)
    model, remedy_losses, history, info = remedy(model, target, pool, plan, config, info)
    losses = np.concatenate([losses, remedy_losses])
    noise_losses = None
    if model.noise_readout is not None:
        noisy = solve_noise_readout(model, target, key=plan.noise_fit_key, config=config)
        noise_state = init_train_state(noisy, config, noise=True)
        noise_state, noise_losses = run_training(
            noise_state, target, key=plan.noise_key, config=plan.noise_config, noise=True
        )
        model = noise_state.model
    return FitResult(model, losses, noise_losses, pool, history, info)


def fit_seeds(
    target: Target,
    n: int,
    *,
    seeds: Sequence[int] | np.ndarray,
    config: TrainConfig = TrainConfig(),
    tau: float = 1.0,
    private_noise: float = 0.0,
    on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
) -> list[FitResult]:
    """`fit` for every seed at once: one vmapped training, the seeds spread over all devices.

    Seed ``s`` follows the plan of ``fit(target, n, key=jr.key(s), ...)``: the same
    initialisation, attractor pool and batches, so the results agree with separate fits up to
    float32 rounding (batched and single products may round differently). With D devices and
    a number of seeds divisible by D, each device trains ``len(seeds) / D`` networks.
    ``on_chunk(state, losses)`` sees the stacked state (every leaf with a leading seed axis)
    and the ``(seeds, chunk)`` losses. The census and remedy (``config.remedy_rounds``) run
    after the batched drift matching, one network at a time, as `fit` runs them.

    Returns:
        One `FitResult` per seed, in the order of ``seeds``.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) == 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"Expected a non-empty sequence of distinct seeds; got {seeds!r}.")
    plans = [fit_plan(jr.key(s), config) for s in seeds]
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)
    models = [init_network(target, n, key=p.init_key, tau=tau, private_noise=private_noise)
              for p in plans]  # fmt: skip
    pools = None
    if config.sampler != "box":
        pools = stack([attractor_points(target, key=p.pool_key, dt=config.pool_dt) for p in plans])
    starts = [drift_start(m, target, None if pools is None else pools[i], p, config)
              for i, (m, p) in enumerate(zip(models, plans, strict=True))]  # fmt: skip
    models, infos = [m for m, _ in starts], [i for _, i in starts]
    states = stack([init_train_state(m, config) for m in models])
    states, pools, keys = shard_batch((states, pools, stack([p.drift_key for p in plans])))
    losses = np.zeros((len(seeds), 0), np.float32)
    if adam_steps(config):
        states, losses = run_training(
            states, target, key=keys, config=config, pool=pools, on_chunk=on_chunk
        )
    if config.method == "lstsq+adam":
        finished = [
            drift_finish(jax.tree.map(lambda a, i=i: a[i], states.model), target,
                         None if pools is None else pools[i], p, config, infos[i])
            for i, p in enumerate(plans)
        ]  # fmt: skip
        infos = [i for _, i in finished]
        states = eqx.tree_at(lambda s: s.model, states, stack([m for m, _ in finished]))
    losses, histories = list(losses), [None] * len(seeds)
    if config.remedy_rounds != 0:  # the census and remedy run per network, as in fit()
        remedied = []
        for i, p in enumerate(plans):
            model, remedy_losses, histories[i], infos[i] = remedy(
                jax.tree.map(lambda a, i=i: a[i], states.model), target,
                None if pools is None else pools[i], p, config, infos[i],
            )  # fmt: skip
            losses[i] = np.concatenate([losses[i], remedy_losses])
            remedied.append(model)
        states = eqx.tree_at(lambda s: s.model, states, shard_batch(stack(remedied)))
    noise_losses = [None] * len(seeds)
    if models[0].noise_readout is not None:
        noisy = stack([
            solve_noise_readout(jax.tree.map(lambda a, i=i: a[i], states.model), target,
                              key=p.noise_fit_key, config=config)
            for i, p in enumerate(plans)
        ])  # fmt: skip
        noise_states = shard_batch(
            jax.vmap(lambda m: init_train_state(m, config, noise=True))(noisy)
        )
        keys = shard_batch(stack([p.noise_key for p in plans]))
        states, noise_losses = run_training(
            noise_states, target, key=keys, config=plans[0].noise_config, noise=True
        )
    return [
        FitResult(jax.tree.map(lambda a, i=i: a[i], states.model), losses[i], noise_losses[i],
                  None if pools is None else pools[i], histories[i], infos[i])
        for i in range(len(seeds))
    ]  # fmt: skip
