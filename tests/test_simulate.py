"""Simulation of targets and full networks: manifold, solvers, noise statistics, errors."""

import gc
import re

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from helpers import cov_standard_error, multiplicative_ou

import ddm_jax as ddm
from ddm_jax.simulation import _integrate, _network_sde, _simulate

# the engine alone, compiled on its own: the reference for the library's one-call ensembles
_ensemble = eqx.filter_jit(_integrate.ensemble)

# expected order of convergence of each solver on a deterministic problem
DETERMINISTIC_ORDER = {"euler": 1, "heun": 2, "midpoint": 2, "ralston": 2}


def _random_network(target, n, *, key, tau=1.0, private_noise=0.0):
    """A network with an O(1) random read-out, so the latent dynamics are not trivial."""
    k_init, k_w = jr.split(key)
    model = ddm.init_network(target, n, key=k_init, tau=tau, private_noise=private_noise)
    W_s = 2.0 * jr.normal(k_w, model.W_s.shape) / jnp.sqrt(n)
    return eqx.tree_at(lambda m: m.W_s, model, W_s)


def _vdp_rk4(z0, t1, h=1e-4):
    """Float64 RK4 reference of the noiseless Van der Pol oscillator (mu = 1)."""

    def f(z):
        x, y = z[..., 0], z[..., 1]
        return np.stack([y, (1 - x**2) * y - x], axis=-1)

    z = np.asarray(z0, dtype=np.float64)
    for _ in range(int(round(t1 / h))):
        k1 = f(z)
        k2 = f(z + h / 2 * k1)
        k3 = f(z + h / 2 * k2)
        k4 = f(z + h * k3)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return z


# ---------------------------------------------------------------- the manifold


def test_network_stays_on_manifold(key):
    target = ddm.make_target("vdp")
    k_net, k_z, k_sim = jr.split(key, 3)
    model = _random_network(target, 32, key=k_net)
    z0s = ddm.simulation.sample_box(k_z, target, 16)
    run = ddm.simulate_network(
        model, z0s, key=k_sim, t1=2.0, dt=1e-3, save_dt=0.05, keep_neurons=True
    )
    assert run.zs.shape == (16, 41, 2)
    assert run.xs.shape == (16, 41, 32)
    np.testing.assert_allclose(run.ts, 0.05 * np.arange(41), atol=1e-12)
    # float32 rounding alone gives ~eps / sqrt(2 dt) = 3e-6 (simulate_network's docstring)
    assert run.residual < 1e-5
    assert run.residual_max < 1e-4
    # the library's residual agrees with one computed from the neuron states
    assert float(ddm.network.off_subspace_residual(model, run.xs)) < 1e-4
    # the read-out is the least-squares inverse of the embedding, and starts at z0
    np.testing.assert_allclose(run.zs[:, 0], z0s, rtol=1e-5, atol=1e-5)
    readout = (run.xs[:, -1] - model.offset) @ jnp.linalg.pinv(model.embed_matrix).T
    np.testing.assert_allclose(run.zs[:, -1], readout, rtol=1e-4, atol=1e-4)
    assert float(jnp.std(run.zs[:, -1] - run.zs[:, 0])) > 0.1  # it moved


def test_private_noise_leaves_manifold(key):
    target = ddm.make_target("vdp")
    k_net, k_sim = jr.split(key)
    model = _random_network(target, 32, key=k_net, private_noise=0.3)
    run = ddm.simulate_network(model, target.z0, key=k_sim, t1=2.0, dt=1e-2)
    assert run.residual > 1e-2


# ---------------------------------------------------------------- methods and solvers


