"""``as-booked``: run the booking office's schedule unchanged.

Each day's electives run in their booked room, order and start; add-ons (urgent and emergent)
go to the first free room with the right capability — the staffed room whose booked work ends
soonest (after hours: the on-call room) — ahead of that room's remaining electives and behind
add-ons already waiting there (first come, first served). Nothing moves when a room runs long
or goes down: its cases wait for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from twin.demand import Case
from twin.policy import Move, PlannedCase, SuiteView, first_free_room


class AsBooked:
    """The booked schedule, with add-ons into the first free capable room."""

    name = "as-booked"

    def plan_day(self, day: int, cases: Sequence[Case], view: SuiteView) -> list[PlannedCase]:
        """Booked room and start of every case, in booked order."""
        booked = [c for c in cases if c.booked_room]
        booked.sort(key=lambda c: (c.booked_room, c.booked_start))
        return [PlannedCase(c.id, c.booked_room, c.booked_start) for c in booked]

    def place_addon(self, case: Case, view: SuiteView) -> Move:
        """First free capable room, behind other waiting add-ons."""
        return Move(case.id, first_free_room(view, case), "after_addons", case.arrival)

    def on_running_long(self, room: str, case: Case, view: SuiteView) -> list[Move]:
        """Nothing moves."""
        return []

    def on_room_down(self, room: str, until: float, view: SuiteView) -> list[Move]:
        """Nothing moves; the room's cases wait for it."""
        return []
