"""The tidy event log: one row per milestone or resource change.

Columns of the events frame (a run adds ``rep``):

=========  =======  ==========================================================================
column     dtype    meaning
=========  =======  ==========================================================================
time       float    minutes since the start of the horizon (day 0, a Monday, 00:00)
day        int      ``int(time // 1440)``
event      str      one of the names below
case_id    str      the case, or "" for room/resource events
room       str      the room, or ""
resource   str      for resource events: ``pacu``, ``ward``, ``icu``, ``staff:<role>``,
                    ``surgeon:<id>``, ``tray:<type>``, ``spd:<stage>``; otherwise ""
value      float    event-specific number (see below), NaN when unused
detail     str      event-specific text (cancellation reason, ...), "" when unused
=========  =======  ==========================================================================

Case milestones, in the order a case meets them (a real perioperative record has the same):
``booked`` (value = booked minutes; electives at time 0 of the horizon, add-ons on arrival),
``scheduled`` (a policy placed it: room, value = planned start minute),
``in_preop``, ``trays_requested``, ``trays_ready``, ``in_room``, ``procedure_start``,
``procedure_end``, ``pacu_requested`` (ready to leave the OR), ``out_of_room``, ``pacu_in``
(or ``pacu_overflow`` when the PACU is full and the scenario sends patients elsewhere),
``pacu_ready`` (recovered), ``bed_assigned`` (inpatients and ICU), ``pacu_out``.
Terminal states: ``pacu_out`` (completed), ``cancelled`` (detail = reason), ``not_started``
(still waiting when the horizon ended). Every case has exactly one terminal event.

Room events: ``room_open`` / ``room_close`` (staffed window, per room-day), ``room_down`` /
``room_up`` (detail = reason), ``turnover_start`` / ``turnover_end``.

Resource events: ``level`` (value = units in use after the change) and ``capacity``
(value = units available from this time on). Policy events (see :data:`POLICY_EVENTS`) carry
``resource = "policy"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

COLUMNS: tuple[str, ...] = ("time", "day", "event", "case_id", "room", "resource", "value", "detail")

CASE_MILESTONES: tuple[str, ...] = (
    "booked",
    "scheduled",
    "in_preop",
    "trays_requested",
    "trays_ready",
    "in_room",
    "procedure_start",
    "procedure_end",
    "pacu_requested",
    "out_of_room",
    "pacu_in",
    "pacu_overflow",
    "pacu_ready",
    "bed_assigned",
    "pacu_out",
)
"""Case milestones in the order they occur."""

TERMINAL: tuple[str, ...] = ("pacu_out", "cancelled", "not_started")
"""Exactly one of these ends every case."""

ROOM_EVENTS: tuple[str, ...] = (
    "room_open", "room_close", "room_down", "room_up", "turnover_start", "turnover_end",
)
RESOURCE_EVENTS: tuple[str, ...] = ("level", "capacity")
POLICY_EVENTS: tuple[str, ...] = (
    "plan_solved", "plan_fallback", "rule_violation", "rule_override", "replan", "plan_explained",
)
"""Written by policies through ``SuiteView.note`` with ``resource = "policy"``:
``plan_solved`` (value = objective, detail = solver status, bound, wall time), ``plan_fallback``
(detail = why the safety gate fell back), ``rule_violation`` (a monitored rule; detail = rule
id), ``rule_override`` (detail = rule id and justification code), ``replan`` (day-of),
``plan_explained`` (one per planned case: room, value = planned start, detail = why, in words)."""

CANCEL_REASONS: tuple[str, ...] = ("patient", "no_time")
"""Details of ``cancelled``: ``patient``: day-of cancellation (unfit, no-show); ``no_time``: the
day ran out."""

NOT_STARTED_REASONS: tuple[str, ...] = ("not_booked", "unplanned", "horizon", "unfinished")
"""Details of ``not_started``: ``not_booked``: no block time in the horizon; ``unplanned``: the
policy left it out of its day's plan; ``horizon``: still waiting when the horizon ended;
``unfinished``: started but not through PACU when the drain period ran out."""


class EventLog:
    """Append-only recorder used by the model; ``frame()`` returns the tidy DataFrame."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def case(self, time: float, event: str, case_id: str, room: str = "",
             value: float = math.nan, detail: str = "") -> None:
        """Record a case milestone."""
        self.rows.append((time, event, case_id, room, "", value, detail))

    def room(self, time: float, event: str, room: str, case_id: str = "",
             detail: str = "") -> None:
        """Record a room event."""
        self.rows.append((time, event, case_id, room, "", math.nan, detail))

    def resource(self, time: float, resource: str, event: str, value: float) -> None:
        """Record a resource level or capacity change."""
        self.rows.append((time, event, "", "", resource, value, ""))

    def frame(self) -> pd.DataFrame:
        """The log as a DataFrame sorted stably by time."""
        return to_frame(self.rows)


def to_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """Build the events frame from ``(time, event, case_id, room, resource, value, detail)``."""
    rows = list(rows)
    if not rows:
        return empty_events()
    t, ev, cid, room, res, val, det = zip(*rows, strict=True)
    time = np.asarray(t, dtype=float)
    order = np.argsort(time, kind="stable")
    df = pd.DataFrame(
        {
            "time": time[order],
            "day": (time[order] // 1440).astype(np.int64),
            "event": np.asarray(ev, dtype=object)[order],
            "case_id": np.asarray(cid, dtype=object)[order],
            "room": np.asarray(room, dtype=object)[order],
            "resource": np.asarray(res, dtype=object)[order],
            "value": np.asarray(val, dtype=float)[order],
            "detail": np.asarray(det, dtype=object)[order],
        }
    )
    return df.reset_index(drop=True)


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and the right columns."""
    return pd.DataFrame({
        "time": pd.Series(dtype=float), "day": pd.Series(dtype=np.int64),
        "event": pd.Series(dtype=object), "case_id": pd.Series(dtype=object),
        "room": pd.Series(dtype=object), "resource": pd.Series(dtype=object),
        "value": pd.Series(dtype=float), "detail": pd.Series(dtype=object),
    })


CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "service", "surgeon", "procedure", "patient_class", "priority", "capability",
    "trays", "booked_minutes", "booked_day", "booked_room", "booked_start", "is_addon",
    "arrival",
)
"""Columns of the cases frame: one row per case with what was known at booking time.
``trays`` is a ``;``-joined list; ``booked_room``/``booked_start`` are empty/NaN for add-ons
and for electives that found no block; ``arrival`` is the add-on arrival minute (NaN for
electives)."""