def test_scan_and_diffeqsolve_agree(key):
    target = ddm.make_target("vdp")
    k_net, k_z, k_sim, k_tgt = jr.split(key, 4)
    model = _random_network(target, 32, key=k_net)
    z0s = ddm.simulation.sample_box(k_z, target, 4)
    kwargs = dict(t1=1.0, dt=1e-2, save_dt=0.1)
    # the same key on purpose (jr.clone marks the reuse as intended): the same increments
    scan = ddm.simulate_network(model, z0s, key=jr.clone(k_sim), **kwargs)
    dfx_run = ddm.simulate_network(model, z0s, key=k_sim, method="diffeqsolve", **kwargs)
    # equal up to float32 rounding over 100 steps
    scale = float(jnp.abs(scan.zs).max())
    np.testing.assert_allclose(dfx_run.zs, scan.zs, rtol=0, atol=1e-5 * scale)
    assert scan.zs.shape == dfx_run.zs.shape == (4, 11, 2)

    # 2,500 steps per save: two full blocks of increments and a shorter one, drawn alike
    assert _integrate.BLOCK == 1024
    long = dict(t1=2.5, dt=1e-3, save_dt=1.25)
    scan = ddm.simulate_network(model, z0s, key=jr.clone(k_sim), **long)
    dfx_run = ddm.simulate_network(model, z0s, key=jr.clone(k_sim), method="diffeqsolve", **long)
    np.testing.assert_allclose(dfx_run.zs, scan.zs, rtol=0, atol=1e-5 * scale)

    scan = ddm.simulate_target(target, z0s, key=jr.clone(k_tgt), solver="heun", **kwargs)
    dfx_run = ddm.simulate_target(
        target, z0s, key=k_tgt, solver="heun", method="diffeqsolve", **kwargs
    )
    np.testing.assert_allclose(dfx_run.zs, scan.zs, rtol=0, atol=1e-5 * scale)


def test_fused_and_product_updates_agree(key, monkeypatch):
    """The two equal forms of the network update give the same ensemble, up to rounding."""
    target = ddm.make_target("lorenz")
    k_net, k_z, k_sim = jr.split(key, 3)
    model = _random_network(target, 64, key=k_net)
    x0s = jax.vmap(model.embed)(ddm.simulation.sample_box(k_z, target, 8))
    keys = jr.split(k_sim, 8)
    fused = _network_sde.network_sde(model, batch=8)
    monkeypatch.setenv("DDM_JAX_UPDATE", "product")
    product = _network_sde.network_sde(model, batch=8)
    assert fused.params.columns is not None
    assert product.params.columns is None
    runs = [
        _ensemble(sde, x0s, keys, 1e-3, 5, 20, dfx.Euler(), "scan")["z"] for sde in (fused, product)
    ]
    # 100 steps of a chaotic network: measured 2e-6 apart
    np.testing.assert_allclose(runs[0], runs[1], rtol=0, atol=1e-4)


def test_memory_grows_with_saved_states_only(key):
    """Increments are drawn BLOCK steps at a time: 250x the steps per save, same memory."""
    k_net, k_sim = jr.split(key)
    model = ddm.init_network(ddm.make_target("lorenz"), 64, key=k_net)
    sde = _network_sde.network_sde(model, batch=64)
    x0s, keys = jnp.zeros((64, 64)), jr.split(k_sim, 64)

    def temp_bytes(save_every):
        run = lambda x, k: _ensemble(sde, x, k, 1e-3, 2, save_every, dfx.Euler(), "scan")
        return jax.jit(run).lower(x0s, keys).compile().memory_analysis().temp_size_in_bytes

    small, large = temp_bytes(2_000), temp_bytes(500_000)
    assert large < 1.2 * small  # measured: equal within 1%
    assert large < 64 * 500_000 * model.m * 4 / 50  # all increments of a save: 384 MB


