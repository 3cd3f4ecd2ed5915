"""``manual``: what a scheduler does by hand, as an explicit planner.

Each day's electives go into their booked rooms (their service's blocks) in booking order
(booked start), planned with the surgeons' booked minutes: the first case at the room's open,
each next one after the previous case's booked minutes plus the planned turnover, none planned
to go in during the scenario's no-start windows (the staff lunch). Cases with no
booked room are not planned. Add-ons go first come, first served into the first free capable
room (behind add-ons already waiting). Nothing moves once the day has started. On the baseline
this reproduces the booking office's schedule (the ``as-booked`` plan).
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.as_booked import AsBooked
from policies.planning import staffed_window, starts_from_sequence, turnover
from twin.demand import Case
from twin.policy import PlannedCase, SuiteView
from twin.scenario import Scenario


class ManualPolicy(AsBooked):
    """Booked rooms, booking order, booked minutes; add-ons FCFS and no day-of moves (as
    ``as-booked``: both are what a desk does without a planner)."""

    name = "manual"

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scn = scenario

    def plan_day(self, day: int, cases: Sequence[Case], view: SuiteView) -> list[PlannedCase]:
        """Per booked room: booking order, starts at open + Σ(booked minutes + turnover)."""
        scn = self.scn or view.scenario
        T = turnover(scn)
        by_room: dict[str, list[Case]] = {}
        for c in sorted(cases, key=lambda c: (c.booked_start, c.id)):
            if c.booked_room:
                by_room.setdefault(c.booked_room, []).append(c)
        plan = []
        for room, lst in by_room.items():
            w = staffed_window(scn, room, day)
            open_ = w[0] if w else lst[0].booked_start
            starts = starts_from_sequence([c.booked_minutes for c in lst], open_, T,
                                          scn.start_allowed)
            plan.extend(PlannedCase(c.id, room, s) for c, s in zip(lst, starts, strict=True))
        return plan
