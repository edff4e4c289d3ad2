"""The full n-neuron network as a fixed-step SDE, and its ensemble as one compiled call.

`network_ensemble` is what `simulate_network` and `stationary_moments` run: the embedded
initial states, the keys, the ensemble and the checks of its output in a single compiled
function. The fixed cost of a short simulation is Python and dispatch, not arithmetic: one
call instead of several (and no pass over the neurons that the ensemble does not need) is what
makes a call of 10 steps cost about what a hand-written kernel costs. The subspace (a QR and a
pseudo-inverse of Gamma) is computed once per Gamma and kept (`model_subspace`): on a GPU
those two factorisations cost more than a short simulation (0.44 ms of 0.83 on an H200).
"""

import functools
import os
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Key
from ..network import LowRankRNN
from ._integrate import SDE, SOLVERS, _draw, constrain_batch, ensemble, traced
from ._tuning import choose, recall


class _NetworkParams(eqx.Module):
    model: LowRankRNN
    basis: Float[Array, "k n"]  # rows: an orthonormal basis of span(Gamma)
    pinv: Float[Array, "k n"]  # Gamma^+
    columns: Float[Array, "k n"] | None  # Gamma^T, to form Gamma c as k multiply-adds


def _net_vf(p: _NetworkParams, x):
    return x, p.model.W_s @ p.model.phi(x), p.model.latent_noise(x)


def _net_prod(p: _NetworkParams, vf, control):
    (x, rec, ghat), (dt, dw, *u) = vf, control
    m = p.model
    c = dt * rec + ghat @ dw["latent"]
    if u:  # B_in u = tau Gamma S^-1 u, so the read-out moves by u dt
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
    """Read-out, off-subspace distance and ``||x - b||^2``, in one pass over the neurons.

    The projection is subtracted row by row (k multiply-adds): as a product
    ``basis.T @ (basis @ d)`` an ensemble turns it into a matrix product of inner dimension
    k, which a CPU runs far below memory speed (measured 27 ms against 4 ms for the whole
    observation at n = 4096, B = 1024).
    """
    d = x - p.model.b
    coef = jnp.concatenate([p.pinv, p.basis]) @ d
    perp = d
    for j in range(p.model.k):
        perp = perp - coef[p.model.k + j] * p.basis[j]
    return {
        "z": p.model.centre + p.model.scale * coef[: p.model.k],
        "perp": jnp.sqrt(perp @ perp),
        "dist2": d @ d,
    }


def _net_observe_neurons(p: _NetworkParams, x):
    return {**_net_observe(p, x), "x": x}


UPDATE_FORMS = ("fused", "product", "measure")


def fused_update(model: LowRankRNN, batch: int) -> bool:
    """Whether to form ``Gamma c`` as k multiply-adds fused with the update (else a product).

    The two forms are equal up to rounding, and rounding is all a chaotic trajectory needs to
    part: so the default is one fixed form, the fused one, and the same key gives the same
    numbers on every machine and in every process. Measured (float32, k = 3, time of the
    default path over the hand-written fused kernel, benchmarks/results): 0.94-1.17x in every
    cell of n = 64 ... 4096, B = 1 ... 4096 on a 2-core CPU and 0.78-1.05x on an H200, except
    n = 64 and 128 at B = 64 on the CPU, where the product form took 0.72x and 0.81x of the
    fused one (and 1.14x on another 2-core CPU: no rule of shapes holds on every machine).
    ``DDM_JAX_UPDATE`` chooses otherwise: ``fused`` (the default) or ``product`` force one
    form; ``measure`` (opt-in) times both on this machine at the first ensemble of each shape
    (about 0.3 s), keeps the product only when it is at least 10% faster, and remembers the
    answer in memory and in ``choices.json`` under `cache_dir` (`_tuning`): the numbers then
    depend on the timing. B = 1 is always fused.

    Under tracing (a model whose arrays are tracers: inside jit, vmap or grad) nothing is
    timed: ``measure`` takes the answer remembered for this machine and shape, else the fused
    form, and stores nothing.
    """
    form = os.environ.get("DDM_JAX_UPDATE") or "fused"
    if form not in UPDATE_FORMS:
        raise ValueError(f"Expected DDM_JAX_UPDATE in {UPDATE_FORMS}; got {form!r}.")
    if form != "measure":
        return form == "fused"
    if batch == 1:
        return True
    what = (
        f"fused network update: n={model.n} k={model.k} m={model.m} B={batch} "
        f"{model.W_s.dtype} {model.activation} readout={model.noise_readout is not None}"
    )
    if traced(model):
        remembered = recall(what)
        return True if remembered is None else remembered
    return choose(what, lambda: _fused_is_faster(model, batch))


