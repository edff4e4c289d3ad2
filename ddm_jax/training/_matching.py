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
from dataclasses import asdict, dataclass, replace

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, Int, Key as KeyArray

from .._custom_types import Key
from ..network._network import LowRankRNN, init_network
from ..simulation._integrate import shard_batch
from ..simulation._sampling import SAMPLERS, attractor_points, batch_points, sample_box
from ..targets._targets import Target
from ._losses import diffusion_loss, drift_loss


@typing.no_type_check  # validated by __post_init__ with specific messages
@dataclass(frozen=True)
class TrainConfig:
    """Settings of drift matching (defaults reach < 1% attractor error on the paper's systems).

    Attributes:
        steps: optimiser steps.
        batch: sampled latent points per step.
        lr: peak Adam learning rate, cosine-decayed to ``lr * final_lr_fraction``.
        final_lr_fraction: end of the cosine schedule relative to ``lr``.
        sampler: ``"box"``, ``"attractor"`` or ``"mixture"``.
        attractor_fraction: share of attractor points in a mixture batch.
        enlarge: the box sampler draws from the box enlarged by this fraction.
        chunk: steps fused into one jitted call (progress and checkpoints happen between).
        noise_steps: steps of diffusion matching (state-dependent noise only).
        remedy_rounds: at most this many rounds of the spurious-attractor remedy after
            drift matching (`refine_attractors`; 0, the default, is off: it costs censuses
            and raises the box error). Recommended for chaotic targets: 4.
        remedy_steps: drift-matching steps per remedy round.
    """

    steps: int = 20000
    batch: int = 1024
    lr: float = 1e-2
    final_lr_fraction: float = 1e-3
    sampler: str = "mixture"
    attractor_fraction: float = 0.5
    enlarge: float = 0.2
    chunk: int = 250
    noise_steps: int = 3000
    remedy_rounds: int = 0
    remedy_steps: int = 4000

    def __post_init__(self):
        for name in ("steps", "batch", "chunk", "noise_steps", "remedy_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {name} to be a positive integer; got {value!r}.")
        if not isinstance(self.remedy_rounds, int) or self.remedy_rounds < 0:
            raise ValueError(
                f"Expected remedy_rounds to be an integer >= 0; got {self.remedy_rounds!r}."
            )
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Expected a finite learning rate lr > 0; got {self.lr!r}.")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"Expected sampler in {SAMPLERS}; got {self.sampler!r}.")
        if not 0 <= self.final_lr_fraction <= 1:
            raise ValueError(
                f"Expected final_lr_fraction in [0, 1]; got {self.final_lr_fraction!r}."
            )
        if not (np.isfinite(self.enlarge) and self.enlarge > -1):
            raise ValueError(f"Expected a finite enlarge > -1; got {self.enlarge!r}.")
        if not 0 <= self.attractor_fraction <= 1:
            raise ValueError(
                f"Expected attractor_fraction in [0, 1]; got {self.attractor_fraction!r}."
            )

    def to_dict(self) -> dict:
        """Plain dict for config files."""
        return asdict(self)


# ---------------------------------------------------------------- training


class TrainState(eqx.Module):
    """Everything needed to continue training bit for bit: model, optimiser state, step."""

    model: LowRankRNN
    opt_state: optax.OptState
    step: Int[Array, ""]


def _drift_filter(model: LowRankRNN):
    spec = jax.tree.map(lambda _: False, model)
    return eqx.tree_at(lambda m: (m.Gamma, m.W_s, m.b), spec, (True, True, True))


def _noise_filter(model: LowRankRNN):
    spec = jax.tree.map(lambda _: False, model)
    return eqx.tree_at(lambda m: (m.noise_const, m.noise_readout), spec, (True, True))


def _optimiser(config: TrainConfig, steps: int) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(config.lr, steps, alpha=config.final_lr_fraction)
    return optax.adam(schedule)


def optimiser_steps(state: TrainState, optim, filter_fn, batch_loss, key, num: int):
    """``num`` steps of ``optim`` on ``batch_loss(model, fold_in(key, step))``, in one scan.

    Only the leaves ``filter_fn(model)`` selects are trained. Returns the new state and the
    loss of every step. Drift and noise matching (`_chunk`) and the fit to data pairs share it.
    """

    def step(state: TrainState, _):
        params, static = eqx.partition(state.model, filter_fn(state.model))
        step_key = jr.fold_in(key, state.step)

        def loss(params):
            return batch_loss(eqx.combine(params, static), step_key)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optim.update(grads, state.opt_state, params)
        model = eqx.combine(eqx.apply_updates(params, updates), static)
        return TrainState(model, opt_state, state.step + 1), value

    return jax.lax.scan(step, state, None, length=num)


