"""The suite's structure read from a history: rooms and their hours, blocks, surgeons, demand.

A case log does not state staffed hours or block allocations; they are inferred from how the
rooms were used before the as-of date:

* a room is open on a weekday when it ran cases on at least half of that weekday's operating
  dates; its hours are the median first booked start (rounded to 15 min) to the median end of
  the last booked case (rounded up to 30 min, at least 4 h after the start);
* a room-weekday is a service's block when that service had at least half its booked minutes;
* a surgeon's block days are the weekdays they operated on at least 30% of the operating dates,
  topped up so every service has as many surgeons as blocks on each weekday.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from calibration.fit_flows import WEEKDAY_NAMES

OPEN_SHARE = 0.5
BLOCK_SHARE = 0.5
SURGEON_DAY_SHARE = 0.3


def natural_key(text: str) -> tuple:
    """Sort key that puts OR2 before OR10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _hhmm(minutes: float) -> str:
    m = int(round(minutes))
    return f"{m // 60:02d}:{m % 60:02d}"


@dataclass
class SuiteFit:
    """Rooms, hours, blocks, surgeons and weekly demand inferred from a history window."""

    rooms: list[dict]
    blocks: dict[str, dict[str, dict]]
    surgeons: list[dict]
    electives_per_week: dict[str, float]
    weeks: float
    operating_days: dict[str, int]
    room_use: pd.DataFrame        # room, weekday, dates used, share, start, end, block service


def fit_suite(cases: pd.DataFrame, first: pd.Timestamp, end: pd.Timestamp) -> SuiteFit:
    """Infer the suite's structure from the cases booked in [first, end)."""
    ran = cases.loc[cases["in_room"].notna() & (cases["room"] != "")].copy()
    ran["day"] = ran["in_room"].dt.normalize()
    ran["wd"] = ran["date"].dt.day_of_week
    op_dates = ran.groupby("wd")["date"].nunique()
    t_start = ran["booked_start"].fillna(ran["in_room"])
    ran["start_min"] = (t_start - ran["date"]).dt.total_seconds() / 60
    booked_end = ran["booked_start"] + pd.to_timedelta(ran["booked_minutes"].fillna(0), unit="m")
    ran["end_min"] = (booked_end.fillna(ran["out_of_room"]) - ran["date"]).dt.total_seconds() / 60
    ran["minutes"] = ran["booked_minutes"].fillna(
        (ran["out_of_room"] - ran["in_room"]).dt.total_seconds() / 60)

    per_rd = ran.groupby(["room", "date"]).agg(start=("start_min", "min"), end=("end_min", "max"),
                                               wd=("wd", "first"))
    rooms, blocks, use_rows = [], {}, []
    for room in sorted(ran["room"].unique(), key=natural_key):
        rd = per_rd.loc[room]
        start = 15 * round(float(rd["start"].median()) / 15)
        end_ = 30 * math.ceil(float(rd["end"].median()) / 30)
        end_ = max(end_, start + 240)
        hours, caps = {}, sorted(ran.loc[ran["room"] == room, "service"].unique())
        for wd in range(7):
            used = int((rd["wd"] == wd).sum())
            share = used / op_dates.get(wd, 1) if wd in op_dates else 0.0
            svc_min = ran.loc[(ran["room"] == room) & (ran["wd"] == wd)].groupby("service")["minutes"].sum()
            owner = ""
            if share >= OPEN_SHARE:
                hours[WEEKDAY_NAMES[wd]] = {"start": _hhmm(start), "end": _hhmm(end_)}
                if len(svc_min) and svc_min.max() >= BLOCK_SHARE * svc_min.sum():
                    owner = str(svc_min.idxmax())
                    blocks.setdefault(room, {})[WEEKDAY_NAMES[wd]] = {"service": owner}
            use_rows.append({"room": room, "weekday": WEEKDAY_NAMES[wd], "dates_used": used,
                             "share": round(share, 3), "open": share >= OPEN_SHARE,
                             "start": _hhmm(start), "end": _hhmm(end_), "block": owner})
        if hours:
            rooms.append({"id": room, "capabilities": caps, "hours": hours})
    open_rooms = {r["id"] for r in rooms}
    blocks = {r: b for r, b in blocks.items() if r in open_rooms}

    span_days = max((end.normalize() - first.normalize()).days, 1)
    weeks = span_days / 7.0
    electives = cases.loc[~cases["is_addon"].fillna(False).astype(bool)]
    per_week = (electives.groupby("service").size() / weeks).round(2).to_dict()
    surgeons = _surgeons(ran, blocks, op_dates)
    return SuiteFit(rooms, blocks, surgeons, {str(k): float(v) for k, v in per_week.items()},
                    weeks, {WEEKDAY_NAMES[int(k)]: int(v) for k, v in op_dates.items()},
                    pd.DataFrame(use_rows))


def _surgeons(ran: pd.DataFrame, blocks: dict, op_dates: pd.Series) -> list[dict]:
    """Surgeons with their modal service and block days, topped up to cover every block."""
    need: dict[tuple[str, str], int] = {}
    for days in blocks.values():
        for wd, b in days.items():
            need[(b["service"], wd)] = need.get((b["service"], wd), 0) + 1
    rows = ran.groupby("surgeon").agg(service=("service", lambda s: s.mode().iat[0]),
                                      n=("case_id", "size"))
    out: dict[str, dict] = {}
    for sid, r in rows.sort_values("n", ascending=False).iterrows():
        mine = ran.loc[ran["surgeon"] == sid]
        days = []
        for wd in range(7):
            share = mine.loc[mine["wd"] == wd, "date"].nunique() / max(int(op_dates.get(wd, 1)), 1)
            if share >= SURGEON_DAY_SHARE:
                days.append(WEEKDAY_NAMES[wd])
        out[str(sid)] = {"id": str(sid), "service": str(r["service"]), "block_days": days,
                         "n": int(r["n"])}
    for (svc, wd), k in sorted(need.items()):
        team = sorted((s for s in out.values() if s["service"] == svc), key=lambda s: -s["n"])
        have = [s for s in team if wd in s["block_days"]]
        for s in team:
            if len(have) >= k:
                break
            if s not in have:
                s["block_days"].append(wd)
                have.append(s)
    for s in out.values():
        s["block_days"] = [d for d in WEEKDAY_NAMES if d in s["block_days"]]
    return [{k: v for k, v in s.items() if k != "n"} for s in out.values()]


def peak_daily_cases(cases: pd.DataFrame) -> dict[str, int]:
    """The most cases a service ran on one date (sizes its tray inventory)."""
    ran = cases.loc[cases["in_room"].notna()]
    return {str(k): int(v) for k, v in ran.groupby(["service", "date"]).size()
            .groupby(level=0).max().items()}


def median_day(rooms: list[dict]) -> tuple[str, str]:
    """The median staffed window over the rooms' open weekdays (the prime time)."""
    starts = [w["start"] for r in rooms for w in r["hours"].values()]
    ends = [w["end"] for r in rooms for w in r["hours"].values()]
    return sorted(starts)[len(starts) // 2], sorted(ends)[len(ends) // 2]


__all__ = ["SuiteFit", "fit_suite", "median_day", "natural_key", "peak_daily_cases"]
