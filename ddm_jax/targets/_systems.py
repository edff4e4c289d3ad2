"""The registered target systems of the paper and the name registry.

Each constructor returns a validated `Target`; `make_target(name, **params)` looks one up by
name so tests and benchmarks can loop over every system. A constructor sets the metadata of
the noise-free flow (attractor kind, reference exponent or period) only where it is known:
references only at the drift parameters they were measured for (any noise), so a changed
parameter leaves them None (to be measured), never inherited.
"""

import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._targets import Target, _check_finite, _constant_noise, _noise_matrix, from_callables


def _at(**values) -> bool:
    """Whether every parameter is the scalar its reference was measured at: ``name=(v, ref)``."""
    return all(np.ndim(v) == 0 and float(v) == ref for v, ref in values.values())


def _vdp_drift(t, z, args):
    x, y = z
    return jnp.stack([y, args["mu"] * (1 - x**2) * y - x])


def _lorenz_drift(t, z, args):
    x, y, w = z
    return jnp.stack([args["sigma"] * (y - x), x * (args["rho"] - w) - y, x * y - args["beta"] * w])


def _lorenz_fold(z):
    sign = jnp.where(z[0] < 0, -1.0, 1.0)
    return z * jnp.stack([sign, sign, jnp.ones_like(sign)])


def _dadras_drift(t, z, args):
    x, y, w = z
    a, b, c, d, e = (args[name] for name in "abcde")
    return jnp.stack([y - a * x + b * y * w, c * y - x * w + w, d * x * y - e * w])


def _ou_drift(t, z, args):
    return -args["B"] @ z


def _wells_potential(z, args):
    centres = args["centres"]
    sq = jnp.sum((z - centres) ** 2, axis=-1)
    wells = -args["depth"] * jnp.sum(jnp.exp(-sq / (2 * args["width"] ** 2)))
    return wells + args["confine"] * jnp.sum(z**2) ** 2 / 4


_J = jnp.array([[0.0, -1.0], [1.0, 0.0]])


def _wells_drift(t, z, args):
    return -jax.grad(_wells_potential)(z, args)


def _cycling_wells_drift(t, z, args):
    return -(jnp.eye(2) + args["alpha"] * _J) @ jax.grad(_wells_potential)(z, args)


def _rotating_wells_drift(t, z, args):
    return -jax.grad(_wells_potential)(z, args) + args["alpha"] * _J @ z


def vdp(mu: float = 1.0, noise=0.3) -> Target:
    """Van der Pol oscillator ``(y, mu (1 - x^2) y - x)``, additive noise ``G = 0.3 I``."""
    _check_finite("vdp", mu=mu, noise=noise)
    args = {"mu": jnp.asarray(mu, dtype=float), "noise": _noise_matrix(noise, 2)}
    # Lienard's theorem: one attracting limit cycle for every mu > 0; its period 6.6633 at
    # mu = 1 is the classical value.
    cycle = np.ndim(mu) == 0 and float(mu) > 0
    return from_callables(
        _vdp_drift, _constant_noise, box=([-3.0, -4.0], [3.0, 4.0]), z0=[2.0, 0.0],
        args=args, name="vdp", paper_neurons=64, attractor="limit_cycle" if cycle else None,
        period=6.6633 if _at(mu=(mu, 1.0)) else None,
    )  # fmt: skip


def lorenz(sigma: float = 10.0, rho: float = 28.0, beta: float = 8 / 3, noise=1.0) -> Target:
    """Lorenz system ``(s (y - x), x (r - w) - y, x y - beta w)``, additive noise ``G = I``."""
    _check_finite("lorenz", sigma=sigma, rho=rho, beta=beta, noise=noise)
    args = {
        "sigma": jnp.asarray(sigma, dtype=float),
        "rho": jnp.asarray(rho, dtype=float),
        "beta": jnp.asarray(beta, dtype=float),
        "noise": _noise_matrix(noise, 3),
    }
    # Sprott's largest exponent of the classical attractor (sigma, rho, beta) = (10, 28, 8/3).
    classical = _at(sigma=(sigma, 10.0), rho=(rho, 28.0), beta=(beta, 8 / 3))
    return from_callables(
        _lorenz_drift, _constant_noise, box=([-20.0, -27.0, 0.0], [20.0, 27.0, 50.0]),
        z0=[1.0, 1.0, 20.0], args=args, name="lorenz", paper_neurons=512, fold=_lorenz_fold,
        attractor="chaotic" if classical else None, lyapunov=0.9056 if classical else None,
    )  # fmt: skip


