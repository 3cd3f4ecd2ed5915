"""Golden replays (two weeks of the shared log, one synthetic week), actual KPIs from history
rows through the twin's KPI module, and the ``ortwin calibrate``/``replay`` commands."""

from __future__ import annotations

import json
import math
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration.actuals import actual_kpis, week_log
from calibration.build import calibrate
from ortwin.cli import main as _main
from ortwin.replay import REPLAY_KPIS, replay_week
from twin.kpis import KpiContext

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import regenerate_replays as gold  # noqa: E402

# Per week; the goal (issue 18) is 85% pooled over a month, which February meets (95% under
# as-booked, bench/replay_policies.py). W07 (11 of 14 scored inside) misses run-over minutes
# (simulated median 1,188 against 1,002), after-hours minutes (1,041 against 1,216: the two miss on
# opposite sides) and the overtime-share gap; with the no-start window its run-over median rose
# from 1,113.
MIN_COVERAGE = {"replay_2022_W05.csv": 0.85, "replay_2022_W07.csv": 0.75,
                "replay_synthetic_W18.csv": 0.6}


def main(argv: list[str]) -> int:
    """``ortwin`` with argparse's own exit (bad option values) turned into a return code."""
    try:
        return _main(argv)
    except SystemExit as e:
        return int(e.code)


@pytest.fixture(scope="module")
def golden_runs():
    return gold.replays()


def test_golden_replays_match_and_cover(golden_runs):
    assert [n for n, _ in golden_runs] == list(MIN_COVERAGE)
    for name, res in golden_runs:
        expected = pd.read_csv(GOLDEN / name)
        got = res.table
        assert list(got["kpi"]) == list(expected["kpi"])
        for col in ("actual", "p5", "p50", "p95"):
            np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float),
                                       rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=f"{name} {col}")
        assert res.coverage >= MIN_COVERAGE[name], (name, res.coverage)
        assert len(res.scored) >= 12


def test_shared_log_weeks_score_only_what_the_log_records(golden_runs):
    res = dict(golden_runs)["replay_2022_W05.csv"]
    t = res.table.set_index("kpi")
    for k in ("pacu_hold_minutes", "addon_cases", "surgeon_idle_minutes", "cases_cancelled",
              "staff_overtime_scrub", "tray_wait_minutes"):
        assert math.isnan(t.loc[k, "actual"]) and math.isnan(t.loc[k, "inside"]), k
    for k in ("utilisation", "overtime_minutes", "turnover_mean", "first_case_on_time_rate"):
        assert not math.isnan(t.loc[k, "actual"]), k
    syn = dict(golden_runs)["replay_synthetic_W18.csv"].table.set_index("kpi")
    for k in ("addon_cases", "cases_cancelled", "pacu_peak_occupancy", "surgeon_idle_minutes"):
        assert not math.isnan(syn.loc[k, "actual"]), k


def test_actual_kpis_are_measured_from_the_rows(kaggle):
    """Hand-computed figures of the week of 31 Jan 2022 agree with the KPI module's."""
    monday = date(2022, 1, 31)
    scn = calibrate(kaggle, "2022-01-31").validated
    ctx = KpiContext.from_scenario(scn.model_copy(update={"horizon_days": 7}))
    k = actual_kpis(kaggle, monday, ctx)
    week = kaggle.between(monday, "2022-02-07").cases
    assert k["cases_completed"] == len(week)
    # turnover: gaps within a room-day of at most 120 minutes
    w = week.sort_values(["room", "in_room"])
    gaps = (w["in_room"].shift(-1) - w["out_of_room"]).dt.total_seconds() / 60
    same = (w["room"] == w["room"].shift(-1)) & (w["date"] == w["date"].shift(-1))
    g = gaps[same & (gaps >= 0) & (gaps <= 120)]
    assert k["turnover_mean"] == pytest.approx(g.mean())
    # first cases: wheels-in within 5 minutes of the booked start
    first = week.sort_values("booked_start").groupby(["room", "date"]).head(1)
    late = (first["in_room"] - first["booked_start"]).dt.total_seconds() / 60
    assert k["first_case_on_time_rate"] == pytest.approx(float((late <= 5).mean()))
    events, cases = week_log(kaggle, monday)
    assert set(events["event"]) == {"booked", "scheduled", "in_room", "procedure_start",
                                    "procedure_end", "out_of_room"}
    assert "surgeon" not in cases and "is_addon" not in cases  # not recorded, not invented


