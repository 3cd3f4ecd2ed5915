"""Electives from a booked list run exactly as booked under as-booked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ortwin.experiment import run_experiment
from twin.scenario import ScenarioError, load_scenario

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"
ROWS = """case_id,service,surgeon,procedure,patient_class,day,room,start,booked_minutes
A1,{svc},{sg},{proc},outpatient,0,OR1,07:30,90
A2,{svc},{sg},{proc},inpatient,0,OR1,09:30,120
A3,{svc},{sg},{proc},outpatient,1,OR1,07:30,60
"""


@pytest.fixture
def booked(tmp_path: Path) -> Path:
    base = load_scenario(BASELINE)
    svc = next(s for s in base.services if s.id in base.room("OR1").capabilities)
    sg = next(s.id for s in base.surgeons if s.service == svc.id)
    proc = next(p.id for p in svc.procedures if (p.capability or svc.id) in base.room("OR1").capabilities)
    (tmp_path / "list.csv").write_text(ROWS.format(svc=svc.id, sg=sg, proc=proc))
    scn = tmp_path / "booked.yaml"
    scn.write_text(f"extends: {BASELINE}\nname: booked\nhorizon_days: 2\n"
                   "addons: {per_day: 0}\nbooking: {booked_list: list.csv}\n"
                   "services:\n" + "".join(f"  - {{id: {s.id}, cancellation_rate: 0.0}}\n"
                                           for s in base.services))
    return scn


def test_booked_list_cases_run_in_their_rooms_and_order(booked: Path) -> None:
    scn = load_scenario(booked)
    res = run_experiment(scn, reps=2, base_dir=booked.parent)
    cases = res.cases[res.cases.rep == 0].set_index("case_id")
    assert sorted(cases.index) == ["A1", "A2", "A3"]
    assert cases.loc["A2", "booked_start"] == 9 * 60 + 30
    assert cases.loc["A3", "booked_start"] == 1440 + 7 * 60 + 30
    ev = res.events[res.events.rep == 0]
    inroom = ev[ev.event == "in_room"].set_index("case_id")
    assert set(inroom["room"]) == {"OR1"}
    assert inroom.loc["A1", "time"] < inroom.loc["A2", "time"] < inroom.loc["A3", "time"]
    assert inroom.loc["A1", "time"] >= 7 * 60 + 30  # first case: no earlier than booked
    assert (res.replications["cases_completed"] == 3).all()


def test_booked_list_is_checked_by_validate(booked: Path) -> None:
    csv = booked.parent / "list.csv"
    csv.write_text(csv.read_text().replace(",OR1,09:30,", ",OR99,09:30,"))
    with pytest.raises(ScenarioError) as e:
        load_scenario(booked)
    assert str(e.value) == f"{csv}: row 3: room: unknown room 'OR99'"
