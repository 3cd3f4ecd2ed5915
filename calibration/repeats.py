"""Repeated days in a case log: whole days that are copies of other days.

Some logs (the 2022 Kaggle log among them) repeat whole days: same rooms, same times of day,
same procedures, only the dates and case ids differ. An evaluation that fits on one day and
scores its copy measures memory, not forecasting, so every evaluation on a log must say how
many *distinct* days it scored and report its figures on the days not seen in fitting.

A day's *signature* is a hash of its cases with the date and the case ids taken out: per case
the room, surgeon, service, procedure, patient class, priority, add-on and cancelled flags,
booked minutes and the time of day (minutes from the date's midnight, so a case that ends after
midnight keeps its offset) of the booked start, the add-on request and every recorded
milestone. Two days with the same multiset of cases get the same signature, whatever the row
order; a parallel room (``OR3~2``, :mod:`calibration.overlaps`) counts as the room the log
names. A *near copy* of a day differs from it in at most ``max_changed`` cases (a case changed,
added or removed counts once).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from calibration.loader import History
from calibration.overlaps import logged_room

TEXT_FIELDS: tuple[str, ...] = ("room", "surgeon", "service", "procedure", "patient_class",
                                "priority")
"""Text columns that identify a case in a day's signature (case ids and dates never do)."""
TIME_FIELDS: tuple[str, ...] = ("booked_start", "requested_at", "in_room", "procedure_start",
                                "procedure_end", "out_of_room", "pacu_in", "pacu_out")
"""Timestamps whose time of day (minutes from the date's midnight) enters the signature."""
FLAG_FIELDS: tuple[str, ...] = ("is_addon", "cancelled")
"""Boolean columns that enter the signature (NA, true or false)."""


def _cell(v: object) -> object:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, float):
        return round(v, 3)
    return v


def case_keys(cases: pd.DataFrame) -> list[tuple]:
    """One hashable key per case: its signature fields, no id and no date (JSON-safe)."""
    n = len(cases)
    if n == 0:
        return []
    midnight = pd.to_datetime(cases["date"]).dt.normalize() if "date" in cases else None
    cols: list[list[object]] = []
    for c in TEXT_FIELDS:
        if c not in cases:
            cols.append([""] * n)
        else:  # a parallel room (OR3~2) is its logged room: the split is not the log's
            cols.append([logged_room(x) if c == "room" else str(x) for x in cases[c]])
    for c in FLAG_FIELDS:
        if c in cases:
            cols.append([None if pd.isna(x) else bool(x) for x in cases[c]])
        else:
            cols.append([None] * n)
    if "booked_minutes" in cases:
        cols.append([_cell(float(x)) for x in cases["booked_minutes"]])
    else:
        cols.append([None] * n)
    for c in TIME_FIELDS:
        if c not in cases or midnight is None:
            cols.append([None] * n)
            continue
        mins = (pd.to_datetime(cases[c]) - midnight).dt.total_seconds() / 60.0
        cols.append([_cell(float(x)) for x in mins])
    return [tuple(row) for row in zip(*cols, strict=True)]


