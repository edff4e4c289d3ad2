"""The census after drift matching is automatic (``remedy_rounds="auto"``, the default)."""

import json
from dataclasses import replace

import jax.random as jr
import numpy as np
import pytest
from typer.testing import CliRunner

import ddm_jax as ddm
from ddm_jax.cli import app

SMALL = ddm.TrainConfig(steps=200, batch=64, chunk=100)


def test_auto_is_the_default_and_resolves_by_target():
    assert ddm.TrainConfig().remedy_rounds == "auto"
    keys = iter(jr.split(jr.key(0), 8))
    vdp, ou = ddm.make_target("vdp"), ddm.make_target("ou")
    settings = ddm.training.remedy_settings(SMALL, vdp, key=next(keys))
    assert settings.remedy_rounds == ddm.training.AUTO_REMEDY_ROUNDS
    assert settings.remedy_steps == SMALL.steps // 5  # None: a fifth of the drift steps
    assert ddm.training.remedy_settings(SMALL, ou, key=next(keys)) is None  # only fixed points
    assert (
        ddm.training.remedy_settings(replace(SMALL, remedy_rounds=0), vdp, key=next(keys)) is None
    )
    explicit = replace(SMALL, remedy_rounds=2, remedy_steps=7)
    resolved = ddm.training.remedy_settings(explicit, ou, key=next(keys))  # a number: always
    assert (resolved.remedy_rounds, resolved.remedy_steps) == (2, 7)
    # without metadata the census looks at the target's own orbits
    bare = replace(ou, attractor=None)
    assert ddm.training.remedy_settings(SMALL, bare, key=next(keys)) is None
    assert (
        ddm.training.remedy_settings(SMALL, replace(vdp, attractor=None), key=next(keys))
        is not None
    )


def test_auto_census_runs_after_fit_and_remedies_only_when_not_clean():
    lorenz = ddm.make_target("lorenz")
    # 200 steps leave a 16-neuron Lorenz network far from chaotic: the census is not clean
    short = ddm.fit(lorenz, 16, key=jr.key(0), config=SMALL)
    assert short.remedy is not None
    assert short.remedy[0]["round"] == 0
    assert not short.remedy[0]["clean"]
    rounds = len(short.remedy) - 1
    assert 1 <= rounds <= ddm.training.AUTO_REMEDY_ROUNDS
    assert short.losses.size == SMALL.steps + rounds * (SMALL.steps // 5)
    # a closed-form VDP network is clean at once: one census, no remedy step
    vdp = ddm.make_target("vdp")
    clean = ddm.fit(vdp, 32, key=jr.key(0), config=replace(SMALL, method="lstsq"))
    assert [r["round"] for r in clean.remedy] == [0]
    assert clean.remedy[0]["clean"]
    assert clean.losses.size == 0
    # switched off: no census at all
    off = ddm.fit(vdp, 32, key=jr.key(0), config=replace(SMALL, method="lstsq", remedy_rounds=0))
    assert off.remedy is None
    np.testing.assert_array_equal(np.asarray(off.model.W_s), np.asarray(clean.model.W_s))


def test_fit_seeds_runs_the_census_per_network():
    lorenz = ddm.make_target("lorenz")
    results = ddm.fit_seeds(lorenz, 16, seeds=[0, 1], config=SMALL)
    assert all(result.remedy is not None for result in results)
    alone = ddm.fit(lorenz, 16, key=jr.key(1), config=SMALL)
    assert [r["round"] for r in results[1].remedy] == [r["round"] for r in alone.remedy]
    assert results[1].losses.size == alone.losses.size


def test_train_reports_the_census_in_line_training_and_metrics(tmp_path):
    out = tmp_path / "run"
    args = ["train", "vdp", "--neurons", "32", "--method", "lstsq", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "census after drift matching: 0% of starts in another class" in result.output
    assert "attractor census: clean, no remedy needed." in result.output
    training = json.loads((out / "training.json").read_text())
    assert training["remedy_rounds"] == "auto"
    assert training["census"] == {
        "clean": True, "remedy_rounds_run": 0, "mismatch": 0.0, "exponent_error": None,
    }  # fmt: skip
    evaluate = ["evaluate", str(out), "--trajectories", "8", "--time", "20", "--no-figures"]
    result = CliRunner().invoke(app, evaluate)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training_census"] == training["census"]
    assert (
        "Attractor census after training: clean (no remedy needed)."
        in (out / "report.md").read_text()
    )


@pytest.mark.parametrize("value", ["banana", "-1", "1.5"])
def test_bad_remedy_rounds_is_one_line(value, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "vdp", "--remedy-rounds", value, "--out", str(tmp_path / "r")]
    )
    assert result.exit_code != 0
    assert "remedy-rounds" in result.output or "remedy_rounds" in result.output
    assert not (tmp_path / "r").exists()
