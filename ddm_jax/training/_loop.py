"""The training loop shared by drift matching, noise matching, the remedy and the fit to data.

`TrainConfig` holds the settings; `run_training` advances a `TrainState` chunk by chunk
(``config.chunk`` optimiser steps fused in one compiled call), with step ``i`` drawing its
batch from ``fold_in(key, i)`` so that a resumed run equals an uninterrupted one.
`run_chunks` is the one chunked loop (drift and noise matching, the remedy, the fits to
data): it checks every chunk's losses and names the phase and step of a divergence.
"""

import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, Int, Key as KeyArray

from ..network import LowRankRNN
from ..simulation import POOL_DT, SAMPLERS, batch_points
from ..targets import Target
from ._closed_form import METHODS
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
        remedy_rounds: the attractor census and spurious-attractor remedy after drift
            matching (`refine_attractors`). ``"auto"`` (the default): one census where it
            applies (`census_applies`: the target's orbits are not all fixed points), then
            up to `AUTO_REMEDY_ROUNDS` remedy rounds only if it is not clean; an integer:
            the census and at most that many rounds; ``0``: neither.
        remedy_steps: drift-matching steps per remedy round; None (the default): a fifth of
            ``steps``, so that four rounds cost at most 80% of drift matching.
        method: how the drift is matched: ``"adam"`` (``steps`` Adam steps from a random
            network), ``"lstsq"`` (closed form: a data-anchored hidden layer and the float64
            ridge read-out, no gradient step; see `closed_form`) or ``"lstsq+adam"`` (Adam
            from the closed form, then the ridge read-out refitted). See
            docs/design/closed_form.md for the trade: the closed form is far more accurate
            but has large read-out weights, which private neuron noise turns into drift bias.
        lstsq_points: fit points of the closed form (a quarter as many more are held out to
            choose the scale and ridge), drawn as ``sampler`` says.
        gamma_scale: scale of the closed form's ``Gamma ~ N(0, 1)``; None: chosen among
            (0.5, 1, 2) on the held-out points.
        ridge: ridge of the read-out, relative to the mean eigenvalue of ``H^T H``; None:
            chosen among (1e-12, 1e-10, 1e-8, 1e-6) on the held-out points.
        noise_aware: with private neuron noise, solve the read-out on the features the noisy
            network has (the Gaussian expectation of tanh off the manifold).
        weight_decay: decoupled weight decay of ``W_s`` in Adam (0: plain Adam).
        pool_dt: Euler-Maruyama step of the target trajectories that make the attractor
            pool (`attractor_points`), and of the census's starts in the remedy. Stiff
            flows, and conservative ones that Euler's step pushes outward, keep their
            trajectories in the box only at a smaller step (1e-4).
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
    remedy_rounds: int | str = "auto"
    remedy_steps: int | None = None
    method: str = "adam"
    lstsq_points: int = 32768
    gamma_scale: float | None = None
    ridge: float | None = None
    noise_aware: bool = True
    weight_decay: float = 0.0
    pool_dt: float = POOL_DT

    def __post_init__(self):
        for name in ("steps", "batch", "chunk", "noise_steps", "remedy_steps", "lstsq_points"):
            value = getattr(self, name)
            if name == "remedy_steps" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Expected {name} to be a positive integer; got {value!r}.")
        rounds = self.remedy_rounds
        if rounds != "auto" and (
            not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0
        ):
            raise ValueError(f'Expected remedy_rounds "auto" or an integer >= 0; got {rounds!r}.')
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

        if self.method not in METHODS:
            raise ValueError(f"Expected method in {METHODS}; got {self.method!r}.")
        for name in ("gamma_scale", "ridge"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int | float) and np.isfinite(value) and value > 0
            ):
                raise ValueError(f"Expected {name} None or a finite number > 0; got {value!r}.")
        if not isinstance(self.noise_aware, bool):
            raise ValueError(f"Expected noise_aware True or False; got {self.noise_aware!r}.")
        if not (isinstance(self.weight_decay, int | float) and 0 <= self.weight_decay < np.inf):
            raise ValueError(f"Expected a finite weight_decay >= 0; got {self.weight_decay!r}.")
        dt = self.pool_dt
        if isinstance(dt, bool) or not (isinstance(dt, int | float) and 0 < dt < np.inf):
            raise ValueError(f"Expected a finite pool_dt > 0 (time units); got {dt!r}.")

    def to_dict(self) -> dict:
        """Plain dict for config files."""
        return asdict(self)


