"""Replay fidelity: the turnover KPI measures turnover (not idle waits) under every policy, a
replayed week that overlaps the calibration window is refused or warned about, the replay
output's counts, unrecorded KPIs and distinct/unseen days."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from calibration.build import calibrate
from calibration.replay import replay_week
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
