"""The day model's objective and bound against brute force on small days (issue 19): every way to
put 4-5 cases into 2-3 rooms (or leave them out), each room's cases in every order, started as
early as they can (left-shifted: with distinct surgeons and ample staff, trays and PACU, and no
term that rewards a later start, some left-shifted plan is optimal). The objective is computed
here from the plan by the model's documented terms, apart from the solver. CP-SAT's bound must
never exceed the brute-force optimum, and an OPTIMAL solve must equal it."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.cpsat_model import CaseSpec, DayProblem, RoomSpec, Weights, solve


def _objective(p: DayProblem, plan: dict[str, tuple[str, int]]) -> float | None:
    """The plan's objective (None when it breaks a hard constraint)."""
    w, rooms, cases = p.weights, {r.id: r for r in p.rooms}, {c.id: c for c in p.cases}
    total = 0.0
    late_by_service: dict[str, list[int]] = {}
    for c in p.cases:
        where = plan.get(c.id)
        late = 0
        if where is None:
            total += w.left_out
        else:
            room, s = where
            r = rooms[room]
            if s > r.close - 1 or s + c.duration > r.close + p.max_overtime:
                return None
            late = int(s > p.prime_end)
        capable = c.booked_room in rooms and c.capability in rooms[c.booked_room].caps
        if capable:
            total += w.moved_room * (0 if where and where[0] == c.booked_room else 1)
        elif c.booked_room:
            total += w.moved_room
        total += w.late_start * 60 * late
        late_by_service.setdefault(c.service, []).append(late)
    for r in p.rooms:
        mine = [(cid, s) for cid, (rid, s) in plan.items() if rid == r.id]
        end = max((s + cases[cid].duration for cid, s in mine), default=0)
        ot = max(0, end - r.close)
        load = sum(cases[cid].duration for cid, _ in mine)
        idle = max(0, (r.close - max(r.open, r.free_from)) - load + ot)
        total += w.overtime * ot + w.idle * idle
    if len(late_by_service) > 1:
        total += w.fairness * max(math.ceil(100 * sum(v) / len(v)) for v in late_by_service.values())
    return total


def brute_force(p: DayProblem) -> float:
    """The best objective over every assignment and order, left-shifted."""
    ids, rooms = [c.id for c in p.cases], {r.id: r for r in p.rooms}
    dur = {c.id: c.duration for c in p.cases}
    options = [[r.id for r in p.rooms if c.capability in r.caps] + ([None] if p.allow_skip else [])
               for c in p.cases]
    best = math.inf
    for choice in itertools.product(*options):
        groups: dict[str, list[str]] = {}
        for cid, rid in zip(ids, choice, strict=True):
            if rid is not None:
                groups.setdefault(rid, []).append(cid)
        orders = [list(itertools.permutations(g)) for g in groups.values()]
        for combo in itertools.product(*orders):
            plan = {}
            for rid, seq in zip(groups, combo, strict=True):
                t = max(rooms[rid].open, rooms[rid].free_from)
                for cid in seq:
                    plan[cid] = (rid, t)
                    t += dur[cid] + p.turnover
            val = _objective(p, plan)
            if val is not None:
                best = min(best, val)
    return best


def _day(durations: list[int], booked: list[int], n_rooms: int, close: int, prime_end: int,
         services: list[int]) -> DayProblem:
    rooms = [RoomSpec(f"R{i}", frozenset({"gen"}), 480, close) for i in range(n_rooms)]
    cases = [CaseSpec(f"c{i}", f"dr{i}", f"s{services[i]}", "gen", d, d, f"R{booked[i] % n_rooms}",
                      {}, {}, 30) for i, d in enumerate(durations)]
    return DayProblem(day=0, cases=cases, rooms=rooms, turnover=20, max_overtime=120, staff={},
                      trays={}, tray_turnaround=0, pacu=[(0, 2880, 50)], prime_end=prime_end,
                      weights=Weights(left_out=2000))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(40, 240), min_size=3, max_size=5), st.integers(2, 3),
       st.integers(600, 960), st.integers(540, 900), st.data())
def test_bound_never_exceeds_the_brute_force_optimum(durations, n_rooms, close, prime, data):
    n = len(durations)
    booked = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    services = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    p = _day(durations, booked, n_rooms, close, prime, services)
    opt = brute_force(p)
    sol = solve(p, deterministic_time=5.0, wall_time=60.0, seed=0)
    assert sol.ok
    assert sol.bound <= opt + 1e-6
    assert sol.objective >= opt - 1e-6
    if sol.status == "OPTIMAL":
        assert sol.objective == pytest.approx(opt)
    got = _objective(p, sol.assignment)
    assert got is not None and got == pytest.approx(sol.objective)


def test_a_day_that_must_run_over_is_priced_as_brute_force_says():
    """Three 200-minute cases booked in one room of two that close at 12:00: brute force and
    the solver agree on the optimum (a move and overtime against lateness)."""
    p = _day([200, 200, 200], [0, 0, 0], 2, 720, 600, [0, 0, 1])
    sol = solve(p, deterministic_time=5.0, wall_time=60.0, seed=0)
    assert sol.status == "OPTIMAL"
    assert sol.objective == pytest.approx(brute_force(p))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(40, 300), min_size=3, max_size=5), st.integers(2, 3),
       st.integers(600, 960), st.integers(540, 900), st.data())
def test_assignment_bound_never_exceeds_the_brute_force_optimum(durations, n_rooms, close, prime,
                                                                 data):
    """The assignment relaxation (policies.cpsat_bound) is a valid lower bound: at most the
    brute-force optimum, with one surgeon for all cases on some days (its energy cut binds)."""
    from policies.cpsat_bound import assignment_bound

    n = len(durations)
    booked = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    services = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    p = _day(durations, booked, n_rooms, close, prime, services)
    if data.draw(st.booleans()):  # one surgeon: cases in a row across rooms
        p = replace(p, cases=[replace(c, surgeon="dr0") for c in p.cases])
        opt = solve(p, deterministic_time=10.0, wall_time=60.0, seed=0)
        assert opt.status == "OPTIMAL"
        best = opt.objective
    else:
        best = brute_force(p)
    b = assignment_bound(p, deterministic_time=2.0, seed=0)
    assert b.status == "OPTIMAL"
    assert b.bound <= best + 1e-6
