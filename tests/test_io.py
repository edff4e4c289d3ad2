"""Files: model round trip, weights.npz (SPEC section 10), corruption, atomic writes.

The last test rebuilds a trained network from ``weights.npz`` with plain NumPy and checks
that it reproduces the target's stationary statistics.
"""

import json
import re
import zipfile

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm


def _random_model(*, key, state_dependent=False, private_noise=0.0):
    if state_dependent:
        target = ddm.from_callables(
            lambda t, z, args: -z,
            lambda t, z, args: jnp.diag(0.3 * jnp.sqrt(1 + z**2)),
            box=([-2.0, -2.0], [2.0, 2.0]),
        )
    else:
        target = ddm.make_target("lorenz")
    k_net, k_w, k_r = jr.split(key, 3)
    model = ddm.init_network(target, 12, key=k_net, tau=0.8, private_noise=private_noise)
    model = eqx.tree_at(lambda m: m.W_s, model, jr.normal(k_w, model.W_s.shape))
    if state_dependent:
        readout = jr.normal(k_r, model.noise_readout.shape)
        model = eqx.tree_at(lambda m: m.noise_readout, model, readout)
    return model


def _assert_same_model(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b  # includes the static activation and the None read-out
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- the model file


@pytest.mark.parametrize("state_dependent", [False, True])
def test_model_round_trip(state_dependent, key, tmp_path):
    model = _random_model(key=key, state_dependent=state_dependent, private_noise=0.1)
    assert (model.noise_readout is not None) == state_dependent
    path = tmp_path / "model.ddm"
    ddm.save_model(path, model)
    _assert_same_model(ddm.load_model(path), model)
    # a second save overwrites, and a str path works as well as a Path
    ddm.save_model(str(path), model)
    _assert_same_model(ddm.load_model(str(path)), model)


def test_model_round_trip_float64(key, tmp_path):
    with jax.enable_x64(True):
        model = _random_model(key=key)
        assert model.Gamma.dtype == jnp.float64
        ddm.save_model(tmp_path / "model.ddm", model)
        _assert_same_model(ddm.load_model(tmp_path / "model.ddm"), model)


def test_corrupt_model_file(key, tmp_path):
    model = _random_model(key=key, state_dependent=True)
    good = tmp_path / "good.ddm"
    ddm.save_model(good, model)
    data = good.read_bytes()
    header_end = data.index(b"\n") + 1
    # truncated anywhere: in the header, right after it, in the arrays, by one byte
    for cut in (0, 10, header_end, (header_end + len(data)) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.ddm"
        path.write_bytes(data[:cut])
        with pytest.raises(ddm.io.CorruptFileError, match=re.escape(str(path))):
            ddm.load_model(path)
    extra = tmp_path / "extra.ddm"
    extra.write_bytes(data + b"\x00")
    with pytest.raises(ddm.io.CorruptFileError, match="unexpected bytes after the model data"):
        ddm.load_model(extra)
    wrong = tmp_path / "wrong.ddm"
    header = json.loads(data[:header_end])
    wrong.write_bytes(json.dumps({**header, "format": "other/1"}).encode() + data[header_end:])
    with pytest.raises(ddm.io.CorruptFileError, match="expected a ddm-jax model file"):
        ddm.load_model(wrong)
    with pytest.raises(FileNotFoundError):
        ddm.load_model(tmp_path / "missing.ddm")
    assert issubclass(ddm.io.CorruptFileError, ValueError)


# ---------------------------------------------------------------- weights.npz


def test_export_weights_keys_and_shapes(key, tmp_path):
    model = _random_model(key=key)  # lorenz: n = 12, k = 3, m = 3
    n, k, m = 12, 3, 3
    path = tmp_path / "weights.npz"
    ddm.export_weights(path, model, "lorenz")
    weights = ddm.load_weights(path)
    # SPEC section 10
    shapes = {
        "Gamma": (n, k), "W_s": (k, n), "b": (n,), "embed": (n, k), "offset": (n,),
        "tau": (), "noise": (n, m), "activation": (), "system": (),
    }  # fmt: skip
    for name, shape in shapes.items():
        assert weights[name].shape == shape, name
    for name in ("Gamma", "W_s", "b", "embed", "offset", "tau", "noise"):
        assert np.issubdtype(weights[name].dtype, np.floating), name
    assert str(weights["activation"]) == "tanh"
    assert str(weights["system"]) == "lorenz"
    # the values: E = Gamma S^-1, e = b - E c, Sigma = Gamma Ghat (additive noise)
    np.testing.assert_array_equal(weights["Gamma"], model.Gamma)
    np.testing.assert_array_equal(weights["W_s"], model.W_s)
    np.testing.assert_array_equal(weights["b"], model.b)
    np.testing.assert_allclose(weights["embed"], model.Gamma / model.scale, rtol=1e-6)
    np.testing.assert_allclose(
        weights["offset"], model.b - model.embed_matrix @ model.centre, rtol=1e-5, atol=1e-5
    )
    assert float(weights["tau"]) == pytest.approx(0.8)
    np.testing.assert_allclose(weights["noise"], model.Gamma @ model.noise_const, rtol=1e-5)
    # plain np.load reads the same file without pickles
    with np.load(path, allow_pickle=False) as data:
        assert set(shapes) <= set(data.files)


def test_weights_rebuild_the_drift(key, tmp_path):
    """NumPy with the file's arrays gives the library's neuron drift and read-out."""
    k_model, k_x, k_z = jr.split(key, 3)
    model = _random_model(key=k_model)
    path = tmp_path / "weights.npz"
    ddm.export_weights(path, model, "lorenz")
    w = {name: np.asarray(v, dtype=np.float64) for name, v in np.load(path).items()
         if name not in ("activation", "system")}  # fmt: skip
    x = 2 * np.asarray(jr.normal(k_x, (12,)), dtype=np.float64)
    drift = (-x + w["Gamma"] @ (w["W_s"] @ np.tanh(x)) + w["b"]) / w["tau"]
    np.testing.assert_allclose(drift, model.neuron_drift(jnp.asarray(x, jnp.float32)), atol=1e-4)
    z = np.asarray(
        ddm.simulation.sample_box(k_z, ddm.make_target("lorenz"), 1)[0], dtype=np.float64
    )
    x_on = w["embed"] @ z + w["offset"]
    np.testing.assert_allclose(x_on, model.embed(jnp.asarray(z, jnp.float32)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.linalg.pinv(w["embed"]) @ (x_on - w["offset"]), z, atol=1e-4)


def test_corrupt_weights_file(key, tmp_path):
    model = _random_model(key=key)
    good = tmp_path / "weights.npz"
    ddm.export_weights(good, model, "lorenz")
    data = good.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 5):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        with pytest.raises(ddm.io.CorruptFileError, match=re.escape(str(path))):
            ddm.load_weights(path)
    with np.load(good) as archive:
        arrays = {name: archive[name] for name in archive.files}
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if k != "embed"})
    with pytest.raises(ddm.io.CorruptFileError, match=re.escape("missing arrays ['embed']")):
        ddm.load_weights(missing)
    bad_shape = tmp_path / "shape.npz"
    np.savez(bad_shape, **{**arrays, "W_s": arrays["W_s"].T})
    with pytest.raises(ddm.io.CorruptFileError, match=re.escape("expected W_s of shape (3, 12)")):
        ddm.load_weights(bad_shape)
    bad_noise = tmp_path / "noise.npz"
    np.savez(bad_noise, **{**arrays, "noise": arrays["noise"][:5]})
    with pytest.raises(ddm.io.CorruptFileError, match=re.escape("expected noise of shape (12, m)")):
        ddm.load_weights(bad_noise)
    with pytest.raises(FileNotFoundError):
        ddm.load_weights(tmp_path / "absent.npz")


