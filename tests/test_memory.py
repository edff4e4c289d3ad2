"""Memory on the ring of wells: labels, hops, first passage, EPR and small experiments."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm

CENTRES = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def _path(points):
    """A ``(1, T, 2)`` trajectory through the given points."""
    return jnp.asarray(points, dtype=float)[None]


# ---------------------------------------------------------------- labelling


def test_labels_hops_and_passage_on_a_constructed_sequence():
    mid01 = (CENTRES[0] + CENTRES[1]) / 2  # outside every core
    # start outside, enter 0, leave toward 1 and fall back (no hop), 0 -> 1 -> 2 (forward),
    # 2 -> 0 across the centre (other), 0 -> 3 (backward), stay
    seq = [mid01, CENTRES[0], mid01, CENTRES[0] + 0.1, mid01, CENTRES[1], [0.0, 0.0],
           CENTRES[2], [0.0, 0.0], CENTRES[0], CENTRES[3], CENTRES[3] * 0.9]  # fmt: skip
    labels = ddm.memory.well_labels(_path(seq), CENTRES, 0.3)
    np.testing.assert_array_equal(labels[0], [-1, 0, 0, 0, 0, 1, 1, 2, 2, 0, 3, 3])
    hops = ddm.memory.count_hops(labels, 4)
    assert (int(hops.forward[0]), int(hops.backward[0]), int(hops.other[0])) == (2, 1, 1)
    assert int(hops.total[0]) == 4
    np.testing.assert_array_equal(np.flatnonzero(hops.mask[0]), [5, 7, 9, 10])
    ts = jnp.arange(12.0) * 0.5
    # intervals between consecutive hops: 7-5, 9-7, 10-9 saves, times 0.5 each
    total, count = ddm.memory.dwell_times(hops.mask, ts)
    assert int(count[0]) == 3
    assert float(total[0]) == pytest.approx(2.5)
    # first entry into 0 at save 1, first later entry into 2 at save 7
    fpt = ddm.memory.first_passage_times(jnp.concatenate([labels, labels]), ts, 0, 2)
    np.testing.assert_allclose(fpt, [3.0, 3.0])
    assert np.isnan(
        ddm.memory.first_passage_times(labels, ts, 3, 1)[0]
    )  # 1 is never entered after 3
    np.testing.assert_allclose(ddm.memory.well_occupancy(labels, 4), np.array([5, 2, 2, 2]) / 11)


def test_labels_vectorised_over_trajectories(key):
    """A batch of trajectories is labelled as each one alone."""
    zs = 1.2 * jr.normal(key, (5, 40, 2))
    batch = ddm.memory.well_labels(zs, CENTRES, 0.4)
    for i in range(5):
        np.testing.assert_array_equal(
            batch[i], ddm.memory.well_labels(zs[i : i + 1], CENTRES, 0.4)[0]
        )


def test_wilson_interval():
    # reference values of the Wilson score interval (z = 1.96)
    low, high = ddm.memory.wilson_interval(jnp.array([0, 5, 10]), 10)
    np.testing.assert_allclose(low, [0.0, 0.2366, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high, [0.2775, 0.7634, 1.0], atol=1e-4)


# ---------------------------------------------------------------- ring currents and EPR


def test_preferred_direction_and_boltzmann():
    assert ddm.memory.preferred_direction(ddm.make_target("cycling_wells", alpha=1.0)) == -1
    assert ddm.memory.preferred_direction(ddm.make_target("cycling_wells", alpha=-1.0)) == 1
    assert ddm.memory.preferred_direction(ddm.make_target("rotating_wells", alpha=0.5)) == 1
    assert ddm.memory.preferred_direction(ddm.make_target("wells")) == 1
    occ = ddm.memory.boltzmann_occupancy(ddm.make_target("cycling_wells", alpha=3.0))
    np.testing.assert_allclose(occ, 0.25, atol=1e-3)  # four equal wells: symmetry


def test_exact_epr_scales_as_alpha_squared():
    exact = lambda a: ddm.memory.exact_epr(ddm.make_target("cycling_wells", alpha=a))
    assert exact(0.0) == 0.0
    assert ddm.memory.exact_epr(ddm.make_target("wells")) == 0.0
    assert exact(3.0) == pytest.approx(9 * exact(1.0), rel=1e-5)
    assert ddm.memory.exact_epr(ddm.make_target("rotating_wells")) is None


def test_cycling_epr_estimator_on_a_linear_cycle(key):
    """``f = -(I + a J) z``, ``D = T I``: p = N(0, T I) and the EPR is exactly ``2 a^2``.

    The estimator `cycling` uses (`analysis.epr_from_samples` with ``D = T I``).

    20,000 exact stationary samples (100 blocks of 200); the estimate must lie within 4
    standard errors (its own) of the exact value.
    """
    a, temperature = 1.5, 0.3
    J = jnp.array([[0.0, -1.0], [1.0, 0.0]])
    drift = lambda z: -(jnp.eye(2) + a * J) @ z
    zs = jnp.sqrt(temperature) * jr.normal(key, (100, 200, 2))
    estimate = ddm.analysis.epr_from_samples(drift, temperature * jnp.eye(2), zs)
    epr, se = estimate.value, estimate.stderr
    assert abs(epr - 2 * a**2) < 4 * se
    assert se < 0.1  # informative


# ---------------------------------------------------------------- small experiments


@pytest.fixture(scope="module")
def wells_network():
    """A small, briefly trained `wells` network (n = 32, 1,000 steps on the box)."""
    target = ddm.make_target("wells")
    config = ddm.TrainConfig(steps=1000, sampler="box")
    return target, ddm.fit(target, 32, key=jr.key(3), config=config).model


def test_switching_small(wells_network):
    """40 trials a point: a pulse of 3 moves nearly every trial (target ~0.98), none moves
    the state without one (target ~0.08); both are > 5 binomial SDs from the bounds used."""
    target, model = wells_network
    kwargs = dict(amplitudes=(0.0, 3.0), trials=40, relax=1.0)
    curve = ddm.memory.switching(target, key=jr.key(0), **kwargs)
    assert curve.successes.shape == (2,)
    assert curve.trials == 40
    assert curve.probability[0] < 0.4
    assert curve.probability[1] > 0.8
    # the interval is Wilson's of these counts (itself checked against exact values above)
    np.testing.assert_array_equal(curve.probability, curve.successes / curve.trials)
    low, high = ddm.memory.wilson_interval(jnp.asarray(curve.successes), curve.trials)
    np.testing.assert_allclose(curve.low, low, rtol=1e-6)
    np.testing.assert_allclose(curve.high, high, rtol=1e-6)
    net = ddm.memory.switching(target, key=jr.key(0), model=model, **kwargs)
    assert net.probability[0] < 0.4
    assert net.probability[1] > 0.8


def test_recall_small():
    """40 trials a point: without a cue the cued well wins by chance (1/4, SD 0.07), a cue of
    strength 3 recalls it (target ~0.94)."""
    curve = ddm.memory.recall(
        ddm.make_target("wells"), key=jr.key(1), strengths=(0.0, 3.0), trials=40
    )
    assert curve.probability[0] < 0.5
    assert curve.probability[1] > 0.75


def test_cycling_small():
    """64 trajectories x 20 time units of rotating_wells alpha = 1 (about 400 hops): the
    preferred-direction fraction is 0.98 on long runs; > 0.85 leaves > 5 SDs."""
    result = ddm.memory.cycling(ddm.make_target("rotating_wells", alpha=1.0), key=jr.key(2),
                         trajectories=64, t1=20.0, burn_in=2.0, chunk=32)  # fmt: skip
    assert result.preferred == 1
    assert result.forward + result.backward > 200
    assert result.fraction > 0.85
    hops = result.forward + result.backward
    good = result.forward if result.preferred == 1 else result.backward
    assert result.fraction == pytest.approx(good / hops)
    low, high = ddm.memory.wilson_interval(jnp.asarray(good), hops)
    assert (result.fraction_low, result.fraction_high) == pytest.approx(
        (float(low), float(high)), rel=1e-6
    )
    assert result.occupancy.sum() == pytest.approx(1.0, abs=1e-5)
    assert 1.0 < result.mfpt < 10.0
    assert result.hop_rate > 0
    assert result.epr > 0
    assert result.epr_exact is None


def test_experiment_errors(key):
    wells = ddm.make_target("wells")
    with pytest.raises(ValueError, match="Expected a target of the wells family"):
        ddm.memory.switching(ddm.make_target("vdp"), key=key)
    with pytest.raises(ValueError, match="Expected two different wells among 0..3; got 1, 1"):
        ddm.memory.switching(wells, key=key, source=1, dest=1)
    with pytest.raises(ValueError, match="Expected a positive integer number of trials"):
        ddm.memory.recall(wells, key=key, trials=0)
    with pytest.raises(ValueError, match="Expected a finite duration >= 0"):
        ddm.memory.switching(wells, key=key, duration=-1.0)
    with pytest.raises(ValueError, match="Expected 0 <= burn_in < t1"):
        ddm.memory.cycling(wells, key=key, t1=5.0, burn_in=5.0)
