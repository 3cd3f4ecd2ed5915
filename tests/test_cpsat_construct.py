"""The constructive plan (policies.cpsat_construct): on every frozen day, and on random small
days with tight crews, trays and PACU beds and with resources already held, the plan it builds is
feasible in the CP-SAT model (the model is the checker: every case fixed where the plan puts it)
and the model prices it exactly as ``objective`` does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.cpsat_bound import assignment_bound
from policies.cpsat_construct import construct, objective
from policies.cpsat_model import CaseSpec, DayProblem, RoomSpec, Weights, build, run_model
from policies.day_problem_io import read_problem

INSTANCES = Path(__file__).resolve().parents[1] / "bench" / "instances"
NAMES = sorted(p.stem for p in INSTANCES.glob("*.json"))


def model_objective(p: DayProblem, plan: dict[str, tuple[str, int]]) -> float | None:
    """The model's objective with every case fixed as planned (None: the plan is infeasible)."""
    m, v = build(p)
    for c in p.cases:
        if c.id in plan:
            room, s = plan[c.id]
            if (c.id, room) not in v["x"]:
                return None
            m.add(v["x"][c.id, room] == 1)
            m.add(v["start"][c.id] == s)
        else:
            m.add(v["skip"][c.id] == 1)
    sol = run_model(m, v, 2.0, 60.0, 0, 1)
    return sol.objective if sol.status == "OPTIMAL" else None


@pytest.mark.parametrize("name", NAMES)
def test_constructed_plans_are_feasible_and_priced_alike(name):
    p, _ = read_problem(INSTANCES / f"{name}.json")
    relaxed = assignment_bound(p, deterministic_time=0.2, seed=1)
    for rooms_of in ({c.id: c.booked_room for c in p.cases}, relaxed.assignment):
        plan = construct(p, rooms_of)
        assert plan == construct(p, rooms_of)  # deterministic
        got = model_objective(p, plan)
        assert got is not None, "the constructed plan breaks a hard constraint"
        assert got == pytest.approx(objective(p, plan))
        assert objective(p, plan) >= relaxed.bound - 1e-6  # no plan beats a valid bound


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(30, 240), st.integers(0, 3), st.integers(0, 2),
                          st.integers(20, 200)), min_size=2, max_size=7),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 300),
       st.integers(0, 2))
def test_random_tight_days_construct_feasible_plans(cases, n_rooms, crews, beds, held_until,
                                                    trays):
    rooms = [RoomSpec(f"R{i}", frozenset({"gen"}), 480, 900, reserve=30 * (i == 0),
                      down=((600, 640),) if i == 1 else ()) for i in range(n_rooms)]
    specs = [CaseSpec(f"c{i}", f"dr{s}", f"svc{s % 2}", "gen", d, d, f"R{b % n_rooms}",
                      {"rn": 1}, {"kit": 1} if i % 2 else {}, pacu, release=0)
             for i, (d, s, b, pacu) in enumerate(cases)]
    p = DayProblem(day=0, cases=specs, rooms=rooms, turnover=20, max_overtime=90,
                   staff={"rn": [(450, 900, crews), (900, 1200, 1)]}, trays={"kit": max(trays, 1)},
                   tray_turnaround=120, pacu=[(0, 2880, 1), (480, 1200, beds)], prime_end=840,
                   weights=Weights(left_out=1000, surgeon_wait=1),
                   in_use=(("pacu", 480, 480 + held_until, 1), ("staff:rn", 480, 500, 1))
                   if held_until else ())
    plan = construct(p, {c.id: c.booked_room for c in p.cases})
    got = model_objective(p, plan)
    assert got is not None
    assert got == pytest.approx(objective(p, plan))
