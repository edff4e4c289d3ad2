"""The command line and run folders on tiny sizes.

The first training and the SIGTERM test run ``python -m ddm_jax.cli`` in a subprocess (the
entry point, a signal); the other commands run in this process through the same app
(`helpers.cli`), which keeps the suite's run-time checks on and its compilations shared.

Every subcommand, resume after SIGTERM (bitwise equal to an uninterrupted run), a
user-defined target file, and each bad input with its one-line message. The reference for
"uninterrupted" is `ddm.fit` with the same settings; the first test checks that the CLI
reproduces it bit for bit.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.random as jr
import numpy as np
import pytest
from helpers import cli, cli_ok
from test_plotting import assert_not_blank

import ddm_jax as ddm

TINY = ["--neurons", "16", "--steps", "200", "--batch", "64", "--chunk", "50"]
TINY += ["--remedy-rounds", "0"]  # the census after training has its own tests
TINY_CONFIG = ddm.TrainConfig(steps=200, batch=64, chunk=50, remedy_rounds=0)
EVAL = ["--trajectories", "8", "--time", "3", "--burn-in", "1", "--dt", "0.01"]
EVAL += ["--null-pairs", "2"]


ok = cli_ok


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_same_model(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vdp-16"
    proc = ok("train", "vdp", *TINY, "--out", out, "--checkpoint-every", "0", subprocess_=True)
    assert "trained vdp in 16 neurons" in proc.stdout
    return out


def test_systems_lists_every_registered_target():
    proc = ok("systems")
    for name in ddm.SYSTEMS:
        assert name in proc.stdout
    assert "sigma=10" in proc.stdout
    assert "512" in proc.stdout


def test_train_writes_a_self_describing_run_equal_to_fit(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["system"] == "vdp"
    assert config["settings"]["neurons"] == 16
    assert config["settings"]["train"] == TINY_CONFIG.to_dict()
    assert config["settings"]["target"]["params"] == {"mu": 1.0, "noise": 0.3}
    assert config["environment"]["jax"] == jax.__version__
    assert config["environment"]["device"].startswith("cpu")
    assert {"checkpoint.eqx", "model.eqx", "losses.npz", "training.json", "pool.npy"} <= {
        p.name for p in trained.iterdir()
    }
    assert not [p for p in trained.iterdir() if p.name.startswith(".")]  # no temporary files
    fit = ddm.fit(ddm.make_target("vdp"), 16, key=jr.key(0), config=TINY_CONFIG)
    run = ddm.runs.load_run(trained)
    assert_same_model(run.model, fit.model)
    np.testing.assert_array_equal(run.losses, fit.losses)
    assert run.training["steps"] == 200


def test_sigterm_then_resume_is_bitwise_equal_to_uninterrupted(tmp_path):
    out = tmp_path / "run"
    args = ["train", "vdp", "--neurons", "32", "--steps", "6000", "--batch", "512"]
    args += ["--chunk", "100", "--checkpoint-every", "0", "--remedy-rounds", "0", "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ddm_jax.cli", *args], stderr=subprocess.PIPE, text=True, env=env
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "drift step 300/6000" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, "".join(lines) + rest
    assert "Traceback" not in rest
    assert "--resume" in rest
    header = ddm.runs.read_checkpoint_header(out / "checkpoint.eqx")
    assert 300 <= header["step"] < 6000
    assert not (out / "model.eqx").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no half-written files

    ok("train", "vdp", "--out", out, "--resume")  # the settings come from config.json
    config = ddm.TrainConfig(steps=6000, batch=512, chunk=100, remedy_rounds=0)
    fit = ddm.fit(ddm.make_target("vdp"), 32, key=jr.key(0), config=config)
    run = ddm.runs.load_run(out)
    assert_same_model(run.model, fit.model)
    np.testing.assert_array_equal(run.losses, fit.losses)
    # resuming a finished run does nothing
    assert "nothing left to do" in ok("train", "vdp", "--out", out, "--resume").stdout


def test_simulate_saves_target_and_network_side_by_side(trained):
    args = ["--trajectories", "4", "--time", "2", "--dt", "0.01", "--save-dt", "0.05"]
    proc = ok("simulate", trained, *args)
    assert "off-subspace residual" in proc.stdout
    with np.load(trained / "simulation.npz") as sim:
        assert sim["ts"].shape == (41,)
        assert sim["target"].shape == sim["network"].shape == (4, 41, 2)
        assert sim["neurons"].shape == (2, 41, 8)
        assert sim["residual_trace"].shape == (2, 41)
        # the same initial states (the network's read out through E^+, so up to rounding)
        np.testing.assert_allclose(sim["target"][:, 0], sim["network"][:, 0], atol=1e-5)
        assert np.all(np.isfinite(sim["network"]))
        assert float(sim["residual"]) < 1e-4


def test_moments_streams_network_and_target(trained):
    args = ["--trajectories", "4", "--time", "20", "--burn-in", "2", "--dt", "0.01"]
    proc = ok("moments", trained, *args, "--save-dt", "0.1")
    assert "mean error" in proc.stdout
    out = json.loads((trained / "moments.json").read_text())
    assert out["settings"]["burn_in"] == 2.0
    net, ref = out["network"], out["target"]
    assert net["count"] == ref["count"] == 4 * 181  # saves at t = 2.0, 2.1, ..., 20.0
    assert "residual" in net
    assert "residual" not in ref
    assert net["residual"] < 1e-4
    for side in (net, ref):
        cov = np.asarray(side["cov"])
        np.testing.assert_allclose(cov, cov.T, rtol=1e-12)
        assert np.all(np.linalg.eigvalsh(cov) > 0)
    # the reported errors are those of the reported moments
    delta = np.asarray(net["mean"]) - np.asarray(ref["mean"])
    np.testing.assert_allclose(
        out["mean_error"], np.linalg.norm(delta) / np.sqrt(np.trace(ref["cov"])), rtol=1e-9
    )
    # and the Python API writes the same file
    assert (
        ddm.runs.moments_run(trained, trajectories=4, time=20.0, burn_in=2.0, dt=0.01, save_dt=0.1)
        == out
    )


def test_evaluate_writes_metrics_report_figures_and_reproduces(trained, tmp_path):
    proc = ok("evaluate", trained, *EVAL)
    assert "| SW ratio to null |" in proc.stdout
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["settings"]["trajectories"] == 8
    for name in ("drift_error_box", "drift_error_attractor", "sw", "sw_null", "residual"):
        assert metrics["metrics"][name] is not None
    assert "period_target" in metrics["metrics"]  # per-system extras for vdp
    report = (trained / "report.md").read_text()
    assert "| limit-cycle period |" in report
    assert "figures/latent.png" in report
    for name in ("latent", "neurons", "drift_field", "loss", "marginals", "residual", "census"):
        assert_not_blank(trained / "figures" / f"{name}.png")
    assert metrics["metrics"]["census_mismatch"] is not None  # vdp: a limit cycle
    assert "| census: orbit SW / spread |" in report
    # the Python API mirrors the CLI and reproduces metrics.json exactly
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    ddm.runs.evaluate_run(
        copy, trajectories=8, time=3.0, burn_in=1.0, dt=0.01, null_pairs=2, figures=False
    )
    assert (copy / "metrics.json").read_bytes() == (trained / "metrics.json").read_bytes()


def test_export_and_info(trained):
    ok("export", trained, "--format", "npz")
    weights = ddm.load_weights(trained / "weights.npz")
    model = ddm.load_model(trained / "model.eqx")
    np.testing.assert_array_equal(weights["Gamma"], model.Gamma)
    assert str(weights["system"]) == "vdp"
    # the network rebuilt from the interchange file, also from the SPEC's arrays alone
    spec_only = {k: weights[k] for k in ("Gamma", "W_s", "b", "embed", "offset", "tau", "noise",
                                         "activation", "system")}  # fmt: skip
    for arrays in (weights, spec_only):
        rebuilt = ddm.io.model_from_weights(arrays)
        np.testing.assert_allclose(rebuilt.W_s, model.W_s)
        np.testing.assert_allclose(rebuilt.centre, model.centre, atol=1e-5)
        np.testing.assert_allclose(rebuilt.scale, model.scale, rtol=1e-5)
        np.testing.assert_allclose(rebuilt.noise_const, model.noise_const, rtol=1e-4, atol=1e-6)
    proc = ok("info", trained)
    assert "finished" in proc.stdout
    assert "weights" in proc.stdout


USER_TARGET = """
import jax.numpy as jnp
import ddm_jax as ddm

