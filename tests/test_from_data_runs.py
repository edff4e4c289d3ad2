"""``ddm-jax train data.npz --dt``: a run folder learned from recorded trajectories.

The API path (`train_run` with a trajectory file, `evaluate_run` against the held-out data),
the command line once, and failed starts that leave no trace.
"""

import numpy as np
import pytest
import scipy.linalg
from helpers import cli

import ddm_jax as ddm

TINY = dict(neurons=16, steps=200, chunk=100)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """Exact OU samples: 8 trajectories x 30 time units at dt = 0.01."""
    B, dt = np.array([[1.0, 2.0], [-0.5, 1.0]]), 0.01
    A, L = scipy.linalg.expm(-B * dt), np.sqrt(0.25 * dt) * np.eye(2)
    rng = np.random.default_rng(0)
    z = np.zeros((8, 3001, 2))
    for t in range(3000):
        z[:, t + 1] = z[:, t] @ A.T + rng.standard_normal((8, 2)) @ L.T
    path = tmp_path_factory.mktemp("data") / "ou.npz"
    np.savez(path, trajectories=z)
    return path


def test_train_and_evaluate_a_data_run(data_file, tmp_path):
    run = ddm.runs.train_data_run(str(data_file), tmp_path / "run", dt=0.01, **TINY)
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "model.eqx", "losses.npz", "training.json", "data.npz"} <= names
    np.testing.assert_allclose(np.diag(run.training["D"]), 0.125, rtol=0.05)
    loaded = ddm.runs.load_run(tmp_path / "run")
    assert loaded.target.dim == 2
    report = ddm.runs.evaluate_run(tmp_path / "run", trajectories=32, dt=0.01)
    assert isinstance(report, ddm.runs.DataReport)
    m = report.metrics
    assert abs(m["drift_consistency"] - 1) < 0.1  # the residuals are the noise, as fitted
    assert m["diffusion_error_held_out"] < 0.1
    assert np.isfinite(m["sw"])
    assert (tmp_path / "run" / "report.md").read_text().count("drift consistency") == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(), r"Expected the sampling interval: pass --dt"),
        (dict(dt=0.01, neurons=4096), r"at least 10 increments per neuron \(40960"),
        (dict(dt=-0.01), r"Expected a finite sampling interval dt > 0; got -0.01"),
        (dict(dt=0.01, steps=0), r"Expected steps to be a positive integer"),
    ],
)
def test_a_failed_data_start_leaves_no_trace(data_file, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ddm.runs.train_data_run(str(data_file), tmp_path / "run", **{**TINY, **kwargs})
    assert not (tmp_path / "run").exists()


def test_train_run_refuses_a_trajectory_file(data_file, tmp_path):
    with pytest.raises(ValueError, match=r"got the trajectory file .*train_data_run"):
        ddm.runs.train_run(str(data_file), tmp_path / "run", **TINY)
    assert not (tmp_path / "run").exists()


def test_cli_train_on_a_data_file(data_file, tmp_path):
    base = ["train", str(data_file)]
    bad = cli(*base, "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0
    assert "error: Expected the sampling interval" in bad.stderr
    assert not (tmp_path / "bad").exists()
    good = cli(*base, "--dt", "0.01", "--neurons", "16", "--steps", "100", "--out", tmp_path / "r")
    assert good.returncode == 0, good.stderr
    assert "learned" in good.stdout
    assert (tmp_path / "r" / "model.eqx").is_file()
