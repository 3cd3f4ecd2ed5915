"""``rules``: a scheduling policy driven by a rules catalog (:mod:`policies.rules_catalog`).

**Each morning** (``plan_day``) the day's electives stay in their booked rooms (their service's
blocks) and are re-sequenced and re-timed by the catalog:

1. Forecast every case (the forecaster given, by default the booked minutes; if it fails, the
   booked minutes, with a ``plan_fallback`` event). A case is planned for its forecast at the
   ``plan_percentile`` quantile (booked minutes without that rule) and sequenced in its room by
   its median forecast (``sequence``; booked order without that rule).
2. Cases are placed room by room, in time order (always the room that is free earliest next),
   each at the earliest start after the room's previous case and a planned turnover at which
   every hard constraint holds over the case's planned interval: the start lies in the room's
   staffed window and outside planned downtime, the surgeon is free (``surgeon_one_room``), staff
   of each role are on shift, trays of each type are on the shelf (held for the case and a
   reprocessing turnaround) and a PACU bed is free for the predicted stay. Its planned end must
   also stay within close + ``max_planned_overtime`` (and, when those rules are enforced, within
   close − ``addon_reserve`` and, for a first case, open + ``first_case_at_open`` grace).
3. A case that fits nowhere in its room moves (``max_planned_overtime.relocate``) to the other
   capable elective room staffed that day that can start it earliest after its own list, where
   it still ends by close − that room's add-on reserve, its surgeon is free and the hard
   constraints hold (into a room with no other case only at the open, so that a move never
   makes a late first case).
4. A case that still does not fit is left out of the day (it ends ``not_started``/``unplanned``),
   unless ``max_planned_overtime`` is not enforced: then it stays in its own room past the
   limit, recorded as a departure from that rule.

Enforced rules are never broken by a plan (:func:`policies.checks.check_plan` checks them).
Departures from monitored rules are written with ``SuiteView.note``: ``rule_override`` with
``detail = "<rule id>: <justification code>"`` when the rule is overridable, ``rule_violation``
with ``detail = "<rule id>: <what happened>"`` otherwise. Advisory rules are followed where
possible and never audited. The departures a plan can produce: a room's planned end past close −
reserve (``addon_reserve``; code ``block_booking``), a relocated case after shorter cases
(``sequence``; ``relocated_case``), a first case after the open (``first_case_at_open``;
``resource_limit``), a case left out (``plan_all_booked``; ``capacity``).

**Day-of**: ``place_addon`` puts emergent add-ons at the front of the capable room free soonest
(``emergent_bump``) and other add-ons first come, first served into the first free capable room;
``on_running_long`` moves the next waiting case of a room that runs long (``move_on_overrun``);
``on_room_down`` moves waiting cases of a room that goes down (``move_on_room_down``). Day-of
moves are noted as ``replan`` events. Day-of estimates use booked minutes (what the desk sees in
``RoomStatus``) and ignore surgeons' other rooms. The policy never draws random numbers.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from policies.forecast import BookedForecaster, Forecast, Forecaster, ForecastError
from policies.planning import (
    EPS,
    Step,
    Usage,
    addon_reserve,
    elective_rooms,
    pacu_beds,
    pacu_minutes,
    planned_downtime,
    staff_on_shift,
    staffed_window,
    tray_needs,
    tray_turnaround,
    turnover,
)
from policies.rules_catalog import Rule, RuleCatalog, load_catalog
from twin.demand import Case
from twin.policy import Move, PlannedCase, RoomStatus, SuiteView, first_free_room
from twin.scenario import Scenario, clock


@dataclass
class _Day:
    """Resource timelines of one day's plan while it is being built."""

    crew: dict[str, Usage]
    trays: dict[str, Usage]
    pacu: Usage
    surgeon: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)
    placed: dict[str, list[tuple[Case, float]]] = field(default_factory=dict)  # room -> (case, start)
    free: dict[str, float] = field(default_factory=dict)  # room -> earliest next start


