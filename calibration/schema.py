"""The canonical case-log schema: one row per case, as ORTwin reads every hospital's history.

A site's export is turned into this schema by a column mapping (:mod:`calibration.mapping`);
a file already in it (``ortwin synth-history`` writes one) needs no mapping. Timestamps are
local wall-clock time of the hospital, written ``YYYY-MM-DD HH:MM`` (seconds allowed); dates
``YYYY-MM-DD``. Empty cells mean "not recorded".

=================  ==========  ======================================================================
column             type        meaning
=================  ==========  ======================================================================
case_id            text        unique per case (required)
date               date        the day the case was booked to run (required)
room               text        the operating room it ran in (required unless cancelled)
surgeon            text        the operating surgeon
service            text        the surgical service (required)
procedure          text        procedure code or id (required)
procedure_name     text        human-readable procedure name
patient_class      text        ``outpatient``, ``inpatient`` or ``icu``
priority           text        ``elective``, ``urgent`` or ``emergent``
is_addon           bool        booked on the day (urgent/emergent add-on)
requested_at       timestamp   when an add-on was requested (its arrival)
booked_start       timestamp   the scheduled wheels-in time
booked_minutes     number      booked (estimated) in-room minutes
in_room            timestamp   wheels in (required unless cancelled)
procedure_start    timestamp   incision / procedure start (required unless cancelled)
procedure_end      timestamp   closure / procedure end (required unless cancelled)
out_of_room        timestamp   wheels out (required unless cancelled)
pacu_in            timestamp   PACU arrival (with ``pacu_out``, or neither)
pacu_out           timestamp   PACU discharge
cancelled          bool        cancelled on the day (or after booking); no milestones then
cancel_reason      text        why (``patient``, ``no_time``, free text)
=================  ==========  ======================================================================

Milestones, where recorded, are in the order ``in_room <= procedure_start <= procedure_end <=
out_of_room <= pacu_in <= pacu_out``.
"""

from __future__ import annotations

from twin.schema import ScenarioError

COLUMNS: tuple[str, ...] = (
    "case_id", "date", "room", "surgeon", "service", "procedure", "procedure_name",
    "patient_class", "priority", "is_addon", "requested_at", "booked_start", "booked_minutes",
    "in_room", "procedure_start", "procedure_end", "out_of_room", "pacu_in", "pacu_out",
    "cancelled", "cancel_reason",
)
"""Canonical columns, in file order."""

REQUIRED: tuple[str, ...] = ("case_id", "date", "service", "procedure")
"""Columns every row must have a value in."""

MILESTONES: tuple[str, ...] = (
    "in_room", "procedure_start", "procedure_end", "out_of_room", "pacu_in", "pacu_out",
)
"""Timestamps of a case, in the order they must occur."""

CORE_MILESTONES: tuple[str, ...] = MILESTONES[:4]
"""Milestones every case that ran must have (the PACU pair is optional)."""

TIMESTAMPS: tuple[str, ...] = ("requested_at", "booked_start", *MILESTONES)
TEXT: tuple[str, ...] = ("case_id", "room", "surgeon", "service", "procedure", "procedure_name",
                         "patient_class", "priority", "cancel_reason")
BOOLS: tuple[str, ...] = ("is_addon", "cancelled")
NUMBERS: tuple[str, ...] = ("booked_minutes",)

PATIENT_CLASSES: tuple[str, ...] = ("outpatient", "inpatient", "icu")
PRIORITIES: tuple[str, ...] = ("elective", "urgent", "emergent")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "%Y-%m-%d"

MAX_CASE_MINUTES = 24 * 60
"""An in-room time above this (or a booked time) is impossible, not long."""
MAX_PACU_MINUTES = 3 * 24 * 60
MAX_DAY_OFFSET = 1
"""Wheels-in may fall on the booked date or the next day (a case running past midnight)."""


class HistoryError(ScenarioError):
    """A history or mapping file that cannot be used at all; ``str()`` is one line:
    file: field: what was expected (the scenario error's format and exit status)."""
