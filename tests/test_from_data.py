"""Learning drift and diffusion from recorded trajectories (SPEC section 11, issue 14).

The OU data are exact discrete-time samples, ``z_{t+h} = e^{-Bh} z_t + N(0, S - e^{-Bh} S
e^{-B^T h})``, so the only errors are the estimator's: its O(dt) bias and sampling noise.
"""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg

import ddm_jax as ddm
from ddm_jax.data import _data_diffusion as fd

B = np.array([[1.0, 2.0], [-0.5, 1.0]])  # non-normal, eigenvalues 1 +- i
G = np.array([[0.5, 0.0], [0.2, 0.4]])
D = G @ G.T / 2
SMALL = ddm.TrainConfig(steps=1000, chunk=500)


def ou_data(trajectories, time, dt, seed=0):
    """Exact OU samples at interval dt, started from the stationary density."""
    rng = np.random.default_rng(seed)
    S = np.asarray(ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(D)), float)
    A = scipy.linalg.expm(-B * dt)
    L = np.linalg.cholesky(S - A @ S @ A.T)
    steps = int(round(time / dt))
    z = np.empty((trajectories, steps + 1, 2))
    z[:, 0] = rng.multivariate_normal(np.zeros(2), S, trajectories)
    xi = rng.standard_normal((trajectories, steps, 2)) @ L.T
    for t in range(steps):
        z[:, t + 1] = z[:, t] @ A.T + xi[:, t]
    return z


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


def drift_matrix(fit, data):
    zs = jnp.asarray(data.reshape(-1, 2)[::7], jnp.float32)
    return -np.asarray(ddm.data.fitted_linear_drift(fit.target, zs))[:, :2]


@pytest.fixture(scope="module")
def fine():
    data = ou_data(64, 60.0, 0.01)
    return data, ddm.fit_data(data, 0.01, 32, key=jr.key(0), config=SMALL)


def test_ou_drift_matrix_and_diffusion_from_increments(fine):
    data, fit = fine
    assert rel(drift_matrix(fit, data), B) < 0.05  # sampling noise ~2% at 3,840 time units
    assert rel(fit.D, D) < 0.02
    # the learned target is a regular Target, its noise that of the fitted D
    g = np.asarray(fit.target.g(fit.target.z0))
    np.testing.assert_allclose(g @ g.T / 2, fit.D, rtol=1e-4, atol=1e-6)


def test_entropy_production_of_the_learned_ou(fine):
    data, fit = fine
    S = np.asarray(ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(D)))
    Q = B @ S - D
    exact = -np.trace(np.linalg.inv(D) @ B @ Q)
    zs = jnp.asarray(data[:, ::20], jnp.float32)
    epr = ddm.analysis.epr_from_samples(fit.target.f, fit.D, zs).value
    assert abs(epr / exact - 1) < 0.15, (epr, exact)


def test_richardson_correction_removes_the_coarse_dt_bias():
    dt = 0.2
    data = ou_data(64, 200.0, dt, seed=1)
    plain = ddm.fit_data(data, dt, 32, key=jr.key(1), config=SMALL, correct=False)
    corrected = ddm.fit_data(data, dt, 32, key=jr.key(1), config=SMALL, correct=True)
    # the plain estimator converges to (I - e^{-B dt}) / dt, not B: the O(dt) bias
    biased = (np.eye(2) - scipy.linalg.expm(-B * dt)) / dt
    assert rel(biased, B) > 0.15
    assert rel(drift_matrix(plain, data), biased) < 0.05
    assert rel(drift_matrix(corrected, data), B) < rel(drift_matrix(plain, data), B) / 3
    assert rel(corrected.D, D) < 0.6 * rel(plain.D, D)  # measured 0.14 vs 0.28 (O(dt^2) left)


@pytest.mark.parametrize(("h", "tol"), [(0.05, 1e-3), (0.1, 4e-3)])
def test_diffusion_from_the_exact_ou_increment_covariance(h, tol):
    # independent of the series: Cov(z_h | z_0) = S - e^{-Bh} S e^{-B^T h} exactly
    S = np.asarray(ddm.targets.ou_stationary_covariance(jnp.asarray(B), jnp.asarray(D)), float)
    A = scipy.linalg.expm(-B * h)
    C = S - A @ S @ A.T
    J = -B
    moments = {"J": J, "J2": J @ J, "JJ": np.kron(J, J), "dJ": np.zeros((2, 2))}
    third = rel(fd.diffusion_from_covariance(C, h, moments), D)  # O(h^3): 1.8e-4, 1.5e-3
    second_order = moments | {"J2": 0 * J, "JJ": np.zeros((4, 4))}
    second = rel(fd.diffusion_from_covariance(C, h, second_order), D)
    assert third < tol
    assert third < second / 5 < rel(C / (2 * h), D) / 5  # each order of h gains


def test_corrected_diffusion_of_lorenz_with_the_true_drift():
    # the flow mean and the covariance equation, on data: 16 x 50 time units at dt = 0.01
    dt, target = 0.01, ddm.make_target("lorenz", noise=1.0)
    z0s = ddm.attractor_points(target, key=jr.key(3), num=16)
    run = ddm.simulate_target(target, z0s, key=jr.key(4), t1=50.0, dt=1e-3, save_dt=dt)
    inc = ddm.data.increments(ddm.data.trajectory_segments(np.asarray(run.zs, float), dt), dt)
    flow = jax.jit(jax.vmap(fd._flow(target.f, dt, fd.FLOW_SUBSTEPS)))
    r = inc.dz1 - (np.asarray(flow(jnp.asarray(inc.z, jnp.float32)), float) - inc.z)
    C = r.T @ r / len(r)
    moments = ddm.data.jacobian_moments(target.f, inc.z, jnp.float32)
    truth = 0.5 * np.eye(3)
    # measured 1.0% (sampling noise about 0.5% an entry from 80,000 pairs); plain C / 2dt: 6.8%
    assert rel(ddm.data.diffusion_from_covariance(C, dt, moments), truth) < 0.025
    assert rel(C / (2 * dt), truth) > 0.05


def test_measurement_noise_biases_diffusion_up_by_s2_over_dt():
    dt, s = 0.02, 0.03
    data = ou_data(32, 40.0, dt, seed=2)
    noisy = data + s * np.random.default_rng(3).standard_normal(data.shape)
    clean = ddm.fit_data(data, dt, 16, key=jr.key(2), config=SMALL, correct=False)
    dirty = ddm.fit_data(noisy, dt, 16, key=jr.key(2), config=SMALL, correct=False)
    excess = np.asarray(dirty.D) - np.asarray(clean.D)
    # documented: + s^2 / dt on the diagonal (upwards), nothing off it
    np.testing.assert_allclose(np.diag(excess), s**2 / dt, rtol=0.25)
    assert abs(excess[0, 1]) < 0.2 * s**2 / dt


def test_missing_samples_and_unequal_lengths():
    data = ou_data(4, 20.0, 0.01, seed=4)
    data[0, 100:150] = np.nan
    data[1, 7, 0] = np.nan
    segments = ddm.data.trajectory_segments(data, 0.01)
    assert len(segments) == 6
    assert sum(len(s) for s in segments) == data.shape[0] * data.shape[1] - 51
    inc = ddm.data.increments(segments, 0.01)
    assert np.all(np.isfinite(inc.dz1))
    assert np.abs(inc.dz1).max() < 1.0
    ragged = [data[2], data[3, :500]]
    assert len(ddm.data.trajectory_segments(ragged, 0.01)) == 2


@pytest.mark.parametrize(
    ("data", "dt", "n", "match"),
    [
        (np.zeros((2, 20, 2)), 0.01, 64, r"at least 10 increments per neuron \(640 for n = 64\)"),
        ([np.zeros((50, 2)), np.zeros((50, 3))], 0.01, 4, r"same k = 2; trajectory 1"),
        (np.zeros(50), 0.01, 4, r"Expected trajectories of shape \(B, T, k\)"),
        (np.full((3, 50, 2), np.nan), 0.01, 4, r"all 3 trajectories are NaN"),
        (np.zeros((3, 50, 2)), 0.0, 4, r"Expected a finite sampling interval dt > 0; got 0.0"),
        (np.zeros((3, 50, 2)), -0.1, 4, r"dt > 0; got -0.1"),
        (np.zeros((3, 50, 2)), 0.01, 1, r"n >= k = 2"),
    ],
)
def test_bad_input_gets_a_one_line_error(data, dt, n, match):
    with pytest.raises(ValueError, match=match) as err:
        ddm.fit_data(data, dt, n, key=jr.key(0), config=SMALL)
    assert "\n" not in str(err.value)


def test_load_trajectories(tmp_path):
    data = ou_data(2, 1.0, 0.01)
    np.savez(tmp_path / "a.npz", trajectories=data, dt=0.01)
    np.savez(tmp_path / "b.npz", traj_0=data[0], traj_1=data[1, :50])
    np.save(tmp_path / "c.npy", data)
    loaded, dt = ddm.load_trajectories(tmp_path / "a.npz")
    assert dt == 0.01
    assert loaded.shape == data.shape
    loaded, dt = ddm.load_trajectories(tmp_path / "b.npz")
    assert dt is None
    assert [len(t) for t in loaded] == [101, 50]
    assert ddm.load_trajectories(tmp_path / "c.npy")[0].shape == data.shape
    with pytest.raises(ValueError, match=r"Expected a .npy or .npz trajectory file"):
        ddm.load_trajectories(tmp_path / "d.csv")
    np.savez(tmp_path / "e.npz", other=data)
    with pytest.raises(ValueError, match=r"expected an array 'trajectories'"):
        ddm.load_trajectories(tmp_path / "e.npz")


def test_state_dependent_noise_through_the_noise_readout():
    """``dz = -z dt + 0.5 sqrt(1 + z^2) dB``: the read-out learns ``G G^T`` from residuals."""
    rng = np.random.default_rng(5)
    dt, sub = 0.01, 10
    z = np.empty((32, 4001, 1))
    z[:, 0] = rng.standard_normal((32, 1)) * 0.6
    x = z[:, 0].copy()
    h = dt / sub
    for t in range(4000):
        for _ in range(sub):
            x = x - x * h + 0.5 * np.sqrt(1 + x**2) * np.sqrt(h) * rng.standard_normal(x.shape)
        z[:, t + 1] = x
    config = ddm.TrainConfig(steps=500, chunk=500, noise_steps=500)
    fit = ddm.fit_data(z, dt, 16, key=jr.key(5), config=config, state_dependent_noise=True)
    pts = jnp.asarray(np.quantile(z.reshape(-1), np.linspace(0.05, 0.95, 19))[:, None], jnp.float32)
    g = np.asarray(jax.vmap(fit.target.g)(pts))[:, 0, 0]
    true = 0.25 * (1 + np.asarray(pts)[:, 0] ** 2)
    assert rel(g**2, true) < 0.1, (g**2, true)
    assert not fit.target.additive
