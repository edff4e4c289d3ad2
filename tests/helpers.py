"""Tolerance helpers shared by the tests."""

import jax.random as jr
import numpy as np

import ddm_jax as ddm


def rel_err(a, b) -> float:
    """Relative Frobenius error ||a - b|| / ||b||."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cov_standard_error(cov: np.ndarray, num: int) -> np.ndarray:
    """Standard error of the entries of a sample covariance of ``num`` Gaussian samples."""
    var = np.outer(np.diag(cov), np.diag(cov)) + cov**2
    return np.sqrt(var / num)


def attractor_sample(target, *, key, trajectories=256, t1=20.0, burn_in=10.0, dt=1e-2):
    """Held-out points of the target's stationary regime, ``(trajectories * saves, k)``.

    Trajectories start uniformly in the box (so their phases are spread), run ``burn_in``
    time units and are then saved every ``10 dt``.
    """
    k_init, k_sim = jr.split(key)
    z0s = ddm.simulation.sample_box(k_init, target, trajectories)
    run = ddm.simulate_target(target, z0s, key=k_sim, t1=t1, dt=dt, save_dt=10 * dt)
    first = int(round(burn_in / (10 * dt))) + 1
    return run.zs[:, first:].reshape(-1, target.dim)


def multiplicative_ou():
    """2-d OU with state-dependent noise ``G(z) = diag(0.3 sqrt(1 + z^2))``."""
    import jax.numpy as jnp

    import ddm_jax as ddm

    return ddm.from_callables(
        lambda t, z, args: -z,
        lambda t, z, args: jnp.diag(0.3 * jnp.sqrt(1 + z**2)),
        box=([-2.0, -2.0], [2.0, 2.0]),
        name="multiplicative_ou",
    )


def cli(*args, cwd=None, subprocess_: bool = False):
    """``ddm-jax *args`` as a `subprocess.CompletedProcess` (returncode, stdout, stderr).

    By default in this process, through the app the console script calls (typer's test
    runner): the same commands, errors and one-line messages, without a fresh interpreter
    and fresh compilations per call, and under the suite's run-time checks. With
    ``subprocess_`` in a real ``python -m ddm_jax.cli`` process, for what only a process
    shows (its entry point, exit on a signal).
    """
    import os
    import subprocess
    import sys
    import traceback

    args = [str(a) for a in args]
    if subprocess_:
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        command = [sys.executable, "-m", "ddm_jax.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    from typer.testing import CliRunner

    from ddm_jax.cli import app

    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, args, prog_name="ddm-jax")
    finally:
        os.chdir(here)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # a bug, shown whole
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


def cli_ok(*args, **kwargs):
    """`cli` that must succeed; the failure message is the command's stderr."""
    proc = cli(*args, **kwargs)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc
