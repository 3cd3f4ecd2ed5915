"""The ml-cpsat policy: plans obey every enforced rule (checked independently of the solver),
the safety gate falls back to rules, plans are reproducible, placements are explained."""

from __future__ import annotations

import dataclasses

import pytest

from calibration.training import trained_model
from ortwin.experiment import run_experiment
from policies.checks import check_plan
from policies.cpsat_model import DayProblem, solve
from policies.forecast import Forecast, ForecastError
from policies.ml_cpsat import MlCpsatPolicy
from policies.rules_catalog import load_catalog
from twin.demand import draw_week
from twin.model import SuiteModel
from twin.scenario import Scenario, from_mapping, load_scenario
from twin.streams import Streams


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario("scenarios/baseline.yaml")


def day_cases(scn: Scenario, day: int, rep: int = 0):
    week = draw_week(scn, Streams(scn.seed, rep))
    return week, [c for c in week.cases.values()
                  if not c.is_addon and c.booked_day == day and c.booked_room]


class Recorder:
    """A view stand-in that records policy notes (wraps a real model for everything else)."""

    def __init__(self, model: SuiteModel) -> None:
        self.model, self.notes = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def note(self, event, case_id="", room="", value=float("nan"), detail=""):
        self.notes.append((event, detail))


@pytest.mark.parametrize("name", ["baseline", "pacu_closed_beds", "staffing_shortage", "room_downtime"])
def test_cpsat_plans_satisfy_every_enforced_rule(name: str) -> None:
    scn = load_scenario(f"scenarios/{name}.yaml")
    policy = MlCpsatPolicy(scn, forecaster=trained_model(scn), deterministic_time=2.0)
    catalog = load_catalog(None)
    for day in range(3):
        week, cases = day_cases(scn, day)
        view = Recorder(SuiteModel(scn, policy, week))
        plan = policy.plan_day(day, cases, view)
        assert tuple(e for e, _ in view.notes[:1]) == ("plan_solved", ), view.notes
        left = {c.id for c in cases} - {p.case_id for p in plan}
        audited = [e for e, d in view.notes if "plan-all-booked" in d]
        assert len(audited) == len(left)  # a case left out is never silent
        assert len(left) <= len(cases) // 10
        forecasts = policy.forecaster.forecast(cases, day)
        assert check_plan(plan, {c.id: c for c in cases}, scn, day, forecasts, catalog, 0.8) == []
        assert all(c.id in policy.explanations for c in cases)
        assert all(p.room in policy.explanations[p.case_id] for p in plan)


def test_fallback_on_solver_timeout(base: Scenario) -> None:
    policy = MlCpsatPolicy(base, forecaster=trained_model(base), deterministic_time=1e-9, wall_time=1e-3)
    week, cases = day_cases(base, 0)
    view = Recorder(SuiteModel(base, policy, week))
    plan = policy.plan_day(0, cases, view)
    assert [e for e, _ in view.notes].count("plan_fallback") == 1
    rules = policy.fallback.plan_day(0, cases, Recorder(SuiteModel(base, policy, week)))
    assert plan == list(rules)


def test_fallback_on_infeasible_day(base: Scenario) -> None:
    """A day no plan can satisfy: every booked case must be planned, and one is longer than any
    room's day plus the allowed overtime."""
    policy = MlCpsatPolicy(base, forecaster=trained_model(base), deterministic_time=2.0, plan_all=True)
    week, cases = day_cases(base, 0)
    real = policy.forecaster

    class Huge:
        name = "huge"

        def forecast(self, cs, day):
            out = real.forecast(cs, day)
            first = cs[0].id
            out[first] = Forecast(2000.0, 2000.0, 2000.0)
            return out

    policy._forecaster = Huge()
    view = Recorder(SuiteModel(base, policy, week))
    policy.plan_day(0, cases, view)
    kinds = [e for e, _ in view.notes]
    assert "plan_fallback" in kinds and "plan_solved" not in kinds
    assert any("INFEASIBLE" in d for e, d in view.notes if e == "plan_fallback")


def test_fallback_on_missing_forecast_input(base: Scenario) -> None:
    policy = MlCpsatPolicy(base, forecaster=trained_model(base), deterministic_time=2.0)
    week, cases = day_cases(base, 0)
    cases = [dataclasses.replace(cases[0], booked_minutes=float("nan")), *cases[1:]]
    real = policy.forecaster

    class Strict:
        name = "strict"

        def forecast(self, cs, day):
            if any(c.booked_minutes != c.booked_minutes for c in cs):
                raise ForecastError("booked_minutes missing")
            return real.forecast(cs, day)

    policy._forecaster = Strict()
    view = Recorder(SuiteModel(base, policy, week))
    policy.plan_day(0, cases, view)
    assert any(e == "plan_fallback" and "forecast" in d for e, d in view.notes)


def test_plans_identical_run_to_run(base: Scenario) -> None:
    week, cases = day_cases(base, 1)
    plans = []
    for _ in range(2):
        policy = MlCpsatPolicy(base, forecaster=trained_model(base), deterministic_time=1.0, seed=7)
        view = Recorder(SuiteModel(base, policy, week))
        plans.append(sorted(policy.plan_day(1, cases, view), key=lambda p: p.case_id))
    assert plans[0] == plans[1]


def test_problem_respects_pinned_rooms_and_release(base: Scenario) -> None:
    policy = MlCpsatPolicy(base, forecaster=trained_model(base), deterministic_time=1.0)
    week, cases = day_cases(base, 0)
    forecasts = policy.forecaster.forecast(cases, 0)
    prob = policy.problem(0, cases, forecasts, release={c.id: 600 for c in cases})
    prob = dataclasses.replace(prob, pinned={cases[0].id: cases[0].booked_room})
    sol = solve(prob, deterministic_time=2.0)
    assert sol.ok
    assert sol.assignment[cases[0].id][0] == cases[0].booked_room
    assert all(s >= 600 for _, s in sol.assignment.values())


