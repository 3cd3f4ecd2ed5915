"""Simulated days with known truth: one replication of the twin, its plan for a day, and its
event log as a perfect live feed (every milestone and room state, exactly when it happened).

Scenario day ``d`` is dated ``REFERENCE_MONDAY + d`` (day 0 is a Monday).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from twin.dayplan import DayPlan, plan_from_frame
from twin.feed import PACU, Observation
from twin.policy import Policy
from twin.replication import replicate
from twin.scenario import Scenario, with_horizon

REFERENCE_MONDAY = dt.date(2026, 11, 23)
"""The date of scenario day 0 for simulated days."""
ROOM_STATE_OF: dict[str, str] = {"in_room": "patient_in_room", "procedure_start": "procedure",
                                 "procedure_end": "patient_in_room", "out_of_room": "turnover",
                                 "turnover_end": "idle"}
"""The room state each event of the twin's log starts."""
FEED_EVENTS: tuple[str, ...] = ("in_room", "procedure_start", "procedure_end", "out_of_room",
                                "pacu_in", "pacu_out", "cancelled")


@dataclass
class SimDay:
    """A simulated day: its scenario, plan, event log and cases frame."""

    scenario: Scenario
    plan: DayPlan
    events: pd.DataFrame
    cases: pd.DataFrame

    def actual_finish(self) -> dict[str, float]:
        """Each room's last out-of-room minute on the plan's day."""
        ev = self.events
        day = ev.loc[(ev["event"] == "out_of_room") & ev["case_id"].isin(set(self.plan.cases["case_id"]))]
        return {str(k): float(v) for k, v in day.groupby("room")["time"].max().items()}