def drift(t, z, args):
    return jnp.stack([z[1], -z[0] - args["gamma"] * z[1]])

def diffusion(t, z, args):  # state-dependent: the noise read-out is trained too
    return 0.2 * jnp.diag(jnp.sqrt(1 + z**2))

my_target = ddm.from_callables(
    drift, diffusion, box=([-3.0, -3.0], [3.0, 3.0]), args={"gamma": 0.5}, name="damped"
)

def make(gamma=0.5):
    return ddm.from_callables(drift, diffusion, box=([-3.0, -3.0], [3.0, 3.0]),
                              args={"gamma": gamma}, name="damped")
"""


def test_user_target_file(tmp_path):
    (tmp_path / "mymodule.py").write_text(USER_TARGET)
    args = ["--neurons", "16", "--steps", "100", "--batch", "64", "--chunk", "50"]
    proc = ok("train", "mymodule.py:my_target", *args, "--noise-steps", "50", cwd=tmp_path)
    out = tmp_path / "runs" / "damped-16"  # the default folder, named after the target
    assert "trained mymodule.py:my_target" in proc.stdout
    assert (out / "target.py").read_text() == USER_TARGET
    run = ddm.runs.load_run(out)  # rebuilt from the copy, from any working directory
    assert run.model.noise_readout is not None
    assert run.noise_losses.shape == (50,)
    # a factory with parameters, through the Python API
    target = ddm.runs.load_target(str(tmp_path / "mymodule.py:make"), {"gamma": 0.1})
    assert float(target.args["gamma"]) == pytest.approx(0.1)


def test_interrupted_noise_phase_resumes_bitwise(tmp_path):
    """Python API: an interrupt in diffusion matching, then resume, equals `fit`."""
    (tmp_path / "mymodule.py").write_text(USER_TARGET)
    system = str(tmp_path / "mymodule.py:my_target")
    settings = dict(neurons=8, steps=100, batch=32, chunk=25, noise_steps=100, sampler="box")

    def stop(progress):
        if progress.phase == "noise" and progress.step == 50:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        ddm.runs.train_run(system, out, progress=stop, checkpoint_every=1e9, **settings)
    header = ddm.runs.read_checkpoint_header(out / "checkpoint.eqx")
    assert (header["phase"], header["step"]) == ("noise", 50)  # saved on the interrupt
    run = ddm.runs.train_run(system, out, resume=True)
    config = ddm.TrainConfig(steps=100, batch=32, chunk=25, noise_steps=100, sampler="box")
    target = ddm.runs.load_target(system)
    fit = ddm.fit(target, 8, key=jr.key(0), config=config)
    assert_same_model(run.model, fit.model)
    np.testing.assert_array_equal(run.noise_losses, fit.noise_losses)


WRONG_DIMS = """
import jax.numpy as jnp
import ddm_jax as ddm

