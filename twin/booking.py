"""The booking office: electives into blocks, in booking order, before the week starts.

A service's electives go into that service's blocks on their surgeon's block days, the earliest
day with room for the booked minutes plus a planned turnover; one surgeon per room-day. Block
time that a service leaves unused is released ``release_days`` before the day: a case booked
later than that (its lead time is shorter) may take it, as may any case in unblocked (open) time.
Cases that fit nowhere in the horizon stay unbooked (the model reports them as not started).
Rooms marked ``addon_only`` are never booked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from twin.demand import Week
from twin.scenario import Scenario


@dataclass
class Slot:
    """One staffed room-day, with its block owner and what has been booked into it."""

    room: str
    day: int
    open: float
    close: float
    caps: frozenset[str]
    service: str | None
    release_days: int | None
    surgeon: str | None = None
    used: float = 0.0
    cases: list[str] = field(default_factory=list)

    def fits(self, minutes: float, turnover: float) -> bool:
        """Whether a case of ``minutes`` still fits (the first case may fill the day)."""
        if not self.cases:
            return minutes <= self.close - self.open
        return self.used + turnover + minutes <= self.close - self.open


def planned_turnover(scn: Scenario) -> float:
    """The turnover allowance a booking office plans with (median, rounded)."""
    r = scn.booking.round_to
    return max(r, round(float(scn.turnover.ppf(0.5)) / r) * r)


def slots(scn: Scenario) -> list[Slot]:
    """Every staffed room-day of the horizon, in day then room order."""
    out = []
    for d in range(scn.horizon_days):
        wd = scn.weekday(d)
        for room in scn.rooms:
            w = room.hours.get(wd)  # type: ignore[call-overload]
            if w is None or room.addon_only:
                continue
            b = scn.blocks.get(room.id, {}).get(wd)  # type: ignore[call-overload]
            out.append(Slot(room.id, d, d * 1440 + w.start, d * 1440 + w.end,
                            frozenset(room.capabilities), b.service if b else None,
                            b.release_days if b else None))
    return out


def book_electives(scn: Scenario, week: Week, order: list[tuple[float, str]]) -> None:
    """Assign electives (``(lead uniform, case id)``) to rooms, days and start times."""
    T = planned_turnover(scn)
    all_slots = slots(scn)
    lead_dist = scn.booking.lead_days
    block_days = {s.id: set(s.block_days) for s in scn.surgeons}
    busy: dict[tuple[str, int], Slot] = {}  # surgeon-day -> slot
    leads = {cid: (float(lead_dist.ppf(u)) if lead_dist else -14.0 * math.log1p(-u))
             for u, cid in order}
    queue = [cid for _, cid in sorted(order, key=lambda x: -x[0])]  # longest lead books first

    def place(cid: str, s: Slot) -> None:
        c = week.cases[cid]
        s.used += (T if s.cases else 0.0) + c.booked_minutes
        s.cases.append(cid)
        s.surgeon = s.surgeon or c.surgeon
        busy[(c.surgeon, s.day)] = s

    def can(cid: str, s: Slot) -> bool:
        c = week.cases[cid]
        if c.capability not in s.caps or s.surgeon not in (None, c.surgeon):
            return False
        other = busy.get((c.surgeon, s.day))
        return (other is None or other is s) and s.fits(c.booked_minutes, T)

    left = []
    for cid in queue:
        c = week.cases[cid]
        days = block_days[c.surgeon]
        target = next((s for s in all_slots if s.service == c.service
                       and scn.weekday(s.day) in days and can(cid, s)), None)
        if target is None:
            left.append(cid)
        else:
            place(cid, target)
    for cid in left:
        c = week.cases[cid]
        target = next((s for s in all_slots
                       if (s.service is None or (s.service != c.service and s.release_days is not None
                                                 and leads[cid] <= s.release_days))
                       and can(cid, s)), None)
        if target is None:
            week.unbooked.append(cid)
        else:
            place(cid, target)
    for s in all_slots:
        t = s.open
        for cid in s.cases:
            c = week.cases[cid]
            c.booked_day, c.booked_room, c.booked_start = s.day, s.room, t
            t += c.booked_minutes + T