def test_stationary_moments_match_stored_states(key):
    """Streaming moments are those of the states `simulate_*` stores, up to rounding."""
    target = ddm.make_target("lorenz")
    k_net, k_z, k_sim, k_tgt = jr.split(key, 4)
    model = _random_network(target, 32, key=k_net)
    z0s = ddm.simulation.sample_box(k_z, target, 8)
    grid = dict(t1=2.0, dt=1e-3, save_dt=0.05)
    for system, k in ((model, k_sim), (target, k_tgt)):
        run = (ddm.simulate_network if system is model else ddm.simulate_target)(
            system, z0s, key=jr.clone(k), **grid
        )
        moments = ddm.stationary_moments(system, z0s, key=jr.clone(k), burn_in=0.5, **grid)
        zs = np.asarray(run.zs[:, 10:], dtype=np.float64).reshape(-1, 3)  # t >= 0.5
        assert moments.count == zs.shape[0] == 8 * 31
        scale = np.abs(zs).max()
        np.testing.assert_allclose(moments.mean, zs.mean(0), rtol=0, atol=1e-5 * scale)
        np.testing.assert_allclose(moments.cov, np.cov(zs.T), rtol=0, atol=1e-5 * scale**2)
        everything = ddm.stationary_moments(system, z0s, key=k, **grid)
        assert everything.count == 8 * 41  # burn_in 0 keeps the initial states too
        if system is model:  # the residual over all saves is that of the run
            np.testing.assert_allclose(everything.residual, run.residual, rtol=1e-3)
            np.testing.assert_allclose(everything.residual_max, run.residual_max, rtol=1e-3)
        else:
            assert everything.residual is None


def test_stationary_moments_of_ou(key):
    """Time averages over 64 x 390 time units give the exact OU covariance.

    Tolerance: 4 standard errors with a conservative effective sample count (trajectories x
    time x slowest rate / 2) plus the Euler bias ``dt B S B^T / 2``.
    """
    target = ddm.make_target("ou")
    B = np.asarray(target.args["B"], dtype=np.float64)
    G = np.asarray(target.args["noise"], dtype=np.float64)
    exact = np.asarray(
        ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(G @ G.T / 2))
    )
    dt, t1, burn_in, trajectories = 5e-3, 400.0, 10.0, 64
    moments = ddm.stationary_moments(target, jnp.zeros((trajectories, 2)), key=key, t1=t1,
                                     burn_in=burn_in, dt=dt, save_dt=0.1)  # fmt: skip
    effective = trajectories * (t1 - burn_in) * np.linalg.eigvals(B).real.min() / 2
    tolerance = 4 * cov_standard_error(exact, effective) + dt * np.abs(B @ exact @ B.T) / 2
    np.testing.assert_array_less(np.abs(moments.cov - exact), tolerance)
    np.testing.assert_array_less(np.abs(moments.mean), 4 * np.sqrt(np.diag(exact) / effective))


@pytest.mark.usefixtures("no_typecheck")  # a str where a system goes: our own message
def test_stationary_moments_memory_and_errors(key):
    target = ddm.make_target("ou")
    sde = _simulate.target_sde(target)
    z0s, keys = jnp.zeros((16, 2)), jr.split(key, 16)

    def temp_bytes(saves):
        run = lambda z, k: _ensemble(sde, z, k, 1e-3, saves, 10, dfx.Euler(), "scan", 1)
        return jax.jit(run).lower(z0s, keys).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(100_000) < 1.2 * temp_bytes(100)  # 1,000x the saves, the same memory
    grid = dict(t1=1.05, dt=0.01, save_dt=0.1)  # the last save is at t = 1
    for burn_in in (1.05, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"Expected 0 <= burn_in <= 1 \(the last save\)"):
            ddm.stationary_moments(target, z0s, key=jr.key(0), burn_in=burn_in, **grid)
    with pytest.raises(ValueError, match="Expected at least 2 states after burn_in"):
        ddm.stationary_moments(target, z0s[:1], key=jr.key(1), burn_in=1.0, **grid)
    with pytest.raises(TypeError, match="Expected a Target or a LowRankRNN; got str"):
        ddm.stationary_moments("ou", z0s, key=jr.key(2), **grid)


