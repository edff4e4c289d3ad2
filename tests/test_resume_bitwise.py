"""A resumed training run writes every file as the uninterrupted run does, in both precisions.

One tiny run with all three phases (drift matching, the attractor remedy, noise matching of a
state-dependent diffusion) is interrupted in each phase in turn, resumed each time; every
file of its folder is then compared with the uninterrupted run's. Equal byte for byte:
``target.py``, ``pool.npy``, ``model.eqx`` and the checkpoint's payload. Equal but for what
records the moment or the wall time: ``config.json`` (``created``), ``training.json``
(``finished``, ``train_seconds``), the checkpoint's header (``elapsed``) and ``losses.npz``
(a zip archive whose members carry their write time: compared array by array, dtype
included).

Float64 (``JAX_ENABLE_X64=1``) runs in a subprocess, this file as a script.
"""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import ddm_jax as ddm


def drift(t, z, args):  # van der Pol: a limit cycle, so the census applies
    return jnp.stack([z[1], (1 - z[0] ** 2) * z[1] - z[0]])


def diffusion(t, z, args):  # state-dependent: noise matching runs too
    return 0.2 * jnp.diag(jnp.sqrt(1 + 0.1 * z**2))


# the target file imports its functions from here, so that every run (each loads the file
# anew) shares them and the compiled programs with them
TARGET = """
import ddm_jax as ddm
from test_resume_bitwise import diffusion, drift

cycle = ddm.from_callables(drift, diffusion, box=([-3.0, -4.0], [3.0, 4.0]), name="cycle")
"""
SETTINGS = dict(neurons=8, steps=40, batch=32, chunk=10, noise_steps=20, remedy_rounds=1,
                remedy_steps=10)  # fmt: skip
MOMENT = {"config.json": ("created",), "training.json": ("finished", "train_seconds")}


def _contents(folder: Path) -> dict:
    """Every file of a run folder, as compared: bytes, or what remains of a timed format."""
    out = {}
    for file in sorted(folder.rglob("*")):
        name = str(file.relative_to(folder))
        if file.name == "target.py" or file.is_dir():
            continue  # compared on its own: each run copies it from its own source
        if name in MOMENT:
            data = json.loads(file.read_text())
            for key in MOMENT[name]:
                assert key in data, (name, key)
                data.pop(key)
            out[name] = data
        elif name == "losses.npz":
            with np.load(file) as data:
                out[name] = {k: (data[k].dtype.str, data[k].tobytes()) for k in data.files}
        elif name == "checkpoint.eqx":
            line, _, payload = file.read_bytes().partition(b"\n")
            header = json.loads(line)
            header.pop("elapsed")
            out[name] = (header, payload)
        else:
            out[name] = file.read_bytes()
    return out


def check_resume_in_every_phase(tmp: Path) -> str:
    """Train uninterrupted; then interrupted in drift matching, resumed, interrupted in the
    remedy, resumed, interrupted in noise matching, resumed to the end; compare the folders.
    """
    (tmp / "cycle.py").write_text(TARGET)
    system = f"{tmp / 'cycle.py'}:cycle"
    whole = ddm.runs.train_run(system, tmp / "whole", **SETTINGS)
    assert [h["round"] for h in whole.training["remedy"]] == [0, 1]  # the remedy trained
    assert whole.losses.size == 50  # 40 drift + 10 remedy steps
    expected = _contents(tmp / "whole")
    assert set(expected) == {"config.json", "pool.npy", "checkpoint.eqx", "model.eqx",
                             "losses.npz", "training.json"}  # fmt: skip
    out, phases = tmp / "interrupted", []
    for phase, when in [("drift", 20), ("remedy", 5), ("noise", 10)]:

        def stop(p, phase=phase, when=when):
            if p.phase == phase and p.census is None and p.step >= when:
                raise KeyboardInterrupt

        with contextlib.suppress(KeyboardInterrupt):
            ddm.runs.train_run(system, out, resume=bool(phases), progress=stop,
                               checkpoint_every=1e9, **({} if phases else SETTINGS))  # fmt: skip
            raise AssertionError(f"not interrupted in {phase}")
        header = ddm.runs.read_checkpoint_header(out / "checkpoint.eqx")
        phases.append((header["phase"], header["step"], "remedy" in header))
    # the remedy is not checkpointed half-way: interrupted, it is redone from drift's end
    assert phases == [("drift", 20, False), ("drift", 40, False), ("noise", 10, True)]
    ddm.runs.train_run(system, out, resume=True)
    got = _contents(out)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == expected[name], name
    assert (out / "target.py").read_bytes() == (tmp / "whole" / "target.py").read_bytes()
    return str(whole.losses.dtype)


def test_resume_is_bitwise_in_every_phase_float32(tmp_path):
    assert check_resume_in_every_phase(tmp_path) == "float32"


def test_resume_is_bitwise_in_every_phase_float64(tmp_path):
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, __file__, str(tmp_path)], capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "float64"


if __name__ == "__main__":
    print(check_resume_in_every_phase(Path(sys.argv[1])))
