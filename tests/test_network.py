"""The low-rank network: exact manifold algebra (SPEC section 3), coordinates, validation."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm


def _random_network(target, n, *, key, tau=0.7, private_noise=0.0):
    """A network with an O(1) random read-out (init_network's is ~1/n) and tau != 1."""
    k_init, k_w = jr.split(key)
    model = ddm.init_network(target, n, key=k_init, tau=tau, private_noise=private_noise)
    W_s = 2.0 * jr.normal(k_w, model.W_s.shape, model.W_s.dtype) / jnp.sqrt(n)
    return eqx.tree_at(lambda m: m.W_s, model, W_s)


@pytest.mark.parametrize("name", ["vdp", "lorenz"])
def test_manifold_is_invariant(name, key):
    """On x = Gamma v + b the neuron drift is Gamma times the latent drift (float64: exact)."""
    with jax.enable_x64(True):
        target = ddm.make_target(name)
        k_net, k_v = jr.split(key)
        model = _random_network(target, 48, key=k_net)
        assert model.Gamma.dtype == jnp.float64
        vs = 2 * jr.normal(k_v, (16, model.k), jnp.float64)
        xs = vs @ model.Gamma.T + model.b
        lhs = jax.vmap(model.neuron_drift)(xs)
        latent = jax.vmap(model.latent_drift)(vs)
        rhs = latent @ model.Gamma.T
        np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-13 * float(jnp.abs(rhs).max()))
        # and the least-squares read-out of the neuron drift is the latent drift
        read = jnp.linalg.lstsq(model.Gamma, lhs.T)[0].T
        np.testing.assert_allclose(read, latent, rtol=1e-12, atol=1e-13)


def test_manifold_is_invariant_float32(key):
    target = ddm.make_target("vdp")
    k_net, k_v = jr.split(key)
    model = _random_network(target, 64, key=k_net)
    vs = jr.normal(k_v, (32, 2))
    xs = vs @ model.Gamma.T + model.b
    lhs = jax.vmap(model.neuron_drift)(xs)
    rhs = jax.vmap(model.latent_drift)(vs) @ model.Gamma.T
    # float32: a few ulps of the O(|x|) terms that cancel
    np.testing.assert_allclose(lhs, rhs, atol=1e-5 * float(jnp.abs(xs).max()))


def test_latent_drift_formula(key):
    target = ddm.make_target("vdp")
    k_net, k_v = jr.split(key)
    model = _random_network(target, 32, key=k_net, tau=0.5)
    v = jr.normal(k_v, (2,))
    expected = (-v + model.W_s @ jnp.tanh(model.Gamma @ v + model.b)) / 0.5
    np.testing.assert_allclose(model.latent_drift(v), expected, rtol=1e-6)


def test_embed_readout_round_trip(key):
    target = ddm.make_target("lorenz")
    k_net, k_z, k_perp = jr.split(key, 3)
    model = _random_network(target, 40, key=k_net)
    zs = ddm.simulation.sample_box(k_z, target, 16)
    xs = jax.vmap(model.embed)(zs)
    np.testing.assert_allclose(jax.vmap(model.readout)(xs), zs, rtol=1e-5, atol=1e-4)
    # embed is the affine map x = E z + e of SPEC section 3
    np.testing.assert_allclose(xs, zs @ model.embed_matrix.T + model.offset, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.embed_matrix, model.Gamma / model.scale, rtol=1e-7)
    # read-out = E^+ (x - e), and a displacement orthogonal to span(Gamma) is ignored
    pinv = jnp.linalg.pinv(model.embed_matrix)
    np.testing.assert_allclose(
        jax.vmap(model.readout)(xs), (xs - model.offset) @ pinv.T, rtol=1e-4, atol=1e-3
    )
    Q, _ = jnp.linalg.qr(model.Gamma)
    perp = jr.normal(k_perp, xs.shape)
    perp = perp - (perp @ Q) @ Q.T
    np.testing.assert_allclose(jax.vmap(model.readout)(xs + perp), zs, rtol=1e-5, atol=1e-4)


