"""The now-cast: the rest of the day, forecast from the plan, the live state and the scenario.

At a time ``t`` the live state (:mod:`ortwin.live`) becomes a snapshot of the suite — cases done,
the case in each room with its phase and elapsed time, turnovers under way, patients in PACU —
and the twin (:class:`~twin.model.SuiteModel` under the ``as-booked`` policy: the plan runs as
planned) runs ``reps`` replications from ``t`` to the end of the day. Work in progress gets its
*remaining* time from its distribution conditioned on the time already spent (residual life,
:mod:`twin.restart`), never a fresh full duration.

Common random numbers: replication ``i`` draws every case's uniforms from the same streams at
every ``t`` (and in the no-live-state run), so re-forecasts move only because the feed moved.

A room whose feed is stale is rolled forward from its last observation by the plan: each
replication lets its case in progress finish (conditioned on the elapsed time when it was last
seen), then its turnover and later cases, up to ``t``. Its band is therefore wider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ortwin.live import LiveState
from twin.booked_duration import booked_duration
from twin.dayplan import DayPlan
from twin.demand import (
    Case,
    Week,
    background_beds,
    truth_uniforms,
    truths_from_uniforms,
)
from twin.model import SuiteModel
from twin.restart import case_duration
from twin.scenario import Scenario
from twin.snapshot import PacuSnapshot, RoomSnapshot, SuiteSnapshot
from twin.streams import Streams

NOWCAST_KEY = "nowcast"
"""Sub-key of the now-cast's streams (one stream per source per replication)."""
RUN_PAST_MIN = 6 * 60.0
"""The model runs this long past midnight, so late rooms still finish."""


@dataclass(frozen=True)
class NowcastConfig:
    """Knobs of a now-cast run."""

    reps: int = 200
    seed: int = 20260
    min_sigma: float = 0.0
    """Predictive spread floor: lognormal case durations get log-sd at least this (0: as the
    scenario says). Fits from a few weeks of cases understate a day's spread."""
    alert_probability: float = 0.5
    pacu_hold_alert: float = 0.5


@dataclass
class RepDay:
    """What one replication says about the rest of the day."""

    out: dict[str, tuple[float, str]]  # case -> (out_of_room minute, room)
    start: dict[str, float]          # case -> in_room minute
    cancelled: set[str]
    pacu: list[tuple[float, float]]  # (in, out) PACU stays
    holds: list[tuple[float, float]]  # (requested, out_of_room) where the patient waited


@dataclass
class Nowcast:
    """A now-cast: per room, per case, per hour of PACU, alerts and proposals (frames)."""

    at: float
    plan: DayPlan
    rooms: pd.DataFrame
    cases: pd.DataFrame
    pacu: pd.DataFrame
    alerts: list[str]
    proposals: pd.DataFrame
    feed: dict[str, int]
    quarantine: pd.DataFrame
    reps: int
    seconds: float = math.nan
    notes: list[str] = field(default_factory=list)
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # room -> finish per rep
    resolutions: pd.DataFrame = field(default_factory=pd.DataFrame)  # feed rules applied

    def clock(self, minute: float) -> str:
        """``HH:MM`` of a minute of the plan's day."""
        return self.plan.clock(minute)


# --- the plan's cases and their outcomes ------------------------------------------------------
def plan_cases(scn: Scenario, plan: DayPlan) -> dict[str, Case]:
    """The plan's rows as the model's cases (booking-time facts)."""
    out = {}
    for r in plan.cases.itertuples(index=False):
        svc = scn.service(str(r.service))
        p = next(q for q in svc.procedures if q.id == r.procedure)
        out[str(r.case_id)] = Case(
            id=str(r.case_id), service=svc.id, surgeon=str(r.surgeon), procedure=p.id,
            patient_class=str(r.patient_class), priority="elective",
            capability=p.capability or svc.id, trays=tuple(p.trays), crew=dict(p.crew),
            booked_minutes=float(r.booked_minutes), booked_day=plan.day, booked_room=str(r.room),
            booked_start=float(r.booked_start))
    return out


