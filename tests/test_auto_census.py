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


def test_auto_census_falls_back_to_the_closed_form_only_when_not_clean():
    vdp = ddm.make_target("vdp")
    # 200 Adam steps leave a 16-neuron VDP network without its cycle: the census is not
    # clean, and the closed form that replaces the drift fit is
    short = ddm.fit(vdp, 16, key=jr.key(0), config=SMALL)
    assert [(h["stage"], h["clean"]) for h in short.remedy] == [
        ("drift matching", False), ("closed form", True),
    ]  # fmt: skip
    assert short.closed_form["census_fallback"] == "lstsq"
    plan = ddm.training.fit_plan(jr.key(0), SMALL)
    adam = ddm.fit(vdp, 16, key=jr.key(0), config=replace(SMALL, remedy_rounds=0))
    refit, _ = ddm.training.closed_form(
        adam.model, vdp, adam.pool, key=plan.closed_form_key, config=SMALL
    )
    np.testing.assert_array_equal(np.asarray(short.model.W_s), np.asarray(refit.W_s))
    assert short.losses.size == SMALL.steps  # no remedy step
    # a clean census changes nothing: one census, the network as drift matching left it
    clean = ddm.fit(vdp, 32, key=jr.key(0), config=replace(SMALL, method="lstsq"))
    assert [h["stage"] for h in clean.remedy] == ["drift matching"]
    assert clean.remedy[0]["clean"]
    off = ddm.fit(vdp, 32, key=jr.key(0), config=replace(SMALL, method="lstsq", remedy_rounds=0))
    assert off.remedy is None
    np.testing.assert_array_equal(np.asarray(off.model.W_s), np.asarray(clean.model.W_s))
    # an explicit count: no fallback, remedy rounds on the network as it is (the unclean
    # VDP-16 of the first fit, so its compiled programs serve again)
    one = ddm.fit(vdp, 16, key=jr.key(0), config=replace(SMALL, remedy_rounds=1))
    assert [h["stage"] for h in one.remedy] == ["drift matching", "remedy round 1"]
    assert "census_fallback" not in one.closed_form
    assert one.losses.size == SMALL.steps + SMALL.steps // 5


def test_fit_seeds_runs_the_census_per_network():
    vdp = ddm.make_target("vdp")
    results = ddm.fit_seeds(vdp, 16, seeds=[0, 1], config=SMALL)
    assert all(result.remedy is not None for result in results)
    alone = ddm.fit(vdp, 16, key=jr.key(1), config=SMALL)
    assert results[1].closed_form == alone.closed_form
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
        "clean": True, "remedy_rounds_run": 0, "closed_form_fallback": False, "mismatch": 0.0,
        "exponent_error": None,
    }  # fmt: skip
    evaluate = ["evaluate", str(out), "--trajectories", "8", "--time", "20", "--no-figures"]
    result = CliRunner().invoke(app, evaluate)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training_census"] == training["census"]
    report = (out / "report.md").read_text()
    assert "Attractor census after training: clean, no remedy needed." in report
    assert "Trained by closed-form drift matching (32768 fit points), seed 0" in report


@pytest.mark.parametrize("value", ["banana", "-1", "1.5"])
def test_bad_remedy_rounds_is_one_line(value, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "vdp", "--remedy-rounds", value, "--out", str(tmp_path / "r")]
    )
    assert result.exit_code != 0
    assert "remedy-rounds" in result.output or "remedy_rounds" in result.output
    assert not (tmp_path / "r").exists()
