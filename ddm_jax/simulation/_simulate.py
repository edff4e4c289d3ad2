"""Fixed-step simulation of target SDEs and of full n-neuron networks.

Targets and networks become `SDE` problems for the engine in `_integrate` (one diffrax term
whose control is ``(dt, dW)``). Euler (Euler-Maruyama) converges to the Ito solution; the
other solvers to the Stratonovich one, which coincides for additive noise. Every public
function checks its arguments on the host (`_plan`), then makes one compiled call:
`target_ensemble` here, `_network_sde.network_ensemble` for a network.

The public functions are a pure core and a thin eager layer. The core (argument checks that
see only shapes, dtypes and settings, then the compiled call) composes with ``jax.jit``,
``jax.vmap`` and ``jax.grad``. When the call's outputs are concrete, the eager layer reads
the finiteness flag back and names where a run diverged; when they are tracers (the call is
inside a transformation), value checks become `eqx.error_if` and nothing is read back.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Key, LatentStates
from ..network import LowRankRNN
from ..targets import Target
from ._inputs import Input, Schedule, check_input
from ._integrate import (
    SDE,
    SOLVERS,
    _shards,
    check_grid,
    check_solver,
    constrain_batch,
    ensemble,
    traced,
)
from ._network_sde import Plan, fused_update, model_subspace, network_ensemble, private_noise_on


class SimulationDiverged(ValueError):
    """A simulation produced non-finite states."""


def _initial_states(z0s, k: int, name: str) -> Float[Array | np.ndarray, "batch k"]:
    """The checked ``(batch, k)`` states, for the compiled call to take as an argument.

    They are checked on the host (a JAX array keeps its host copy after the first read). A
    JAX array of that shape and dtype is passed on as it is, already on the device; anything
    else goes as a NumPy array, copied to the device within the call. No separate transfer:
    one costs 0.14 ms on a GPU (H200), a tenth of a short simulation. Traced states (inside
    jit, vmap or grad) have their shape checked here and their values at run time
    (`eqx.error_if`).
    """
    if traced(z0s):
        states = jnp.asarray(z0s, dtype=jnp.result_type(float))
        _check_states_shape(states.shape, k, name)
        finite = jnp.all(jnp.isfinite(states))
        return eqx.error_if(states, ~finite, f"Expected finite initial states for {name}.").reshape(
            -1, k
        )
    host = np.asarray(z0s, dtype=jnp.result_type(float))  # checked on the host, no dispatch
    _check_states_shape(host.shape, k, name)
    if not np.isfinite(host).all():
        raise ValueError(f"Expected finite initial states for {name}.")
    if isinstance(z0s, jax.Array) and z0s.ndim == 2 and z0s.dtype == host.dtype:
        return z0s
    return host.reshape(-1, k)


def _check_states_shape(shape: tuple, k: int, name: str) -> None:
    if len(shape) not in (1, 2) or shape[-1] != k:
        raise ValueError(
            f"Expected initial states of shape (batch, {k}) or ({k},) for {name}; got {shape}."
        )


def _checked(tree, finite, system: Target | LowRankRNN, where: str = "an eager call"):
    """``tree``, raising at run time (`eqx.error_if`) unless ``finite``: the traced check."""
    return eqx.error_if(
        tree,
        ~finite,
        f"The {_name(system)} simulation became non-finite: reduce dt, or check the parameters "
        f"and initial states ({where} names the time and trajectory).",
    )


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
            computed while simulating; None for targets. A Python float from an eager call, a
            scalar array from a traced one.
        residual_max: the same with the largest distance in the numerator.
    """

    ts: np.ndarray
    zs: Array
    xs: Array | None = None
    residual: float | Array | None = None
    residual_max: float | Array | None = None


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


@eqx.filter_jit
def target_ensemble(target: Target, z0s, key: Key, schedule, stream, plan: Plan):
    """Simulate an ensemble of the target from ``z0s``, in one compiled call.

    Trajectory i uses key ``split(key, B)[i]``. ``schedule`` is a `Schedule` input or None (a
    function input is ``plan.input_fn``). With ``stream`` (a traced save index) the states
    are folded into running moments (`_integrate`); without, the stored states come back with
    one flag: all finite. The host reads that flag, not the states.
    """
    keys = jr.split(key, z0s.shape[0])
    z0s, keys = constrain_batch((z0s, keys), plan.shards)
    if plan.input_batched:
        schedule = constrain_batch(schedule, plan.shards)
    u = plan.input_fn if schedule is None else schedule
    out = ensemble(
        target_sde(target), z0s, keys, plan.dt, plan.num_saves, plan.save_every,
        SOLVERS[plan.solver](), plan.method, stream, u, plan.input_batched,
    )  # fmt: skip
    if stream is not None:
        return out
    return out["z"], jnp.all(jnp.isfinite(out["z"]))


