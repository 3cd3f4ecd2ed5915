"""An assignment-only relaxation of the CP-SAT day model: a valid lower bound on its objective.

The day model (:mod:`policies.cpsat_model`) proves weak bounds: its linear relaxation knows
little about how a room's end follows from the cases in it, so on days that must leave cases out
or run rooms over the bound stays far below any plan. This model keeps only *which* room each
case goes to (or that it is left out) and drops *when*:

- a room's last case ends no earlier than its opening (or when it is free) plus its cases'
  minutes and the turnovers between them, so its overtime, its idle time and the minutes planned
  into its add-on reserve are at least what that energy says, and that end is within the
  overtime limit (and before the reserve, when the reserve is enforced);
- a surgeon's cases fit, one after another, between the earliest opening and the latest close;
- a tray type's uses (each case plus reprocessing) fit the stock over the same span.

Moving a case out of its booked room and leaving it out are priced exactly; lateness, fairness
and surgeons' waiting are priced at zero. Every plan of the day model is a solution of this one
at no higher cost, so its optimum, and CP-SAT's proven bound on it, bound the day model from
below. Solved with one worker, a fixed seed and a deterministic-time limit (repeatable).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from policies.cpsat_model import DayProblem, Solution


@dataclass(frozen=True)
class AssignmentBound:
    """What the relaxation found: its proven bound (valid for the day), its best objective and
    assignment (case -> room; cases absent are left out), the status and the wall time."""

    bound: float
    objective: float
    assignment: dict[str, str]
    status: str
    wall_time: float


def _candidates(p: DayProblem) -> dict[str, list[str]]:
    """Rooms each case may go to: capable, allowed by a pin, and able to start it in staffed
    hours and end it within the overtime limit (and before an enforced reserve)."""
    out: dict[str, list[str]] = {}
    for c in p.cases:
        rooms = []
        for r in p.rooms:
            if c.capability not in r.caps or (c.id in p.pinned and p.pinned[c.id] != r.id):
                continue
            lo = max(r.open, r.free_from, c.release)
            limit = r.close + p.max_overtime
            if p.reserve_enforced and r.reserve > 0:
                limit = min(limit, r.close - r.reserve)
            if lo <= r.close - 1 and lo + c.duration <= limit:
                rooms.append(r.id)
        out[c.id] = rooms
    return out


def build_relaxation(p: DayProblem) -> tuple[cp_model.CpModel, dict, dict]:
    """The relaxation's model, its room literals (case, room) and left-out literals."""
    m = cp_model.CpModel()
    w = p.weights
    cand = _candidates(p)
    x: dict[tuple[str, str], cp_model.IntVar] = {}
    skip: dict[str, cp_model.IntVar] = {}
    by_room: dict[str, list] = defaultdict(list)
    terms: list = []
    over: dict[str, cp_model.IntVar] = {}  # the room runs past its close
    for c in p.cases:
        skip[c.id] = m.new_bool_var(f"skip[{c.id}]")
        if not p.allow_skip or c.id in p.pinned:
            m.add(skip[c.id] == 0)
        for rid in cand[c.id]:
            x[c.id, rid] = m.new_bool_var(f"x[{c.id},{rid}]")
            by_room[rid].append((c, x[c.id, rid]))
        m.add_exactly_one([*(x[c.id, rid] for rid in cand[c.id]), skip[c.id]])
        terms.append(w.left_out * skip[c.id])
        if (c.id, c.booked_room) in x:
            terms.append(w.moved_room * (1 - x[c.id, c.booked_room]))
        elif c.booked_room:  # its booked room cannot take it today: moved or out, either way
            terms.append(w.moved_room)
    for r in p.rooms:
        lo = max(r.open, r.free_from)
        items = by_room.get(r.id, [])
        if not items:
            terms.append(w.idle * max(0, r.close - lo))
            continue
        # the room's last case ends at least here (valid when the room has a case; with none
        # it is below close, since every candidate starts before close, so it costs nothing)
        end = lo - p.turnover + sum(lit * (c.duration + p.turnover) for c, lit in items)
        m.add(end <= r.close + p.max_overtime)
        ot = m.new_int_var(0, r.close + p.max_overtime, f"overtime[{r.id}]")
        m.add(ot >= end - r.close)
        idle = m.new_int_var(0, r.close + p.max_overtime, f"idle[{r.id}]")
        m.add(idle >= (r.close - lo) - sum(lit * c.duration for c, lit in items) + ot)
        terms += [w.overtime * ot, w.idle * idle]
        over[r.id] = m.new_bool_var(f"over[{r.id}]")
        m.add(ot <= p.max_overtime * over[r.id])
        if r.reserve > 0:
            edge = r.close - r.reserve
            if p.reserve_enforced:
                m.add(end <= edge)
            else:
                into = m.new_int_var(0, r.close + p.max_overtime, f"into_reserve[{r.id}]")
                if lo - p.turnover <= edge:  # the aggregate is harmless for an empty room
                    m.add(into >= end - edge)
                else:  # room free only inside its reserve: each case reaches at least this
                    for c, lit in items:
                        m.add(into >= lo + c.duration - edge).only_enforce_if(lit)
                terms.append(w.reserve * into)
    _crews_at_close(m, p, over)
    _surgeons_and_trays(m, p, skip)
    m.minimize(sum(terms))
    return m, x, skip


