"""The closed-form drift fit: data-anchored features, a float64 ridge read-out chosen on held-out
points, noise-aware features, and the ``method`` setting of `fit`, `fit_seeds` and `train_run`."""

import json
import re

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg

import ddm_jax as ddm
from ddm_jax import training
from ddm_jax.training import TrainConfig

_cf = __import__("ddm_jax.training._closed_form", fromlist=["CHUNK_ELEMENTS"])


def _layer(n=24, k=2, num=600, seed=0):
    rng = np.random.default_rng(seed)
    gamma = rng.normal(size=(n, k))
    vs = rng.uniform(-1, 1, size=(num, k))
    b = -np.sum(gamma * vs[rng.integers(0, num, n)], axis=1)
    return rng, gamma, b, vs


def test_least_squares_recovers_a_planted_readout():
    rng, gamma, b, vs = _layer()
    planted = rng.normal(size=(gamma.shape[0], 2))
    ys = np.tanh(vs @ gamma.T + b) @ planted
    gram, rhs, _ = training.normal_equations(gamma, b, vs, ys)
    coef = training.ridge_solve(gram, rhs, 0.0)
    assert np.max(np.abs(coef - planted)) < 1e-7 * np.max(np.abs(planted))
    # and the fitted values to float64 rounding
    assert np.max(np.abs(np.tanh(vs @ gamma.T + b) @ coef - ys)) < 1e-10 * np.max(np.abs(ys))