def test_running_moments_keep_float32_precision(key):
    """10^7 float32 states of N(23, 8^2) folded one by one: the float64 moments, to 1e-4.

    Plain float32 Welford (float count, uncompensated sums) gave a variance 1.6% low here.
    """
    samples = 23.0 + 8.0 * jr.normal(key, (10_000_000, 1))
    zero = jnp.zeros(1)
    acc = {"count": jnp.zeros((), jnp.int32), "mean": zero, "mean_c": zero,
           "m2": jnp.zeros((1, 1)), "m2_c": jnp.zeros((1, 1))}  # fmt: skip
    fold = lambda acc, z: (_integrate._accumulate(acc, {"z": z}, jnp.bool_(True)), None)
    acc, _ = jax.jit(lambda acc, zs: jax.lax.scan(fold, acc, zs))(acc, samples)
    reference = np.asarray(samples, dtype=np.float64)[:, 0]
    assert int(acc["count"]) == 10_000_000  # a float32 count stops at 2^24
    mean = float(acc["mean"][0] - acc["mean_c"][0])
    variance = float(acc["m2"][0, 0] - acc["m2_c"][0, 0]) / (10_000_000 - 1)
    np.testing.assert_allclose(mean, reference.mean(), rtol=1e-5)
    np.testing.assert_allclose(variance, reference.var(ddof=1), rtol=1e-4)


def test_long_runs_keep_exact_steps(key):
    """600,000 Euler steps of a rotation land where (I + dt J)^N z0 does.

    Float32 time alone (t + dt - t) changes the steps by up to 2% (beyond t = 512) and puts
    the phase off by 0.52 radians (measured); the exact step keeps it within rounding.
    """
    rotation = ddm.from_callables(
        lambda t, z, args: jnp.array([-z[1], z[0]]),
        lambda t, z, args: jnp.zeros((2, 1)),
        box=(-jnp.ones(2), jnp.ones(2)),
    )
    dt, steps = 1e-3, 600_000
    for method in ("scan", "diffeqsolve"):
        run = ddm.simulate_target(rotation, jnp.array([1.0, 0.0]), key=jr.clone(key), dt=dt,
                                  t1=steps * dt, save_dt=steps * dt / 2, method=method)  # fmt: skip
        z = np.asarray(run.zs[0, -1], dtype=np.float64)
        phase = np.arctan2(z[1], z[0])
        expected = np.angle(np.exp(1j * steps * np.arctan(dt)))
        # Euler grows the radius by (1 + dt^2)^(N/2) exactly; rounding drift measured < 1e-3
        assert abs(np.angle(np.exp(1j * (phase - expected)))) < 1e-2, method
        np.testing.assert_allclose(np.hypot(*z), (1 + dt**2) ** (steps / 2), rtol=1e-2)


@pytest.mark.parametrize("solver", sorted(ddm.simulation.SOLVERS))
def test_solver_convergence_without_noise(solver, key):
    """Noiseless VdP from two states to t = 2 against a float64 RK4 reference."""
    target = ddm.make_target("vdp", noise=0.0)
    z0s = jnp.array([[2.0, 0.0], [0.5, -1.0]])
    reference = _vdp_rk4(z0s, 2.0)
    keys = jr.split(key, 3)
    errors, finals = [], []
    for dt, k in zip((0.02, 0.01), keys, strict=False):
        run = ddm.simulate_target(target, z0s, key=k, t1=2.0, dt=dt, save_dt=2.0, solver=solver)
        finals.append(np.asarray(run.zs[:, -1]))
        errors.append(float(np.max(np.abs(finals[-1] - reference))))
    order = DETERMINISTIC_ORDER.get(solver, 1)
    # global error O(dt^order): measured 0.033 (first order) and 3e-4 (second) at dt = 0.01
    assert errors[1] < 4 * 0.01**order
    # halving dt divides the error by ~2^order (measured 2.0 and 3.9-4.0)
    assert errors[0] / errors[1] > 2**order * 0.8
    # and the solver agrees with Euler to O(dt)
    euler = ddm.simulate_target(target, z0s, key=keys[2], t1=2.0, dt=0.01, save_dt=2.0)
    np.testing.assert_allclose(finals[1], euler.zs[:, -1], atol=5 * 0.01)


