"""Plain-language explanations of a CP-SAT day plan: why each case got its room and slot.

Each case's line says where and when it goes, the minutes it is planned for (the plan quantile,
with its P50 and the booked minutes), whether it stays in its booked block room or was moved, what
sets its start (the room's opening, its surgeon finishing another case, or the case before it
after turnover) and when it ends against the room's staffed close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.forecast import Forecast
from twin.demand import Case
from twin.policy import PlannedCase
from twin.scenario import Scenario, clock


def explain_plan(scn: Scenario, day: int, plan: Sequence[PlannedCase], cases: Sequence[Case],
                 forecasts: Mapping[str, Forecast], q: float) -> dict[str, str]:
    """Why each case got its room and slot, in plain words (case id -> explanation)."""
    out: dict[str, str] = {}
    by_id = {c.id: c for c in cases}
    rooms = {r.id: r for r in scn.rooms}
    wd = scn.weekday(day)
    tag = f"P{round(q * 100)}"
    last_in_room: dict[str, PlannedCase] = {}
    surgeon_end: dict[str, tuple[float, str]] = {}
    for p in sorted(plan, key=lambda p: p.start):
        c, f = by_id[p.case_id], forecasts[p.case_id]
        w = rooms[p.room].hours[wd]  # type: ignore[index]
        why = [f"{c.id} ({c.procedure}, {c.surgeon}) → {p.room} at {clock(p.start)}, "
               f"planned for {f.at(q):.0f} min ({tag}; P50 {f.p50:.0f}, booked {c.booked_minutes:.0f})"]
        if p.room == c.booked_room:
            why.append(f"in its booked {c.service} block room")
        else:
            why.append(f"moved from {c.booked_room or 'no room'} to balance the day")
        prev = last_in_room.get(p.room)
        s_end = surgeon_end.get(c.surgeon)
        if prev is None and abs(p.start - (day * 1440 + w.start)) < 1:
            why.append("first case at the room's opening")
        elif s_end and abs(s_end[0] - p.start) < 1.5:
            why.append(f"starts as soon as {c.surgeon} finishes {s_end[1]} (surgeon binds)")
        elif prev is not None:
            why.append(f"follows {prev.case_id} after turnover")
        end = p.start + f.at(q)
        close = day * 1440 + w.end
        why.append(f"ends {clock(end)} at {tag}, " + ("within staffed hours" if end <= close
                   else f"{end - close:.0f} min past close"))
        out[c.id] = "; ".join(why)
        last_in_room[p.room] = p
        surgeon_end[c.surgeon] = (p.start + f.at(q), c.id)
    return out


__all__ = ["explain_plan"]