def test_chunked_normal_equations_equal_the_direct_ones(monkeypatch):
    rng, gamma, b, vs = _layer(num=1003)
    ys = rng.normal(size=(len(vs), 3))
    h = np.tanh(vs @ gamma.T + b)
    monkeypatch.setattr(_cf, "CHUNK_ELEMENTS", 7 * gamma.shape[0])  # 7 points a chunk, 2 left
    gram, rhs, yy = training.normal_equations(gamma, b, vs, ys)
    np.testing.assert_allclose(gram, h.T @ h, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(rhs, h.T @ ys, rtol=1e-12, atol=1e-10)
    assert yy == pytest.approx(np.sum(ys**2), rel=1e-12)
    coef = training.ridge_solve(gram, rhs, 1e-8)
    direct = np.linalg.solve(h.T @ h + 1e-8 * np.trace(h.T @ h) / len(h.T) * np.eye(len(h.T)),
                             h.T @ ys)  # fmt: skip
    np.testing.assert_allclose(coef, direct, rtol=1e-6, atol=1e-9)


def _noisy_problem(seed):
    """Few noisy fit points: the smallest ridge fits them best and generalises worst."""
    rng, gamma, b, _ = _layer(n=40, num=10, seed=seed)
    truth = lambda v: np.sin(3 * v[:, :1]) * np.cos(2 * v[:, 1:])
    fit_v = rng.uniform(-1, 1, (60, 2))
    held_v = rng.uniform(-1, 1, (2000, 2))
    fit = training.normal_equations(gamma, b, fit_v, truth(fit_v) + 0.3 * rng.normal(size=(60, 1)))
    held = training.normal_equations(gamma, b, held_v, truth(held_v))
    return gamma, b, fit, held, held_v, truth


def test_the_ridge_is_chosen_on_held_out_points_only():
    ridges = (1e-12, 1e-8, 1e-4, 1e-2, 1e-1)
    gamma, b, fit, held, held_v, truth = _noisy_problem(0)
    chosen, errors = training.select_ridge(fit, held, ridges)
    # the held-out errors, recomputed directly from the held-out points
    h = np.tanh(held_v @ gamma.T + b)
    direct = [np.sqrt(np.sum((h @ training.ridge_solve(fit[0], fit[1], r) - truth(held_v)) ** 2)
                      / np.sum(truth(held_v) ** 2)) for r in ridges]  # fmt: skip
    np.testing.assert_allclose(errors, direct, rtol=1e-6)
    assert chosen == ridges[int(np.argmin(direct))]
    # judged on the fit points themselves the smallest ridge would win: it is not chosen
    on_fit, _ = training.select_ridge(fit, fit, ridges)
    assert on_fit == ridges[0]
    assert chosen != ridges[0]


def test_closed_form_holds_out_points_disjoint_from_the_fit_points(monkeypatch):
    target = ddm.make_target("vdp")
    calls = []
    real = training.normal_equations

    def spy(gamma, b, vs, ys, std=None):
        calls.append(np.asarray(vs))
        return real(gamma, b, vs, ys, std)

    monkeypatch.setattr(_cf, "normal_equations", spy)
    config = TrainConfig(method="lstsq", sampler="box", lstsq_points=2048, gamma_scale=1.0)
    model = ddm.init_network(target, 16, key=jr.key(0))
    _, info = training.closed_form(model, target, None, key=jr.key(1), config=config)
    fit_v, held_v = calls[0], calls[1]
    assert len(fit_v) == 2048
    assert len(held_v) == 512
    both = np.concatenate([fit_v, held_v])
    assert len(np.unique(both, axis=0)) == len(both)  # no held-out point is a fit point
    assert info["ridge"] in training._closed_form.RIDGES


def test_noise_aware_features_remove_the_private_noise_bias():
    target = ddm.make_target("vdp")
    zs = ddm.simulation.sample_box(jr.key(7), target, 512)
    errors = {}
    for sigma in (0.0, 0.1, 0.2):
        model = ddm.init_network(target, 64, key=jr.key(0), private_noise=sigma)
        for aware in (False, True):
            config = TrainConfig(method="lstsq", sampler="box", lstsq_points=4096,
                                 gamma_scale=1.0, ridge=1e-8, noise_aware=aware)  # fmt: skip
            fitted, _ = training.closed_form(model, target, None, key=jr.key(1), config=config)
            errors[sigma, aware] = training.noisy_drift_error(fitted, target, zs)
    floor = errors[0.0, False]  # the fit's own error, without private noise
    # without: the noisy network's drift is off by a bias that grows as sigma^2
    assert errors[0.1, False] > 3 * floor
    assert errors[0.2, False] > 3 * errors[0.1, False]
    # with: the bias is gone to first order, only the fit's own error is left
    for sigma in (0.1, 0.2):
        assert abs(errors[sigma, True] - floor) < 0.1 * floor, (sigma, errors, floor)


def test_noisy_drift_error_agrees_with_monte_carlo():
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 32, key=jr.key(0), private_noise=0.3)
    config = TrainConfig(method="lstsq", sampler="box", lstsq_points=2048, gamma_scale=1.0,
                         ridge=1e-8, noise_aware=False)  # fmt: skip
    model, _ = training.closed_form(model, target, None, key=jr.key(1), config=config)
    zs = ddm.simulation.sample_box(jr.key(3), target, 16)
    # Monte Carlo noisy drift: the noise-free drift plus the bias private_noise_drift_bias adds
    q, _ = jnp.linalg.qr(model.Gamma)
    std = model.private_noise / jnp.sqrt(2 * model.tau)
    xi = std * jr.normal(jr.key(4), (8000, model.n))
    xi = xi - (xi @ q) @ q.T

    def noisy(z):
        x = model.embed(z)
        mean_phi = jnp.mean(model.phi(x + xi) + model.phi(x - xi), axis=0) / 2
        return model.target_drift(z) + model.scale * (model.W_s @ (mean_phi - model.phi(x)))

    f = jax.vmap(target.f)(zs)
    mc = float(jnp.sqrt(jnp.sum((jax.vmap(noisy)(zs) - f) ** 2) / jnp.sum(f**2)))
    assert training.noisy_drift_error(model, target, zs) == pytest.approx(mc, rel=0.05)


def test_fit_with_the_closed_form_on_vdp32():
    target = ddm.make_target("vdp")
    held = ddm.attractor_points(target, key=jr.key(99), num=4096)
    result = training.fit(target, 32, key=jr.key(0), config=TrainConfig(method="lstsq"))
    assert result.losses.size == 0
    assert result.closed_form["method"] == "lstsq"
    assert result.closed_form["ridge"] in training._closed_form.RIDGES
    error = float(ddm.drift_error(result.model, target, held))
    # seeds 0-4 gave 0.18-0.61% in about a second (at n = 16 the random layer is too small
    # to be reliable: 7.7-17.6%)
    assert error < 0.02, error
    # Adam from the closed form, then the refit: still accurate after a few steps
    combo = training.fit(target, 32, key=jr.key(0),
                         config=TrainConfig(method="lstsq+adam", steps=300, lr=1e-3))  # fmt: skip
    assert combo.losses.size == 300
    assert "refit_ridge" in combo.closed_form
    assert float(ddm.drift_error(combo.model, target, held)) < 0.02
    # a seed sweep follows the plan of fit, seed by seed
    (swept,) = training.fit_seeds(target, 32, seeds=[0], config=TrainConfig(method="lstsq"))
    np.testing.assert_allclose(np.asarray(swept.model.W_s), np.asarray(result.model.W_s))


