"""Replay fidelity: the turnover KPI measures turnover (not idle waits) under every policy, a
replayed week that overlaps the calibration window is refused or warned about, the replay
output's counts, unrecorded KPIs and distinct/unseen days."""

from __future__ import annotations

import json
import math
from datetime import date

import pandas as pd
import pytest

from calibration.build import calibrate
from ortwin.replay import replay_week
from twin.events import CASE_COLUMNS, to_frame
from twin.kpis import KpiContext, compute_kpis
from twin.schema import Scenario

NAN = math.nan


def _ctx() -> KpiContext:
    rd = pd.DataFrame([("OR1", 0, 420.0, 960.0)], columns=["room", "day", "open", "close"])
    return KpiContext(room_days=rd, early_start=60.0)


def _cases(*rows: dict[str, object]) -> pd.DataFrame:
    base: dict[str, object] = dict(
        service="gen", surgeon="S1", procedure="p", patient_class="outpatient",
        priority="elective", capability="gen", trays="", booked_minutes=60.0, booked_day=0,
        booked_room="OR1", booked_start=NAN, is_addon=False, arrival=NAN)
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(CASE_COLUMNS))


def _ran(cid: str, planned: float, t_in: float, t_out: float) -> list[tuple]:
    return [(0.0, "scheduled", cid, "OR1", "", planned, ""),
            (t_in, "in_room", cid, "OR1", "", NAN, ""), (t_out, "out_of_room", cid, "OR1", "", NAN, ""),
            (t_out + 60, "pacu_out", cid, "", "", NAN, "")]


def test_turnover_leaves_out_waits_for_a_later_planned_start() -> None:
    """A out at 560; B planned 700 may go in from 640 (60 early) and does: its 80-minute gap is
    the room waiting for B, not turnover. B out at 700, C (planned 730, due 670) in at 730: 30."""
    rows = _ran("A", 420, 420, 560) + _ran("B", 700, 640, 700) + _ran("C", 730, 730, 790)
    cases = _cases({"case_id": "A"}, {"case_id": "B"}, {"case_id": "C"})
    k = compute_kpis(to_frame(rows), cases, _ctx())
    assert k["turnover_mean"] == pytest.approx(30.0)
    assert k["turnover_p90"] == pytest.approx(30.0)


def test_turnover_counts_an_addon_waiting_and_unknown_plans() -> None:
    """An add-on requested before the room came free, and a case with no planned start, count."""
    rows = (_ran("A", 420, 420, 560)
            + [(600.0, "in_room", "X", "OR1", "", NAN, ""), (650.0, "out_of_room", "X", "OR1", "", NAN, ""),
               (700.0, "pacu_out", "X", "", "", NAN, "")]
            + [(670.0, "in_room", "U", "OR1", "", NAN, ""), (720.0, "out_of_room", "U", "OR1", "", NAN, "")])
    cases = _cases({"case_id": "A"}, {"case_id": "X", "is_addon": True, "arrival": 550.0,
                                      "booked_room": ""}, {"case_id": "U"})
    k = compute_kpis(to_frame(rows), cases, _ctx())
    assert k["turnover_mean"] == pytest.approx((40 + 20) / 2)


@pytest.fixture(scope="module")
def jan(kaggle):
    """The bundled log calibrated on January (cases booked before 1 February 2022)."""
    return calibrate(kaggle, "2022-02-01").validated


def _constant_turnover(scn: Scenario, minutes: float) -> Scenario:
    d = scn.model_dump(mode="json")
    d["turnover"] = {"kind": "constant", "value": minutes}
    d["no_start_windows"] = []  # no lunch: the only waits are for surgeons and crews
    for s in d["services"]:
        s["turnover"] = d["turnover"]
    return Scenario.model_validate(d)


def test_manual_measures_the_same_turnover_as_as_booked(kaggle, jan):
    """Every turnover takes 25 minutes. ``manual`` re-times the week from the rooms' opens with
    booked minutes + its planned turnover, so short cases run ahead of its plan and the room
    waits for their planned starts; those waits are idle time, so the turnover KPI is 25 plus
    only the waits for surgeons and crews, as under ``as-booked`` (before: +0.5 min)."""
    scn = _constant_turnover(jan, 25.0)
    p50 = {}
    for policy in ("as-booked", "manual"):
        t = replay_week(kaggle, date(2022, 2, 7), scn, policy, reps=4, seed=1).table.set_index("kpi")
        p50[policy] = float(t.loc["turnover_mean", "p50"])
    assert 25.0 <= p50["as-booked"] < 26.5
    assert abs(p50["manual"] - p50["as-booked"]) < 0.2, p50


