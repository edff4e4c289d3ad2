"""Attractor census: exponents against exact and reference values, classes, the remedy."""

from dataclasses import replace

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm

FIXED, PERIODIC, CHAOTIC, DIVERGED = (
    ddm.fidelity.CLASSES.index(c) for c in ("fixed point", "periodic", "chaotic", "diverged")
)


def _stiff_cycle(z, rate=500.0):
    """A unit circle attracting at ``2 rate`` (radial), turning once per 2 pi: a limit cycle."""
    r2 = z @ z
    return rate * (1 - r2) * z + jnp.array([-z[1], z[0]])


def test_a_stiff_limit_cycle_gets_a_step_that_keeps_it_periodic():
    # the Jacobian's radial eigenvalue on the circle is -2 rate = -1000: RK4 at the old fixed
    # step 0.02 (|lambda dt| = 20, stable to 2.8) blows the orbit up, and its NaN exponent
    # used to fall through every comparison into "periodic"
    starts = jnp.array([[1.0, 0.0], [0.6, 0.8]])  # on the circle, where rho = 1000 - 1e-3
    assert ddm.fidelity.census_step([_stiff_cycle], starts) == pytest.approx(0.2 / 400)
    assert ddm.fidelity.census_step([lambda z: -z], starts) == 0.02  # not stiff: unchanged
    short = dict(scale=jnp.ones(2), transient=2.0, time=10.0)
    coarse = ddm.fidelity.orbit_census(_stiff_cycle, starts, dt=0.02, **short)
    assert np.all(np.asarray(coarse.classes) == DIVERGED)
    fine = ddm.fidelity.orbit_census(_stiff_cycle, starts, **short)
    assert np.all(np.asarray(fine.classes) == PERIODIC)
    np.testing.assert_allclose(fine.exponent, 0.0, atol=2e-3)


def test_an_orbit_that_blows_up_is_diverged_not_periodic():
    orbits = ddm.fidelity.orbit_census(lambda z: z**2, jnp.array([[1.0], [-1.0]]),
                                       scale=jnp.ones(1), transient=0.0, time=10.0)  # fmt: skip
    # z' = z^2 from 1 leaves every bounded region at t = 1; from -1 it decays to 0
    assert np.asarray(orbits.classes).tolist() == [DIVERGED, FIXED]


def test_linear_flow_exponent_is_the_largest_real_part():
    # eigenvalues -0.1 and -1 (non-normal): the exponent is exactly -0.1, a fixed point
    A = jnp.array([[-0.1, 3.0], [0.0, -1.0]])
    starts = jnp.array([[1.0, 1.0], [-2.0, 0.5], [0.3, -1.0]])
    orbits = ddm.fidelity.orbit_census(lambda z: A @ z, starts, scale=jnp.ones(2), transient=0.0,
                              time=40.0)  # fmt: skip
    np.testing.assert_allclose(orbits.exponent, -0.1, atol=2e-3)
    assert np.all(np.asarray(orbits.classes) == FIXED)
    assert orbits.points.shape == (3, 200, 2)


def test_lorenz_exponent_and_class():
    lorenz = ddm.make_target("lorenz")
    starts = ddm.attractor_points(lorenz, key=jr.key(1), num=8)
    orbits = ddm.fidelity.orbit_census(lorenz.f, starts, scale=lorenz.scale)
    assert np.all(np.asarray(orbits.classes) == CHAOTIC)
    assert abs(float(orbits.exponent.mean()) / 0.9056 - 1) < 0.02  # Sprott's 0.9056
    np.testing.assert_allclose(orbits.exponent, 0.9056, rtol=0.04)  # each start


def test_van_der_pol_is_periodic_and_gradient_flow_fixed():
    vdp = ddm.make_target("vdp")
    starts = ddm.attractor_points(vdp, key=jr.key(2), num=4)
    orbits = ddm.fidelity.orbit_census(vdp.f, starts, scale=vdp.scale, time=100.0)
    assert np.all(np.asarray(orbits.classes) == PERIODIC)
    assert np.all(np.abs(np.asarray(orbits.exponent)) < 0.02)
    x_max = np.asarray(orbits.points[..., 0]).max(axis=1)
    np.testing.assert_allclose(x_max, 2.0086, rtol=0.01)  # the limit cycle's amplitude
    ou = ddm.make_target("ou")
    assert not ddm.fidelity.census_applies(ou, key=jr.key(3), starts=2, time=100.0)
    assert ddm.fidelity.census_applies(vdp, key=jr.key(3), starts=2, time=100.0)


def _leaky(model):
    """The network with its read-out zeroed: latent drift -v, one attractor at the box centre."""
    return eqx.tree_at(lambda m: m.W_s, model, jnp.zeros_like(model.W_s))


def test_spurious_fixed_point_is_flagged_and_the_remedy_runs():
    vdp = ddm.make_target("vdp")
    model = _leaky(ddm.init_network(vdp, 32, key=jr.key(4)))
    census = ddm.attractor_census(model, vdp, key=jr.key(5), starts=8, time=50.0)
    assert census.metrics["census_mismatch"] == 1.0  # every orbit on the spurious point
    assert census.metrics["census_chaotic_target"] == 0.0
    np.testing.assert_allclose(census.network.exponent, -1.0, atol=1e-2)  # -1 / tau, exact
    assert not census.clean()
    config = ddm.TrainConfig(remedy_rounds=1, remedy_steps=20, batch=64, chunk=20)
    pool = ddm.attractor_points(vdp, key=jr.key(6), num=256)
    rounds, chunks = [], []
    fixed, losses, history = ddm.training.refine_attractors(
        model, vdp, key=jr.key(7), config=config, pool=pool, starts=8, time=50.0,
        on_round=rounds.append, on_chunk=lambda state, losses: chunks.append(losses),
    )  # fmt: skip
    assert losses.shape == (20,)
    assert [h["round"] for h in history] == [0, 1]
    assert rounds == history  # progress: each census as it is made
    np.testing.assert_array_equal(np.concatenate(chunks), losses)
    assert history[0]["census_mismatch"] == 1.0
    # the best census met is returned: the trained network unless training made it worse
    assert (fixed is model) == (history[1]["census_mismatch"] >= 1.0)


