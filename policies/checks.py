"""An independent checker of a day's plan: hard constraints and the catalog's enforced rules.

Written from the definitions (``docs/model.md``, :mod:`policies.rules_catalog`), sharing no code
with any planner, so a planner's bug is not repeated here. A case's planned interval is
``[start, start + forecast at quantile)`` (booked minutes where a forecast is missing).

Hard constraints (the ``rule`` of a :class:`Violation`):

``unknown_case`` / ``duplicate``
    every planned case is one of the day's cases, planned once;
``capability``
    its room exists and has the case's capability;
``hours``
    its start lies inside a staffed window of its room;
``downtime``
    its interval does not overlap its room's planned downtime;
``room_overlap``
    a room holds one case at a time;
``surgeon_overlap``
    a surgeon is never in two cases at once;
``crew``
    at every instant, the crews of the cases in progress need no more staff of a role than are
    on shift (shifts of the day before count, as in the model);
``trays``
    at every instant, trays of a type in use — from a case's start until its end plus a
    reprocessing turnaround (median transport + the median cycle of every SPD stage) — are no
    more than the inventory;
``pacu``
    at every instant, patients in PACU — from a case's end for the median PACU stay of its class
    (60 minutes if none) — are no more than the beds (``beds`` inside PACU hours,
    ``after_hours_beds`` outside).

Then every catalog rule of the requested severities (by default the enforced ones) that can be
checked on a plan; the violation's ``rule`` is the rule id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from policies.forecast import Forecast
from policies.rules_catalog import Rule, RuleCatalog
from twin.booking import planned_turnover
from twin.demand import Case
from twin.policy import PlannedCase
from twin.scenario import Scenario, clock

TOL = 1e-6

HARD_CONSTRAINTS: tuple[str, ...] = (
    "unknown_case", "duplicate", "capability", "hours", "downtime", "room_overlap",
    "surgeon_overlap", "crew", "trays", "pacu",
)


@dataclass(frozen=True)
class Violation:
    """A hard constraint (see :data:`HARD_CONSTRAINTS`) or catalog rule a plan breaks."""

    rule: str
    case_ids: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message} [{', '.join(self.case_ids)}]"


@dataclass(frozen=True)
class _Item:
    case: Case
    room: str
    start: float
    minutes: float

    @property
    def end(self) -> float:
        return self.start + self.minutes


def check_plan(plan: Sequence[PlannedCase], cases: Mapping[str, Case], scenario: Scenario,
               day: int, forecasts: Mapping[str, Forecast], catalog: RuleCatalog | None = None,
               quantile: float = 0.8,
               severities: Collection[str] = ("enforced",)) -> list[Violation]:
    """Every hard constraint and catalog rule (of ``severities``) that ``plan`` breaks."""
    out: list[Violation] = []
    rooms = {r.id: r for r in scenario.rooms}
    items: list[_Item] = []
    seen: set[str] = set()
    for p in plan:
        c = cases.get(p.case_id)
        if c is None:
            out.append(Violation("unknown_case", (p.case_id,), f"not one of day {day}'s cases"))
            continue
        if p.case_id in seen:
            out.append(Violation("duplicate", (p.case_id,), "planned more than once"))
            continue
        seen.add(p.case_id)
        f = forecasts.get(c.id)
        minutes = float(f.at(quantile)) if f is not None else float(c.booked_minutes)
        items.append(_Item(c, p.room, float(p.start), minutes))
        room = rooms.get(p.room)
        if room is None:
            out.append(Violation("capability", (c.id,), f"unknown room {p.room!r}"))
        elif c.capability not in room.capabilities:
            out.append(Violation("capability", (c.id,),
                                 f"room {p.room} lacks capability {c.capability!r}"))
    items = [it for it in items if it.room in rooms]
    _hours(items, scenario, day, out)
    _room_overlap(items, out)
    _surgeon_overlap(items, out)
    _crew(items, scenario, day, out)
    _trays(items, scenario, out)
    _pacu(items, scenario, day, out)
    if catalog is not None:
        for rule in catalog.rules:
            if rule.severity in severities:
                _rule(rule, items, cases, scenario, day, forecasts, quantile, out)
    return out


# --- hard constraints -----------------------------------------------------------------------------
def _windows(scenario: Scenario, room_id: str, day: int) -> list[tuple[float, float]]:
    room = next(r for r in scenario.rooms if r.id == room_id)
    out = []
    for k in (day - 1, day, day + 1):
        w = room.hours.get(scenario.weekday(k))  # type: ignore[call-overload]
        if w is not None:
            out.append((k * 1440.0 + w.start, k * 1440.0 + w.end))
    return out


def _day_window(scenario: Scenario, room_id: str, day: int) -> tuple[float, float] | None:
    room = next(r for r in scenario.rooms if r.id == room_id)
    w = room.hours.get(scenario.weekday(day))  # type: ignore[call-overload]
    return None if w is None else (day * 1440.0 + w.start, day * 1440.0 + w.end)


def _hours(items: list[_Item], scenario: Scenario, day: int, out: list[Violation]) -> None:
    for it in items:
        wins = _windows(scenario, it.room, day)
        if not any(a - TOL <= it.start < b for a, b in wins):
            out.append(Violation("hours", (it.case.id,),
                                 f"starts {clock(it.start)} (day {int(it.start // 1440)}) outside "
                                 f"the staffed hours of {it.room}"))
        room = next(r for r in scenario.rooms if r.id == it.room)
        for dt in room.downtime:
            a, b = dt.day * 1440.0 + dt.start, dt.day * 1440.0 + dt.end
            if it.start < b - TOL and a < it.end - TOL:
                out.append(Violation("downtime", (it.case.id,),
                                     f"{clock(it.start)}-{clock(it.end)} overlaps {it.room}'s "
                                     f"planned downtime {clock(a)}-{clock(b)} ({dt.reason})"))


def _overlaps(a: _Item, b: _Item, gap: float = 0.0) -> bool:
    return a.start < b.end + gap - TOL and b.start < a.end + gap - TOL


def _room_overlap(items: list[_Item], out: list[Violation]) -> None:
    by_room: dict[str, list[_Item]] = defaultdict(list)
    for it in items:
        by_room[it.room].append(it)
    for room, lst in by_room.items():
        for i, a in enumerate(lst):
            for b in lst[i + 1:]:
                if _overlaps(a, b):
                    out.append(Violation("room_overlap", (a.case.id, b.case.id),
                                         f"both in {room} around {clock(max(a.start, b.start))}"))


def _surgeon_pairs(items: list[_Item]):
    """Every pair of one surgeon's planned cases, as (surgeon, earlier-listed, later-listed)."""
    by_surgeon: dict[str, list[_Item]] = defaultdict(list)
    for it in items:
        by_surgeon[it.case.surgeon].append(it)
    for sg, lst in by_surgeon.items():
        for i, a in enumerate(lst):
            for b in lst[i + 1:]:
                yield sg, a, b


