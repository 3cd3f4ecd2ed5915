"""Drill-downs of turnover, first-case on-time starts and utilisation by room, surgeon, service
or procedure, for the board's day or a period of a case log, with the literature's benchmarks.

Drill-downs work on a *milestone frame* (``CASE_COLUMNS``: one row per case, times as minutes on
one axis whose midnights are multiples of 1440) and a *windows frame* (``room, day, open, close``:
staffed hours of each room-day). :func:`day_cases` makes one from the live state's milestones,
:func:`history_cases` from a case log's canonical columns. Definitions (the grace and the
turnover limit of :mod:`twin.kpis`; first cases and turnover credit as calibration reads a log):

* turnover: a case's out-of-room to the next case's in-room in the same room on the same day,
  kept when 0 to ``TURNOVER_MAX_MIN`` minutes (a longer gap is idle time); it is credited to the
  case *before* (its room, surgeon, service and procedure), as calibration fits it;
* first case: the room-day's earliest planned case; on time when in the room by its planned
  start + ``ON_TIME_GRACE_MIN``; on the board's day a first case not yet in counts as late once
  that time has passed, and is left out before;
* utilisation: in-room minutes within the staffed window / staffed minutes (both up to the board
  time on the board's day). For a surgeon, service or procedure the staffed minutes are those of
  the room-days it had a case in.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ortwin.live import LiveState


def clock_text(minute: float) -> str:
    """``HH:MM`` of a minute on an axis whose midnights are multiples of 1440 ('-' when NaN)."""
    if minute is None or isinstance(minute, float) and math.isnan(minute):
        return "-"
    m = int(round(minute)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


ON_TIME_GRACE_MIN = 5.0
"""A first case is on time when in the room by its planned start plus this (twin.kpis)."""
TURNOVER_MAX_MIN = 120.0
"""A gap between cases longer than this is idle time, not turnover (twin.kpis)."""
GROUPS = ("room", "surgeon", "service", "procedure")
"""What a drill-down can group by."""
UNRECORDED = "(not recorded)"
"""Group name of cases whose log leaves the grouping column empty."""
CASE_COLUMNS = ("case_id", "day", "room", "service", "surgeon", "procedure", "planned_start",
                "in_room", "out_of_room")
"""Columns of a milestone frame."""
MEASURES = {"turnover_median": "Median turnover (min)",
            "on_time_share": "First cases on time (share)",
            "utilisation": "Utilisation (in-room / staffed)"}
"""Drill-down measures charted, with their axis titles."""


@dataclass(frozen=True)
class Benchmark:
    """A figure from the literature or the bundled log, drawn as a rule on a drill-down chart."""

    measure: str
    value: float
    label: str
    colour: str = "#d62728"


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("turnover_median", 36.0, "~36 min Mazzei 1994"),
    Benchmark("turnover_median", 29.0, "2022 log median 29 min", "#9467bd"),
    Benchmark("on_time_share", 0.66, "PMC11703430: 66% before"),
    Benchmark("on_time_share", 0.72, "72% after"),
)
"""Reference figures of ../shared/data/SOURCES.md."""



# --- milestone frames ---------------------------------------------------------------------------
def day_cases(live: LiveState) -> pd.DataFrame:
    """The board's day so far as a milestone frame (cancelled cases left out; NaN: not yet)."""
    plan, rows = live.plan, []
    for r in plan.cases.itertuples(index=False):
        c = live.cases[str(r.case_id)]
        if c.cancelled:
            continue
        t_in, t_out = c.at("in_room"), c.at("out_of_room")
        rows.append({"case_id": c.case_id, "day": plan.date, "room": c.room,
                     "service": str(r.service), "surgeon": str(r.surgeon),
                     "procedure": str(r.procedure), "planned_start": float(r.booked_start),
                     "in_room": math.nan if t_in is None else t_in,
                     "out_of_room": math.nan if t_out is None else t_out})
    return pd.DataFrame(rows, columns=list(CASE_COLUMNS))


def day_windows(windows: dict[str, tuple[float, float]], day: dt.date) -> pd.DataFrame:
    """Staffed windows of the board's day (``NowcastEngine.windows``) as a windows frame."""
    return pd.DataFrame([(room, day, float(a), float(b)) for room, (a, b) in windows.items()],
                        columns=["room", "day", "open", "close"])


