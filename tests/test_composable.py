"""The core composes with jax.jit, jax.vmap and jax.grad, and equals the eager call.

Bitwise where a traced call runs the same compiled ensemble as the eager one (the same XLA
computation, inlined into the caller's); to float32 rounding where the two differ in
arithmetic on purpose (the eager `stationary_moments` combines on the host in float64), or
where XLA may fuse a vmapped batch of models differently from one model.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm
from ddm_jax.simulation import _network_sde, _tuning

SIM = dict(t1=0.5, dt=0.01, save_dt=0.05)


@pytest.fixture(scope="module")
def target():
    return ddm.make_target("vdp")


@pytest.fixture(scope="module")
def model(target):
    return ddm.init_network(target, 16, key=jr.key(0))


@pytest.fixture(scope="module")
def models(target):
    """Four networks in one: every array leaf has a leading axis of 4."""
    return eqx.filter_vmap(lambda k: ddm.init_network(target, 16, key=k))(jr.split(jr.key(1), 4))


Z0S = jnp.array([[0.5, 0.2], [1.0, -1.0], [-1.5, 0.5]])

# one traced call shared by the tests (one compilation): model, initial states and key traced
simulate_jit = jax.jit(lambda m, z, k: ddm.simulate_network(m, z, key=k, **SIM))


# ---------------------------------------------------------------- jit


def test_jit_simulate_network_equals_eager(model, key):
    eager = ddm.simulate_network(model, Z0S, key=jr.clone(key), **SIM)
    run = simulate_jit(model, Z0S, key)
    # bitwise: the same ensemble, compiled inside the caller's program; the traced
    # private_noise (0 here) selects at run time the draws the eager call makes
    np.testing.assert_array_equal(run.zs, eager.zs)
    np.testing.assert_allclose(run.ts, eager.ts, rtol=1e-6)  # returned by jit: float32
    # the residuals are reductions over the ensemble, fused into the caller: float32 rounding
    np.testing.assert_allclose(run.residual, eager.residual, rtol=1e-6)
    np.testing.assert_allclose(run.residual_max, eager.residual_max, rtol=1e-6)
    # the subspace cache never keeps what it computed for a traced Gamma
    for _, subspace in _network_sde._SUBSPACES.values():
        assert not any(isinstance(a, jax.core.Tracer) for a in subspace)


def test_jit_with_private_noise_draws_it(model, key):
    noisy = eqx.tree_at(lambda m: m.private_noise, model, jnp.asarray(0.3))
    eager = ddm.simulate_network(noisy, Z0S, key=jr.clone(key), **SIM)
    run = simulate_jit(noisy, Z0S, key)
    assert eager.residual > 1e-2  # the private noise leaves the manifold
    # the same draws; the run-time selection of them fuses differently: last-bit differences
    np.testing.assert_allclose(run.zs, eager.zs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(run.residual, eager.residual, rtol=1e-4)


def test_jit_simulate_target_equals_eager(target, key):
    eager = ddm.simulate_target(target, Z0S, key=jr.clone(key), **SIM)
    run = jax.jit(lambda t, z, k: ddm.simulate_target(t, z, key=k, **SIM))(target, Z0S, key)
    np.testing.assert_array_equal(run.zs, eager.zs)  # bitwise, as for networks


def test_jit_stationary_moments_equals_eager(model, target, key):
    grid = dict(SIM, burn_in=0.2)
    moments_jit = jax.jit(lambda s, z, k: ddm.stationary_moments(s, z, key=k, **grid))
    for system, k in zip((model, target), jr.split(key), strict=True):
        eager = ddm.stationary_moments(system, Z0S, key=jr.clone(k), **grid)
        moments = moments_jit(system, Z0S, k)
        # float32 rounding: traced, the per-trajectory moments are combined in float32,
        # eagerly on the host in float64
        scale = float(np.abs(eager.mean).max() + np.sqrt(np.abs(eager.cov).max()))
        np.testing.assert_allclose(moments.mean, eager.mean, rtol=0, atol=1e-5 * scale)
        np.testing.assert_allclose(moments.cov, eager.cov, rtol=0, atol=1e-5 * scale**2)
        assert int(moments.count) == eager.count == 3 * 7  # saves 4 ... 10 of 3 trajectories
        if system is model:
            np.testing.assert_allclose(moments.residual, eager.residual, rtol=1e-5)
            np.testing.assert_allclose(moments.residual_max, eager.residual_max, rtol=1e-5)
        else:
            assert moments.residual is None


# ---------------------------------------------------------------- vmap


def test_vmap_over_keys_initial_states_and_target_args(model, target, key):
    k_keys, k_z, k_tgt, k_t2 = jr.split(key, 4)
    keys = jr.split(k_keys, 8)
    batched = jax.vmap(lambda k: ddm.simulate_network(model, Z0S, key=k, **SIM).zs)(keys)
    loop = [ddm.simulate_network(model, Z0S, key=k, **SIM).zs for k in jr.clone(keys)]
    # float32 rounding: vmap gives every operation of the ensemble a batch axis, and XLA may
    # sum the batched products in another order (measured 2e-7 apart)
    np.testing.assert_allclose(batched, np.stack(loop), rtol=0, atol=1e-5)

    z0s = ddm.simulation.sample_box(k_z, target, 5 * 3).reshape(5, 3, 2)
    batched = jax.vmap(lambda z: ddm.simulate_network(model, z, key=jr.clone(k_tgt), **SIM).zs)(z0s)
    loop = [ddm.simulate_network(model, z, key=jr.clone(k_tgt), **SIM).zs for z in z0s]
    np.testing.assert_allclose(batched, np.stack(loop), rtol=0, atol=1e-6)

    mus = jnp.array([0.5, 1.0, 2.0])
    with_mu = lambda mu: eqx.tree_at(lambda t: t.args["mu"], target, mu)
    batched = jax.vmap(
        lambda mu: ddm.simulate_target(with_mu(mu), Z0S, key=jr.clone(k_t2), **SIM).zs
    )(mus)
    loop = [ddm.simulate_target(with_mu(mu), Z0S, key=jr.clone(k_t2), **SIM).zs for mu in mus]
    np.testing.assert_allclose(batched, np.stack(loop), rtol=0, atol=1e-6)
    assert float(jnp.abs(batched[0] - batched[2]).max()) > 1e-2  # mu matters


def test_filter_vmap_over_a_batch_of_models(models):
    run = lambda m: ddm.simulate_network(m, Z0S, key=jr.key(7), **SIM)
    batched = eqx.filter_vmap(run)(models)
    assert batched.zs.shape == (4, 3, 11, 2)
    assert batched.residual.shape == (4,)
    for i in range(4):
        one = run(jax.tree.map(lambda a, i=i: a[i], models))
        np.testing.assert_allclose(batched.zs[i], one.zs, rtol=0, atol=1e-5)
        np.testing.assert_allclose(batched.residual[i], one.residual, rtol=1e-3)


# ---------------------------------------------------------------- grad


def test_grad_through_the_simulation_matches_finite_differences(key):
    """Central differences in float64: step 1e-4 along a random direction, so truncation
    (h^2 ~ 1e-8) and rounding (eps / h ~ 1e-12) stay far below the tolerance 1e-6."""
    with jax.enable_x64(True):
        target = ddm.make_target("vdp")
        model = ddm.init_network(target, 16, key=jr.key(0))
        assert model.W_s.dtype == jnp.float64
        z0s = Z0S.astype(jnp.float64)
        grid = dict(t1=0.5, dt=0.01)
        with_W = lambda W: eqx.tree_at(lambda m: m.W_s, model, W)
        mean_readout = lambda m, k: jnp.mean(ddm.simulate_network(m, z0s, key=k, **grid).zs)

        def means(W, k):
            """The streamed mean of z_0 from t = 0.2, and the same mean of the stored states
            (the same key on purpose: the same trajectories)."""
            moments = ddm.stationary_moments(with_W(W), z0s, key=k, burn_in=0.2, **grid)
            zs = ddm.simulate_network(with_W(W), z0s, key=jr.clone(k), **grid).zs
            return jnp.stack([moments.mean[0], jnp.mean(zs[:, 20:, 0])])

        @eqx.filter_jit
        def gradients(model, k):
            # eqx.filter_grad over the whole model (Gamma, b, ... traced too), and jax.jacrev
            whole = eqx.filter_grad(mean_readout)(model, k)
            return whole.W_s, jax.jacrev(means)(model.W_s, jr.clone(k))

        grad, (streamed, stored) = gradients(model, jr.clone(key))
        direction = jr.normal(jr.key(3), model.W_s.shape, jnp.float64)
        h = 1e-4
        up = mean_readout(with_W(model.W_s + h * direction), jr.clone(key))
        down = mean_readout(with_W(model.W_s - h * direction), jr.clone(key))
        np.testing.assert_allclose(
            float(jnp.sum(grad * direction)), (up - down) / (2 * h), rtol=1e-6, atol=1e-9
        )
        assert float(jnp.abs(grad).max()) > 1e-3  # not trivially zero
        # the streamed mean differentiates like the mean of the stored states it folds
        assert float(jnp.abs(stored).max()) > 1e-3
        np.testing.assert_allclose(streamed, stored, rtol=1e-8, atol=1e-12)


def test_grad_of_drift_loss_under_jit(model, models, target, key):
    zs = ddm.simulation.sample_box(key, target, 64)
    loss = lambda W: ddm.training.drift_loss(eqx.tree_at(lambda m: m.W_s, model, W), target, zs)
    grad = jax.jit(jax.grad(loss))(model.W_s)
    direction = jr.normal(jr.key(1), model.W_s.shape)
    h = 1e-2  # the loss is quadratic in W_s: central differences are exact up to rounding
    fd = (loss(model.W_s + h * direction) - loss(model.W_s - h * direction)) / (2 * h)
    np.testing.assert_allclose(float(jnp.sum(grad * direction)), float(fd), rtol=1e-3)
    # the relative errors batch over models
    errors = eqx.filter_vmap(lambda m: ddm.drift_error(m, target, zs))(models)
    for i in range(4):
        one = ddm.drift_error(jax.tree.map(lambda a, i=i: a[i], models), target, zs)
        np.testing.assert_allclose(errors[i], one, rtol=1e-5)


# ---------------------------------------------------------------- entropy production


def test_epr_estimators_under_vmap_and_jit(model, key):
    D = jax.jit(ddm.analysis.diffusion_matrix)(model)
    np.testing.assert_allclose(D, ddm.analysis.diffusion_matrix(model), rtol=1e-6)
    f = model.target_drift
    samples = ddm.simulation.sample_box(key, ddm.make_target("vdp"), 3 * 4 * 50).reshape(
        3, 4, 50, 2
    )
    batched = jax.vmap(lambda s: ddm.analysis.epr_from_samples(f, D, s))(samples)
    assert batched.value.shape == batched.low.shape == (3,)
    for i in range(3):
        one = ddm.analysis.epr_from_samples(f, D, samples[i])
        np.testing.assert_allclose(batched.value[i], one.value, rtol=1e-5)
        np.testing.assert_allclose(batched.stderr[i], one.stderr, rtol=1e-4)
        np.testing.assert_allclose(batched.groups[i], one.groups, rtol=1e-6)
    covered = jax.vmap(lambda e: e.covers(0.0))(batched)
    assert covered.dtype == jnp.bool_
    assert covered.shape == (3,)
    # the trajectory estimator, over a batch of ensembles of trajectories
    batched = jax.jit(jax.vmap(lambda p: ddm.analysis.epr_from_trajectories(f, D, p, 0.01).value))(
        samples
    )
    for i in range(3):
        one = ddm.analysis.epr_from_trajectories(f, D, samples[i], 0.01).value
        np.testing.assert_allclose(batched[i], one, rtol=1e-5)
    # value checks become run-time errors when traced
    noisy = eqx.tree_at(lambda m: m.private_noise, model, jnp.asarray(0.3))
    with pytest.raises(Exception, match="without private neuron noise"):
        jax.block_until_ready(jax.jit(ddm.analysis.diffusion_matrix)(noisy))


# ---------------------------------------------------------------- checks that become errors


def test_a_diverging_simulation_raises_under_jit(key):
    # dt = 3 tau: Euler multiplies the off-manifold leak by (1 - 3) each step, overflow
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 8, key=jr.key(0))
    sim = dict(t1=600.0, dt=3.0)
    diverging = jax.jit(lambda m, k: ddm.simulate_network(m, target.z0, key=k, **sim).zs)
    with pytest.raises(Exception, match="network simulation became non-finite"):
        jax.block_until_ready(diverging(model, jr.clone(key)))
    moments = jax.jit(lambda m, k: ddm.stationary_moments(m, target.z0, key=k, **sim).mean)
    with pytest.raises(Exception, match="network simulation became non-finite"):
        jax.block_until_ready(moments(model, jr.clone(key)))
    bad_start = jax.jit(lambda z, k: ddm.simulate_target(target, z, key=k, **SIM).zs)
    with pytest.raises(Exception, match="Expected finite initial states"):
        jax.block_until_ready(bad_start(jnp.array([jnp.nan, 0.0]), jr.clone(key)))
    # shapes are still checked eagerly, with the eager message
    with pytest.raises(ValueError, match=r"shape \(batch, 2\) or \(2,\) for the network"):
        jax.jit(lambda z: ddm.simulate_network(model, z, key=jr.clone(key), **SIM).zs)(
            jnp.zeros((4, 3))
        )


def test_no_timing_under_tracing(model, monkeypatch, key):
    """In measure mode a traced model takes the remembered form, else the fused one: nothing
    is timed on tracers, and nothing is stored."""
    monkeypatch.setenv("DDM_JAX_UPDATE", "measure")
    monkeypatch.setenv("DDM_JAX_CACHE_DIR", "")
    monkeypatch.setattr(_tuning, "_chosen", {})
    calls = []
    monkeypatch.setattr(
        _network_sde, "_fused_is_faster", lambda model, batch: calls.append(batch) or False
    )
    assert _network_sde.fused_update(model, 4) is False  # eager: measured (stubbed), kept
    assert calls == [4]
    seen = []

    def probe(m):
        seen.extend([_network_sde.fused_update(m, 4), _network_sde.fused_update(m, 8)])
        return m.W_s

    jax.jit(probe)(model)
    assert seen == [False, True]  # remembered for B = 4; the fused form for a new shape
    assert calls == [4]
    assert len(_tuning._chosen) == 1
    run = simulate_jit(model, jnp.zeros((4, 2)), key)  # traced anew: B = 4, the product form
    assert run.zs.shape == (4, 11, 2)
    assert calls == [4]
