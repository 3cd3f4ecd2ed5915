"""Any historical day of a case log, played back as a live feed: the day's plan (its bookings)
and its milestones as EHR observations, in time order.

Each recorded milestone (in room, procedure start, procedure end, out of room, PACU in/out)
becomes one version-2 observation from source ``ehr`` with an ``event_id`` of
``<case>:<milestone>``. The plan is the day's bookings as the replay of a week builds them
(:mod:`ortwin.replay`), in a scenario adapted to the week (unseen procedures and
surgeons added).

Times. The log's times are local wall-clock readings (naive); each is written with the UTC
offset its zone has at that instant (``-05:00`` in winter, ``-04:00`` in summer for
America/New_York): the zone is the mapping's ``local_timezone``, else its ``timezone`` (or a
``tz`` given here; UTC when there is none). A wall-clock time that occurs twice (the repeated
hour when clocks go back) is taken at its first occurrence (the daylight-saving offset); one that
does not exist (the hour skipped when clocks go forward) is moved forward to the end of the gap
(02:30 on a spring-forward day becomes 03:00 daylight time). Both rules keep a case's milestones
in order, and the notes count the times they moved. The twin's minutes of the day are wall-clock
minutes (what the plan's ``HH:MM`` and the coordinator's clock say): a case from 01:30 to 03:30
on a spring-forward day lasted 60 real minutes and reads 120 on the day's clock, as the log's
own wall-clock times read it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from calibration.cases import week_monday, with_surgeons
from calibration.loader import History
from calibration.mapping import Mapping
from calibration.replay_week import booked_list_of_week, week_scenario
from calibration.schema import HistoryError
from twin.dayplan import DayPlan, plan_from_frame, write_plan
from twin.feed import Observation, parse_zone, write_feed
from twin.scenario import Scenario

FEED_STEPS: tuple[str, ...] = ("in_room", "procedure_start", "procedure_end", "out_of_room",
                               "pacu_in", "pacu_out")
"""Case-log milestones (canonical columns) played back, in the order they happen."""


@dataclass
class Playback:
    """One day of a case log: the scenario it plays in, its plan and its feed."""

    scenario: Scenario
    plan: DayPlan
    observations: list[Observation]
    actual: pd.DataFrame  # the day's cases with their recorded milestones (absolute minutes)
    notes: list[str]


def log_zone(mapping: Mapping) -> str | None:
    """The zone a mapped log's local times are in: ``local_timezone``, else ``timezone``."""
    return mapping.local_timezone or mapping.timezone


def zone_info(name: str | None, field: str = "--tz") -> dt.tzinfo:
    """The zone called ``name`` (UTC for None); an unknown name is a one-line ScenarioError."""
    return (parse_zone(name, field) if name else None) or dt.UTC


def zoned(times: pd.Series, zone: dt.tzinfo) -> tuple[pd.Series, int, int]:
    """Naive wall-clock times as instants in ``zone`` (repeated times at their first
    occurrence, skipped ones moved to the end of the gap), with how many were repeated and how
    many skipped."""
    t = pd.to_datetime(times)
    first = np.ones(len(t), dtype=bool)  # True = the daylight-saving (first) occurrence
    out = t.dt.tz_localize(zone, ambiguous=first, nonexistent="shift_forward")
    ambiguous = t.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    skipped = t.dt.tz_localize(zone, ambiguous=first, nonexistent="NaT")
    return out, int((ambiguous.isna() & t.notna()).sum()), int((skipped.isna() & t.notna()).sum())


