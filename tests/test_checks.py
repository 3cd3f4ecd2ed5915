"""The independent plan checker: it passes a clean plan and catches each kind of violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.checks import HARD_CONSTRAINTS, Violation, check_plan, reserve_minutes
from policies.forecast import BookedForecaster, Forecast
from policies.planning import addon_reserve
from policies.rules_catalog import RuleCatalog, load_catalog
from twin.demand import Case
from twin.policy import PlannedCase
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
OPEN = 450.0  # 07:30 on day 0 (Monday); baseline OR1-OR9 close 17:30 (1050)
CREW = {"anaesthesia": 1, "circulating": 1, "scrub": 1}


@pytest.fixture(scope="module")
def scn():
    return load_scenario(SCENARIOS / "baseline.yaml")


@pytest.fixture(scope="module")
def std() -> RuleCatalog:
    return load_catalog(None)


def case(cid: str, surgeon: str = "dr_okafor", minutes: float = 60, capability: str = "general",
         trays: tuple[str, ...] = (), cls: str = "outpatient", room: str = "OR1",
         crew: dict[str, int] | None = None, day: int = 0) -> Case:
    return Case(id=cid, service="general", surgeon=surgeon, procedure="p", patient_class=cls,
                priority="elective", capability=capability, trays=trays, crew=crew or dict(CREW),
                booked_minutes=minutes, booked_day=day, booked_room=room,
                booked_start=day * 1440 + OPEN)


def check(plan, cases, scn, catalog=None, day=0, severities=("enforced",), forecasts=None):
    by_id = {c.id: c for c in cases}
    fc = forecasts if forecasts is not None else BookedForecaster().forecast(cases, day)
    return check_plan(plan, by_id, scn, day, fc, catalog, 0.8, severities)


def rules_of(found: list[Violation]) -> set[str]:
    return {v.rule for v in found}


def test_clean_plan_passes(scn, std):
    cs = [case("a", minutes=120), case("b", minutes=60), case("c", surgeon="dr_chen", room="OR2")]
    plan = [PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR1", OPEN + 150),
            PlannedCase("c", "OR2", OPEN)]
    assert check(plan, cs, scn, std) == []


def test_unknown_and_duplicate_cases(scn):
    cs = [case("a")]
    plan = [PlannedCase("a", "OR1", OPEN), PlannedCase("a", "OR1", OPEN + 100),
            PlannedCase("zz", "OR1", OPEN + 200)]
    assert rules_of(check(plan, cs, scn)) == {"duplicate", "unknown_case"}


def test_capability(scn):
    cs = [case("a", capability="cardiac"), case("b", surgeon="dr_chen")]
    found = check([PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR99", OPEN)], cs, scn)
    assert rules_of(found) == {"capability"}
    assert {v.case_ids for v in found} == {("a",), ("b",)}


@pytest.mark.parametrize("start", [OPEN - 60, 1050.0, 1100.0, 5 * 1440 + OPEN])
def test_hours(scn, start):
    found = check([PlannedCase("a", "OR1", start)], [case("a")], scn)
    assert rules_of(found) == {"hours"}


def test_planned_downtime():
    scn = load_scenario(SCENARIOS / "room_downtime.yaml")  # OR4 down Tuesday 07:30-13:00
    c = case("a", surgeon="dr_garcia", capability="ortho", room="OR4", day=1)
    assert rules_of(check([PlannedCase("a", "OR4", 1440 + 600)], [c], scn, day=1)) == {"downtime"}
    assert check([PlannedCase("a", "OR4", 1440 + 780)], [c], scn, day=1) == []


def test_room_overlap(scn):
    cs = [case("a", minutes=120), case("b", surgeon="dr_chen")]
    found = check([PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR1", OPEN + 60)], cs, scn)
    assert rules_of(found) == {"room_overlap"}
    assert found[0].case_ids == ("a", "b")


def test_surgeon_overlap(scn, std):
    cs = [case("a", minutes=120), case("b", room="OR2")]
    plan = [PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR2", OPEN + 90)]
    assert rules_of(check(plan, cs, scn)) == {"surgeon_overlap"}
    # the catalog's enforced surgeon rule reports it too, under its own id
    assert rules_of(check(plan, cs, scn, std)) == {"surgeon_overlap", "surgeon-one-room"}


def test_crew_after_the_day_shift(scn):
    # weekday day shift ends 17:30; only the late shift (3 per role) is on after that
    cs = [case(f"c{i}", surgeon=s, minutes=100, room=r)
          for i, (s, r) in enumerate(zip(["dr_okafor", "dr_chen", "dr_silva", "dr_haddad"],
                                         ["OR1", "OR2", "OR3", "OR5"], strict=True))]
    plan = [PlannedCase(c.id, c.booked_room, 1020.0) for c in cs]
    found = check(plan, cs, scn)
    assert rules_of(found) == {"crew"}
    assert "needed at 17:30" in found[0].message
    assert check(plan[:3], cs[:3], scn) == []


def test_crew_role_sizes(scn):
    # a crew needing more scrubs than exist at night
    c = case("a", crew={"anaesthesia": 1, "circulating": 1, "scrub": 3}, room="OR10", day=5)
    found = check([PlannedCase("a", "OR10", 5 * 1440 + 500)], [c], scn, day=5)
    assert rules_of(found) == {"crew"}


def test_trays_with_reprocessing_turnaround(scn):
    # bariatric: 3 in inventory; a tray is away for the case plus ~167 min of reprocessing
    surgeons = ["dr_okafor", "dr_chen", "dr_silva", "dr_haddad"]
    rooms = ["OR1", "OR2", "OR3", "OR5"]
    cs = [case(f"c{i}", surgeon=s, minutes=60, trays=("bariatric",), room=r)
          for i, (s, r) in enumerate(zip(surgeons, rooms, strict=True))]
    starts = [OPEN, OPEN, OPEN, OPEN + 200]  # the 4th starts before the first trays are back
    plan = [PlannedCase(c.id, c.booked_room, s) for c, s in zip(cs, starts, strict=True)]
    found = check(plan, cs, scn)
    assert rules_of(found) == {"trays"}
    later = plan[:3] + [PlannedCase("c3", "OR5", OPEN + 240)]  # back after 60 + 167 min
    assert check(later, cs, scn) == []


def test_pacu_beds(scn):
    small = scn.model_copy(update={"pacu": scn.pacu.model_copy(update={"beds": 2})})
    cs = [case(f"c{i}", surgeon=s, room=f"OR{i + 1}")
          for i, s in enumerate(["dr_okafor", "dr_chen", "dr_silva"])]
    plan = [PlannedCase(c.id, c.booked_room, OPEN) for c in cs]
    found = check(plan, cs, small)
    assert rules_of(found) == {"pacu"}
    assert set(found[0].case_ids) == {"c0", "c1", "c2"}
    assert check(plan, cs, scn) == []


def test_enforced_rules_of_the_standard_catalog(scn, std):
    # max-planned-overtime: OR1 planned to end 90 minutes after close
    cs = [case("a", minutes=150)]
    found = check([PlannedCase("a", "OR1", 1050 - 60)], cs, scn, std)
    assert rules_of(found) == {"max-planned-overtime"}
    # plan-p80: back to back without the planned turnover
    cs = [case("a"), case("b")]
    found = check([PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR1", OPEN + 60)], cs, scn, std)
    assert rules_of(found) == {"plan-p80"}
    # the P80 forecast, not booked minutes, sets the spacing
    fc = {"a": Forecast(60, 90, 120), "b": Forecast(60, 60, 60)}
    found = check([PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR1", OPEN + 100)], cs, scn,
                  std, forecasts=fc)
    assert rules_of(found) == {"plan-p80"}


def strict_catalog(std: RuleCatalog, **severity) -> RuleCatalog:
    rules = []
    for r in std.rules:
        if r.kind in severity:
            r = r.model_copy(update={"severity": severity[r.kind], "overridable": False})
        rules.append(r)
    return RuleCatalog(name="strict", rules=rules)


def test_enforced_sequence_first_case_reserve_and_gap(scn, std):
    cat = strict_catalog(std, sequence="enforced", first_case_at_open="enforced",
                         addon_reserve="enforced")
    cs = [case("short", minutes=60), case("long", minutes=180)]
    found = check([PlannedCase("short", "OR1", OPEN), PlannedCase("long", "OR1", OPEN + 90)],
                  cs, scn, cat)
    assert rules_of(found) == {"longest-first"}
    found = check([PlannedCase("long", "OR1", OPEN + 30)], cs[1:], scn, cat)
    assert rules_of(found) == {"first-case-on-time"}
    found = check([PlannedCase("long", "OR1", 1050 - 180)], cs[1:], scn, cat)
    assert rules_of(found) == {"first-case-on-time", "addon-reserve"}
    gap = RuleCatalog(name="gap", rules=[r.model_copy(update={"params": r.params.model_copy(
        update={"gap_minutes": 30})}) for r in std.rules if r.kind == "surgeon_one_room"])
    cs = [case("a"), case("b", room="OR2")]
    plan = [PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR2", OPEN + 70)]
    assert rules_of(check(plan, cs, scn, gap)) == {"surgeon-one-room"}
    plan = [PlannedCase("a", "OR1", OPEN), PlannedCase("b", "OR2", OPEN + 90)]
    assert check(plan, cs, scn, gap) == []


def test_monitored_rules_on_request(scn, std):
    cs = [case("a"), case("b")]
    plan = [PlannedCase("a", "OR1", OPEN)]
    assert check(plan, cs, scn, std) == []
    found = check(plan, cs, scn, std, severities=("enforced", "monitored"))
    assert rules_of(found) == {"plan-all-booked"}
    assert found[0].case_ids == ("b",)


def test_violation_is_one_line(scn):
    found = check([PlannedCase("a", "OR1", OPEN - 60)], [case("a")], scn)
    text = str(found[0])
    assert "\n" not in text and text.startswith("hours: ") and text.endswith("[a]")
    assert set(HARD_CONSTRAINTS) >= rules_of(found)


@pytest.mark.parametrize("name", ["baseline", "high_addons", "added_or"])
def test_reserve_definition_agrees_with_planner(name, std):
    """The checker's add-on reserve (written from the definition) equals the planner's."""
    scn = load_scenario(SCENARIOS / f"{name}.yaml")
    p = std.get("addon_reserve").params
    for day in range(scn.horizon_days):
        planner = addon_reserve(scn, day, p.factor, p.max_minutes)
        for room, minutes in planner.items():
            assert reserve_minutes(scn, day, room, p.factor, p.max_minutes) == pytest.approx(minutes)
