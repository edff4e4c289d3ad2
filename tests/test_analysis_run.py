"""`ddm-jax analyze` / `ddm.runs.analyze_run`: analysis.json and figures of a run folder."""

import json

import pytest
from helpers import cli

import ddm_jax as ddm

MULTIPLICATIVE = """
import jax.numpy as jnp
import ddm_jax as ddm

def drift(t, z, args):
    return -z

def diffusion(t, z, args):
    return 0.2 * jnp.diag(jnp.sqrt(1 + z**2))

noisy = ddm.from_callables(drift, diffusion, box=([-2.0, -2.0], [2.0, 2.0]), name="noisy")
"""
SMALL = ["--trajectories", "4", "--time", "2", "--burn-in", "1", "--dt", "0.002", "--cells", "20"]


def snapshot(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def vdp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vdp-16"
    ddm.runs.train_run(
        "vdp", out, neurons=16, steps=200, batch=64, chunk=50, checkpoint_every=0.0, remedy_rounds=0
    )  # fmt: skip  (the closed-form fallback: larger weights)
    return out


def test_failed_start_leaves_the_folder_then_the_corrected_command_succeeds(vdp_run):
    before = snapshot(vdp_run)
    with pytest.raises(ValueError, match="trajectories to be an integer >= 2"):
        ddm.runs.analyze_run(vdp_run, trajectories=1)
    with pytest.raises(ValueError, match="finite"):
        ddm.runs.analyze_run(vdp_run, time=float("nan"))
    assert snapshot(vdp_run) == before
    out = ddm.runs.analyze_run(vdp_run, trajectories=4, time=2.0, burn_in=1.0, dt=2e-3, cells=20)
    written = json.loads((vdp_run / "analysis.json").read_text())
    assert written["entropy_production"] == json.loads(json.dumps(out["entropy_production"]))
    for name in ("energy_fields", "epr", "explained_variance", "recovered"):
        assert (vdp_run / "figures" / f"{name}.png").stat().st_size > 1000
    assert written["subspace"]["gap"] < 1e-6
    assert written["settings"]["starts"] == "pool.npy"  # on the attractor, not the box
    assert written["hopfield"]["symmetric_max_rise"] <= 1e-4 * abs(
        written["hopfield"]["energy_start"]
    )
    for who in ("target", "network"):
        for how in ("samples", "trajectories"):
            epr = written["entropy_production"][who][how]
            assert epr["stderr"] > 0
            assert epr["low"] < epr["value"] < epr["high"]


def test_analyze_starts_on_the_attractor(vdp_run, tmp_path):
    """The EPR ensemble starts from the run's attractor pool (else fresh attractor points),
    with enough trajectories and burn-in by default: box starts biased Lorenz's EPR low."""
    import inspect

    import jax.random as jr
    import numpy as np

    from ddm_jax.runs._analyze import _starts

    defaults = inspect.signature(ddm.runs.analyze_run).parameters
    assert defaults["trajectories"].default == 128
    assert defaults["burn_in"].default == 10.0
    target = ddm.make_target("vdp")
    pool = np.load(vdp_run / "pool.npy")
    z0s, source = _starts(vdp_run, target, 16, jr.key(0))
    assert source == "pool.npy"
    assert z0s.shape == (16, 2)
    assert all(np.any(np.all(pool == z, axis=1)) for z in np.asarray(z0s))
    z0s, source = _starts(tmp_path, target, 4, jr.key(0))  # no pool: attractor points
    assert source == "attractor_points"
    assert np.all(np.abs(np.asarray(z0s)) < 4)  # near the limit cycle (radius about 2)


def test_entropy_production_of_ou_against_the_exact_value(tmp_path):
    """The target's EPR by both estimators, as `analyze_run` measures it, within 4 standard
    errors of the exact OU value, and the standard error small enough for that to matter."""
    out = tmp_path / "ou-8"
    ddm.runs.train_run("ou", out, neurons=8, steps=50, batch=64, chunk=50, sampler="box")
    result = ddm.runs.analyze_run(out, trajectories=16, time=10.0, burn_in=3.0, dt=1e-2,
                                  cells=10, figures=False)  # fmt: skip
    target = ddm.make_target("ou")
    exact = float(
        ddm.analysis.ou_entropy_production(
            target.args["B"], ddm.analysis.diffusion_matrix(target)
        ).epr
    )
    for how in ("samples", "trajectories"):
        epr = result["entropy_production"]["target"][how]
        assert epr["stderr"] < 0.1 * exact, (how, epr, exact)
        assert abs(epr["value"] - exact) < 4 * epr["stderr"], (how, epr, exact)


def test_cli_analyze_one_line_errors(tmp_path):
    # (the success path of the command is `analyze_run`, tested above; `ddm-jax analyze --help`
    # lists it)
    proc = cli("analyze", "--help")
    assert proc.returncode == 0
    assert "analysis.json" in proc.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("analyze", empty, *SMALL)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: ")
    assert "not a ddm-jax run folder" in proc.stderr
    assert list(empty.iterdir()) == []

    (tmp_path / "noisy.py").write_text(MULTIPLICATIVE)
    out = tmp_path / "noisy-8"
    ddm.runs.train_run(f"{tmp_path / 'noisy.py'}:noisy", out, neurons=8, steps=50, batch=32,
                  chunk=50, noise_steps=50, checkpoint_every=0.0)  # fmt: skip
    before = snapshot(out)
    proc = cli("analyze", out, *SMALL)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "additive (constant) noise" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out) == before