def sample_truths(scn: Scenario, cases: dict[str, Case], seed: int, reps: range
                  ) -> tuple[list[dict], np.ndarray]:
    """Every case's hidden outcomes in each replication (CRN: replication ``i`` uses the same
    streams whatever ``t``), as one dict per replication, and the duration uniforms (reps x
    cases). Durations are drawn from each case's duration given its booking
    (:func:`twin.booked_duration.booked_duration`)."""
    ids = list(cases)
    n = len(ids)
    procs = []
    for cid in ids:
        c = cases[cid]
        procs.append(next(q for q in scn.service(c.service).procedures if q.id == c.procedure))
    surgeons = {s.id: s for s in scn.surgeons}
    sgs = [surgeons[cases[c].surgeon] for c in ids]
    ntr = sum(len(p.trays) for p in procs)
    us = [truth_uniforms(Streams(seed, r), NOWCAST_KEY, n, ntr) for r in reps]
    u = {k: np.concatenate([x[k] for x in us]) for k in us[0]} if us else {}
    m = len(us)
    raw = u["durations"].reshape(m, n).copy() if us else np.zeros((0, n))
    for j, cid in enumerate(ids):
        given = booked_duration(scn, cases[cid])
        if given.informative:
            u["durations"][j::n] = given.uniforms(raw[:, j])
    rate = np.array([min(scn.service(cases[c].service).cancellation_rate
                         * scn.stress.cancellation_factor, 1.0) for c in ids])
    truths, _ = truths_from_uniforms(scn, u, procs * m, [cases[c].patient_class for c in ids] * m,
                                     sgs * m, [cases[c].service for c in ids] * m, np.tile(rate, m))
    return [dict(zip(ids, truths[i * n:(i + 1) * n], strict=True)) for i in range(m)], raw


def first_case_delays(scn: Scenario, plan: DayPlan, seed: int, reps: range) -> np.ndarray:
    """Uniforms of each room's first-case delay, one row per replication (room order of the
    scenario)."""
    return np.array([[Streams(seed, r).rng("first_case_delay", NOWCAST_KEY, room.id).random()
                      for room in scn.rooms] for r in reps]).reshape(len(reps), len(scn.rooms))


# --- the snapshot -------------------------------------------------------------------------------
def _phase(case_marks: dict, room_state: str) -> str:
    if "procedure_end" in case_marks:
        return "post"
    if "procedure_start" in case_marks or room_state == "procedure":
        return "procedure"
    return "pre"


def base_snapshot(live: LiveState, at: float, infer_pacu: bool = True) -> SuiteSnapshot:
    """The suite at ``at`` from the live state (stale rooms as last seen; see
    :func:`roll_forward`)."""
    rooms = []
    for rid, r in live.rooms.items():
        if r.case_id is not None:
            c = live.cases[r.case_id]
            t_in = c.at("in_room")
            assert t_in is not None
            rooms.append(RoomSnapshot(rid, "in_case", r.case_id, _phase(c.marks, r.state),  # type: ignore[arg-type]
                                      max(at - t_in, 0.0)))
        elif r.state == "turnover" and r.since is not None:
            rooms.append(RoomSnapshot(rid, "turnover", r.last_case, elapsed=max(at - r.since, 0.0)))
        else:
            rooms.append(RoomSnapshot(rid, "idle"))
    pacu_seen = any("pacu_in" in c.marks for c in live.cases.values())
    pacu, done = [], set()
    for cid, c in live.cases.items():
        if c.cancelled:
            done.add(cid)
            continue
        out = c.at("out_of_room")
        if out is None:
            continue
        p_in, p_out = c.at("pacu_in"), c.at("pacu_out")
        if p_in is None and not pacu_seen and infer_pacu:
            p_in = out  # no PACU milestones in this feed: the patient went to PACU on leaving
        if p_in is not None and p_out is None:
            pacu.append(PacuSnapshot(cid, "recovering", max(at - p_in, 0.0),
                                     observed=c.at("pacu_in") is not None))
        else:
            done.add(cid)
    return SuiteSnapshot(at, tuple(rooms), tuple(pacu), frozenset(done))