def dadras(
    a: float = 3.0, b: float = 2.7, c: float = 1.7, d: float = 2.0, e: float = 9.0, noise=0.5
) -> Target:
    """Dadras system ``(y - a x + b y w, c y - x w + w, d x y - e w)``, noise ``G = 0.5 I``."""
    _check_finite("dadras", a=a, b=b, c=c, d=d, e=e, noise=noise)
    args = {
        name: jnp.asarray(v, dtype=float) for name, v in zip("abcde", (a, b, c, d, e), strict=True)
    }
    args["noise"] = _noise_matrix(noise, 3)
    # Largest exponent at (a, b, c, d, e) = (3, 2.7, 1.7, 2, 9), measured on the noise-free
    # flow: RK4 with its tangent map, 8 starts x 1000 time units, float64: 0.374 +- 0.006
    # (the often quoted 0.41 is an estimate of the dysts package, whose estimators disagree
    # by ~20%; the attractor census finds 0.36-0.37).
    paper = _at(a=(a, 3.0), b=(b, 2.7), c=(c, 1.7), d=(d, 2.0), e=(e, 9.0))
    return from_callables(
        _dadras_drift, _constant_noise, box=([-18.0, -13.0, -14.0], [22.0, 11.0, 12.0]),
        z0=[1.0, 1.0, 0.0], args=args, name="dadras", paper_neurons=1024,
        attractor="chaotic" if paper else None, lyapunov=0.374 if paper else None,
    )  # fmt: skip


def ou(B=((1.0, 2.0), (-0.5, 1.0)), noise=0.5) -> Target:
    """Ornstein-Uhlenbeck ``dz = -B z dt + G dB``; the default B is non-normal (eig 1 +- i).

    The box is +-4 stationary standard deviations (see `ou_stationary_covariance`).
    """
    B = jnp.asarray(B, dtype=float)
    _check_finite("ou", B=B, noise=noise)
    if B.ndim != 2 or B.shape[0] != B.shape[1]:
        raise ValueError(f"Expected a square matrix B for 'ou'; got shape {B.shape}.")
    if not np.all(np.linalg.eigvals(np.asarray(B)).real > 0):
        raise ValueError(
            "Expected every eigenvalue of B to have a positive real part (a stable OU process);"
            f" got {np.linalg.eigvals(np.asarray(B))}."
        )
    k = B.shape[0]
    G = _noise_matrix(noise, k)
    half = 4 * jnp.sqrt(jnp.diag(ou_stationary_covariance(B, G @ G.T / 2)))
    return from_callables(
        _ou_drift, _constant_noise, box=(-half, half), z0=jnp.zeros(k),
        args={"B": B, "noise": G}, name="ou", attractor="fixed_point",  # B is stable
    )  # fmt: skip


def _ring(num_wells: int) -> Float[Array, "K 2"]:
    angles = 2 * jnp.pi * jnp.arange(num_wells) / num_wells
    return jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)


def _wells_target(name, drift, num_wells, width, depth, confine, temperature, extra, **meta):
    _check_finite(name, width=width, depth=depth, confine=confine, temperature=temperature)
    if temperature <= 0 or width <= 0 or num_wells < 1:
        raise ValueError(
            f"Expected temperature > 0, width > 0 and num_wells >= 1 for {name!r}; "
            f"got {temperature}, {width}, {num_wells}."
        )
    args = {
        "centres": _ring(num_wells),
        "width": jnp.asarray(width, dtype=float),
        "depth": jnp.asarray(depth, dtype=float),
        "confine": jnp.asarray(confine, dtype=float),
        "noise": math.sqrt(2 * temperature) * jnp.eye(2),
        **{key: jnp.asarray(v, dtype=float) for key, v in extra.items()},
    }
    return from_callables(
        drift, _constant_noise, box=([-2.0, -2.0], [2.0, 2.0]), z0=[1.0, 0.0], args=args,
        name=name, well_centres=args["centres"], well_width=float(args["width"]),
        potential=_wells_potential, **meta,
    )  # fmt: skip