def simulate_day(scn: Scenario, day: int, seed: int, rep: int,
                 policy: Callable[[Scenario], Policy]) -> SimDay:
    """Run replication ``rep`` of ``scn`` (its whole horizon, so the day is booked as full as
    in any run) under a fresh ``policy(scenario)`` and take day ``day``'s plan: every elective
    the policy scheduled for it, in its room at its planned start."""
    if day >= scn.horizon_days:
        scn = with_horizon(scn, day + 1)
    out = replicate(scn, policy(scn), seed, rep)
    ev, cases = out.events, out.cases.set_index("case_id")
    sched = ev.loc[(ev["event"] == "scheduled") & (ev["value"] // 1440 == day)]
    sched = sched.drop_duplicates("case_id", keep="last")
    sched = sched.loc[~cases.loc[sched["case_id"], "is_addon"].to_numpy(bool)]
    date = REFERENCE_MONDAY + dt.timedelta(days=day)
    c = cases.loc[sched["case_id"]]
    minute = (sched["value"] - day * 1440).round().astype(int)
    frame = pd.DataFrame({
        "case_id": sched["case_id"].to_numpy(), "service": c["service"].to_numpy(),
        "surgeon": c["surgeon"].to_numpy(), "procedure": c["procedure"].to_numpy(),
        "patient_class": c["patient_class"].to_numpy(), "date": date.isoformat(),
        "room": sched["room"].to_numpy(),
        "start": [f"{m // 60:02d}:{m % 60:02d}" for m in minute],
        "booked_minutes": c["booked_minutes"].to_numpy(),
    }).astype(str)
    plan = plan_from_frame(frame, scn, f"{scn.name} day {day} rep {rep}")
    return SimDay(scn, plan, ev, out.cases)


def events_feed(sim: SimDay, until: float | None = None, tz: dt.tzinfo = dt.UTC,
                states: bool = True, milestones: bool = True,
                case_ids: bool = True) -> list[Observation]:
    """The day's event log as a perfect feed (source ``simulation``): case milestones of the
    plan's cases and, when ``states``, the room state each one starts; in time order. Without
    ``case_ids`` it is what a perfect OR camera would send (no case ids, nothing from PACU) plus
    the booking system's cancellations (source ``ehr``, with their case ids)."""
    ev = sim.events
    plan = sim.plan
    ids = set(plan.cases["case_id"])
    lo, hi = plan.midnight, until if until is not None else plan.midnight + 1440 + 360
    rows = ev.loc[(ev["time"] >= lo) & (ev["time"] <= hi) & (
        (ev["case_id"].isin(ids) & ev["event"].isin(FEED_EVENTS))
        | (ev["event"].isin(["turnover_end"]) & ev["room"].ne("")))]
    midnight = dt.datetime.combine(plan.date, dt.time(), tz)
    booked_room = dict(zip(plan.cases["case_id"], plan.cases["room"], strict=True))
    out = []
    for r in rows.itertuples(index=False):
        when = midnight + dt.timedelta(minutes=float(r.time) - plan.midnight)
        case = r.case_id or None
        room = r.room or (PACU if r.event.startswith("pacu") else
                          str(booked_room.get(case, PACU)))
        if r.event == "turnover_end":
            if states:
                out.append(Observation(time=when, room=room, kind="room_state", value="idle",
                                       source="simulation"))
            if milestones:
                out.append(Observation(time=when, room=room, kind="milestone", value="room_ready",
                                       source="simulation"))
            continue
        if r.event == "cancelled":
            out.append(Observation(time=when, room=room, kind="milestone", value="cancelled",
                                   case_id=case, source="simulation" if case_ids else "ehr",
                                   event_id=f"{case}:cancelled"))
        elif milestones and (case_ids or not r.event.startswith("pacu")):
            out.append(Observation(time=when, room=room, kind="milestone", value=r.event,
                                   case_id=case if case_ids else None, source="simulation",
                                   event_id=f"{case}:{r.event}" if case_ids else None))
        if states and r.event in ROOM_STATE_OF:
            out.append(Observation(time=when, room=room, kind="room_state",
                                   value=ROOM_STATE_OF[r.event], source="simulation"))
    return out


def cancellations(sim: SimDay) -> list[Observation]:
    """The plan's day-of cancellations as the booking system reports them (EHR lines)."""
    return [o for o in events_feed(sim, states=False, case_ids=False) if o.value == "cancelled"]


def demo_feed(sim: SimDay, seed: int = 1, stale_room: str | None = None,
              stale_from: float | None = None) -> list[Observation]:
    """A realistic recorded feed of a simulated day: EHR milestones (charted 0-8 min late),
    camera room states (confidence 0.7-0.99), and the faults a live feed has — a duplicate, an
    observation out of order, an unknown room, an impossible transition, a low-confidence
    camera state that contradicts the EHR — plus, from ``stale_from``, a silent camera in
    ``stale_room`` (a ``source_status: stale`` then nothing). For demos and tests."""
    import numpy as np

    rng = np.random.default_rng(seed)
    perfect = events_feed(sim)
    out: list[tuple[dt.datetime, Observation]] = []
    for o in perfect:
        if o.kind == "milestone" and o.value != "room_ready":
            late = dt.timedelta(minutes=float(rng.uniform(0, 8)))
            out.append((o.time + late, o.model_copy(update={
                "source": "ehr", "source_id": "ehr-adt", "received": o.time + late})))
        elif o.kind == "room_state":
            silent = (stale_room is not None and o.room == stale_room and stale_from is not None
                      and sim.plan.minute(o.time) >= stale_from)
            if not silent:
                out.append((o.time, o.model_copy(update={
                    "source": "camera", "source_id": f"cam-{o.room.lower()}",
                    "confidence": round(float(rng.uniform(0.7, 0.99)), 2)})))
    plan = sim.plan
    day0 = dt.datetime.combine(plan.date, dt.time(), dt.UTC)
    for room in sim.scenario.rooms:
        for m in range(6 * 60, 22 * 60, 5):  # camera heartbeats every 5 minutes
            if stale_room == room.id and stale_from is not None and plan.midnight + m >= stale_from:
                break
            out.append((day0 + dt.timedelta(minutes=m), Observation(
                time=day0 + dt.timedelta(minutes=m), room=room.id, kind="source_status",
                value="live", source="camera", source_id=f"cam-{room.id.lower()}")))
    out.sort(key=lambda x: x[0])
    obs = [o for _, o in out]
    faults: list[tuple[int, Observation]] = []
    ms = [i for i, o in enumerate(obs) if o.kind == "milestone" and o.value == "in_room"]
    if len(ms) >= 3:
        faults.append((ms[1] + 1, obs[ms[1]]))  # duplicate: the same EHR message twice
        first = obs[ms[2]]
        faults.append((ms[2] + 6, first.model_copy(update={  # a late, older camera state
            "source": "camera", "kind": "room_state", "value": "setup", "event_id": None,
            "case_id": None, "received": None, "confidence": 0.9,
            "time": first.time - dt.timedelta(minutes=30)})))
        faults.append((ms[2] + 8, first.model_copy(update={"room": "OR99", "event_id": None})))
    procs = [i for i, o in enumerate(obs) if o.kind == "room_state" and o.value == "procedure"]
    if len(procs) >= 2:
        p = obs[procs[len(procs) // 2]]
        faults.append((procs[len(procs) // 2] + 1, p.model_copy(update={  # procedure -> idle
            "value": "idle", "time": p.time + dt.timedelta(minutes=5), "confidence": 0.9})))
        q = obs[procs[len(procs) // 3]]
        faults.append((procs[len(procs) // 3] + 1, q.model_copy(update={  # contradicts the EHR
            "value": "patient_in_room", "time": q.time + dt.timedelta(minutes=1),
            "confidence": 0.62})))
    for pos, o in sorted(faults, key=lambda x: x[0], reverse=True):
        obs.insert(min(pos, len(obs)), o)
    if stale_room is not None and stale_from is not None:
        when = dt.datetime.combine(sim.plan.date, dt.time(), dt.UTC) + dt.timedelta(
            minutes=stale_from - sim.plan.midnight)
        stale = Observation(time=when, room=stale_room, kind="source_status", value="stale",
                            source="camera", source_id=f"cam-{stale_room.lower()}")
        pos = next((i for i, o in enumerate(obs) if o.time > when), len(obs))
        obs.insert(pos, stale)
    return obs