def playback_day(history: History, day: dt.date | str, scn: Scenario,
                 tz: str | None = None) -> Playback:
    """The plan and EHR feed of one day of ``history`` (``tz``: the zone the log's local times
    are in, see the module notes; UTC when not given)."""
    date = dt.date.fromisoformat(day) if isinstance(day, str) else day
    monday = week_monday(date)
    rows = history.between(date, date + dt.timedelta(days=1)).cases
    if rows.empty:
        raise HistoryError(history.source, "--date", f"no cases on {date.isoformat()}")
    cases = with_surgeons(rows, history.recorded)
    booked, notes = booked_list_of_week(cases, monday, scn)
    if booked.empty:
        raise HistoryError(history.source, "--date", f"no booked cases on {date.isoformat()}")
    day_scn, more = week_scenario(scn, booked, history.source)
    if "cancelled" not in history.recorded and day_scn.stress.cancellation_factor > 0:
        day_scn = day_scn.model_copy(update={"stress": day_scn.stress.model_copy(
            update={"cancellation_factor": 0.0})})
        more.append("the log records no cancellations (its cases are the ones that ran): no "
                    "day-of cancellations are drawn")
    if "pacu_in" not in history.recorded and day_scn.pacu.when_full == "hold":
        day_scn = day_scn.model_copy(update={"pacu": day_scn.pacu.model_copy(
            update={"when_full": "overflow"})})
        more.append("the log records no PACU times: PACU never holds a patient in the OR "
                    "(when_full: overflow), so room finishes are not delayed by invented holds")
    frame = booked.drop(columns="day").assign(date=date.isoformat()).astype(str)
    zone = zone_info(tz)
    plan = plan_from_frame(frame, day_scn, f"{history.source}@{date.isoformat()}", zone)
    obs: list[tuple[pd.Timestamp, int, Observation]] = []
    midnight = pd.Timestamp(date)
    actual = {"case_id": list(cases["case_id"]), "room": list(cases["room"])}
    repeated = skipped = 0
    for k, step in enumerate(FEED_STEPS):
        col = cases[step] if step in cases else pd.Series(pd.NaT, index=cases.index)
        when, a, b = zoned(col, zone)
        repeated, skipped = repeated + a, skipped + b
        wall = when.dt.tz_localize(None)  # the wall clock of each instant (gaps moved)
        actual[step] = list(plan.midnight + (wall - midnight).dt.total_seconds() / 60)
        for r, t in zip(cases.itertuples(index=False), when, strict=True):
            if pd.isna(t):
                continue
            obs.append((t, k, Observation(time=t.to_pydatetime(), room=r.room, kind="milestone",
                                          value=step, case_id=str(r.case_id), source="ehr",
                                          source_id=history.source.rsplit("/", 1)[-1],
                                          event_id=f"{r.case_id}:{step}")))
    obs.sort(key=lambda x: (x[0], x[1]))  # stable: ties keep the log's case order
    if not tz:
        more.append("no time zone given: the log's times are written as UTC (give the "
                    "mapping's timezone, or --tz)")
    if repeated:
        more.append(f"{repeated} time(s) in the hour repeated when clocks went back: taken at "
                    "their first occurrence (daylight time)")
    if skipped:
        more.append(f"{skipped} time(s) in the hour skipped when clocks went forward: moved to "
                    "the end of the gap")
    return Playback(day_scn, plan, [o for *_, o in obs], pd.DataFrame(actual), notes + more)


def write_playback(pb: Playback, plan_out: str | Path, feed_out: str | Path,
                   scenario_out: str | Path) -> None:
    """Write the day's plan, feed and the scenario it plays in (its PACU, cancellation and
    staffing rules), the files ``ortwin nowcast`` reads."""
    write_plan(pb.plan, plan_out)
    write_feed(pb.observations, feed_out)
    write_scenario(pb.scenario, scenario_out,
                   f"the scenario of {pb.plan.source} as played back by ortwin feed playback")


def write_scenario(scn: Scenario, path: str | Path, note: str = "") -> Path:
    """Write a scenario as YAML that :func:`twin.scenario.load_scenario` reads back equal."""
    head = "".join(f"# {line}\n" for line in note.splitlines())
    text = head + yaml.safe_dump(scn.model_dump(mode="json", by_alias=True), sort_keys=False,
                                 width=100)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)  # readers never see a half-written file
    return p
