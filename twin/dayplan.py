"""The day's plan the now-cast follows: which case goes in which room, when, for how long.

A plan file is a booked list (:mod:`twin.booked_list`) for one date: columns ``case_id, service,
surgeon, procedure, patient_class, date, room, start, booked_minutes`` with ``date`` as
``YYYY-MM-DD`` (one date per file) and ``start`` as ``HH:MM`` local time. Rows of a room run in
the order of their start times. A policy's plan is written in the same format.

A room id ``<room>~k`` (k >= 2) in a plan names a *parallel room*: a second stream of patients
a case log charts in ``<room>`` at the same time as the first (``calibration.overlaps``). It
runs as a copy of ``<room>`` (capabilities, hours, flags) added to the scenario for the day, so
the two streams are never run one after the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from twin.booked_list import COLUMNS, check_booked_list, read_csv_text
from twin.scenario import Scenario, ScenarioError, with_horizon

PLAN_COLUMNS: tuple[str, ...] = tuple("date" if c == "day" else c for c in COLUMNS)
PARALLEL_SEP: str = "~"
"""Separator of a parallel room's stream number: ``OR3~2`` is the second stream of OR3."""


def with_parallel_rooms(scn: Scenario, room_ids: Iterable[str]) -> Scenario:
    """``scn`` plus a copy of room R for each id ``R~k`` (k >= 2) in ``room_ids`` it lacks."""
    have = {r.id: r for r in scn.rooms}
    extra = []
    for rid in sorted({str(x) for x in room_ids} - set(have)):
        base, sep, k = rid.rpartition(PARALLEL_SEP)
        if sep and k.isdigit() and int(k) >= 2 and base in have:
            extra.append(have[base].model_copy(update={"id": rid}))
    return scn.model_copy(update={"rooms": [*scn.rooms, *extra]}) if extra else scn


@dataclass
class DayPlan:
    """One date's booked cases (``cases``: booked-list columns plus ``booked_start`` in absolute
    scenario minutes; day ``day`` of the scenario is the date's weekday, 0 = Monday)."""

    date: dt.date
    day: int
    cases: pd.DataFrame
    source: str
    tz: dt.tzinfo | None = None

    @property
    def midnight(self) -> float:
        """Scenario minute of the plan date's midnight."""
        return self.day * 1440.0

    def room_order(self) -> dict[str, list[str]]:
        """Each room's case ids in planned order."""
        df = self.cases.sort_values(["room", "booked_start"], kind="stable")
        return {str(r): list(g["case_id"]) for r, g in df.groupby("room", sort=False)}

    def minute(self, t: dt.datetime) -> float:
        """Scenario minute of a feed time (local wall-clock of the plan's time zone, or of the
        time's own offset when the plan has none)."""
        local = t.astimezone(self.tz) if self.tz is not None else t
        wall = local.replace(tzinfo=None)
        return self.midnight + (wall - dt.datetime.combine(self.date, dt.time())).total_seconds() / 60

    def clock(self, minute: float) -> str:
        """``HH:MM`` of a scenario minute on the plan's day (``+1d`` past midnight)."""
        m = int(round(minute - self.midnight))
        extra = f" +{m // 1440}d" if m >= 1440 else ""
        m %= 1440
        return f"{m // 60:02d}:{m % 60:02d}{extra}"

    def scenario(self, scn: Scenario) -> Scenario:
        """The scenario cut to end with the plan's day (its horizon is day + 1), with the
        plan's parallel rooms (``<room>~k``) added."""
        scn = with_parallel_rooms(scn, self.cases["room"])
        return with_horizon(scn, self.day + 1) if scn.horizon_days != self.day + 1 else scn


def plan_from_frame(df: pd.DataFrame, scn: Scenario, source: str | Path,
                    tz: dt.tzinfo | None = None) -> DayPlan:
    """A plan from plan-file columns (text), checked against the scenario row by row."""
    for col in PLAN_COLUMNS:
        if col not in df.columns:
            raise ScenarioError(source, col, "required column is missing")
    if df.empty:
        raise ScenarioError(source, "", "the plan has no cases")
    dates = set(df["date"])
    if len(dates) != 1:
        raise ScenarioError(source, "date", f"expected one date per plan (got {len(dates)})")
    text = next(iter(dates))
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        raise ScenarioError(source, "row 2: date", f"expected YYYY-MM-DD (got {text!r})") from None
    day = date.weekday()
    scn = with_parallel_rooms(with_horizon(scn, max(scn.horizon_days, day + 1)), df["room"])
    booked = check_booked_list(df.assign(day=str(day)).drop(columns="date"), scn, source)
    return DayPlan(date, day, booked.reset_index(drop=True), str(source), tz)


def read_plan(path: str | Path, scn: Scenario, tz: dt.tzinfo | None = None) -> DayPlan:
    """Read and check a plan file (:class:`ScenarioError`, one line, on the first problem)."""
    p = Path(path)
    return plan_from_frame(read_csv_text(p, "plan"), scn, p, tz)


def write_plan(plan: DayPlan, path: str | Path) -> Path:
    """Write a plan file atomically (plan-file columns)."""
    from twin.io import atomic_write

    df = plan.cases.assign(date=plan.date.isoformat())[list(PLAN_COLUMNS)]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))