def _chunk(state: TrainState, target, pool, key, config, loss_fn, filter_fn, num):
    """``num`` optimiser steps from ``state``; returns the new state and the step losses."""
    optim = _optimiser(config, config.steps if loss_fn is drift_loss else config.noise_steps)
    batch_loss = lambda model, k: loss_fn(model, target, batch_points(k, target, pool, config))
    return optimiser_steps(state, optim, filter_fn, batch_loss, key, num)


_train_chunk = eqx.filter_jit(_chunk)
# a seed sweep: states, pools and keys carry a leading seed axis, the target is shared
_train_chunks = eqx.filter_jit(eqx.filter_vmap(_chunk, in_axes=(0, None, 0, 0) + (None,) * 4))


def init_train_state(model: LowRankRNN, config: TrainConfig, *, noise: bool = False) -> TrainState:
    """Fresh optimiser state for drift (or, with ``noise=True``, diffusion) matching."""
    filter_fn = _noise_filter if noise else _drift_filter
    optim = _optimiser(config, config.noise_steps if noise else config.steps)
    params, _ = eqx.partition(model, filter_fn(model))
    return TrainState(model, optim.init(params), jnp.asarray(0, dtype=jnp.int32))


def run_training(
    state: TrainState,
    target: Target,
    *,
    key: KeyArray[Array, "*seeds"],
    config: TrainConfig,
    pool: Float[Array, "*seeds pool k"] | None = None,
    noise: bool = False,
    on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
) -> tuple[TrainState, np.ndarray]:
    """Continue drift (or diffusion) matching from ``state`` until the configured step count.

    Step ``i`` draws its batch with ``fold_in(key, i)``, so a run resumed from a saved
    `TrainState` reproduces the uninterrupted run exactly. After each chunk of
    ``config.chunk`` steps ``on_chunk(state, chunk_losses)`` is called (progress, checkpoints).
    A state, pool and key with a leading seed axis (see `fit_seeds`) train every seed at once.

    Returns:
        The final state and the losses of the steps run here (``(seeds, steps)`` for a sweep).
    """
    total = config.noise_steps if noise else config.steps
    loss_fn = diffusion_loss if noise else drift_loss
    filter_fn = _noise_filter if noise else _drift_filter
    if config.sampler != "box" and pool is None:
        raise ValueError(
            f"Expected attractor points (pool) for sampler {config.sampler!r}; "
            "compute them with attractor_points()."
        )
    sweep = state.step.ndim == 1
    if sweep and len(set(np.asarray(state.step).tolist())) > 1:
        raise ValueError(f"Expected every seed of a sweep at the same step; got {state.step}.")
    train_chunk = _train_chunks if sweep else _train_chunk
    losses = []
    while (done := int(jnp.min(state.step))) < total:
        num = min(config.chunk, total - done)
        state, chunk_losses = train_chunk(state, target, pool, key, config, loss_fn, filter_fn, num)
        chunk_losses = np.asarray(chunk_losses)
        if not np.all(np.isfinite(chunk_losses)):
            bad = np.argwhere(~np.isfinite(chunk_losses))[0]
            where = f" (member {bad[0]} of the sweep, counting from 0)" if sweep else ""
            raise FloatingPointError(
                f"Training diverged: non-finite loss near step {done + num}{where}; "
                f"try a smaller learning rate than {config.lr}."
            )
        losses.append(chunk_losses)
        if on_chunk is not None:
            on_chunk(state, chunk_losses)
    shape = (state.step.shape[0], 0) if sweep else (0,)
    return state, np.concatenate(losses, axis=-1) if losses else np.zeros(shape)


class FitResult(eqx.Module):
    """Output of `fit`: the trained model, loss curves and the held-out errors."""

    model: LowRankRNN
    losses: np.ndarray
    noise_losses: np.ndarray | None
    pool: Float[Array, "pool k"] | None
    remedy: list | None = None  # one census summary per remedy round (`refine_attractors`)


class _FitPlan(typing.NamedTuple):
    init_key: Key
    pool_key: Key
    drift_key: Key
    noise_fit_key: Key
    noise_key: Key
    noise_config: TrainConfig
    remedy_key: Key


def _fit_plan(key: Key, config: TrainConfig) -> _FitPlan:
    """How `fit` splits its key and sets up noise matching; `train_run` reuses it, bit for bit.

    Four subkeys: network init, the attractor pool, drift-matching batches, noise matching
    (split again into the least-squares points and the batches); the spurious-attractor
    remedy folds 1 into ``key`` (so that the other four are those of runs without it).
    Noise matching starts from the closed form (`fit_noise_readout`), samples the box only
    and refines at 1/100 of the drift learning rate: at the full rate Adam's first steps
    undo the closed form (measured on a Stuart-Landau oscillator, n = 128: diffusion error
    0.04% before, 24% after 3,000 steps at lr 1e-2, 0.04% at lr 1e-4).
    """
    init_key, pool_key, drift_key, noise_key = jr.split(key, 4)
    noise_fit_key, noise_key = jr.split(noise_key)
    noise_config = replace(config, sampler="box", lr=config.lr / 100)
    remedy_key = jr.fold_in(key, 1)
    return _FitPlan(
        init_key, pool_key, drift_key, noise_fit_key, noise_key, noise_config, remedy_key
    )


