"""The CP-SAT model of one surgical day: data → model → solve → extract.

Cases are assigned to rooms and sequenced with optional interval variables (integer minutes from
the day's midnight). Hard constraints: room capability and staffed hours (with at most
``max_overtime`` planned minutes past close, at the plan's forecast quantile), a room holds one
case at a time (with turnover) and none during its planned downtime, a surgeon is never in two rooms at once, crews per role never exceed the staff
on shift, trays of each type (held from the start of the case until reprocessed) never exceed
the inventory, PACU beds over predicted stays never exceed the beds, and cases pinned by the
caller stay where they are. Soft, as weighted penalties summed into one objective: leaving a
case out of the day (heavily: the monitored plan-all-booked rule), planned overtime at P80, idle
staffed time, moving a case out of its booked room (the surgeon's block), a surgeon waiting
between their own cases (surgeons' preference for a run of cases), minutes planned into a room's
add-on reserve (when the catalog's ``addon_reserve`` rule is monitored or advisory; enforced, it
is hard), starts after prime time, and the spread of late starts across services (fairness).

With ``workers=1`` and a deterministic-time limit the search is reproducible run to run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ortools.sat.python import cp_model


@dataclass(frozen=True)
class CaseSpec:
    """A case as the solver sees it (durations in whole minutes)."""

    id: str
    surgeon: str
    service: str
    capability: str
    duration: int          # P80 forecast of in-room minutes
    surgeon_minutes: int   # minutes the surgeon is planned to be held (the whole case at P80)
    booked_room: str
    crew: Mapping[str, int]
    trays: Mapping[str, int]
    pacu_minutes: int
    release: int = 0       # earliest start (minute of the day)


@dataclass(frozen=True)
class RoomSpec:
    """A room available on the day: capabilities and its staffed window."""

    id: str
    caps: frozenset[str]
    open: int
    close: int
    free_from: int = 0     # busy until then (day-of re-planning)
    down: tuple[tuple[int, int], ...] = ()  # planned downtime windows [start, end)
    reserve: int = 0       # minutes before close kept for add-ons (the addon_reserve rule)


@dataclass(frozen=True)
class Weights:
    """Penalty weights (per minute or per case) of the soft constraints."""

    overtime: int = 10
    idle: int = 1
    moved_room: int = 30
    late_start: int = 2
    fairness: int = 5
    reserve: int = 3       # per minute planned into a room's add-on reserve (rule not enforced)
    surgeon_wait: int = 0  # per minute a surgeon waits between their own cases (a preference;
    #                        off by default: it makes the search markedly slower)
    left_out: int = 5000   # per case left out of the day (the monitored plan-all-booked rule)


@dataclass(frozen=True)
class DayProblem:
    """Everything the solver needs about one day."""

    day: int
    cases: Sequence[CaseSpec]
    rooms: Sequence[RoomSpec]
    turnover: int
    max_overtime: int
    staff: Mapping[str, Sequence[tuple[int, int, int]]]   # role -> (start, end, count)
    trays: Mapping[str, int]
    tray_turnaround: int
    pacu: Sequence[tuple[int, int, int]]  # PACU beds as (start, end, count) windows that add up
    prime_end: int
    weights: Weights = Weights()
    hint: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    pinned: Mapping[str, str] = field(default_factory=dict)  # case -> room it must stay in
    allow_skip: bool = True  # a case may be left out of the day, at the ``left_out`` penalty
    reserve_enforced: bool = False  # rooms' add-on reserves are hard (else a soft penalty)
    in_use: Sequence[tuple[str, int, int, int]] = ()  # held already (day-of): (resource, start,
    #   end, units) with resource "pacu", "staff:<role>" or "tray:<type>"


@dataclass
class Solution:
    """What the solver found, with its statistics."""

    status: str
    objective: float
    bound: float
    wall_time: float
    assignment: dict[str, tuple[str, int]]  # case -> (room, start minute of the day)
    overtime: dict[str, int]
    left_out: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A plan exists (optimal or feasible)."""
        return self.status in ("OPTIMAL", "FEASIBLE")

    @property
    def gap(self) -> float:
        """Relative gap between the objective and the best bound."""
        if not self.ok:
            return float("nan")
        return abs(self.objective - self.bound) / max(abs(self.objective), 1.0)


