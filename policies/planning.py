"""Small planning helpers shared by the planners (``rules`` now, CP-SAT later).

Everything here reads the scenario only (never a sampled duration) and works in absolute
minutes from the horizon start (day ``d`` starts at ``d * 1440``):

- room windows and planned downtime of a day (:func:`staffed_window`, :func:`planned_downtime`);
- the planned turnover (:func:`turnover`, the booking office's) and planned starts of a room's
  sequence (:func:`starts_from_sequence`, :func:`room_end`);
- capacities over time as step functions (:class:`Step`): staff on shift per role, PACU beds;
- what a case holds: crew, trays (returned after a reprocessing turnaround), a PACU bed for its
  median stay (:func:`tray_turnaround`, :func:`pacu_minutes`, :func:`tray_needs`);
- :class:`Usage`, a timeline of intervals holding units of one resource, with a capacity check;
- the add-on reserve of a room-day derived from the add-on rate (:func:`addon_reserve`).

The plan checker (:mod:`policies.checks`) deliberately does not use this module.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from twin.booking import planned_turnover
from twin.demand import Case
from twin.scenario import Scenario

EPS = 1e-6


# --- rooms ----------------------------------------------------------------------------------------
def staffed_window(scn: Scenario, room: str, day: int) -> tuple[float, float] | None:
    """The room's staffed window on ``day`` in absolute minutes, or None if it is closed."""
    w = scn.room(room).hours.get(scn.weekday(day))  # type: ignore[call-overload]
    return None if w is None else (day * 1440.0 + w.start, day * 1440.0 + w.end)


def planned_downtime(scn: Scenario, room: str) -> list[tuple[float, float]]:
    """The room's planned downtime windows (absolute minutes), sorted."""
    return sorted((d.day * 1440.0 + d.start, d.day * 1440.0 + d.end)
                  for d in scn.room(room).downtime)


def elective_rooms(scn: Scenario, day: int) -> list[str]:
    """Rooms staffed on ``day`` that may take electives (not ``addon_only``), scenario order."""
    return [r.id for r in scn.rooms if not r.addon_only and staffed_window(scn, r.id, day)]


def turnover(scn: Scenario) -> float:
    """The planned turnover between cases (the booking office's: median, rounded)."""
    return planned_turnover(scn)


def starts_from_sequence(durations: Sequence[float], open_: float, turnover: float,
                         allowed: Callable[[float], float] | None = None) -> list[float]:
    """Planned starts of back-to-back cases from ``open_``: open + Σ(previous + turnover), each
    moved to ``allowed(start)`` when given (a scenario's :meth:`start_allowed`: no-start windows)."""
    out, t = [], open_
    for d in durations:
        t = allowed(t) if allowed is not None else t
        out.append(t)
        t += d + turnover
    return out


def room_end(starts: Sequence[float], durations: Sequence[float]) -> float:
    """Planned end of a room's last case (``-inf`` for an empty room)."""
    return max((s + d for s, d in zip(starts, durations, strict=True)), default=-math.inf)


# --- capacities over time -----------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """A piecewise-constant capacity: ``levels[i]`` from ``times[i]`` until ``times[i+1]``."""

    times: tuple[float, ...]
    levels: tuple[int, ...]

    @staticmethod
    def from_windows(windows: Iterable[tuple[float, float, int]], base: int = 0) -> Step:
        """``base`` plus the count of every ``(start, end, count)`` window covering the time."""
        deltas: dict[float, int] = {}
        for s, e, n in windows:
            deltas[s] = deltas.get(s, 0) + n
            deltas[e] = deltas.get(e, 0) - n
        times, levels, level = [-math.inf], [base], base
        for t in sorted(deltas):
            level += deltas[t]
            times.append(t)
            levels.append(level)
        return Step(tuple(times), tuple(levels))

    def at(self, t: float) -> int:
        """The capacity at ``t``."""
        return self.levels[bisect.bisect_right(self.times, t) - 1]

    def changes_in(self, a: float, b: float) -> list[float]:
        """Change points strictly inside ``(a, b)``."""
        i = bisect.bisect_right(self.times, a)
        j = bisect.bisect_left(self.times, b)
        return list(self.times[i:j])

    def rises_after(self, t: float) -> list[float]:
        """Times after ``t`` where the capacity goes up."""
        return [self.times[i] for i in range(1, len(self.times))
                if self.times[i] > t and self.levels[i] > self.levels[i - 1]]


def staff_on_shift(scn: Scenario, role: str, day: int) -> Step:
    """Staff of ``role`` on shift around ``day`` (shifts of days ``day-2 .. day+1``)."""
    wins = [(k * 1440.0 + s.start, k * 1440.0 + s.end, s.count)
            for k in range(day - 2, day + 2) for s in scn.staff.get(role, [])
            if scn.weekday(k) in s.days]
    return Step.from_windows(wins)


