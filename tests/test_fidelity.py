import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm
from ddm_jax.fidelity._fidelity import empirical_diffusion_error
from ddm_jax.fidelity._statistics import projections


def test_sliced_wasserstein_of_a_shift_is_exact(key):
    # Sorting commutes with a shift, so every 1-d distance is exactly |theta . d|.
    a = jr.normal(key, (500, 3))
    d = jnp.array([0.3, -1.0, 2.0])
    dirs = projections(3)
    expected = float(jnp.sqrt(jnp.mean((dirs @ d) ** 2)))
    assert ddm.fidelity.sliced_wasserstein(a, a + d) == pytest.approx(expected, rel=1e-5)
    assert ddm.fidelity.sliced_wasserstein(a, a) == 0.0
    # permuting a sample changes nothing
    assert ddm.fidelity.sliced_wasserstein(a[::-1], a) == 0.0


@pytest.mark.usefixtures("no_typecheck")
def test_sliced_wasserstein_shape_error():
    with pytest.raises(ValueError, match=r"equal shape \(N, k\); got \(5, 2\) and \(4, 2\)"):
        ddm.fidelity.sliced_wasserstein(jnp.zeros((5, 2)), jnp.zeros((4, 2)))


def test_moment_errors_exact():
    ref = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    mean_err, cov_err = ddm.fidelity.moment_errors(ref + jnp.array([0.1, 0.0]), ref)
    spread = np.sqrt(np.sum(np.var(np.asarray(ref), axis=0)))
    assert mean_err == pytest.approx(0.1 / spread, rel=1e-5)
    assert cov_err == pytest.approx(0.0, abs=1e-6)
    _, cov_err = ddm.fidelity.moment_errors(2 * ref, ref)  # covariance x4: error 3
    assert cov_err == pytest.approx(3.0, rel=1e-5)


def test_lyapunov_exponent_linear_and_lorenz():
    # linear flow: the exponent is the largest real part of the eigenvalues
    A = jnp.array([[0.5, 1.0], [0.0, -1.0]])
    lam = ddm.fidelity.lyapunov_exponent(
        lambda z: A @ z, jnp.array([1.0, 1.0]), transient=1.0, time=50.0
    )
    assert lam == pytest.approx(0.5, abs=0.02)
    lorenz = ddm.make_target("lorenz")
    lam = ddm.fidelity.lyapunov_exponent(lorenz.f, lorenz.z0, time=400.0)
    assert lam == pytest.approx(0.9056, rel=0.03)  # reference value, FACTS.md


def test_limit_cycle_period_and_amplitude():
    rot = lambda z: jnp.stack([z[1], -z[0]])  # period 2 pi, amplitude = radius
    period, amplitude = ddm.fidelity.limit_cycle(
        rot, jnp.array([0.0, 1.5]), transient=1.0, time=30.0
    )
    assert period == pytest.approx(2 * np.pi, rel=1e-4)
    assert amplitude == pytest.approx(1.5, rel=1e-4)
    vdp = ddm.make_target("vdp")
    period, amplitude = ddm.fidelity.limit_cycle(vdp.f, vdp.z0)
    assert period == pytest.approx(6.6633, rel=1e-3)  # classical values, FACTS.md
    assert amplitude == pytest.approx(2.0086, rel=1e-3)


def test_empirical_diffusion_matches_model_noise(key):
    # Additive noise is exact, so the increment estimate is off by sampling error only.
    target = ddm.make_target("lorenz")
    k_net, k_pts, k_sim = jr.split(key, 3)
    model = ddm.init_network(target, 16, key=k_net)
    z0s = ddm.simulation.sample_box(k_pts, target, 256)
    err, se = empirical_diffusion_error(model, target, z0s, key=k_sim, dt=1e-3, steps=100)
    assert se < 0.02
    assert err < 4 * se


@pytest.fixture(scope="module")
def small_vdp():
    target = ddm.make_target("vdp")
    config = ddm.TrainConfig(steps=1500, chunk=500, remedy_rounds=0)
    return target, ddm.fit(target, 32, key=jr.key(11), config=config).model


SMALL = dict(trajectories=64, t1=8.0, burn_in=2.0, dt=2e-3, null_pairs=2)


def test_report_separates_trained_from_untrained(small_vdp):
    target, model = small_vdp
    report = ddm.fidelity_report(model, target, key=jr.key(12), **SMALL)
    m = report.metrics
    assert all(np.isfinite(v) for v in m.values())
    assert m["drift_error_attractor"] < 0.1
    assert m["residual"] < 1e-5
    assert m["period_target"] == pytest.approx(6.6633, rel=1e-3)
    assert m["period_network"] == pytest.approx(m["period_target"], rel=0.05)
    # a trained network is within a few nulls of the target ...
    assert m["sw"] < 4 * m["sw_null"]
    # ... an untrained one is far from it
    untrained = ddm.init_network(target, 32, key=jr.key(13))
    bad = ddm.fidelity_report(untrained, target, key=jr.key(12), deterministic=False, **SMALL)
    assert bad.metrics["drift_error_box"] > 0.5
    assert bad.metrics["sw"] > 5 * m["sw"]
    table = report.to_markdown()
    assert "| limit-cycle period |" in table
    assert "sliced Wasserstein / spread" in table
    # burn-in is discarded: stationary samples exclude t < burn_in
    assert report.network_run.zs.shape == report.target_run.zs.shape


def test_report_rejects_burn_in_past_the_end(small_vdp):
    target, model = small_vdp
    with pytest.raises(ValueError, match="Expected 0 <= burn_in < t1; got burn_in=10.0, t1=8.0"):
        ddm.fidelity_report(model, target, key=jr.key(0), **{**SMALL, "burn_in": 10.0})
