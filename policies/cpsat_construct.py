"""A constructive plan of a day that already respects every hard constraint of the CP-SAT model,
and the objective of any plan by the model's terms: the warm start of the day's search.

Given which room each case goes to (for instance the assignment relaxation's,
:mod:`policies.cpsat_bound`), cases are placed one at a time by a serial schedule-generation
scheme: the room that comes free first takes its next case (a surgeon's cases kept together,
longer cases first), at the earliest minute its surgeon is free and its crew, its trays
(until reprocessed) and a PACU bed (over its predicted stay) are available against the staff on
shift, the stock and the beds, less what the suite already holds, and clear of the room's
downtime. A case that cannot start in staffed hours or would end past the overtime limit is
tried in the other rooms that can take it, then left out. Everything is whole minutes and
deterministic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from policies.cpsat_model import CaseSpec, DayProblem, RoomSpec, capacity_profile, repaired_hint

Plan = dict[str, tuple[str, int]]


class _Resource:
    """Units in use over time against a capacity that varies (whole minutes)."""

    def __init__(self, capacity: Sequence[tuple[int, int, int]], horizon: int,
                 held: Sequence[tuple[int, int, int]] = ()) -> None:
        self.cap = capacity_profile(horizon, capacity) if capacity else [(0, horizon, 0)]
        self.uses: list[tuple[int, int, int]] = [(a, b, n) for a, b, n in held if b > a]

    def _cap_at(self, t: int) -> int:
        return next((n for a, b, n in self.cap if a <= t < b), 0)

    def fits(self, start: int, end: int, units: int) -> int | None:
        """None when ``units`` fit over [start, end); else the next minute worth trying."""
        cuts = sorted({start, *[a for a, _, _ in self.cap if start < a < end],
                       *[a for a, _, _ in self.uses if start < a < end]})
        for t in cuts:
            used = sum(n for a, b, n in self.uses if a <= t < b)
            if used + units > self._cap_at(t):
                ends = [b for a, b, _ in self.uses if a <= t < b and b > t]
                nxt = [a for a, _, n in self.cap if a > t and n >= units]
                return min([*ends, *nxt], default=end)
        return None

    def take(self, start: int, end: int, units: int) -> None:
        """Hold ``units`` over [start, end)."""
        self.uses.append((start, end, units))


class _Suite:
    """The day's resources as the model sees them."""

    def __init__(self, p: DayProblem) -> None:
        horizon = max([r.close + p.max_overtime for r in p.rooms] + [0]) \
            + max([c.pacu_minutes + c.duration for c in p.cases] + [0]) + p.tray_turnaround + 1
        held = defaultdict(list)
        for res, a, b, n in p.in_use:
            held[res].append((a, b, n))
        self.staff = {role: _Resource(s, horizon, held[f"staff:{role}"])
                      for role, s in p.staff.items()}
        self.trays = {t: _Resource([(0, horizon, n)], horizon, held[f"tray:{t}"])
                      for t, n in p.trays.items()}
        self.pacu = _Resource(p.pacu, horizon, held["pacu"])

    def demands(self, p: DayProblem, c: CaseSpec, s: int):
        """(resource, start, end, units) the case needs when it starts at ``s``."""
        e = s + c.duration
        out = [(self.staff[r], s, e, n) for r, n in c.crew.items() if n and r in self.staff]
        out += [(self.trays[t], s, e + p.tray_turnaround, n) for t, n in c.trays.items()
                if n and t in self.trays]
        out.append((self.pacu, e, e + max(c.pacu_minutes, 1), 1))
        return out


def _earliest(p: DayProblem, suite: _Suite, c: CaseSpec, r: RoomSpec, t: int) -> int | None:
    """The earliest start from ``t`` in room ``r`` that every resource allows (None: none today)."""
    for _ in range(500):
        if t > r.close - 1 or t + c.duration > r.close + p.max_overtime:
            return None
        clash = next((b for a, b in r.down if t < b and a < t + c.duration + p.turnover), None)
        if clash is not None:
            t = clash
            continue
        later = [nxt for res, a, b, n in suite.demands(p, c, t)
                 if (nxt := res.fits(a, b, n)) is not None]
        if not later:
            return t
        t = max(t + 1, max(later))
    return None


def _order(cases: list[CaseSpec]) -> list[CaseSpec]:
    """A room's cases: surgeons with the most minutes first, each surgeon's longest first."""
    minutes: dict[str, int] = defaultdict(int)
    for c in cases:
        minutes[c.surgeon] += c.duration
    return sorted(cases, key=lambda c: (-minutes[c.surgeon], c.surgeon, -c.duration, c.id))