def pacu_beds(scn: Scenario, day: int) -> Step:
    """PACU beds around ``day``: each day's open beds inside its PACU hours,
    ``after_hours_beds`` otherwise."""
    p = scn.pacu
    wins = [(k * 1440.0 + p.hours.start, k * 1440.0 + p.hours.end,
             p.open_beds(scn.weekday(k)) - p.after_hours_beds) for k in range(day - 2, day + 3)]
    return Step.from_windows(wins, p.after_hours_beds)


def tray_turnaround(scn: Scenario) -> float:
    """Minutes a used tray is away: median transport plus every SPD stage's median cycle."""
    spd = scn.spd
    return float(spd.transport.ppf(0.5)) + sum(float(s.cycle.ppf(0.5)) for s in spd.stages)


def pacu_minutes(scn: Scenario, patient_class: str) -> float:
    """Predicted PACU stay: the median LOS of the class (60 minutes if the scenario has none)."""
    los = scn.pacu.los.get(patient_class)  # type: ignore[call-overload]
    return 60.0 if los is None else float(los.ppf(0.5))


def tray_needs(case: Case) -> dict[str, int]:
    """Trays of each type the case needs."""
    return {t: case.trays.count(t) for t in sorted(set(case.trays))}


@dataclass
class Usage:
    """Units of one resource held over ``[start, end)`` intervals, against a capacity."""

    capacity: Step
    intervals: list[tuple[float, float, int]] = field(default_factory=list)

    def used(self, t: float) -> int:
        """Units in use at ``t``."""
        return sum(n for s, e, n in self.intervals if s - EPS <= t < e - EPS)

    def fits(self, a: float, b: float, n: int) -> bool:
        """Whether ``n`` more units can be held over ``[a, b)``."""
        if n <= 0 or b <= a:
            return True
        points = {a, *self.capacity.changes_in(a, b)}
        points.update(s for s, _e, _n in self.intervals if a < s < b)
        return all(self.used(t) + n <= self.capacity.at(t) for t in points)

    def add(self, a: float, b: float, n: int) -> None:
        """Hold ``n`` units over ``[a, b)``."""
        if n > 0 and b > a:
            self.intervals.append((a, b, n))

    def releases_after(self, t: float) -> list[float]:
        """Times after ``t`` when units come free or capacity rises."""
        return [e for _s, e, _n in self.intervals if e > t] + self.capacity.rises_after(t)


# --- add-on reserve -------------------------------------------------------------------------------
def addon_case_minutes(scn: Scenario) -> float:
    """Mean planned room minutes of an add-on: procedure medians weighted by the add-on
    service mix and procedure weights, plus the planned turnover."""
    a = scn.addons
    ids = list(a.services) or [s.id for s in scn.services]
    weights = [a.services.get(s, 1.0) if a.services else 1.0 for s in ids]
    total = sum(weights)
    if total <= 0:
        return 0.0
    mean = 0.0
    for sid, w in zip(ids, weights, strict=True):
        svc = scn.service(sid)
        pw = sum(p.weight for p in svc.procedures)
        mean += w / total * sum(p.weight / pw * float(p.duration.ppf(0.5)) for p in svc.procedures)
    return mean + turnover(scn)


def addon_arrivals_between(scn: Scenario, day: int, start: float, end: float) -> float:
    """Expected add-on arrivals on ``day`` between minutes-of-day ``start`` and ``end``."""
    a = scn.addons
    rate = a.per_day * scn.stress.addon_factor * a.weekday_factor.get(scn.weekday(day), 1.0)  # type: ignore[call-overload]
    prof = a.hourly_profile
    total = sum(prof)
    share = 0.0
    for h in range(24):
        lo, hi = max(start, h * 60.0), min(end, (h + 1) * 60.0)
        if hi > lo:
            share += prof[h] / total * (hi - lo) / 60.0
    return rate * share


def addon_reserve(scn: Scenario, day: int, factor: float, max_minutes: float) -> dict[str, float]:
    """Minutes to keep free for add-ons at the end of each elective room staffed on ``day``.

    Per room: the expected add-on minutes arriving within its staffed window that day, less the
    staffed minutes of ``addon_only`` rooms that day (they absorb add-ons first), spread over the
    elective rooms staffed that day, times ``factor``, capped at ``max_minutes``.
    """
    rooms = elective_rooms(scn, day)
    if not rooms:
        return {}
    per_case = addon_case_minutes(scn)
    absorb = 0.0
    for r in scn.rooms:
        w = staffed_window(scn, r.id, day)
        if r.addon_only and w:
            absorb += w[1] - w[0]
    out = {}
    for r in rooms:
        w = staffed_window(scn, r, day)
        assert w is not None
        e = addon_arrivals_between(scn, day, w[0] - day * 1440, w[1] - day * 1440) * per_case
        out[r] = min(max_minutes, factor * max(e - absorb, 0.0) / len(rooms))
    return out


__all__ = [
    "EPS",
    "Step",
    "Usage",
    "addon_arrivals_between",
    "addon_case_minutes",
    "addon_reserve",
    "elective_rooms",
    "pacu_beds",
    "pacu_minutes",
    "planned_downtime",
    "room_end",
    "staff_on_shift",
    "staffed_window",
    "starts_from_sequence",
    "tray_needs",
    "tray_turnaround",
    "turnover",
]
