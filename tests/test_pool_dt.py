"""`TrainConfig.pool_dt`: the Euler step of the attractor pool, wherever a pool is built.

Every caller of `attractor_points` is checked with a stand-in that records the step it is
given and stops there (no simulation, no compilation). The target is a stiff linear one
(drift ``-250 z``), stable under Euler at the default step 1e-3 (factor 0.75 a step) and
escaping at 1e-2 (factor -1.5): the case the setting is for.
"""

import json
import re
from types import SimpleNamespace

import jax.numpy as jnp
import jax.random as jr
import pytest
from helpers import cli

import ddm_jax as ddm
from ddm_jax.runs import TrainedRun
from ddm_jax.training import TrainConfig, refine_attractors, remedy_settings

STIFF = """
import jax.numpy as jnp
import ddm_jax as ddm

stiff = ddm.from_callables(
    lambda t, z, args: -250.0 * z, lambda t, z, args: 0.5 * jnp.eye(2),
    box=([-0.1, -0.1], [0.1, 0.1]), name="stiff",
)
"""
COARSE = 1e-2  # Euler's factor 1 - 250 dt = -1.5: the pool's runs would blow up
SMALL = dict(method="lstsq", lstsq_points=256, remedy_rounds=0)
CALLERS = ["training._matching", "training._remedy", "fidelity._fidelity", "fidelity._census",
           "runs._train"]  # fmt: skip


def stiff():
    return ddm.from_callables(
        lambda t, z, args: -250.0 * z, lambda t, z, args: 0.5 * jnp.eye(2),
        box=([-0.1, -0.1], [0.1, 0.1]), name="stiff",
    )  # fmt: skip


@pytest.fixture
def steps(monkeypatch):
    """The steps `attractor_points` is called with; each call raises `SimulationDiverged`."""
    seen = []

    def stand_in(target, *, key, dt=1e-3, **kwargs):
        seen.append(dt)
        raise ddm.SimulationDiverged(f"stand-in pool at dt={dt}")

    for module in CALLERS:
        monkeypatch.setattr(f"ddm_jax.{module}.attractor_points", stand_in)
    return seen


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf"), True, "1e-3"])
def test_a_bad_pool_dt_says_what_was_expected(bad):
    message = f"Expected a finite pool_dt > 0 (time units); got {bad!r}."
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        TrainConfig(pool_dt=bad)
    assert str(err.value) == message


def test_pool_dt_round_trips_and_defaults_to_today():
    assert TrainConfig().pool_dt == 1e-3
    config = TrainConfig(pool_dt=1e-4)
    assert config.to_dict()["pool_dt"] == 1e-4
    assert TrainConfig(**json.loads(json.dumps(config.to_dict()))) == config
    run = lambda train: SimpleNamespace(config={"settings": {"train": train}})
    assert TrainedRun.pool_dt.fget(run({"pool_dt": 1e-4})) == 1e-4
    assert TrainedRun.pool_dt.fget(run({})) == 1e-3  # a run folder from before the setting


def test_every_pool_is_built_at_pool_dt(steps):
    target, config = stiff(), TrainConfig(pool_dt=COARSE, **SMALL)
    model = ddm.init_network(target, 8, key=jr.key(0))
    pool = jnp.zeros((64, 2))  # given: the remedy's census still draws its starts
    calls = [
        lambda: ddm.fit(target, 8, key=jr.key(0), config=config),
        lambda: ddm.fit_seeds(target, 8, seeds=[0, 1], config=config),
        lambda: remedy_settings(TrainConfig(pool_dt=COARSE), target, key=jr.key(0)),
        lambda: refine_attractors(model, target, key=jr.key(0), config=config, pool=None),
        lambda: refine_attractors(model, target, key=jr.key(0), config=config, pool=pool),
        lambda: ddm.fidelity_report(model, target, key=jr.key(1), pool_dt=COARSE),
        lambda: ddm.attractor_census(model, target, key=jr.key(2), pool_dt=COARSE),
    ]
    for call in calls:
        with pytest.raises(ddm.SimulationDiverged, match="stand-in"):
            call()
    assert steps == [COARSE] * len(calls)


def test_the_command_line_takes_pool_dt(steps, tmp_path):
    (tmp_path / "stiff.py").write_text(STIFF)
    proc = cli("train", "stiff.py:stiff", "--pool-dt", "0.002", "--neurons", "8", cwd=tmp_path)
    assert proc.returncode != 0
    assert "stand-in pool at dt=0.002" in proc.stderr, proc.stderr
    assert steps == [0.002]
    proc = cli("train", "stiff.py:stiff", "--pool-dt", "0", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Expected a finite pool_dt > 0 (time units); got 0.0." in proc.stderr
