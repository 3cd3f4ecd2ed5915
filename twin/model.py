"""The SimPy model of the surgical suite.

:class:`SuiteModel` runs one replication: a realised :class:`~twin.demand.Week` through rooms,
surgeons, crews, trays and sterile processing, PACU and inpatient beds, under a policy. It takes
its ``simpy.Environment`` as an argument (so a real-time environment can stand in) and can start
from a :class:`~twin.snapshot.SuiteSnapshot`. Everything it does is written to the event log.

Case flow: pre-op → trays → surgeon → crew (anaesthesia, circulating, scrub) → in room →
procedure → the surgeon leaves, trays go to sterile processing → emergence → a PACU bed (the
patient holds in the OR until one is free) → out of room, turnover → PACU stay → an inpatient
bed for inpatients and ICU patients (boarding in PACU until one is free) → out of PACU.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import simpy

from twin.booking import planned_turnover
from twin.demand import PRIORITY_RANK, Case, Week, discharge_time
from twin.events import POLICY_EVENTS, EventLog
from twin.policy import Move, PlannedCase, Policy, PolicyError, RoomStatus
from twin.resources import Pool, SpdLine, daily_schedule
from twin.scenario import ROLES, Scenario
from twin.snapshot import SuiteSnapshot

DRAIN_DAYS = 14
"""After the horizon no new case starts; work under way drains for at most this many days."""


class SuiteModel:
    """One replication of the suite under a policy (also the policies' :class:`SuiteView`)."""

    def __init__(self, scenario: Scenario, policy: Policy, week: Week,
                 env: simpy.Environment | None = None,
                 snapshot: SuiteSnapshot | None = None, drain_days: int = DRAIN_DAYS) -> None:
        self.scn, self.policy, self.week = scenario, policy, week
        self.start = start = snapshot.time if snapshot else 0.0
        self.drain_days = drain_days
        self._days = range(max(-1, int(start // 1440) - 1), scenario.horizon_days + drain_days)
        self.env = env or simpy.Environment(initial_time=start)
        self.log = EventLog()
        self.end = scenario.horizon_days * 1440.0
        self.T = planned_turnover(scenario)
        self.queue: dict[str, list[str]] = {r.id: [] for r in scenario.rooms}
        self.planned: dict[str, float] = {}
        self.in_pacu: dict[str, tuple[float, bool]] = {}  # case -> (time in, waiting for a bed)
        self.state: dict[str, list] = {r.id: ["idle", None, start, start] for r in scenario.rooms}
        self.down: dict[str, int] = {r.id: 0 for r in scenario.rooms}
        self.wake: dict[str, simpy.Event] = {r.id: self.env.event() for r in scenario.rooms}
        self.first_started: set[tuple[str, int]] = set()
        self.terminal: set[str] = set()
        self.started: set[str] = set()
        self._caps = {r.id: set(r.capabilities) for r in scenario.rooms}
        self._windows = {
            (r.id, d): (d * 1440 + w.start, d * 1440 + w.end)
            for r in scenario.rooms for d in self._days
            if (w := r.hours.get(scenario.weekday(d))) is not None  # type: ignore[call-overload]
        }
        self._build_resources()
        self._start(snapshot)

    # --- SuiteView ----------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Current simulation time."""
        return self.env.now

    @property
    def scenario(self) -> Scenario:
        """The scenario being run."""
        return self.scn

    def case(self, case_id: str) -> Case:
        """Booking-time facts of a case."""
        return self.week.cases[case_id]

    def planned_start(self, case_id: str) -> float:
        """The case's current planned start."""
        return self.planned.get(case_id, math.nan)

    def note(self, event: str, case_id: str = "", room: str = "", value: float = math.nan,
             detail: str = "") -> None:
        """Write a policy event (audit, solver status, fallback) to the event log."""
        if event not in POLICY_EVENTS:
            raise PolicyError(f"{self.policy.name}: unknown policy event {event!r}")
        self.log.rows.append((self.env.now, event, case_id, room, "policy", value, detail))

    def pacu_patients(self) -> list[tuple[str, float, bool]]:
        """Who is in a PACU bed now: (case id, time in, whether recovered and waiting for a
        ward or ICU bed)."""
        return [(cid, since, ready) for cid, (since, ready) in self.in_pacu.items()]

    def trays_free(self) -> dict[str, int]:
        """Trays of each type on the shelf now (not in a case or in sterile processing)."""
        return {t: self.trays.free(t) for t in self.trays.capacity}

    def rooms(self) -> dict[str, RoomStatus]:
        """Every room's status now; expected free times use booked minutes only."""
        now, out = self.env.now, {}
        cases = self.week.cases
        for rid, (state, cid, since, free) in self.state.items():
            w = self._window_at(rid, now)
            q = self.queue[rid]
            addons = sum(cases[x].booked_minutes + self.T for x in q if cases[x].is_addon)
            rest = sum(cases[x].booked_minutes + self.T for x in q)
            st = "down" if self.down[rid] else state
            if st == "idle" and not (w and w[0] <= now < w[1]):
                st = "closed"
            out[rid] = RoomStatus(rid, st, cid, since, max(free, now) + addons,
                                  max(free, now) + rest, tuple(q), w[0] if w else None,
                                  w[1] if w else None)
        return out

    # --- set-up -------------------------------------------------------------------------
    def _build_resources(self) -> None:
        scn, env, log = self.scn, self.env, self.log
        days = self._days
        self.staff = Pool(env, log, "staff:", {
            role: daily_schedule(
                [(d * 1440 + s.start, d * 1440 + s.end, s.count)
                 for d in days for s in shifts if scn.weekday(d) in s.days], 0)
            for role, shifts in scn.staff.items()
        })
        self.surgeons = Pool(env, log, "surgeon:", {s.id: [(-math.inf, 1)] for s in scn.surgeons})
        self.trays = Pool(env, log, "tray:", {t: [(-math.inf, n)] for t, n in scn.spd.inventory.items()})
        p = scn.pacu
        self.pacu = Pool(env, log, "", {"pacu": daily_schedule(
            [(d * 1440 + p.hours.start, d * 1440 + p.hours.end,
              p.open_beds(scn.weekday(d)) - p.after_hours_beds) for d in days],
            p.after_hours_beds)})
        self.beds = Pool(env, log, "", {"ward": [(-math.inf, scn.beds.ward.capacity)],
                                        "icu": [(-math.inf, scn.beds.icu.capacity)]})
        stages = scn.spd.stages
        sched = {s.name: daily_schedule(
            [(o.day * 1440 + o.start, o.day * 1440 + o.end, -o.machines)
             for o in scn.spd.outages if o.stage == s.name], s.machines) for s in stages}
        self.spd = SpdLine(env, log, [(s.name, s.batch) for s in stages], sched,
                           lambda t: self.trays.release({t: 1}))

    def at(self, t: float, fn, *args) -> None:
        """Call ``fn(*args)`` at absolute time ``t`` (now if in the past)."""
        self.env.timeout(max(t - self.env.now, 0.0)).callbacks.append(lambda _e: fn(*args))

    def _start(self, snap: SuiteSnapshot | None) -> None:
        env, now = self.env, self.env.now
        skip = set(snap.done) | snap.busy_case_ids() if snap else set()
        for cid, c in self.week.cases.items():
            if cid in skip or (c.is_addon and c.arrival < now):
                continue
            if not c.is_addon:
                self.log.case(now, "booked", cid, c.booked_room, c.booked_minutes)
            if cid in self.week.unbooked:
                self._finish(cid, "not_started", "not_booked")
            elif c.is_addon:
                self.at(c.arrival, self._addon_arrives, cid)
        first_day = int(now // 1440)
        for d in range(first_day, self.scn.horizon_days):
            self.at(max(d * 1440.0, now), self._plan_day, d, skip)
        for room in self.scn.rooms:
            for dt in room.downtime:
                self.at(dt.day * 1440 + dt.start, self._room_down, room.id, dt.day * 1440 + dt.end, dt.reason)
        for rid, s, e in self.week.random_downtime:
            if s >= now:
                self.at(s, self._room_down, rid, e, "failure")
        for (rid, _day), (o, c) in self._windows.items():
            if now <= o < self.end:
                self.log.room(o, "room_open", rid)
                self.log.room(c, "room_close", rid)
        self._background(snap)
        leads = {}
        if snap:
            from twin.restart import resume

            leads = resume(self, snap)
        for r in self.scn.rooms:
            env.process(self._room(r.id, leads.get(r.id)))
        self.at(self.end, self._close_horizon)

    def _background(self, snap: SuiteSnapshot | None) -> None:
        now = self.env.now
        for unit, stays in self.week.background.items():
            target = getattr(snap, f"{unit}_occupied", None) if snap else None
            for admit, leave in sorted(stays):
                if leave <= now:
                    continue
                if admit <= now:
                    if target is not None:
                        if target <= 0:
                            continue
                        target -= 1
                    if self.beds.try_acquire({unit: 1}):
                        self.at(leave, self.beds.release, {unit: 1})
                elif admit < self.end:
                    self.at(admit, self._admit_background, unit, leave)

    def _admit_background(self, unit: str, leave: float) -> None:
        if self.beds.try_acquire({unit: 1}):
            self.at(leave, self.beds.release, {unit: 1})

    # --- policy interaction ---------------------------------------------------------------
    def _plan_day(self, day: int, skip: set[str]) -> None:
        cases = [c for c in self.week.cases.values()
                 if not c.is_addon and c.booked_day == day and c.id not in skip
                 and c.id not in self.week.unbooked]
        plan: Sequence[PlannedCase] = self.policy.plan_day(day, cases, self)
        seen = set()
        for pc in sorted(plan, key=lambda p: (p.room, p.start)):
            c = self.week.cases.get(pc.case_id)
            if c is None or pc.case_id not in {x.id for x in cases} or pc.case_id in seen:
                raise PolicyError(f"{self.policy.name}: plan for day {day} has unknown or repeated case {pc.case_id!r}")
            self._check_room(pc.room, c)
            seen.add(pc.case_id)
            self.queue[pc.room].append(pc.case_id)
            self.planned[pc.case_id] = pc.start
            self.log.case(self.env.now, "scheduled", pc.case_id, pc.room, pc.start)
        for c in cases:
            if c.id not in seen:
                self._finish(c.id, "not_started", "unplanned")
        for rid in self.queue:
            self.queue[rid].sort(key=lambda q: (self.week.cases[q].priority == "elective",
                                                self.planned.get(q, 0.0)))
            self._notify(rid)

    def _check_room(self, room: str, c: Case) -> None:
        if room not in self._caps:
            raise PolicyError(f"{self.policy.name}: unknown room {room!r} for case {c.id}")
        if c.capability not in self._caps[room]:
            raise PolicyError(f"{self.policy.name}: room {room} lacks capability {c.capability!r} for case {c.id}")

    def _addon_arrives(self, cid: str) -> None:
        c = self.week.cases[cid]
        now = self.env.now
        self.log.case(now, "booked", cid, "", c.booked_minutes, c.priority)
        self.log.case(now, "in_preop", cid)
        placed = self.policy.place_addon(c, self)
        self.apply([placed] if isinstance(placed, Move) else placed)

    def apply(self, moves: Iterable[Move]) -> None:
        """Carry out a policy's moves of not-yet-started cases."""
        for mv in moves:
            c = self.week.cases[mv.case_id]
            if mv.case_id in self.started or mv.case_id in self.terminal:
                raise PolicyError(f"{self.policy.name}: case {mv.case_id} cannot move, it has started or ended")
            self._check_room(mv.room, c)
            for q in self.queue.values():
                if mv.case_id in q:
                    q.remove(mv.case_id)
            q = self.queue[mv.room]
            if mv.position == "front":
                pos = 0
            elif mv.position == "after_addons":
                pos = next((i for i, x in enumerate(q) if not self.week.cases[x].is_addon), len(q))
            elif mv.position == "end":
                pos = len(q)
            else:
                pos = max(0, min(int(mv.position), len(q)))
            q.insert(pos, mv.case_id)
            start = mv.start if mv.start is not None else self.planned.get(mv.case_id, self.env.now)
            self.planned[mv.case_id] = start
            self.log.case(self.env.now, "scheduled", mv.case_id, mv.room, start)
            self._notify(mv.room)

    def _room_down(self, rid: str, until: float, reason: str) -> None:
        self.down[rid] += 1
        self.log.room(self.env.now, "room_down", rid, detail=reason)
        self.apply(self.policy.on_room_down(rid, until, self))
        self.at(until, self._room_up, rid)

    def _room_up(self, rid: str) -> None:
        self.down[rid] -= 1
        self.log.room(self.env.now, "room_up", rid)
        self._notify(rid)

    def _running_long(self, rid: str, cid: str) -> None:
        if self.state[rid][1] == cid:
            self.apply(self.policy.on_running_long(rid, self.week.cases[cid], self))

    # --- rooms --------------------------------------------------------------------------
    def _notify(self, rid: str) -> None:
        ev = self.wake[rid]
        if not ev.triggered:
            ev.succeed()

    def _sleep(self, rid: str, until: float | None = None):
        ev = self.wake[rid]
        if ev.triggered:
            ev = self.wake[rid] = self.env.event()
        if until is None:
            return ev
        return ev | self.env.timeout(max(until - self.env.now, 0.0))

    def _window_at(self, rid: str, t: float) -> tuple[float, float] | None:
        d = int(t // 1440)
        for day in (d, d - 1):
            w = self._windows.get((rid, day))
            if w and w[0] <= t < w[1]:
                return w
        w = self._windows.get((rid, d))
        return w if w and t < w[0] else None

    def _earliest(self, rid: str, c: Case) -> float:
        if c.is_addon:
            return c.arrival
        planned = self.planned[c.id]
        day = int(planned // 1440)
        w = self._windows.get((rid, day))
        if (rid, day) not in self.first_started:
            return planned + self.week.first_case_delay.get((rid, day), 0.0)
        early = planned - self.scn.end_of_day.allow_early_start_minutes
        return max(early, w[0]) if w else early

    def _no_time(self, rid: str, c: Case) -> bool:
        eod, now = self.scn.end_of_day, self.env.now
        planned = self.planned[c.id]
        w = self._windows.get((rid, int(planned // 1440)))
        close = w[1] if w else planned + c.booked_minutes
        if eod.mode == "cancel":
            return now + c.booked_minutes > close + eod.cancel_margin_minutes
        return now > close + eod.latest_start_after_close_minutes

    def _room(self, rid: str, lead=None):
        env, q = self.env, self.queue[rid]
        if lead is not None:
            yield from lead
        while env.now < self.end:
            if not q or self.down[rid]:
                yield self._sleep(rid)
                continue
            cid = q[0]
            c = self.week.cases[cid]
            if not c.is_addon:
                if self.week.truth[cid].cancel:
                    q.pop(0)
                    self._finish(cid, "cancelled", "patient")
                    continue
                if self._no_time(rid, c):
                    q.pop(0)
                    self._finish(cid, "cancelled", "no_time")
                    continue
            t0 = self._earliest(rid, c)
            if not c.is_addon:  # electives wait out the staff's no-start windows
                t0 = self.scn.start_allowed(max(t0, env.now))
            if env.now < t0:
                yield self._sleep(rid, t0)
                continue
            q.pop(0)
            yield from self._perform(rid, cid)
            yield from self.turnover(rid, cid, self.week.truth[cid].turnover)

    def turnover(self, rid: str, cid: str, minutes: float):
        """Clean and set up the room after ``cid`` left."""
        env = self.env
        self.state[rid] = ["turnover", None, env.now, env.now + self.T]
        self.log.room(env.now, "turnover_start", rid, cid)
        yield env.timeout(minutes)
        self.log.room(env.now, "turnover_end", rid, cid)
        self.state[rid] = ["idle", None, env.now, env.now]

    def _perform(self, rid: str, cid: str, phase: str = "start", remaining: float = 0.0):
        """Take a case from pre-op through the room; returns when the patient is out."""
        env, log = self.env, self.log
        c, tr = self.week.cases[cid], self.week.truth[cid]
        prio = PRIORITY_RANK[c.priority]
        self.started.add(cid)
        need = {t: c.trays.count(t) for t in dict.fromkeys(c.trays)}
        if phase == "start":
            if not c.is_addon:
                log.case(max(min(env.now, self.planned[cid] - 90), self.start), "in_preop", cid)
                self.first_started.add((rid, int(self.planned[cid] // 1440)))
            if need:
                log.case(env.now, "trays_requested", cid)
                yield self.trays.request(need, prio)
                log.case(env.now, "trays_ready", cid)
            yield self.surgeons.request({c.surgeon: 1}, prio)
            yield self.staff.request(c.crew, prio)
            if not c.is_addon and (t := self.scn.start_allowed(env.now)) > env.now:
                yield env.timeout(t - env.now)  # ready in a no-start window: its team waits
            log.case(env.now, "in_room", cid, rid)
            self.state[rid] = ["in_case", cid, env.now, env.now + c.booked_minutes]
            self.at(env.now + c.booked_minutes + 15, self._running_long, rid, cid)
            yield env.timeout(tr.pre)
            phase, remaining = "procedure", tr.duration - tr.pre - tr.post
        if phase == "pre":
            yield env.timeout(remaining)
            phase, remaining = "procedure", tr.duration - tr.pre - tr.post
        if phase == "procedure":
            log.case(env.now, "procedure_start", cid, rid)
            yield env.timeout(remaining)
            log.case(env.now, "procedure_end", cid, rid)
            self.surgeons.release({c.surgeon: 1})
            if need:
                self.trays_used(cid)
            phase, remaining = "post", tr.post
        if phase == "post":
            yield env.timeout(remaining)
        log.case(env.now, "pacu_requested", cid, rid)
        overflow = self.scn.pacu.when_full == "overflow" and not self.pacu.try_acquire({"pacu": 1})
        if overflow:
            log.case(env.now, "out_of_room", cid, rid)
            log.case(env.now, "pacu_overflow", cid)
        else:
            if self.scn.pacu.when_full == "hold":
                yield self.pacu.request({"pacu": 1}, prio)
            log.case(env.now, "out_of_room", cid, rid)
            log.case(env.now, "pacu_in", cid)
        self.staff.release(c.crew)
        env.process(self._recover(cid, tr.pacu_los, in_pacu=not overflow))

    def trays_used(self, cid: str) -> None:
        """Send a case's trays to sterile processing."""
        c, tr = self.week.cases[cid], self.week.truth[cid]
        self.spd.submit(list(zip(c.trays, tr.spd_times, strict=True)), tr.transport)

    def _recover(self, cid: str, los: float, boarding: bool = False, in_pacu: bool = True,
                 since: float | None = None):
        """PACU stay, then (inpatients) a ward or ICU bed; overflow patients recover outside."""
        env, c = self.env, self.week.cases[cid]
        if in_pacu:
            self.in_pacu[cid] = (env.now if since is None else since, boarding)
        if not boarding:
            yield env.timeout(los)
            self.log.case(env.now, "pacu_ready", cid)
            if in_pacu:
                self.in_pacu[cid] = (self.in_pacu[cid][0], True)
        if c.patient_class != "outpatient":
            unit = "icu" if c.patient_class == "icu" else "ward"
            yield self.beds.request({unit: 1}, PRIORITY_RANK[c.priority])
            self.log.case(env.now, "bed_assigned", cid)
            tr = self.week.truth[cid]
            ward = self.scn.beds.icu if unit == "icu" else self.scn.beds.ward
            leave = discharge_time(env.now, tr.ward_los, ward.discharge_profile, tr.discharge_u)
            self.at(leave, self.beds.release, {unit: 1})
        if in_pacu:
            self.pacu.release({"pacu": 1})
            self.in_pacu.pop(cid, None)
        self._finish(cid, "pacu_out", "" if in_pacu else "overflow")

    # --- endings ------------------------------------------------------------------------
    def _finish(self, cid: str, event: str, detail: str = "") -> None:
        if cid in self.terminal:
            raise AssertionError(f"case {cid} ended twice")
        self.terminal.add(cid)
        self.log.case(self.env.now, event, cid, value=math.nan, detail=detail)

    def _close_horizon(self) -> None:
        for rid, q in self.queue.items():
            for cid in q:
                self._finish(cid, "not_started", "horizon")
            q.clear()
            self._notify(rid)

    def run(self) -> None:
        """Run to the end of the horizon and let work under way drain (``drain_days``)."""
        self.env.run(until=self.end + self.drain_days * 1440)
        for cid in self.week.cases:
            if cid not in self.terminal and cid in self.started:
                self._finish(cid, "not_started", "unfinished")


__all__ = ["SuiteModel", "DRAIN_DAYS", "ROLES"]
