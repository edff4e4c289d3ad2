"""Errors that say what went wrong: ``--debug`` shows the traceback, a diverging fit to data
names both causes, and NumPy integers count as integers.
"""

import jax
import jax.random as jr
import numpy as np
import pytest
from test_from_data import ou_data
from typer.testing import CliRunner

import ddm_jax as ddm
from ddm_jax.cli import app

FEW = dict(steps=20, chunk=10)


def test_debug_shows_the_traceback(tmp_path):
    args = ["evaluate", str(tmp_path / "nowhere")]
    plain = CliRunner().invoke(app, args, env={"DDM_JAX_DEBUG": ""})
    assert plain.exit_code == 1
    assert plain.stderr.strip().startswith("error: ")
    assert "is not a ddm-jax run folder" in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1
    for how in (["--debug", *args], args):
        env = {"DDM_JAX_DEBUG": "1" if how is args else ""}
        shown = CliRunner().invoke(app, how, env=env)
        assert shown.exit_code == 1
        assert isinstance(shown.exception, ddm.runs.RunError)  # raised, not one line
        assert "error: " not in shown.stderr
    assert "--debug" in CliRunner().invoke(app, ["--help"]).stdout


def test_a_diverging_fit_to_data_names_the_learning_rate_and_the_data():
    data = ou_data(4, 5.0, 0.01)
    config = ddm.TrainConfig(lr=1e20, **FEW)
    with pytest.raises(FloatingPointError, match="diverged") as err:
        ddm.fit_data(data, 0.01, 8, key=jr.key(0), config=config)
    message = str(err.value)
    assert "\n" not in message
    assert "non-finite at step" in message  # what was measured
    assert "learning rate is too large (lr 1e+20" in message  # remedy 1
    assert "noise-free, degenerate" in message  # remedy 2


def test_degenerate_data_name_both_remedies():
    data = ou_data(4, 5.0, 0.01)
    line = np.repeat(data[..., :1], 2, axis=-1)  # on the diagonal: D is singular
    with pytest.raises(ValueError, match="positive definite diffusion") as err:
        ddm.fit_data(line, 0.01, 8, key=jr.key(0), config=ddm.TrainConfig(**FEW))
    message = str(err.value)
    assert "eigenvalues" in message
    assert "loss" in message
    assert "learning rate is too large" in message
    assert "degenerate" in message


def test_numpy_integers_count_as_neurons():
    vdp = ddm.make_target("vdp")
    a = ddm.init_network(vdp, np.int64(16), key=jr.key(0))
    b = ddm.init_network(vdp, 16, key=jr.key(0))
    assert a.n == 16
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="n >= k = 2"):
        ddm.init_network(vdp, np.int64(1), key=jr.key(0))
