"""State-dependent noise: the closed-form read-out and the default fit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm


def _stuart_landau_drift(t, z, args):
    x, y = z
    r2 = x**2 + y**2
    return jnp.array([x - 2 * y - x * r2, 2 * x + y - y * r2])


def stuart_landau():
    """A Hopf oscillator (limit cycle r = 1) with multiplicative noise, as in the README."""
    return ddm.from_callables(
        _stuart_landau_drift,
        lambda t, z, args: 0.2 * jnp.diag(jnp.sqrt(1 + z**2)),
        box=([-1.8, -1.8], [1.8, 1.8]),
        z0=[1.0, 0.0],
        name="stuart_landau",
    )


def test_closed_form_recovers_a_representable_read_out():
    """When tau S^-1 G is exactly a read-out of the hidden layer, least squares finds it."""
    target = stuart_landau()
    model = ddm.init_network(target, 24, key=jr.key(0), state_dependent_noise=True)
    k_const, k_read, k_fit = jr.split(jr.key(1), 3)
    const = 0.3 * jr.normal(k_const, model.noise_const.shape)
    readout = 0.1 * jr.normal(k_read, model.noise_readout.shape)
    truth = eqx.tree_at(lambda m: (m.noise_const, m.noise_readout), model, (const, readout))
    # a target whose G is the true network's noise factor in target coordinates
    made = ddm.from_callables(
        _stuart_landau_drift,
        lambda t, z, args: truth.latent_noise_target(z),
        box=(target.box_low, target.box_high),
        name="representable",
    )
    fitted = ddm.training.solve_noise_readout(model, made, key=k_fit)
    np.testing.assert_allclose(fitted.noise_const, const, atol=2e-4)
    np.testing.assert_allclose(fitted.noise_readout, readout, atol=2e-4)
    zs = ddm.simulation.sample_box(jr.key(2), made, 512)
    assert float(ddm.diffusion_error(fitted, made, zs)) < 1e-4


def test_closed_form_leaves_additive_networks_alone():
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 16, key=jr.key(0))
    assert ddm.training.solve_noise_readout(model, target, key=jr.key(1)) is model


@pytest.fixture(scope="module")
def fitted():
    target = stuart_landau()
    config = ddm.TrainConfig(steps=2000, batch=512, remedy_rounds=0)
    return target, ddm.fit(target, 64, key=jr.key(0), config=config).model


def test_default_fit_matches_state_dependent_noise_within_3_percent(fitted):
    """The issue's scenario at reduced size (n = 64, 2,000 drift steps, default noise phase)."""
    target, model = fitted
    theta = jnp.linspace(0.0, 2 * jnp.pi, 512, endpoint=False)
    cycle = jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    box = ddm.simulation.sample_box(jr.key(3), target, 4096)
    # measured: 0.083% on the cycle, 0.069% in the box (n = 128, default settings: 0.010% and
    # 0.0075%; with the noise read-out's ridge fixed at 1e-10 0.034% and 0.022%; before the
    # closed form 25% and 15%)
    assert float(ddm.diffusion_error(model, target, cycle)) < 0.03
    assert float(ddm.diffusion_error(model, target, box)) < 0.03


def test_network_increments_have_the_target_covariance(fitted):
    """An independent check: empirical covariance of one-step neuron increments, read out,
    against G G^T dt at a few states (4 standard errors of a covariance from 20,000 draws)."""
    target, model = fitted
    dt, draws = 1e-3, 20000
    for z in ([1.0, 0.0], [0.0, -1.5], [1.2, 1.2]):
        z = jnp.asarray(z)
        x0 = model.embed(z)
        dw = jnp.sqrt(dt) * jr.normal(jr.key(5), (draws, model.m))
        dx = jax.vmap(model.noise_prod, in_axes=(None, 0))(x0, dw)  # Sigma(x) dW, in neurons
        dz = np.asarray(jax.vmap(lambda d: model.readout(model.b + d) - model.centre)(dx))
        emp = np.cov(dz.T) / dt
        g = np.asarray(target.g(z))
        expected = g @ g.T
        se = np.sqrt((expected**2 + np.outer(np.diag(expected), np.diag(expected))) / draws)
        np.testing.assert_array_less(np.abs(emp - expected), 4 * se + 1e-6)


def test_increment_covariance_of_an_additive_network_is_g_gt():
    """`increment_covariance` against the exact 0.09 I of VDP's additive noise (4 SE)."""
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 32, key=jr.key(0))
    zs = jnp.array([[0.0, 0.0], [2.0, -1.0], [-1.0, 3.0]])
    draws = 8192
    emp = np.asarray(ddm.fidelity.increment_covariance(model, zs, key=jr.key(1), draws=draws))
    expected = 0.09 * np.eye(2)
    se = np.sqrt((expected**2 + np.outer(np.diag(expected), np.diag(expected))) / draws)
    assert emp.shape == (3, 2, 2)
    np.testing.assert_array_less(np.abs(emp - expected), np.broadcast_to(4 * se, emp.shape))


def test_noise_read_out_ridge_is_chosen_on_held_out_points():
    """Every other ridge of `NOISE_RIDGES` predicts the held-out box points worse."""
    target = stuart_landau()
    model = ddm.init_network(target, 32, key=jr.key(0), state_dependent_noise=True)
    gamma, b = np.asarray(model.Gamma, float), np.asarray(model.b, float)
    data = ddm.training.noise_points(target, model, jr.key(1), 0.2)
    assert data[0][0].shape == (8192, 2)
    assert data[1][0].shape == (2048, 2)
    coef, ridge, error = ddm.training.noise_readout(gamma, b, data, np.float32)
    assert coef.shape == (33, 4)
    assert ridge in ddm.training.NOISE_RIDGES
    for other in ddm.training.NOISE_RIDGES:
        alone = ddm.training.noise_readout(gamma, b, data, np.float32, ridges=(other,))[2]
        assert alone >= error
    fitted = ddm.training.solve_noise_readout(model, target, key=jr.key(1))
    np.testing.assert_allclose(fitted.noise_readout, coef[1:].T.astype(np.float32))


def test_closed_form_counts_the_noise_read_out_in_the_scale_choice():
    """With a noise read-out the held-out noise error is reported (and scored); without, not."""
    config = ddm.TrainConfig(method="lstsq", lstsq_points=2048)
    target = stuart_landau()
    pool = ddm.attractor_points(target, key=jr.key(0), num=4096)
    for state_dependent in (True, False):
        model = ddm.init_network(target, 16, key=jr.key(1), state_dependent_noise=state_dependent)
        _, info = ddm.training.closed_form(model, target, pool, key=jr.key(2), config=config)
        assert ("noise_held_out_error" in info) == state_dependent
    # a fixed scale has nothing to choose
    _, info = ddm.training.closed_form(
        model, target, pool, key=jr.key(2), config=ddm.TrainConfig(method="lstsq", gamma_scale=1.0)
    )
    assert "noise_held_out_error" not in info
