"""A minimal SimPy model of the suite's case flow, rooms only: the yardstick for the twin's cost.

It runs the same realised :class:`~twin.demand.Week` as :class:`~twin.model.SuiteModel` (the
week from :func:`~twin.demand.draw_week`), through the rooms and nothing else:

* each room is a ``simpy.Resource(capacity=1)``;
* every booked elective requests its booked room at its booked start, so a room's electives
  queue in booked order and none starts before its booked start;
* an add-on requests, on arrival, the room with the right capability that has the fewest
  cases in it or waiting for it (ties: scenario order);
* a case holds its room for its in-room duration (``week.truth[cid].duration``), then for its
  turnover (``week.truth[cid].turnover``) before the room is released;
* cancelled cases (``truth.cancel``) and electives with no booked room are skipped.

No trays, surgeons, crews, phases, PACU, beds, policy calls or event log: whatever the twin
costs above this model per case is the price of those features (and of its implementation).
The in-room / out-of-room times go into a plain list of tuples.
"""

from __future__ import annotations

import math

import simpy

from twin.demand import Week
from twin.scenario import Scenario

Record = tuple[str, str, float, float]
"""``(case_id, room, in_room, out_of_room)``."""


def run_minimal(scn: Scenario, week: Week) -> list[Record]:
    """Run ``week`` through the rooms of ``scn``; returns one record per case that was done."""
    env = simpy.Environment()
    rooms = {r.id: simpy.Resource(env, capacity=1) for r in scn.rooms}
    capable: dict[str, list[simpy.Resource]] = {}
    for r in scn.rooms:
        for cap in r.capabilities:
            capable.setdefault(cap, []).append(rooms[r.id])
    room_id = {id(res): rid for rid, res in rooms.items()}
    log: list[Record] = []

    def occupy(cid: str, res: simpy.Resource, duration: float, turnover: float):
        with res.request() as req:
            yield req
            t_in = env.now
            yield env.timeout(duration)
            log.append((cid, room_id[id(res)], t_in, env.now))
            yield env.timeout(turnover)

    def elective(cid: str, rid: str, start: float, duration: float, turnover: float):
        if start > env.now:
            yield env.timeout(start - env.now)
        yield from occupy(cid, rooms[rid], duration, turnover)

    def addon(cid: str, cap: str, arrival: float, duration: float, turnover: float):
        if arrival > env.now:
            yield env.timeout(arrival - env.now)
        res = min(capable[cap], key=lambda x: len(x.users) + len(x.queue))
        yield from occupy(cid, res, duration, turnover)

    electives = []
    for cid, c in week.cases.items():
        tr = week.truth[cid]
        if tr.cancel:
            continue
        if c.is_addon:
            if c.capability in capable:
                env.process(addon(cid, c.capability, c.arrival, tr.duration, tr.turnover))
        elif c.booked_room and not math.isnan(c.booked_start):
            electives.append((c.booked_start, c.booked_room, cid, tr.duration, tr.turnover))
    # processes that wake at the same instant run in creation order: keep booked order
    for start, rid, cid, duration, turnover in sorted(electives):
        env.process(elective(cid, rid, start, duration, turnover))
    env.run()
    return log


__all__ = ["Record", "run_minimal"]