def construct(p: DayProblem, rooms_of: Mapping[str, str]) -> Plan:
    """A plan placing each case in ``rooms_of[case]`` where it fits (else another capable room,
    else out), respecting every hard constraint of the model."""
    rooms = {r.id: r for r in p.rooms}
    queues: dict[str, list[CaseSpec]] = defaultdict(list)
    for c in p.cases:
        rid = rooms_of.get(c.id)
        if rid in rooms and c.capability in rooms[rid].caps:
            queues[rid].append(c)
    queues = {rid: _order(cs) for rid, cs in queues.items()}
    free = {r.id: max(r.open, r.free_from) for r in p.rooms}
    surgeon_free: dict[str, int] = defaultdict(int)
    suite, plan, spill = _Suite(p), {}, []

    def place(c: CaseSpec, rid: str) -> bool:
        r = rooms[rid]
        s = _earliest(p, suite, c, r, max(free[rid], c.release, surgeon_free[c.surgeon]))
        if s is None or (c.id in p.pinned and p.pinned[c.id] != rid):
            return False
        for res, a, b, n in suite.demands(p, c, s):
            res.take(a, b, n)
        plan[c.id] = (rid, s)
        free[rid] = s + c.duration + p.turnover
        surgeon_free[c.surgeon] = s + max(c.surgeon_minutes, 1)
        return True

    while any(queues.values()):
        rid = min((r for r, q in queues.items() if q), key=lambda r: (free[r], r))
        c = queues[rid].pop(0)
        if not place(c, rid):
            spill.append(c)
    for c in sorted(spill, key=lambda c: -c.duration):  # another room that can take it
        for r in sorted((r for r in p.rooms if c.capability in r.caps), key=lambda r: free[r.id]):
            if place(c, r.id):
                break
    return plan


def objective(p: DayProblem, plan: Mapping[str, tuple[str, int]]) -> float:
    """The model's objective of a plan that keeps the hard constraints (not checked here)."""
    w, spec = p.weights, {c.id: c for c in p.cases}
    total = 0.0
    late_by_service: dict[str, list[int]] = defaultdict(list)
    for c in p.cases:
        where = plan.get(c.id)
        total += w.left_out * (where is None)
        booked_ok = any(r.id == c.booked_room and c.capability in r.caps for r in p.rooms) \
            and not (c.id in p.pinned and p.pinned[c.id] != c.booked_room)
        if c.booked_room:
            total += w.moved_room * (not booked_ok or where is None or where[0] != c.booked_room)
        late = int(where is not None and where[1] > p.prime_end)
        total += w.late_start * 60 * late
        late_by_service[c.service].append(late)
    for r in p.rooms:
        mine = [(spec[cid], s) for cid, (rid, s) in plan.items() if rid == r.id]
        end = max((s + c.duration for c, s in mine), default=0)
        ot = max(0, end - r.close)
        load = sum(c.duration for c, _ in mine)
        total += w.overtime * ot + w.idle * max(0, r.close - max(r.open, r.free_from) - load + ot)
        if r.reserve > 0 and any(c.capability in r.caps and p.pinned.get(c.id, r.id) == r.id
                                 for c in p.cases):
            total += 0 if p.reserve_enforced else w.reserve * max(0, end - (r.close - r.reserve))
    by_surgeon: dict[str, list[tuple[CaseSpec, int]]] = defaultdict(list)
    for cid, (_, s) in plan.items():
        by_surgeon[spec[cid].surgeon].append((spec[cid], s))
    if w.surgeon_wait:
        for items in by_surgeon.values():
            if len(items) > 1:
                span = max(s + c.surgeon_minutes for c, s in items) - min(s for _, s in items)
                total += w.surgeon_wait * max(0, span - sum(c.surgeon_minutes for c, _ in items))
    if len(late_by_service) > 1:
        total += w.fairness * max(math.ceil(100 * sum(v) / len(v))
                                  for v in late_by_service.values())
    return total


def warm_start(p: DayProblem) -> Plan:
    """The better, by :func:`objective`, of the problem's hint made consistent
    (:func:`~policies.cpsat_model.repaired_hint`; the hard constraints it does not check are
    left to the solver) and the constructive plan of the booked rooms."""
    built = construct(p, {c.id: c.booked_room for c in p.cases})
    if not p.hint:
        return built
    hinted = repaired_hint(p)
    return hinted if objective(p, hinted) <= objective(p, built) else built


__all__ = ["construct", "objective", "warm_start"]