def roll_forward(live: LiveState, room: str, at: float, truths: dict, scn: Scenario,
                 cases: dict[str, Case], snap_room: RoomSnapshot,
                 remaining=None) -> tuple[RoomSnapshot, dict[str, float]]:
    """A stale room's state at ``at`` in one replication: from its last observation, by the plan
    (the case in progress finishes on its residual life given the elapsed time when last seen,
    then turnover, then the next planned cases). ``remaining(case, elapsed)``, when given,
    draws the case's remaining minutes. Returns the room and the cases it finished."""
    r = live.rooms[room]
    seen = min(r.last_seen if r.last_seen is not None else at, at)
    finished: dict[str, float] = {}
    order = [c for c in live.room_cases(room)
             if not live.cases[c].marks and not live.cases[c].cancelled]
    cur = snap_room
    clock, last, turn = seen, None, 0.0
    if cur.state == "in_case" and cur.case_id:
        cid = cur.case_id
        e_seen = max(cur.elapsed - (at - seen), 0.0)
        tr = truths[cid]
        rest = remaining(cid, e_seen) if remaining is not None else float(
            case_duration(scn, cases[cid]).residual(tr.u_duration, e_seen))
        end = seen + rest
        if end >= at:
            return cur, finished
        finished[cid] = end
        clock, last, turn = end, cid, tr.turnover
    elif cur.state == "turnover":
        e_seen = max(cur.elapsed - (at - seen), 0.0)
        last = cur.case_id
        svc = scn.service(cases[last].service).turnover if last in cases else None
        base = (svc or scn.turnover).scaled(scn.stress.turnover_factor)
        u = float(base.cdf(truths[last].turnover)) if last in truths else 0.5
        clock, turn = seen - e_seen, e_seen + float(base.residual(u, e_seen))
    while True:
        ready = clock + turn
        if ready > at:
            return RoomSnapshot(room, "turnover", last, elapsed=at - clock), finished
        if not order or max(ready, cases[order[0]].booked_start) > at:
            return RoomSnapshot(room, "idle"), finished
        cid = order.pop(0)
        start = scn.start_allowed(max(ready, cases[cid].booked_start))
        tr = truths[cid]
        if start + tr.duration > at:
            return RoomSnapshot(room, "in_case", cid, "procedure", at - start), finished
        finished[cid] = start + tr.duration
        clock, last, turn = start + tr.duration, cid, tr.turnover


# --- running ------------------------------------------------------------------------------------
def run_rep(scn: Scenario, cases: dict[str, Case], truths: dict, snap: SuiteSnapshot,
            started_rooms: set[str], fcd: dict[str, float], day: int,
            background: dict | None = None, in_bed: dict | None = None,
            trays_away: list[tuple[str, float]] = ()) -> RepDay:
    """One replication of the rest of the day from ``snap`` (returns what the board needs):
    ``background`` holds other patients' later bed stays, ``in_bed`` per unit the leaving times
    of those in bed now (``inf``: after the run), ``trays_away`` the trays still in sterile
    processing and when each comes back."""
    from policies.as_booked import AsBooked

    week = Week(cases=cases, truth=dict(truths), first_case_delay=fcd, random_downtime=[],
                background=background or {})
    model = SuiteModel(scn, AsBooked(), week, snapshot=snap, drain_days=1)
    model.first_started.update((r, day) for r in started_rooms)
    for unit, leaves in (in_bed or {}).items():
        k = min(len(leaves), max(model.beds.capacity[unit], 0))
        keep = np.sort(leaves)[len(leaves) - k:]
        model.beds.seize({unit: len(keep)})
        for t in keep[np.isfinite(keep)]:
            model.at(float(t), model.beds.release, {unit: 1})
    for tray, back in trays_away:
        model.trays.seize({tray: 1})
        model.at(back, model.trays.release, {tray: 1})
    model.env.run(until=model.end + RUN_PAST_MIN)
    out, start, cancelled, pin, pacu, req, holds = {}, {}, set(), {}, [], {}, []
    for t, ev, cid, room, *_ in model.log.rows:
        if ev == "out_of_room":
            out[cid] = (t, room)
            if cid in req and t > req[cid] + 1e-9:
                holds.append((req[cid], t))
        elif ev == "in_room":
            start[cid] = t
        elif ev == "pacu_requested":
            req[cid] = t
        elif ev == "pacu_in":
            pin[cid] = t
        elif ev == "pacu_out" and cid in pin:
            pacu.append((pin.pop(cid), t))
        elif ev in ("cancelled", "not_started"):
            cancelled.add(cid)
    end = model.end + RUN_PAST_MIN
    pacu += [(a, end) for a in pin.values()]
    return RepDay(out, start, cancelled, pacu, holds)