class RulesPolicy:
    """Plans and day-of decisions from a rules catalog (see the module docstring)."""

    name = "rules"

    def __init__(self, scenario: Scenario, catalog: RuleCatalog | None = None,
                 forecaster: Forecaster | None = None) -> None:
        self.scn = scenario
        self.catalog = catalog if catalog is not None else load_catalog(None)
        self.forecaster: Forecaster = forecaster if forecaster is not None else BookedForecaster()
        self.T = turnover(scenario)
        self.turnaround = tray_turnaround(scenario)
        self.forecasts: dict[str, Forecast] = {}  # every case planned so far
        self.durations: dict[str, float] = {}  # planned minutes of every case planned so far
        self._downtime = {r.id: planned_downtime(scenario, r.id) for r in scenario.rooms}
        self._order = {r.id: i for i, r in enumerate(scenario.rooms)}
        self._on_call = {r.id for r in scenario.rooms if r.on_call}

    # --- catalog -------------------------------------------------------------------------
    def rule(self, kind: str) -> Rule | None:
        """The catalog's rule of ``kind`` (None if it has none)."""
        return self.catalog.get(kind)

    @property
    def quantile(self) -> float | None:
        """The forecast quantile plans are made to (None: booked minutes)."""
        r = self.rule("plan_percentile")
        return None if r is None else float(r.param("quantile"))

    def _enforced(self, kind: str) -> bool:
        r = self.rule(kind)
        return r is not None and r.severity == "enforced"

    def _depart(self, view: SuiteView, rule: Rule | None, code: str, case_id: str = "",
                room: str = "", value: float = math.nan, what: str = "") -> None:
        """Audit a departure from a monitored rule (override if overridable, else violation)."""
        if rule is None or rule.severity != "monitored":
            return
        if rule.overridable:
            detail = f"{rule.id}: {code}" + (f" ({what})" if what else "")
            view.note("rule_override", case_id, room, value, detail)
        else:
            view.note("rule_violation", case_id, room, value, f"{rule.id}: {what or code}")

    # --- forecasts -------------------------------------------------------------------------
    def _forecast(self, day: int, cases: Sequence[Case], view: SuiteView) -> dict[str, Forecast]:
        try:
            fc = dict(self.forecaster.forecast(cases, day))
        except ForecastError as e:
            view.note("plan_fallback", detail=f"day {day}: forecaster "
                      f"{getattr(self.forecaster, 'name', '?')} failed ({e}); booked minutes used")
            fc = {}
        booked = BookedForecaster().forecast([c for c in cases if c.id not in fc], day)
        fc.update(booked)
        return fc

    # --- the day's plan --------------------------------------------------------------------
    def plan_day(self, day: int, cases: Sequence[Case], view: SuiteView) -> list[PlannedCase]:
        """Re-sequence and re-time each booked room by the catalog (module docstring)."""
        scn = self.scn
        cases = [c for c in cases if c.booked_room]
        fc = self._forecast(day, cases, view)
        q = self.quantile
        dur = {c.id: max(float(fc[c.id].at(q)) if q is not None else c.booked_minutes, 1.0)
               for c in cases}
        exp = {c.id: float(fc[c.id].p50) for c in cases}
        self.forecasts.update(fc)
        self.durations.update(dur)

        st = _Day(
            crew={role: Usage(staff_on_shift(scn, role, day)) for role in scn.staff},
            trays={t: Usage(Step((-math.inf,), (n,))) for t, n in scn.spd.inventory.items()},
            pacu=Usage(pacu_beds(scn, day)),
        )
        res = self.rule("addon_reserve")
        reserve = addon_reserve(scn, day, float(res.param("factor")), float(res.param("max_minutes"))) \
            if res else {}
        ot = self.rule("max_planned_overtime")
        over = float(ot.param("minutes")) if ot else math.inf

        # 1-2. own rooms, in time order
        seq = self.rule("sequence")
        by_room: dict[str, list[Case]] = {}
        for c in sorted(cases, key=lambda c: (c.booked_start, c.id)):
            by_room.setdefault(c.booked_room, []).append(c)
        heap: list[tuple[float, int, str]] = []
        pending: dict[str, deque[Case]] = {}
        for room, lst in by_room.items():
            if seq is not None:
                sign = -1.0 if seq.param("order") == "longest_first" else 1.0
                lst.sort(key=lambda c: sign * exp[c.id])  # stable: booked order breaks ties
            w = staffed_window(scn, room, day)
            pending[room] = deque(lst)
            st.placed[room] = []
            st.free[room] = w[0] if w else math.inf
            heapq.heappush(heap, (st.free[room], self._order.get(room, 0), room))
        unplaced: list[Case] = []
        strict = seq is not None and seq.severity == "enforced"
        wait = float(seq.param("reorder_after_minutes")) if seq is not None else 0.0
        while heap:
            _t, idx, room = heapq.heappop(heap)
            limit = self._limit(day, room, over, reserve)
            lst = pending[room]
            options: list[tuple[float, int, Case]] = []
            dead: list[Case] = []  # cannot fit in this room any more: it only fills up
            for i, c in enumerate(lst):
                s = self._earliest(st, day, c, room, dur[c.id], limit)
                if s is None:
                    dead.append(c)
                elif not options:
                    options.append((s, i, c))
                    if s <= st.free[room] + EPS:
                        break  # the next case in order can go on time
                else:
                    options.append((s, i, c))
                if strict:
                    break  # the order is strict: only the next case may go
            if options and not st.placed[room] and self._enforced("first_case_at_open"):
                dead = []  # may still fit later in the day, just not as the first case
            for c in dead:
                lst.remove(c)
                unplaced.append(c)
            if options:
                s, _i, c = options[0]
                best = min(options, key=lambda o: (o[0], o[1]))
                if best[0] < s - wait - EPS:
                    s, _i, c = best  # a later case goes first: the next would wait too long
                    nxt = lst[0]
                    if seq is not None and self._wrong_order(c, nxt, exp, seq):
                        self._depart(view, seq, "resource_limit", c.id, room,
                                     what=f"runs before {nxt.id}, which waits for resources")
                lst.remove(c)
                self._place(st, c, room, s, dur[c.id])
            if lst:
                heapq.heappush(heap, (st.free[room], idx, room))

        # 3-4. relocate what did not fit, or leave it out
        for c in sorted(unplaced, key=lambda c: (-dur[c.id], c.id)):
            if ot is None or not ot.param("relocate") or not self._relocate(
                    st, day, c, dur, exp, reserve, over, view):
                self._leave_out(st, day, c, dur[c.id], reserve, view)

        self._audit(st, day, reserve, dur, view)
        return [PlannedCase(c.id, room, s) for room, lst in st.placed.items() for c, s in lst]

    def _limit(self, day: int, room: str, over: float, reserve: dict[str, float],
               slack: bool = False) -> float:
        """Latest planned end in ``room``: close + allowed overtime, or close − reserve when the
        reserve is enforced or when a relocated case needs slack."""
        w = staffed_window(self.scn, room, day)
        if w is None:
            return -math.inf
        limit = w[1] + over
        if reserve and (slack or self._enforced("addon_reserve")):
            limit = min(limit, w[1] - reserve.get(room, 0.0))
        return limit

    def _earliest(self, st: _Day, day: int, c: Case, room: str, d: float, limit: float,
                  first_by_open: bool = False) -> float | None:
        """Earliest feasible start of ``c`` in ``room`` after the room's last placed case; a
        room's first case starts by the open + grace when ``first_case_at_open`` is enforced
        (or ``first_by_open``)."""
        w = staffed_window(self.scn, room, day)
        if w is None:
            return None
        open_, close = w
        latest = close - EPS
        first = self.rule("first_case_at_open")
        if not st.placed.get(room) and first is not None and (
                first_by_open or first.severity == "enforced"):
            latest = min(latest, open_ + float(first.param("grace_minutes")))
        lo = max(st.free.get(room, open_), open_)
        cands = {lo}
        gap = self._gap()
        pacu = pacu_minutes(self.scn, c.patient_class)
        for role, n in c.crew.items():
            if n > 0 and role in st.crew:
                cands.update(st.crew[role].releases_after(lo))
        for t in tray_needs(c):
            if t in st.trays:
                cands.update(st.trays[t].releases_after(lo))
        cands.update(t - d for t in st.pacu.releases_after(lo + d))
        for _a, b, r in st.surgeon.get(c.surgeon, []):
            cands.add(b + (gap if r != room else 0.0))
        cands.update(b for _a, b in self._downtime.get(room, []))
        for s in sorted(x for x in cands if x >= lo):
            if s > latest or s + d > limit + EPS:
                return None
            if self._fits(st, c, room, s, d, pacu, gap):
                return s
        return None

    def _gap(self) -> float:
        r = self.rule("surgeon_one_room")
        return float(r.param("gap_minutes")) if r else 0.0

    def _fits(self, st: _Day, c: Case, room: str, s: float, d: float, pacu: float,
              gap: float) -> bool:
        return self._blocker(st, c, room, s, d, pacu, gap) is None

    def _blocker(self, st: _Day, c: Case, room: str, s: float, d: float, pacu: float,
                 gap: float) -> str | None:
        """What stops ``c`` starting at ``s`` in ``room`` (None: nothing)."""
        e = s + d
        if any(a < e - EPS and s < b - EPS for a, b in self._downtime.get(room, [])):
            return f"{room} planned downtime"
        for a, b, r in st.surgeon.get(c.surgeon, []):
            g = gap if r != room else 0.0
            if s < b + g - EPS and a < e + g - EPS:
                return f"surgeon {c.surgeon} busy"
        for role, n in c.crew.items():
            if n > 0 and (role not in st.crew or not st.crew[role].fits(s, e, n)):
                return f"{role} staff"
        for t, n in tray_needs(c).items():
            if t not in st.trays or not st.trays[t].fits(s, e + self.turnaround, n):
                return f"{t} trays"
        if not st.pacu.fits(e, e + pacu, 1):
            return "PACU beds"
        return None

    def _why(self, st: _Day, day: int, c: Case, room: str, d: float, limit: float) -> str:
        """Why ``c`` did not fit at the end of ``room``'s list, in words."""
        w = staffed_window(self.scn, room, day)
        if w is None:
            return f"{room} not staffed"
        s = max(st.free.get(room, w[0]), w[0])
        if s >= w[1]:
            return f"{room} full until close"
        if s + d > limit + EPS:
            return f"would end {clock(s + d)} in {room}, limit {clock(limit)}"
        why = self._blocker(st, c, room, s, d, pacu_minutes(self.scn, c.patient_class), self._gap())
        return f"{why or 'constraints'} at {clock(s)} in {room} and later"

    def _place(self, st: _Day, c: Case, room: str, s: float, d: float) -> None:
        e = s + d
        for role, n in c.crew.items():
            if role in st.crew:
                st.crew[role].add(s, e, n)
        for t, n in tray_needs(c).items():
            st.trays[t].add(s, e + self.turnaround, n)
        st.pacu.add(e, e + pacu_minutes(self.scn, c.patient_class), 1)
        st.surgeon.setdefault(c.surgeon, []).append((s, e, room))
        st.placed.setdefault(room, []).append((c, s))
        st.free[room] = e + self.T

    def _relocate(self, st: _Day, day: int, c: Case, dur: dict[str, float],
                  exp: dict[str, float], reserve: dict[str, float], over: float,
                  view: SuiteView) -> bool:
        """Move ``c`` to the capable room that can start it earliest after its own list, where
        it ends by close − reserve and, in a room with no other case, starts by the open."""
        seq = self.rule("sequence")
        best: tuple[float, int, str] | None = None
        for room in elective_rooms(self.scn, day):
            if room == c.booked_room or c.capability not in self.scn.room(room).capabilities:
                continue
            if seq is not None and seq.severity == "enforced" and self._out_of_order(
                    st, room, c, exp, seq):
                continue
            st.free.setdefault(room, staffed_window(self.scn, room, day)[0])  # type: ignore[index]
            s = self._earliest(st, day, c, room, dur[c.id],
                               self._limit(day, room, over, reserve, slack=True),
                               first_by_open=True)
            if s is not None and (best is None or (s, self._order[room]) < best[:2]):
                best = (s, self._order[room], room)
        if best is None:
            return False
        s, _i, room = best
        if seq is not None and self._out_of_order(st, room, c, exp, seq):
            self._depart(view, seq, "relocated_case", c.id, room,
                         what=f"moved from {c.booked_room}, runs after shorter or longer cases")
        self._place(st, c, room, s, dur[c.id])
        return True

    @staticmethod
    def _wrong_order(first: Case, then: Case, exp: dict[str, float], seq: Rule) -> bool:
        """Whether running ``first`` before ``then`` breaks the sequence rule's order."""
        a = exp.get(first.id, first.booked_minutes)
        b = exp.get(then.id, then.booked_minutes)
        return b > a + EPS if seq.param("order") == "longest_first" else b < a - EPS

    def _out_of_order(self, st: _Day, room: str, c: Case, exp: dict[str, float],
                      seq: Rule) -> bool:
        placed = st.placed.get(room) or []
        return bool(placed) and self._wrong_order(placed[-1][0], c, exp, seq)

    def _leave_out(self, st: _Day, day: int, c: Case, d: float, reserve: dict[str, float],
                   view: SuiteView) -> None:
        ot = self.rule("max_planned_overtime")
        if ot is not None and ot.severity != "enforced":
            s = self._earliest(st, day, c, c.booked_room, d, math.inf)
            if s is not None:
                self._place(st, c, c.booked_room, s, d)
                w = staffed_window(self.scn, c.booked_room, day)
                over = s + d - w[1] if w else math.nan
                self._depart(view, ot, "capacity", c.id, c.booked_room, over,
                             f"planned end {over:.0f} min past close")
                return
        ot_min = float(ot.param("minutes")) if ot else math.inf
        why = self._why(st, day, c, c.booked_room, d,
                        self._limit(day, c.booked_room, ot_min, reserve))
        self._depart(view, self.rule("plan_all_booked"), "capacity", c.id, c.booked_room,
                     what=f"left out: {why}")

    def _audit(self, st: _Day, day: int, reserve: dict[str, float], dur: dict[str, float],
               view: SuiteView) -> None:
        res, first = self.rule("addon_reserve"), self.rule("first_case_at_open")
        for room in sorted(st.placed, key=lambda r: self._order.get(r, 0)):
            lst = st.placed[room]
            w = staffed_window(self.scn, room, day)
            if not lst or w is None:
                continue
            if first is not None:
                c, s = lst[0]
                late = s - w[0]
                if late > float(first.param("grace_minutes")) + EPS:
                    self._depart(view, first, "resource_limit", c.id, room, late,
                                 f"first case planned {late:.0f} min after the open")
            if res is not None and reserve.get(room, 0.0) > 0:
                limit = w[1] - reserve[room]
                for c, s in lst:
                    if s + dur[c.id] > limit + EPS:
                        over = s + dur[c.id] - limit
                        self._depart(view, res, "block_booking", c.id, room, over,
                                     f"planned end {over:.0f} min past close − "
                                     f"{reserve[room]:.0f}-min add-on reserve")
                        break

    # --- day-of ----------------------------------------------------------------------------
    def place_addon(self, case: Case, view: SuiteView) -> Move:
        """Emergent: front of the capable room free soonest; others: first free, FCFS."""
        rule = self.rule("emergent_bump")
        if rule is None or case.priority not in rule.param("priorities"):
            return Move(case.id, first_free_room(view, case), "after_addons", case.arrival)
        prios = set(rule.param("priorities"))
        now, rooms = view.now, view.rooms()
        best: tuple[tuple[int, float, int], str, int] | None = None
        for r in self.scn.rooms:
            if case.capability not in r.capabilities:
                continue
            stt = rooms[r.id]
            if stt.state == "down":
                continue
            lead = 0
            for x in stt.queue:
                xc = view.case(x)
                if not (xc.is_addon and xc.priority in prios):
                    break
                lead += 1
            s = self._current_end(stt, view) + sum(
                view.case(x).booked_minutes + self.T for x in stt.queue[:lead])
            cls = 0 if stt.staffed_at(now) else 1 if r.id in self._on_call else 2
            key = (cls, s, self._order[r.id])
            if best is None or key < best[0]:
                best = (key, r.id, lead)
        if best is None:
            return Move(case.id, first_free_room(view, case), "after_addons", case.arrival)
        (_cls, s, _i), room, lead = best
        wait = s - now
        if wait > float(rule.param("max_wait_minutes")) + EPS:
            self._depart(view, rule, "resource_limit", case.id, room, wait,
                         f"expected wait {wait:.0f} min")
        return Move(case.id, room, lead, case.arrival)

    def _current_end(self, stt: RoomStatus, view: SuiteView) -> float:
        """When the room's current case (and turnover) should be over, booked minutes."""
        addons = sum(view.case(x).booked_minutes + self.T for x in stt.queue
                     if view.case(x).is_addon)
        return stt.expected_free - addons

    def _target(self, c: Case, view: SuiteView, rooms: dict[str, RoomStatus], exclude: str,
                before: float, extra: dict[str, float]) -> tuple[str, float] | None:
        """The capable room staffed now that can start ``c`` soonest (before ``before``),
        after its own queue, within its staffed hours and allowed planned overtime."""
        now = view.now
        ot = self.rule("max_planned_overtime")
        over = float(ot.param("minutes")) if ot else math.inf
        d = self.durations.get(c.id, c.booked_minutes)
        best: tuple[float, int, str] | None = None
        for r in self.scn.rooms:
            stt = rooms[r.id]
            if (r.id == exclude or c.capability not in r.capabilities or stt.state == "down"
                    or not stt.staffed_at(now) or stt.staffed_until is None):
                continue
            if c.is_addon:
                s = self._current_end(stt, view) + sum(
                    view.case(x).booked_minutes + self.T for x in stt.queue if view.case(x).is_addon)
            else:
                s = stt.expected_done
            s = max(s + extra.get(r.id, 0.0), now)
            if s >= before - EPS or s >= stt.staffed_until or s + d > stt.staffed_until + over + EPS:
                continue
            if best is None or (s, self._order[r.id]) < best[:2]:
                best = (s, self._order[r.id], r.id)
        return None if best is None else (best[2], best[0])

    def on_running_long(self, room: str, case: Case, view: SuiteView) -> list[Move]:
        """Move the room's next waiting case if it is late and another room can start it sooner."""
        rule = self.rule("move_on_overrun")
        if rule is None:
            return []
        rooms = view.rooms()
        queue = rooms[room].queue
        if not queue:
            return []
        nxt = view.case(queue[0])
        now = view.now
        planned = nxt.arrival if nxt.is_addon else view.planned_start(nxt.id)
        late = now + self.T - planned
        if not late > float(rule.param("threshold_minutes")):
            return []
        got = self._target(nxt, view, rooms, room, now + self.T, {})
        if got is None:
            self._depart(view, rule, "capacity", nxt.id, room, late,
                         f"{late:.0f} min late, no capable room free sooner")
            return []
        target, s = got
        view.note("replan", nxt.id, target, s, f"{rule.id}: from {room}, {case.id} running long")
        if nxt.is_addon:
            return [Move(nxt.id, target, "after_addons", nxt.arrival)]
        return [Move(nxt.id, target, "end", s)]

    def on_room_down(self, room: str, until: float, view: SuiteView) -> list[Move]:
        """Move waiting cases that would start late to capable rooms that start them sooner."""
        rule = self.rule("move_on_room_down")
        now = view.now
        if rule is None or until - now < float(rule.param("min_down_minutes")):
            return []
        rooms = view.rooms()
        stt = rooms[room]
        t = max(until, stt.expected_done - sum(view.case(x).booked_minutes + self.T
                                               for x in stt.queue))
        extra: dict[str, float] = {}
        moves = []
        for cid in stt.queue:
            c = view.case(cid)
            planned = c.arrival if c.is_addon else view.planned_start(cid)
            if t > planned + EPS:
                got = self._target(c, view, rooms, room, t, extra)
                if got is not None:
                    target, s = got
                    extra[target] = extra.get(target, 0.0) + c.booked_minutes + self.T
                    view.note("replan", cid, target, s, f"{rule.id}: from {room}, down until "
                              f"{clock(until)}")
                    moves.append(Move(cid, target, "after_addons", c.arrival) if c.is_addon
                                 else Move(cid, target, "end", s))
                    continue
                self._depart(view, rule, "capacity", cid, room, t - planned,
                             "no capable room can start it sooner")
            t += c.booked_minutes + self.T
        return moves


__all__ = ["RulesPolicy"]
