"""The five room states a ceiling camera can see, the transitions between them, and the case
milestones those transitions mean (the visual specification is in docs/vision.md).

Light: the core may import this; nothing here needs numpy, OpenCV or a model.
"""

from __future__ import annotations

from twin.feed import ROOM_STATES

STATES: tuple[str, ...] = ROOM_STATES
"""Class order of every model and probability vector (index = class id); the feed's room
states (:data:`twin.feed.ROOM_STATES`)."""

ALLOWED: dict[str, tuple[str, ...]] = {
    "idle": ("setup", "patient_in_room"),
    "setup": ("idle", "patient_in_room"),
    "patient_in_room": ("procedure", "turnover", "idle", "setup"),
    "procedure": ("patient_in_room",),
    "turnover": ("idle", "setup", "patient_in_room"),
}
"""Transitions a room can make (besides staying): a patient enters a set-up (or, for an
emergency, idle or not-yet-clean) room; a procedure starts and ends with the patient in the
room; the patient leaves into turnover (or, rarely, straight to idle or setup); a cleaned room
becomes idle or is set up for the next case."""

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
