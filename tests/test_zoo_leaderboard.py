"""The zoo's leaderboard (benchmarks/zoo.py): which run a flow's row is, and what it counts.

Pure functions of cached rows (no flow is embedded here), and the drift errors a row keeps
when its report's noisy ensemble fails.
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


def _board(zoo, rows):
    """Which run each system's row is, whether it reached 1%, the table and the summary."""
    board, table = zoo.leaderboard(rows)
    reached = {e["system"]: e["reached"] for e in board}
    return board, reached, table, zoo.summary(rows, board)


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
    board, reached, table, text = _board(zoo, rows)
    assert {e["system"]: e["row"]["n"] for e in board} == {"Flow": 1024, "Other": 256,
                                                           "Missed": 256}  # fmt: skip
    assert reached == {"Flow": True, "Missed": False, "Other": True}
    assert "3 systems attempted" in text
    assert "2 reach 1% drift error on the attractor, 1 of them with the network's exponent" in text
    assert "and 0 of those with the sliced Wasserstein distance" in text
    assert "| Flow | 3 | 1.000, - | 1024 |" in table


def test_a_row_whose_noisy_ensemble_diverged_keeps_its_drift_errors_and_census(zoo):
    """Only the noisy statistics are missing: the row reaches 1% and is not a failure."""
    failed = dict(status="failed", stage="fidelity", reason="The target's simulation diverged")
    partial = {k: v for k, v in _row(system="Conservative", **failed).items()
               if k not in ("sw", "sw_null")}  # fmt: skip
    missed = _row(system="Failed", error=float("nan"), **failed)
    rows = [partial, missed, _row()]
    _, reached, table, text = _board(zoo, rows)
    assert reached == {"Conservative": True, "Failed": False, "Flow": True}
    assert "| ok; no noisy statistics: The target's simulation diverged |" in table
    assert "2 reach 1% drift error on the attractor, 2 of them with the network's exponent" in text
    assert "and 1 of those with the sliced Wasserstein" in text
    assert "(1 of the 2 without noisy statistics" in text
    assert "failures by stage (of the systems that do not reach 1%): fidelity 1." in text


def test_drift_errors_are_the_reports_own(zoo):
    """A row without its report keeps the numbers the report gives: same keys, same points."""
    import jax.random as jr

    import ddm_jax as ddm

    vdp = ddm.make_target("vdp")
    config = ddm.TrainConfig(method="lstsq", lstsq_points=2048, remedy_rounds=0)
    model = ddm.fit(vdp, 16, key=jr.key(0), config=config).model
    report = ddm.fidelity_report(model, vdp, key=jr.key(1), trajectories=8, t1=1.0, burn_in=0.5,
                                 null_pairs=1, deterministic=False)  # fmt: skip
    alone = zoo.drift_errors(model, vdp, jr.key(1), 1, ddm.simulation.POOL_DT)
    assert alone == {k: report.metrics[k] for k in ("drift_error_attractor", "drift_error_box")}
