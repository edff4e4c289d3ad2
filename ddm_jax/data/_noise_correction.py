"""The noise-corrected regression of a recording's latents (`fit_recording`).

Steps 3-5 of the ``_recordings`` module docstring: noise-free pairs by a skip stencil, its
defect correction, the corrected diffusion, and the fit with SIMEX.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..network import init_network
from ..targets import from_callables
from ..training import adam_steps
from ._data import Increments, data_box
from ._data_diffusion import FLOW_SUBSTEPS, _flow, _map_blocks, increment_means
from ._from_data import (
    MIN_PAIRS_PER_NEURON,
    DataFit,
    _fit_pairs,
    _refit_readout,
    _unit_noise,
    _zero,
    data_anchored_layer,
    learned_target,
    refit_readout,
)
from ._latent_space import _sym

_STENCIL = np.array([-2.5, 4.0, -1.5])  # offsets 1, 2, 3: d/dh at 0, exact for quadratics
STENCIL_ROUNDS = 1  # defect corrections of the stencil's discretisation error (step 3)


def _noise_free_pairs(segments: list[np.ndarray], dt: float):
    """States ``y_t`` and targets that skip sample t (see the module docstring, step 3)."""
    usable = [s for s in segments if len(s) >= 4]
    if not usable:
        raise ValueError("Expected a segment of at least 4 consecutive samples; none has.")
    z = np.concatenate([s[:-3] for s in usable])
    ys = np.concatenate(
        [sum(c * s[j : len(s) - 3 + j] for j, c in zip((1, 2, 3), _STENCIL, strict=True))
         for s in usable]
    ) / dt  # fmt: skip
    return z, ys


def _stencil_bias(model, zs, dt) -> np.ndarray:
    """What the stencil adds to the drift on the learned flow: ``S[phi](z) - f(z)`` (step 3).

    ``phi`` the learned drift's deterministic flow (RK4, `FLOW_SUBSTEPS` a lag dt); the Ito term of
    the mean path is O(h^2), which the stencil (exact for quadratics) cancels.
    """
    f = model.target_drift
    flow = _flow(f, dt, FLOW_SUBSTEPS)

    def bias(z):
        z1 = flow(z)
        z2 = flow(z1)
        z3 = flow(z2)
        w1, w2, w3 = (float(c) for c in _STENCIL)  # they sum to 0
        path = w1 * z1 + w2 * z2 + w3 * z3
        return (path / dt - f(z),)

    return _map_blocks(jax.jit(jax.vmap(bias)), zs, model.W_s.dtype)[0]


def _corrected_diffusion(model, segments, dt) -> tuple[np.ndarray, np.ndarray]:
    """D and R from the residuals over lags dt, 2 dt, 3 dt of the learned drift (step 4)."""
    usable = [s for s in segments if len(s) >= 4]
    z = np.concatenate([s[:-3] for s in usable])
    k = z.shape[1]
    sub = z[:: max(1, len(z) // 8192)]
    jac = jax.jit(jax.vmap(jax.jacfwd(model.target_drift)))
    J = np.asarray(jac(jnp.asarray(sub, model.W_s.dtype)), float)
    rows, rhs = [], []
    for h in (1, 2, 3):
        dz = np.concatenate([s[h : len(s) - 3 + h] - s[:-3] for s in usable])
        inc = Increments(z, dz, None, h * dt)
        m, _ = increment_means(model, inc, True, both=False)
        r = dz - m
        phi = np.eye(k)[None] + h * dt * J + (h * dt * J) @ (h * dt * J) / 2
        noise_op = np.eye(k * k) + np.einsum("nij,nkl->ikjl", phi, phi).reshape(k * k, k * k) / len(
            phi
        )
        rows.append(np.concatenate([noise_op, 2 * h * dt * np.eye(k * k),
                                    (h * dt) ** 2 * np.eye(k * k)], axis=1))  # fmt: skip
        rhs.append((r.T @ r / len(r)).reshape(-1))
    sol = np.linalg.solve(np.concatenate(rows), np.concatenate(rhs))
    R, D = sol[: k * k].reshape(k, k), sol[k * k : 2 * k * k].reshape(k, k)
    return _sym(D), _sym(R)


def _fit_noisy(segments, dt, n, R, *, key, config, tau, name, on_chunk, simex):
    """`fit_data` for latents with measurement noise of covariance R (steps 3 and 4)."""
    zs, ys = _noise_free_pairs(segments, dt)
    k = zs.shape[1]
    if len(zs) < MIN_PAIRS_PER_NEURON * n:
        raise ValueError(
            f"Expected at least {MIN_PAIRS_PER_NEURON} increments per neuron "
            f"({MIN_PAIRS_PER_NEURON * n} for n = {n}); got {len(zs)}."
        )
    low, high = data_box(segments)
    box_target = from_callables(_zero, _unit_noise, box=(low, high), name=name)
    k_init, k_train, k_simex = jr.split(key, 3)
    model = init_network(box_target, n, key=k_init, tau=tau)
    model = data_anchored_layer(model, zs, jr.fold_in(key, 2), config)
    dtype = model.W_s.dtype
    steps = config.steps if adam_steps(config) else 0
    state, all_losses = _fit_pairs(model, zs, ys, key=k_train, config=config, steps=steps,
                                   on_chunk=on_chunk)  # fmt: skip
    model, grams = _refit_readout(state.model, zs, ys)
    targets = ys
    for _ in range(STENCIL_ROUNDS):  # the hidden layer is fixed: its F^T F is reused
        targets = ys - _stencil_bias(model, zs, dt)
        model = _refit_readout(model, zs, targets, grams)[0]
    ys = targets
    if simex:
        rng = np.random.default_rng(int(jr.randint(k_simex, (), 0, 2**31 - 1)))
        chol = np.linalg.cholesky(R + 1e-12 * np.trace(R) * np.eye(k))
        noisier = refit_readout(model, zs + rng.standard_normal(zs.shape) @ chol.T, ys)
        model = eqx.tree_at(lambda m: m.W_s, model, 2 * model.W_s - noisier.W_s)
    D, R_resid = _corrected_diffusion(model, segments, dt)
    eig = np.linalg.eigvalsh(D)
    if not (np.all(np.isfinite(eig)) and eig.min() > 1e-9 * max(eig.max(), 0.0)):
        raise ValueError(
            f"Expected a positive definite diffusion after removing the measurement noise; got "
            f"eigenvalues {eig.tolist()}: the noise estimate exceeds the increments' spread "
            "(record at a finer dt, or pass correct_noise=False)."
        )
    G = np.linalg.cholesky(2 * D)
    noise_const = float(tau) * G / np.asarray(model.scale, float)[:, None]
    model = eqx.tree_at(lambda m: m.noise_const, model, jnp.asarray(noise_const, dtype))
    z0 = np.median(np.concatenate(segments), axis=0)
    target = learned_target(model, z0=z0, name=name)
    return DataFit(model, target, jnp.asarray(D, dtype), all_losses, None), R_resid
