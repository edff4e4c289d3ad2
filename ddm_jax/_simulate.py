"""Fixed-step simulation of target SDEs and of full n-neuron networks.

Targets and networks become `SDE` problems for the engine in `_integrate` (one diffrax term
whose control is ``(dt, dW)``). Euler (Euler-Maruyama) converges to the Ito solution; the
other solvers to the Stratonovich one, which coincides for additive noise.
"""

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from ._custom_types import Key, LatentStates
from ._inputs import Input, Schedule, check_input
from ._integrate import SDE, _check_grid, _ensemble, _shards, _solver, shard_batch
from ._network import LowRankRNN
from ._targets import Target


class SimulationDiverged(ValueError):
    """A simulation produced non-finite states."""


def _initial_states(z0s, k: int, name: str) -> Float[Array, "batch k"]:
    z0s = np.asarray(z0s, dtype=jnp.result_type(float))  # checked on the host, no dispatch
    if z0s.ndim not in (1, 2) or z0s.shape[-1] != k:
        raise ValueError(
            f"Expected initial states of shape (batch, {k}) or ({k},) for {name}; got {z0s.shape}."
        )
    z0s = z0s.reshape(-1, k)
    if not np.isfinite(z0s).all():
        raise ValueError(f"Expected finite initial states for {name}.")
    return jnp.asarray(z0s)


def _check_finite_run(zs: Float[Array, "batch time k"], ts, name: str):
    bad = ~np.all(np.isfinite(np.asarray(zs)), axis=-1)
    if bad.any():
        traj, step = np.argwhere(bad)[np.argmin(np.argwhere(bad)[:, 1])]
        raise SimulationDiverged(
            f"The {name} simulation became non-finite at t = {float(ts[step]):.6g} in trajectory "
            f"{int(traj)}: reduce dt, or check the parameters and initial states."
        )


class Run(NamedTuple):
    """A simulated ensemble.

    Attributes:
        ts: ``(T,)`` save times (the first is 0, the initial state).
        zs: ``(B, T, k)`` states in target coordinates (for a network: the read-out).
        xs: ``(B, T, n)`` neuron states, when kept; else None.
        residual: RMS off-subspace residual of the neuron states,
            ``sqrt(mean ||(I - P)(x - b)||^2 / mean ||x - b||^2)`` over all saved states,
            computed while simulating; None for targets.
        residual_max: the same with the largest distance in the numerator.
    """

    ts: np.ndarray
    zs: Array
    xs: Array | None = None
    residual: float | None = None
    residual_max: float | None = None


def target_sde(target: Target) -> SDE:
    """The target as a fixed-step `SDE` problem (Ito)."""
    return SDE(
        params=target,
        vf=_target_vf,
        prod=_target_prod,
        observe=_target_observe,
        noise_shape=(target.noise_dim,),
    )


def _target_vf(target: Target, z):
    return target.f(z), target.g(z)


def _target_prod(target: Target, vf, control):
    (f, g), (dt, dw, *u) = vf, control
    out = f * dt + g @ dw
    return out + u[0] * dt if u else out


def _target_observe(params, y):
    return {"z": y}


# One compiled call each instead of eager op-by-op dispatch (and a vmap traced anew every
# call): the fixed cost of a short simulation is Python and dispatch, not arithmetic. A
# network run costs three calls: its set-up, the ensemble, and the checks of its output.
_split = jax.jit(jr.split, static_argnums=1)
_subspace = jax.jit(lambda gamma: (jnp.linalg.qr(gamma)[0], jnp.linalg.pinv(gamma), gamma.T))


@functools.partial(jax.jit, static_argnums=3)
def _network_setup(model: LowRankRNN, z0s, key: Key, batch: int):
    """The subspace (`_subspace`), the embedded initial states and the keys, in one call."""
    return _subspace(model.Gamma), jax.vmap(model.embed)(z0s), jr.split(key, batch)


@jax.jit
def _network_checks(zs, perp, dist2):
    """Whether every state is finite, and the RMS and largest off-subspace residual."""
    scale = jnp.sqrt(jnp.mean(dist2))
    residuals = jnp.stack([jnp.sqrt(jnp.mean(perp**2)) / scale, jnp.max(perp) / scale])
    return jnp.all(jnp.isfinite(zs)), residuals