def test_replay_uses_the_weeks_bookings(kaggle):
    scn = calibrate(kaggle, "2022-01-31").validated
    res = replay_week(kaggle, date(2022, 2, 7), scn, reps=4, seed=1)
    assert res.booked == len(kaggle.between("2022-02-07", "2022-02-14").cases)
    t = res.table.set_index("kpi")
    # every booked case is completed or cancelled for lack of time in every replication
    assert t.loc["cases_completed", "p95"] <= res.booked
    assert set(res.table["kpi"]) == set(REPLAY_KPIS)


def test_cli_calibrate_then_replay(tmp_path, capsys):
    from conftest import KAGGLE_LOG, KAGGLE_MAPPING

    scn = tmp_path / "jan.yaml"
    assert main(["calibrate", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING),
                 "--as-of", "2022-01-31", "-o", str(scn)]) == 0
    assert scn.exists() and (tmp_path / "jan_fit" / "fit_report.md").exists()
    out = tmp_path / "r.json"
    args = ["replay", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING), "--week", "2022-W06",
            "--scenario", str(scn), "--reps", "6", "--json", str(out)]
    assert main([*args, "--min-coverage", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "replay 2022-W06" in text and "PASS" in text
    doc = json.loads(out.read_text())
    assert doc["passed"] and doc["weeks"][0]["week"] == "2022-W06"
    assert {"kpi", "actual", "p5", "p50", "p95", "inside"} <= set(doc["weeks"][0]["kpis"][0])
    # exit status follows the coverage against the threshold, week by week
    strict = [*args[:-2], "--week", "2022-W07", "--min-coverage", "1", "--json", str(out)]
    code = main(strict)
    cov = [w["coverage"] for w in json.loads(out.read_text())["weeks"]]
    assert code == (0 if min(cov) >= 1.0 else 1)
    assert ("FAIL" in capsys.readouterr().out) == (code == 1)


@pytest.mark.parametrize("argv, expect", [
    (["--week", "2022-13"], "expected an ISO week like 2022-W05"),
    (["--week", "2021-W10"], "no cases booked in 2021-W10"),
    (["--week", "2022-W06", "--min-coverage", "2"], "--min-coverage expects a share from 0 to 1"),
])
def test_replay_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, expect):
    from conftest import KAGGLE_LOG, KAGGLE_MAPPING

    scn = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    code = main(["replay", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING),
                 "--scenario", str(scn), "--reps", "2", *argv])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err and "Traceback" not in err


def test_replay_against_a_scenario_without_the_logs_rooms_is_exit_2(capsys):
    from conftest import KAGGLE_LOG, KAGGLE_MAPPING

    scn = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    assert main(["replay", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING), "--week",
                 "2022-W06", "--scenario", str(scn), "--reps", "2"]) == 2
    err = capsys.readouterr().err
    assert "which the scenario does not have" in err


def test_calibrate_bad_input(tmp_path, capsys):
    from conftest import KAGGLE_LOG, KAGGLE_MAPPING

    out = tmp_path / "x.yaml"
    assert main(["calibrate", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING),
                 "--as-of", "2021-01-01", "-o", str(out)]) == 2
    assert "calibration needs at least" in capsys.readouterr().err
    assert main(["calibrate", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING),
                 "--as-of", "31/01/2022", "-o", str(out)]) == 2
    assert "--as-of expects a date" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "x_fit").exists()


def test_cli_synth_history(tmp_path, capsys):
    out = tmp_path / "h.csv"
    assert main(["synth-history", "--weeks", "2", "--seed", "3", "-o", str(out)]) == 0
    assert out.exists() and (tmp_path / "h.truth.json").exists()
    assert json.loads((tmp_path / "h.truth.json").read_text())["weeks"] == 2
    assert main(["synth-history", "--weeks", "2", "--start", "2023-01-03", "-o", str(out)]) == 2
    assert "expected a Monday" in capsys.readouterr().err