# ---------------------------------------------------------------- atomic writes


def test_atomic_writes_leave_no_temporary_files(key, tmp_path):
    model = _random_model(key=key)
    ddm.save_model(tmp_path / "model.ddm", model)
    ddm.export_weights(tmp_path / "weights.npz", model, "lorenz")
    ddm.io.atomic_write_json(tmp_path / "sub" / "report.json", {"b": 1, "a": [1.5]})
    ddm.io.atomic_write_text(tmp_path / "note.txt", "hello")
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert files == ["model.ddm", "note.txt", "sub", "sub/report.json", "weights.npz"]
    assert json.loads((tmp_path / "sub" / "report.json").read_text()) == {"a": [1.5], "b": 1}
    assert zipfile.is_zipfile(tmp_path / "weights.npz")

    # a write that fails half-way leaves the old file intact and no temporary behind
    target = tmp_path / "note.txt"
    with pytest.raises(TypeError):
        ddm.io.atomic_write_bytes(target, "not bytes")
    assert target.read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.ddm", "note.txt", "sub", "weights.npz",
    ]  # fmt: skip


# ---------------------------------------------------------------- the interchange contract


def _numpy_network(w, z0s, *, seed, dt, t1, burn_in, save_every):
    """Euler-Maruyama of the n-neuron network from weights.npz, in plain NumPy (float64).

    ``tau dx = (-x + Gamma W_s tanh(x) + b) dt + noise dW``; read-out
    ``z = pinv(embed) (x - offset)``; trajectories are vectorised.
    """
    rng = np.random.default_rng(seed)
    Gamma, W_s, b, E, e, noise = (
        np.asarray(w[name], dtype=np.float64)
        for name in ("Gamma", "W_s", "b", "embed", "offset", "noise")
    )
    tau = float(w["tau"])
    pinv = np.linalg.pinv(E)
    x = z0s @ E.T + e
    out = []
    for step in range(1, int(round(t1 / dt)) + 1):
        dW = np.sqrt(dt) * rng.standard_normal((x.shape[0], noise.shape[1]))
        x = x + (dt * (-x + (np.tanh(x) @ W_s.T) @ Gamma.T + b) + dW @ noise.T) / tau
        if step % save_every == 0 and step * dt > burn_in:
            out.append((x - e) @ pinv.T)
    return np.stack(out, axis=1)  # (trajectories, saves, k)