@functools.partial(jax.jit, static_argnames="fused")
def _update_steps(model: LowRankRNN, subspace, x0s, dws, fused: bool):
    """Euler steps of the network's drift and latent noise alone, in one form of the update."""
    p = _network_sde(model, subspace, False, fused, False).params

    def one(x0, dws):
        step = lambda x, dw: (x + _net_prod(p, _net_vf(p, x), (1e-3, {"latent": dw})), None)
        return jax.lax.scan(step, x0, dws)[0]

    return jax.vmap(one)(x0s, dws)


def _fused_is_faster(model: LowRankRNN, batch: int, margin: float = 0.9) -> bool:
    """Time both forms on ``batch`` trajectories (alternating, best of 5, a few ms each).

    ``model`` is concrete; the timed calls run eagerly even when the caller is being traced
    (a jit that closes over the model), so what is timed is the computation, not its tracing.
    """
    with jax.ensure_compile_time_eval():
        return _time_forms(model, batch, margin)


def _time_forms(model: LowRankRNN, batch: int, margin: float) -> bool:
    steps = int(np.clip(4e6 / (model.n * batch), 8, 512))
    x0s = jnp.broadcast_to(model.b, (batch, model.n))
    dws = jnp.full((batch, steps, model.m), 0.03, model.W_s.dtype)
    subspace = model_subspace(model)
    runs = {form: functools.partial(_update_steps, model, subspace, x0s, dws, fused=form)
            for form in (True, False)}  # fmt: skip
    for run in runs.values():
        jax.block_until_ready(run())  # compiles
    best = dict.fromkeys(runs, np.inf)
    for _ in range(5):
        for form, run in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(run())
            best[form] = min(best[form], time.perf_counter() - start)
    return not best[False] < margin * best[True]


@jax.jit
def _subspace(gamma):
    """Rows of an orthonormal basis of span(Gamma), Gamma^+ and Gamma^T."""
    return jnp.linalg.qr(gamma)[0].T, jnp.linalg.pinv(gamma), gamma.T


_SUBSPACES: dict[int, tuple[weakref.ref, tuple]] = {}


def model_subspace(model: LowRankRNN) -> tuple[Array, Array, Array]:
    """`_subspace` of ``model.Gamma``, computed once per Gamma array while it lives.

    Arrays are immutable, so the array's identity is the key; a weak reference drops the entry
    when the array goes (its id can be reused only after that). Anything else (a NumPy array,
    a tracer) is computed afresh, and never kept. A concrete Gamma met inside a trace (a jit
    that closes over it) is computed eagerly, so the entry holds arrays, not the trace's values.
    """
    gamma = model.Gamma
    if not isinstance(gamma, jax.Array) or isinstance(gamma, jax.core.Tracer):
        return _subspace(gamma)
    key = id(gamma)
    entry = _SUBSPACES.get(key)
    if entry is not None and entry[0]() is gamma:
        return entry[1]
    with jax.ensure_compile_time_eval():
        value = _subspace(gamma)
    if traced(value):  # not computed eagerly after all: used, not kept
        return value
    _SUBSPACES[key] = (weakref.ref(gamma, lambda _: _SUBSPACES.pop(key, None)), value)
    return value


def private_noise_on(model: LowRankRNN) -> bool | None:
    """Whether the network draws private neuron noise.

    ``private_noise > 0`` when the value is known (a concrete array); None when it is traced,
    and decided at run time (`_draw_private`).
    """
    if traced(model.private_noise):
        return None
    return float(model.private_noise) > 0


def _draw_private(p: _NetworkParams, key: Key, steps: int, dt: float, dtype):
    """The increments of a network whose ``private_noise`` is traced.

    Its value picks, at run time, between the draws of a network with private noise and of one
    without (zeros for the private part). Each branch draws what `_draw` draws for that noise
    shape from the same key: the increments of the call with a concrete ``private_noise``.
    """
    # The branches take the key's bits, not the key: under vmap over models both branches
    # run, and JAX's key-reuse checker would see one key consumed twice.
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    bits = jr.key_data(key) if typed else key
    rewrap = (lambda: jr.wrap_key_data(bits, impl=jr.key_impl(key))) if typed else lambda: bits
    latent = {"latent": (p.model.m,)}
    with_private = lambda: _draw(rewrap(), {**latent, "private": (p.model.n,)}, steps, dt, dtype)
    without = lambda: {
        **_draw(rewrap(), latent, steps, dt, dtype),
        "private": jnp.zeros((steps, p.model.n), dtype),
    }
    return jax.lax.cond(p.model.private_noise > 0, with_private, without)


