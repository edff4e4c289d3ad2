"""`memory_run`: memory experiments of a trained run folder; checks before writing."""

import json

import pytest

import ddm_jax as ddm

TINY = dict(neurons=16, steps=200, batch=64, chunk=50, checkpoint_every=0.0)
SMALL = dict(trials=2, trajectories=4, time=3.0, burn_in=1.0, dt=0.01)


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    ddm.train_run("wells", root / "wells-16", **TINY)
    ddm.train_run("vdp", root / "vdp-16", **TINY)
    return root


def test_failed_start_leaves_folder_unchanged_then_succeeds(runs):
    folder = runs / "wells-16"
    before = _snapshot(folder)
    with pytest.raises(ValueError, match="Expected trials to be a positive integer; got 0"):
        ddm.memory_run(folder, **{**SMALL, "trials": 0})
    with pytest.raises(ValueError, match=r"Expected dt > 0 and 0 <= burn_in < time"):
        ddm.memory_run(folder, **{**SMALL, "burn_in": 5.0})
    with pytest.raises(ValueError, match="Expected a finite number for time; got nan"):
        ddm.memory_run(folder, **{**SMALL, "time": float("nan")})
    with pytest.raises(ddm.RunError, match="holds a 'vdp' run; the memory experiments need"):
        ddm.memory_run(runs / "vdp-16", **SMALL)
    with pytest.raises(ddm.RunError, match="is not a ddm-jax run folder"):
        ddm.memory_run(runs / "missing", **SMALL)
    assert _snapshot(folder) == before
    out = ddm.memory_run(folder, **SMALL)
    stored = json.loads((folder / "memory.json").read_text())
    assert stored == json.loads(json.dumps(out))
    assert stored["system"] == "wells"
    assert stored["settings"]["trials"] == 2
    assert set(stored["cycling"]) == {"target", "network"}
    assert len(stored["switching"]["network"]["x"]) == 7
    for name in ddm.MEMORY_FIGURES:
        assert (folder / "figures" / f"{name}.png").stat().st_size > 1000
