"""The form of the network update: fixed by default; forced; or (opt-in) measured once per
machine and shape, and remembered."""

import json
import os
import subprocess
import sys

import diffrax as dfx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm
from ddm_jax.simulation import _integrate, _network_sde, _tuning


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """Measure mode with an empty cache folder and an empty in-memory cache."""
    monkeypatch.setenv("DDM_JAX_UPDATE", "measure")
    monkeypatch.setenv("DDM_JAX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_tuning, "_chosen", {})
    return tmp_path


def _model(n=16):
    return ddm.init_network(ddm.make_target("lorenz"), n, key=jr.key(n))


def test_measured_once_then_remembered_in_memory_and_on_disk(measured, monkeypatch):
    model = _model()
    calls = []
    real = _network_sde._fused_is_faster

    def counting(model, batch):
        calls.append(batch)
        return real(model, batch)

    monkeypatch.setattr(_network_sde, "_fused_is_faster", counting)
    first = _network_sde.fused_update(model, 4)
    assert calls == [4]
    assert isinstance(first, bool)
    assert _network_sde.fused_update(model, 4) == first
    assert calls == [4]
    stored = json.loads((measured / "choices.json").read_text())
    (key,) = stored
    assert key.startswith(_tuning.machine())
    assert "n=16 k=3 m=3 B=4 float32" in key
    assert stored[key] == first
    monkeypatch.setattr(_tuning, "_chosen", {})  # a new process: read back, not measured
    assert _network_sde.fused_update(model, 4) == first
    assert calls == [4]
    assert _network_sde.fused_update(model, 1) is True
    assert calls == [4]
    _network_sde.fused_update(model, 8)  # another shape is measured, and added to the file
    assert calls == [4, 8]
    assert len(json.loads((measured / "choices.json").read_text())) == 2


def test_a_broken_cache_costs_a_measurement_only(measured, monkeypatch):
    (measured / "choices.json").write_text("{not json")
    monkeypatch.setattr(_network_sde, "_fused_is_faster", lambda model, batch: False)
    assert _network_sde.fused_update(_model(), 4) is False
    assert list(json.loads((measured / "choices.json").read_text()).values()) == [False]
    monkeypatch.setenv("DDM_JAX_CACHE_DIR", str(measured / "file" / "under" / "a-file"))
    (measured / "file").write_text("")  # the folder cannot be made: kept in memory only
    monkeypatch.setattr(_tuning, "_chosen", {})
    assert _network_sde.fused_update(_model(), 4) is False


def test_the_default_form_is_fixed_and_writes_nothing(tmp_path, monkeypatch, key):
    """No stopwatch by default: the fused form, never timed, nothing written to a fresh home,
    and the same numbers whatever a previous measurement left in the cache."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("DDM_JAX_UPDATE", "DDM_JAX_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(_tuning, "_chosen", {})

    def no_timing(model, batch):
        raise AssertionError("the default path timed the update")

    monkeypatch.setattr(_network_sde, "_fused_is_faster", no_timing)
    model = _model(32)
    assert _network_sde.fused_update(model, 64) is True
    z0s = ddm.simulation.sample_box(key, ddm.make_target("lorenz"), 8)
    sim = dict(t1=0.05, dt=1e-3, save_dt=0.01)
    fresh = ddm.simulate_network(model, z0s, key=jr.key(1), **sim).zs
    assert list(home.rglob("*")) == []
    assert _tuning._chosen == {}
    # a cache that a measurement filled (the product form for this shape): not read
    what = "fused network update: n=32 k=3 m=3 B=8 float32 tanh readout=False"
    what = f"{_tuning.machine()} | {what}"
    (home / ".cache" / "ddm-jax").mkdir(parents=True)
    (home / ".cache" / "ddm-jax" / "choices.json").write_text(json.dumps({what: False}))
    monkeypatch.setenv("DDM_JAX_UPDATE", "measure")
    assert _network_sde.fused_update(model, 8) is False  # the stored choice, as measure reads it
    monkeypatch.delenv("DDM_JAX_UPDATE")
    monkeypatch.setattr(_tuning, "_chosen", {})
    np.testing.assert_array_equal(ddm.simulate_network(model, z0s, key=jr.key(1), **sim).zs, fresh)
    assert _tuning._chosen == {}


def test_forced_forms_and_a_bad_setting(monkeypatch):
    model = _model()
    monkeypatch.setenv("DDM_JAX_UPDATE", "product")
    assert _network_sde.fused_update(model, 64) is False
    assert _network_sde.network_sde(model, batch=64).params.columns is None
    monkeypatch.setenv("DDM_JAX_UPDATE", "fused")
    assert _network_sde.network_sde(model, batch=64).params.columns is not None
    monkeypatch.setenv("DDM_JAX_UPDATE", "fastest")
    with pytest.raises(ValueError, match=r"Expected DDM_JAX_UPDATE in .*measure.*; got 'fastest'"):
        ddm.simulate_network(model, jnp.zeros((4, 3)), key=jr.key(0), t1=0.01)


def test_simulate_network_runs_the_chosen_form(measured, monkeypatch, key):
    """The plan carries the measured choice, and the ensemble is the forced form's, bitwise."""
    model = _model(32)
    z0s = ddm.simulation.sample_box(key, ddm.make_target("lorenz"), 8)
    sim = dict(t1=0.05, dt=1e-3, save_dt=0.01)
    for choice in (True, False):
        monkeypatch.setattr(_tuning, "_chosen", {})
        monkeypatch.setattr(_network_sde, "_fused_is_faster", lambda *_, c=choice: c)
        monkeypatch.setenv("DDM_JAX_CACHE_DIR", "")
        measured_run = ddm.simulate_network(model, z0s, key=jr.key(1), **sim)
        monkeypatch.setenv("DDM_JAX_UPDATE", "fused" if choice else "product")
        forced = ddm.simulate_network(model, z0s, key=jr.key(1), **sim)
        monkeypatch.setenv("DDM_JAX_UPDATE", "measure")
        np.testing.assert_array_equal(measured_run.zs, forced.zs)


def test_the_probe_times_the_same_update_as_the_ensemble(key):
    """`_update_steps` is the ensemble's Euler update without the noise draws: same numbers."""
    model = _model(32)
    x0s = jax.vmap(model.embed)(ddm.simulation.sample_box(key, ddm.make_target("lorenz"), 4))
    dws = 0.03 * jr.normal(jr.key(2), (4, 7, model.m))
    subspace = _network_sde._subspace(model.Gamma)
    for fused in (True, False):
        sde = _network_sde._network_sde(model, subspace, True, fused, False)

        def euler(x, dw, sde=sde):
            term = _integrate._Term(sde, {"latent": dw}, 1e-3)
            return dfx.Euler().step(term, 0.0, 1e-3, x, None, None, False)[0], None

        expected = jax.vmap(lambda x, d, f=euler: jax.lax.scan(f, x, d)[0])(x0s, dws)
        got = _network_sde._update_steps(model, subspace, x0s, dws, fused=fused)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


COMPILATION_CACHE = """
import os, jax, jax.numpy as jnp
from ddm_jax.cli._common import use_compilation_cache
def where(**env):
    for name in ("DDM_JAX_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR"):
        os.environ.pop(name, None)
    os.environ.update(env)
    jax.config.update("jax_compilation_cache_dir", None)
    use_compilation_cache()
    return jax.config.jax_compilation_cache_dir
print(where(DDM_JAX_CACHE_DIR=""))
print(where(DDM_JAX_CACHE_DIR="elsewhere", JAX_COMPILATION_CACHE_DIR="jaxs"))
print(where(DDM_JAX_CACHE_DIR=os.path.join(os.environ["HERE"], "a-file")))
print(where(DDM_JAX_CACHE_DIR=os.environ["HERE"]))
jax.jit(lambda x: x + 1)(jnp.ones(3))  # a program of a few ms: cached all the same
"""


def test_the_command_line_keeps_compiled_programs(tmp_path):
    """`ddm-jax` keeps XLA's programs in <cache dir>/xla, unless told where or not to."""
    (tmp_path / "a-file").write_text("not a folder")
    env = {**os.environ, "HERE": str(tmp_path)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # the test session's own, set at start-up
    out = subprocess.run([sys.executable, "-c", COMPILATION_CACHE], env=env, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    # none with an empty cache folder or one that cannot be made; JAX's own variable is left
    # to JAX (it applies it at start-up, so this call leaves the setting as it found it)
    assert out == ["None", "None", "None", str(tmp_path / "xla")]
    assert any((tmp_path / "xla").iterdir())