def network_sde(model: LowRankRNN, *, keep_neurons: bool = False, batch: int = 1) -> SDE:
    """The full n-neuron network as a fixed-step `SDE` problem, for an ensemble of ``batch``.

    Each save stores the read-out ``z``, the off-subspace distance ``||(I - P)(x - b)||`` and
    ``||x - b||^2`` (for the residual), plus ``x`` itself when ``keep_neurons``. Private
    neuron noise adds an n-dimensional Brownian motion when ``model.private_noise > 0`` (when
    it is traced, whether it is drawn is decided at run time: `private_noise_on`). The form of
    the update is `fused_update`'s.
    """
    fused, private = fused_update(model, batch), private_noise_on(model)
    return _network_sde(model, model_subspace(model), keep_neurons, fused, private)


def _network_sde(model: LowRankRNN, subspace, keep_neurons: bool, fused: bool, private):
    """The network's `SDE`; ``private``: True, False, or None (decided at run time)."""
    noise_shape = {"latent": (model.m,)}
    if private is not False:
        noise_shape["private"] = (model.n,)
    basis, pinv, columns = subspace
    return SDE(
        params=_NetworkParams(model, basis, pinv, columns if fused else None),
        vf=_net_vf,
        prod=_net_prod,
        observe=_net_observe_neurons if keep_neurons else _net_observe,
        noise_shape=noise_shape,
        draw=_draw_private if private is None else None,
    )


class Plan(NamedTuple):
    """Everything static about an ensemble: one compilation per distinct plan.

    A target's ensemble (`_simulate.target_ensemble`) has no neurons: ``keep_neurons``,
    ``private`` and ``fused`` are False there.
    """

    dt: float
    num_saves: int
    save_every: int
    solver: str
    method: str
    keep_neurons: bool
    shards: int  # devices the batch is split over
    private: bool | None  # private neuron noise (n-dim. Brownian motion); None: decided at run time
    fused: bool  # the form of the update (`fused_update`)
    input_fn: Callable | None = None  # a shared input u(t) given as a function
    input_batched: bool = False  # the `Schedule` passed has one row per trajectory


@functools.partial(jax.jit, static_argnames="plan")
def network_ensemble(model: LowRankRNN, subspace, z0s, key: Key, schedule, stream, *, plan: Plan):
    """Simulate an ensemble of the network from latent states ``z0s``, in one compiled call.

    ``subspace`` is `model_subspace` of the model.

    Trajectory i starts at ``embed(z0s[i])`` with key ``split(key, B)[i]``; its first
    observation is ``z0s[i]`` itself with zero off-subspace distance (the embedding is on the
    subspace), so the start costs no pass over the neurons. ``schedule`` is a `Schedule`
    input or None (a function input is ``plan.input_fn``). With ``stream`` (a traced save
    index) the observations are folded into running moments (`_integrate`); without, the
    stored observations come back with ``(finite, [RMS residual, largest residual])``.

    The last neuron states come back as well, last. The callers drop them, but as an output
    they get a buffer of their own, as a hand-written kernel's state does. Left in the
    call's scratch space, the state sat a multiple of 4 KiB from tanh's output. On an x86
    CPU that stalls loads behind stores ("4K aliasing"), and the steps of a large ensemble
    took 5-10% longer (measured at n = 1024, B = 64 and n = 256, B = 1024).
    """
    batch = z0s.shape[0]
    sde = _network_sde(model, subspace, plan.keep_neurons, plan.fused, plan.private)
    y0s, keys = jax.vmap(model.embed)(z0s), jr.split(key, batch)
    zero = jnp.zeros(batch, y0s.dtype)
    first = {"z": z0s.astype(y0s.dtype), "perp": zero, "dist2": zero}
    if plan.keep_neurons:
        first["x"] = y0s
    y0s, keys, first = constrain_batch((y0s, keys, first), plan.shards)
    if plan.input_batched:
        schedule = constrain_batch(schedule, plan.shards)
    u = plan.input_fn if schedule is None else schedule
    obs, last = ensemble(
        sde, y0s, keys, plan.dt, plan.num_saves, plan.save_every, SOLVERS[plan.solver](),
        plan.method, stream, u, plan.input_batched, first, final=True,
    )  # fmt: skip
    if stream is not None:
        return obs, last
    scale = jnp.sqrt(jnp.mean(obs["dist2"]))  # the zeros at the start drop out of the ratio
    residuals = jnp.stack([jnp.sqrt(jnp.mean(obs["perp"] ** 2)), jnp.max(obs["perp"])]) / scale
    return obs, jnp.all(jnp.isfinite(obs["z"])), residuals, last
