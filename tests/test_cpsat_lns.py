"""Large-neighbourhood search on frozen day problems (bench/instances): it never makes a plan
worse, it is repeatable, its plans keep the room and surgeon constraints (checked here apart from
the solver), and on a 20-OR day it places the cases a one-worker solve leaves out."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from policies.cpsat_lns import LnsConfig, improve, neighbourhoods
from policies.cpsat_model import DayProblem, Solution, solve_once
from policies.day_problem_io import read_problem

INSTANCES = Path(__file__).resolve().parents[1] / "bench" / "instances"


def _load(name: str) -> DayProblem:
    return read_problem(INSTANCES / f"{name}.json")[0]


def _valid(p: DayProblem, sol: Solution) -> None:
    """Each placed case once, in a capable room, inside its staffed start window; no two cases
    of a room (with turnover) or of a surgeon overlap."""
    rooms = {r.id: r for r in p.rooms}
    cases = {c.id: c for c in p.cases}
    assert set(sol.assignment) | set(sol.left_out) == set(cases)
    assert not set(sol.assignment) & set(sol.left_out)
    per_room, per_surgeon = defaultdict(list), defaultdict(list)
    for cid, (rid, s) in sol.assignment.items():
        c, r = cases[cid], rooms[rid]
        assert c.capability in r.caps
        assert max(r.open, r.free_from, c.release) <= s < r.close
        assert s + c.duration <= r.close + p.max_overtime
        per_room[rid].append((s, s + c.duration + p.turnover))
        per_surgeon[c.surgeon].append((s, s + c.surgeon_minutes))
    for spans in (*per_room.values(), *per_surgeon.values()):
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_neighbourhoods_cover_every_room_twice_in_fixed_order():
    p = _load("20or_baseline_d0")
    hoods = neighbourhoods(p, 3)
    assert hoods == neighbourhoods(p, 3)
    count = defaultdict(int)
    for h in hoods:
        for r in h:
            count[r] += 1
    assert set(count) == {r.id for r in p.rooms} and set(count.values()) == {2}


@pytest.mark.parametrize("name", ["10or_baseline_d1", "10or_pacu_closed_beds_d1"])
def test_improve_never_worsens_is_repeatable_and_valid(name):
    p = _load(name)
    start = solve_once(p, 0.05, 60.0, 1, 1)
    assert start.ok
    cfg = LnsConfig(size=3, rounds=6, dtime=0.05)
    a = improve(p, start, cfg, seed=1)
    b = improve(p, solve_once(p, 0.05, 60.0, 1, 1), cfg, seed=1)
    assert a.objective <= start.objective
    assert (a.objective, a.assignment) == (b.objective, b.assignment)
    assert a.bound == start.bound  # a sub-solve's bound is not the day's
    assert a.status == ("OPTIMAL" if a.objective <= a.bound else "FEASIBLE")
    _valid(p, a)


def test_improve_places_what_a_one_worker_solve_leaves_out_of_a_20_or_day():
    p = _load("20or_baseline_d0")
    start = solve_once(p, 0.2, 60.0, 1, 1)
    assert start.ok and start.left_out
    better = improve(p, start, LnsConfig(size=3, rounds=12, dtime=0.05), seed=1)
    assert len(better.left_out) < len(start.left_out)
    assert better.objective < 0.5 * start.objective
    _valid(p, better)