def noise_phase_config(config: TrainConfig) -> TrainConfig:
    """The settings of noise matching after a drift fit: box sampler, ``lr / 100``, no decay.

    Noise matching starts from the closed-form read-out (`solve_noise_readout`) and refines
    it on the box at 1/100 of the drift learning rate: at the full rate Adam's first steps
    undo the closed form (measured on a Stuart-Landau oscillator, n = 128: diffusion error
    0.04% before, 24% after 3,000 steps at lr 1e-2, 0.04% at lr 1e-4). `fit` (through
    `fit_plan`) and `fit_data` take it from here.
    """
    return replace(config, sampler="box", lr=config.lr / 100, weight_decay=0.0)


# ---------------------------------------------------------------- training


class TrainState(eqx.Module):
    """Everything needed to continue training bit for bit: model, optimiser state, step."""

    model: LowRankRNN
    opt_state: optax.OptState
    step: Int[Array, ""]


def drift_params(model: LowRankRNN):
    """Filter spec selecting what drift matching trains: ``Gamma``, ``W_s`` and ``b``."""
    spec = jax.tree.map(lambda _: False, model)
    return eqx.tree_at(lambda m: (m.Gamma, m.W_s, m.b), spec, (True, True, True))


def noise_params(model: LowRankRNN):
    """Filter spec selecting what noise matching trains: the noise constant and read-out."""
    spec = jax.tree.map(lambda _: False, model)
    return eqx.tree_at(lambda m: (m.noise_const, m.noise_readout), spec, (True, True))


def optimiser(config: TrainConfig, steps: int) -> optax.GradientTransformation:
    """Adam with the cosine-decayed learning rate of ``config`` over ``steps`` steps."""
    schedule = optax.cosine_decay_schedule(config.lr, steps, alpha=config.final_lr_fraction)
    if not config.weight_decay:
        return optax.adam(schedule)
    return optax.adamw(schedule, weight_decay=config.weight_decay, mask=_readout_mask)


def _readout_mask(params):
    """True at ``W_s`` only: weight decay shrinks the read-out, not the hidden layer."""
    mask = jax.tree.map(lambda _: False, params)
    if params.W_s is None:  # noise matching: nothing to decay
        return mask
    return eqx.tree_at(lambda m: m.W_s, mask, True)


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


def _chunk(state: TrainState, target, pool, key, config, loss_fn, filter_fn, num, schedule_steps):
    """``num`` optimiser steps from ``state``; returns the new state and the step losses.

    The learning rate follows the cosine schedule of ``config`` over ``schedule_steps``, the
    length of the whole phase, which the caller names (drift matching ``config.steps``, noise
    matching ``config.noise_steps``, a remedy round ``config.remedy_steps``).
    """
    optim = optimiser(config, schedule_steps)
    batch_loss = lambda model, k: loss_fn(model, target, batch_points(k, target, pool, config))
    return optimiser_steps(state, optim, filter_fn, batch_loss, key, num)


train_chunk = eqx.filter_jit(_chunk)  # ``num`` steps of one network, one compiled call
# a seed sweep: states, pools and keys carry a leading seed axis, the target is shared
_train_chunks = eqx.filter_jit(eqx.filter_vmap(_chunk, in_axes=(0, None, 0, 0) + (None,) * 5))


def init_train_state(model: LowRankRNN, config: TrainConfig, *, noise: bool = False) -> TrainState:
    """Fresh optimiser state for drift (or, with ``noise=True``, diffusion) matching."""
    filter_fn = noise_params if noise else drift_params
    optim = optimiser(config, config.noise_steps if noise else config.steps)
    params, _ = eqx.partition(model, filter_fn(model))
    return TrainState(model, optim.init(params), jnp.asarray(0, dtype=jnp.int32))