def capacity_profile(horizon: int, shifts: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Piecewise-constant staff on duty over [0, horizon): (start, end, count) segments."""
    cuts = sorted({0, horizon, *[max(0, min(horizon, t)) for s, e, _ in shifts for t in (s, e)]})
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b > a:
            out.append((a, b, sum(c for s, e, c in shifts if s <= a and b <= e)))
    return out


def _cumulative(m: cp_model.CpModel, name: str, need: list, windows, horizon: int,
                held: Sequence[tuple[int, int, int]] = ()) -> None:
    """Demands ``need`` never exceed a capacity that varies over time: the capacity is the peak,
    and fixed intervals take up the difference wherever fewer units are available, and the units
    ``held`` already as (start, end, units), never more than the peak (so that what is held, even
    over capacity, makes the day no less feasible: those hours are simply full)."""
    if not need:
        return
    prof = capacity_profile(horizon, windows)
    peak = max((n for _, _, n in prof), default=0)
    cuts = sorted({a for a, _, _ in prof} | {horizon}
                  | {max(0, min(horizon, t)) for a, b, _ in held for t in (a, b)})
    blocks = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        cap = next((n for s, e, n in prof if s <= a < e), peak)
        used = min(peak, peak - cap + sum(n for s, e, n in held if s <= a and b <= e))
        if b > a and used > 0:
            blocks.append((m.new_fixed_size_interval_var(a, b - a, f"off[{name},{a}]"), used))
    m.add_cumulative([iv for iv, _ in need + blocks], [d for _, d in need + blocks], peak)


def _held(p: DayProblem, resource: str) -> list[tuple[int, int, int]]:
    """What ``resource`` already holds on the day, as (start, end, units)."""
    return [(a, b, n) for res, a, b, n in p.in_use if res == resource and b > a and n > 0]


def build(p: DayProblem) -> tuple[cp_model.CpModel, dict]:
    """The CP-SAT model of a day and its named variables."""
    m = cp_model.CpModel()
    horizon = max([r.close + p.max_overtime for r in p.rooms] + [r.free_from for r in p.rooms]
                  + [c.release for c in p.cases]) + max(
        [c.pacu_minutes for c in p.cases] + [c.duration for c in p.cases] + [0]) \
        + p.tray_turnaround + p.turnover
    start, end, x, skip = {}, {}, {}, {}
    by_room: dict[str, list] = defaultdict(list)
    for c in p.cases:
        start[c.id] = m.new_int_var(0, horizon, f"start[{c.id}]")
        end[c.id] = m.new_int_var(0, horizon, f"end[{c.id}]")
        m.add(end[c.id] == start[c.id] + c.duration)
        m.add(start[c.id] >= c.release)
        skip[c.id] = m.new_bool_var(f"skip[{c.id}]")
        if not p.allow_skip or c.id in p.pinned:
            m.add(skip[c.id] == 0)
        lits = []
        for r in p.rooms:
            if c.capability not in r.caps or (c.id in p.pinned and p.pinned[c.id] != r.id):
                continue
            lit = m.new_bool_var(f"x[{c.id},{r.id}]")
            x[c.id, r.id] = lit
            lits.append(lit)
            lo = max(r.open, r.free_from, c.release)
            m.add(start[c.id] >= lo).only_enforce_if(lit)
            m.add(start[c.id] <= r.close - 1).only_enforce_if(lit)  # starts in staffed hours
            m.add(end[c.id] <= r.close + p.max_overtime).only_enforce_if(lit)
            iv = m.new_optional_interval_var(start[c.id], c.duration + p.turnover,
                                             start[c.id] + c.duration + p.turnover, lit,
                                             f"room[{c.id},{r.id}]")
            by_room[r.id].append((c, lit, iv))
        m.add_exactly_one([*lits, skip[c.id]])  # a room, or left out of the day
    for r in p.rooms:  # one case at a time, never during planned downtime
        items = [iv for _, _, iv in by_room.get(r.id, [])]
        items += [m.new_fixed_size_interval_var(a, b - a, f"down[{r.id},{a}]")
                  for a, b in r.down if b > a]
        if items:
            m.add_no_overlap(items)
    # surgeons: never in two rooms at once
    present = {c.id: skip[c.id].Not() for c in p.cases}
    by_surgeon: dict[str, list] = defaultdict(list)
    for c in p.cases:
        by_surgeon[c.surgeon].append(m.new_optional_fixed_size_interval_var(
            start[c.id], max(c.surgeon_minutes, 1), present[c.id], f"surgeon[{c.id}]"))
    for ivs in by_surgeon.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)
    case_iv = {c.id: m.new_optional_fixed_size_interval_var(start[c.id], c.duration,
                                                            present[c.id], f"case[{c.id}]")
               for c in p.cases}
    # crews against staff on shift
    for role, shifts in p.staff.items():
        need = [(case_iv[c.id], c.crew.get(role, 0)) for c in p.cases if c.crew.get(role, 0)]
        _cumulative(m, role, need, shifts, horizon, _held(p, f"staff:{role}"))
    # trays: held from the start of the case until reprocessed
    for tray, stock in p.trays.items():
        users = [(c, c.trays[tray]) for c in p.cases if c.trays.get(tray)]
        if users:
            ivs = [m.new_optional_fixed_size_interval_var(
                start[c.id], c.duration + p.tray_turnaround, present[c.id], f"tray[{tray},{c.id}]")
                for c, _ in users]
            _cumulative(m, f"tray:{tray}", list(zip(ivs, [n for _, n in users], strict=True)),
                        [(0, horizon, stock)], horizon, _held(p, f"tray:{tray}"))
    # PACU beds over predicted stays (fewer beds after hours)
    stays = [(m.new_optional_fixed_size_interval_var(end[c.id], max(c.pacu_minutes, 1),
                                                     present[c.id], f"pacu[{c.id}]"), 1)
             for c in p.cases]
    _cumulative(m, "pacu", stays, p.pacu, horizon, _held(p, "pacu"))
    # objective
    w = p.weights
    terms = []
    overtime = {}
    for r in p.rooms:
        items = by_room.get(r.id, [])
        r_end = m.new_int_var(0, horizon, f"room_end[{r.id}]")
        for c, lit, _ in items:
            m.add(r_end >= end[c.id]).only_enforce_if(lit)
        ot = m.new_int_var(0, horizon, f"overtime[{r.id}]")
        m.add(ot >= r_end - r.close)
        overtime[r.id] = ot
        load = sum(lit * c.duration for c, lit, _ in items) if items else 0
        idle = m.new_int_var(0, horizon, f"idle[{r.id}]")
        m.add(idle >= (r.close - max(r.open, r.free_from)) - load + ot)
        terms += [w.overtime * ot, w.idle * idle]
        if r.reserve > 0 and items:  # add-on reserve: hard, or minutes planned into it
            if p.reserve_enforced:
                m.add(r_end <= r.close - r.reserve)
            else:
                into = m.new_int_var(0, horizon, f"into_reserve[{r.id}]")
                m.add(into >= r_end - (r.close - r.reserve))
                terms.append(w.reserve * into)
    # surgeons' preference: their cases back to back (minutes waiting between them)
    for name, cs in _group(p.cases, lambda c: c.surgeon).items():
        if len(cs) < 2 or not w.surgeon_wait:
            continue
        first = m.new_int_var(0, horizon, f"first[{name}]")
        last = m.new_int_var(0, horizon, f"last[{name}]")
        for c in cs:
            m.add(first <= start[c.id]).only_enforce_if(present[c.id])
            m.add(last >= start[c.id] + c.surgeon_minutes).only_enforce_if(present[c.id])
        wait = m.new_int_var(0, horizon, f"surgeon_wait[{name}]")
        m.add(wait >= last - first - sum(present[c.id] * c.surgeon_minutes for c in cs))
        terms.append(w.surgeon_wait * wait)
    late_by_service: dict[str, list] = defaultdict(list)
    for c in p.cases:
        terms.append(w.left_out * skip[c.id])
        if (c.id, c.booked_room) in x:
            terms.append(w.moved_room * (1 - x[c.id, c.booked_room]))
        elif c.booked_room:
            terms.append(w.moved_room)
        late = m.new_bool_var(f"late[{c.id}]")
        m.add(start[c.id] <= p.prime_end).only_enforce_if([late.Not(), present[c.id]])
        terms.append(w.late_start * 60 * late)
        late_by_service[c.service].append(late)
    if len(late_by_service) > 1:
        worst = m.new_int_var(0, 100, "worst_late_share")
        for lates in late_by_service.values():
            m.add(worst * len(lates) >= 100 * sum(lates))
        terms.append(w.fairness * worst)
    m.minimize(sum(terms))
    if p.hint:  # a complete warm start: hinted cases where hinted, the others left out
        hint = repaired_hint(p)
        for c in p.cases:
            room, s = hint.get(c.id, ("", 0))
            placed = (c.id, room) in x
            m.add_hint(skip[c.id], not placed)
            if placed:
                m.add_hint(start[c.id], s)
            for r in p.rooms:
                if (c.id, r.id) in x:
                    m.add_hint(x[c.id, r.id], placed and r.id == room)
    return m, {"start": start, "x": x, "overtime": overtime, "skip": skip}


def repaired_hint(p: DayProblem) -> dict[str, tuple[str, int]]:
    """The hint made consistent with the model's whole minutes: in hinted start order, each case
    starts no earlier than its room's previous case plus turnover, its surgeon's previous case,
    the room's opening and its release; a case pushed past the overtime limit is hinted out."""
    rooms = {r.id: r for r in p.rooms}
    specs = {c.id: c for c in p.cases}
    room_free: dict[str, int] = {}
    surgeon_free: dict[str, int] = {}
    out = {}
    for cid, (rid, s) in sorted(p.hint.items(), key=lambda kv: (kv[1][1], kv[0])):
        c, r = specs.get(cid), rooms.get(rid)
        if c is None or r is None or c.capability not in r.caps:
            continue
        s = max(s, r.open, r.free_from, c.release, room_free.get(rid, 0),
                surgeon_free.get(c.surgeon, 0))
        for a, b in sorted(r.down):  # after any downtime it would overlap
            if s < b and a < s + c.duration + p.turnover:
                s = b
        if s > r.close - 1 or s + c.duration > r.close + p.max_overtime:
            continue
        out[cid] = (rid, s)
        room_free[rid] = s + c.duration + p.turnover
        surgeon_free[c.surgeon] = s + max(c.surgeon_minutes, 1)
    return out


def _group(items, key) -> dict:
    out: dict = defaultdict(list)
    for it in items:
        out[key(it)].append(it)
    return out


def solve(p: DayProblem, *, deterministic_time: float = 5.0, wall_time: float = 20.0,
          seed: int = 0, workers: int = 1) -> Solution:
    """Solve a day; OPTIMAL and FEASIBLE both give a plan, anything else gives none.

    When cases may be left out, half the time first goes to a plan with every case in (a
    single search thread finds those poorly from a plan that leaves cases out), and that plan,
    when there is one, warm-starts the full model."""
    if not p.cases:
        return Solution("OPTIMAL", 0.0, 0.0, 0.0, {}, {})
    if not p.allow_skip:
        return solve_once(p, deterministic_time, wall_time, seed, workers)
    t0 = time.perf_counter()
    half = deterministic_time / 2
    every = solve_once(replace(p, allow_skip=False), half, wall_time / 2, seed, workers)
    full = solve_once(replace(p, hint=every.assignment) if every.ok else p,
                       deterministic_time - half, max(wall_time - every.wall_time, 1e-3),
                       seed, workers)
    best = full if full.ok or not every.ok else every
    best.wall_time = time.perf_counter() - t0
    return best


def solve_once(p: DayProblem, deterministic_time: float, wall_time: float, seed: int,
               workers: int) -> Solution:
    """One CP-SAT solve of the model as it is (no all-cases-first phase, see :func:`solve`)."""
    t0 = time.perf_counter()
    m, v = build(p)
    out = run_model(m, v, deterministic_time, wall_time, seed, workers)
    out.wall_time = time.perf_counter() - t0
    return out


def run_model(m: cp_model.CpModel, v: dict, deterministic_time: float, wall_time: float,
              seed: int, workers: int) -> Solution:
    """Solve a built day model (:func:`build`, maybe with constraints added) and read the plan."""
    t0 = time.perf_counter()
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.max_deterministic_time = deterministic_time
    prm.max_time_in_seconds = wall_time
    prm.random_seed = seed
    prm.num_workers = workers
    status = solver.solve(m)
    out = Solution(solver.status_name(status), float("nan"), float("nan"),
                   time.perf_counter() - t0, {}, {})
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        out.objective, out.bound = solver.objective_value, solver.best_objective_bound
        for (cid, rid), lit in v["x"].items():
            if solver.boolean_value(lit):
                out.assignment[cid] = (rid, solver.value(v["start"][cid]))
        out.overtime = {r: solver.value(ot) for r, ot in v["overtime"].items()}
        out.left_out = sorted(c for c, b in v["skip"].items() if solver.boolean_value(b))
    return out
