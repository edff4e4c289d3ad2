"""Latent inputs in simulation: the input algebra, pulse timing, per-trajectory schedules."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm


def _network(target, n, *, key):
    """A network with an O(1) random read-out, so the latent dynamics are not trivial."""
    k_init, k_w = jr.split(key)
    model = ddm.init_network(target, n, key=k_init, tau=0.7)
    return eqx.tree_at(lambda m: m.W_s, model, 2.0 * jr.normal(k_w, model.W_s.shape) / n**0.5)


def _drifting():
    """``dz = u dt``: no drift and no noise, so the state is the integral of the input."""
    return ddm.from_callables(
        lambda t, z, args: jnp.zeros(2),
        lambda t, z, args: jnp.zeros((2, 1)),
        box=([-1.0, -1.0], [1.0, 1.0]),
    )


def test_constant_input_enters_latent_drift_as_u(key):
    """The network's neuron drift with input u, read out, is the latent drift plus u."""
    target = ddm.make_target("wells")
    k_net, k_z, k_u = jr.split(key, 3)
    model = _network(target, 64, key=k_net)
    zs = ddm.simulation.sample_box(k_z, target, 32)
    u = jr.normal(k_u, (2,))
    pinv = jnp.linalg.pinv(model.Gamma)

    def check(z):
        x = model.embed(z)
        dx = model.neuron_drift(x, u)
        # E^+ dx, and the part the input adds: B_in u / tau, in span(Gamma)
        return model.scale * (pinv @ dx), dx - model.neuron_drift(x)

    dz, extra = jax.jit(jax.vmap(check))(zs)
    np.testing.assert_allclose(dz, jax.vmap(model.target_drift)(zs) + u, rtol=1e-4, atol=1e-4)
    bu = jnp.broadcast_to(model.input_matrix @ u / model.tau, extra.shape)
    np.testing.assert_allclose(extra, bu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["target", "network"])
def test_constant_input_moves_one_step_by_u_dt(kind, key):
    """Same key with and without a constant input: after one step the states differ by u dt."""
    target = ddm.make_target("cycling_wells")
    k_net, k_sim = jr.split(key)
    system = target if kind == "target" else _network(target, 64, key=k_net)
    simulate = ddm.simulate_target if kind == "target" else ddm.simulate_network
    z0s = jnp.array([[1.0, 0.0], [0.0, -1.0], [0.3, 0.2]])
    u = jnp.array([0.7, -1.3])
    dt = 1e-2
    plain = simulate(system, z0s, key=jr.clone(k_sim), t1=dt, dt=dt)
    pushed = simulate(system, z0s, key=jr.clone(k_sim), t1=dt, dt=dt, inputs=lambda t: u)
    np.testing.assert_allclose(pushed.zs[:, 1] - plain.zs[:, 1], jnp.tile(u * dt, (3, 1)),
                               rtol=1e-4, atol=2e-6)  # fmt: skip


def test_zero_pulse_is_bitwise_no_input(key):
    """A shared pulse of zero amplitude changes no bit; zero rows of a per-trajectory schedule
    agree to float32 rounding (their batched step is compiled differently, FACTS.md)."""
    target = ddm.make_target("wells")
    k_net, k_t, k_n = jr.split(key, 3)
    model = _network(target, 32, key=k_net)
    z0s = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    kwargs = dict(t1=1.0, dt=1e-2, save_dt=0.1)
    zero = ddm.simulation.pulse([1.0, 1.0], amplitude=0.0, onset=0.2, duration=0.5)
    zeros = ddm.simulation.pulse([1.0, 1.0], amplitude=jnp.zeros(2), onset=0.2, duration=0.5)
    for system, simulate, k in ((target, ddm.simulate_target, k_t),
                                (model, ddm.simulate_network, k_n)):  # fmt: skip
        base = simulate(system, z0s, key=jr.clone(k), **kwargs).zs
        np.testing.assert_array_equal(
            simulate(system, z0s, key=jr.clone(k), inputs=zero, **kwargs).zs, base
        )
        np.testing.assert_allclose(
            simulate(system, z0s, key=jr.clone(k), inputs=zeros, **kwargs).zs, base, atol=1e-6
        )


@pytest.mark.parametrize("method", ["scan", "diffeqsolve"])
def test_pulse_timing_across_blocks(method, key):
    """A pulse acts on the steps whose midpoints it covers, also across blocks of 1024 steps.

    ``dz = u dt``: with u = (1, 2) on [0.1, 0.3) and dt = 1e-4 (2,500 steps a save), the state
    is exactly the covered time, to float32 rounding of 5,000 sums.
    """
    target = _drifting()
    u = ddm.simulation.pulses([[1.0, 2.0]], starts=0.1, durations=0.2)
    run = ddm.simulate_target(target, jnp.zeros(2), key=key, t1=0.5, dt=1e-4, save_dt=0.25,
                              inputs=u, method=method)  # fmt: skip
    np.testing.assert_allclose(run.zs[0], [[0, 0], [0.15, 0.3], [0.2, 0.4]], atol=2e-5)


