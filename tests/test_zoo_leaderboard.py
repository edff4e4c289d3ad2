"""The zoo's leaderboard (benchmarks/zoo.py): which run a flow's row is, and what it counts.

Pure functions of cached rows: no flow is embedded here.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def zoo(monkeypatch_module):
    monkeypatch_module.syspath_prepend(str(BENCHMARKS))  # zoo.py imports its sibling _results
    spec = importlib.util.spec_from_file_location("zoo_under_test", BENCHMARKS / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp
        sys.modules.pop("_results", None)


def _row(system="Flow", n=256, error=0.001, **census):
    chaotic = dict(census_chaotic_target=1.0, census_lyapunov_target=1.0,
                   census_lyapunov_network=1.05, census_mismatch=0.0,
                   census_target_mismatch=0.0)  # fmt: skip
    return {"system": system, "n": n, "dim": 3, "status": "ok", "method": "lstsq",
            "drift_error_attractor": error, "sw": 0.01,
            "sw_null": 0.01} | chaotic | census  # fmt: skip


def test_a_chaotic_targets_exponent_agrees_within_ten_percent(zoo):
    assert zoo.exponent_agrees(_row(census_lyapunov_network=1.09))
    assert not zoo.exponent_agrees(_row(census_lyapunov_network=1.11))
    assert not zoo.exponent_agrees(_row(census_lyapunov_network=0.89))
    assert not zoo.exponent_agrees(_row(census_lyapunov_network=float("nan")))


def test_a_non_chaotic_target_agrees_by_the_class_of_its_orbits(zoo):
    # a limit cycle: exponents near zero, where 10% means nothing; the network's orbits must
    # land in the target's class at least as often as the target's own do
    cycle = dict(census_chaotic_target=0.0, census_lyapunov_target=float("nan"),
                 census_target_mismatch=0.0625)  # fmt: skip
    assert zoo.exponent_agrees(_row(**cycle, census_mismatch=0.0625))
    assert not zoo.exponent_agrees(_row(**cycle, census_mismatch=0.09375))


def test_method_labels_the_fit_points(zoo):
    assert zoo.method_of({}) == "adam"  # the first runs, before --method
    assert zoo.method_of({"method": "lstsq", "attractor_fraction": 0.5}) == "lstsq"
    labelled = zoo.method_of({"method": "lstsq", "attractor_fraction": 1.0})
    assert labelled == "lstsq-attractor"
    assert zoo.method_of({"method": labelled, "attractor_fraction": 1.0}) == labelled


def test_a_flows_row_is_its_smallest_n_reaching_one_percent_with_the_exponent_agreeing(zoo):
    rows = [
        _row(n=256, error=0.002, census_lyapunov_network=1.5),  # reaches, exponent off
        _row(n=1024, error=0.004, sw=0.03),  # reaches, exponent agrees, SW 3x its null
        _row(system="Other", n=256, error=0.003, census_lyapunov_network=1.5),
        _row(system="Missed", n=256, error=0.05),
    ]
    board, table = zoo.leaderboard(rows)
    row = {e["system"]: e["row"]["n"] for e in board}
    assert row == {"Flow": 1024, "Other": 256, "Missed": 256}
    assert [e["reached"] for e in board] == [True, False, True]  # Flow, Missed, Other
    text = zoo.summary(rows, board)
    assert "3 systems attempted" in text
    assert "2 reach 1% drift error on the attractor, 1 of them with the network's exponent" in text
    assert "and 0 of those with the sliced Wasserstein distance" in text
    assert "| Flow | 3 | 1.000, - | 1024 |" in table