def widen_durations(scn: Scenario, min_sigma: float) -> Scenario:
    """The scenario with every lognormal case duration's log-sd raised to ``min_sigma``."""
    if min_sigma <= 0:
        return scn

    def wide(d):
        if getattr(d, "kind", "") == "lognormal" and d.sigma is not None and d.sigma < min_sigma:
            return d.model_copy(update={"sigma": min_sigma})
        return d

    services = [s.model_copy(update={"procedures": [
        p.model_copy(update={"duration": wide(p.duration)}) for p in s.procedures]})
        for s in scn.services]
    surgeons = [g.model_copy(update={"durations": {k: wide(v) for k, v in g.durations.items()}})
                for g in scn.surgeons]
    return scn.model_copy(update={"services": services, "surgeons": surgeons})


def staffed_for_plan(scn: Scenario, plan: DayPlan) -> tuple[Scenario, list[str]]:
    """The scenario with each room staffed on the plan's day at least as long as the plan books
    it (a room booked past its usual hours is staffed for that day: the plan is the day's
    commitment), and open on that day if the plan uses it."""
    from math import ceil

    from twin.schema import Window

    wd = scn.weekday(plan.day)
    ends = (plan.cases["booked_start"] + plan.cases["booked_minutes"] - plan.midnight).groupby(
        plan.cases["room"]).max()
    starts = (plan.cases["booked_start"] - plan.midnight).groupby(plan.cases["room"]).min()
    rooms, notes = [], []
    for r in scn.rooms:
        w = r.hours.get(wd)  # type: ignore[call-overload]
        if r.id in ends.index:
            end = int(ceil(float(ends[r.id]) / 15) * 15)
            start = int(float(starts[r.id]))
            if w is None or end > w.end or start < w.start:
                new = Window(start=min(start, w.start) if w else start,
                             end=max(end, w.end) if w else end)
                notes.append(f"{r.id} staffed {plan.clock(plan.midnight + new.start)}-"
                             f"{plan.clock(plan.midnight + new.end)} as the plan books it")
                r = r.model_copy(update={"hours": {**r.hours, wd: new}})
        rooms.append(r)
    return scn.model_copy(update={"rooms": rooms}), notes


