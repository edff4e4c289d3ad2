"""One implementation each: the drift residual, the training loop, the EPR estimator, the
sliced Wasserstein distance, the noise phase's settings and the 95% quantile.
"""

import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm
from ddm_jax.training import _loop

# census settings small enough for a test (the defaults integrate 300 time units)
CENSUS = dict(starts=4, time=20.0, transient=5.0)


def ou_data(trajectories, steps, dt, seed=0):
    """Exact samples of the registered OU target every dt, started stationary."""
    target = ddm.make_target("ou")
    B = np.asarray(target.args["B"], float)
    G = np.asarray(target.args["noise"], float)
    exact = ddm.analysis.ou_entropy_production(jnp.asarray(B), jnp.asarray(G @ G.T / 2))
    S = np.asarray(exact.cov, float)
    A = jax.scipy.linalg.expm(-jnp.asarray(B) * dt)
    A = np.asarray(A, float)
    L = np.linalg.cholesky(S - A @ S @ A.T)
    rng = np.random.default_rng(seed)
    z = np.empty((trajectories, steps, 2))
    z[:, 0] = rng.standard_normal((trajectories, 2)) @ np.linalg.cholesky(S).T
    for t in range(steps - 1):
        z[:, t + 1] = z[:, t] @ A.T + rng.standard_normal((trajectories, 2)) @ L.T
    return z


# ---------------------------------------------------------------- the drift residual


def test_latent_field_is_the_one_drift_residual(key):
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 16, key=key, tau=0.5)
    v = jr.normal(jr.key(1), (2,))
    field = -v + model.W_s @ jnp.tanh(model.Gamma @ v + model.b)
    np.testing.assert_array_equal(model.latent_field(v), field)
    np.testing.assert_array_equal(model.latent_drift(v), field / model.tau)
    # the drift loss is the squared mismatch of latent_field and tau S^-1 f
    zs = ddm.simulation.sample_box(jr.key(2), target, 64)
    vs = (zs - model.centre) / model.scale
    pred = jax.vmap(model.latent_field)(vs)
    true = model.tau * jax.vmap(target.f)(zs) / model.scale
    expected = jnp.mean(jnp.sum((pred - true) ** 2, -1))
    np.testing.assert_allclose(ddm.training.drift_loss(model, target, zs), expected, rtol=1e-6)


# ---------------------------------------------------------------- the training loop


def test_the_schedule_length_is_the_explicit_total(key):
    """`train_chunk` follows the schedule it is given, whatever the loss function.

    With the remedy's loss (not `drift_loss`) the old loop chose ``config.noise_steps``.
    """
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 8, key=key)
    config = ddm.TrainConfig(steps=40, noise_steps=3000, batch=16, sampler="box", lr=0.05)
    state = ddm.training.init_train_state(model, config)
    loss_fn, filter_fn = ddm.training.drift_jacobian_loss, ddm.training.drift_params
    batch_loss = lambda m, k: loss_fn(m, target, ddm.simulation.batch_points(k, target, None,
                                                                              config))  # fmt: skip

    def by_hand(steps):
        optim = ddm.training.optimiser(config, steps)
        run = eqx.filter_jit(ddm.training.optimiser_steps)
        return run(state, optim, filter_fn, batch_loss, jr.key(3), 40)

    done, losses = ddm.training.train_chunk(
        state, target, None, jr.key(3), config, loss_fn, filter_fn, 40, 40
    )
    expected, expected_losses = by_hand(40)
    for a, b in zip(jax.tree.leaves(done), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(losses, expected_losses)
    other, _ = by_hand(3000)  # the schedule matters: a longer one ends elsewhere
    assert not np.array_equal(other.model.W_s, done.model.W_s)


def test_a_remedy_round_schedules_remedy_steps_and_leaves_noise_steps_alone(monkeypatch, key):
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 8, key=key)  # untrained: its census is not clean
    config = ddm.TrainConfig(steps=50, batch=24, chunk=15, remedy_rounds=1, remedy_steps=35,
                             noise_steps=777)  # fmt: skip
    seen = []
    real = _loop.optimiser

    def spy(config, steps):
        seen.append((config.steps, config.noise_steps, steps))
        return real(config, steps)

    monkeypatch.setattr(_loop, "optimiser", spy)
    _, losses, history = ddm.training.refine_attractors(
        model, target, key=jr.key(4), config=config, pool=None, **CENSUS
    )
    assert len(history) == 2, history  # one round ran
    assert losses.shape == (35,)
    assert seen, "the round's chunks were not traced"
    # the round's schedule is remedy_steps, passed as the total; noise_steps is not touched
    assert set(seen) == {(35, 777, 35)}


def test_run_training_names_the_phase_step_and_learning_rate(key):
    target = ddm.make_target("ou")
    model = ddm.init_network(target, 8, key=key)
    config = ddm.TrainConfig(steps=300, batch=16, chunk=100, sampler="box", lr=1e20)
    seen = []
    with pytest.raises(FloatingPointError) as err:
        ddm.training.run_training(
            ddm.training.init_train_state(model, config), target, key=jr.key(1), config=config,
            on_chunk=lambda state, losses: seen.append(losses),
        )  # fmt: skip
    message = str(err.value)
    assert message.startswith("Drift matching diverged: the loss became non-finite at step ")
    assert " of 300 " in message
    assert "smaller learning rate than 1e+20" in message
    assert "\n" not in message
    assert all(np.all(np.isfinite(c)) for c in seen)  # no diverged chunk reaches on_chunk


