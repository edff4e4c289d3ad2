"""Data-driven Helmholtz-Hodge split: curl fraction of relaxing isotropic OU processes.

``dz = -B z dt + sqrt(2 eps) dB`` with ``B = [[2, -theta], [theta, 2]]``, started from
N(0, I) (rotation-invariant, so the time-integrated current is ``rho(r) (-2 z + theta J z)``:
a gradient part and a divergence-free part with squared norms in the ratio
``4 : theta^2``). The continuum curl fraction is ``theta^2 / (4 + theta^2)``.
"""

import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm

THETAS = [0.0, 1.0, 2.0, 4.0, 8.0, 15.0]


def relaxing_ou(theta, key):
    target = ddm.make_target("ou", B=[[2.0, -theta], [theta, 2.0]], noise=np.sqrt(2e-3))
    k_init, k_sim = jr.split(key)
    z0s = jr.normal(k_init, (512, 2))
    return ddm.simulate_target(target, z0s, key=k_sim, t1=1.0, dt=1e-3, save_dt=5e-3).zs


def test_curl_fraction_increases_with_rotation():
    keys = jr.split(jr.key(4), len(THETAS))
    splits = [
        ddm.analysis.hodge_split(relaxing_ou(t, k), 5e-3) for t, k in zip(THETAS, keys, strict=True)
    ]
    fractions = np.array([s.curl_fraction for s in splits])
    assert fractions[0] < 0.1  # measured 0.05-0.08 over three seeds
    assert np.all(np.diff(fractions) > 0)
    # discretisation (100 cells, 512 trajectories) leaves up to 0.08 over three seeds
    np.testing.assert_allclose(fractions, [t**2 / (4 + t**2) for t in THETAS], atol=0.1)
    for s in splits:
        assert s.unassigned_fraction < 0.01
        # orthogonal parts in the 1/w inner product, the harmonic rest vanishes
        norm = lambda a, s=s: float(np.sum(a**2 / s.weights))
        assert norm(s.harmonic) < 1e-8 * norm(s.flow)
        assert s.curl_fraction + s.gradient_fraction == pytest.approx(1.0, abs=1e-6)
        assert float(np.sum(s.gradient * s.curl / s.weights)) == pytest.approx(
            0.0, abs=1e-6 * norm(s.flow)
        )
    # the gradient flow runs downhill: the potential is lowest near the fixed point 0
    s0 = splits[0]
    centre = np.argmin(np.linalg.norm(s0.centres, axis=1))
    outer = np.argmax(np.linalg.norm(s0.centres, axis=1))
    assert s0.potential[centre] < s0.potential[outer]


def test_three_dimensional_split_runs_and_sees_strong_rotation(key):
    # 3-d is qualitative (see the module doc): a strong rotation still shows as mostly curl
    B = [[2.0, -8.0, 0.0], [8.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    target = ddm.make_target("ou", B=B, noise=np.sqrt(2e-3))
    k_init, k_sim = jr.split(key)
    zs = ddm.simulate_target(target, jr.normal(k_init, (512, 3)), key=k_sim, t1=1.0, dt=1e-3,
                             save_dt=5e-3).zs  # fmt: skip
    split = ddm.analysis.hodge_split(zs, 5e-3)
    assert split.triangles.shape[1] == 3
    assert split.centres.shape == (100, 3)
    assert split.curl_fraction > 0.7  # continuum 0.91
    assert split.unassigned_fraction < 0.01


def test_furthest_point_sampling_spreads_points():
    pts = np.random.default_rng(0).normal(size=(500, 2))
    idx = ddm.analysis.furthest_point_sampling(pts, 20)
    assert len(set(idx.tolist())) == 20
    chosen = pts[idx]
    # every point lies within the covering radius, which is at most the smallest spacing
    gaps = np.linalg.norm(chosen[:, None] - chosen[None], axis=-1) + np.eye(20) * 1e9
    cover = np.max(np.min(np.linalg.norm(pts[:, None] - chosen[None], axis=-1), axis=1))
    assert cover <= gaps.min() + 1e-12


def test_hodge_refuses_bad_input():
    with pytest.raises(ValueError, match=r"shape \(B, T, d\) with T >= 2 and d = 2 or 3"):
        ddm.analysis.hodge_split(np.zeros((2, 10, 4)), 0.1)
    with pytest.raises(ValueError, match="at least 4 cells in 2 dimensions"):
        ddm.analysis.hodge_split(np.random.default_rng(0).normal(size=(2, 10, 2)), 0.1, cells=3)
    with pytest.raises(ValueError, match="finite trajectories"):
        ddm.analysis.hodge_split(np.full((2, 10, 2), np.nan), 0.1)
    still = np.repeat(np.random.default_rng(0).normal(size=(8, 1, 2)), 5, axis=1)
    with pytest.raises(ValueError, match="never left one"):
        ddm.analysis.hodge_split(still, 0.1, cells=8)
    with pytest.raises(ValueError, match=r"Expected 1 <= num <= 3"):
        ddm.analysis.furthest_point_sampling(np.zeros((3, 2)), 5)
