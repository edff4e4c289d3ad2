"""Learn the target from recorded trajectories and embed it: drift matching on increments.

The drift is the conditional mean of increments, ``f(z) = E[z_{t+dt} - z_t | z_t = z] / dt
+ O(dt)``, so the perceptron is fitted by the drift loss to pairs
``(z_t, y_t)``. Each pair is noisy (variance ``2 D / dt``) and the fit averages it out.

**Discretisation bias and its correction.** ``E[dz | z] / dt = f + (dt / 2) L f + O(dt^2)``
(``L`` the generator): an O(dt) bias that grows with the Jacobian of f. With
``correct=True`` (the default) the regression target is the Richardson combination
``y = 2 (z_{t+dt} - z_t) / dt - (z_{t+2dt} - z_t) / (2 dt)``, whose mean is ``f + O(dt^2)``
(its variance is 2.5 times that of the plain ``(z_{t+dt} - z_t) / dt``).

**Diffusion.** Constant: from the residuals ``r = dz - E[dz | z]`` over lag dt: ``dz - f dt``
and ``D = E[r r^T] / (2 dt)`` for a plain fit (biased by O(dt): ``Cov(dz | z) = 2 D dt +
dt^2 (J D + D J^T) + O(dt^3)``); for a corrected one ``E[dz | z]`` is the flow of the learned
drift over dt (`increment_means`) and D solves the covariance equation to O(dt^3) with the
Jacobian moments of the learned drift (`diffusion_from_covariance`).
State-dependent: the residual outer products ``r r^T / dt`` (Richardson over lags dt and
2 dt when corrected) are regressed (least squares,
linear in the fixed hidden layer ``phi(Gamma v + b)``) onto a covariance field ``C(z)``, and
the network's noise read-out is fitted to ``C`` by the existing closed form and covariance
loss (`solve_noise_readout`, `run_training(noise=True)`).

**Measurement noise.** Observations ``y_t = z_t + eta_t`` with independent ``eta ~ N(0, s^2 I)``
add ``eta_{t+dt} - eta_t`` to every increment: the residual covariance grows by ``2 s^2 I``,
so D is biased *upwards* by ``s^2 / dt`` (with or without the correction), which
dominates at fine sampling. The drift is biased towards stronger restoring force
(``-eta_t`` sits in both ``z_t`` and the increment). `fit_recording` (``_recordings``)
estimates the noise and corrects both.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Key
from ..network import LowRankRNN, init_network
from ..targets import Target, from_callables
from ..training import (
    TrainConfig,
    TrainState,
    adam_steps,
    anchored_layer,
    drift_params,
    init_train_state,
    noise_phase_config,
    optimiser,
    optimiser_steps,
    ridge_solve,
    run_chunks,
    run_training,
    solve_noise_readout,
)
from ._data import Increments, data_box, increments, trajectory_segments
from ._data_diffusion import increment_means, residual_diffusion

MIN_PAIRS_PER_NEURON = 10


class DataFit(eqx.Module):
    """Output of `fit_data`: the embedded network, the learned target and the diffusion.

    Attributes:
        model: the trained `LowRankRNN` (drift from the data; noise read-out for
            state-dependent noise, else the constant ``tau S^-1 G``).
        target: the learned SDE as a regular `Target` (drift and diffusion read from the
            network), usable by `simulate_target`, `fidelity_report`, ...
        D: ``(k, k)`` constant diffusion matrix from the residuals (for state-dependent
            noise: the average over the data).
        losses: drift loss per step.
        noise_losses: covariance loss per step (state-dependent noise), else None.
    """

    model: LowRankRNN
    target: Target
    D: Float[Array, "k k"]
    losses: np.ndarray
    noise_losses: np.ndarray | None


def _zero(t, z, args):
    return jnp.zeros_like(z)


def _unit_noise(t, z, args):
    return jnp.eye(z.shape[0])


def _learned_drift(t, z, args):
    return args["model"].target_drift(z)


def _learned_diffusion(t, z, args):
    return args["model"].latent_noise_target(z)


def learned_target(model: LowRankRNN, *, z0=None, name: str = "data") -> Target:
    """The SDE a network carries, as a `Target`: drift ``f_net``, diffusion ``S Ghat / tau``.

    The box is the network's coordinate box (``c +- S``), ``z0`` defaults to its centre.
    """
    return from_callables(
        _learned_drift, _learned_diffusion, box=(model.centre - model.scale,
        model.centre + model.scale), z0=z0, args={"model": model}, name=name,
    )  # fmt: skip


_REMEDIES = (
    "Either the learning rate is too large (lr {lr:g}: try a tenth of it) or the data carry "
    "no usable noise (noise-free, degenerate, or sampled too coarsely for the dynamics)."
)


def drift_targets(inc: Increments, correct: bool) -> np.ndarray:
    """The regression targets y: ``dz1 / dt``, or the Richardson ``2 dz1/dt - dz2/(2 dt)``."""
    if not correct:
        return inc.dz1 / inc.dt
    return 2 * inc.dz1 / inc.dt - inc.dz2 / (2 * inc.dt)


def _pair_chunk(state: TrainState, zs, ys, key, config: TrainConfig, num: int, schedule_steps):
    """``num`` steps of the drift loss on random batches of the pairs ``(zs, ys)``.

    The learning rate follows the cosine schedule of ``config`` over ``schedule_steps``.
    """

    def batch_loss(model, step_key):
        idx = jr.randint(step_key, (config.batch,), 0, zs.shape[0])
        v = (zs[idx] - model.centre) / model.scale
        pred = jax.vmap(model.latent_field)(v)
        return jnp.mean(jnp.sum((pred - model.tau * ys[idx] / model.scale) ** 2, -1))

    optim = optimiser(config, schedule_steps)
    return optimiser_steps(state, optim, drift_params, batch_loss, key, num)


_train_pairs = eqx.filter_jit(_pair_chunk)


def _fit_pairs(model: LowRankRNN, zs, ys, *, key, config: TrainConfig, steps: int, on_chunk):
    """``steps`` Adam steps of the drift loss on the pairs ``(zs, ys)`` (`run_chunks`).

    Raises:
        FloatingPointError: when the loss becomes non-finite, in one line: the step, the
            first and last finite losses and both remedies (the learning rate, the data).
    """
    dtype = model.W_s.dtype
    zs_dev, ys_dev = jnp.asarray(zs, dtype), jnp.asarray(ys, dtype)

    def advance(state, num):
        return _train_pairs(state, zs_dev, ys_dev, key, config, num, steps)

    return run_chunks(
        init_train_state(model, config), advance, total_steps=steps, chunk=config.chunk,
        phase="The drift fit to the data", lr=config.lr,
        remedy=_REMEDIES.format(lr=config.lr), on_chunk=on_chunk,
    )  # fmt: skip


RIDGES = (1e-8, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def _normal_equations(
    model: LowRankRNN, zs, values, *, constant: bool, held: int = 0, gram: bool = True
):
    """``(F^T F, F^T values)`` in float64 over blocks, ``F`` the hidden layer (plus a 1).

    With ``held > 0`` every ``held``-th of 20 or more blocks is summed apart, for validation.
    Without ``gram`` the ``F^T F`` are 0.0 (not computed).
    """
    hidden = jax.jit(jax.vmap(lambda z: model.phi(model.embed(z))))
    block = min(32768, -(-len(zs) // 20))
    sums = [[0.0, 0.0], [0.0, 0.0]]  # fit, held out
    for j, i in enumerate(range(0, len(zs), block)):
        feats = np.asarray(hidden(jnp.asarray(zs[i : i + block], model.W_s.dtype)), float)
        if constant:
            feats = np.concatenate([np.ones((len(feats), 1)), feats], axis=1)
        part = sums[int(held > 0 and j % held == held - 1)]
        if gram:
            part[0] = part[0] + feats.T @ feats
        part[1] = part[1] + feats.T @ values[i : i + block]
    return sums


def _held_out_ridge_solve(model: LowRankRNN, zs, values, *, constant: bool, grams=None):
    """Least squares with the ridge that predicts held-out blocks best, refitted on all.

    One block of pairs in five is held out; the ridge is relative to the mean feature energy.
    ``grams``: the ``(fit, held-out)`` ``F^T F`` of the same ``zs`` and hidden layer, reused.
    Returns the coefficients and those ``grams``.
    """
    (g_fit, r_fit), (g_val, r_val) = _normal_equations(model, zs, values, constant=constant,
                                                       held=5, gram=grams is None)  # fmt: skip
    if grams is not None:
        g_fit, g_val = grams

    def held_out_loss(ridge):
        w = ridge_solve(g_fit, r_fit, ridge)
        return np.sum(w * (g_val @ w)) - 2 * np.sum(w * r_val)

    best = min(RIDGES, key=held_out_loss)
    return ridge_solve(g_fit + g_val, r_fit + r_val, best), (g_fit, g_val)


def data_anchored_layer(model: LowRankRNN, zs, key, config: TrainConfig) -> LowRankRNN:
    """For ``config.method`` other than ``"adam"``: the closed form's hidden layer on the data.

    ``Gamma`` and ``b`` from `anchored_layer` (scale ``config.gamma_scale`` or 1) at the data
    states ``zs``; the model unchanged for ``"adam"``.
    """
    if config.method == "adam":
        return model
    dtype = model.W_s.dtype
    v = (zs - np.asarray(model.centre)) / np.asarray(model.scale)
    scale = 1.0 if config.gamma_scale is None else config.gamma_scale
    gamma, b = anchored_layer(key, model.n, v, scale, np.dtype(dtype))
    return eqx.tree_at(lambda m: (m.Gamma, m.b), model,
                       (jnp.asarray(gamma, dtype), jnp.asarray(b, dtype)))  # fmt: skip


def refit_readout(model: LowRankRNN, zs, ys) -> LowRankRNN:
    """The read-out ``W_s`` by linear least squares on all pairs, the hidden layer fixed.

    ``-v + W_s phi(Gamma v + b) = tau S^-1 y`` is linear in ``W_s``: the exact minimiser of
    the drift loss over every pair, free of the noise of stochastic gradients. Solved in
    float64 over blocks of pairs, with a ridge penalty chosen among `RIDGES` (relative to the
    mean feature energy) by its error on held-out blocks, since each pair is noisy.
    """
    return _refit_readout(model, zs, ys)[0]


def _refit_readout(model: LowRankRNN, zs, ys, grams=None):
    """`refit_readout`, and the ``F^T F`` it used (``grams``: reuse them; same zs and layer)."""
    v = (zs - np.asarray(model.centre)) / np.asarray(model.scale)
    rhs = float(model.tau) * ys / np.asarray(model.scale) + v
    coef, grams = _held_out_ridge_solve(model, zs, rhs, constant=False, grams=grams)
    return eqx.tree_at(lambda m: m.W_s, model, jnp.asarray(coef.T, model.W_s.dtype)), grams


def _psd_sqrt(c):
    w, u = jnp.linalg.eigh((c + c.T) / 2)
    return (u * jnp.sqrt(jnp.clip(w, 0.0))) @ u.T


def _covariance_field(t, z, args):
    model, coef = args["model"], args["coef"]
    feats = jnp.concatenate([jnp.ones(1), model.phi(model.embed(z))])
    k = z.shape[0]
    return _psd_sqrt((feats @ coef).reshape(k, k))


def _fit_state_noise(model, inc: Increments, correct, box, *, key, config):
    """Noise read-out of a state-dependent diffusion from residual outer products."""
    m1, m2 = increment_means(model, inc, correct)
    outer = lambda r, h: np.einsum("ni,nj->nij", r, r).reshape(len(r), -1) / h
    values = outer(inc.dz1 - m1, inc.dt)  # E = 2 D dt / dt = G G^T
    if correct:
        values = 2 * values - outer(inc.dz2 - m2, 2 * inc.dt)
    coef, _ = _held_out_ridge_solve(model, inc.z, values, constant=True)
    coef = jnp.asarray(coef, model.W_s.dtype)
    field = from_callables(
        _zero, _covariance_field, box=box, args={"model": model, "coef": coef}, name="data"
    )
    k_fit, k_train = jr.split(key)
    noisy = solve_noise_readout(model, field, key=k_fit, config=config)
    noise_config = noise_phase_config(config)
    state, losses = run_training(
        init_train_state(noisy, noise_config, noise=True), field, key=k_train,
        config=noise_config, noise=True,
    )  # fmt: skip
    return state.model, losses


def check_data(data, dt, n, *, correct: bool = True) -> tuple[list[np.ndarray], Increments]:
    """The segments and increments `fit_data` would use, every input checked (see there)."""
    segments = trajectory_segments(data, dt)
    inc = increments(segments, dt, two_lags=correct)
    k = inc.z.shape[1]
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < k:
        raise ValueError(f"Expected the number of neurons n >= k = {k}; got {n!r}.")
    if len(inc.z) < MIN_PAIRS_PER_NEURON * n:
        raise ValueError(
            f"Expected at least {MIN_PAIRS_PER_NEURON} increments per neuron "
            f"({MIN_PAIRS_PER_NEURON * n} for n = {n}); got {len(inc.z)}: record more or use "
            "fewer neurons."
        )
    return segments, inc


def fit_data(
    data,
    dt: float,
    n: int,
    *,
    key: Key,
    config: TrainConfig | None = None,
    correct: bool = True,
    state_dependent_noise: bool = False,
    refit: bool = True,
    tau: float = 1.0,
    name: str = "data",
    on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
) -> DataFit:
    """Learn drift and diffusion from trajectories and embed them in an ``n``-neuron network.

    Args:
        data: ``(B, T, k)`` or ``(T, k)`` array sampled every ``dt`` (NaN: missing), or a list
            of ``(T_i, k)`` arrays (see `trajectory_segments`).
        dt: sampling interval (> 0), in the time units of the learned SDE.
        n: number of neurons; at least ``10 n`` increments are required.
        key: PRNG key (network init, batches, noise matching).
        config: ``steps``, ``batch``, ``lr``, ``final_lr_fraction``, ``chunk`` and
            ``noise_steps`` of `TrainConfig` are used (the sampler is the data); default
            ``TrainConfig()``.
        correct: regress on the Richardson combination of lags dt and 2 dt (drift and D
            unbiased to O(dt^2)) rather than on ``dz / dt`` (O(dt)).
        state_dependent_noise: learn a noise read-out ``G(z)`` instead of a constant D.
        refit: finish with the exact least-squares read-out over all pairs (`refit_readout`);
            always done with ``config.method`` ``"lstsq"`` or ``"lstsq+adam"``, whose hidden
            layer is anchored on the data (`anchored_layer`, Gamma scale ``config.gamma_scale``
            or 1; ``"lstsq"`` takes no Adam step).
        tau: neuron time constant.
        name: label of the learned target.
        on_chunk: called as ``on_chunk(state, chunk_losses)`` after every chunk of drift steps.

    Raises:
        ValueError: for bad trajectories or dt, or too few increments for ``n``.
        FloatingPointError: when the drift fit diverges (checked after every chunk): the
            step, the losses seen and both remedies (the learning rate, the data).
    """
    config = TrainConfig() if config is None else config
    segments, inc = check_data(data, dt, n, correct=correct)
    n, k = int(n), inc.z.shape[1]
    low, high = data_box(segments)
    box_target = from_callables(_zero, _unit_noise, box=(low, high), name=name)
    k_init, k_train, k_noise = jr.split(key, 3)
    model = init_network(
        box_target, n, key=k_init, tau=tau, state_dependent_noise=state_dependent_noise
    )
    dtype = model.W_s.dtype
    model = data_anchored_layer(model, inc.z, jr.fold_in(key, 2), config)
    ys = drift_targets(inc, correct)
    steps = config.steps if adam_steps(config) else 0
    state, all_losses = _fit_pairs(model, inc.z, ys, key=k_train, config=config, steps=steps,
                                   on_chunk=on_chunk)  # fmt: skip
    model = state.model
    if refit or config.method != "adam":
        model = refit_readout(model, inc.z, ys)
    D = residual_diffusion(model, inc, correct)
    eig = np.linalg.eigvalsh(D)
    if not (np.all(np.isfinite(eig)) and eig.min() > 1e-9 * max(eig.max(), 0.0)):
        raise ValueError(
            f"Expected a positive definite diffusion from the residuals; got eigenvalues "
            f"{eig.tolist()} after a drift fit of loss {all_losses[0]:.3g} at the first step, "
            f"{all_losses[-1]:.3g} at the last. {_REMEDIES.format(lr=config.lr)}"
        )
    G = np.linalg.cholesky(2 * D)
    noise_const = float(tau) * G / np.asarray(model.scale, float)[:, None]
    model = eqx.tree_at(lambda m: m.noise_const, model, jnp.asarray(noise_const, dtype))
    noise_losses = None
    if state_dependent_noise:
        model = eqx.tree_at(lambda m: m.noise_const, model, jnp.zeros((k, k), dtype))
        model, noise_losses = _fit_state_noise(
            model, inc, correct, (low, high), key=k_noise, config=config
        )
    z0 = np.median(np.concatenate(segments), axis=0)
    target = learned_target(model, z0=z0, name=name)
    return DataFit(model, target, jnp.asarray(D, dtype), all_losses, noise_losses)


def fitted_linear_drift(target: Target, zs: Float[Array, "batch k"]) -> Float[Array, "k k+1"]:
    """Least-squares affine fit ``f(z) ~ A z + a`` over ``zs``: returns ``[A | a]``.

    For an OU process ``dz = -B z dt + G dB`` the learned ``A`` should be ``-B``.
    """
    f = jax.vmap(target.f)(zs)
    feats = jnp.concatenate([zs, jnp.ones((zs.shape[0], 1))], axis=1)
    coef = jnp.linalg.lstsq(feats, f)[0]
    return coef.T
