"""A real week in the twin's event format, so the twin's own KPI module measures it.

Each history row becomes the milestones it records (``booked``, ``scheduled`` at the booked
start, ``in_room`` ... ``out_of_room``, ``pacu_in``/``pacu_out``) or a ``cancelled`` event.
Nothing is invented: a column the log does not record leaves the KPIs that need it NaN
(:func:`twin.kpis.compute_kpis`), and replays leave those KPIs out.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from calibration.cases import day_index, minutes_since
from calibration.loader import History
from twin.events import CASE_COLUMNS, to_frame
from twin.kpis import KpiContext, compute_kpis

_EVENTS = ("in_room", "procedure_start", "procedure_end", "out_of_room", "pacu_in", "pacu_out")


def week_log(history: History, monday: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events and cases frames of the history's cases booked in the week starting ``monday``
    (day 0 = that Monday, times in minutes from its midnight)."""
    c = history.between(monday, pd.Timestamp(monday) + pd.Timedelta(days=7)).cases
    rec = history.recorded
    day = day_index(c["date"], monday)
    booked_start = minutes_since(c["booked_start"], monday)
    arrival = minutes_since(c["requested_at"], monday)
    addon = c["is_addon"].fillna(False).to_numpy(bool)
    cancelled = c["cancelled"].fillna(False).to_numpy(bool)
    ids = c["case_id"].to_numpy(object)
    rows: list[tuple] = []
    booked_min = c["booked_minutes"].to_numpy(float)
    for i, cid in enumerate(ids):
        t0 = arrival[i] if addon[i] and not np.isnan(arrival[i]) else 0.0
        rows.append((t0, "booked", cid, "", "", booked_min[i], ""))
        if not np.isnan(booked_start[i]):
            rows.append((t0, "scheduled", cid, c["room"].iat[i], "", booked_start[i], ""))
        if cancelled[i] and "cancelled" in rec:
            when = booked_start[i] if not np.isnan(booked_start[i]) else day[i] * 1440.0
            rows.append((when, "cancelled", cid, "", "", np.nan, c["cancel_reason"].iat[i] or "patient"))
    for col in _EVENTS:
        t = minutes_since(c[col], monday)
        for i in np.flatnonzero(~np.isnan(t)):
            room = c["room"].iat[i] if col in ("in_room", "out_of_room") else ""
            rows.append((t[i], col, ids[i], room, "", np.nan, ""))
    events = to_frame(rows)

    cases = pd.DataFrame({
        "case_id": ids, "service": c["service"].to_numpy(object),
        "surgeon": c["surgeon"].to_numpy(object), "procedure": c["procedure"].to_numpy(object),
        "patient_class": c["patient_class"].to_numpy(object),
        "priority": c["priority"].replace("", "elective").to_numpy(object),
        "capability": c["service"].to_numpy(object), "trays": "",
        "booked_minutes": booked_min, "booked_day": day,
        "booked_room": np.where(addon, "", c["room"].to_numpy(object)),
        "booked_start": booked_start, "is_addon": addon, "arrival": np.where(addon, arrival, np.nan),
    }).loc[:, list(CASE_COLUMNS)]
    unrecorded = {"surgeon": "surgeon", "patient_class": "patient_class", "is_addon": "is_addon",
                  "arrival": "requested_at", "trays": "trays"}
    drop = [col for col, src in unrecorded.items() if src not in rec]
    return events, cases.drop(columns=drop)


def actual_kpis(history: History, monday: date, ctx: KpiContext) -> dict[str, float]:
    """The week's KPIs computed by the twin's KPI module from the history rows."""
    events, cases = week_log(history, monday)
    k = compute_kpis(events, cases, ctx)
    if "cancelled" not in history.recorded:  # a log of cases that ran says nothing of these
        for key in ("cases_cancelled", "cancellation_rate", "fair_cancel_rate_gap"):
            k[key] = float("nan")
    return k


__all__ = ["actual_kpis", "week_log"]
