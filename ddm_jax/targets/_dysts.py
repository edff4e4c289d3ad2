"""The dysts zoo: its continuous chaotic flows as `Target` objects (optional extra ``zoo``).

dysts (``pip install dysts``) keeps each flow's right-hand side as a Python function written
with ``np.`` calls. `from_dysts` runs the same code under JAX by calling a copy of that
function whose module globals bind ``np`` to ``jax.numpy`` (and ``max``/``min`` to their
elementwise forms, for ``max(0, x)``). What cannot be translated raises a one-line
`DystsError` saying why: delay equations (their state is a history, not a point of R^k),
a coordinate that grows without bound while the right-hand side is not periodic in it,
explicit time dependence, code that branches on a value or writes into an array it did not
make with ``np.zeros``/``np.zeros_like`` (those take item assignment, for Lorenz96), and
any translation that disagrees with dysts's NumPy right-hand side on the attractor.

Conventions (``from_dysts`` arguments):

- coordinates are dysts's own (phases aside, below); time is in units of dysts's ``period``
  by default (``time_unit="period"``: the drift is ``period * f``), so the time defaults
  (pool burn-in of 10 time units, step 1e-3, exponent runs of 500 units) mean the same
  number of oscillations for every flow, whose periods span 0.04 to 200 in their own units.
  Exponents are then per period: multiply dysts's ``maximum_lyapunov_estimated`` by the
  period to compare. ``time_unit="native"`` keeps dysts's time.
- the box is the range of a long deterministic run (RK4 from dysts's initial condition,
  `TRANSIENT` periods discarded, `RECORD` periods kept) enlarged by `MARGIN` of the range on
  each side; ``z0`` is the run's last state, a point of the attractor.
- additive diagonal noise ``G = NOISE * diag(std_i) / sqrt(period)`` with ``std_i`` the
  spread of coordinate i on the deterministic attractor: in one period the noise alone moves
  each coordinate by 2% of its spread, so the noisy attractor stays close to the
  deterministic one (the drift carries a trajectory across the attractor in one period; the
  noise moves it 50 times less far) while every coordinate is still noisy.
- phases (``phases="circle"``): a coordinate ``theta`` that dysts lists as unbounded (an
  angle, a forcing phase, a clock) becomes ``(cos(2 pi theta / P), sin(2 pi theta / P))``
  in its place (one more dimension per phase) when the right-hand side repeats under
  ``theta -> theta + P`` (float64, near the initial condition and on the run) for ``P = 2
  pi`` or a period the parameters name (``p`` or ``2 pi / p``). The pair turns at ``2 pi
  f_theta / P`` on a circle that `KAPPA` (1 per period) attracts; the other coordinates see
  ``theta = atan2(s, c) P / (2 pi)`` (`ddm_jax.targets._dysts_phases`). The run is dysts's,
  its phases then mapped to their pairs, which the box, ``z0``, spread and noise describe;
  ``target.coordinates`` names every coordinate (``x2``: dysts's third).
- ``attractor="chaotic"`` only when the largest Lyapunov exponent measured on that run
  (tangent map of the same RK4) exceeds `CHAOS_THRESHOLD` per period; otherwise None
  (unknown: analyses measure it). ``lyapunov`` is left None so that `fidelity_report`
  measures the target's own exponent: dysts's ``maximum_lyapunov_estimated`` is an estimate
  that disagrees with careful measurements by tens of percent (`dysts_metadata` returns it).
"""

import builtins
import difflib
import functools
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ._dysts_phases import KAPPA, Phases, find_period, lift, lifted_rhs, lower, repeats
from ._targets import Target, _constant_noise, from_callables

NOISE = 0.02
"""Noise per coordinate: this fraction of its attractor spread per square root of a period."""
MARGIN = 0.15
"""The box is the deterministic run's range enlarged by this fraction on each side."""
TRANSIENT = 50
"""Periods of the deterministic run discarded before the box is measured."""
RECORD = 200
"""Periods of the deterministic run that measure the box, spread and exponent."""
STEPS_PER_PERIOD = 2000
"""RK4 steps per period of the deterministic run."""
CHAOS_THRESHOLD = 0.02
"""Measured exponent per period above which the metadata says ``attractor="chaotic"``."""


class DystsError(ValueError):
    """A dysts flow that cannot become a `Target`; the message says why, in one line."""


def _flows():
    try:
        with warnings.catch_warnings():  # the translation never calls numba's JIT
            warnings.filterwarnings("ignore", message="Numba not installed")
            import dysts.flows as flows
    except ImportError as err:
        raise ImportError(
            "The dysts zoo needs the optional dependency dysts: pip install 'ddm-jax[zoo]'."
        ) from err
    return flows


