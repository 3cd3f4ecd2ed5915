"""Derived views of a loaded history's cases that calibration and replay share.

Times become minutes from a reference Monday 00:00 (the twin's clock); a log without surgeons
gets one pseudo-surgeon per service and concurrent room (``<service>-team-<k>``), assigned the
same way when calibrating and when replaying, so the two agree.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd

from calibration.overlaps import is_parallel
from calibration.schema import HistoryError

_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def iso_week(text: str, source: str = "--week") -> date:
    """The Monday of ISO week ``YYYY-Www``; anything else raises HistoryError."""
    m = _ISO_WEEK.match(text.strip())
    if not m:
        raise HistoryError(source, "", f"expected an ISO week like 2022-W05, got {text!r}")
    try:
        return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise HistoryError(source, "", f"no such ISO week {text!r}") from None


def week_label(monday: date) -> str:
    """``YYYY-Www`` of the ISO week starting on ``monday``."""
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}"


def minutes_since(times: pd.Series, monday: date) -> np.ndarray:
    """Minutes from ``monday`` 00:00 to each timestamp (NaN where not recorded)."""
    delta = pd.to_datetime(times) - pd.Timestamp(monday)
    return delta.dt.total_seconds().to_numpy(dtype=float) / 60.0


def day_index(dates: pd.Series, monday: date) -> np.ndarray:
    """Whole days from ``monday`` to each date."""
    return (pd.to_datetime(dates) - pd.Timestamp(monday)).dt.days.to_numpy(dtype=np.int64)


def in_room_minutes(cases: pd.DataFrame) -> pd.Series:
    """Wheels-in to wheels-out minutes of each case (NaN when it did not run)."""
    return (cases["out_of_room"] - cases["in_room"]).dt.total_seconds() / 60.0


def with_surgeons(cases: pd.DataFrame, recorded: frozenset[str]) -> pd.DataFrame:
    """``cases`` with a ``surgeon`` for every row: the recorded one, else the service team of
    the room: the k-th room (by room id, parallel rooms ``<room>~k`` after the others) that the
    service used on that date is team k."""
    if "surgeon" in recorded and (cases["surgeon"] != "").all():
        return cases
    out = cases.copy()
    missing = out["surgeon"] == ""
    rooms = out.loc[missing, ["date", "service", "room"]]
    rank = (rooms.drop_duplicates().assign(parallel=lambda f: f["room"].map(is_parallel))
            .sort_values(["date", "service", "parallel", "room"]).drop(columns="parallel")
            .assign(k=lambda f: f.groupby(["date", "service"]).cumcount() + 1))
    merged = rooms.merge(rank, on=["date", "service", "room"], how="left")
    out.loc[missing, "surgeon"] = (merged["service"] + "-team-" + merged["k"].astype(str)).to_numpy()
    return out


def week_monday(d: date | pd.Timestamp) -> date:
    """The Monday of the week containing ``d``."""
    d = pd.Timestamp(d).date()
    return d - timedelta(days=d.weekday())


__all__ = ["day_index", "in_room_minutes", "iso_week", "minutes_since", "week_label",
           "week_monday", "with_surgeons"]
