"""Behaviour follows a target's metadata, never its name: references, measured kinds, wells."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm
from ddm_jax.fidelity._census import attractor_kind
from ddm_jax.runs._target_spec import load_target, target_spec

LYAPUNOV_KEYS = {
    "lyapunov_target", "lyapunov_network", "lyapunov_reference", "lyapunov_reference_measured"
}  # fmt: skip
SMALL = dict(trajectories=8, t1=2.0, burn_in=1.0, dt=1e-2, null_pairs=1)


def _lorenz_drift(t, z, args):  # written here, not the registry's function
    x, y, w = z
    return jnp.stack([10.0 * (y - x), x * (28.0 - w) - y, x * y - 8.0 / 3.0 * w])


def _noise(t, z, args):
    return jnp.eye(z.shape[0])


def _vdp_drift(t, z, args):
    return jnp.stack([z[1], (1 - z[0] ** 2) * z[1] - z[0]])


def _decay_drift(t, z, args):
    return -z


# ---------------------------------------------------------------- the registry's metadata


def test_references_only_at_the_parameters_they_were_measured_for():
    lorenz = ddm.make_target("lorenz")
    assert (lorenz.attractor, lorenz.lyapunov) == ("chaotic", 0.9056)
    changed = ddm.make_target("lorenz", rho=10.0)  # two stable fixed points
    assert changed.lyapunov is None
    assert changed.attractor in (None, "fixed_point")
    assert ddm.make_target("lorenz", sigma=11.0).lyapunov is None
    assert ddm.make_target("lorenz", noise=0.5).lyapunov == 0.9056  # noise-free reference
    dadras = ddm.make_target("dadras")
    assert (dadras.attractor, dadras.lyapunov) == ("chaotic", 0.374)
    assert ddm.make_target("dadras", a=3.1).lyapunov is None
    assert ddm.make_target("dadras", a=3.1).attractor is None
    vdp = ddm.make_target("vdp")
    assert (vdp.attractor, vdp.period) == ("limit_cycle", 6.6633)
    assert ddm.make_target("vdp", mu=2.0).period is None
    # a run's config.json names every parameter, defaults included: the reference survives
    spec = json.loads(json.dumps(target_spec("lorenz", {})))
    assert ddm.make_target(spec["name"], **spec["params"]).lyapunov == 0.9056
    spec = json.loads(json.dumps(target_spec("lorenz", {"rho": 10.0})))
    assert ddm.make_target(spec["name"], **spec["params"]).lyapunov is None


@pytest.mark.usefixtures("no_typecheck")
def test_from_callables_takes_and_checks_metadata():
    box = ([-1.0, -1.0], [1.0, 1.0])
    t = ddm.from_callables(_vdp_drift, _noise, box=box, attractor="limit_cycle", period=6.6633)
    assert (t.attractor, t.period, t.lyapunov) == ("limit_cycle", 6.6633, None)
    plain = ddm.from_callables(_vdp_drift, _noise, box=box)
    assert (plain.attractor, plain.lyapunov, plain.period, plain.well_centres) == (None,) * 4
    with pytest.raises(ValueError, match="Expected attractor among"):
        ddm.from_callables(_vdp_drift, _noise, box=box, attractor="strange")
    with pytest.raises(ValueError, match=r"Expected well_centres of shape \(K, 2\)"):
        ddm.from_callables(_vdp_drift, _noise, box=box, well_centres=[1.0, 0.0], well_width=0.4)
    with pytest.raises(ValueError, match="Expected period > 0"):
        ddm.from_callables(_vdp_drift, _noise, box=box, period=-1.0)


# ---------------------------------------------------------------- the fidelity report


@pytest.fixture(scope="module")
def lorenz_network():
    return ddm.init_network(ddm.make_target("lorenz"), 16, key=jr.key(0))


def test_changed_parameter_gets_no_chaotic_reference(lorenz_network):
    target = ddm.make_target("lorenz", rho=10.0)
    report = ddm.fidelity_report(lorenz_network, target, key=jr.key(1), **SMALL)
    assert report.metrics.get("lyapunov_reference") != 0.9056
    assert not LYAPUNOV_KEYS & set(report.metrics)  # measured: its orbits end on fixed points
    assert report.settings["attractor"] == "fixed_point"
    assert report.settings["attractor_measured"]


def test_user_chaotic_target_gets_the_lyapunov_metrics_of_lorenz(lorenz_network):
    lorenz = ddm.make_target("lorenz")
    user = ddm.from_callables(
        _lorenz_drift, _noise, box=(lorenz.box_low, lorenz.box_high), z0=lorenz.z0, name="mine"
    )
    given = ddm.fidelity_report(lorenz_network, lorenz, key=jr.key(1), **SMALL).metrics
    mine = ddm.fidelity_report(lorenz_network, user, key=jr.key(1), **SMALL)
    assert {k for k in mine.metrics if k.startswith("lyapunov")} == {
        k for k in given if k.startswith("lyapunov")
    }
    assert LYAPUNOV_KEYS <= set(given)
    assert (given["lyapunov_reference"], given["lyapunov_reference_measured"]) == (0.9056, 0.0)
    m = mine.metrics
    assert m["lyapunov_reference_measured"] == 1.0
    assert m["lyapunov_reference"] == m["lyapunov_target"]
    assert m["lyapunov_target"] == pytest.approx(0.9056, rel=0.1)
    assert (mine.settings["attractor"], mine.settings["attractor_measured"]) == ("chaotic", True)
    assert "measured)" in mine.to_markdown()


def test_kind_measured_without_metadata(key):
    box = ([-3.0, -4.0], [3.0, 4.0])
    vdp = ddm.from_callables(_vdp_drift, _noise, box=box, z0=[2.0, 0.0])
    decay = ddm.from_callables(_decay_drift, _noise, box=box)
    starts = jnp.array([[2.0, 0.0], [0.5, 0.5], [-1.0, 2.0]])
    short = dict(transient=20.0, time=60.0)
    assert attractor_kind(vdp, starts, **short) == "limit_cycle"
    assert attractor_kind(decay, starts, **short) == "fixed_point"
    # the census is skipped by metadata when given, measured when not
    assert ddm.fidelity.census_applies(vdp, key=key, starts=2, **short)
    assert not ddm.fidelity.census_applies(
        dataclasses.replace(vdp, attractor="fixed_point"), key=key
    )


# ---------------------------------------------------------------- memory


def _ring_drift(t, z, args):
    return -jax.grad(_ring_potential)(z, args)


def _ring_potential(z, args):
    sq = jnp.sum((z - args["centres"]) ** 2, axis=-1)
    return -jnp.sum(jnp.exp(-sq / (2 * 0.4**2))) + 0.5 * jnp.sum(z**2) ** 2 / 4


def test_memory_for_a_wells_target_of_another_name():
    wells = ddm.make_target("wells")
    renamed = dataclasses.replace(wells, name="four_wells")
    small = dict(amplitudes=(0.0, 3.0), trials=8, relax=1.0)
    curve = ddm.memory.switching(renamed, key=jr.key(0), **small)
    ref = ddm.memory.switching(wells, key=jr.key(0), **small)
    np.testing.assert_array_equal(curve.successes, ref.successes)
    assert ddm.memory.exact_epr(renamed) == 0.0
    # a user's three wells, with the same metadata as the registry's
    angles = 2 * np.pi * np.arange(3) / 3
    centres = np.stack([np.cos(angles), np.sin(angles)], -1)
    noise = lambda t, z, args: jnp.sqrt(2 * 0.15) * jnp.eye(2)
    triad = ddm.from_callables(
        _ring_drift, noise, box=([-2.0, -2.0], [2.0, 2.0]), z0=[1.0, 0.0], name="triad",
        args={"centres": jnp.asarray(centres, jnp.float32)}, attractor="fixed_point",
        well_centres=centres, well_width=0.4, potential=_ring_potential, circulation=0.0,
    )  # fmt: skip
    out = ddm.memory.memory_experiments(triad, None, key=jr.key(1), trials=4, amplitudes=(0.0, 3.0),
                                 strengths=(0.0, 3.0), trajectories=6, t1=4.0, burn_in=1.0,
                                 dt=0.01)  # fmt: skip
    assert len(out["cycling"]["target"]["occupancy"]) == 3
    np.testing.assert_allclose(out["cycling"]["target"]["boltzmann"], 1 / 3, atol=1e-3)
    assert out["cycling"]["target"]["epr_exact"] == 0.0
    assert out["switching"]["target"]["successes"][1] >= 3  # a pulse of 3 moves the state
    assert ddm.memory.preferred_direction(dataclasses.replace(triad, circulation=1.0)) == -1
    with pytest.raises(ValueError, match="Expected a target of the wells family"):
        ddm.memory.switching(ddm.make_target("vdp"), key=jr.key(2))


def test_file_target_keeps_its_metadata(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import jax.numpy as jnp\n"
        "import ddm_jax as ddm\n\n"
        "def target(rate=1.0):\n"
        "    return ddm.from_callables(\n"
        "        lambda t, z, a: -rate * z, lambda t, z, a: jnp.eye(2),\n"
        "        box=([-1.0, -1.0], [1.0, 1.0]), attractor='fixed_point',\n"
        "        well_centres=[[0.0, 0.0]], well_width=0.5)\n"
    )
    t = load_target(f"{tmp_path / 'mine.py'}:target", {"rate": 2.0})
    assert (t.attractor, t.well_centres, t.well_width) == ("fixed_point", ((0.0, 0.0),), 0.5)