# --- the engine ---------------------------------------------------------------------------------
class NowcastEngine:
    """A day's now-cast machinery: cases and their sampled outcomes are drawn once, so each
    re-forecast (:meth:`forecast`) only builds the snapshot and runs the replications."""

    def __init__(self, scn: Scenario, plan: DayPlan, config: NowcastConfig | None = None) -> None:
        self.config = cfg = config or NowcastConfig()
        self.plan = plan
        self.scn, self.notes = staffed_for_plan(widen_durations(plan.scenario(scn), cfg.min_sigma),
                                                plan)
        self.cases = plan_cases(self.scn, plan)
        self.reps = range(cfg.reps)
        self.truths, self.u_duration = sample_truths(self.scn, self.cases, cfg.seed, self.reps)
        self.index = {cid: j for j, cid in enumerate(self.cases)}
        self.given = {cid: booked_duration(self.scn, c) for cid, c in self.cases.items()}
        self.fcd_u = first_case_delays(self.scn, plan, cfg.seed, self.reps)
        self.background: list[dict[str, np.ndarray]] = []  # unit -> (admit, leave) rows
        for r in self.reps:
            w = Week(cases={}, truth={}, first_case_delay={}, random_downtime=[], background={})
            background_beds(self.scn, Streams(cfg.seed, r), w)
            self.background.append({u: np.array(v, float).reshape(-1, 2)
                                    for u, v in w.background.items()})
        wd = self.scn.weekday(plan.day)
        self.windows = {r.id: (plan.midnight + w.start, plan.midnight + w.end)
                        for r in self.scn.rooms if (w := r.hours.get(wd)) is not None}  # type: ignore[call-overload]
        self.order = plan.room_order()

    def _delays(self, live: LiveState, at: float) -> dict[tuple[str, int], np.ndarray]:
        """First-case delays per room (one per replication), for rooms that have not started:
        conditioned on not having started by ``at`` once the planned start has passed."""
        dist, f, out = self.scn.first_case_delay, self.scn.stress.first_case_delay_factor, {}
        for j, room in enumerate(self.scn.rooms):
            rid = room.id
            first = next((c for c in self.order.get(rid, []) if not live.cases[c].cancelled), None)
            if first is None:
                continue
            late = at - self.cases[first].booked_start
            u = self.fcd_u[:, j]
            if late > 0:  # not started yet: the delay is longer than ``late`` (same uniforms)
                d = late + (np.asarray(dist.residual(u, late / f)) * f if f > 0 else 0.0 * u)
            else:
                d = np.asarray(dist.ppf(u)) * f
            out[(rid, self.plan.day)] = d
        return out

    def _remaining(self, base: SuiteSnapshot, live: LiveState
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Residual room time of each room's work in progress and residual PACU stay of each
        patient in PACU, drawn for all replications at once (each from its own uniform). After
        the procedure has ended, the rest is the emergence phase's residual given the minutes
        since the procedure ended; before, the case's whole room time given the minutes since
        it entered."""
        n, rooms, pacu = len(self.reps), {}, {}
        for rs in base.rooms:
            ended = live.cases[rs.case_id].at("procedure_end") if rs.case_id in live.cases else None
            if rs.state == "in_case" and rs.case_id and rs.phase == "post" and ended is not None:
                post = self.scn.phases.post
                u = np.asarray(post.cdf(np.array([t[rs.case_id].post for t in self.truths])), float)
                rooms[rs.room] = np.asarray(post.residual(u, max(base.time - ended, 0.0)), float)
            elif rs.state == "in_case" and rs.case_id:
                cid = rs.case_id
                rooms[rs.room] = self.given[cid].remaining(
                    self.u_duration[:, self.index[cid]], rs.elapsed)
            elif rs.state == "turnover":
                cid = rs.case_id or ""
                base_t = self._turnover_dist(cid)
                u = np.asarray(base_t.cdf(np.array([t[cid].turnover for t in self.truths])), float) \
                    if cid in self.cases else np.full(n, 0.5)
                rooms[rs.room] = np.asarray(base_t.residual(u, rs.elapsed), float)
        for ps in base.pacu:
            los = np.array([t[ps.case_id].pacu_los for t in self.truths])
            if not ps.observed:  # still there only in replications whose stay outlasts elapsed
                pacu[ps.case_id] = los - ps.elapsed
                continue
            dist = self.scn.pacu.los[self.cases[ps.case_id].patient_class]
            pacu[ps.case_id] = np.asarray(dist.residual(np.asarray(dist.cdf(los), float),
                                                        ps.elapsed), float)
        return rooms, pacu

    def _beds(self, rep: int, at: float) -> tuple[dict, dict]:
        """Other services' bed stays in replication ``rep`` as seen from ``at``: those admitted
        later (for the model to admit), and per unit the leaving times of those in bed now
        (``inf``: not before the run ends)."""
        end = self.plan.midnight + 1440.0
        later, now = {}, {}
        for unit, rows in self.background[rep].items():
            a, b = rows[:, 0], rows[:, 1]
            later[unit] = [(float(x), float(y)) for x, y in rows[(a > at) & (a < end)]]
            leaves = b[(a <= at) & (b > at)]
            now[unit] = np.where(leaves < end + RUN_PAST_MIN, leaves, np.inf)
        return later, now

    def _procedures_ended(self, live: LiveState, base: SuiteSnapshot) -> dict[str, float]:
        """Cases whose procedure ended before now, with when (their trays went to sterile
        processing then; a case seen only leaving the room ended its procedure on leaving)."""
        busy = {r.case_id for r in base.rooms if r.state == "in_case" and r.phase != "post"}
        out = {}
        for cid, c in live.cases.items():
            if cid in busy or not self.cases[cid].trays:
                continue
            end = c.at("procedure_end")
            end = end if end is not None else c.at("out_of_room")
            if end is not None:
                out[cid] = end
        return out

    def _turnover_dist(self, case_id: str):
        """The turnover distribution after ``case_id`` (its service's, else the suite's)."""
        c = self.cases.get(case_id)
        d = (self.scn.service(c.service).turnover if c else None) or self.scn.turnover
        return d.scaled(self.scn.stress.turnover_factor)

    def forecast(self, live: LiveState, at: float, policy: str | None = None) -> Nowcast:
        """The now-cast at scenario minute ``at`` from the live state (and the named policy's
        day-of proposals for rooms likely to run past their staffed end)."""
        import time

        t0 = time.perf_counter()
        base = base_snapshot(live, at)
        stale = {r for r in live.rooms if live.stale(r, at)}
        started = {c.room for c in live.cases.values() if c.marks}
        rem_rooms, rem_pacu = self._remaining(base, live)
        ended = self._procedures_ended(live, base)
        delays = self._delays(live, at)
        reps = []
        for i in self.reps:
            truths = self.truths[i]
            rolled: dict[str, float] = {}
            rooms = []
            for rs in base.rooms:
                if rs.room in stale:
                    rs, fin = roll_forward(
                        live, rs.room, at, truths, self.scn, self.cases, rs,
                        lambda c, e, i=i: float(self.given[c].remaining(
                            self.u_duration[i, self.index[c]], e)))
                    rolled.update(fin)
                elif rs.room in rem_rooms:
                    rs = RoomSnapshot(rs.room, rs.state, rs.case_id, rs.phase, rs.elapsed,
                                      remaining=float(rem_rooms[rs.room][i]))
                rooms.append(rs)
            pacu = tuple(PacuSnapshot(p.case_id, p.state, p.elapsed, float(rem_pacu[p.case_id][i]))
                         for p in base.pacu if rem_pacu[p.case_id][i] > 0)
            gone = {p.case_id for p in base.pacu if rem_pacu[p.case_id][i] <= 0}
            snap = SuiteSnapshot(at, tuple(rooms), pacu, base.done | set(rolled) | gone)
            rooms_started = started | {self.cases[c].booked_room for c in rolled}
            away = [(tray, end + tr.transport + sum(cycle))
                    for cid, end in ended.items() if (tr := truths[cid]) is not None
                    for tray, cycle in zip(self.cases[cid].trays, tr.spd_times, strict=True)
                    if end + tr.transport + sum(cycle) > at]
            day = run_rep(self.scn, self.cases, truths, snap, rooms_started,
                          {k: float(v[i]) for k, v in delays.items()}, self.plan.day,
                          *self._beds(i, at), away)
            for cid, t in rolled.items():
                day.out[cid] = (t, self.cases[cid].booked_room)
            reps.append(day)
        from ortwin.nowcast_summary import summarise_nowcast

        nc = summarise_nowcast(self, live, at, reps, stale)
        nc.notes = list(self.notes)
        if policy is not None:
            from ortwin.nowcast_summary import proposals

            nc.proposals = proposals(self, live, at, base, nc, policy)
        nc.seconds = time.perf_counter() - t0
        return nc
