"""`memory_run` and ``ddm-jax memory``: every check before writing; a corrected start works."""

import json

import pytest
from helpers import cli

import ddm_jax as ddm

TINY = dict(
    neurons=16, steps=200, batch=64, chunk=50, checkpoint_every=0.0, sampler="box", remedy_rounds=0
)
SMALL = dict(trials=2, trajectories=4, time=3.0, burn_in=1.0, dt=0.01)
SMALL_ARGS = ["--trials", "2", "--trajectories", "4", "--time", "3", "--burn-in", "1"]
SMALL_ARGS += ["--dt", "0.01"]


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    ddm.runs.train_run("wells", root / "wells-16", **TINY)
    ddm.runs.train_run("vdp", root / "vdp-16", **TINY)
    return root


def test_every_check_comes_before_writing(runs):
    folder = runs / "wells-16"
    before = _snapshot(folder)
    with pytest.raises(ValueError, match=r"Expected trials to be an integer >= 1; got 0"):
        ddm.runs.memory_run(folder, **{**SMALL, "trials": 0})
    with pytest.raises(ValueError, match=r"Expected dt > 0 and 0 <= burn_in < time"):
        ddm.runs.memory_run(folder, **{**SMALL, "burn_in": 5.0})
    with pytest.raises(ValueError, match="Expected finite values for time; got nan"):
        ddm.runs.memory_run(folder, **{**SMALL, "time": float("nan")})
    with pytest.raises(ValueError, match="Expected seed to be an integer >= 0; got -1"):
        ddm.runs.memory_run(folder, **{**SMALL, "seed": -1})
    with pytest.raises(ddm.runs.RunError, match="holds a 'vdp' run; the memory experiments need"):
        ddm.runs.memory_run(runs / "vdp-16", **SMALL)
    with pytest.raises(ddm.runs.RunError, match="is not a ddm-jax run folder"):
        ddm.runs.memory_run(runs / "missing", **SMALL)
    assert _snapshot(folder) == before


def test_cli_failed_start_then_corrected_command(runs):
    folder = runs / "wells-16"
    before = _snapshot(folder)
    proc = cli("memory", folder, *SMALL_ARGS[:-2], "--dt", "-1")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: Expected dt > 0 and 0 <= burn_in < time; got dt=-1.0, burn_in=1.0, time=3.0."
    ]
    proc = cli("memory", runs / "vdp-16", *SMALL_ARGS)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "memory experiments need a target of the wells family" in proc.stderr
    assert _snapshot(folder) == before
    proc = cli("memory", folder, *SMALL_ARGS)
    assert proc.returncode == 0, proc.stderr
    assert "preferred-direction fraction" in proc.stdout
    stored = json.loads((folder / "memory.json").read_text())
    # a gradient flow: exact EPR 0, printed beside the estimate with the bias
    for side in ("target", "network"):
        cyc = stored["cycling"][side]
        assert cyc["epr_exact"] == 0.0
        assert cyc["epr_bias"] == cyc["epr"] - cyc["epr_exact"]
    assert proc.stdout.count("exact value 0: the estimate is") == 2
    assert stored["system"] == "wells"
    assert stored["settings"] == {**SMALL, "seed": 0}
    assert set(stored["cycling"]) == {"target", "network"}
    assert len(stored["switching"]["network"]["x"]) == 7
    for name in ddm.runs.MEMORY_FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 1000