def _digest(keys: Iterable[tuple]) -> str:
    text = json.dumps(sorted(keys, key=lambda k: json.dumps(k)), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def day_signature(cases: pd.DataFrame) -> str:
    """A stable hash of one day's cases (rooms, times of day, procedures; not ids or dates)."""
    return _digest(case_keys(cases))


EMPTY_DAY: str = _digest([])
"""The signature of a day without cases."""


def _by_day(history: History) -> dict[date, pd.DataFrame]:
    c = history.cases
    if c.empty:
        return {}
    return {pd.Timestamp(d).date(): g for d, g in c.groupby("date", sort=True)}


def signatures(history: History) -> dict[date, str]:
    """Each date of ``history`` with its day signature, in date order."""
    return {d: day_signature(g) for d, g in _by_day(history).items()}


def repeat_groups(history: History) -> list[list[date]]:
    """Groups (size >= 2) of dates whose days are exact copies, each and all in date order."""
    groups: dict[str, list[date]] = {}
    for d, s in signatures(history).items():
        groups.setdefault(s, []).append(d)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def distinct_count(history: History, days: Iterable[date]) -> int:
    """The number of distinct day signatures among ``days`` (a day without cases counts once)."""
    sig = signatures(history)
    return len({sig.get(_as_date(d), EMPTY_DAY) for d in days})


def _as_date(d: date | str | pd.Timestamp) -> date:
    return pd.Timestamp(d).date()


def _changed(a: Counter, b: Counter) -> int:
    """Cases to change, add or remove to turn day ``a`` into day ``b``."""
    return max(sum((a - b).values()), sum((b - a).values()))


@dataclass(frozen=True)
class NearRepeat:
    """A day that is a near copy of an earlier day: ``changed`` cases differ (0 = exact)."""

    day: date
    of: date
    changed: int


def near_repeats(history: History, days: Iterable[date], fitted_until: date,
                 max_changed: int = 1) -> list[NearRepeat]:
    """Of ``days``, those within ``max_changed`` cases of a fitted day (date < ``fitted_until``)
    or of an earlier day of ``days``; each with the closest such day (exact copies included)."""
    by_day = _by_day(history)
    keys = {d: Counter(case_keys(g)) for d, g in by_day.items()}
    cut = _as_date(fitted_until)
    seen = [d for d in keys if d < cut]
    out: list[NearRepeat] = []
    for d in sorted(dict.fromkeys(_as_date(x) for x in days)):
        mine = keys.get(d, Counter())
        best: tuple[int, date] | None = None
        for other in seen:
            if other == d:
                continue
            other_keys = keys[other]
            if abs(sum(mine.values()) - sum(other_keys.values())) > max_changed:
                continue
            k = _changed(mine, other_keys)
            if k <= max_changed and (best is None or k < best[0]):
                best = (k, other)
        if best is not None:
            out.append(NearRepeat(d, best[1], best[0]))
        if d >= cut:
            seen.append(d)
    return out


def unseen_days(history: History, days: Iterable[date], fitted_until: date,
                strict: bool = False) -> list[date]:
    """Of ``days``, those not copies of a fitted day (date < ``fitted_until``) nor of an earlier
    day of ``days`` (first occurrence kept); ``strict`` also drops near copies (1 case)."""
    sig = signatures(history)
    cut = _as_date(fitted_until)
    seen = {s for d, s in sig.items() if d < cut}
    wanted = list(dict.fromkeys(_as_date(x) for x in days))
    near = {r.day for r in near_repeats(history, wanted, cut)} if strict else set()
    out: list[date] = []
    for d in sorted(wanted):
        s = sig.get(d, EMPTY_DAY)
        if s in seen:
            continue
        seen.add(s)
        if d not in near:
            out.append(d)
    return out


def describe_repeats(history: History, days: Iterable[date] | None = None) -> list[str]:
    """Lines ``2022-03-01 = 2022-01-07`` for each repeat group among ``days`` (default: all)."""
    keep = None if days is None else {_as_date(d) for d in days}
    lines = []
    for g in repeat_groups(history):
        g = [d for d in g if keep is None or d in keep]
        if len(g) > 1:
            lines.append(" = ".join(d.isoformat() for d in g))
    return lines


def repeat_report(history: History, max_changed: int = 1) -> list[str]:
    """Lines for ``history-check``: dates and distinct days (in all and by month), each group of
    exact repeats, and near copies (at most ``max_changed`` cases differ from an earlier day)."""
    days = sorted(signatures(history))
    if not days:
        return []
    groups = repeat_groups(history)
    copies = sum(len(g) - 1 for g in groups)
    lines = [f"days: {len(days)} dates, {distinct_count(history, days)} distinct; {copies} "
             f"repeat an earlier date exactly ({len(groups)} groups)"]
    months: dict[str, list[date]] = {}
    for d in days:
        months.setdefault(d.strftime("%Y-%m"), []).append(d)
    if len(months) > 1:
        lines.append("  by month: " + ", ".join(
            f"{m} {len(ds)} dates ({distinct_count(history, ds)} distinct, "
            f"{len(unseen_days(history, ds, ds[0]))} not seen before the month)"
            for m, ds in months.items()))
    lines += [f"  exact repeat: {g}" for g in describe_repeats(history)]
    near = [r for r in near_repeats(history, days, days[0], max_changed) if r.changed]
    if near:
        lines.append(f"  near copies (at most {max_changed} case(s) differ from an earlier date): "
                     + ", ".join(f"{r.day.isoformat()} ~ {r.of.isoformat()}" for r in near))
    return lines


__all__ = ["EMPTY_DAY", "FLAG_FIELDS", "NearRepeat", "TEXT_FIELDS", "TIME_FIELDS", "case_keys",
           "day_signature", "describe_repeats", "distinct_count", "near_repeats",
           "repeat_groups", "repeat_report", "signatures", "unseen_days"]
