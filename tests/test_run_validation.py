"""A failed start leaves no trace: every command checks its settings before writing.

For each command: a bad setting fails with a one-line error naming what was expected, the
run folder is byte for byte as it was (or still absent), and the corrected command succeeds.
"""

import warnings
from pathlib import Path

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from helpers import cli

import ddm_jax as ddm

SMALL = dict(neurons=16, steps=40, batch=64, chunk=20, sampler="box", remedy_rounds=0)


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under ``path`` with its bytes (None when the folder does not exist)."""
    if not path.exists():
        return None
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "vdp"
    ddm.runs.train_run("vdp", path, **SMALL)
    return path


def test_cli_typo_in_neurons_leaves_no_folder_and_the_fix_succeeds(tmp_path):
    """The scenario of a new user: a typo, then the corrected command, no --overwrite."""
    out = tmp_path / "a"
    train = ["train", "vdp", "--out", str(out)]
    small = ["--steps", "20", "--batch", "64", "--chunk", "20", "--sampler", "box"]
    small += ["--remedy-rounds", "0"]
    bad = cli(*train, "--neurons", "-3", *small)
    assert bad.returncode == 1, bad.stderr
    assert bad.stderr.startswith("error: Expected the number of neurons n >= k = 2"), bad.stderr
    assert not out.exists()
    good = cli(*train, "--neurons", "16", *small)
    assert good.returncode == 0, good.stderr
    assert (out / "model.eqx").is_file()
    assert "diffusion error" in good.stdout  # reported beside the drift error


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (dict(neurons=-3), "Expected the number of neurons n >= k = 2"),
        (dict(neurons=1), "Expected the number of neurons n >= k = 2"),
        (dict(tau=0.0), "Expected a finite time constant tau > 0"),
        (dict(private_noise=-1.0), "Expected private_noise >= 0"),
        (dict(steps=0), "Expected steps to be a positive integer"),
        (dict(lr=float("nan")), "Expected a finite learning rate"),
        (dict(sampler="grid"), "Expected sampler in"),
        (dict(params={"noise": float("inf")}), "Expected finite values for parameter 'noise'"),
        (dict(params={"nu": 1.0}), "nu"),
    ],
)
def test_train_with_a_bad_setting_writes_nothing(tmp_path, bad, match):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        ddm.runs.train_run("vdp", out, **{**SMALL, **bad})
    assert not out.exists()


def test_failed_overwrite_keeps_the_old_run(finished, tmp_path):
    before = snapshot(finished)
    with pytest.raises(ValueError, match="Expected the number of neurons"):
        ddm.runs.train_run("vdp", finished, overwrite=True, **{**SMALL, "neurons": -3})
    assert snapshot(finished) == before


def test_target_file_with_non_finite_drift_writes_nothing(tmp_path):
    file = tmp_path / "nan_target.py"
    file.write_text(
        "import jax.numpy as jnp\nimport ddm_jax as ddm\n"
        "target = ddm.from_callables(lambda t, z, a: z / 0.0, lambda t, z, a: jnp.eye(2),\n"
        "                            box=([-1.0, -1.0], [1.0, 1.0]))\n"
    )
    out = tmp_path / "run"
    with pytest.raises(ddm.runs.RunError, match="Expected the target's drift f to be finite at z0"):
        ddm.runs.train_run(f"{file}:target", out, **SMALL)
    assert not out.exists()


def test_train_then_fix_without_overwrite(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="Expected a finite time constant"):
        ddm.runs.train_run("vdp", out, **{**SMALL, "tau": -1.0})
    run = ddm.runs.train_run("vdp", out, **SMALL)  # no --overwrite needed
    assert run.model.n == 16


COMMANDS = {
    "simulate": (ddm.runs.simulate_run, dict(solver="rk4"), "Expected solver in",
                 dict(trajectories=2, time=0.5, save_dt=0.1), "simulation.npz"),
    "simulate_grid": (ddm.runs.simulate_run, dict(time=0.5, save_dt=1.0), "at least one state",
                      dict(trajectories=2, time=0.5, save_dt=0.1), "simulation.npz"),
    "evaluate": (ddm.runs.evaluate_run, dict(null_pairs=0), "Expected null_pairs to be an integer",
                 dict(trajectories=4, time=1.0, burn_in=0.5, null_pairs=1, save_dt=0.1),
                 "metrics.json"),
    "evaluate_display": (ddm.runs.evaluate_run, dict(display_trajectories=0),
                         "Expected display_trajectories to be an integer",
                         dict(trajectories=4, time=1.0, burn_in=0.5, null_pairs=1, save_dt=0.1,
                              figures=False), "report.md"),
    "moments": (ddm.runs.moments_run, dict(dt=float("nan")), "Expected finite values for dt",
                dict(trajectories=2, time=1.0, burn_in=0.5), "moments.json"),
    "export": (ddm.runs.export_run, dict(format="onnx"), "Expected format in", {}, "weights.npz"),
}  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_fails_before_writing_and_the_fix_succeeds(finished, command):
    fn, bad, match, good, written = COMMANDS[command]
    before = snapshot(finished)
    with pytest.raises(ValueError, match=match):
        fn(finished, **{**good, **bad})
    assert snapshot(finished) == before
    fn(finished, **good)
    assert (finished / written).is_file()


def test_commands_on_a_folder_without_a_model_write_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for fn in (
        ddm.runs.simulate_run,
        ddm.runs.evaluate_run,
        ddm.runs.moments_run,
        ddm.runs.export_run,
    ):
        with pytest.raises(ddm.runs.RunError, match="is not a ddm-jax run folder"):
            fn(empty)
    assert snapshot(empty) == {}


# ---------------------------------------------------------------- escaping regions


def _blow_up(t, z, args):
    return -z + z**3  # stable at 0; beyond |z_i| = 1 a trajectory reaches infinity in finite time


def escaping_target(z0):
    return ddm.from_callables(_blow_up, lambda t, z, a: 0.1 * jnp.eye(2),
                              box=([-1.6, -1.6], [1.6, 1.6]), z0=z0, name="escaping")  # fmt: skip


def test_attractor_points_drop_escaping_trajectories_and_say_how_many():
    target = escaping_target([0.0, 0.0])
    with pytest.warns(RuntimeWarning, match=r"attractor_points: \d+ of 64 trajectories"):
        pts = ddm.attractor_points(target, key=jr.key(0), num=4096, spread=0.4)
    pts = np.asarray(pts)
    assert pts.shape == (4096, 2)
    assert np.all(np.isfinite(pts))
    assert np.all(np.abs(pts) < 1.0)  # all from the basin of 0
    # more than half the box escapes (|z_i| > 1 in either coordinate): box-uniform starts
    # would fail; starts close to z0 all stay
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet = ddm.attractor_points(target, key=jr.key(0), num=4096, spread=0.1)
    assert not [w for w in caught if "attractor_points" in str(w.message)]
    assert np.all(np.isfinite(np.asarray(quiet)))


def test_attractor_points_fail_clearly_when_most_trajectories_escape():
    target = escaping_target([1.3, 1.3])  # z0 outside the basin
    with pytest.raises(ddm.SimulationDiverged, match=r"64 of 64 diverged .* Give the target a z0"):
        ddm.attractor_points(target, key=jr.key(0), num=1024, spread=0.05)


def test_fit_and_fidelity_on_a_target_whose_box_escapes():
    target = escaping_target([0.0, 0.0])
    config = ddm.TrainConfig(steps=200, batch=256, chunk=100, remedy_rounds=0)
    result = ddm.fit(target, 32, key=jr.key(0), config=config)
    report = ddm.fidelity_report(result.model, target, key=jr.key(1), trajectories=8, t1=2.0,
                                 burn_in=1.0, dt=1e-2, save_dt=0.1, null_pairs=1)  # fmt: skip
    assert np.isfinite(report.metrics["drift_error_attractor"])
    assert np.isfinite(report.metrics["sw"])


def test_overwrite_clears_what_every_command_wrote(tmp_path):
    out = tmp_path / "run"
    ddm.runs.train_run("vdp", out, **SMALL)
    (out / "figures").mkdir(exist_ok=True)
    written = ["analysis.json", "memory.json", "moments.json", "figures/epr.png",
               "figures/memory_recall.png", "figures/latent.png"]  # fmt: skip
    for name in written:
        (out / name).write_text("from the old run")
    (out / "notes.txt").write_text("the user's own")
    ddm.runs.train_run("vdp", out, overwrite=True, **SMALL)
    assert not [name for name in written if (out / name).exists()]
    assert (out / "notes.txt").read_text() == "the user's own"  # only ddm-jax's own files go