def history_cases(cases: pd.DataFrame, first: dt.date, last: dt.date
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A case log's cases run from ``first`` to ``last`` as a milestone frame, with windows."""
    # minutes since first's midnight; each room's staffed hours are inferred from the period as
    # calibration does (calibration.suite.fit_suite), for the room-days that ran cases
    from calibration.suite import fit_suite

    origin = pd.Timestamp(first)
    end = pd.Timestamp(last) + pd.Timedelta(days=1)
    c = cases.loc[(cases["date"] >= origin) & (cases["date"] < end) & cases["in_room"].notna()
                  & (cases["room"].fillna("") != "")]
    if "cancelled" in c:
        c = c.loc[~c["cancelled"].fillna(False).astype(bool)]

    def minutes(s: pd.Series) -> pd.Series:
        return (s - origin).dt.total_seconds() / 60.0

    frame = pd.DataFrame({
        "case_id": c["case_id"].astype(str), "day": c["date"].dt.date, "room": c["room"],
        "service": c["service"].fillna(""), "surgeon": c["surgeon"].fillna(""),
        "procedure": c["procedure"].fillna(""), "planned_start": minutes(c["booked_start"]),
        "in_room": minutes(c["in_room"]), "out_of_room": minutes(c["out_of_room"])},
        columns=list(CASE_COLUMNS)).reset_index(drop=True)
    if frame.empty:
        return frame, pd.DataFrame(columns=["room", "day", "open", "close"])
    use = fit_suite(c, origin, end).room_use.drop_duplicates("room").set_index("room")
    rd = frame[["room", "day"]].drop_duplicates()
    base = np.array([(pd.Timestamp(d) - origin).total_seconds() / 60 for d in rd["day"]])

    def at(col: str) -> np.ndarray:
        return np.array([int(t[:2]) * 60 + int(t[3:]) for t in use.loc[rd["room"], col]], float)

    windows = pd.DataFrame({"room": rd["room"].to_numpy(), "day": rd["day"].to_numpy(),
                            "open": base + at("start"), "close": base + at("end")})
    return frame, windows.reset_index(drop=True)


# --- measures -----------------------------------------------------------------------------------
def turnovers(cases: pd.DataFrame, max_minutes: float = TURNOVER_MAX_MIN) -> pd.DataFrame:
    """One row per turnover (same room and day, up to ``max_minutes``), with the case before."""
    c = cases.loc[cases["in_room"].notna()].sort_values(["room", "day", "in_room"], kind="stable")
    g = c.groupby(["room", "day"], sort=False)
    prev = {k: g[k].shift() for k in ("case_id", "service", "surgeon", "procedure", "out_of_room")}
    gap = c["in_room"] - prev["out_of_room"]
    ok = prev["out_of_room"].notna() & (gap >= 0) & (gap <= max_minutes)
    return pd.DataFrame({
        "room": c["room"], "day": c["day"], "case_before": prev["case_id"],
        "case_after": c["case_id"], "service": prev["service"], "surgeon": prev["surgeon"],
        "procedure": prev["procedure"], "out_of_room": prev["out_of_room"],
        "in_room": c["in_room"], "minutes": gap}).loc[ok].reset_index(drop=True)


def first_cases(cases: pd.DataFrame, at: float | None = None,
                grace: float = ON_TIME_GRACE_MIN) -> pd.DataFrame:
    """Each room-day's earliest planned case: ``late``, ``status``, ``on_time`` (NaN: not due)."""
    c = cases.loc[cases["planned_start"].notna()].sort_values(
        ["room", "day", "planned_start"], kind="stable")
    f = c.groupby(["room", "day"], sort=False).head(1).reset_index(drop=True)
    started = f["in_room"].notna().to_numpy()
    planned = f["planned_start"].to_numpy(float)
    now = math.nan if at is None else at
    due = started | (now > planned + grace)  # with no board time, only cases that ran
    late = np.where(started, f["in_room"].to_numpy(float) - planned,
                    np.where(due, now - planned, np.nan))
    on = np.where(due, (late <= grace).astype(float), np.nan)
    status = np.where(~due, "not due yet", np.where(
        ~started, "late (not in yet)", np.where(on == 1.0, "on time", "late")))
    return f.drop(columns="out_of_room").assign(late=late, on_time=on, status=status)


def in_room_minutes(cases: pd.DataFrame, windows: pd.DataFrame, at: float | None = None
                    ) -> pd.Series:
    """Each case's in-room minutes within its room-day's staffed window, up to ``at``."""
    w = cases.merge(windows, on=["room", "day"], how="left")
    now = math.inf if at is None else at
    end = w["out_of_room"].fillna(now if at is not None else math.nan).clip(upper=now)
    hi = np.minimum(end, w["close"].clip(upper=now))
    lo = np.maximum(w["in_room"], w["open"])
    return pd.Series(np.nan_to_num((hi - lo).clip(lower=0).to_numpy(float)), index=cases.index)


def staffed_minutes(windows: pd.DataFrame, at: float | None = None) -> pd.Series:
    """Each window's staffed minutes (those elapsed by ``at``)."""
    close = windows["close"] if at is None else windows["close"].clip(upper=at)
    return (close - windows["open"]).clip(lower=0)


def _natural(text: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text))