def _plan(system: Target | LowRankRNN, z0s, solver: str, grid, method: str, inputs,
          keep_neurons: bool = False):  # fmt: skip
    """Checked initial states, `Plan` and `Schedule` (or None) of an ensemble of ``system``.

    Everything is validated here, before any key is used or anything is compiled.
    """
    network = isinstance(system, LowRankRNN)
    if not (network or isinstance(system, Target)):
        raise TypeError(f"Expected a Target or a LowRankRNN; got {type(system).__name__}.")
    k = system.k if network else system.dim
    z0s = _initial_states(z0s, k, "the network" if network else _name(system))
    check_solver(solver, system.noise_readout is None if network else system.additive)
    if method not in ("scan", "diffeqsolve"):
        raise ValueError(f"Expected method 'scan' or 'diffeqsolve'; got {method!r}.")
    batched = inputs is not None and check_input(inputs, k, z0s.shape[0])
    schedule = inputs if isinstance(inputs, Schedule) else None
    shards = _shards(z0s.shape[0])
    plan = Plan(
        *grid, solver, method, keep_neurons, shards,
        network and private_noise_on(system),
        network and fused_update(system, z0s.shape[0] // shards),
        inputs if schedule is None else None, batched,
    )  # fmt: skip
    return z0s, plan, schedule


def _name(system: Target | LowRankRNN) -> str:
    """What messages call the simulated system."""
    return "network" if isinstance(system, LowRankRNN) else f"target {system.name!r}"


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

    Transformations: pure in ``target`` (its arrays), ``z0s``, ``key`` and ``inputs``, which
    may be traced (``jax.jit``, ``jax.vmap``, ``jax.grad``); ``t1``, ``dt``, ``save_dt``,
    ``solver``, ``method`` and ``check`` are static settings, checked eagerly, as are shapes.
    Eager layer (concrete outputs): the finiteness flag is read back, and `SimulationDiverged`
    names the first non-finite time and trajectory. Traced: the same check is an
    `eqx.error_if` on ``zs`` (a runtime error, without the time and trajectory), and the
    finiteness of ``z0s`` likewise. A traced call makes the eager call's draws and arithmetic;
    XLA may fuse them differently (under vmap), so the two agree to float32 rounding (under
    jit alone, bitwise in the tests).
    """
    grid = check_grid(t1, dt, save_dt)
    z0s, plan, schedule = _plan(target, z0s, solver, grid, method, inputs)
    zs, finite = target_ensemble(target.sde(), z0s, key, schedule, None, plan)
    ts = np.arange(plan.num_saves + 1) * plan.dt * plan.save_every
    if traced((zs, finite)):  # the pure path: nothing read back
        return Run(ts=ts, zs=_checked(zs, finite, target) if check else zs)
    if check and not jax.device_get(finite):
        _check_finite_run(zs, ts, _name(target))  # finds where
    return Run(ts=ts, zs=zs)


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

    A latent input u(t) (target coordinates) enters through ``B_in = tau Gamma S^-1``, so on the
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

    Transformations: pure in ``model`` (its arrays, a batch of models under
    ``eqx.filter_vmap`` included), ``z0s``, ``key`` and ``inputs``, which may be traced
    (``jax.jit``, ``jax.vmap``, ``jax.grad``; reverse mode needs ``method="scan"``, as
    ``"diffeqsolve"`` runs diffrax's forward-mode adjoint); the other arguments are static
    settings, checked eagerly, as are shapes. Eager layer (concrete outputs): the finiteness
    flag and the residuals are read back (Python floats), and `SimulationDiverged` names the
    first non-finite time and trajectory. Traced: the residuals are scalar arrays, the check
    is an `eqx.error_if` on the outputs, and so is the finiteness of ``z0s``. A traced
    ``private_noise`` decides at run time whether the private noise is drawn, and a traced
    model's update form is never timed (`fused_update`). A traced call makes the eager call's
    draws and arithmetic; XLA may fuse them differently (under vmap, or selecting the draws
    of a traced ``private_noise > 0``), so the two agree to float32 rounding (under jit
    alone, bitwise in the tests).
    """
    grid = check_grid(t1, dt, save_dt)
    z0s, plan, schedule = _plan(model, z0s, solver, grid, method, inputs, keep_neurons)
    subspace = model_subspace(model)  # computed afresh, not kept, for a traced Gamma
    obs, finite, residuals, _ = network_ensemble(
        model, subspace, z0s, key, schedule, None, plan=plan
    )
    ts = np.arange(plan.num_saves + 1) * plan.dt * plan.save_every
    if traced((obs, finite, residuals)):  # the pure path: nothing read back
        out = (obs["z"], obs.get("x"), residuals)
        zs, xs, residuals = _checked(out, finite, model) if check else out
        return Run(ts=ts, zs=zs, xs=xs, residual=residuals[0], residual_max=residuals[1])
    finite, residuals = jax.device_get((finite, residuals))
    if check and not finite:
        _check_finite_run(obs["z"], ts, _name(model))  # finds where
    residual, residual_max = residuals.tolist()
    return Run(ts=ts, zs=obs["z"], xs=obs.get("x"), residual=residual, residual_max=residual_max)