def test_numpy_rebuild_reproduces_stationary_statistics(key, tmp_path):
    """A trained VdP network, rebuilt in NumPy from weights.npz, matches the target SDE.

    256 trajectories from random box points, dt = 0.01, 20 time units, burn-in 5, saved
    every 0.1, for the NumPy network and for ``ddm.simulate_target``. Tolerances: stationary
    mean within 5% of the RMS spread and covariance within 10% (relative Frobenius); two
    independent target runs of this size differ by ~1% and ~4% (the sampling noise).
    """
    target = ddm.make_target("vdp")
    k_pool, k_net, k_train, k_z_net, k_z_tgt, k_sim = jr.split(key, 6)
    config = ddm.TrainConfig(
        steps=3000, batch=512, lr=2e-2, sampler="mixture", attractor_fraction=0.8, chunk=3000
    )
    pool = ddm.attractor_points(target, key=k_pool)
    model = ddm.init_network(target, 32, key=k_net)
    state, _ = ddm.training.run_training(
        ddm.training.init_train_state(model, config), target, key=k_train, config=config, pool=pool
    )
    path = tmp_path / "weights.npz"
    ddm.export_weights(path, state.model, "vdp")

    with np.load(path, allow_pickle=False) as data:
        weights = {name: data[name] for name in data.files}
    assert str(weights["system"]) == "vdp"
    assert str(weights["activation"]) == "tanh"
    z0s = np.asarray(ddm.simulation.sample_box(k_z_net, target, 256), dtype=np.float64)
    grid = dict(dt=0.01, t1=20.0, burn_in=5.0, save_every=10)
    z_net = _numpy_network(weights, z0s, seed=0, **grid).reshape(-1, 2)

    run = ddm.simulate_target(
        target,
        ddm.simulation.sample_box(k_z_tgt, target, 256),
        key=k_sim,
        t1=20.0,
        dt=0.01,
        save_dt=0.1,
    )
    first = int(round(5.0 / 0.1)) + 1  # saves strictly after the burn-in, like the NumPy run
    z_tgt = np.asarray(run.zs[:, first:], dtype=np.float64).reshape(-1, 2)
    assert z_net.shape == z_tgt.shape == (256 * 150, 2)

    cov_net, cov_tgt = np.cov(z_net.T), np.cov(z_tgt.T)
    spread = np.sqrt(np.trace(cov_tgt))
    mean_error = np.linalg.norm(z_net.mean(0) - z_tgt.mean(0)) / spread
    cov_error = np.linalg.norm(cov_net - cov_tgt) / np.linalg.norm(cov_tgt)
    assert mean_error < 0.05
    assert cov_error < 0.10
