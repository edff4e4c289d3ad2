"""Targets: the registry, exact drift formulas, validation, and the OU closed form."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cov_standard_error, multiplicative_ou

import ddm_jax as ddm

NAMES = sorted(ddm.SYSTEMS)


# ---------------------------------------------------------------- every registered system


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_metadata(name, key):
    target = ddm.make_target(name)
    k, m = target.dim, target.noise_dim
    assert target.box_low.shape == target.box_high.shape == target.z0.shape == (k,)
    assert bool(jnp.all(target.box_low < target.box_high))
    z = ddm.simulation.sample_box(key, target, 1)[0]
    assert target.f(z).shape == (k,)
    assert target.g(z).shape == (k, m)
    # the diffrax-style signature with explicit t and args gives the same
    np.testing.assert_array_equal(target.drift(0.0, z, target.args), target.f(z))
    np.testing.assert_array_equal(target.diffusion(0.0, z, target.args), target.g(z))
    assert target.additive  # every registered system has constant noise


@pytest.mark.parametrize("name", NAMES)
def test_jit_matches_no_jit(name, key):
    target = ddm.make_target(name)
    z = ddm.simulation.sample_box(key, target, 1)[0]
    # the pure functions with args as a traced PyTree, and the Module as a jit argument;
    # XLA may fuse differently under jit: equal up to float32 rounding
    f_jit = jax.jit(target.drift)(0.0, z, target.args)
    g_jit = jax.jit(target.diffusion)(0.0, z, target.args)
    np.testing.assert_allclose(f_jit, target.f(z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_jit, target.g(z), rtol=1e-6, atol=0)
    f_module = jax.jit(lambda target, z: target.f(z))(target, z)
    np.testing.assert_allclose(f_module, target.f(z), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_matches_loop(name, key):
    target = ddm.make_target(name)
    zs = ddm.simulation.sample_box(key, target, 5, enlarge=0.2)
    f_loop = jnp.stack([target.f(z) for z in zs])
    g_loop = jnp.stack([target.g(z) for z in zs])
    np.testing.assert_allclose(jax.vmap(target.f)(zs), f_loop, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(target.g)(zs), g_loop, rtol=1e-6, atol=0)


@pytest.mark.usefixtures("no_typecheck")
@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_parameter_raises(name):
    for param, default in ddm.targets.system_defaults(name).items():
        if isinstance(default, int):
            continue  # an int cannot be nan
        bad = np.full(np.shape(default), np.nan)
        with pytest.raises(ValueError, match=f"Expected finite values for parameter '{param}'"):
            ddm.make_target(name, **{param: bad})


def test_paper_sizes_and_default_noise():
    # SPEC section 1: network sizes of the paper and the default noise G
    assert ddm.make_target("vdp").paper_neurons == 64
    assert ddm.make_target("lorenz").paper_neurons == 512
    assert ddm.make_target("dadras").paper_neurons == 1024
    z = jnp.zeros(2)
    np.testing.assert_allclose(ddm.make_target("vdp").g(z), 0.3 * jnp.eye(2), rtol=1e-7)
    np.testing.assert_allclose(ddm.make_target("lorenz").g(jnp.zeros(3)), jnp.eye(3))
    np.testing.assert_allclose(ddm.make_target("dadras").g(jnp.zeros(3)), 0.5 * jnp.eye(3))
    for name in ("wells", "cycling_wells", "rotating_wells"):
        g = ddm.make_target(name, temperature=0.2).g(z)
        np.testing.assert_allclose(g, np.sqrt(0.4) * np.eye(2), rtol=1e-6)
    assert ddm.targets.system_defaults("vdp") == {"mu": 1.0, "noise": 0.3}


def test_exact_drifts():
    # the formulas of SPEC section 1 at one point, by hand
    vdp = ddm.make_target("vdp", mu=2.0)
    np.testing.assert_allclose(vdp.f(jnp.array([1.5, 0.5])), [0.5, 2 * (1 - 2.25) * 0.5 - 1.5])
    lorenz = ddm.make_target("lorenz")
    np.testing.assert_allclose(
        lorenz.f(jnp.array([1.0, 2.0, 3.0])), [10.0, 28 - 3 - 2.0, 2.0 - 8.0], rtol=1e-6
    )
    dadras = ddm.make_target("dadras")
    x, y, w = 1.0, 2.0, 3.0
    np.testing.assert_allclose(
        dadras.f(jnp.array([x, y, w])),
        [y - 3 * x + 2.7 * y * w, 1.7 * y - x * w + w, 2 * x * y - 9 * w],
        rtol=1e-6,
    )
    B = jnp.array([[1.0, 2.0], [-0.5, 1.0]])
    ou = ddm.make_target("ou", B=B)
    np.testing.assert_allclose(ou.f(jnp.array([0.3, -0.7])), -B @ jnp.array([0.3, -0.7]))


def test_wells_drift_structure(key):
    """Gradient targets have a symmetric Jacobian; the non-gradient parts are exactly known."""
    J = jnp.array([[0.0, -1.0], [1.0, 0.0]])
    alpha = 0.7
    grad_part = {
        "wells": lambda t, z: t.f(z),
        "cycling_wells": lambda t, z: jnp.linalg.solve(jnp.eye(2) + alpha * J, t.f(z)),
        "rotating_wells": lambda t, z: t.f(z) - alpha * J @ z,
    }
    zs = ddm.simulation.sample_box(key, ddm.make_target("wells"), 8)
    for name, part in grad_part.items():
        params = {} if name == "wells" else {"alpha": alpha}
        target = ddm.make_target(name, **params)
        jac = jax.vmap(jax.jacfwd(lambda z, part=part, target=target: part(target, z)))(zs)
        np.testing.assert_allclose(jac, jnp.swapaxes(jac, 1, 2), atol=1e-5, err_msg=name)
        # and the parts that break detailed balance are really there
        jac = jax.jacfwd(target.f)(zs[0])
        if name != "wells":
            assert float(jnp.abs(jac - jac.T).max()) > 0.1


def test_lorenz_fold():
    fold = ddm.make_target("lorenz").fold
    np.testing.assert_array_equal(fold(jnp.array([-1.0, 2.0, 3.0])), [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(fold(jnp.array([1.0, 2.0, 3.0])), [1.0, 2.0, 3.0])
    zs = jnp.array([[-4.0, -5.0, 20.0], [4.0, -5.0, 20.0]])
    np.testing.assert_array_equal(jax.vmap(fold)(zs), [[4.0, 5.0, 20.0], [4.0, -5.0, 20.0]])
    assert ddm.make_target("vdp").fold is None


# ---------------------------------------------------------------- validation


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="Expected a system name in") as info:
        ddm.make_target("duffing")
    for name in NAMES:
        assert repr(name) in str(info.value)
    assert "'duffing'" in str(info.value)
    with pytest.raises(ValueError, match="Expected a system name in"):
        ddm.targets.system_defaults("duffing")


def test_unknown_parameter():
    with pytest.raises(ValueError, match=re.escape("got unknown ['nu']")):
        ddm.make_target("vdp", nu=2.0)


def test_unstable_ou_raises():
    with pytest.raises(ValueError, match="positive real part"):
        ddm.make_target("ou", B=[[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="square matrix B"):
        ddm.make_target("ou", B=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_bad_noise_shape():
    with pytest.raises(ValueError, match=re.escape("a vector of length 2 or a (2, m) matrix")):
        ddm.make_target("vdp", noise=[0.1, 0.2, 0.3])


def test_from_callables_validation():
    box = ([-1.0, -1.0], [1.0, 1.0])
    ok_f = lambda t, z, args: -z
    ok_g = lambda t, z, args: 0.1 * jnp.eye(2)

    with pytest.raises(ValueError, match=re.escape("drift(t, z, args) to return shape (2,)")):
        ddm.from_callables(lambda t, z, args: jnp.zeros(3), ok_g, box=box)
    with pytest.raises(ValueError, match=re.escape("return a (2, m) matrix; got (2,)")):
        ddm.from_callables(ok_f, lambda t, z, args: jnp.ones(2), box=box)
    with pytest.raises(ValueError, match=re.escape("return a (2, m) matrix; got (3, 3)")):
        ddm.from_callables(ok_f, lambda t, z, args: jnp.eye(3), box=box)
    with pytest.raises(ValueError, match="Expected box low < high"):
        ddm.from_callables(ok_f, ok_g, box=([-1.0, 1.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="Expected box low < high"):
        ddm.from_callables(ok_f, ok_g, box=([2.0, -1.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="two vectors of equal length"):
        ddm.from_callables(ok_f, ok_g, box=([-1.0, -1.0], [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=re.escape("Expected z0 of shape (2,)")):
        ddm.from_callables(ok_f, ok_g, box=box, z0=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="Expected finite values for parameter 'z0'"):
        ddm.from_callables(ok_f, ok_g, box=box, z0=[0.0, np.inf])
    with pytest.raises(ValueError, match="calling them failed with"):
        ddm.from_callables(lambda t, z, args: z @ jnp.ones((3, 3)), ok_g, box=box)

    target = ddm.from_callables(
        ok_f, lambda t, z, args: jnp.ones((2, 5)), box=box, name="wide_noise"
    )
    assert target.noise_dim == 5
    assert target.dim == 2
    assert target.additive
    np.testing.assert_array_equal(target.z0, [0.0, 0.0])  # the box centre by default


def test_additive_detection():
    assert not multiplicative_ou().additive
    additive = ddm.from_callables(
        lambda t, z, args: -z,
        lambda t, z, args: args["G"],
        box=([-1.0, -1.0], [1.0, 1.0]),
        args={"G": jnp.array([[0.2, 0.0, 0.1], [0.0, 0.3, 0.0]])},
    )
    assert additive.additive


# ---------------------------------------------------------------- Ornstein-Uhlenbeck


def _lyapunov_integral(B, D):
    """``S = int_0^inf e^{-Bt} 2D e^{-B^T t} dt`` by diagonalising B (NumPy, float64)."""
    w, V = np.linalg.eig(B)
    C = np.linalg.solve(V, 2 * D) @ np.linalg.inv(V).conj().T  # V^-1 2D V^-H
    return (V @ (C / (w[:, None] + w[None, :].conj())) @ V.conj().T).real


def test_ou_stationary_covariance_exact():
    with jax.enable_x64(True):
        B = jnp.array([[1.0, 2.0], [-0.5, 1.0]])  # non-normal, eigenvalues 1 +- i
        G = jnp.array([[0.5, 0.0, 0.1], [0.2, 0.4, 0.0]])
        D = G @ G.T / 2
        S = ddm.targets.ou_stationary_covariance(B, D)
        assert S.dtype == jnp.float64
        np.testing.assert_allclose(B @ S + S @ B.T, 2 * D, rtol=0, atol=1e-14)
        np.testing.assert_array_equal(S, S.T)
        assert np.all(np.linalg.eigvalsh(np.asarray(S)) > 0)
        # a 3-d case against the integral  S = int_0^inf e^{-Bt} 2D e^{-B^T t} dt  (numpy)
        B3 = np.array([[2.0, 1.0, 0.0], [-1.0, 1.0, 0.5], [0.0, -0.5, 1.5]])
        D3 = np.diag([0.1, 0.2, 0.3])
        S3 = np.asarray(ddm.targets.ou_stationary_covariance(jnp.asarray(B3), jnp.asarray(D3)))
        np.testing.assert_allclose(B3 @ S3 + S3 @ B3.T, 2 * D3, atol=1e-14)
        np.testing.assert_allclose(S3, _lyapunov_integral(B3, D3), atol=1e-13)


def test_ou_box_is_four_standard_deviations():
    target = ddm.make_target("ou")
    G = np.asarray(target.g(target.z0), dtype=np.float64)
    S = _lyapunov_integral(np.asarray(target.args["B"], dtype=np.float64), G @ G.T / 2)
    np.testing.assert_allclose(target.box_high, 4 * np.sqrt(np.diag(S)), rtol=1e-6)
    np.testing.assert_allclose(target.box_low, -target.box_high)


def test_ou_empirical_covariance(key):
    """Ensemble covariance of a simulated OU process matches the Lyapunov solution.

    10000 independent trajectories from z = 0, observed once at t = 6 (the transient
    e^{-2 t} is below 1e-5). Tolerance: 4 standard errors per entry (``cov_standard_error``,
    about 1.4% of S_ii here) plus the Euler bias ``dt B S B^T / 2`` (below 0.3% at dt = 5e-3).
    """
    target = ddm.make_target("ou")
    num = 10_000
    run = ddm.simulate_target(target, jnp.zeros((num, 2)), key=key, t1=6.0, dt=5e-3, save_dt=6.0)
    assert run.zs.shape == (num, 2, 2)
    samples = np.asarray(run.zs[:, -1], dtype=np.float64)
    G = np.asarray(target.g(target.z0), dtype=np.float64)
    B = np.asarray(target.args["B"], dtype=np.float64)
    exact = np.asarray(
        ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(G @ G.T / 2))
    )
    empirical = np.cov(samples.T)
    se = cov_standard_error(exact, num)
    euler_bias = 5e-3 * np.abs(B @ exact @ B.T) / 2
    np.testing.assert_array_less(np.abs(empirical - exact), 4 * se + euler_bias)
    # the mean is 0 within 4 standard errors
    np.testing.assert_array_less(np.abs(samples.mean(0)), 4 * np.sqrt(np.diag(exact) / num))
