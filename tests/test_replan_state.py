"""Day-of re-plans see the suite as it is (issue 19): PACU beds, crews and trays already held
enter the day model as fixed demands; the model tells policies who is in PACU and which trays
are on the shelf, consistently with its event log; re-plans run only when a room would run late."""

from __future__ import annotations

import pytest

from calibration.training import trained_model
from policies.cpsat_model import CaseSpec, DayProblem, RoomSpec, solve
from policies.ml_cpsat import MlCpsatPolicy
from twin.demand import draw_week
from twin.model import SuiteModel
from twin.scenario import Scenario, load_scenario
from twin.streams import Streams


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario("scenarios/baseline.yaml")


def _day(in_use=(), pacu_beds: int = 1, staff: int = 1) -> DayProblem:
    cases = [CaseSpec(f"c{i}", f"s{i}", "gen", "general", 60, 60, "R1", {"nurse": 1}, {"kit": 1},
                      90) for i in range(2)]
    rooms = [RoomSpec(f"R{k}", frozenset({"general"}), 480, 960) for k in (1, 2)]
    return DayProblem(day=0, cases=cases, rooms=rooms, turnover=20, max_overtime=60,
                      staff={"nurse": [(0, 2880, staff)]}, trays={"kit": 2}, tray_turnaround=30,
                      pacu=[(0, 2880, pacu_beds)], prime_end=900, in_use=tuple(in_use))


def test_a_pacu_bed_held_until_noon_delays_the_first_arrival_to_noon() -> None:
    free = solve(_day(), deterministic_time=2)
    held = solve(_day([("pacu", 0, 720, 1)]), deterministic_time=2)
    assert free.ok and held.ok and not free.left_out and not held.left_out
    ends = sorted(s + 60 for _, s in held.assignment.values())
    assert ends[0] >= 720  # the first patient reaches PACU only once the bed comes free
    assert min(s for _, s in free.assignment.values()) == 480


def test_held_crews_and_trays_push_cases_back() -> None:
    crew = solve(_day([("staff:nurse", 0, 600, 1)]), deterministic_time=2)
    assert crew.ok and min(s for _, s in crew.assignment.values()) >= 600
    trays = solve(_day([("tray:kit", 0, 700, 2)], pacu_beds=2, staff=2), deterministic_time=2)
    assert trays.ok and min(s for _, s in trays.assignment.values()) >= 700


def test_holding_more_than_capacity_makes_those_hours_full_not_the_day_infeasible() -> None:
    sol = solve(_day([("pacu", 0, 600, 3)]), deterministic_time=2)  # 3 patients, 1 bed
    assert sol.ok and not sol.left_out
    assert min(s + 60 for _, s in sol.assignment.values()) >= 600


def test_the_model_reports_pacu_patients_and_trays_as_its_log_has_them(base: Scenario) -> None:
    week = draw_week(base, Streams(base.seed, 0))
    from ortwin.registry import get_policy

    model = SuiteModel(base, get_policy("manual", base), week)
    seen = 0
    for t in range(600, 1440 * 2, 37):
        model.env.run(until=t)
        ev = model.log.frame()
        ev = ev[ev.time <= t]
        inn = set(ev[ev.event == "pacu_in"].case_id) - set(ev[ev.event == "pacu_out"].case_id)
        got = model.pacu_patients()
        assert {c for c, _, _ in got} == inn
        ready = set(ev[ev.event == "pacu_ready"].case_id)
        for cid, since, waiting in got:
            assert since == pytest.approx(ev[(ev.event == "pacu_in") & (ev.case_id == cid)].time.max())
            assert waiting == (cid in ready)
        free = model.trays_free()
        assert all(0 <= free[t_] <= n for t_, n in base.spd.inventory.items())
        seen += len(got)
    assert seen > 0


def test_a_room_that_still_ends_in_hours_is_not_replanned(base: Scenario) -> None:
    """``on_running_long`` leaves the plan alone while the room's electives still end by close,
    and re-plans once they would not."""
    from twin.policy import RoomStatus

    policy = MlCpsatPolicy(base, forecaster=trained_model(base))
    week = draw_week(base, Streams(base.seed, 0))
    cases = [c for c in week.cases.values() if not c.is_addon and c.booked_day == 0
             and c.booked_room]
    room = cases[0].booked_room
    mine = [c for c in cases if c.booked_room == room]
    assert len(mine) >= 2
    running, queued = mine[0], mine[1:]

    class View:
        now = 500.0
        scenario = base

        def __init__(self, close: float) -> None:
            self.close, self.notes = close, []

        def rooms(self):
            return {r.id: RoomStatus(r.id, "in_case" if r.id == room else "idle",
                                     running.id if r.id == room else None, 480.0,
                                     480.0 + running.booked_minutes if r.id == room else 500.0,
                                     1000.0, tuple(c.id for c in queued) if r.id == room else (),
                                     450.0, self.close)
                    for r in base.rooms}

        def case(self, cid):
            return week.cases[cid]

        def planned_start(self, cid):
            return 600.0

        def pacu_patients(self):
            return []

        def trays_free(self):
            return dict(base.spd.inventory)

        def note(self, event, *args, **kwargs):
            self.notes.append(event)

    late = View(close=520.0)   # closes in 20 minutes: the queue cannot end in hours
    ok = View(close=5000.0)    # open all day: it can
    assert policy.on_running_long(room, running, ok) == [] and ok.notes == []
    policy.on_running_long(room, running, late)
    assert "replan" in late.notes or any(r["kind"].startswith("replan") for r in policy.log)