def _divergence(losses: np.ndarray, start: int, total: int, phase: str, remedy: str) -> str:
    """The one-line message of a non-finite loss in ``losses`` (``(seeds, steps)`` in a sweep)."""
    bad = np.argwhere(~np.isfinite(losses))[0]
    row, where = losses, ""
    if losses.ndim == 2:  # a seed sweep
        row, where = losses[bad[0]], f" (member {bad[0]} of the sweep, counting from 0)"
    i = int(bad[-1])
    seen = f"{row[i - 1]:.3g} at step {start + i}" if i else "none"
    return (
        f"{phase} diverged: the loss became non-finite at step {start + i + 1} of {total}"
        f"{where} (first loss {row[0]:.3g}, last finite {seen}). {remedy}"
    )


def run_chunks(
    state: TrainState,
    advance: Callable[[TrainState, int], tuple[TrainState, Array]],
    *,
    total_steps: int,
    chunk: int,
    phase: str,
    lr: float,
    remedy: str | None = None,
    on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
) -> tuple[TrainState, np.ndarray]:
    """Advance ``state`` to step ``total_steps``, ``chunk`` steps per ``advance(state, num)``.

    The one chunked training loop: drift and noise matching (`run_training`), the remedy's
    rounds and the fits to data run their optimiser scans through it. After every chunk the
    losses are checked: a non-finite one raises at once, before ``on_chunk`` sees the chunk.

    Args:
        state: where to start (a leading seed axis for a sweep; its step counts from 0).
        advance: ``advance(state, num)`` runs ``num`` optimiser steps in one compiled call
            and returns the new state and their losses; its learning-rate schedule spans
            ``total_steps`` (the caller passes the length explicitly, see `train_chunk`).
        total_steps: the step ``state`` is advanced to.
        chunk: at most this many steps per call of ``advance``.
        phase: what is trained, as the error names it (``"Drift matching"``).
        lr: the learning rate, named by the default remedy.
        remedy: the error's advice (default: a learning rate below ``lr``).
        on_chunk: ``on_chunk(state, chunk_losses)`` after every finite chunk (progress,
            checkpoints).

    Raises:
        FloatingPointError: a one-line message naming ``phase``, the first non-finite step
            (of ``total_steps``), the first and last finite losses and ``remedy``.

    Returns:
        The final state and the losses of the steps run here (``(seeds, steps)`` for a sweep,
        float32 zeros of no steps when ``state`` is already at ``total_steps``).
    """
    remedy = f"Try a smaller learning rate than {lr}." if remedy is None else remedy
    start = int(jnp.min(state.step))
    losses = []
    while (done := int(jnp.min(state.step))) < total_steps:
        num = min(chunk, total_steps - done)
        state, chunk_losses = advance(state, num)
        chunk_losses = np.asarray(chunk_losses)
        losses.append(chunk_losses)
        if not np.all(np.isfinite(chunk_losses)):
            so_far = np.concatenate(losses, axis=-1)
            raise FloatingPointError(_divergence(so_far, start, total_steps, phase, remedy))
        if on_chunk is not None:
            on_chunk(state, chunk_losses)
    shape = (state.step.shape[0], 0) if state.step.ndim == 1 else (0,)
    return state, np.concatenate(losses, axis=-1) if losses else np.zeros(shape, np.float32)


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
    The loop is `run_chunks`; its schedule spans ``config.steps`` (``config.noise_steps``
    with ``noise=True``).

    Raises:
        FloatingPointError: when a chunk's loss is not finite (`run_chunks`).

    Returns:
        The final state and the losses of the steps run here (``(seeds, steps)`` for a sweep).
    """
    total = config.noise_steps if noise else config.steps
    loss_fn = diffusion_loss if noise else drift_loss
    filter_fn = noise_params if noise else drift_params
    if config.sampler != "box" and pool is None:
        raise ValueError(
            f"Expected attractor points (pool) for sampler {config.sampler!r}; "
            "compute them with attractor_points()."
        )
    sweep = state.step.ndim == 1
    if sweep and len(set(np.asarray(state.step).tolist())) > 1:
        raise ValueError(f"Expected every seed of a sweep at the same step; got {state.step}.")
    chunk_fn = _train_chunks if sweep else train_chunk

    def advance(state, num):
        return chunk_fn(state, target, pool, key, config, loss_fn, filter_fn, num, total)

    phase = "Noise matching" if noise else "Drift matching"
    return run_chunks(state, advance, total_steps=total, chunk=config.chunk, phase=phase,
                      lr=config.lr, on_chunk=on_chunk)  # fmt: skip
