"""One command at a time per run folder: a held folder is refused naming the holder's pid,
a stale lock (its process gone) is taken over, and the lock goes when the command ends.
"""

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import ddm_jax as ddm
from ddm_jax.cli import app

LOCK = ".ddm-jax.lock"
TINY = dict(neurons=8, steps=20, batch=16, chunk=10, sampler="box", remedy_rounds=0)


@pytest.fixture
def holder():
    """A live process that holds a folder's lock, as a second command would see it."""
    procs = []

    def hold(folder):
        folder.mkdir(parents=True, exist_ok=True)
        code = (
            "import os, sys, time\n"
            f"fd = os.open({str(folder / LOCK)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n"
            "os.write(fd, f'{os.getpid()}\\n'.encode()); os.close(fd)\n"
            "print('held', flush=True); time.sleep(120)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc.pid

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_held_folder_is_refused_naming_the_holder(tmp_path, holder):
    out = tmp_path / "run"
    pid = holder(out)
    with pytest.raises(
        ddm.runs.RunError, match=f"in use by another ddm-jax command \\(process {pid}\\)"
    ):
        ddm.runs.train_run("vdp", out, **TINY)
    assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written
    assert (out / LOCK).read_text().strip() == str(pid)  # the holder's lock is kept
    # the command line: one line naming the pid
    result = CliRunner().invoke(app, ["train", "vdp", "--out", str(out), "--neurons", "8"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert f"process {pid}" in lines[0]


def test_every_writing_command_is_refused(tmp_path, holder):
    out = tmp_path / "run"
    pid = holder(out)
    data = tmp_path / "data.npy"
    np.save(data, np.zeros((2, 100, 2), np.float32))
    calls = [
        lambda: ddm.runs.train_run("vdp", out, resume=True),
        lambda: ddm.runs.train_data_run(data, out, dt=0.01, neurons=8, steps=10),
        lambda: ddm.runs.evaluate_run(out),
        lambda: ddm.runs.simulate_run(out),
        lambda: ddm.runs.moments_run(out),
        lambda: ddm.runs.analyze_run(out),
        lambda: ddm.runs.memory_run(out),
        lambda: ddm.runs.export_run(out),
    ]
    for call in calls:
        with pytest.raises(ddm.runs.RunError, match=f"process {pid}"):
            call()


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK).write_text(f"{dead_pid()}\n")
    run = ddm.runs.train_run("vdp", out, **TINY)
    assert run.training["steps"] == 20
    assert not (out / LOCK).exists()  # released at the end
    ddm.runs.export_run(out)
    assert not (out / LOCK).exists()


def test_the_lock_is_released_on_errors_and_interrupts(tmp_path):
    out = tmp_path / "run"

    def stop(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ddm.runs.train_run("vdp", out, progress=stop, **TINY)
    assert not (out / LOCK).exists()
    with pytest.raises(ddm.runs.RunError, match="already holds this run"):
        ddm.runs.train_run("vdp", out, **TINY)
    assert not (out / LOCK).exists()
    # a failed start into a new folder leaves no folder behind
    missing = tmp_path / "a" / "b"
    with pytest.raises(ValueError, match="learning rate"):
        ddm.runs.train_run("vdp", missing, **{**TINY, "lr": float("nan")})
    assert not (tmp_path / "a").exists()
