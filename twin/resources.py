"""Shared resources of the suite, built fresh for every run.

:class:`Pool` is a multi-type counting resource (staff roles, tray types, PACU or ward beds)
whose capacity can change on a schedule (shifts, opening hours, outages). A request names how
many of each type it needs and is granted all at once, in priority then arrival order (strict
head of line, so large requests are not starved). Units in use when capacity drops are not
taken away: the people finish their case, which is overtime.

:class:`SpdLine` is sterile processing: used trays pass through stages of machines with cycle
times and batch sizes, then return to the tray pool.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import simpy

from twin.events import EventLog


class Pool:
    """Counting resource of several unit types with scheduled capacities.

    ``schedules[type]`` is a sorted list of ``(time, capacity)`` change points (the first at or
    before time 0). Every level and capacity change is written to the event log as
    ``resource = prefix + type``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        log: EventLog,
        prefix: str,
        schedules: Mapping[str, Sequence[tuple[float, int]]],
    ) -> None:
        self.env, self.log, self.prefix = env, log, prefix
        self.capacity: dict[str, int] = {}
        self.busy: dict[str, int] = {t: 0 for t in schedules}
        self._waits: dict[str, int] = {t: 0 for t in schedules}  # queued requests per type
        self._queue: list[tuple[int, int, dict[str, int], simpy.Event]] = []
        self._seq = itertools.count()
        for t, sched in schedules.items():
            first = [c for (when, c) in sched if when <= env.now]
            self.capacity[t] = first[-1] if first else 0
            log.resource(env.now, prefix + t, "capacity", self.capacity[t])
            for when, cap in sched:
                if when > env.now:
                    ev = env.timeout(when - env.now)
                    ev.callbacks.append(lambda _e, t=t, cap=cap: self.set_capacity(t, cap))

    # --- requests -----------------------------------------------------------------------
    def request(self, need: Mapping[str, int], priority: int = 2) -> simpy.Event:
        """An event that fires once ``need`` units are granted (lower priority value first)."""
        ev = self.env.event()
        need = {t: n for t, n in need.items() if n > 0}
        for t in need:
            if t not in self.busy:
                raise KeyError(f"{self.prefix}{t}: no such resource type")
        heapq.heappush(self._queue, (priority, next(self._seq), need, ev))
        for t in need:
            self._waits[t] += 1
        self._grant()
        return ev

    def try_acquire(self, need: Mapping[str, int]) -> bool:
        """Take ``need`` now if free and nobody is queued for those types; never waits."""
        if not self._fits(need) or any(not n.keys().isdisjoint(need) for _, _, n, _ in self._queue):
            return False
        self._take(need)
        return True

    def seize(self, need: Mapping[str, int]) -> None:
        """Take units now even beyond capacity (work already under way at a snapshot)."""
        self._take(need)

    def release(self, need: Mapping[str, int]) -> None:
        """Give units back and serve the queue."""
        now = self.env.now
        for t, n in need.items():
            if n > 0:
                self.busy[t] -= n
                self.log.resource(now, self.prefix + t, "level", self.busy[t])
        if any(self._waits[t] for t in need):  # nobody waits for what came back: nothing to do
            self._grant()

    def set_capacity(self, unit: str, capacity: int) -> None:
        """Change the capacity of one type from now on."""
        if self.capacity[unit] != capacity:
            self.capacity[unit] = capacity
            self.log.resource(self.env.now, self.prefix + unit, "capacity", capacity)
            self._grant()

    def free(self, unit: str) -> int:
        """Units of ``unit`` free now (may be negative while capacity is below use)."""
        return self.capacity[unit] - self.busy[unit]

    @property
    def queued(self) -> int:
        """Requests waiting."""
        return len(self._queue)

    # --- internals ----------------------------------------------------------------------
    def _fits(self, need: Mapping[str, int]) -> bool:
        return all(self.busy[t] + n <= self.capacity[t] for t, n in need.items())

    def _take(self, need: Mapping[str, int]) -> None:
        now = self.env.now
        for t, n in need.items():
            if n > 0:
                self.busy[t] += n
                self.log.resource(now, self.prefix + t, "level", self.busy[t])

    def _served(self, need: dict[str, int], ev: simpy.Event) -> None:
        for t in need:
            self._waits[t] -= 1
        self._take(need)
        ev.succeed(need)

    def _grant(self) -> None:
        """Serve waiting requests in priority order. A request that cannot be served holds back
        only the types it needs: a case waiting for a busy surgeon or tray type does not stop
        another case whose surgeon or trays are free (no head-of-line blocking across types),
        while nobody overtakes an earlier request for the same type."""
        q = self._queue
        while q and self._fits(q[0][2]):  # the first in line is served as it always was
            _, _, need, ev = heapq.heappop(q)
            self._served(need, ev)
        if len(q) < 2 or not any(self._fits(item[2]) for item in q):
            return
        blocked: set[str] = set()
        rest = []
        for item in sorted(q):
            need = item[2]
            if blocked.isdisjoint(need) and self._fits(need):
                self._served(need, item[3])
            else:
                blocked.update(need)
                rest.append(item)
        if len(rest) != len(q):
            heapq.heapify(rest)
            self._queue = rest