def wells(
    num_wells: int = 4, width: float = 0.4, depth: float = 1.0, confine: float = 0.5,
    temperature: float = 0.15,
) -> Target:  # fmt: skip
    """Gradient flow ``-grad U`` on K Gaussian wells on the unit circle, noise ``sqrt(2T) I``.

    ``U(z) = -depth sum_k exp(-|z - c_k|^2 / (2 width^2)) + confine |z|^4 / 4``.
    """
    return _wells_target(
        "wells", _wells_drift, num_wells, width, depth, confine, temperature, {},
        attractor="fixed_point", circulation=0.0,  # a gradient flow: U decreases on orbits
    )  # fmt: skip


def cycling_wells(
    alpha: float = 1.0, num_wells: int = 4, width: float = 0.4, depth: float = 1.0,
    confine: float = 0.5, temperature: float = 0.15,
) -> Target:  # fmt: skip
    """Nonequilibrium wells ``-(I + alpha J) grad U``: density ``exp(-U/T)``, circulating."""
    _check_finite("cycling_wells", alpha=alpha)
    return _wells_target(
        "cycling_wells", _cycling_wells_drift, num_wells, width, depth, confine, temperature,
        {"alpha": alpha}, attractor="fixed_point",  # dU/dt = -|grad U|^2 on noise-free orbits
        circulation=float(alpha),
    )  # fmt: skip


def rotating_wells(
    alpha: float = 0.5, num_wells: int = 4, width: float = 0.4, depth: float = 1.0,
    confine: float = 0.5, temperature: float = 0.15,
) -> Target:  # fmt: skip
    """Wells plus a rotation about the ring centre, ``-grad U + alpha J z``."""
    _check_finite("rotating_wells", alpha=alpha)
    return _wells_target(
        "rotating_wells", _rotating_wells_drift, num_wells, width, depth, confine, temperature,
        {"alpha": alpha},
        ring_direction=-1 if float(alpha) < 0 else 1,  # alpha J z: counter-clockwise for alpha > 0
    )  # fmt: skip


SYSTEMS: dict[str, Callable[..., Target]] = {
    "vdp": vdp,
    "lorenz": lorenz,
    "dadras": dadras,
    "ou": ou,
    "wells": wells,
    "cycling_wells": cycling_wells,
    "rotating_wells": rotating_wells,
}


def make_target(name: str, **params) -> Target:
    """Build a registered target by name, overriding default parameters by keyword.

    Raises:
        ValueError: for an unknown name or parameter.
    """
    if name not in SYSTEMS:
        raise ValueError(
            f"Expected a system name in {sorted(SYSTEMS)}; got {name!r}. "
            "Pass a Target (or use from_callables) for your own system."
        )
    constructor = SYSTEMS[name]
    known = inspect.signature(constructor).parameters
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"Expected parameters of {name!r} among {sorted(known)}; got unknown {unknown}."
        )
    return constructor(**params)


def system_defaults(name: str) -> dict:
    """Default parameters of a registered system (for listings and config files)."""
    make_target(name)  # validates the name
    return {
        key: p.default
        for key, p in inspect.signature(SYSTEMS[name]).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def ou_stationary_covariance(B: Float[Array, "k k"], D: Float[Array, "k k"]) -> Float[Array, "k k"]:
    """Exact stationary covariance S of ``dz = -B z dt + sqrt(2D) dB``: ``B S + S B^T = 2D``."""
    k = B.shape[0]
    eye = jnp.eye(k)
    lhs = jnp.kron(eye, B) + jnp.kron(B, eye)
    S = jnp.linalg.solve(lhs, (2 * D).reshape(-1)).reshape(k, k)
    return (S + S.T) / 2