def test_train_run_equals_fit_interrupted_or_not_and_records_the_closed_form(tmp_path):
    settings = dict(steps=100, batch=32, chunk=25, sampler="box", lstsq_points=2048)
    target = ddm.make_target("vdp")
    for method in ("lstsq", "lstsq+adam"):
        out = tmp_path / method

        def stop(progress):
            if progress.phase == "drift" and progress.step == 50:
                raise KeyboardInterrupt

        if method == "lstsq+adam":  # interrupted in Adam, then resumed
            with pytest.raises(KeyboardInterrupt):
                ddm.runs.train_run("vdp", out, neurons=16, method=method, progress=stop,
                                   checkpoint_every=1e9, **settings)  # fmt: skip
            header = ddm.runs.read_checkpoint_header(out / "checkpoint.eqx")
            assert header["closed_form"]["method"] == method
            run = ddm.runs.train_run("vdp", out, resume=True)
        else:
            run = ddm.runs.train_run("vdp", out, neurons=16, method=method, **settings)
        result = training.fit(target, 16, key=jr.key(0),
                              config=TrainConfig(method=method, **settings))  # fmt: skip
        for a, b in ((run.model.W_s, result.model.W_s), (run.model.Gamma, result.model.Gamma),
                     (run.model.b, result.model.b)):  # fmt: skip
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        recorded = json.loads((out / "training.json").read_text())
        assert recorded["method"] == method
        assert recorded["steps"] == (0 if method == "lstsq" else 100)
        assert recorded["closed_form"]["ridge"] == result.closed_form["ridge"]
        assert recorded["closed_form"]["gamma_scale"] == result.closed_form["gamma_scale"]
        assert recorded["max_abs_W_s"] == pytest.approx(float(jnp.max(jnp.abs(result.model.W_s))))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"method": "lbfgs"}, "Expected method in ('adam', 'lstsq', 'lstsq+adam'); got 'lbfgs'."),
        ({"ridge": -1.0}, "Expected ridge None or a finite number > 0; got -1.0."),
        ({"lstsq_points": 0}, "Expected lstsq_points to be a positive integer; got 0."),
        ({"weight_decay": float("nan")}, "Expected a finite weight_decay >= 0; got nan."),
    ],
)
def test_bad_settings_say_what_was_expected(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        TrainConfig(**settings)
    assert str(err.value) == message


def test_fit_data_with_the_closed_form_recovers_an_ou_process():
    """The data path: a data-anchored hidden layer and the held-out ridge read-out, no Adam."""
    drift = np.array([[1.0, 2.0], [-0.5, 1.0]])
    diffusion = np.array([[0.5, 0.1], [0.1, 0.3]])
    dt, rng = 0.01, np.random.default_rng(0)
    a = scipy.linalg.expm(-drift * dt)
    cov = ddm.targets.ou_stationary_covariance(jnp.asarray(drift), jnp.asarray(diffusion))
    cov = np.asarray(cov, float)
    step = np.linalg.cholesky(cov - a @ cov @ a.T)
    z = np.empty((64, 6001, 2))
    z[:, 0] = rng.multivariate_normal(np.zeros(2), cov, 64)
    for t in range(6000):
        z[:, t + 1] = z[:, t] @ a.T + rng.standard_normal((64, 2)) @ step.T
    fit = ddm.fit_data(z, dt, 32, key=jr.key(0), config=TrainConfig(method="lstsq"))
    assert fit.losses.size == 0
    zs = jnp.asarray(z.reshape(-1, 2)[::7], jnp.float32)
    learned = -np.asarray(ddm.data.fitted_linear_drift(fit.target, zs))[:, :2]
    assert np.linalg.norm(learned - drift) / np.linalg.norm(drift) < 0.05
    assert np.linalg.norm(np.asarray(fit.D) - diffusion) / np.linalg.norm(diffusion) < 0.02


def test_a_drift_undefined_in_the_enlarged_box_is_named():
    """sqrt(z) on [0.05, 1.05]: the box enlarged by 20% reaches z < 0, where it is NaN."""
    target = ddm.from_callables(
        lambda t, z, args: jnp.sqrt(z) - z, lambda t, z, args: 0.1 * jnp.eye(1),
        box=([0.05], [1.05]), name="root",
    )  # fmt: skip
    config = TrainConfig(method="lstsq", sampler="box", lstsq_points=256, remedy_rounds=0)
    with pytest.raises(
        ValueError, match=r"Expected the drift of 'root' to be finite .* not at \d+ of 256 points"
    ) as err:
        ddm.fit(target, 8, key=jr.key(0), config=config)
    assert "\n" not in str(err.value)
