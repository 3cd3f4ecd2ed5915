"""A snapshot of the suite at a moment, from which the model can start instead of an empty day.

A later issue builds snapshots from live room observations. Work in progress is never restarted:
a case 70 minutes into its room time gets its *remaining* time drawn from its duration
distribution conditioned on having lasted 70 minutes (residual life), and the same holds for
turnovers and PACU stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class RoomSnapshot:
    """One room at the snapshot time.

    ``state``: ``idle``, ``in_case`` (``case_id`` in the room, in ``phase``), ``turnover`` or
    ``down`` (until ``down_until``). ``elapsed`` is minutes since the case entered the room
    (``in_case``), since the turnover began (``turnover``), else ignored. ``remaining``, when
    given, is the case's (or turnover's) remaining room time already drawn by the caller from
    its residual-life distribution; otherwise the model draws it.
    """

    room: str
    state: Literal["idle", "in_case", "turnover", "down"] = "idle"
    case_id: str | None = None
    phase: Literal["pre", "procedure", "post", "hold"] = "procedure"
    elapsed: float = 0.0
    down_until: float | None = None
    remaining: float | None = None


@dataclass(frozen=True)
class PacuSnapshot:
    """A patient in PACU: ``recovering`` for ``elapsed`` minutes, or ``boarding`` for a bed;
    ``remaining`` as for :class:`RoomSnapshot`. ``observed`` is False when the patient's PACU
    arrival was inferred from leaving the OR (the feed has no PACU milestones): whether the
    patient is still there is then not known."""

    case_id: str
    state: Literal["recovering", "boarding"] = "recovering"
    elapsed: float = 0.0
    remaining: float | None = None
    observed: bool = True


@dataclass(frozen=True)
class SuiteSnapshot:
    """The suite at ``time`` (absolute minutes). Cases in ``done`` finished or were cancelled
    before ``time`` and are not simulated again."""

    time: float
    rooms: tuple[RoomSnapshot, ...] = ()
    pacu: tuple[PacuSnapshot, ...] = ()
    done: frozenset[str] = field(default_factory=frozenset)
    ward_occupied: int | None = None
    icu_occupied: int | None = None

    def busy_case_ids(self) -> set[str]:
        """Cases in a room or in PACU at the snapshot."""
        ids = {r.case_id for r in self.rooms if r.state == "in_case" and r.case_id}
        return ids | {p.case_id for p in self.pacu}
