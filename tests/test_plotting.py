"""Figures: every plot renders, is not blank, and labels its axes; no global matplotlib state."""

import subprocess
import sys

import jax.numpy as jnp
import jax.random as jr
import matplotlib.image
import numpy as np
import pytest

import ddm_jax as ddm


def assert_not_blank(png):
    image = matplotlib.image.imread(png)
    assert image.std() > 0.05  # not a flat image
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # lines, text and colour maps, not an empty frame


def assert_labelled(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel() or ax.get_xlabel()
            continue
        assert ax.get_xlabel(), ax.get_title()
        assert ax.get_ylabel(), ax.get_title()
        if hasattr(ax, "get_zlabel"):
            assert ax.get_zlabel()


def _tiny(system, key):
    target = ddm.make_target(system)
    k_net, k_z0, k_sim, k_net_sim = jr.split(key, 4)
    model = ddm.init_network(target, 16, key=k_net)
    z0s = ddm.simulation.sample_box(k_z0, target, 3)
    ref = ddm.simulate_target(target, z0s, key=k_sim, t1=1.0, dt=1e-2)
    net = ddm.simulate_network(model, z0s, key=k_net_sim, t1=1.0, dt=1e-2, keep_neurons=True)
    return target, model, ref, net


@pytest.mark.parametrize("system", ["vdp", "lorenz"])
def test_every_figure_renders_labelled_and_not_blank(system, key, tmp_path):
    target, model, ref, net = _tiny(system, key)
    samples_t = np.asarray(ref.zs).reshape(-1, target.dim)
    samples_n = np.asarray(net.zs).reshape(-1, target.dim)
    losses = np.exp(-np.linspace(0, 5, 300)) * (1 + 0.1 * np.sin(np.arange(300)))
    figures = {
        "latent": ddm.plotting.plot_trajectories(ref.zs, net.zs, system=system, title=system),
        "neurons": ddm.plotting.plot_neurons(net.ts, net.xs[0, :, :5]),
        "drift_field": ddm.plotting.plot_drift_field(target, model, samples=samples_t),
        "loss": ddm.plotting.plot_losses(losses, losses[:100]),
        "marginals": ddm.plotting.plot_marginals(samples_t, samples_n, system=system),
        "residual": ddm.plotting.plot_residual(
            net.ts, ddm.runs.residual_trace(model, net.xs), dt=1e-2, dtype="float32"
        ),
    }
    for name, fig in figures.items():
        assert_labelled(fig)
        ddm.plotting.save_figure(fig, tmp_path / f"{name}.png")
        assert_not_blank(tmp_path / f"{name}.png")
    if system == "lorenz":
        assert figures["latent"].axes[0].name == "3d"
        assert figures["latent"].axes[0].get_xlabel() == "x (target units)"
        assert figures["drift_field"].get_suptitle().startswith("slice at w =")
    else:
        assert len(figures["marginals"].axes) == 2


def test_one_dimensional_target(tmp_path):
    target = ddm.from_callables(
        lambda t, z, args: -z, lambda t, z, args: jnp.eye(1), box=([-2.0], [2.0])
    )
    model = ddm.init_network(target, 8, key=jr.key(3))
    zs = np.cumsum(np.random.default_rng(0).normal(size=(2, 50, 1)), axis=1)
    for name, fig in {
        "drift": ddm.plotting.plot_drift_field(target, model),
        "latent": ddm.plotting.plot_trajectories(zs, zs, ts=np.arange(50) * 0.1),
    }.items():
        assert_labelled(fig)
        ddm.plotting.save_figure(fig, tmp_path / f"{name}.png")
        assert_not_blank(tmp_path / f"{name}.png")


def test_residual_trace_is_zero_on_the_subspace_and_not_off_it(key):
    target = ddm.make_target("vdp")
    model = ddm.init_network(target, 16, key=key)
    on = np.asarray(jnp.stack([model.embed(z) for z in jnp.asarray([[1.0, 2.0], [0.0, -1.0]])]))
    assert np.max(ddm.runs.residual_trace(model, on[None])) < 1e-6
    off = on + np.eye(16)[:2]  # a unit kick along two neuron axes leaves span(Gamma)
    assert np.min(ddm.runs.residual_trace(model, off[None])) > 1e-2


def test_importing_the_package_leaves_matplotlib_alone():
    """`import ddm_jax` is the JAX library: figures and run folders load on first use."""
    code = (
        "import sys, ddm_jax\n"
        "print(sorted(m for m in ('matplotlib', 'ddm_jax.runs', 'ddm_jax.plotting') "
        "if m in sys.modules))\n"
        "print('runs' in dir(ddm_jax), callable(ddm_jax.plotting.plot_census))\n"
        "print('matplotlib.pyplot' in sys.modules, 'matplotlib' in sys.modules)\n"
        "try:\n    ddm_jax.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "[]",
        "True True",
        "False True",  # figures are drawn on their own canvas, never through pyplot
        "module 'ddm_jax' has no attribute 'no_such_name'",
    ]