def _surgeon_overlap(items: list[_Item], out: list[Violation]) -> None:
    for sg, a, b in _surgeon_pairs(items):
        if _overlaps(a, b):
            out.append(Violation("surgeon_overlap", (a.case.id, b.case.id),
                                 f"{sg} in {a.room} and {b.room} at "
                                 f"{clock(max(a.start, b.start))}"))


def _peak(intervals: list[tuple[float, float, int, str]], capacity, name: str, what: str,
          out: list[Violation], extra_points: Sequence[float] = ()) -> None:
    """Flag instants where the units held by ``intervals`` exceed ``capacity(t)``."""
    points = sorted({a for a, _b, _n, _c in intervals} | set(extra_points))
    reported: set[tuple[str, ...]] = set()
    for t in points:
        held = [(n, c) for a, b, n, c in intervals if a - TOL <= t < b - TOL]
        if not held:
            continue
        used, cap = sum(n for n, _c in held), capacity(t)
        ids = tuple(sorted(c for _n, c in held))
        if used > cap and ids not in reported:
            reported.add(ids)
            out.append(Violation(name, ids, f"{used} {what} needed at {clock(t)}, {cap} available"))


def _days(items: list[_Item], day: int, after: float = 0.0) -> range:
    """Days whose shifts or PACU hours can cover the plan's intervals."""
    lo = min([day] + [int(it.start // 1440) for it in items])
    hi = max([day] + [int((it.end + after) // 1440) for it in items])
    return range(lo - 2, hi + 2)


def _crew(items: list[_Item], scenario: Scenario, day: int, out: list[Violation]) -> None:
    roles = sorted({r for it in items for r, n in it.case.crew.items() if n > 0})
    for role in roles:
        shifts = [(k * 1440.0 + s.start, k * 1440.0 + s.end, s.count)
                  for k in _days(items, day) for s in scenario.staff.get(role, [])
                  if scenario.weekday(k) in s.days]

        def on_shift(t: float, shifts=shifts) -> int:
            return sum(n for a, b, n in shifts if a <= t < b)

        ivs = [(it.start, it.end, it.case.crew.get(role, 0), it.case.id)
               for it in items if it.case.crew.get(role, 0) > 0]
        bounds = [x for a, b, _n in shifts for x in (a, b)
                  if any(s - TOL <= x < e - TOL for s, e, _k, _c in ivs)]
        _peak(ivs, on_shift, "crew", f"{role} staff", out, bounds)


def _trays(items: list[_Item], scenario: Scenario, out: list[Violation]) -> None:
    spd = scenario.spd
    away = float(spd.transport.ppf(0.5)) + sum(float(st.cycle.ppf(0.5)) for st in spd.stages)
    types = sorted({t for it in items for t in it.case.trays})
    for t in types:
        ivs = [(it.start, it.end + away, it.case.trays.count(t), it.case.id)
               for it in items if t in it.case.trays]
        stock = spd.inventory.get(t, 0)
        _peak(ivs, lambda _t, stock=stock: stock, "trays", f"{t!r} trays", out)


def _pacu(items: list[_Item], scenario: Scenario, day: int, out: list[Violation]) -> None:
    p = scenario.pacu
    open_wins = [(k * 1440.0 + p.hours.start, k * 1440.0 + p.hours.end)
                 for k in _days(items, day, after=1440.0)]

    def beds(t: float) -> int:
        return p.after_hours_beds + (p.beds - p.after_hours_beds) * sum(
            1 for a, b in open_wins if a <= t < b)

    ivs = []
    for it in items:
        los = p.los.get(it.case.patient_class)  # type: ignore[call-overload]
        stay = 60.0 if los is None else float(los.ppf(0.5))
        ivs.append((it.end, it.end + stay, 1, it.case.id))
    bounds = [x for a, b in open_wins for x in (a, b)
              if any(s - TOL <= x < e - TOL for s, e, _k, _c in ivs)]
    _peak(ivs, beds, "pacu", "PACU beds", out, bounds)


# --- catalog rules --------------------------------------------------------------------------------
def reserve_minutes(scenario: Scenario, day: int, room_id: str, factor: float, cap: float) -> float:
    """The add-on reserve of ``room_id`` on ``day``, from the rule's definition."""
    wd = scenario.weekday(day)
    elective = [r for r in scenario.rooms if not r.addon_only and r.hours.get(wd) is not None]  # type: ignore[call-overload]
    room = next(r for r in scenario.rooms if r.id == room_id)
    w = room.hours.get(wd)  # type: ignore[call-overload]
    if room.addon_only or w is None or not elective:
        return 0.0
    a = scenario.addons
    rate = a.per_day * scenario.stress.addon_factor * a.weekday_factor.get(wd, 1.0)  # type: ignore[call-overload]
    prof_total = sum(a.hourly_profile)
    arrivals = 0.0
    for h, weight in enumerate(a.hourly_profile):
        inside = min(w.end, 60.0 * (h + 1)) - max(w.start, 60.0 * h)
        if inside > 0:
            arrivals += rate * weight / prof_total * inside / 60.0
    svcs = list(a.services) if a.services else [s.id for s in scenario.services]
    sw = {s: (a.services[s] if a.services else 1.0) for s in svcs}
    total_w = sum(sw.values())
    mean = 0.0
    for sid in svcs:
        svc = next(s for s in scenario.services if s.id == sid)
        pw = sum(pr.weight for pr in svc.procedures)
        mean += sw[sid] / total_w * sum(pr.weight / pw * float(pr.duration.ppf(0.5))
                                        for pr in svc.procedures)
    minutes = arrivals * (mean + planned_turnover(scenario))
    absorb = sum(r.hours[wd].minutes for r in scenario.rooms  # type: ignore[index]
                 if r.addon_only and r.hours.get(wd) is not None)  # type: ignore[call-overload]
    return min(cap, factor * max(minutes - absorb, 0.0) / len(elective))


def _rule(rule: Rule, items: list[_Item], cases: Mapping[str, Case], scenario: Scenario, day: int,
          forecasts: Mapping[str, Forecast], quantile: float, out: list[Violation]) -> None:
    by_room: dict[str, list[_Item]] = defaultdict(list)
    for it in items:
        by_room[it.room].append(it)
    for lst in by_room.values():
        lst.sort(key=lambda it: it.start)
    k, P = rule.kind, rule.params

    def median(it: _Item) -> float:
        f = forecasts.get(it.case.id)
        return float(f.p50) if f is not None else float(it.case.booked_minutes)

    if k == "sequence":
        longest = P.order == "longest_first"
        for room, lst in by_room.items():
            for a, b in zip(lst, lst[1:], strict=False):
                wrong = median(b) > median(a) + TOL if longest else median(b) < median(a) - TOL
                if wrong:
                    out.append(Violation(rule.id, (a.case.id, b.case.id),
                                         f"{room}: {b.case.id} ({median(b):.0f} min expected) after "
                                         f"{a.case.id} ({median(a):.0f} min), not {P.order}"))
    elif k == "plan_percentile":
        T = planned_turnover(scenario)
        for room, lst in by_room.items():
            for a, b in zip(lst, lst[1:], strict=False):
                f = forecasts.get(a.case.id)
                need = (float(f.at(P.quantile)) if f is not None else a.case.booked_minutes) + T
                if b.start < a.start + need - TOL:
                    out.append(Violation(rule.id, (a.case.id, b.case.id),
                                         f"{room}: {b.case.id} starts {a.start + need - b.start:.0f} "
                                         f"min before {a.case.id}'s P{round(P.quantile * 100)} "
                                         f"+ turnover is over"))
    elif k in ("max_planned_overtime", "addon_reserve"):
        for room, lst in by_room.items():
            w = _day_window(scenario, room, day)
            if w is None:
                continue
            if k == "max_planned_overtime":
                limit, what = w[1] + P.minutes, f"close + {P.minutes:.0f} min"
            else:
                res = reserve_minutes(scenario, day, room, P.factor, P.max_minutes)
                limit, what = w[1] - res, f"close - {res:.0f} min add-on reserve"
            last = max(lst, key=lambda it: it.end)
            if last.end > limit + TOL:
                out.append(Violation(rule.id, (last.case.id,),
                                     f"{room} planned to end {clock(last.end)}, "
                                     f"{last.end - limit:.0f} min after {what}"))
    elif k == "surgeon_one_room":
        for sg, a, b in _surgeon_pairs(items):
            gap = P.gap_minutes if a.room != b.room else 0.0
            if _overlaps(a, b, gap):
                out.append(Violation(rule.id, (a.case.id, b.case.id),
                                     f"{sg}'s cases in {a.room} and {b.room} overlap or "
                                     f"are less than {gap:.0f} min apart"))
    elif k == "first_case_at_open":
        for room, lst in by_room.items():
            w = _day_window(scenario, room, day)
            if w is not None and lst and lst[0].start > w[0] + P.grace_minutes + TOL:
                out.append(Violation(rule.id, (lst[0].case.id,),
                                     f"{room}'s first case planned {clock(lst[0].start)}, open "
                                     f"{clock(w[0])}"))
    elif k == "plan_all_booked":
        planned = {it.case.id for it in items}
        missing = tuple(sorted(cid for cid, c in cases.items()
                               if not c.is_addon and cid not in planned))
        if missing:
            out.append(Violation(rule.id, missing, f"{len(missing)} booked case(s) not planned"))
    # emergent_bump, move_on_overrun, move_on_room_down: day-of decisions, not in a plan


__all__ = ["HARD_CONSTRAINTS", "TOL", "Violation", "check_plan"]