bad = ddm.from_callables(
    lambda t, z, args: jnp.zeros(3), lambda t, z, args: jnp.eye(2), box=([-1, -1], [1, 1])
)
"""


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "nosuch"], ["Unknown system 'nosuch'", "known systems: vdp, lorenz"]),
        (["train", "vdp", "--noise", "nan"], ["Expected a finite number for --noise; got nan"]),
        (["train", "vdp", "--lr", "inf"], ["finite learning rate", "inf"]),
        (["train", "wrong.py:bad"], ["wrong.py:bad", "Expected drift(t, z, args) to return"]),
        (["train", "vdp", "--out", "RUN", "--neurons", "32"],
         ["already holds a different run", "neurons 16 there, 32 asked", "--overwrite"]),
        (["train", "vdp", "--out", "RUN", *TINY], ["already holds this run", "--resume"]),
        (["train", "vdp", "--out", "RUN", "--resume", "--overwrite"], ["at most one of"]),
        (["simulate", "RUN", "--dt", "0.5", "--trajectories", "2"],
         ["non-finite at t =", "in trajectory"]),
        (["evaluate", "nowhere"], ["nowhere is not a ddm-jax run folder"]),
        (["train", "vdp", "--projection", "fa"], ["--projection only with a .npz"]),
        (["moments", "RUN", "--time", "2", "--burn-in", "5"],
         ["Expected 0 <= burn_in <= 2 (the last save); got burn_in=5.0"]),
        (["export", "RUN", "--format", "csv"], ["Expected format in ('npz',); got 'csv'"]),
    ],
)  # fmt: skip
def test_bad_input_gives_one_line_error(args, fragments, trained, tmp_path, monkeypatch):
    """In this process (the other tests here show the same in a subprocess of its own)."""
    (tmp_path / "wrong.py").write_text(WRONG_DIMS)
    monkeypatch.chdir(tmp_path)
    args = [str(trained) if a == "RUN" else a for a in args]
    assert_one_line_error(cli(*args), *fragments)


def test_corrupt_files_are_named(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "model.eqx").unlink()  # an interrupted run: resume reads the checkpoint
    data = (run / "checkpoint.eqx").read_bytes()
    (run / "checkpoint.eqx").write_bytes(data[: len(data) // 2])
    (run / "weights.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert_one_line_error(
        cli("train", "vdp", "--out", run, "--resume"), "checkpoint.eqx", "truncated checkpoint"
    )
    assert_one_line_error(cli("info", run), "checkpoint.eqx", "truncated")
    (run / "checkpoint.eqx").write_bytes(data[:-8] + b"\x00" * 8)  # same length, corrupt
    assert_one_line_error(cli("info", run), "checkpoint.eqx", "checksum mismatch")
    (run / "checkpoint.eqx").write_bytes(data)
    assert_one_line_error(cli("info", run), "weights.npz", "corrupt or truncated")
    shutil.copy(trained / "model.eqx", run / "model.eqx")
    proc = cli("simulate", run, "--weights", run / "weights.npz", "--time", "1")
    assert_one_line_error(proc, "weights.npz", "corrupt or truncated")
