"""The live state of the day: feed observations applied to the plan, by stated rules.

Observations are applied in the order they arrive (file order). Each is either **applied**,
**resolved** by a rule (applied after a correction, or replacing an earlier value), a
**heartbeat** (it confirms what is known), or **quarantined** with its category and reason.
Nothing is dropped silently, and a bad observation never stops the feed.

Rules (docs/nowcast.md lists them with examples):

- ``unknown_room``: a room the scenario does not have (``PACU`` is allowed for PACU milestones).
- ``unknown_case``: a case id the plan does not have; a camera milestone (no case id) for which
  the room has no case to attach it to.
- ``duplicate``: an ``event_id`` seen before, or the same milestone of a case again from the
  same source within ``duplicate_tolerance_min``.
- ``out_of_order``: a milestone earlier than the case's previous milestone (or later than its
  next); a camera observation earlier than the room's latest one.
- ``impossible_transition``: a room-state change the room cannot make (procedure → idle without
  out of room), a case entering a room that still has another patient, a milestone before the
  case is in the room, a cancellation after the patient entered.
- resolved ``done_without_entry``: an EHR out of room for a case whose entry was not taken (two
  patients charted in one room at once, or the entry never sent): the case is done and never
  simulated again; the room's state is left as it was.
- ``conflict``: two sources disagree. **The EHR beats the camera**: an EHR milestone replaces a
  camera milestone's time (resolved ``ehr_over_camera``); a camera milestone or a camera state below
  ``camera_over_ehr`` confidence that contradicts an EHR-tracked case is quarantined.
- ``low_confidence``: a camera room state below ``min_confidence``.

Cameras add milestones without case ids: ``in_room`` is the room's next planned case not yet
started, the others belong to the case in the room.

Staleness: a room whose continuous source (camera, RTLS; they send a ``source_status: live``
heartbeat) has been silent for longer than ``stale_after_min``, or said ``stale``/``stopped``
with nothing newer from it, is stale while it has a patient in or the plan says it is busy.
EHR milestones are events, not heartbeats: they update the room but do not make it fresh, and
a room fed by the EHR alone never goes stale by silence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.dayplan import DayPlan
from twin.feed import PACU, ROOM_TRANSITIONS, Observation

CASE_STEPS: tuple[str, ...] = ("in_room", "procedure_start", "procedure_end", "out_of_room",
                               "pacu_in", "pacu_out")
"""Case milestones the live state tracks, in the order they must happen."""
CONTINUOUS: frozenset[str] = frozenset({"camera", "rtls"})
"""Sources that report continuously (their silence means something)."""
CATEGORIES: tuple[str, ...] = ("unknown_room", "unknown_case", "duplicate", "out_of_order",
                               "impossible_transition", "conflict", "low_confidence")
"""Quarantine categories."""


@dataclass(frozen=True)
class LiveConfig:
    """Thresholds of the feed rules."""

    stale_after_min: float = 20.0
    min_confidence: float = 0.6
    camera_over_ehr: float = 0.75
    duplicate_tolerance_min: float = 2.0


@dataclass
class CaseLive:
    """What the feed has said about one planned case: milestone -> (minute, source)."""

    case_id: str
    room: str
    marks: dict[str, tuple[float, str]] = field(default_factory=dict)
    cancelled: bool = False

    def at(self, step: str) -> float | None:
        """Minute of a milestone, if recorded."""
        m = self.marks.get(step)
        return m[0] if m else None

    @property
    def in_room(self) -> bool:
        """The patient is in the room now."""
        return "in_room" in self.marks and "out_of_room" not in self.marks


@dataclass
class RoomLive:
    """One room: its observed state since ``since``, the case in it, when it was last heard."""

    room: str
    state: str = "idle"
    since: float | None = None
    case_id: str | None = None
    last_case: str | None = None
    last_seen: float | None = None
    continuous_seen: float | None = None
    source_down: float | None = None
    last_camera: float | None = None
    observed: bool = False


@dataclass
class LiveState:
    """The day as the feed has told it so far (build with :func:`live_state` or :meth:`apply`)."""

    plan: DayPlan
    rooms: dict[str, RoomLive]
    cases: dict[str, CaseLive]
    config: LiveConfig = field(default_factory=LiveConfig)
    outcomes: Counter = field(default_factory=Counter)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    resolutions: list[dict[str, Any]] = field(default_factory=list)
    latest: float | None = None
    _ids: set[str] = field(default_factory=set)

    @classmethod
    def empty(cls, plan: DayPlan, room_ids: list[str], config: LiveConfig | None = None) -> LiveState:
        """The state before any observation: every planned case waiting."""
        cases = {str(r.case_id): CaseLive(str(r.case_id), str(r.room))
                 for r in plan.cases.itertuples(index=False)}
        return cls(plan, {r: RoomLive(r) for r in room_ids}, cases, config or LiveConfig())

    # --- reading ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Observations by outcome (applied, resolved, heartbeat) and quarantine category."""
        return dict(sorted(self.outcomes.items()))

    def stale(self, room: str, now: float) -> bool:
        """Whether the room's feed is stale at ``now`` (see module notes)."""
        r, cfg = self.rooms[room], self.config
        if r.continuous_seen is None:
            return False
        down = r.source_down is not None
        if not down and now - r.continuous_seen <= cfg.stale_after_min:
            return False
        return r.case_id is not None or self._planned_busy(room, now)

    def _planned_busy(self, room: str, now: float) -> bool:
        """In turnover, or a planned case not yet started was due to start by ``now``."""
        if self.rooms[room].state == "turnover":
            return True
        rows = self.plan.cases.loc[self.plan.cases["room"] == room]
        waiting = np.array([not self.cases[c].marks and not self.cases[c].cancelled
                            for c in rows["case_id"]], dtype=bool)
        return bool(((rows["booked_start"] <= now).to_numpy() & waiting).any())

    def room_cases(self, room: str) -> list[str]:
        """The room's planned cases in planned order."""
        return self.plan.room_order().get(room, [])

    def next_case(self, room: str) -> str | None:
        """The room's next planned case that has not started and is not cancelled."""
        for cid in self.room_cases(room):
            c = self.cases[cid]
            if not c.marks and not c.cancelled:
                return cid
        return None

    # --- applying ---------------------------------------------------------------------------
    def add_unreadable(self, rows: list[dict[str, Any]]) -> None:
        """Count and quarantine feed lines that could not be read (``line``, ``reason``)."""
        for q in rows:
            self.outcomes["unreadable"] += 1
            self.quarantine.append({"index": q["line"], "category": "unreadable",
                                    "reason": q["reason"]})

    def _quarantine(self, obs: Observation, category: str, reason: str, index: int | None) -> str:
        self.outcomes[category] += 1
        self.quarantine.append({"index": index, "time": obs.time.isoformat(), "room": obs.room,
                                "kind": obs.kind, "value": obs.value, "case_id": obs.case_id,
                                "source": obs.source, "category": category, "reason": reason})
        return category

    def apply(self, obs: Observation, index: int | None = None) -> str:
        """Apply one observation; returns its outcome (``applied``, ``resolved``, ``heartbeat``
        or a quarantine category)."""
        q = self._quarantine
        t = self.plan.minute(obs.time)
        if obs.event_id is not None:
            if obs.event_id in self._ids:
                return q(obs, "duplicate", f"event_id {obs.event_id!r} seen before", index)
            self._ids.add(obs.event_id)
        pacu_step = obs.kind == "milestone" and obs.value in ("pacu_in", "pacu_out")
        if obs.room not in self.rooms and not (pacu_step and obs.room == PACU):
            return q(obs, "unknown_room", f"room {obs.room!r} is not in the scenario", index)
        room = self.rooms.get(obs.room)
        if obs.source == "camera" and room is not None and room.last_camera is not None \
                and t < room.last_camera - 1e-9:
            return q(obs, "out_of_order", f"{self.plan.clock(t)} is before the room's last camera "
                     f"observation at {self.plan.clock(room.last_camera)}", index)
        if obs.kind == "source_status":
            outcome = self._status(obs, t)
        elif obs.kind == "room_state":
            outcome = self._state(obs, t, index)
        else:
            outcome = self._milestone(obs, t, index)
        if outcome in ("applied", "resolved", "heartbeat") and room is not None:
            self._seen(room, obs, t)
        if outcome in ("applied", "resolved", "heartbeat"):
            self.outcomes[outcome] += 1
            self.latest = t if self.latest is None else max(self.latest, t)
        return outcome

    def _seen(self, room: RoomLive, obs: Observation, t: float) -> None:
        room.observed = True
        room.last_seen = t if room.last_seen is None else max(room.last_seen, t)
        if obs.source in CONTINUOUS:
            room.continuous_seen = t if room.continuous_seen is None else max(room.continuous_seen, t)
            if room.source_down is not None and t > room.source_down and not (
                    obs.kind == "source_status" and obs.value != "live"):
                room.source_down = None
        if obs.source == "camera":
            room.last_camera = t if room.last_camera is None else max(room.last_camera, t)

    def _status(self, obs: Observation, t: float) -> str:
        room = self.rooms[obs.room]
        if obs.value == "live":
            room.source_down = None
            return "applied"
        room.source_down = t  # stale until something newer arrives (see stale())
        return "applied"

    def _state(self, obs: Observation, t: float, index: int | None) -> str:
        room, cfg, q = self.rooms[obs.room], self.config, self._quarantine
        if obs.value == room.state:
            return "heartbeat"
        if obs.confidence < cfg.min_confidence:
            return q(obs, "low_confidence", f"confidence {obs.confidence:.2f} is below "
                     f"{cfg.min_confidence:.2f}", index)
        if obs.value not in ROOM_TRANSITIONS[room.state]:
            hint = " without out_of_room" if room.state in ("procedure", "patient_in_room") else ""
            return q(obs, "impossible_transition", f"{room.state} -> {obs.value}{hint}", index)
        case = self.cases.get(room.case_id or "")
        if case is not None and obs.source != "ehr" and obs.confidence < cfg.camera_over_ehr \
                and _ehr_tracked(case) and _contradicts(obs.value, case):
            return q(obs, "conflict", f"the EHR has case {case.case_id} "
                     f"{_ehr_phase(case)}; {obs.source} state {obs.value} at confidence "
                     f"{obs.confidence:.2f} ignored (EHR beats camera)", index)
        room.state, room.since = obs.value, t
        return "applied"

    def _milestone(self, obs: Observation, t: float, index: int | None) -> str:
        q, value = self._quarantine, obs.value
        if value in ("room_ready", "cancelled") and obs.case_id is None:
            if value == "room_ready":
                room = self.rooms[obs.room]
                if room.case_id is not None:
                    return q(obs, "impossible_transition", f"room_ready while case {room.case_id} "
                             "is still in the room", index)
                room.state, room.since = "idle", t
                return "applied"
            return q(obs, "unknown_case", "cancelled without a case id", index)
        if value not in CASE_STEPS and value not in ("room_ready", "cancelled"):
            return "heartbeat"  # booked, trays_ready, ...: nothing the live state tracks
        cid = obs.case_id or self._camera_case(obs)
        if cid is None:
            return q(obs, "unknown_case", f"no case in {obs.room} to attach a camera {value} to",
                     index)
        case = self.cases.get(cid)
        if case is None:
            return q(obs, "unknown_case", f"case {cid!r} is not in the plan", index)
        if value == "cancelled":
            if case.marks:
                return q(obs, "impossible_transition", f"case {cid} cancelled after "
                         f"{next(iter(case.marks))}", index)
            case.cancelled = True
            return "applied"
        if value == "room_ready":  # with a case id: the room is free again
            return self._milestone(obs.model_copy(update={"case_id": None}), t, index)
        if value not in CASE_STEPS:  # booked, trays_ready, ...: nothing the live state tracks
            return "heartbeat"
        return self._step(obs, case, value, t, index)

    def _camera_case(self, obs: Observation) -> str | None:
        room = self.rooms.get(obs.room)
        if room is None:
            return None
        if obs.value == "in_room":
            return self.next_case(obs.room) if room.case_id is None else room.case_id
        if obs.value in ("pacu_in", "pacu_out"):
            return None
        return room.case_id or (room.last_case if obs.value == "out_of_room" else None)

    def _step(self, obs: Observation, case: CaseLive, value: str, t: float,
              index: int | None) -> str:
        q, cfg, clock = self._quarantine, self.config, self.plan.clock
        old = case.marks.get(value)
        if case.cancelled:
            return q(obs, "impossible_transition", f"case {case.case_id} was cancelled", index)
        if old is not None:
            same = old[1] == obs.source
            if same and abs(old[0] - t) <= cfg.duplicate_tolerance_min:
                return q(obs, "duplicate", f"{value} of case {case.case_id} already recorded at "
                         f"{clock(old[0])}", index)
            if old[1] != "ehr" and obs.source == "ehr":
                if not self._in_order(case, value, t):
                    return q(obs, "out_of_order", self._order_reason(case, value, t), index)
                case.marks[value] = (t, "ehr")
                self._resolved_room(case, value, t)
                self.resolutions.append({"index": index, "time": obs.time.isoformat(),
                                         "room": obs.room, "case_id": case.case_id,
                                         "rule": "ehr_over_camera",
                                         "reason": f"EHR {value} of case {case.case_id} at "
                                                   f"{clock(t)} replaces the {old[1]}'s "
                                                   f"{clock(old[0])}"})
                return "resolved"
            return q(obs, "conflict", f"{value} of case {case.case_id} already recorded at "
                     f"{clock(old[0])} by {old[1]}", index)
        k = CASE_STEPS.index(value)
        if value == "out_of_room" and "in_room" not in case.marks and obs.source == "ehr" \
                and not case.marks:
            # the EHR says the case is over although its entry was not taken (quarantined, or
            # never sent): the case is done and is never simulated again; the room is untouched
            case.marks[value] = (t, obs.source)
            self.resolutions.append({"index": index, "time": obs.time.isoformat(),
                                     "room": obs.room, "case_id": case.case_id,
                                     "rule": "done_without_entry",
                                     "reason": f"out_of_room of case {case.case_id} without its "
                                               "in_room: the case is done"})
            return "resolved"
        if k > 0 and value not in ("pacu_in", "pacu_out") and "in_room" not in case.marks:
            return q(obs, "impossible_transition", f"{value} of case {case.case_id} before it "
                     "entered the room", index)
        if not self._in_order(case, value, t):
            return q(obs, "out_of_order", self._order_reason(case, value, t), index)
        if obs.source != "ehr" and _ehr_tracked(case) and obs.confidence < cfg.camera_over_ehr:
            return q(obs, "conflict", f"the EHR tracks case {case.case_id}; camera {value} at "
                     f"confidence {obs.confidence:.2f} not taken (EHR beats camera)", index)
        room = self.rooms[case.room]
        if value == "in_room":
            if room.case_id not in (None, case.case_id):
                return q(obs, "impossible_transition", f"{case.room} still has case {room.case_id}"
                         " in the room (no out_of_room)", index)
            if obs.room != case.room:
                room = self.rooms[obs.room]
                if room.case_id is not None:
                    return q(obs, "impossible_transition", f"{obs.room} still has case "
                             f"{room.case_id} in the room (no out_of_room)", index)
                case.room = obs.room  # the case moved room on the day
        case.marks[value] = (t, obs.source)
        self._resolved_room(case, value, t)
        return "applied"

    def _in_order(self, case: CaseLive, value: str, t: float) -> bool:
        k = CASE_STEPS.index(value)
        before = [case.marks[s][0] for s in CASE_STEPS[:k] if s in case.marks]
        after = [case.marks[s][0] for s in CASE_STEPS[k + 1:] if s in case.marks]
        return all(t >= b - 1e-9 for b in before) and all(t <= a + 1e-9 for a in after)

    def _order_reason(self, case: CaseLive, value: str, t: float) -> str:
        k = CASE_STEPS.index(value)
        for s in CASE_STEPS[:k]:
            if s in case.marks and t < case.marks[s][0]:
                return (f"{value} of case {case.case_id} at {self.plan.clock(t)} is before its "
                        f"{s} at {self.plan.clock(case.marks[s][0])}")
        s = next(s for s in CASE_STEPS[k + 1:] if s in case.marks and t > case.marks[s][0])
        return (f"{value} of case {case.case_id} at {self.plan.clock(t)} is after its {s} at "
                f"{self.plan.clock(case.marks[s][0])}")

    def _resolved_room(self, case: CaseLive, value: str, t: float) -> None:
        """Move the room's state on from a case milestone (the newest one wins)."""
        room = self.rooms[case.room]
        latest = max(CASE_STEPS.index(s) for s in case.marks if s in CASE_STEPS[:4]) \
            if any(s in case.marks for s in CASE_STEPS[:4]) else None
        if latest is None or value in ("pacu_in", "pacu_out"):
            return
        step = CASE_STEPS[latest]
        if step == "out_of_room":
            if room.case_id == case.case_id:
                room.case_id, room.last_case = None, case.case_id
                room.state, room.since = "turnover", case.marks[step][0]
            return
        room.case_id = case.case_id
        state = {"in_room": "patient_in_room", "procedure_start": "procedure",
                 "procedure_end": "patient_in_room"}[step]
        if room.state != state or step == "in_room" and room.since != case.marks[step][0]:
            room.state, room.since = state, case.marks[step][0]


def _ehr_tracked(case: CaseLive) -> bool:
    return any(src == "ehr" for _, src in case.marks.values())


def _ehr_phase(case: CaseLive) -> str:
    last = max((s for s in case.marks if s in CASE_STEPS), key=CASE_STEPS.index)
    return f"at {last}"


def _contradicts(state: str, case: CaseLive) -> bool:
    """Whether a room state contradicts where the EHR has the case."""
    if not case.in_room:
        return False
    return state not in ("patient_in_room", "procedure")


def live_state(plan: DayPlan, room_ids: list[str], observations: list[Observation],
               until: float | None = None, config: LiveConfig | None = None) -> LiveState:
    """Apply observations (in arrival order) whose time is at or before ``until`` (scenario
    minutes; all when None)."""
    st = LiveState.empty(plan, room_ids, config)
    for i, obs in enumerate(observations):
        if until is not None and plan.minute(obs.time) > until + 1e-9:
            continue
        st.apply(obs, i)
    return st
