"""Closed-form drift matching: random features anchored on the data, a float64 ridge read-out.

With the hidden layer ``(Gamma, b)`` fixed, the drift loss
``|| -v + W_s phi(Gamma v + b) - tau S^-1 f(c + S v) ||^2`` is linear in ``W_s``: ``W_s`` is the
least-squares solution of ``H W_s^T = Y`` with ``H = phi(Gamma v + b)`` (points by neurons)
and ``Y = tau S^-1 f(z) + v``. The hidden layer is sampled from the data: ``Gamma = s N(0, 1)``
on the box-scaled coordinates ``v`` and each unit's hyperplane passes through a random fit
point ``v_j(i)`` (``b_i = -Gamma_i . v_j(i)``), so every unit bends where the data are.

The scale ``s`` (among `SCALES`) and the ridge (among `RIDGES`, relative to the mean eigenvalue
of ``H^T H``) are chosen by the error on held-out points only, drawn apart from the fit points
with their own key; ``W_s`` is then solved on fit and held-out points together. The solve is in
float64 (the float32 normal equations fail) with bounded memory: ``H^T H`` and ``H^T Y`` are
accumulated over chunks of points, never forming ``H`` (an ``n = 4096`` network does not need
a ``65,536 x 4,096`` matrix).

With private neuron noise ``sigma > 0`` (`noise_aware`), the features are the Gaussian
expectation of ``tanh`` under the stationary off-manifold variance
``sigma^2 / (2 tau) (1 - P_ii)`` of each neuron (``P`` the projection on the columns of
``Gamma``), by Gauss-Hermite quadrature: the read-out then matches the drift the noisy network
actually has, ``-v + W_s E[phi(Gamma v + b + xi)]``, rather than the noise-free one.

A state-dependent noise read-out ``Ghat(v) = noise_const + W_g phi(Gamma v + b)`` shares the
hidden layer: it is the ridge least squares of ``tau S^-1 G(c + S v)`` on ``(1, phi)`` over
box points (`noise_readout`, the ridge among `NOISE_RIDGES` chosen on held-out box points),
and with such a read-out the closed form chooses the scale by the sum of both held-out
errors, drift and noise.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import scipy.linalg

from .._custom_types import Key
from ..network import LowRankRNN
from ..simulation import sample_box
from ..targets import Target

METHODS = ("adam", "lstsq", "lstsq+adam")
SCALES = (0.5, 1.0, 2.0)  # of Gamma ~ N(0, 1) on the box-scaled coordinates
RIDGES = (1e-12, 1e-10, 1e-8, 1e-6)  # relative to the mean eigenvalue of H^T H
NOISE_RIDGES = (1e-14, 1e-12, 1e-10, 1e-8)  # of the noise read-out (smooth, noise-free values)
CHUNK_ELEMENTS = 2**22  # features held at once: 32 MB in float64
HERMITE_NODES = 16
NOISE_STREAM = 0x6E6F6973  # "nois": the closed form's noise points, folded into its key


def fit_points(
    key: Key, target: Target, pool, num: int, *, sampler: str, attractor_fraction: float,
    enlarge: float,
) -> np.ndarray:  # fmt: skip
    """``num`` points drawn as the sampler says: from the pool, the enlarged box, or both."""
    if sampler == "box" or pool is None:
        from_pool = 0
    else:
        from_pool = num if sampler == "attractor" else round(num * attractor_fraction)
    k_pool, k_box = jr.split(key)
    parts = []
    if from_pool:
        idx = jr.choice(k_pool, pool.shape[0], (from_pool,), replace=from_pool > pool.shape[0])
        parts.append(np.asarray(pool)[np.asarray(idx)])
    if num - from_pool:
        parts.append(np.asarray(sample_box(k_box, target, num - from_pool, enlarge)))
    return np.concatenate(parts).astype(float)


def anchored_layer(key: Key, n: int, anchors: np.ndarray, scale: float, dtype):
    """``Gamma = scale N(0, 1)`` and ``b_i = -Gamma_i . v_j(i)`` for random anchors ``v_j(i)``.

    Returned in float64 holding values exactly representable in ``dtype`` (the network's), so
    the features the read-out is solved on are those of the stored network.
    """
    return _scaled_layer(_layer_draws(key, n, anchors), anchors, scale, dtype)


def _layer_draws(key: Key, n: int, anchors: np.ndarray):
    k_gamma, k_anchor = jr.split(key)
    normal = np.asarray(jr.normal(k_gamma, (n, anchors.shape[1])), float)
    return normal, np.asarray(jr.randint(k_anchor, (n,), 0, anchors.shape[0]))


def _scaled_layer(draws, anchors: np.ndarray, scale: float, dtype):
    normal, j = draws
    gamma = (normal * scale).astype(dtype).astype(float)
    b = (-np.sum(gamma * anchors[j], axis=1)).astype(dtype).astype(float)
    return gamma, b


def off_manifold_std(gamma: np.ndarray, private_noise: float, tau: float) -> np.ndarray:
    """Stationary off-manifold std of each neuron: sigma sqrt((1 - P_ii) / (2 tau))."""
    q, _ = np.linalg.qr(gamma)
    return private_noise * np.sqrt(np.clip(1 - np.sum(q**2, axis=1), 0, 1) / (2 * tau))


def features(gamma, b, vs, std=None, *, constant: bool = False) -> np.ndarray:
    """``phi(Gamma v + b)`` in float64, or with ``std`` its expectation under ``N(0, std^2)``.

    With ``constant``, a column of ones comes first (the noise read-out's constant).
    """
    pre = vs @ gamma.T + b
    if std is None or not np.any(std):
        h = np.tanh(pre)
    else:
        x, w = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)
        w = w / np.sqrt(2 * np.pi)
        h = sum(wq * np.tanh(pre + std * xq) for xq, wq in zip(x, w, strict=True))
    return np.concatenate([np.ones((len(h), 1)), h], axis=1) if constant else h


def normal_equations(gamma, b, vs, ys, std=None, *, constant: bool = False):
    """``(H^T H, H^T Y, sum Y^2)`` in float64, accumulated over chunks of points."""
    n = gamma.shape[0] + int(constant)
    chunk = max(1, CHUNK_ELEMENTS // n)
    gram, rhs, yy = np.zeros((n, n)), np.zeros((n, ys.shape[1])), 0.0
    for i in range(0, len(vs), chunk):
        h = features(gamma, b, vs[i : i + chunk], std, constant=constant)
        gram += h.T @ h
        rhs += h.T @ ys[i : i + chunk]
        yy += float(np.sum(ys[i : i + chunk] ** 2))
    return gram, rhs, yy


def ridge_solve(gram, rhs, ridge: float) -> np.ndarray:
    """``(H^T H + r I)^-1 H^T Y`` with ``r = ridge * trace(H^T H) / n`` (Cholesky, float64)."""
    reg = ridge * np.trace(gram) / gram.shape[0]
    a = gram + reg * np.eye(gram.shape[0])
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(a), rhs)
    except np.linalg.LinAlgError:  # numerically singular: the eigen-solve still works
        w, u = np.linalg.eigh(a)
        return u @ ((u.T @ rhs) / np.maximum(w, reg)[:, None])


def residual_energy(coef, stats) -> float:
    """``||H W - Y||^2`` from the normal equations ``stats = (H^T H, H^T Y, sum Y^2)``."""
    gram, rhs, yy = stats
    return float(yy - 2 * np.sum(coef * rhs) + np.sum(coef * (gram @ coef)))


def select_ridge(fit, held, ridges, dtype=None) -> tuple[float, list[float]]:
    """The ridge whose fit-point solution has the smallest relative error on held-out points.

    Returns the ridge and the held-out relative errors of every ridge. Only the held-out
    statistics judge; the fit statistics only produce the candidate solutions. With
    ``dtype``, each solution is judged rounded to it (the weights the network will hold).
    """

    def error(ridge):
        coef = ridge_solve(fit[0], fit[1], ridge)
        if dtype is not None:
            coef = coef.astype(dtype).astype(float)
        return np.sqrt(max(residual_energy(coef, held), 0.0) / held[2])

    errors = [error(r) for r in ridges]
    return ridges[int(np.argmin(errors))], errors


@eqx.filter_jit
def _drift(target: Target, zs):
    return jax.vmap(target.f)(zs)


def _targets(target: Target, model: LowRankRNN, zs: np.ndarray):
    """Box-scaled points ``v`` and regression values ``Y = tau S^-1 f(z) + v`` (float64)."""
    c, s = np.asarray(model.centre, float), np.asarray(model.scale, float)
    f = np.asarray(_drift(target, jnp.asarray(zs, model.W_s.dtype)), float)
    bad = ~np.all(np.isfinite(f), axis=-1)
    if bad.any():  # the regression would fail later with a bare "infs or NaNs"
        raise ValueError(
            f"Expected the drift of {target.name!r} to be finite where the closed form fits "
            f"it (the box enlarged by TrainConfig.enlarge, and the attractor pool); it is not "
            f"at {bad.sum()} of {bad.size} points, e.g. z = {np.asarray(zs)[bad][0].tolist()}. "
            "Use a smaller enlarge, or sampler='attractor'."
        )
    vs = (zs - c) / s
    return vs, float(model.tau) * f / s + vs


@eqx.filter_jit
def _diffusion(target: Target, zs):
    return jax.vmap(target.g)(zs)


def noise_points(target: Target, model: LowRankRNN, key: Key, enlarge: float):
    """Fit and held-out box points of the noise read-out: ``(v, Y)`` pairs in float64.

    ``max(8192, 8 (n + 1))`` fit points and a quarter as many held out, uniform in the box
    enlarged by ``enlarge``; ``Y = tau S^-1 G(c + S v)``, flattened to ``k m`` columns.
    """
    num = max(8192, 8 * (model.n + 1))
    c, s = np.asarray(model.centre, float), np.asarray(model.scale, float)
    out = []
    for k, m in zip(jr.split(key), (num, max(num // 4, 1)), strict=True):
        zs = np.asarray(sample_box(k, target, m, enlarge), float)
        g = np.asarray(_diffusion(target, jnp.asarray(zs, model.W_s.dtype)), float)
        out.append(((zs - c) / s, (float(model.tau) * g / s[:, None]).reshape(m, -1)))
    return tuple(out)


def noise_readout(gamma, b, data, dtype, ridges=NOISE_RIDGES) -> tuple[np.ndarray, float, float]:
    """The noise read-out ``(noise_const, W_g^T)`` stacked, by the held-out ridge.

    ``data``: `noise_points`. The ridge is chosen among ``ridges`` by the held-out error of
    the weights rounded to ``dtype``, then solved on fit and held-out points together.
    Returns the coefficients (``1 + n`` rows, ``k m`` columns), the ridge and its held-out
    relative error.
    """
    (fit_v, fit_y), (held_v, held_y) = data
    fit = normal_equations(gamma, b, fit_v, fit_y, constant=True)
    held = normal_equations(gamma, b, held_v, held_y, constant=True)
    ridge, errors = select_ridge(fit, held, ridges, dtype=dtype)
    return ridge_solve(fit[0] + held[0], fit[1] + held[1], ridge), ridge, float(min(errors))


def _draw(target, model, pool, key, config):
    k_fit, k_held = jr.split(key)
    opts = dict(sampler=config.sampler, attractor_fraction=config.attractor_fraction,
                enlarge=config.enlarge)  # fmt: skip
    fit_v, fit_y = _targets(target, model, fit_points(k_fit, target, pool, config.lstsq_points,
                                                      **opts))  # fmt: skip
    held_z = fit_points(k_held, target, pool, max(config.lstsq_points // 4, 1), **opts)
    return (fit_v, fit_y), _targets(target, model, held_z)


def _noise_std(model: LowRankRNN, gamma, noise_aware: bool):
    sigma = float(model.private_noise)
    if not (noise_aware and sigma > 0):
        return None
    return off_manifold_std(gamma, sigma, float(model.tau))


def _store(model: LowRankRNN, gamma, b, coef) -> LowRankRNN:
    dtype = model.W_s.dtype
    return eqx.tree_at(
        lambda m: (m.Gamma, m.b, m.W_s), model,
        (jnp.asarray(gamma, dtype), jnp.asarray(b, dtype), jnp.asarray(coef.T, dtype)),
    )  # fmt: skip


def _solve_layer(gamma, b, data, std, ridges):
    (fit_v, fit_y), (held_v, held_y) = data
    fit = normal_equations(gamma, b, fit_v, fit_y, std)
    held = normal_equations(gamma, b, held_v, held_y, std)
    ridge, errors = select_ridge(fit, held, ridges) if len(ridges) > 1 else (ridges[0], [None])
    return fit, held, ridge, errors


def closed_form(
    model: LowRankRNN, target: Target, pool, *, key: Key, config
) -> tuple[LowRankRNN, dict]:
    """The closed-form drift fit: a data-anchored hidden layer and the ridge read-out.

    Replaces ``Gamma``, ``b`` and ``W_s`` of ``model`` (the rest is kept). Scale and ridge are
    ``config.gamma_scale`` and ``config.ridge`` when given, else chosen among `SCALES` and
    `RIDGES` by the error on held-out points. A network with a state-dependent noise
    read-out (fitted later on the same hidden layer, `noise_readout`) has the scale chosen by
    the sum of the drift's and the noise read-out's held-out relative errors: on a
    Stuart-Landau oscillator with ``G = 0.2 diag(sqrt(1 + z^2))`` (n = 128) the drift alone
    chose 0.5 (noise read-out 0.032% off on the limit cycle), the sum chooses 1 (0.005%,
    drift 0.004% -> 0.007%). Returns the model and what was chosen (``gamma_scale``,
    ``ridge``, the held-out error, ``max_abs_W_s``, and with a noise read-out
    ``noise_held_out_error``).
    """
    k_data, k_layer = jr.split(key)
    data = _draw(target, model, pool, k_data, config)
    scales = SCALES if config.gamma_scale is None else (config.gamma_scale,)
    ridges = RIDGES if config.ridge is None else (config.ridge,)
    dtype = np.dtype(model.W_s.dtype)
    anchors = data[0][0]
    draws = _layer_draws(k_layer, model.n, anchors)  # the same directions at every scale
    noise_data = None  # a noise read-out shares the layer: its held-out error counts too
    if model.noise_readout is not None and len(scales) > 1:
        noise_data = noise_points(target, model, jr.fold_in(key, NOISE_STREAM), config.enlarge)
    best, noise_error = None, None
    for scale in scales:
        gamma, b = _scaled_layer(draws, anchors, scale, dtype)
        std = _noise_std(model, gamma, config.noise_aware)
        fit, held, ridge, errors = _solve_layer(gamma, b, data, std, ridges)
        error = min(e for e in errors) if errors[0] is not None else None
        score = error
        if noise_data is not None:
            noise_error = noise_readout(gamma, b, noise_data, dtype)[2]
            score = error + noise_error
        if best is None or (score is not None and score < best[0]):
            best = (score, error, noise_error, scale, ridge, gamma, b, fit, held)
    _, error, noise_error, scale, ridge, gamma, b, fit, held = best
    coef = ridge_solve(fit[0] + held[0], fit[1] + held[1], ridge)
    model = _store(model, gamma, b, coef)
    return model, {
        "gamma_scale": scale, "ridge": ridge,
        "held_out_error": None if error is None else float(error),
        "max_abs_W_s": float(np.max(np.abs(np.asarray(model.W_s)))),
        "fit_points": config.lstsq_points, "held_out_points": max(config.lstsq_points // 4, 1),
        "noise_aware": _noise_std(model, gamma, config.noise_aware) is not None,
        **({"noise_held_out_error": noise_error} if noise_error is not None else {}),
    }  # fmt: skip


def ridge_refit(
    model: LowRankRNN, target: Target, pool, *, key: Key, config
) -> tuple[LowRankRNN, dict]:
    """``W_s`` by the ridge least squares on the model's own hidden layer (after Adam).

    The same points, ridge choice and noise-aware features as `closed_form`; ``Gamma`` and
    ``b`` are kept.
    """
    k_data, _ = jr.split(key)
    data = _draw(target, model, pool, k_data, config)
    gamma, b = np.asarray(model.Gamma, float), np.asarray(model.b, float)
    std = _noise_std(model, gamma, config.noise_aware)
    ridges = RIDGES if config.ridge is None else (config.ridge,)
    fit, held, ridge, errors = _solve_layer(gamma, b, data, std, ridges)
    model = _store(model, gamma, b, ridge_solve(fit[0] + held[0], fit[1] + held[1], ridge))
    return model, {
        "refit_ridge": ridge,
        "refit_held_out_error": None if errors[0] is None else float(min(errors)),
        "max_abs_W_s": float(np.max(np.abs(np.asarray(model.W_s)))),
    }  # fmt: skip


def noisy_drift_error(model: LowRankRNN, target: Target, zs) -> float:
    """Relative drift error of the network *with* its private noise, in target units.

    The drift the noisy network has on M, ``-v + W_s E[phi(Gamma v + b + xi)]`` (``xi`` the
    stationary off-manifold noise; the marginal expectation per neuron is exact), against
    ``f``; equals `drift_error` for ``private_noise = 0``.
    """
    gamma, b = np.asarray(model.Gamma, float), np.asarray(model.b, float)
    c, s = np.asarray(model.centre, float), np.asarray(model.scale, float)
    zs = np.asarray(zs, float)
    vs = (zs - c) / s
    std = off_manifold_std(gamma, float(model.private_noise), float(model.tau))
    h = features(gamma, b, vs, std)
    drift = s * (-vs + h @ np.asarray(model.W_s, float).T) / float(model.tau)
    f = np.asarray(_drift(target, jnp.asarray(zs, model.W_s.dtype)), float)
    return float(np.sqrt(np.sum((drift - f) ** 2) / np.sum(f**2)))