@pytest.mark.parametrize("solver", sorted(ddm.simulation.SOLVERS))
def test_network_solvers_agree_without_noise(solver, key):
    target = ddm.make_target("vdp", noise=0.0)
    k_net, k_ref, k_a = jr.split(key, 3)
    model = _random_network(target, 32, key=k_net)
    z0s = jnp.array([[2.0, 0.0], [0.5, -1.0]])
    kwargs = dict(t1=2.0, save_dt=2.0)
    reference = ddm.simulate_network(model, z0s, key=k_ref, dt=1e-3, solver="heun", **kwargs)
    run = ddm.simulate_network(model, z0s, key=k_a, dt=1e-2, solver=solver, **kwargs)
    # measured: 4.4e-3 for the first-order solvers, 4e-5 for the second-order ones
    order = DETERMINISTIC_ORDER.get(solver, 1)
    err = float(jnp.abs(run.zs[:, -1] - reference.zs[:, -1]).max())
    assert err < 3 * 0.01**order
    assert run.residual < 1e-5


def test_stratonovich_solver_rejected_for_state_dependent_noise(key):
    target = multiplicative_ou()
    k_net, k_a, k_b, k_c = jr.split(key, 4)
    for solver in sorted(set(ddm.simulation.SOLVERS) - {"euler"}):
        with pytest.raises(ValueError, match=f"Expected an Ito solver .* got '{solver}'"):
            ddm.simulate_target(target, target.z0, key=k_a, t1=1.0, dt=0.1, solver=solver)
    model = ddm.init_network(target, 8, key=k_net)
    assert model.noise_readout is not None
    with pytest.raises(ValueError, match="Expected an Ito solver"):
        ddm.simulate_network(model, target.z0, key=k_b, t1=1.0, dt=0.1, solver="heun")
    # Euler-Maruyama is fine
    run = ddm.simulate_target(target, target.z0, key=k_c, t1=1.0, dt=0.1)
    assert run.zs.shape == (1, 11, 2)


def test_unknown_solver_and_bad_grid(key):
    target = ddm.make_target("vdp")
    with pytest.raises(
        ValueError, match=re.escape(f"Expected solver in {sorted(ddm.simulation.SOLVERS)}")
    ):
        ddm.simulate_target(target, target.z0, key=key, t1=1.0, solver="rk4")
    with pytest.raises(ValueError, match="step dt > 0; got t1=1.0, dt=0.0"):
        ddm.simulate_target(target, target.z0, key=key, t1=1.0, dt=0.0)
    with pytest.raises(ValueError, match="finite time t1 > 0"):
        ddm.simulate_target(target, target.z0, key=key, t1=-1.0)
    with pytest.raises(ValueError, match="at least one state is saved"):
        ddm.simulate_target(target, target.z0, key=key, t1=0.1, dt=0.01, save_dt=1.0)


# ---------------------------------------------------------------- noise statistics