def _key(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).replace("", UNRECORDED)


def drilldown(cases: pd.DataFrame, windows: pd.DataFrame, by: str, at: float | None = None,
              grace: float = ON_TIME_GRACE_MIN, max_turnover: float = TURNOVER_MAX_MIN
              ) -> pd.DataFrame:
    """Per room, surgeon, service or procedure: cases, utilisation, turnover, first cases."""
    if by not in GROUPS:
        raise ValueError(f"by: expected one of {', '.join(GROUPS)} (got {by!r})")
    ran = cases.loc[cases["in_room"].notna()].copy()
    ran["g"] = _key(ran[by])
    ran["used"] = in_room_minutes(ran, windows, at)
    w = windows.assign(staffed=staffed_minutes(windows, at))
    if by == "room":
        staffed = w.groupby("room")["staffed"].sum()
    else:
        rd = ran[["g", "room", "day"]].drop_duplicates().merge(w, on=["room", "day"], how="left")
        staffed = rd.groupby("g")["staffed"].sum()
    tv = turnovers(cases, max_turnover)
    tv["g"] = _key(tv[by])
    fc = first_cases(cases, at, grace)
    fc["g"] = _key(fc[by])
    names = set(ran["g"]) | set(staffed.index) | set(fc["g"])
    t = pd.DataFrame({"group": sorted(names, key=_natural)}).set_index("group")
    t["cases"] = ran.groupby("g").size()
    t["in_room_min"] = ran.groupby("g")["used"].sum()
    t["staffed_min"] = staffed
    t = t.fillna({"cases": 0, "in_room_min": 0.0, "staffed_min": 0.0})
    t["utilisation"] = t["in_room_min"] / t["staffed_min"].where(t["staffed_min"] > 0)
    tg = tv.groupby("g")["minutes"]
    t["turnovers"] = tg.size()
    t["turnover_median"], t["turnover_mean"] = tg.median(), tg.mean()
    due = fc.loc[fc["on_time"].notna()].groupby("g")["on_time"]
    t["first_cases"], t["on_time"] = due.size(), due.sum()
    t = t.fillna({"turnovers": 0, "first_cases": 0, "on_time": 0})
    t["on_time_share"] = t["on_time"] / t["first_cases"].where(t["first_cases"] > 0)
    for col in ("cases", "turnovers", "first_cases", "on_time"):
        t[col] = t[col].astype(int)
    t = t.reset_index()
    if by != "room":
        t = t.sort_values(["cases", "group"], ascending=[False, True], kind="stable")
    return t.reset_index(drop=True)


def drill_display(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """A drill-down table for reading: minutes to 0.1, shares to 0.001, the group named."""
    out = table.rename(columns={"group": by}).copy()
    for c in ("in_room_min", "staffed_min", "turnover_median", "turnover_mean"):
        out[c] = out[c].round(1)
    for c in ("utilisation", "on_time_share"):
        out[c] = out[c].round(3)
    return out



def detail_times(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """A drill-down detail frame with its minute columns as ``HH:MM`` and minutes rounded."""
    out = df.drop(columns=[c for c in ("g",) if c in df]).copy()
    for c in columns:
        if c in out:
            out[c] = [clock_text(x) for x in out[c]]
    for c in ("minutes", "late"):
        if c in out:
            out[c] = out[c].round(1)
    return out