def test_a_diverging_remedy_names_the_step_and_learning_rate(key):
    """The old remedy checked once, at the end, and said only "non-finite loss"."""
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 8, key=key)
    config = ddm.TrainConfig(steps=50, batch=24, chunk=10, remedy_rounds=1, remedy_steps=30,
                             lr=1e20)  # fmt: skip
    seen = []
    with pytest.raises(FloatingPointError) as err:
        ddm.training.refine_attractors(
            model, target, key=jr.key(4), config=config, pool=None,
            on_chunk=lambda state, losses: seen.append(losses), **CENSUS,
        )  # fmt: skip
    message = str(err.value)
    assert "spurious-attractor remedy diverged" in message
    assert "non-finite at step" in message
    assert " of 30 " in message
    assert "learning rate" in message
    assert "1e+19" in message  # the remedy's: a tenth of lr
    assert all(np.all(np.isfinite(c)) for c in seen)


def test_a_diverging_fit_to_data_stops_at_the_first_bad_chunk():
    """Every chunk is checked: the old fit to data trained on to the end, then checked."""
    data = ou_data(4, 500, 0.01)
    config = ddm.TrainConfig(steps=400, chunk=100, lr=1e20)
    seen = []
    with pytest.raises(FloatingPointError) as err:
        ddm.fit_data(data, 0.01, 8, key=jr.key(0), config=config,
                     on_chunk=lambda state, losses: seen.append(losses))  # fmt: skip
    message = str(err.value)
    assert message.startswith("The drift fit to the data diverged: the loss became non-finite")
    assert " of 400 " in message
    assert "learning rate is too large (lr 1e+20" in message  # remedy 1
    assert "noise-free, degenerate" in message  # remedy 2
    assert len(seen) < 4
    assert all(np.all(np.isfinite(c)) for c in seen)


# ---------------------------------------------------------------- the noise phase


def test_noise_phase_config_is_shared_by_fit_and_fit_data(monkeypatch):
    config = ddm.TrainConfig(steps=20, chunk=10, noise_steps=10, lr=3e-2, weight_decay=1e-3)
    noise = ddm.training.noise_phase_config(config)
    assert (noise.sampler, noise.lr, noise.weight_decay) == ("box", 3e-2 / 100, 0.0)
    assert ddm.training.fit_plan(jr.key(0), config).noise_config == noise
    from ddm_jax.data import _from_data

    seen = []
    real = _from_data.run_training

    def spy(*args, config, **kwargs):
        seen.append(config)
        return real(*args, config=config, **kwargs)

    monkeypatch.setattr(_from_data, "run_training", spy)
    ddm.fit_data(ou_data(4, 500, 0.01), 0.01, 8, key=jr.key(0), config=config,
                 state_dependent_noise=True)  # fmt: skip
    assert seen == [noise]  # the old fit to data kept the weight decay


# ---------------------------------------------------------------- estimators and distances


def test_one_public_epr_estimator_matches_the_exact_ou_value():
    assert not hasattr(ddm.data, "entropy_production")
    assert not hasattr(ddm.memory, "sample_epr")
    target = ddm.make_target("ou")
    B = jnp.asarray(target.args["B"])
    D = ddm.analysis.diffusion_matrix(target)
    exact = float(ddm.analysis.ou_entropy_production(B, D).epr)
    zs = jnp.asarray(ou_data(32, 400, 0.05, seed=1), jnp.float32)
    estimate = ddm.analysis.epr_from_samples(target.f, D, zs)
    assert abs(estimate.value - exact) < 4 * estimate.stderr, (estimate, exact)
    assert estimate.stderr < 0.1 * exact  # informative


def test_the_census_sliced_wasserstein_is_fidelitys(key):
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 8, key=key)
    census = ddm.fidelity.attractor_census(model, target, key=jr.key(5), **CENSUS)
    a = census.network.points.reshape(-1, 2)
    r = census.target.points.reshape(-1, 2)
    scale = ddm.fidelity.spread(r)
    host = ddm.fidelity.sliced_wasserstein(a, r, host=True)
    assert census.metrics["census_sw"] == host / scale  # the same function, bit for bit
    device = ddm.fidelity.sliced_wasserstein(a, r)  # float32 on the device
    assert device == pytest.approx(host, rel=1e-4)


def test_the_95_percent_quantile_has_one_source():
    z = inspect.signature(ddm.memory.wilson_interval).parameters["z"].default
    assert z == ddm.analysis.quantile95()
    low, high = ddm.memory.wilson_interval(5, 10)
    p, half = 0.5, z * np.sqrt(0.25 / 10 + z**2 / 400) / (1 + z**2 / 10)
    np.testing.assert_allclose([low, high], [p - half, p + half], rtol=1e-6)