@pytest.mark.parametrize("kind", ["additive", "private", "state_dependent"])
def test_one_step_increment_covariance(kind, key):
    """Latent read-out increments over one Euler step have covariance G G^T dt.

    20000 trajectories from one state; tolerance 4 standard errors per entry
    (``cov_standard_error``, about 3% of the variances). The drift shifts the mean only.
    """
    k_net, k_w, k_sim = jr.split(key, 3)
    dt, num = 1e-2, 20_000
    if kind == "state_dependent":
        target = multiplicative_ou()
        model = ddm.init_network(target, 32, key=k_net)
        readout = 0.3 * jr.normal(k_w, model.noise_readout.shape) / jnp.sqrt(32)
        model = eqx.tree_at(lambda m: m.noise_readout, model, readout)
    else:
        # k = 2, m = 3 Brownian motions, a non-diagonal G
        target = ddm.make_target("ou", noise=[[0.5, 0.0, 0.2], [0.3, 0.4, 0.0]])
        sigma = 0.8 if kind == "private" else 0.0
        model = _random_network(target, 32, key=k_net, tau=0.8, private_noise=sigma)
    z0 = jnp.array([0.3, -0.2])
    run = ddm.simulate_network(model, jnp.tile(z0, (num, 1)), key=k_sim, t1=dt, dt=dt)
    increments = np.asarray(run.zs[:, 1] - run.zs[:, 0], dtype=np.float64)
    empirical = np.cov(increments.T)

    g = np.asarray(model.latent_noise_target(z0), dtype=np.float64)  # S Ghat / tau
    expected = g @ g.T * dt
    if kind == "private":
        # private noise sigma dW / tau on every neuron adds sigma^2 E^+ E^+T dt / tau^2
        pinv = np.linalg.pinv(np.asarray(model.embed_matrix, dtype=np.float64))
        expected += (0.8 / 0.8) ** 2 * pinv @ pinv.T * dt
        assert np.trace(expected - g @ g.T * dt) > 0.2 * np.trace(expected)  # it matters
    else:
        # the network reproduces the target's G G^T (exactly for additive noise)
        G = np.asarray(target.g(z0), dtype=np.float64)
        if kind == "additive":
            np.testing.assert_allclose(expected, G @ G.T * dt, rtol=1e-5)
    se = cov_standard_error(expected, num)
    np.testing.assert_array_less(np.abs(empirical - expected), 4 * se)
    # the mean increment is the drift times dt, within 4 standard errors
    drift = np.asarray(model.target_drift(z0))
    np.testing.assert_array_less(
        np.abs(increments.mean(0) - drift * dt), 4 * np.sqrt(np.diag(expected) / num)
    )


# ---------------------------------------------------------------- errors


def test_divergence_names_time_and_trajectory(key):
    cubic = ddm.from_callables(
        lambda t, z, args: z**3,
        lambda t, z, args: jnp.zeros((2, 2)),
        box=([-1.0, -1.0], [1.0, 1.0]),
        name="cubic",
    )
    z0s = jnp.array([[0.0, 0.0], [0.1, 0.1], [3.0, 3.0]])
    dt = 0.5
    # where float32 Euler z <- z + dt z^3 from 3 first overflows
    z, step = np.float32(3.0), 0
    with np.errstate(over="ignore"):
        while np.isfinite(z):
            z, step = np.float32(z + np.float32(dt) * z**3), step + 1
    k_a, k_b = jr.split(key)
    message = f"non-finite at t = {step * dt:.6g} in trajectory 2"
    with pytest.raises(ddm.SimulationDiverged, match=re.escape(message)) as info:
        ddm.simulate_target(cubic, z0s, key=k_a, t1=10.0, dt=dt)
    assert "'cubic'" in str(info.value)
    assert isinstance(info.value, ValueError)
    # check=False returns the non-finite run instead
    run = ddm.simulate_target(cubic, z0s, key=k_b, t1=10.0, dt=dt, check=False)
    assert not np.all(np.isfinite(run.zs[2]))
    assert np.all(np.isfinite(run.zs[:2]))


def test_network_divergence(key):
    # dt = 3 tau: Euler multiplies the off-manifold leak by (1 - 3) each step, overflow
    target = ddm.make_target("vdp")
    k_net, k_sim = jr.split(key)
    model = ddm.init_network(target, 8, key=k_net)
    with pytest.raises(ddm.SimulationDiverged, match=r"network simulation .* in trajectory 0"):
        ddm.simulate_network(model, target.z0, key=k_sim, t1=600.0, dt=3.0)