def dysts_systems() -> list[str]:
    """Names of dysts's continuous flows (135 in dysts 0.96), translatable or not."""
    _flows()
    from dysts.systems import get_attractor_list

    return sorted(get_attractor_list())


def _system(name: str, parameters: dict | None):
    flows = _flows()
    names = dysts_systems()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DystsError(f"dysts has no continuous flow {name!r}{hint}.")
    cls = getattr(flows, name)
    return cls(parameters=parameters) if parameters else cls()


def dysts_metadata(name: str) -> dict:
    """The metadata dysts gives a flow: dimension, period, dt, its exponent estimate, parameters.

    ``unbounded_indices`` lists the coordinates that grow without bound (phases and angles),
    which ``from_dysts(phases="circle")`` embeds as (cos, sin) pairs.
    """
    system = _system(name, None)
    return {
        "dimension": int(np.asarray(system.ic).shape[0]),
        "unbounded_indices": [int(i) for i in getattr(system, "unbounded_indices", []) or []],
        "period": float(system.period),
        "dt": float(system.dt),
        "maximum_lyapunov_estimated": float(system.maximum_lyapunov_estimated),
        "parameters": {k: np.asarray(v).tolist() for k, v in system.params.items()},
    }


def _elementwise(op):
    reduce = functools.partial(functools.reduce, op)
    return lambda *xs, **kw: reduce(xs) if len(xs) > 1 else getattr(builtins, op.__name__)(*xs)


_JAX_GLOBALS = {
    "np": jnp,
    "max": _elementwise(jnp.maximum),
    "min": _elementwise(jnp.minimum),
}


class _Writable:
    """A JAX array that takes item assignment (as ``.at[i].set``): ``Xdot[0] = ...``."""

    def __init__(self, array):
        self.array = array

    def __setitem__(self, index, value):
        self.array = self.array.at[index].set(value)

    def __getitem__(self, index):
        return self.array[index]

    def __iter__(self):
        return iter(self.array)


class _WritableNumPy:
    """jax.numpy whose array constructors return `_Writable` arrays (code that fills arrays)."""

    def __getattr__(self, name):
        return getattr(jnp, name)

    def zeros_like(self, x, *args, **kwargs):
        return _Writable(jnp.zeros_like(jnp.asarray(x), *args, **kwargs))

    def zeros(self, *args, **kwargs):
        return _Writable(jnp.zeros(*args, **kwargs))


def _to_jax(fn, writable: bool = False):
    """A copy of ``fn`` (numba's wrapper unwrapped) whose globals bind ``np`` to jax.numpy."""
    fn = getattr(fn, "py_func", fn)
    if isinstance(fn, staticmethod):
        fn = fn.__func__
    glob = {**fn.__globals__, **_JAX_GLOBALS}
    if writable:
        glob["np"] = _WritableNumPy()
    return types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, fn.__closure__)


def _copy(value):
    # JAX caches a NumPy constant's device copy by identity: the float64 checks and the
    # target's drift each get their own arrays, so neither sees the other's precision
    return np.array(value) if isinstance(value, np.ndarray) else value


def _translated_rhs(system, writable: bool = False):
    """``rhs(z, t) -> tuple or array`` running dysts's code under JAX (own copies of arrays).

    With ``writable``, ``np.zeros`` and ``np.zeros_like`` make arrays that take item
    assignment, for code that fills its derivative in place (Lorenz96).
    """
    from dysts.base import DynSys

    if type(system).rhs is DynSys.rhs:  # the common form: _rhs(*coords, t, *sorted params)
        fn = _to_jax(type(system)._rhs, writable)
        params = tuple(_copy(p) for p in system.param_list)
        return lambda z, t: fn(*z, t, *params)
    # the class's own rhs(self, X, t): translate every method it defines, bound to a proxy
    # that holds the instance's attributes
    own = {}
    for klass in type(system).__mro__:
        if klass is DynSys:
            break
        for attr, value in vars(klass).items():
            raw = value.__func__ if isinstance(value, staticmethod) else value
            raw = getattr(raw, "py_func", raw)
            if isinstance(raw, types.FunctionType) and attr not in own:
                translated = _to_jax(raw, writable)
                own[attr] = (
                    staticmethod(translated) if isinstance(value, staticmethod) else translated
                )
    proxy = type("Proxy", (), own)()
    proxy.__dict__.update(
        {k: _copy(v) for k, v in vars(system).items() if not callable(v) and not k.startswith("__")}
    )
    return lambda z, t: proxy.rhs(z, t)