def test_target_drift_coordinates(key):
    """target_drift(z) = S latent_drift((z - c) / S) = E^+ neuron_drift(E z + e)."""
    with jax.enable_x64(True):
        target = ddm.make_target("lorenz")
        k_net, k_z = jr.split(key)
        model = _random_network(target, 32, key=k_net)
        zs = ddm.simulation.sample_box(k_z, target, 8)
        vs = (zs - model.centre) / model.scale
        expected = model.scale * jax.vmap(model.latent_drift)(vs)
        np.testing.assert_allclose(jax.vmap(model.target_drift)(zs), expected, rtol=1e-13)
        neuron = jax.vmap(lambda z: model.neuron_drift(model.embed(z)))(zs)
        via_neurons = neuron @ jnp.linalg.pinv(model.embed_matrix).T
        np.testing.assert_allclose(via_neurons, expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(model.centre, target.centre)
        np.testing.assert_array_equal(model.scale, target.scale)


def test_input_enters_target_coordinates(key):
    """B_in u moves the read-out by u dt: dz = (f + u) dt (SPEC section 6)."""
    with jax.enable_x64(True):
        target = ddm.make_target("vdp")
        k_net, k_z = jr.split(key)
        model = _random_network(target, 32, key=k_net, tau=0.6)
        z = ddm.simulation.sample_box(k_z, target, 1)[0]
        u = jnp.array([0.3, -1.2])
        x = model.embed(z)
        du = model.neuron_drift(x, u) - model.neuron_drift(x)
        read = jnp.linalg.pinv(model.embed_matrix) @ du
        np.testing.assert_allclose(read, u, rtol=1e-12)
        np.testing.assert_allclose(model.input_matrix @ u / model.tau, du, rtol=1e-12)


def test_additive_noise_matched_exactly(key):
    target = ddm.make_target("vdp", noise=[[0.3, 0.1, 0.0], [0.0, 0.2, 0.4]])
    model = ddm.init_network(target, 16, key=key, tau=0.5)
    assert model.noise_readout is None
    assert model.m == 3
    # S Ghat / tau = G, the target's noise in target coordinates
    np.testing.assert_allclose(model.latent_noise_target(target.z0), target.g(target.z0), rtol=1e-6)


def test_dense_weights_never_needed(key):
    n = 37  # an n that appears in no other shape
    target = ddm.make_target("lorenz")
    k_net, k_x = jr.split(key)
    model = _random_network(target, n, key=k_net)
    W = model.dense_weights()
    assert W.shape == (n, n)
    np.testing.assert_allclose(W, model.Gamma @ model.W_s, rtol=1e-6)
    x = 2 * jr.normal(k_x, (n,))
    dense = (-x + W @ jnp.tanh(x) + model.b) / model.tau
    np.testing.assert_allclose(model.neuron_drift(x), dense, rtol=1e-5, atol=1e-5)
    # no n x n array is ever formed by the drift or the noise product
    jaxpr = str(jax.make_jaxpr(model.neuron_drift)(x))
    jaxpr += str(jax.make_jaxpr(model.noise_prod)(x, jnp.ones(model.m)))
    assert f"{n},{n}]" not in jaxpr
    assert f"[{n}," in jaxpr  # the check can see neuron-sized arrays


# ---------------------------------------------------------------- validation


@pytest.mark.usefixtures("no_typecheck")
def test_init_network_errors(key):
    target = ddm.make_target("lorenz")
    k_act, k_ok = jr.split(key)
    with pytest.raises(ValueError, match=re.escape("n >= k = 3 (the latent dimension); got 2")):
        ddm.init_network(target, 2, key=key)
    with pytest.raises(ValueError, match="n >= k = 3"):
        ddm.init_network(target, 8.0, key=key)
    with pytest.raises(ValueError, match="tau > 0; got 0.0"):
        ddm.init_network(target, 8, key=key, tau=0.0)
    with pytest.raises(ValueError, match="tau > 0; got -1.0"):
        ddm.init_network(target, 8, key=key, tau=-1.0)
    with pytest.raises(ValueError, match="tau > 0; got inf"):
        ddm.init_network(target, 8, key=key, tau=float("inf"))
    with pytest.raises(ValueError, match="private_noise >= 0 and finite; got -0.1"):
        ddm.init_network(target, 8, key=key, private_noise=-0.1)
    with pytest.raises(ValueError, match="private_noise >= 0 and finite; got nan"):
        ddm.init_network(target, 8, key=key, private_noise=float("nan"))
    with pytest.raises(ValueError, match="Expected activation in"):
        ddm.init_network(target, 8, key=k_act, activation="relu")
    # n == k is allowed
    assert ddm.init_network(target, 3, key=k_ok).n == 3


def test_init_network_state_dependent_noise(key):
    multiplicative = ddm.from_callables(
        lambda t, z, args: -z,
        lambda t, z, args: jnp.diag(0.3 * jnp.sqrt(1 + z**2)),
        box=([-2.0, -2.0], [2.0, 2.0]),
    )
    k1, k2 = jr.split(key)
    model = ddm.init_network(multiplicative, 10, key=k1)
    assert model.noise_readout is not None
    assert model.noise_readout.shape == (4, 10)
    assert ddm.init_network(ddm.make_target("vdp"), 10, key=k2).noise_readout is None


@pytest.mark.usefixtures("no_typecheck")
def test_check_init_shapes(key):
    model = ddm.init_network(ddm.make_target("lorenz"), 8, key=key)
    fields = {f: getattr(model, f) for f in model.__dataclass_fields__}

    def build(**changes):
        return ddm.LowRankRNN(**{**fields, **changes})

    assert build().n == 8  # the unchanged fields are valid
    with pytest.raises(ValueError, match=re.escape("Expected W_s of shape (3, 8)")):
        build(W_s=jnp.zeros((8, 3)))
    with pytest.raises(ValueError, match=re.escape("b of shape (8,)")):
        build(b=jnp.zeros(7))
    with pytest.raises(ValueError, match=re.escape("centre and scale of shape (3,)")):
        build(centre=jnp.zeros(2))
    with pytest.raises(ValueError, match=re.escape("centre and scale of shape (3,)")):
        build(scale=jnp.ones((3, 1)))
    with pytest.raises(ValueError, match=re.escape("noise_const of shape (3, m)")):
        build(noise_const=jnp.zeros(3))
    with pytest.raises(ValueError, match=re.escape("noise_const of shape (3, m)")):
        build(noise_const=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=re.escape("noise_readout of shape (9, 8)")):
        build(noise_readout=jnp.zeros((9, 7)))
    with pytest.raises(ValueError, match="Expected activation in"):
        build(activation="softplus")


# ---------------------------------------------------------------- private noise


def test_private_noise_drift_bias(key):
    target = ddm.make_target("vdp")
    k_net, k_z, *k_bias = jr.split(key, 7)
    zs = ddm.simulation.sample_box(k_z, target, 64)
    base = _random_network(target, 32, key=k_net, tau=1.0)
    sigmas = (0.0, 0.1, 0.2, 0.4, 1.0)
    bias = []
    for sigma, k_b in zip(sigmas, k_bias, strict=False):
        # the same weights for every sigma, only the private noise changes
        model = eqx.tree_at(lambda m: m.private_noise, base, jnp.asarray(sigma, jnp.float32))
        bias.append(float(ddm.network.private_noise_drift_bias(model, zs, key=k_b)))
    # sigma = 0: no bias, up to float32 rounding of the Monte Carlo mean
    assert bias[0] < 1e-6
    assert all(b1 > b0 for b0, b1 in zip(bias, bias[1:], strict=False))
    # leading order sigma^2: doubling sigma from 0.1 multiplies the bias by about 4
    # (measured 3.9; the Monte Carlo error of 256 antithetic samples is ~1%)
    assert 3.0 < bias[2] / bias[1] < 5.0
    assert bias[4] > 0.05  # and at sigma = 1 it is not small


def test_input_matrix_is_tau_gamma_s_inverse_and_documented_so():
    """``B_in = tau Gamma S^-1`` (``Gamma S^-1`` only for tau = 1), in the code and the text."""
    from pathlib import Path

    model = ddm.init_network(ddm.make_target("lorenz"), 32, key=jr.key(0), tau=2.5)
    np.testing.assert_allclose(
        model.input_matrix, 2.5 * model.Gamma / model.scale, rtol=1e-6, atol=1e-7
    )
    root = Path(__file__).resolve().parents[1]
    files = [*root.glob("ddm_jax/**/*.py"), *root.glob("docs/**/*.md"), root / "README.md"]
    wrong = re.compile(r"B_in = Gamma S\^-1|B_\{\\text\{in\}\} = \\Gamma S\^\{-1\}")
    assert [str(f.relative_to(root)) for f in files if wrong.search(f.read_text())] == []