def _problem(
    system: Target | LowRankRNN, z0s, key: Key, solver: str, keep_neurons=False, inputs=None
):
    """The `SDE`, initial states and keys (sharded), solver, name and input of an ensemble.

    The input comes back as ``{"u": u, "u_batched": bool}`` for `_ensemble` (empty without).
    """
    if isinstance(system, LowRankRNN):
        name = "network"
        z0s = _initial_states(z0s, system.k, "the network")
        solver_ = _solver(solver, system.noise_readout is None)  # checked before keys are used
        per_device = z0s.shape[0] // _shards(z0s.shape[0])
        subspace, y0s, keys = _network_setup(system, z0s, key, z0s.shape[0])
        sde = _network_sde(system, subspace, keep_neurons, per_device)
    elif isinstance(system, Target):
        name = f"target {system.name!r}"
        z0s = _initial_states(z0s, system.dim, name)
        solver_ = _solver(solver, system.additive)
        sde, y0s, keys = target_sde(system), z0s, _split(key, z0s.shape[0])
    else:
        raise TypeError(f"Expected a Target or a LowRankRNN; got {type(system).__name__}.")
    if inputs is None:
        y0s, keys = shard_batch((y0s, keys))
        return sde, y0s, keys, solver_, name, {}
    batched = check_input(inputs, z0s.shape[1], z0s.shape[0])
    if batched:
        y0s, keys, inputs = shard_batch((y0s, keys, inputs))
    else:
        y0s, keys = shard_batch((y0s, keys))
    return sde, y0s, keys, solver_, name, {"u": inputs, "u_batched": batched}


def simulate_target(
    target: Target,
    z0s: LatentStates,
    *,
    key: Key,
    t1: float,
    dt: float = 1e-3,
    save_dt: float | None = None,
    solver: str = "euler",
    method: str = "scan",
    check: bool = True,
    inputs: Schedule | Input | None = None,
) -> Run:
    """Simulate an ensemble of the target SDE from the initial states ``z0s``.

    With ``inputs`` the SDE is ``dz = (f(z) + u(t)) dt + G dB``; u is held over each step at
    its midpoint value (see `Schedule`).

    Args:
        target: the target.
        z0s: ``(B, k)`` initial states (or one ``(k,)`` state).
        key: PRNG key; trajectory i uses ``split(key, B)[i]``.
        t1: final time.
        dt: fixed step.
        save_dt: interval between stored states (a multiple of dt; default dt).
        solver: one of `SOLVERS` (Euler-Maruyama by default).
        method: ``"scan"`` (fast) or ``"diffeqsolve"``.
        check: raise `SimulationDiverged` on non-finite states.
        inputs: a latent input: a `Schedule` (per trajectory when it has a batch axis of B)
            or a pure function ``u(t) -> (k,)`` shared by all trajectories; None for none.
    """
    dt, num_saves, save_every = _check_grid(t1, dt, save_dt)
    sde, z0s, keys, solver_, name, u = _problem(target, z0s, key, solver, inputs=inputs)
    zs = _ensemble(sde, z0s, keys, dt, num_saves, save_every, solver_, method, **u)["z"]
    ts = np.arange(num_saves + 1) * dt * save_every
    if check:
        _check_finite_run(zs, ts, name)
    return Run(ts=ts, zs=zs)


class _NetworkParams(eqx.Module):
    model: LowRankRNN
    basis: Float[Array, "n k"]  # orthonormal basis of span(Gamma)
    pinv: Float[Array, "k n"]  # Gamma^+
    columns: Float[Array, "k n"] | None  # Gamma^T, to form Gamma c as k multiply-adds


def _net_vf(p: _NetworkParams, x):
    return x, p.model.W_s @ p.model.phi(x), p.model.latent_noise(x)


def _net_prod(p: _NetworkParams, vf, control):
    (x, rec, ghat), (dt, dw, *u) = vf, control
    m = p.model
    c = dt * rec + ghat @ dw["latent"]
    if u:  # B_in u = Gamma S^-1 tau u, so the read-out moves by u dt
        c = c + (dt * m.tau / m.scale) * u[0]
    out = dt * (m.b - x)
    if p.columns is None:
        out = out + m.Gamma @ c
    else:  # fused with the rest of the update, instead of a matrix product with k columns
        for j in range(m.k):
            out = out + c[j] * p.columns[j]
    if "private" in dw:
        out = out + m.private_noise * dw["private"]
    return out / m.tau


