"""Any historical day of a case log, played back as a live feed: the day's plan (its bookings)
and its milestones as EHR observations, in time order.

Each recorded milestone (in room, procedure start, procedure end, out of room, PACU in/out)
becomes one version-2 observation from source ``ehr`` with an ``event_id`` of
``<case>:<milestone>``. The plan is the day's bookings as the replay of a week builds them
(:mod:`calibration.replay`), in a scenario adapted to the week (unseen procedures and
surgeons added).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import pandas as pd

from calibration.cases import week_monday, with_surgeons
from calibration.loader import History
from calibration.replay import _booked_list, week_scenario
from calibration.schema import HistoryError
from twin.dayplan import DayPlan, plan_from_frame
from twin.feed import Observation
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


def playback_day(history: History, day: dt.date | str, scn: Scenario,
                 tz: str | None = None) -> Playback:
    """The plan and EHR feed of one day of ``history`` (``tz``: the zone the log's local times
    are in, for the feed's UTC offsets; UTC when not given)."""
    date = dt.date.fromisoformat(day) if isinstance(day, str) else day
    monday = week_monday(date)
    rows = history.between(date, date + dt.timedelta(days=1)).cases
    if rows.empty:
        raise HistoryError(history.source, "--date", f"no cases on {date.isoformat()}")
    cases = with_surgeons(rows, history.recorded)
    booked, notes = _booked_list(cases, monday, scn)
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
    plan = plan_from_frame(frame, day_scn, f"{history.source}@{date.isoformat()}")
    zone = zoneinfo.ZoneInfo(tz) if tz else dt.UTC
    obs: list[tuple[pd.Timestamp, int, Observation]] = []
    midnight = pd.Timestamp(date)
    actual = {"case_id": list(cases["case_id"]), "room": list(cases["room"])}
    for step in FEED_STEPS:
        col = cases[step] if step in cases else pd.Series(pd.NaT, index=cases.index)
        actual[step] = list(plan.midnight + (col - midnight).dt.total_seconds() / 60)
    for r in cases.itertuples(index=False):
        for k, step in enumerate(FEED_STEPS):
            t = getattr(r, step, pd.NaT)
            if pd.isna(t):
                continue
            when = t.to_pydatetime().replace(tzinfo=zone)
            obs.append((t, k, Observation(time=when, room=r.room, kind="milestone", value=step,
                                          case_id=str(r.case_id), source="ehr",
                                          source_id=history.source.rsplit("/", 1)[-1],
                                          event_id=f"{r.case_id}:{step}")))
    obs.sort(key=lambda x: (x[0], x[1]))
    return Playback(day_scn, plan, [o for *_, o in obs], pd.DataFrame(actual), notes + more)