def test_trained_van_der_pol_census_is_clean_and_remedy_changes_nothing():
    vdp = ddm.make_target("vdp")
    config = ddm.TrainConfig(steps=1500, batch=512, chunk=500, remedy_rounds=2)
    result = ddm.fit(vdp, 32, key=jr.key(8), config=config)
    assert [h["round"] for h in result.remedy] == [0]  # clean at once: no step taken
    assert result.remedy[0]["census_mismatch"] == 0.0
    assert result.losses.shape == (1500,)
    census = ddm.attractor_census(result.model, vdp, key=jr.key(9), starts=8, time=150.0)
    assert census.clean()
    assert census.metrics["census_sw"] < 0.05


def test_census_leaves_out_the_targets_diverged_orbits_and_measures_its_own_null():
    vdp = ddm.make_target("vdp")
    model = ddm.init_network(vdp, 8, key=jr.key(4))
    short = dict(transient=1.0, time=10.0)
    census = ddm.attractor_census(model, vdp, key=jr.key(5), starts=4, **short)
    assert census.settings["dt"] == ddm.fidelity.census_step([vdp.f], census.starts) == 0.02
    # two censuses of the target itself (other starts): VDP's zero exponent, no chaotic orbit
    assert np.isnan(census.metrics["census_lyapunov_null"])
    # the target's second orbit diverged (as a stiff or escaping flow's can): the distances
    # compare the other three starts, network against target, instead of failing on shapes
    t = census.target
    broken = eqx.tree_at(lambda o: (o.points, o.classes, o.exponent), t,
                         (t.points.at[1].set(jnp.nan), t.classes.at[1].set(DIVERGED),
                          t.exponent.at[1].set(jnp.nan)))  # fmt: skip
    again = ddm.attractor_census(model, vdp, key=jr.key(5),
                                 reference=replace(census, target=broken), **short)  # fmt: skip
    rows = np.array([0, 2, 3])
    flat = lambda o: o.points[rows].reshape(-1, 2)
    sw = ddm.fidelity.sliced_wasserstein(flat(again.network), flat(broken), host=True)
    assert again.metrics["census_sw"] == pytest.approx(sw / ddm.fidelity.spread(flat(broken)))
    assert again.metrics["census_target_mismatch"] == 0.25
    np.testing.assert_array_equal(again.network.points, census.network.points)


def test_census_errors(key, no_typecheck):
    lorenz = ddm.make_target("lorenz")
    with pytest.raises(ValueError, match="Expected starts of shape"):
        ddm.fidelity.orbit_census(lorenz.f, lorenz.z0, scale=lorenz.scale)
    with pytest.raises(ValueError, match="Expected a finite time > 0"):
        ddm.fidelity.orbit_census(lorenz.f, lorenz.z0[None], scale=lorenz.scale, time=-1.0)
    with pytest.raises(ValueError, match="Expected save_dt a multiple of dt"):
        ddm.fidelity.orbit_census(lorenz.f, lorenz.z0[None], scale=lorenz.scale, save_dt=0.03)
    with pytest.raises(ValueError, match="Expected a finite transient >= 0"):
        ddm.fidelity.orbit_census(lorenz.f, lorenz.z0[None], scale=lorenz.scale, transient=np.nan)
    model = ddm.init_network(lorenz, 8, key=key)
    with pytest.raises(ValueError, match="Expected starts to be an integer >= 2"):
        ddm.attractor_census(model, lorenz, key=key, starts=1)
    with pytest.raises(ValueError, match="Expected a finite dt > 0; got 0.0"):  # not the default
        ddm.attractor_census(
            model, lorenz, key=jr.key(1), starts=2, dt=0.0, time=1.0, transient=0.0
        )
    with pytest.raises(ValueError, match='Expected remedy_rounds "auto" or an integer >= 0'):
        ddm.TrainConfig(remedy_rounds=-1)
    with pytest.raises(ValueError, match="Expected remedy_steps to be a positive integer"):
        ddm.TrainConfig(remedy_steps=0)


def test_fit_and_train_run_agree_with_the_remedy(tmp_path):
    settings = dict(steps=200, batch=64, chunk=100, remedy_rounds=1, remedy_steps=20)
    vdp = ddm.make_target("vdp")
    fitted = ddm.fit(vdp, 16, key=jr.key(3), config=ddm.TrainConfig(**settings))
    reports = []
    run = ddm.runs.train_run(
        "vdp", tmp_path / "run", neurons=16, seed=3, progress=reports.append, **settings
    )
    assert eqx.tree_equal(fitted.model, run.model)
    np.testing.assert_array_equal(fitted.losses, run.losses)
    assert run.training["remedy"] == fitted.remedy
    remedy = [p for p in reports if p.phase == "remedy"]
    assert [p.census for p in remedy if p.census is not None] == fitted.remedy
    steps = [p.step for p in remedy if p.census is None]
    assert steps == sorted(steps)
    assert steps[-1] == run.losses.size - 200