def _net_observe(p: _NetworkParams, x):
    d = x - p.model.b
    return {
        "z": p.model.centre + p.model.scale * (p.pinv @ d),
        "perp": jnp.linalg.norm(d - p.basis @ (p.basis.T @ d)),
        "dist2": jnp.sum(d**2),
    }


def _net_observe_neurons(p: _NetworkParams, x):
    return {**_net_observe(p, x), "x": x}


def _fused_update(n: int, batch: int) -> bool:
    """Whether to form ``Gamma c`` as k multiply-adds fused with the update (else a product).

    Measured on a 2-core CPU, float32, k = 3 (time of the product form over the fused one):
    1.2-2.0x at B = 1 (n = 64 ... 1024), 1.3-1.5x at n B >= 65,536; but 0.65-0.9x in between
    (n B = 4,096 ... 32,768, where the larger fused loop costs more than the product).
    ``batch`` is the ensemble size per device. The rule is the CPU's; GPUs are not measured.
    """
    return batch == 1 or n * batch >= 65_536


def network_sde(model: LowRankRNN, *, keep_neurons: bool = False, batch: int = 1) -> SDE:
    """The full n-neuron network as a fixed-step `SDE` problem, for an ensemble of ``batch``.

    Each save stores the read-out ``z``, the off-subspace distance ``||(I - P)(x - b)||`` and
    ``||x - b||^2`` (for the residual), plus ``x`` itself when ``keep_neurons``. Private
    neuron noise adds an n-dimensional Brownian motion when ``model.private_noise > 0``. The
    ensemble size picks the faster of two equal forms of the update (`_fused_update`).
    """
    return _network_sde(model, _subspace(model.Gamma), keep_neurons, batch)


def _network_sde(model: LowRankRNN, subspace, keep_neurons: bool, batch: int) -> SDE:
    noise_shape = {"latent": (model.m,)}
    if float(model.private_noise) > 0:
        noise_shape["private"] = (model.n,)
    basis, pinv, columns = subspace
    params = _NetworkParams(model, basis, pinv, columns if _fused_update(model.n, batch) else None)
    return SDE(
        params=params,
        vf=_net_vf,
        prod=_net_prod,
        observe=_net_observe_neurons if keep_neurons else _net_observe,
        noise_shape=noise_shape,
    )


def simulate_network(
    model: LowRankRNN,
    z0s: LatentStates,
    *,
    key: Key,
    t1: float,
    dt: float = 1e-3,
    save_dt: float | None = None,
    solver: str = "euler",
    method: str = "scan",
    keep_neurons: bool = False,
    check: bool = True,
    inputs: Schedule | Input | None = None,
) -> Run:
    """Simulate an ensemble of the full n-neuron network SDE.

    A latent input u(t) (target coordinates) enters through ``B_in = Gamma S^-1``, so on the
    manifold the read-out obeys ``dz = (f_net(z) + u(t)) dt + ...`` like the target.

    Each trajectory starts on the manifold at ``x0 = E z0 + e``. The cost per step is O(n k)
    (plus O(n) with private noise); the n x n matrix is never formed.

    Args:
        model: the network.
        z0s: ``(B, k)`` initial latent states in target coordinates (or one ``(k,)``).
        key: PRNG key; trajectory i uses ``split(key, B)[i]``.
        t1: final time.
        dt: fixed step.
        save_dt: interval between stored states (a multiple of dt; default dt).
        solver: one of `SOLVERS`.
        method: ``"scan"`` (fast) or ``"diffeqsolve"``.
        keep_neurons: also return the ``(B, T, n)`` neuron states (memory!).
        check: raise `SimulationDiverged` on non-finite states.
        inputs: a latent input, as for `simulate_target`.

    Returns:
        A `Run` with the read-out ``zs``, optionally ``xs``, and the off-subspace residuals.
        In float32 rounding alone gives an RMS residual of about ``eps / sqrt(2 dt)``
        (``1e-6`` at ``dt = 1e-3``): each step rounds at relative size ``eps`` and the leak
        removes off-manifold error at rate ``1 / tau``.
    """
    dt, num_saves, save_every = _check_grid(t1, dt, save_dt)
    sde, x0s, keys, solver_, name, u = _problem(
        model, z0s, key, solver, keep_neurons=keep_neurons, inputs=inputs
    )
    obs = _ensemble(sde, x0s, keys, dt, num_saves, save_every, solver_, method, **u)
    ts = np.arange(num_saves + 1) * dt * save_every
    finite, residuals = jax.device_get(_network_checks(obs["z"], obs["perp"], obs["dist2"]))
    if check and not finite:
        _check_finite_run(obs["z"], ts, name)  # finds where
    residual, residual_max = residuals.tolist()
    return Run(ts=ts, zs=obs["z"], xs=obs.get("x"), residual=residual, residual_max=residual_max)


