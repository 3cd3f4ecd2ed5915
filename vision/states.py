"""The five room states a ceiling camera can see, the transitions between them, and the case
milestones those transitions mean (the visual specification is in docs/vision.md).

Light: the core may import this; nothing here needs numpy, OpenCV or a model.
"""

from __future__ import annotations

from twin.feed import ROOM_STATES, ROOM_TRANSITIONS

STATES: tuple[str, ...] = ROOM_STATES
"""Class order of every model and probability vector (index = class id); the feed's room
states (:data:`twin.feed.ROOM_STATES`)."""

ALLOWED: dict[str, tuple[str, ...]] = ROOM_TRANSITIONS
"""Transitions a room can make besides staying (:data:`twin.feed.ROOM_TRANSITIONS`)."""

PHASES: dict[str, str] = {
    "idle": "idle",
    "setup": "setup",
    "induction": "patient_in_room",
    "procedure": "procedure",
    "emergence": "patient_in_room",
    "turnover": "turnover",
}
"""The temporal decoder's hidden phases and the room state each one looks like. A patient in the
room before the procedure (induction, positioning) looks like one after it (emergence), but the
two go on differently: this is what lets the decoder tell a slow emergence from a new set-up."""

PHASE_NEXT: dict[str, dict[str, float]] = {
    "idle": {"setup": 0.85, "induction": 0.15},
    "setup": {"induction": 0.9, "idle": 0.1},
    "induction": {"procedure": 0.95, "turnover": 0.04, "idle": 0.005, "setup": 0.005},
    "procedure": {"emergence": 1.0},
    "emergence": {"turnover": 0.96, "procedure": 0.02, "idle": 0.01, "setup": 0.01},
    "turnover": {"induction": 0.6, "idle": 0.3, "setup": 0.1},
}
"""Where a phase goes when it ends, with typical odds (each row sums to 1). Rounded from 48
simulated room-days of the baseline scenario (the room is mostly set up while the previous
case's turnover is still going on), with every other move a room can make
(:data:`ALLOWED`) kept at a small probability so that a real site's rarer paths stay open."""

PHASE_MEAN_S: dict[str, float] = {
    "idle": 7200.0, "setup": 1100.0, "induction": 1350.0, "procedure": 4200.0,
    "emergence": 740.0, "turnover": 1800.0,
}
"""Typical seconds in each phase (means over the same simulated room-days)."""

PATIENT_STATES: frozenset[str] = frozenset({"patient_in_room", "procedure"})


def milestones(prev: str, new: str) -> tuple[str, ...]:
    """Case milestones (names of :data:`twin.events.CASE_MILESTONES` plus ``room_ready``) that a
    transition ``prev`` -> ``new`` implies, in the order they happen."""
    out: list[str] = []
    if prev not in PATIENT_STATES and new in PATIENT_STATES:
        out.append("in_room")
    if prev == "procedure" and new != "procedure":
        out.append("procedure_end")
    if prev in PATIENT_STATES and new not in PATIENT_STATES:
        out.append("out_of_room")
    if new == "procedure" and prev != "procedure":
        out.append("procedure_start")
    if new in ("idle", "setup") and prev == "turnover":
        out.append("room_ready")
    return tuple(out)