def daily_schedule(
    windows: Iterable[tuple[float, float, int]], base: int = 0
) -> list[tuple[float, int]]:
    """Change points of a capacity that is ``base`` plus the ``count`` of every absolute
    ``(start, end, count)`` window covering the time (counts may be negative: outages)."""
    deltas: dict[float, int] = {-math.inf: 0}
    for start, end, count in windows:
        deltas[start] = deltas.get(start, 0) + count
        deltas[end] = deltas.get(end, 0) - count
    out: list[tuple[float, int]] = []
    level = base
    for t in sorted(deltas):
        level += deltas[t]
        if out and out[-1][0] == t:
            out[-1] = (t, level)
        elif not out or out[-1][1] != level:
            out.append((t, level))
    return out


class SpdLine:
    """Sterile processing: trays queue per stage, machines run cycles of up to ``batch`` trays.

    A tray travels as ``(type, stage_minutes)``; a cycle lasts the stage minutes of the first
    tray loaded. ``on_done(tray_type)`` is called when a tray is back in inventory. Machine
    outages are given as capacity schedules.
    """

    def __init__(
        self,
        env: simpy.Environment,
        log: EventLog,
        stages: Sequence[tuple[str, int]],
        machine_schedules: Mapping[str, Sequence[tuple[float, int]]],
        on_done: Callable[[str], None],
    ) -> None:
        self.env, self.log = env, log
        self.names = [name for name, _ in stages]
        self.batch = [b for _, b in stages]
        self.queue: list[list[tuple[str, Sequence[float]]]] = [[] for _ in stages]
        self.machines = Pool(env, log, "spd:", machine_schedules)
        self._one = [{name: 1} for name in self.names]
        self.on_done = on_done
        for index, name in enumerate(self.names):
            # serve waiting trays whenever a machine comes back from an outage
            for when, _cap in machine_schedules[name]:
                if when > env.now:
                    env.timeout(when - env.now + 1e-9).callbacks.append(
                        lambda _e, i=index: self._serve(i)
                    )

    def submit(self, trays: Sequence[tuple[str, Sequence[float]]], transport: float) -> None:
        """Send used trays ``(type, stage minutes)`` to the line, arriving after ``transport``."""
        if trays:
            self.env.timeout(transport).callbacks.append(lambda _e: self._arrive(0, list(trays)))

    def _arrive(self, stage: int, trays: list[tuple[str, Sequence[float]]]) -> None:
        if stage == len(self.names):
            for tray_type, _t in trays:
                self.on_done(tray_type)
            return
        self.queue[stage].extend(trays)
        self._serve(stage)

    def _serve(self, stage: int) -> None:
        q = self.queue[stage]
        size = self.batch[stage]
        while q and self.machines.try_acquire(self._one[stage]):
            load, q = q[:size], q[size:]
            self.queue[stage] = q
            ev = self.env.timeout(load[0][1][stage])
            ev.callbacks.append(lambda _e, s=stage, b=load: self._finish(s, b))

    def _finish(self, stage: int, load: list[tuple[str, Sequence[float]]]) -> None:
        self.machines.release(self._one[stage])
        self._serve(stage)
        self._arrive(stage + 1, load)