def _main(argv: list[str]) -> int:
    from ortwin.cli import main

    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


@pytest.fixture(scope="module")
def jan_yaml(tmp_path_factory):
    """``ortwin calibrate`` on the bundled log, as of 1 February (31 January is fitted)."""
    from conftest import KAGGLE_LOG, KAGGLE_MAPPING

    scn = tmp_path_factory.mktemp("cal") / "jan.yaml"
    assert _main(["calibrate", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING),
                  "--as-of", "2022-02-01", "-o", str(scn)]) == 0
    return scn


def _replay_args(scn, *extra: str) -> list[str]:
    from conftest import KAGGLE_LOG, KAGGLE_MAPPING

    return ["replay", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING), "--scenario", str(scn),
            "--reps", "3", "--min-coverage", "0", *extra]


def test_a_week_overlapping_the_calibration_is_refused_in_one_line(jan_yaml, capsys):
    """2022-W05 starts Monday 31 January, which the scenario was fitted on."""
    capsys.readouterr()
    assert _main(_replay_args(jan_yaml, "--week", "2022-W06", "2022-W05")) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and "2022-W05 overlaps the calibration period" in err[0]
    assert "2022-01-31" in err[0] and "--allow-overlap" in err[0] and "Traceback" not in cap.err
    assert "replay 2022-W06" not in cap.out  # refused before anything ran


def test_allow_overlap_warns_and_the_output_reports_days_and_fidelity(jan_yaml, tmp_path, capsys):
    out = tmp_path / "r.json"
    capsys.readouterr()
    assert _main(_replay_args(jan_yaml, "--week", "2022-W05", "2022-W06", "--allow-overlap",
                              "--policy", "manual", "--json", str(out))) == 0
    cap = capsys.readouterr()
    assert cap.err.startswith("warning: 2022-W05 overlaps the calibration period")
    doc = json.loads(out.read_text())
    assert doc["fidelity_policy"] == "as-booked" and doc["judges_fidelity"] is False
    assert doc["fitted_window"] == ["2022-01-03", "2022-02-01"] and len(doc["warnings"]) == 1
    w5, w6 = doc["weeks"]
    assert w5["overlap_days"] == ["2022-01-31"] and w6["overlap_days"] == []
    # W05: 5 distinct dates, 4 copies of January days; W06: 5 distinct days none fitted
    assert (w5["days"], w5["distinct_days"], len(w5["unseen_days"]), w5["unseen_week"]) == (5, 5, 1, False)
    assert (w6["days"], w6["distinct_days"], len(w6["unseen_days"]), w6["unseen_week"]) == (5, 5, 5, True)
    assert doc["unseen_weeks"] == ["2022-W06"] and doc["unseen_coverage"] == w6["coverage"]
    text = cap.out
    assert "does not judge fidelity" in text and "policy as-booked" in text
    assert "days scored: 10 dates, 10 distinct, 6 distinct and not seen" in text
    assert "days: 5 with cases, 5 distinct, 5 distinct and not seen in fitting (unseen week)" in text
    rows = {line[:28].strip(): line.split() for line in text.splitlines() if "  " in line}
    assert "0.000" not in " ".join(rows["Cases not started"])
    assert rows["Cases not started"][-4:] == ["0", "0", "0", "yes"]
    assert rows["Add-on cases"][-5:] == ["—", "—", "—", "not", "recorded"]
    assert rows["PACU peak occupancy"][-6:] == ["—", "—", "—", "—", "not", "recorded"]


def test_fitted_window_round_trips_through_calibrate(jan_yaml):
    from calibration.replay_scope import fitted_window, overlap_days
    from twin.scenario import load_scenario

    w = fitted_window(load_scenario(jan_yaml))
    assert w == (date(2022, 1, 3), date(2022, 2, 1))
    assert overlap_days(date(2022, 1, 31), w) == [date(2022, 1, 31)]
    assert overlap_days(date(2022, 2, 7), w) == [] and overlap_days(date(2022, 2, 7), None) == []