def fit_noise_readout(
    model: LowRankRNN, target: Target, *, key: Key, config: TrainConfig = TrainConfig()
) -> LowRankRNN:
    """The noise read-out in closed form: least squares on the fixed hidden layer.

    With Gamma and b fixed, ``Ghat(v) = noise_const + reshape(W_g phi(Gamma v + b))`` is
    linear in ``(noise_const, W_g)``, so fitting it to the smooth square root
    ``tau S^-1 G(c + S v)`` of ``tau^2 S^-1 G G^T S^-1`` is a linear least-squares problem.
    It is solved (in float64, with a ridge of 1e-10 of the mean feature energy) on
    ``max(8192, 8 (n + 1))`` points uniform in the box enlarged by ``config.enlarge``, and
    is the start of the covariance-loss phase. A model without a noise read-out (additive
    noise) is returned unchanged.
    """
    if model.noise_readout is None:
        return model
    num = max(8192, 8 * (model.n + 1))
    zs = sample_box(key, target, num, config.enlarge)
    hidden = jax.vmap(lambda z: model.phi(model.embed(z)))(zs)
    features = np.concatenate([np.ones((num, 1)), np.asarray(hidden, float)], axis=1)
    g = jax.vmap(lambda z: model.tau * target.g(z) / model.scale[:, None])(zs)
    values = np.asarray(g, float).reshape(num, -1)
    gram = features.T @ features
    ridge = 1e-10 * np.trace(gram) / gram.shape[0]
    coef = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), features.T @ values)
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

    With ``config.remedy_rounds > 0`` drift matching is followed by the spurious-attractor
    remedy (`refine_attractors`); its steps are appended to ``losses`` and its census
    summaries are in ``FitResult.remedy``.

    Args:
        target: the target SDE (see `make_target`, `from_callables`).
        n: number of neurons.
        key: PRNG key (split into init, attractor sampling and batch keys).
        config: training settings.
        tau: neuron time constant.
        private_noise: optional private isotropic neuron noise (not matched; biases the drift).
        on_chunk: progress callback, see `run_training`.
    """
    plan = _fit_plan(key, config)
    model = init_network(target, n, key=plan.init_key, tau=tau, private_noise=private_noise)
    pool = None if config.sampler == "box" else attractor_points(target, key=plan.pool_key)
    state, losses = run_training(
        init_train_state(model, config), target, key=plan.drift_key, config=config, pool=pool,
        on_chunk=on_chunk,
    )  # fmt: skip
    model, history = state.model, None
    if config.remedy_rounds:
        # the remedy measures with the census, which sits downstream of matching
        from ._remedy import refine_attractors

        model, remedy_losses, history = refine_attractors(
            model, target, key=plan.remedy_key, config=config, pool=pool
        )
        losses = np.concatenate([losses, remedy_losses])
    noise_losses = None
    if model.noise_readout is not None:
        noisy = fit_noise_readout(model, target, key=plan.noise_fit_key, config=config)
        noise_state = init_train_state(noisy, config, noise=True)
        noise_state, noise_losses = run_training(
            noise_state, target, key=plan.noise_key, config=plan.noise_config, noise=True
        )
        model = noise_state.model
    return FitResult(model, losses, noise_losses, pool, history)


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
    and the ``(seeds, chunk)`` losses.

    Returns:
        One `FitResult` per seed, in the order of ``seeds``.
    """
    if config.remedy_rounds:
        raise ValueError(
            f"Expected remedy_rounds=0 in a seed sweep (the remedy runs per network); got "
            f"{config.remedy_rounds}. Fit each seed with fit()."
        )
    seeds = [int(s) for s in seeds]
    if len(seeds) == 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"Expected a non-empty sequence of distinct seeds; got {seeds!r}.")
    plans = [_fit_plan(jr.key(s), config) for s in seeds]
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)
    models = [init_network(target, n, key=p.init_key, tau=tau, private_noise=private_noise)
              for p in plans]  # fmt: skip
    pools = None
    if config.sampler != "box":
        pools = stack([attractor_points(target, key=p.pool_key) for p in plans])
    states = stack([init_train_state(m, config) for m in models])
    states, pools, keys = shard_batch((states, pools, stack([p.drift_key for p in plans])))
    states, losses = run_training(
        states, target, key=keys, config=config, pool=pools, on_chunk=on_chunk
    )
    noise_losses = [None] * len(seeds)
    if models[0].noise_readout is not None:
        noisy = stack([
            fit_noise_readout(jax.tree.map(lambda a, i=i: a[i], states.model), target,
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
                  None if pools is None else pools[i])
        for i in range(len(seeds))
    ]  # fmt: skip
