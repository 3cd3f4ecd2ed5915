"""The decision-value benchmark (bench/decision_value.py): its goal flags from paired
differences, its table, and a real (tiny) run scored end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import decision_value as dv  # noqa: E402


def _frames(ot: float, hold: float, cases: tuple[float, float, float]):
    summary = pd.DataFrame([
        {"scenario": "s", "policy": "manual", "kpi": "overtime_p90_room_day", "mean": 100.0},
        {"scenario": "s", "policy": "manual", "kpi": "pacu_hold_minutes", "mean": 200.0},
        {"scenario": "s", "policy": "ml-cpsat", "kpi": "overtime_p90_room_day", "mean": 100 + ot},
        {"scenario": "s", "policy": "ml-cpsat", "kpi": "pacu_hold_minutes", "mean": 200 + hold},
    ])
    diff = pd.DataFrame([
        {"scenario": "s", "policy": "ml-cpsat", "kpi": "overtime_p90_room_day", "mean_diff": ot,
         "ci_low": ot - 5, "ci_high": ot + 5},
        {"scenario": "s", "policy": "ml-cpsat", "kpi": "pacu_hold_minutes", "mean_diff": hold,
         "ci_low": hold - 5, "ci_high": hold + 5},
        {"scenario": "s", "policy": "ml-cpsat", "kpi": "cases_completed", "mean_diff": cases[0],
         "ci_low": cases[1], "ci_high": cases[2]},
    ])
    return diff, summary


def test_goals_are_met_only_past_each_threshold() -> None:
    diff, summary = _frames(-31.0, -101.0, (-0.5, -2.0, 1.0))
    row = dv.score(diff, summary, "ml-cpsat").iloc[0]
    assert row.overtime_p90_room_day_met and row.pacu_hold_minutes_met and row.cases_met
    assert row.all_met
    diff, summary = _frames(-29.0, -101.0, (0.0, -1.0, 1.0))  # 29% is short of 30%
    row = dv.score(diff, summary, "ml-cpsat").iloc[0]
    assert not row.overtime_p90_room_day_met and not row.all_met
    diff, summary = _frames(-40.0, -120.0, (-3.0, -5.0, -1.0))  # significantly fewer cases
    row = dv.score(diff, summary, "ml-cpsat").iloc[0]
    assert not row.cases_met and not row.all_met


def test_the_table_goes_between_the_markers_and_nowhere_else(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# head\n{dv.BEGIN}\nold\n{dv.END}\ntail\n")
    assert dv.write_docs(doc, "new table\n")
    assert doc.read_text() == f"# head\n{dv.BEGIN}\nnew table\n{dv.END}\ntail\n"
    assert not dv.write_docs(tmp_path / "missing.md", "x")


def test_a_tiny_run_is_scored_end_to_end(tmp_path: Path) -> None:
    out, res, doc = tmp_path / "out", tmp_path / "res", tmp_path / "doc.md"
    doc.write_text(f"{dv.BEGIN}\n{dv.END}\n")
    args = ["--reps", "2", "--days", "1", "--scenarios", str(ROOT / "scenarios" / "baseline.yaml"),
            "--out", str(out), "--results", str(res), "--docs", str(doc)]
    assert dv.main(args) == 0
    scores = pd.read_csv(res / "decision_value.csv")
    assert list(scores.policy) == ["rules", "ml-cpsat"] and set(scores.scenario) == {"baseline"}
    assert "| baseline | ml-cpsat |" in doc.read_text()
    first = (out / "baseline" / "differences.parquet").stat().st_mtime_ns
    assert dv.main(args) == 0  # scored again without rerunning what is there
    assert (out / "baseline" / "differences.parquet").stat().st_mtime_ns == first


def test_a_kpi_manual_never_incurs_is_not_applicable_rather_than_met() -> None:
    diff, summary = _frames(-40.0, 0.0, (0.0, -1.0, 1.0))
    summary.loc[summary.kpi == "pacu_hold_minutes", "mean"] = 0.0
    row = dv.score(diff, summary, "ml-cpsat").iloc[0]
    assert row.pacu_hold_minutes_met is None and row.overtime_p90_room_day_met and row.all_met
    assert "(n/a)" in dv.markdown(dv.score(diff, summary, "ml-cpsat"), 30, [7], None)