def _crews_at_close(m: cp_model.CpModel, p: DayProblem, over: dict) -> None:
    """A room that runs past its close has a case in it at the closing minute (a case starts
    before close), so the rooms closing at the same minute that run over need a crew each from
    the staff on shift then (less what is held already)."""
    from policies.cpsat_model import capacity_profile

    horizon = max(r.close + p.max_overtime for r in p.rooms) + 1
    closing: dict[int, list[str]] = defaultdict(list)
    for r in p.rooms:
        if r.id in over:
            closing[r.close].append(r.id)
    for role, shifts in p.staff.items():
        crew = min((c.crew.get(role, 0) for c in p.cases), default=0)
        if crew <= 0:
            continue
        prof = capacity_profile(horizon, shifts)
        for t, rooms in closing.items():
            cap = next((n for a, b, n in prof if a <= t < b), 0)
            cap -= sum(n for res, a, b, n in p.in_use if res == f"staff:{role}" and a <= t < b)
            if crew * len(rooms) > cap:
                m.add(crew * sum(over[rid] for rid in rooms) <= max(cap, 0))


def _surgeons_and_trays(m: cp_model.CpModel, p: DayProblem, skip: dict) -> None:
    """Energy cuts: a surgeon's cases in a row, a tray type's uses within its stock, over the span
    from the earliest opening to the latest end the overtime limit allows."""
    if not p.rooms:
        return
    first = min(max(r.open, r.free_from) for r in p.rooms)
    last = max(r.close + p.max_overtime for r in p.rooms)
    by_surgeon: dict[str, list] = defaultdict(list)
    for c in p.cases:
        by_surgeon[c.surgeon].append(c)
    for cs in by_surgeon.values():
        need = [max(c.surgeon_minutes, 1) for c in cs]
        span = max(last - c.duration + n for c, n in zip(cs, need, strict=True)) \
            - min(max(first, c.release) for c in cs)
        if sum(need) > span:
            m.add(sum((1 - skip[c.id]) * n for c, n in zip(cs, need, strict=True)) <= span)
    for tray, stock in p.trays.items():
        users = [c for c in p.cases if c.trays.get(tray)]
        energy = [c.trays[tray] * (c.duration + p.tray_turnaround) for c in users]
        cap = stock * (last + p.tray_turnaround - first)
        if users and sum(energy) > cap:
            m.add(sum((1 - skip[c.id]) * e for c, e in zip(users, energy, strict=True)) <= cap)


def assignment_bound(p: DayProblem, deterministic_time: float = 1.0, seed: int = 0,
                     wall_time: float = 60.0) -> AssignmentBound:
    """Solve the relaxation (one worker, full linearisation) and return its proven bound."""
    t0 = time.perf_counter()
    if not p.cases:
        return AssignmentBound(0.0, 0.0, {}, "OPTIMAL", 0.0)
    m, x, _ = build_relaxation(p)
    # warm start: the hinted rooms (a case the hint leaves out, out), else the booked ones
    rooms = {cid: where[0] for cid, where in p.hint.items()} if p.hint else \
        {c.id: c.booked_room for c in p.cases}
    for (cid, rid), lit in x.items():
        m.add_hint(lit, rooms.get(cid) == rid)
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.max_deterministic_time = deterministic_time
    prm.max_time_in_seconds = wall_time
    prm.random_seed = seed
    prm.num_workers = 1
    prm.linearization_level = 2  # the LP is what proves the bound
    status = solver.solve(m)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = float("inf") if status == cp_model.INFEASIBLE else float("-inf")
        return AssignmentBound(bound, float("nan"), {}, name, time.perf_counter() - t0)
    rooms = {cid: rid for (cid, rid), lit in x.items() if solver.boolean_value(lit)}
    return AssignmentBound(solver.best_objective_bound, solver.objective_value, rooms, name,
                           time.perf_counter() - t0)


def tightened(p: DayProblem, sol: Solution, deterministic_time: float, seed: int) -> Solution:
    """``sol`` with its bound raised to the assignment relaxation's where that is higher (and
    OPTIMAL when the plan meets it); the relaxation's time is added to the wall time."""
    relaxed = assignment_bound(p, deterministic_time, seed)
    out = replace(sol, wall_time=sol.wall_time + relaxed.wall_time)
    if relaxed.bound > sol.bound:
        out.bound = min(relaxed.bound, sol.objective)
        if out.objective <= relaxed.bound + 1e-6:
            out.status = "OPTIMAL"
    return out


__all__ = ["AssignmentBound", "assignment_bound", "build_relaxation", "tightened"]