class Moments(NamedTuple):
    """Statistics of the states of an ensemble, accumulated while simulating.

    Attributes:
        mean: ``(k,)`` mean state (for a network: of the read-out) over all trajectories and
            all saved states at ``t >= burn_in``.
        cov: ``(k, k)`` covariance over the same states (divided by ``count - 1``).
        count: how many states (trajectories x saves).
        residual: for a network, the RMS off-subspace residual over the same states, as in
            `Run`; None for targets.
        residual_max: the same with the largest distance in the numerator.
    """

    mean: np.ndarray
    cov: np.ndarray
    count: int
    residual: float | None = None
    residual_max: float | None = None


def stationary_moments(
    system: Target | LowRankRNN,
    z0s: LatentStates,
    *,
    key: Key,
    t1: float,
    burn_in: float = 0.0,
    dt: float = 1e-3,
    save_dt: float | None = None,
    solver: str = "euler",
    inputs: Schedule | Input | None = None,
) -> Moments:
    """Mean and covariance of a long simulation, in memory that does not grow with ``t1``.

    The trajectories are those of `simulate_target` or `simulate_network` with the same
    arguments; instead of being stored, every state saved at ``t >= burn_in`` is folded into
    a per-trajectory running mean and co-moment (Welford), and the trajectories' moments are
    combined exactly (Chan et al.). Use it for long runs, where the stored states would not
    fit; the samples of `simulate_*` are needed for distances between distributions.
    ``inputs`` as for `simulate_target`.

    Raises:
        SimulationDiverged: if the moments are not finite.
    """
    dt, num_saves, save_every = _check_grid(t1, dt, save_dt)
    last = num_saves * save_every * dt
    if not (np.isfinite(burn_in) and 0 <= burn_in <= last):
        raise ValueError(
            f"Expected 0 <= burn_in <= {last:g} (the last save); got burn_in={burn_in}."
        )
    stream = min(int(np.ceil(burn_in / (dt * save_every) - 1e-9)), num_saves)
    sde, y0s, keys, solver_, name, u = _problem(system, z0s, key, solver, inputs=inputs)
    if y0s.shape[0] * (num_saves + 1 - stream) < 2:
        raise ValueError(
            "Expected at least 2 states after burn_in for a covariance; got "
            f"{y0s.shape[0]} trajectory x {num_saves + 1 - stream} save."
        )
    stream = jnp.asarray(stream)  # traced: another burn_in compiles nothing new
    acc = _ensemble(sde, y0s, keys, dt, num_saves, save_every, solver_, "scan", stream, **u)
    acc = jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), acc)
    acc["mean"], acc["m2"] = acc["mean"] - acc["mean_c"], acc["m2"] - acc["m2_c"]
    count = acc["count"].sum()
    mean = (acc["count"][:, None] * acc["mean"]).sum(0) / count
    spread = acc["mean"] - mean
    m2 = acc["m2"].sum(0) + np.einsum("b,bi,bj->ij", acc["count"], spread, spread)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(m2))):
        raise SimulationDiverged(
            f"The {name} simulation became non-finite: reduce dt, or check the parameters and "
            "initial states (simulate_* names the time and trajectory)."
        )
    residuals = {}
    if "perp2" in acc:
        scale = np.sqrt(acc["dist2"].sum() / count)
        residuals = {"residual": float(np.sqrt(acc["perp2"].sum() / count) / scale),
                     "residual_max": float(acc["perp_max"].max() / scale)}  # fmt: skip
    m2 = (m2 + m2.T) / 2  # each outer(delta, z - mean) is symmetric up to rounding
    return Moments(mean, m2 / (count - 1), int(count), **residuals)