def test_bad_initial_states(key):
    target = ddm.make_target("vdp")
    k_net, *sub = jr.split(key, 5)
    model = ddm.init_network(target, 8, key=k_net)
    for bad in (jnp.zeros(3), jnp.zeros((4, 3)), jnp.zeros((2, 2, 2))):
        # the message names the shape the user passed
        shape = re.escape(str(bad.shape))
        message = rf"Expected initial states of shape \(batch, 2\).*; got {shape}"
        with pytest.raises(ValueError, match=message):
            ddm.simulate_target(target, bad, key=sub[0], t1=1.0)
        with pytest.raises(ValueError, match=r"shape \(batch, 2\) or \(2,\) for the network"):
            ddm.simulate_network(model, bad, key=sub[1], t1=1.0)
    with pytest.raises(ValueError, match="Expected finite initial states"):
        ddm.simulate_target(target, jnp.array([jnp.nan, 0.0]), key=sub[2], t1=1.0)
    with pytest.raises(ValueError, match="Expected finite initial states"):
        ddm.simulate_network(model, jnp.array([[0.0, jnp.inf]]), key=sub[3], t1=1.0)


# ---------------------------------------------------------------- compilation


def test_no_recompilation(key):
    caches = (getattr(_simulate.target_ensemble, "_cached", None), _network_sde.network_ensemble)
    if not all(hasattr(c, "_cache_size") for c in caches):
        pytest.skip("the jit caches of the ensembles are not inspectable in this JAX/equinox")

    class cached:  # targets and networks compile apart: count both
        _cache_size = staticmethod(lambda: sum(c._cache_size() for c in caches))

    target = ddm.make_target("vdp")
    k_net, k_net2, k1, k2, k3, k4, k5, k6, k7, k8 = jr.split(key, 10)
    model = _random_network(target, 16, key=k_net)
    kwargs = dict(t1=0.5, dt=1e-2, save_dt=0.1)
    z0s = jnp.zeros((3, 2))
    ddm.simulate_network(model, z0s, key=k1, **kwargs)
    ddm.simulate_target(target, z0s, key=k2, **kwargs)
    size = cached._cache_size()
    # a new key, new initial states, new weights, new target parameters: nothing recompiles
    ddm.simulate_network(model, z0s + 1.0, key=k3, **kwargs)
    ddm.simulate_network(_random_network(target, 16, key=k_net2), z0s, key=k4, **kwargs)
    ddm.simulate_target(ddm.make_target("vdp", mu=2.0), z0s, key=k5, **kwargs)
    assert cached._cache_size() == size
    # the counter is live: a new batch size is a new shape and compiles once
    ddm.simulate_network(model, jnp.zeros((5, 2)), key=k6, **kwargs)
    assert cached._cache_size() == size + 1
    # streaming moments compile once, whatever the burn-in
    ddm.stationary_moments(model, z0s, key=k7, burn_in=0.1, **kwargs)
    ddm.stationary_moments(model, z0s, key=k8, burn_in=0.3, **kwargs)
    assert cached._cache_size() == size + 2


def test_subspace_is_computed_once_per_gamma(key):
    """The QR and pseudo-inverse of Gamma are kept while that Gamma lives, and no longer."""
    model = _random_network(ddm.make_target("lorenz"), 16, key=key)
    first = _network_sde.model_subspace(model)
    assert _network_sde.model_subspace(model) is first
    for kept, fresh in zip(first, _network_sde._subspace(model.Gamma), strict=True):
        np.testing.assert_array_equal(kept, fresh)
    other = eqx.tree_at(lambda m: m.Gamma, model, 2.0 * model.Gamma)
    assert _network_sde.model_subspace(other) is not first  # a new Gamma: computed anew
    np.testing.assert_allclose(_network_sde.model_subspace(other)[1], first[1] / 2, rtol=1e-5)
    # a NumPy Gamma is not an array the cache can follow: computed each time, same numbers
    host = eqx.tree_at(lambda m: m.Gamma, model, np.asarray(model.Gamma))
    np.testing.assert_array_equal(_network_sde.model_subspace(host)[1], first[1])
    entry = id(model.Gamma)
    assert entry in _network_sde._SUBSPACES
    del model, other, host
    gc.collect()
    assert entry not in _network_sde._SUBSPACES