@pytest.mark.slow
def test_ml_cpsat_runs_a_week_with_day_of_replanning(base: Scenario) -> None:
    short = from_mapping({**base.model_dump(by_alias=True), "horizon_days": 2})
    res = run_experiment(short, "ml-cpsat", reps=1)
    ev = res.events
    assert (ev.event == "plan_solved").sum() + (ev.event == "plan_fallback").sum() == 2
    assert (ev.event == "replan").sum() >= 1
    assert res.replications["cases_completed"].iloc[0] > 0


def test_rules_warm_start_is_repaired_into_a_feasible_hint(base: Scenario) -> None:
    """The rules plan (float minutes) becomes a complete hint the whole-minute model accepts."""
    from ortools.sat.python import cp_model

    from policies.cpsat_model import build, repaired_hint
    from policies.ml_cpsat import QuietView

    policy = MlCpsatPolicy(base, forecaster=trained_model(base))
    week, cases = day_cases(base, 0)
    view = SuiteModel(base, policy, week)
    rules = policy.fallback.plan_day(0, cases, QuietView(view))
    hint = {p.case_id: (p.room, int(p.start)) for p in rules}
    prob = policy.problem(0, cases, policy.forecaster.forecast(cases, 0), hint=hint)
    fixed = repaired_hint(prob)
    assert set(fixed) <= set(hint) and len(fixed) >= len(hint) - 1
    m, _ = build(prob)
    solver = cp_model.CpSolver()
    solver.parameters.fix_variables_to_their_hinted_value = True
    solver.parameters.max_time_in_seconds = 20
    assert solver.solve(m) in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def test_replan_sees_the_running_case_at_its_forecast(base: Scenario) -> None:
    """A room in a case is busy until the case's P80 (not its booked end), and so is its surgeon."""
    from twin.policy import RoomStatus

    policy = MlCpsatPolicy(base, forecaster=trained_model(base))
    week, cases = day_cases(base, 0)
    running = cases[0]
    f = Forecast(p50=200.0, p80=300.0, p95=400.0)
    policy._forecasts[running.id] = f

    class View:
        now = 600.0
        scenario = base

        def rooms(self):
            booked_end = 480.0 + running.booked_minutes
            return {r.id: RoomStatus(r.id, "in_case" if r.id == running.booked_room else "idle",
                                     running.id if r.id == running.booked_room else None, 480.0,
                                     max(booked_end, 600.0) if r.id == running.booked_room else 600.0,
                                     600.0, (), 450.0, 1050.0)
                    for r in base.rooms}

        def case(self, cid):
            return week.cases[cid]

        def pacu_patients(self):
            return [(cases[1].id, 560.0, False), (cases[2].id, 500.0, True)]

        def trays_free(self):
            return dict(base.spd.inventory)

    now = policy.suite_now(View(), 0)
    rooms, surgeons = now.room_free, now.surgeon_free
    assert surgeons[running.surgeon] == pytest.approx(480.0 + 300.0)
    assert rooms[running.booked_room] >= 480.0 + 300.0 + policy._turnover() - 1e-9
    assert all(t == pytest.approx(600.0) for rid, t in rooms.items() if rid != running.booked_room)
    # the running case holds its crew until it ends, then a PACU bed; the two patients already
    # in PACU hold theirs from now: one for the rest of its stay, one waiting for a ward bed
    crew = [u for u in now.in_use if u[0].startswith("staff:")]
    assert {u[0] for u in crew} == {f"staff:{r}" for r, n in running.crew.items() if n > 0}
    assert all((a, b) == (600, 780) for _, a, b, _ in crew)
    pacu = sorted(u for u in now.in_use if u[0] == "pacu")
    assert len(pacu) == 3 and [a for _, a, _, _ in pacu] == [600, 600, 780]
    assert not [u for u in now.in_use if u[0].startswith("tray:")]  # every tray on the shelf


def _toy_day(reserve_enforced: bool, weight: int) -> DayProblem:
    from policies.cpsat_model import CaseSpec, RoomSpec, Weights

    cases = [CaseSpec(f"c{i}", f"s{i % 2}", "gen", "general", 100, 100, "R1", {}, {}, 60)
             for i in range(5)]
    rooms = [RoomSpec("R1", frozenset({"general"}), 480, 960, reserve=120),
             RoomSpec("R2", frozenset({"general"}), 480, 960, reserve=120)]
    return DayProblem(day=0, cases=cases, rooms=rooms, turnover=20, max_overtime=60, staff={},
                      trays={}, tray_turnaround=0, pacu=[(0, 2880, 10)], prime_end=900,
                      weights=Weights(reserve=weight), reserve_enforced=reserve_enforced)


@pytest.mark.parametrize("enforced, weight", [(True, 0), (False, 50)])
def test_addon_reserve_is_kept_hard_or_by_its_penalty(enforced: bool, weight: int) -> None:
    sol = solve(_toy_day(enforced, weight), deterministic_time=2.0)
    assert sol.ok and not sol.left_out
    assert all(s + 100 <= 960 - 120 for _, s in sol.assignment.values())


def test_addon_reserve_penalty_off_lets_plans_run_into_it() -> None:
    from policies.cpsat_model import Weights

    p = dataclasses.replace(_toy_day(False, 0), weights=Weights(reserve=0, idle=0, moved_room=500))
    sol = solve(p, deterministic_time=2.0)
    assert sol.ok and max(s + 100 for _, s in sol.assignment.values()) > 960 - 120
