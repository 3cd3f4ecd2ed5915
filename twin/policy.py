"""The policy seam: how the model asks a scheduling policy for plans and day-of decisions.

A policy is any object with the four methods of :class:`Policy`. It is passed into the model,
never imported by it. It sees :class:`~twin.demand.Case` (booking-time facts) and a read-only
:class:`SuiteView` of the suite now — never sampled durations — and it never draws from the
model's random streams (a policy that wants randomness owns its own generator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from twin.demand import Case
from twin.scenario import Scenario

Position = Literal["front", "after_addons", "end"] | int


@dataclass(frozen=True)
class PlannedCase:
    """A case placed in a room's sequence with a planned start (absolute minutes)."""

    case_id: str
    room: str
    start: float


@dataclass(frozen=True)
class Move:
    """Put a not-yet-started case into ``room``'s queue at ``position``."""

    case_id: str
    room: str
    position: Position = "end"
    start: float | None = None  # new planned start; None keeps the old one (or now)


@dataclass(frozen=True)
class RoomStatus:
    """What the OR desk sees of one room."""

    room: str
    state: Literal["idle", "in_case", "turnover", "down", "closed"]
    case_id: str | None
    since: float  # when the current state began
    expected_free: float  # end of the current case and queued add-ons (booked minutes + turnover)
    expected_done: float  # end of everything queued, electives too (booked minutes + turnover)
    queue: tuple[str, ...]  # not-yet-started cases, in order
    staffed_from: float | None  # today's staffed window (the one now or next), None if none
    staffed_until: float | None

    def staffed_at(self, t: float) -> bool:
        """Whether ``t`` falls inside the room's staffed window."""
        return self.staffed_from is not None and self.staffed_from <= t < self.staffed_until


class SuiteView(Protocol):
    """Read-only view of the suite for policies."""

    @property
    def now(self) -> float:
        """Current simulation time (minutes since the horizon start)."""
        ...

    @property
    def scenario(self) -> Scenario:
        """The scenario being run."""
        ...

    def rooms(self) -> Mapping[str, RoomStatus]:
        """Status of every room now."""
        ...

    def case(self, case_id: str) -> Case:
        """Booking-time facts of a case."""
        ...

    def planned_start(self, case_id: str) -> float:
        """The case's current planned start."""
        ...

    def pacu_patients(self) -> Sequence[tuple[str, float, bool]]:
        """Who is in a PACU bed now: (case id, time in, recovered and waiting for a bed)."""
        ...

    def trays_free(self) -> Mapping[str, int]:
        """Trays of each type on the shelf now."""
        ...

    def note(self, event: str, case_id: str = "", room: str = "", value: float = math.nan,
             detail: str = "") -> None:
        """Write a policy event (one of :data:`twin.events.POLICY_EVENTS`) to the run's log."""
        ...


@runtime_checkable
class Policy(Protocol):
    """A scheduling policy. ``name`` is what the CLI calls it."""

    name: str

    def plan_day(self, day: int, cases: Sequence[Case], view: SuiteView) -> Sequence[PlannedCase]:
        """Room, order and planned start of each of ``day``'s electives (omitted = not done)."""
        ...

    def place_addon(self, case: Case, view: SuiteView) -> Move | Sequence[Move]:
        """Where an arriving add-on goes (its room and queue position); a policy that re-plans
        the rest of the day around it returns the add-on's move first, then the others."""
        ...

    def on_running_long(self, room: str, case: Case, view: SuiteView) -> Sequence[Move]:
        """A room's case has passed its booked end: moves of waiting cases, if any."""
        ...

    def on_room_down(self, room: str, until: float, view: SuiteView) -> Sequence[Move]:
        """A room has gone down until ``until``: moves of its waiting cases, if any."""
        ...


class PolicyError(Exception):
    """A policy returned something the model cannot carry out."""


def capable_rooms(view: SuiteView, case: Case) -> list[str]:
    """Rooms whose capabilities include the case's, in scenario order."""
    return [r.id for r in view.scenario.rooms if case.capability in r.capabilities]


def first_free_room(view: SuiteView, case: Case) -> str:
    """The capable room whose booked work ends soonest, preferring rooms staffed now, then
    on-call rooms (ties: scenario order). Booked minutes only, never true durations."""
    rooms = view.rooms()
    now = view.now
    on_call = {r.id for r in view.scenario.rooms if r.on_call}
    best, key = None, (math.inf, math.inf)
    for rid in capable_rooms(view, case):
        st = rooms[rid]
        staffed = st.staffed_at(now)
        k = (0 if staffed else 1 if rid in on_call else 2, max(st.expected_done, now))
        if k < key:
            best, key = rid, k
    if best is None:
        raise PolicyError(f"no room has capability {case.capability!r} for case {case.id}")
    return best