def test_initial_states_on_the_device_are_not_copied(key):
    """A (B, k) JAX array goes into the compiled call as it is: no transfer to the device."""
    k_model, k1, k2 = jr.split(key, 3)
    model = _random_network(ddm.make_target("lorenz"), 16, key=k_model)
    z0s, sim = jnp.ones((2, 3)), lambda key: dict(key=key, t1=0.05, dt=1e-2)
    expected = ddm.simulate_network(model, np.ones((2, 3)), **sim(jr.clone(k1)))
    with jax.transfer_guard_host_to_device("disallow"):
        run = ddm.simulate_network(model, z0s, **sim(k1))
    np.testing.assert_array_equal(run.zs, expected.zs)
    with pytest.raises(Exception, match="host-to-device"):  # the guard is live
        with jax.transfer_guard_host_to_device("disallow"):
            ddm.simulate_network(model, np.ones((2, 3)), **sim(k2))


def test_one_compiled_call_computes_what_the_pieces_compute(key):
    """`simulate_network` (set-up, ensemble and checks in one call) equals its pieces run
    apart, bitwise; only the first read-out differs: it is the given z0 itself."""
    target = ddm.make_target("lorenz")
    k_net, k_z, k_sim = jr.split(key, 3)
    model = _random_network(target, 48, key=k_net)
    z0s = ddm.simulation.sample_box(k_z, target, 8)
    run = ddm.simulate_network(
        model, z0s, key=jr.clone(k_sim), t1=0.1, dt=1e-3, save_dt=0.02, keep_neurons=True
    )
    sde = _network_sde.network_sde(model, keep_neurons=True, batch=8)
    x0s = jax.jit(jax.vmap(model.embed))(z0s)  # compiled, as in the call: eager rounds apart
    keys = jr.split(k_sim, 8)
    obs = _ensemble(sde, x0s, keys, 1e-3, 5, 20, dfx.Euler(), "scan")
    np.testing.assert_array_equal(run.zs[:, 1:], obs["z"][:, 1:])
    np.testing.assert_array_equal(run.xs, obs["x"])
    np.testing.assert_array_equal(run.zs[:, 0], z0s)
    np.testing.assert_allclose(obs["z"][:, 0], z0s, rtol=0, atol=1e-5)  # the read-out of x0
    # the residual leaves out the start (on the subspace by construction): the pieces' own
    perp, dist2 = obs["perp"][:, 1:], obs["dist2"][:, 1:]
    expected = np.sqrt(np.mean(perp**2) / np.mean(dist2))
    np.testing.assert_allclose(run.residual, expected, rtol=1e-5)


def test_one_compiled_call_for_a_target_computes_what_the_pieces_compute(key):
    """`simulate_target` (keys, ensemble and finiteness check in one call) equals the engine
    run apart, bitwise, with and without a shared input; its moments equal the stored run's."""
    target = ddm.make_target("lorenz")
    k_z, k_sim = jr.split(key)
    z0s = ddm.simulation.sample_box(k_z, target, 6)
    keys = jr.split(k_sim, 6)
    sde = _simulate.target_sde(target)
    u = lambda t: jnp.array([1.0, 0.0, -1.0]) * jnp.sin(t)
    for inputs in (None, u):
        run = ddm.simulate_target(target, z0s, key=jr.clone(k_sim), t1=0.1, dt=1e-3,
                                  save_dt=0.02, inputs=inputs)  # fmt: skip
        obs = _ensemble(sde, z0s, keys, 1e-3, 5, 20, dfx.Euler(), "scan", u=inputs)
        np.testing.assert_array_equal(run.zs, obs["z"])
    moments = ddm.stationary_moments(target, z0s, key=jr.clone(k_sim), t1=0.1, dt=1e-3,
                                     save_dt=0.02, burn_in=0.04, inputs=u)  # fmt: skip
    tail = np.asarray(run.zs[:, 2:], np.float64).reshape(-1, 3)
    np.testing.assert_allclose(moments.mean, tail.mean(0), rtol=1e-5)
    np.testing.assert_allclose(moments.cov, np.cov(tail.T), rtol=1e-4)