def _why(err: Exception) -> str:
    if isinstance(err, jax.errors.TracerBoolConversionError):
        return "its right-hand side branches on a state value (an if on an array)"
    if isinstance(
        err, jax.errors.TracerIntegerConversionError | jax.errors.ConcretizationTypeError
    ):
        return "its right-hand side needs concrete state values (a Python loop or index on them)"
    if isinstance(err, TypeError) and "immutable" in str(err):
        return "its right-hand side writes into an array in place"
    return f"its right-hand side fails under JAX ({type(err).__name__}: {str(err).splitlines()[0]})"


def _rk4_run(f, z0, h, transient, record, every):
    """Deterministic RK4 run: states every ``every`` steps and the largest exponent (float64)."""

    def step(z):
        k1 = f(z)
        k2 = f(z + h / 2 * k1)
        k3 = f(z + h / 2 * k2)
        k4 = f(z + h * k3)
        return z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def tangent(carry, _):
        z, w, log = carry
        z, w = jax.jvp(step, (z,), (w,))
        norm = jnp.linalg.norm(w)
        return (z, w / norm, log + jnp.log(norm)), None

    def block(carry, _):
        carry, _ = jax.lax.scan(tangent, carry, None, length=every)
        return carry, carry[0]

    @jax.jit
    def run(z0):
        z = jax.lax.fori_loop(0, transient, lambda _, z: step(z), z0)
        w0 = jnp.ones_like(z) / jnp.sqrt(z.shape[0])
        (z, _, log), zs = jax.lax.scan(block, (z, w0, 0.0), None, length=record // every)
        return zs, log

    return run(z0)


def _phases(system, unbounded, ref, points, fail) -> Phases:
    """Each unbounded coordinate's period (2 pi, or one the parameters name), else refuse."""
    period = {}
    for i in unbounded:
        p = find_period(ref, points, i, system.params)
        if p is None:
            raise fail(
                f"coordinate {i} grows without bound and the right-hand side is not periodic in "
                "it (neither in 2pi nor in a period its parameters name): no circle holds it"
            )
        period[i] = p
    return Phases(len(points[0]), period)


def from_dysts(
    name: str,
    *,
    parameters: dict | None = None,
    noise: float = NOISE,
    margin: float = MARGIN,
    time_unit: str = "period",
    phases: str = "circle",
) -> Target:
    """The dysts flow ``name`` as a `Target` (see the module notes for every convention).

    Args:
        name: a dysts continuous flow (`dysts_systems`), e.g. ``"Halvorsen"``.
        parameters: overrides of dysts's parameters (the box and noise are measured anew).
        noise: noise per coordinate as a fraction of its attractor spread per square root of a
            period (`NOISE`).
        margin: box enlargement on each side, as a fraction of the run's range (`MARGIN`).
        time_unit: ``"period"`` (time in periods of the flow) or ``"native"`` (dysts's time).
        phases: ``"circle"`` embeds each coordinate that grows without bound, where the
            right-hand side is periodic in it, as a (cos, sin) pair on an attracting circle
            (`ddm_jax.targets._dysts_phases`; ``target.coordinates`` names them);
            ``"refuse"`` raises `DystsError` for such flows.

    Raises:
        DystsError: with the reason when the flow cannot be translated or measured.
        ImportError: when dysts is not installed.
    """
    if phases not in ("circle", "refuse"):
        raise ValueError(f"Expected phases 'circle' or 'refuse'; got {phases!r}.")
    if time_unit not in ("period", "native"):
        raise ValueError(f"Expected time_unit 'period' or 'native'; got {time_unit!r}.")
    if not (np.isfinite(noise) and noise >= 0 and np.isfinite(margin) and margin >= 0):
        raise ValueError(f"Expected finite noise >= 0 and margin >= 0; got {noise!r}, {margin!r}.")
    from dysts.base import DynSysDelay

    system = _system(name, parameters)
    fail = lambda why: DystsError(f"dysts flow {name!r} cannot be embedded: {why}.")
    if isinstance(system, DynSysDelay):
        raise fail("it is a delay equation (its state is a history, not a point of R^k)")
    unbounded = list(getattr(system, "unbounded_indices", []) or [])
    if unbounded and phases == "refuse":
        raise fail(
            f"coordinates {unbounded} grow without bound (phases or angles): no box holds them"
        )
    ic = np.asarray(system.ic, dtype=float)
    k = ic.shape[0]
    period = float(system.period)
    ref = lambda z, t=0.0: np.asarray(system.rhs(np.asarray(z, float), t), dtype=float)
    near = ic + 0.01 * (1 + np.abs(ic)) * np.random.default_rng(0).standard_normal((4, k))
    circle = _phases(system, unbounded, ref, [ic, *near], fail) if unbounded else None
    if not np.allclose(ref(ic, 0.0), ref(ic, 0.731 * period), rtol=1e-12, atol=0):
        raise fail("its right-hand side depends on time explicitly (non-autonomous)")

    def as_jax(rhs):
        return lambda z: jnp.stack([jnp.asarray(v) for v in rhs(z, 0.0)]).reshape(k).astype(z.dtype)

    scale = period if time_unit == "period" else 1.0
    unit = 1.0 if time_unit == "period" else period  # a period in the target's time
    lifted = lambda f: lambda u: lifted_rhs(f(lower(u, circle, jnp)), u, circle, scale,
                                            KAPPA / unit, jnp)  # fmt: skip
    for writable in (False, True):  # arrays that take item assignment only where needed
        jax_f = as_jax(_translated_rhs(system, writable))  # checks and the deterministic run
        drift_f = as_jax(_translated_rhs(system, writable))  # the target's drift
        with jax.enable_x64(True):
            try:
                f64 = jax.jit(jax_f)  # traced, not eager: no float64 op reaches the eager cache
                out = np.asarray(f64(jnp.asarray(ic)))
                break
            except TypeError as err:
                if writable or "immutable" not in str(err):
                    raise fail(_why(err)) from None
            except Exception as err:
                raise fail(_why(err)) from None
    with jax.enable_x64(True):
        if not np.allclose(out, ref(ic), rtol=1e-8, atol=1e-10 * (1 + np.abs(out).max())):
            raise fail("its JAX translation disagrees with dysts's rhs at the initial condition")
        h = unit / STEPS_PER_PERIOD
        every = STEPS_PER_PERIOD // 100
        steps = (TRANSIENT * STEPS_PER_PERIOD, RECORD * STEPS_PER_PERIOD, every)
        zs, log = _rk4_run(lambda z: scale * jax_f(z), jnp.asarray(ic), h, *steps)
        zs, log = np.asarray(zs), float(log)
    if not np.all(np.isfinite(zs)):
        raise fail("its deterministic run from dysts's initial condition diverges")
    if circle is not None:  # the run on the circle: dysts's, its phases mapped to (c, s)
        zs = lift(zs, circle)
    probe = zs[:: max(1, len(zs) // 7)][:8]
    if circle is None:
        want = np.stack([ref(z) for z in probe])
        with jax.enable_x64(True):
            got = np.asarray(jax.vmap(f64)(jnp.asarray(probe)))
    else:  # dysts's rhs at the probes mapped back, through the same embedding of its drift
        native = lower(probe, circle, np)
        for i, p in circle.period.items():  # periodic along the run too
            if not repeats(ref, native, i, p):
                raise fail(f"the right-hand side is not periodic in coordinate {i} on the run")
        want = np.stack([lifted_rhs(ref(z), u, circle, scale, KAPPA / unit, np)
                         for z, u in zip(native, probe, strict=True)])  # fmt: skip
        with jax.enable_x64(True):
            got = np.asarray(jax.vmap(lifted(f64))(jnp.asarray(probe)))
    if not np.allclose(got, want, rtol=1e-8, atol=1e-10 * (1 + np.abs(want).max())):
        raise fail("its JAX translation disagrees with dysts's rhs on the attractor")
    low, high = zs.min(axis=0), zs.max(axis=0)
    std = zs.std(axis=0)
    span = high - low
    if np.any(span <= 1e-9 * (1 + np.abs(high))):
        raise fail(
            f"its run settles where coordinates {np.flatnonzero(span <= 0).tolist()} stay constant"
        )
    exponent = log / (RECORD * unit)  # per unit of the target's time
    per_period = exponent * unit
    g = noise * std / np.sqrt(unit)
    field = (lambda z: scale * drift_f(z)) if circle is None else lifted(drift_f)
    drift = lambda t, z, args: field(z)
    target = from_callables(
        drift,
        _constant_noise,
        box=(low - margin * span, high + margin * span),
        z0=zs[-1],
        args={"noise": jnp.diag(jnp.asarray(g, dtype=float))},
        name=f"dysts-{name}",  # a label that is also a folder name on every system
        attractor="chaotic" if per_period > CHAOS_THRESHOLD else None,
        coordinates=None if circle is None else circle.labels(),
    )
    return target


__all__ = ["DystsError", "dysts_metadata", "dysts_systems", "from_dysts"]
