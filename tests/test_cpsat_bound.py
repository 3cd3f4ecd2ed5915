"""The assignment relaxation of the day model (policies.cpsat_bound): a valid lower bound on every
frozen day (never above the best plan known, never above a plan CP-SAT finds), tighter than the
day model's own bound where cases must be left out, and pricing a crew shortage at close."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.cpsat_bound import assignment_bound
from policies.cpsat_model import CaseSpec, DayProblem, RoomSpec, Weights, solve, solve_once
from policies.day_problem_io import read_problem

INSTANCES = Path(__file__).resolve().parents[1] / "bench" / "instances"
NAMES = sorted(p.stem for p in INSTANCES.glob("*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_bound_is_below_every_known_plan(name):
    p, meta = read_problem(INSTANCES / f"{name}.json")
    b = assignment_bound(p, deterministic_time=0.3, seed=1)
    assert b.status in ("OPTIMAL", "FEASIBLE")
    assert b.bound <= meta["best_known"] + 1e-6
    if name.startswith("10or"):
        plan = solve_once(p, 0.05, 60.0, 1, 1)
        assert plan.ok and b.bound <= plan.objective + 1e-6


def test_bound_is_repeatable():
    p, _ = read_problem(INSTANCES / "20or_baseline_d1.json")
    a = assignment_bound(p, deterministic_time=0.2, seed=3)
    b = assignment_bound(p, deterministic_time=0.2, seed=3)
    assert (a.bound, a.objective, a.assignment) == (b.bound, b.objective, b.assignment)


def test_bound_sees_cases_that_must_be_left_out():
    """On the loaded 20-OR day the day model's bound is far below one left-out case; the
    relaxation proves several (the booked rooms hold more than they can run)."""
    p, meta = read_problem(INSTANCES / "20or_pacu_closed_beds_d3.json")
    b = assignment_bound(p, deterministic_time=1.0, seed=1)
    assert meta["best_known"] > 5 * p.weights.left_out
    assert b.bound > 5 * p.weights.left_out > solve_once(p, 0.1, 60.0, 1, 1).bound


def _two_rooms_one_late_crew(late_crew: int) -> DayProblem:
    rooms = [RoomSpec(f"R{i}", frozenset({"gen"}), 480, 720) for i in range(2)]
    cases = [CaseSpec(f"c{i}", f"dr{i}", "s", "gen", 290, 290, f"R{i}", {"rn": 1}, {}, 30)
             for i in range(2)]
    return DayProblem(day=0, cases=cases, rooms=rooms, turnover=20, max_overtime=120,
                      staff={"rn": [(420, 720, 2), (720, 900, late_crew)]}, trays={},
                      tray_turnaround=0, pacu=[(0, 2880, 10)], prime_end=720,
                      weights=Weights(left_out=2000))


@pytest.mark.parametrize("late_crew", [1, 2])
def test_a_crew_short_at_close_is_priced(late_crew):
    """Two 290-minute cases in two rooms open 240 minutes: both must run over. With one nurse
    after close one case is left out; the relaxation proves it, and matches the optimum."""
    p = _two_rooms_one_late_crew(late_crew)
    opt = solve(p, deterministic_time=5.0, wall_time=60.0, seed=0)
    b = assignment_bound(p, deterministic_time=2.0, seed=0)
    assert opt.status == "OPTIMAL" and b.status == "OPTIMAL"
    assert len(opt.left_out) == 2 - late_crew
    assert b.bound <= opt.objective + 1e-6
    assert (b.bound >= p.weights.left_out) == (late_crew == 1)
