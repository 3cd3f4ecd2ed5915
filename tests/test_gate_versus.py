"""Versus gates (``versus: {policy, improvement, slack, confidence}``): a policy against another
on the same replications (common random numbers). Load-time validation (exit 2, one line
naming file and field), the margin arithmetic in both KPI directions, real short runs that pass
and fail, the CLI's exit code and what the results table, JUnit XML and markdown show."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers_scn import BASELINE, ROOT, one_line, run_cli, write

from ortwin.gate import (
    RESULT_COLUMNS,
    GateError,
    evaluate,
    load_gates,
    run_gates,
    versus_threshold,
)
from ortwin.summary import paired_difference
from policies.manual import ManualPolicy

SETTINGS = {"reps": 3, "seed": 5, "days": 1}


def _gates_file(tmp_path: Path, gates: list[dict], **extra: object) -> Path:
    data = {**SETTINGS, "scenarios": {"base": str(BASELINE)}, **extra,
            "gates": [{"scenario": "base", **g} for g in gates]}
    return write(tmp_path / "g.yaml", yaml.safe_dump(data, sort_keys=False))


def _gate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_cli(["gate", *args, "--progress", "off"])
    out, err = capsys.readouterr()
    return code, out, err


# --- the margin ------------------------------------------------------------------------------


def test_versus_threshold_arithmetic() -> None:
    # lower is better: the difference policy - other must be at most -(gain)
    assert versus_threshold(100.0, "lower", 0.10) == ("<=", pytest.approx(-10.0))
    assert versus_threshold(100.0, "lower", 0.10, 4) == ("<=", pytest.approx(-6.0))
    assert versus_threshold(100.0, "lower", -0.05) == ("<=", pytest.approx(5.0))  # 5% worse ok
    assert versus_threshold(-20.0, "lower", 0.5) == ("<=", pytest.approx(-10.0))  # |other|
    # higher is better: at least +gain
    assert versus_threshold(50.0, "higher", 0.10) == (">=", pytest.approx(5.0))
    assert versus_threshold(50.0, "higher", 0.0, 1) == (">=", pytest.approx(-1.0))
    assert versus_threshold(50.0, "higher", -0.02) == (">=", pytest.approx(-1.0))
    # no improvement asked: exactly zero, never -0.0 (the reports print the sign)
    op, bound = versus_threshold(0.0, "lower", 0.10)
    assert (op, str(bound)) == ("<=", "0.0")
    assert str(versus_threshold(7.0, "higher", 0.0)[1]) == "0.0"


# --- bad input -------------------------------------------------------------------------------

GOOD = {"policy": "manual", "kpi": "overtime_minutes", "versus": {"policy": "as-booked"}}


@pytest.mark.parametrize("change, field", [
    ({"versus": {"policy": "nope"}}, "gates[1].versus.policy: unknown policy 'nope'"),
    ({"versus": {"improvement": 0.1}}, "gates[1].versus.policy: required field is missing"),
    ({"op": "<=", "value": 3},
     "gates[1]: expected either op and value (absolute) or versus, not both"),
    ({"value": 3}, "gates[1]: expected either op and value (absolute) or versus, not both"),
    ({"relative": {"tolerance": 0.03}}, "gates[1]: expected either relative or versus, not both"),
    ({"versus": {"policy": "as-booked", "improvement": 1}},
     "gates[1].versus.improvement: expected a fraction from -1 (inclusive) to 1 (exclusive)"),
    ({"versus": {"policy": "as-booked", "improvement": "100%"}},
     "gates[1].versus.improvement: expected a fraction from -1"),
    ({"versus": {"policy": "as-booked", "improvement": -1.5}},
     "gates[1].versus.improvement: expected a fraction from -1"),
    ({"versus": {"policy": "as-booked", "improvement": "ten%"}},
     "gates[1].versus.improvement: expected a fraction from -1"),
    ({"versus": {"policy": "as-booked", "improvement": True}},
     "gates[1].versus.improvement: expected a fraction from -1"),
    ({"versus": {"policy": "as-booked", "confidence": 1}},
     "gates[1].versus.confidence: expected a level between 0 and 1"),
    ({"versus": {"policy": "as-booked", "confidence": 0}},
     "gates[1].versus.confidence: expected a level between 0 and 1"),
    ({"versus": {"policy": "as-booked", "slack": -1}},
     "gates[1].versus.slack: expected greater than or equal to 0"),
    ({"versus": {"policy": "as-booked", "margin": 3}}, "gates[1].versus.margin: unknown field"),
    ({"versus": {"policy": "manual"}},
     "gates[1].versus.policy: expected a policy other than the gate's own ('manual')"),
    ({"stat": "p90"}, "gates[1].stat: a versus gate compares means"),
    ({"versus": "as-booked"}, "gates[1].versus: expected a valid dictionary"),
])
def test_bad_versus_gate_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               change: dict, field: str) -> None:
    path = _gates_file(tmp_path, [GOOD, {**GOOD, **change}])
    out_dir = tmp_path / "o"
    code, out, err = _gate([str(path), "--out", str(out_dir)], capsys)
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"ortwin: {path}: {field}"), line
    assert out == "" and not out_dir.exists()
    with pytest.raises(GateError) as e:
        load_gates(path)
    assert e.value.file == str(path) and e.value.field == field.split(": ")[0]
    assert "\n" not in str(e.value)


def test_percentages_and_arms(tmp_path: Path) -> None:
    plan = load_gates(_gates_file(tmp_path, [
        {"policy": "manual", "kpi": "utilisation", "op": ">=", "value": 0.1},
        {**GOOD, "versus": {"policy": "as-booked", "improvement": "-5%", "confidence": "90%"}},
        {**GOOD, "kpi": "cases_completed", "policy": "as-booked",
         "versus": {"policy": "manual"}},
        {**GOOD, "kpi": "cases_completed"}]))
    v = plan.spec.gates[1].versus
    assert v is not None and (v.improvement, v.confidence) == (pytest.approx(-0.05), 0.9)
    assert [g.kind for g in plan.spec.gates] == ["absolute", "versus", "versus", "versus"]
    # each scenario x policy once, the other side of a versus gate included
    assert plan.arms() == [("base", "manual"), ("base", "as-booked")]


# --- real short runs -------------------------------------------------------------------------


def test_real_pair_passes_and_fails_and_reports(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """manual plans the booking office's schedule, so against as-booked it is no worse (pass)
    but not 10% better (fail): exit 1, and every report shows both sides and the margin."""
    path = _gates_file(tmp_path, [
        {"name": "manual no worse than as-booked", **GOOD},
        {"name": "manual 10% better than as-booked", **GOOD,
         "versus": {"policy": "as-booked", "improvement": 0.10}},
        {"policy": "manual", "kpi": "cases_completed",
         "versus": {"policy": "as-booked", "slack": 1, "confidence": 0.9}}])
    out_dir = tmp_path / "o"
    code, out, err = _gate([str(path), "--out", str(out_dir)], capsys)
    assert code == 1 and err == "", out
    lines = out.splitlines()
    assert lines[0].startswith("PASS  manual no worse than as-booked: mean of overtime_minutes "
                               "(base): manual ")
    assert lines[1].startswith("FAIL  manual 10% better than as-booked: ")
    assert "paired difference 0 min (0.95 CI [0 min, 0 min], 3 pairs); lower is better, " \
           "required at least 10% better than as-booked: mean difference not <= -" in lines[1]
    assert lines[2].startswith("PASS  cases_completed mean no worse than as-booked with 1 cases "
                               "slack (0.9 CI): ")
    assert "higher is better" in lines[2] and "CI lower bound >= -1 cases" in lines[2]
    assert "3 gates: 2 passed, 1 failed" in out

    res = pd.read_parquet(out_dir / "gate_results.parquet")
    assert list(res.columns) == list(RESULT_COLUMNS)
    assert list(res["kind"]) == ["versus"] * 3 and list(res["versus"]) == ["as-booked"] * 3
    assert list(res["passed"]) == [True, False, True]
    assert list(res["checked"]) == ["mean_diff", "mean_diff", "ci_low"]
    assert list(res["ci_level"]) == pytest.approx([0.95, 0.95, 0.9])
    assert list(res["pairs"]) == [3, 3, 3]
    assert res["mean_diff"].tolist() == pytest.approx([0, 0, 0])
    assert res["actual"].tolist() == pytest.approx(res["versus_actual"].tolist())
    assert res.loc[1, "threshold"] == pytest.approx(-0.10 * res.loc[1, "versus_actual"])
    assert res.loc[2, "op"] == ">=" and res.loc[2, "threshold"] == pytest.approx(-1.0)
    reps = pd.read_parquet(out_dir / "replications.parquet")
    assert sorted(reps.groupby("policy").size().items()) == [("as-booked", 3), ("manual", 3)]

    root = ET.parse(out_dir / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    # one suite per arm that has gates: as-booked is only the other side here
    assert [s.get("name") for s in root.findall("testsuite")] == ["base / manual"]
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["versus"] == "as-booked"
    (fail,) = root.findall("./testsuite/testcase/failure")
    assert "vs as-booked" in fail.get("message") and "not <= -" in fail.get("message")

    md = (out_dir / "gates.md").read_text()
    assert md.startswith("## ORTwin gates: g.yaml: 1 of 3 failed")
    assert "### Versus another policy (paired on the same replications)" in md
    assert "| result | scenario | policy | versus | gate | policy mean | versus mean | " \
           "paired difference [CI] | required |" in md
    assert "| actual | threshold | baseline |" not in md  # no absolute or relative gates
    rows = [ln for ln in md.splitlines() if ln.startswith(("| pass |", "| **FAIL** |"))]
    assert len(rows) == 3
    assert rows[1].startswith("| **FAIL** | base | manual | as-booked | manual 10% better")
    assert "0 min [0, 0] (0.95, 3 pairs)" in rows[1] and "| diff <= -" in rows[1]
    assert "| CI low >= -1 cases |" in rows[2]
    assert "### Failures" in md


class _DropsARoom(ManualPolicy):
    """A test double: manual's plan without the first room's cases, so fewer cases complete
    (worse on a higher-is-better KPI) and the suite runs over less (better on a lower one)."""

    name = "drops-a-room"

    def plan_day(self, day, cases, view):
        plan = super().plan_day(day, cases, view)
        first = min(p.room for p in plan) if plan else None
        return [p for p in plan if p.room != first]


@pytest.fixture
def drops_a_room(monkeypatch: pytest.MonkeyPatch) -> str:
    from ortwin.registry import POLICIES

    monkeypatch.setitem(POLICIES, _DropsARoom.name, _DropsARoom)
    return _DropsARoom.name


def test_direction_follows_the_kpi_registry(tmp_path: Path, drops_a_room: str) -> None:
    """The same sign of difference passes on a lower-is-better KPI and fails on a
    higher-is-better one, and swapping the two policies swaps the verdicts."""
    lazy, man = drops_a_room, "manual"

    def vs(pol: str, other: str, kpi: str, **v: object) -> dict:
        return {"policy": pol, "kpi": kpi, "versus": {"policy": other, **v}}

    plan = load_gates(_gates_file(tmp_path, [
        vs(lazy, man, "overtime_minutes"),                       # lower: less overtime, pass
        vs(man, lazy, "overtime_minutes"),                       # fail
        vs(lazy, man, "cases_completed"),                        # higher: fewer cases, fail
        vs(man, lazy, "cases_completed"),                        # pass
        vs(lazy, man, "cases_completed", slack=1),               # one case fewer allowed: pass
        vs(lazy, man, "cases_completed", improvement=-0.10),     # 10% fewer allowed: pass
        vs(man, lazy, "cases_completed", improvement=0.10),      # 10% more asked: fail
        vs(lazy, man, "overtime_minutes", confidence=0.95),      # the CI reaches worse: fail
        vs(lazy, man, "utilisation"),                            # higher: fail
    ]))
    report = run_gates(plan)
    reps = report.replications
    d_ot = paired_difference(reps, "overtime_minutes", lazy, man)
    d_cc = paired_difference(reps, "cases_completed", lazy, man)
    assert d_ot[0] < 0 < d_ot[2]  # less overtime on average, but the CI includes 0
    assert d_cc[0] == pytest.approx(-1.0)  # one case fewer in every replication
    assert [r.passed for r in report.results] == [True, False, False, True, True, True, False,
                                                  False, False]
    r = report.results
    assert r[0].mean_diff == pytest.approx(d_ot[0]) and r[1].mean_diff == pytest.approx(-d_ot[0])
    assert (r[0].ci_low, r[0].ci_high) == pytest.approx(d_ot[1:])
    assert [x.op for x in r] == ["<=", "<=", ">=", ">=", ">=", ">=", ">=", "<=", ">="]
    assert r[7].checked == "ci_high" and r[7].threshold == 0.0
    man_cases = float(reps.loc[reps["policy"] == man, "cases_completed"].mean())
    assert r[5].threshold == pytest.approx(-0.10 * man_cases)
    assert r[6].threshold == pytest.approx(0.10 * (man_cases - 1))
    assert r[6].versus_actual == pytest.approx(man_cases - 1)


def test_evaluate_needs_the_replications_for_versus_gates(tmp_path: Path) -> None:
    plan = load_gates(_gates_file(tmp_path, [GOOD]))
    with pytest.raises(ValueError, match="versus gates need the replications"):
        evaluate(plan, pd.DataFrame(columns=["scenario", "policy", "kpi", "mean"]))


# --- the shipped release gates ---------------------------------------------------------------


def test_release_gates_pit_ml_cpsat_against_manual() -> None:
    plan = load_gates(ROOT / "gates" / "release.yaml")
    versus = {(g.scenario, g.kpi) for g in plan.spec.gates
              if g.versus is not None and g.policy == "ml-cpsat" and g.versus.policy == "manual"}
    for scn in ("baseline", "pacu_closed_beds"):
        assert {(scn, k) for k in ("pacu_hold_minutes", "cases_completed")} <= versus
        assert (scn, "overtime_p90_room_day") in versus or (scn, "overtime_minutes") in versus
        assert (scn, "manual") in plan.arms() and (scn, "ml-cpsat") in plan.arms()


def test_release_versus_gates_fail_when_ml_cpsat_loses_its_edge(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ml-cpsat's decisions replaced by manual's (the edge gone, parity everywhere) the
    gate that asks for issue 19's PACU-hold goal fails and the parity gates still hold."""
    from ortwin.registry import POLICIES

    release = ROOT / "gates" / "release.yaml"
    data = yaml.safe_load(release.read_text())
    data["scenarios"] = {k: str((release.parent / v).resolve())
                         for k, v in data["scenarios"].items()}
    data["gates"] = [g for g in data["gates"] if "versus" in g]
    data.pop("baseline")
    path = write(tmp_path / "versus.yaml", yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setitem(POLICIES, "ml-cpsat", POLICIES["manual"])
    report = run_gates(load_gates(path))
    failed = [(r.scenario, r.kpi) for r in report.failures]
    assert failed == [("pacu_closed_beds", "pacu_hold_minutes")]
    assert all(r.mean_diff == 0 for r in report.results)


def test_decision_gates_hold_today_and_fail_without_the_optimiser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """gates/decision.yaml passes on the real ml-cpsat (over the wire of the CLI: exit 0), and
    with ml-cpsat's decisions replaced by manual's every edge gate fails while the parity gates
    on completed cases hold."""
    from ortwin.registry import POLICIES

    decision = ROOT / "gates" / "decision.yaml"
    code, out, _ = _gate([str(decision), "--out", str(tmp_path / "res")], capsys)
    assert code == 0, out
    monkeypatch.setitem(POLICIES, "ml-cpsat", POLICIES["manual"])
    report = run_gates(load_gates(decision))
    failed = {(r.scenario, r.kpi) for r in report.failures}
    assert failed == {("baseline", "overtime_p90_room_day"),
                      ("pacu_closed_beds", "overtime_p90_room_day"),
                      ("pacu_closed_beds", "pacu_hold_minutes")}