def test_per_trajectory_schedule_matches_shared(key):
    """Row i of a batched schedule gives trajectory i what a shared schedule would."""
    target = ddm.make_target("wells")
    model = _network(target, 32, key=key)
    z0s = jnp.tile(jnp.array([1.0, 0.0]), (2, 1))
    kwargs = dict(t1=0.5, dt=1e-2, save_dt=0.1)
    amplitudes = jnp.array([0.0, 2.0])
    batched = ddm.simulation.pulse([-1.0, 1.0], amplitude=amplitudes, onset=0.1, duration=0.4)
    for system, simulate in ((target, ddm.simulate_target), (model, ddm.simulate_network)):
        zs = simulate(system, z0s, key=jr.key(1), inputs=batched, **kwargs).zs
        refs = []
        for i, a in enumerate(amplitudes):
            shared = ddm.simulation.pulse([-1.0, 1.0], amplitude=a, onset=0.1, duration=0.4)
            refs.append(simulate(system, z0s, key=jr.key(1), inputs=shared, **kwargs).zs)
            np.testing.assert_allclose(zs[i], refs[-1][i], rtol=1e-6, atol=1e-6)
        # the pulse did something: the same trajectory with and without it
        assert float(jnp.abs(refs[1][1, -1] - refs[0][1, -1]).max()) > 0.1


def test_function_input_equals_schedule(key):
    target = ddm.make_target("wells")
    kwargs = dict(t1=0.6, dt=1e-2, save_dt=0.2)
    u = ddm.simulation.pulse([0.0, 1.0], amplitude=1.5, onset=0.2, duration=0.2)
    f = lambda t: jnp.where((t >= 0.2) & (t < 0.4), 1.5, 0.0) * jnp.array([0.0, 1.0])
    a = ddm.simulate_target(target, target.z0, key=jr.clone(key), inputs=u, **kwargs).zs
    b = ddm.simulate_target(target, target.z0, key=jr.clone(key), inputs=f, **kwargs).zs
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_moments_with_input(key):
    """`stationary_moments` runs the trajectories of `simulate_target`, input included."""
    target = _drifting()
    u = ddm.simulation.pulse([1.0, 0.0], amplitude=jnp.array([1.0, 3.0]), duration=0.25)
    kwargs = dict(t1=0.5, dt=1e-2, save_dt=0.25, inputs=u)
    run = ddm.simulate_target(target, jnp.zeros((2, 2)), key=jr.clone(key), **kwargs)
    moments = ddm.stationary_moments(
        target, jnp.zeros((2, 2)), key=jr.clone(key), burn_in=0.25, **kwargs
    )
    np.testing.assert_allclose(moments.mean, run.zs[:, 1:].reshape(-1, 2).mean(0), atol=1e-5)
    np.testing.assert_allclose(moments.mean, [0.5, 0.0], atol=1e-5)


def test_schedule_does_not_recompile(key):
    cached = getattr(ddm.simulation._simulate.target_ensemble, "_cached", None)
    if cached is None or not hasattr(cached, "_cache_size"):
        pytest.skip("the jit cache of target_ensemble is not inspectable in this JAX/equinox")
    target = ddm.make_target("wells")
    kwargs = dict(t1=0.2, dt=1e-2)
    k1, k2 = jr.split(key)
    u = lambda a: ddm.simulation.pulse([1.0, 0.0], amplitude=a, onset=0.05, duration=0.1)
    ddm.simulate_target(target, jnp.zeros((4, 2)), key=k1, inputs=u(jnp.ones(4)), **kwargs)
    size = cached._cache_size()
    ddm.simulate_target(target, jnp.ones((4, 2)), key=k2, inputs=u(jnp.arange(4.0)), **kwargs)
    assert cached._cache_size() == size


def test_input_errors(key, no_typecheck):
    target = ddm.make_target("wells")
    z0s = jnp.zeros((3, 2))
    run = lambda u: ddm.simulate_target(target, z0s, key=jr.clone(key), t1=0.1, dt=1e-2, inputs=u)
    with pytest.raises(ValueError, match=r"Expected an input of dimension k = 2"):
        run(ddm.simulation.pulse([1.0, 0.0, 0.0], duration=1.0))
    with pytest.raises(ValueError, match=r"one row per trajectory \(3\); got 2 rows"):
        run(ddm.simulation.pulse([1.0, 0.0], amplitude=jnp.ones(2), duration=1.0))
    with pytest.raises(ValueError, match=r"Expected u\(t\) to return shape \(2,\); got \(3,\)"):
        run(lambda t: jnp.zeros(3))
    with pytest.raises(TypeError, match="Expected inputs to be a Schedule or a function"):
        run(jnp.ones(2))
    with pytest.raises(ValueError, match="Expected a non-zero direction"):
        ddm.simulation.pulse([0.0, 0.0], duration=1.0)
    with pytest.raises(ValueError, match="Expected finite onsets and finite durations >= 0"):
        ddm.simulation.pulses([[1.0, 0.0]], starts=0.0, durations=-1.0)
    with pytest.raises(ValueError, match="Expected a finite scalar or"):
        ddm.simulation.pulse([1.0, 0.0], amplitude=jnp.nan, duration=1.0)
