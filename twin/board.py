"""The OR status board's data: room tiles, the suite's day so far, drill-down tables and charts.

The app (``app.py``, page "OR status board") only lays these out. Everything here reads a
:class:`~twin.nowcast.Nowcast`, a :class:`~twin.live.LiveState` or a case log and returns plain
values, frames or Altair charts.

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

import altair as alt
import numpy as np
import pandas as pd

from twin.dayplan import DayPlan
from twin.feed import Feed
from twin.live import LiveConfig, LiveState, live_state
from twin.nowcast import Nowcast, base_snapshot
from twin.scenario import Scenario
from twin.schema import hhmm

AMBER_AT = 0.2
"""Probability of running past the staffed end from which a room's tile is amber."""
RED_AT = 0.5
"""... and red (the now-cast's own alert threshold)."""
RISK_COLOURS = {"green": "green", "amber": "orange", "red": "red"}
"""Streamlit's colour name of each risk level."""
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
TIMER = ":material/timer:"
"""The turnover timer's icon (Streamlit's bundled icon font: no emoji font needed)."""
STATE_WORDS = {"idle": "Idle", "setup": "Set-up", "patient_in_room": "Patient in room",
               "procedure": "Procedure", "turnover": "Turnover"}


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


def clock_text(minute: float) -> str:
    """``HH:MM`` of a minute on an axis whose midnights are multiples of 1440 ('-' when NaN)."""
    if minute is None or isinstance(minute, float) and math.isnan(minute):
        return "-"
    m = int(round(minute)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def clock_options(first: str = "06:00", last: str = "22:00", step: int = 5) -> list[str]:
    """``HH:MM`` choices of the board time, every ``step`` minutes."""
    return [clock_text(m) for m in range(hhmm(first), hhmm(last) + 1, step)]


def snap_clock(minute_of_day: float, options: list[str]) -> str:
    """The choice of ``options`` nearest a minute after the day's midnight."""
    return min(options, key=lambda o: abs(hhmm(o) - minute_of_day))


def replay_minute(start: float, elapsed_s: float, every_s: float, step_min: float,
                  end: float | None = None) -> float:
    """Replay board time: ``start`` plus ``step_min`` per ``every_s`` s elapsed, at most ``end``."""
    t = start + step_min * math.floor(max(elapsed_s, 0.0) / every_s)
    return min(t, end) if end is not None else t


# --- live state ---------------------------------------------------------------------------------
def live_at(plan: DayPlan, room_ids: list[str], feed: Feed, at: float | None,
            config: LiveConfig | None = None) -> LiveState:
    """The live state at ``at`` (all when None), unreadable lines counted as ``ortwin nowcast``."""
    live = live_state(plan, room_ids, feed.observations, until=at, config=config)
    if feed.quarantine:
        live.outcomes["unreadable"] += len(feed.quarantine)
        live.quarantine += [{"index": q["line"], "category": "unreadable", "reason": q["reason"]}
                            for q in feed.quarantine]
    return live


def pacu_beds(scn: Scenario, plan: DayPlan, at: float) -> int:
    """PACU beds open at ``at`` (day or after-hours beds)."""
    p, mod = scn.pacu, at - plan.midnight
    return int(p.open_beds(scn.weekday(plan.day)) if p.hours.start <= mod < p.hours.end
               else p.after_hours_beds)


# --- tiles --------------------------------------------------------------------------------------
def risk_level(p_past: float) -> str:
    """``green``, ``amber`` or ``red`` from the probability of running past the staffed end."""
    if p_past >= RED_AT:
        return "red"
    return "amber" if p_past >= AMBER_AT else "green"


@dataclass(frozen=True)
class Tile:
    """One room's tile: a header (room, risk, stale marker) and lines of markdown."""

    room: str
    state: str
    minutes_in_state: float
    p_past: float
    risk: str
    stale: bool
    turnover_minutes: float
    header: str
    lines: tuple[str, ...]

    @property
    def colour(self) -> str:
        """Streamlit colour name of the risk."""
        return RISK_COLOURS[self.risk]

    @property
    def body(self) -> str:
        """The lines as one markdown block."""
        return "  \n".join(self.lines)


def _ok(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _band(a: float, b: float) -> str:
    return f"{max(a, 0):.0f}–{max(b, 0):.0f}"


def room_tiles(nc: Nowcast, typical_turnover: float | None = None) -> list[Tile]:
    """A tile per room of the now-cast, in the scenario's room order."""
    clock, at, tiles = nc.clock, nc.at, []
    for r in nc.rooms.itertuples(index=False):
        since = r.since if _ok(r.since) else math.nan
        mins = at - since if _ok(since) else math.nan
        risk = risk_level(r.p_past_close)
        staffed = _ok(r.close)
        head = f"**{r.room}**"
        head += (f" :{RISK_COLOURS[risk]}-badge[{r.p_past_close:.0%} past {clock(r.close)}]"
                 if staffed else " :gray-badge[no staffed hours]")
        lines = []
        if r.stale:
            head += " :violet-badge[⚠ stale feed]"
            seen = clock(r.last_seen) if _ok(r.last_seen) else "never"
            lines.append(f":violet[**Stale feed**: no live observation since {seen}; state as "
                         "last seen, forecast by the plan]")
        word = STATE_WORDS.get(r.state, r.state)
        turnover = mins if r.state == "turnover" else math.nan
        if r.state == "turnover" and _ok(mins):
            typical = f" (typical {typical_turnover:.0f})" if typical_turnover else ""
            lines.append(f"{TIMER} **Turnover {mins:.0f} min**{typical}")
        else:
            lines.append(f"**{word}**" + (f" {mins:.0f} min" if _ok(mins) else ""))
        if isinstance(r.case_id, str):
            lines.append(f"{r.case_id} · {str(r.procedure).replace('_', ' ')} · {r.surgeon}")
            lines.append(f"in room {r.elapsed:.0f} min, ~{max(r.remaining_p50, 0):.0f} left "
                         f"(P10–P90 {_band(r.remaining_p10, r.remaining_p90)})")
        lines.append(f"next {r.next_case} at {clock(r.next_planned)}"
                     if isinstance(r.next_case, str) else "no more cases")
        if _ok(r.finish_p50):
            lines.append(f"finish {clock(r.finish_p50)} (P10–P90 {clock(r.finish_p10)}–"
                         f"{clock(r.finish_p90)})" + (f", staffed to {clock(r.close)}"
                                                      if staffed else ""))
        tiles.append(Tile(r.room, r.state, mins, float(r.p_past_close), risk, bool(r.stale),
                          turnover, head, tuple(lines)))
    return tiles


def rooms_table(nc: Nowcast) -> pd.DataFrame:
    """The tiles' numbers as a table (times as HH:MM, minutes rounded)."""
    r, c = nc.rooms, nc.clock

    def clk(s: pd.Series) -> list[str]:
        return [c(x) if _ok(x) else "-" for x in s]

    def mins(s: pd.Series) -> pd.Series:
        return s.clip(lower=0).round(0)

    return pd.DataFrame({
        "room": r["room"], "state": r["state"], "stale": r["stale"],
        "case": r["case_id"].fillna("-"), "in room (min)": r["elapsed"].round(0),
        "left P10": mins(r["remaining_p10"]), "left P50": mins(r["remaining_p50"]),
        "left P90": mins(r["remaining_p90"]), "next case": r["next_case"].fillna("-"),
        "next planned": clk(r["next_planned"]), "finish P10": clk(r["finish_p10"]),
        "finish P50": clk(r["finish_p50"]), "finish P90": clk(r["finish_p90"]),
        "staffed to": clk(r["close"]), "P(past staffed end)": r["p_past_close"].round(2),
        "risk": [risk_level(p) for p in r["p_past_close"]]})


def proposals_table(nc: Nowcast) -> pd.DataFrame:
    """The policy's day-of proposals (never applied): the room running long and the words."""
    return pd.DataFrame({"room": nc.proposals["room"], "proposal": nc.proposals["words"]})


def feed_table(nc: Nowcast) -> pd.DataFrame:
    """Observations by outcome (applied, resolved, heartbeat, quarantine categories)."""
    return pd.DataFrame({"outcome": list(nc.feed), "observations": list(nc.feed.values())})


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


@dataclass(frozen=True)
class SuiteSoFar:
    """The suite's day up to the board time."""

    first_cases_due: int
    first_cases_on_time: int
    on_time_share: float
    in_room_min: float
    staffed_min: float
    utilisation: float
    turnovers: int
    turnover_median: float
    pacu_now: int
    pacu_beds: int


def suite_so_far(live: LiveState, windows: dict[str, tuple[float, float]], at: float,
                 scn: Scenario, grace: float = ON_TIME_GRACE_MIN) -> SuiteSoFar:
    """First cases on time, utilisation, turnover and PACU occupancy of the day so far."""
    cases, w = day_cases(live), day_windows(windows, live.plan.date)
    fc = first_cases(cases, at, grace)
    due = fc.loc[fc["on_time"].notna()]
    used = float(in_room_minutes(cases, w, at).sum())
    staffed = float(staffed_minutes(w, at).sum())
    tv = turnovers(cases)
    return SuiteSoFar(
        len(due), int(due["on_time"].sum()),
        float(due["on_time"].mean()) if len(due) else math.nan, used, staffed,
        used / staffed if staffed > 0 else math.nan, len(tv),
        float(tv["minutes"].median()) if len(tv) else math.nan,
        len(base_snapshot(live, at).pacu), pacu_beds(scn, live.plan, at))


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


# --- charts -------------------------------------------------------------------------------------
def pacu_chart(pacu: pd.DataFrame, plan: DayPlan) -> alt.VConcatChart:
    """PACU patients by hour (mean, P90, open beds) above the chance of a hold in an OR."""
    t = pd.Timestamp(plan.date) + pd.to_timedelta(pacu["hour"] - plan.midnight, unit="min")
    series = {"expected (mean)": pacu["occupancy_mean"], "P90": pacu["occupancy_p90"],
              "open beds": pacu["beds"]}
    long = pd.concat([pd.DataFrame({"time": t, "series": k, "patients": v.astype(float)})
                      for k, v in series.items()], ignore_index=True)
    x = alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M"))
    occ = alt.Chart(long, title="PACU patients by hour").mark_line(point=True).encode(
        x=x, y=alt.Y("patients:Q", title="patients in PACU"),
        color=alt.Color("series:N", title=None, scale=alt.Scale(
            domain=list(series), range=["#1f77b4", "#9ecae1", "#d62728"])),
        strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(
            domain=list(series), range=[[1, 0], [4, 3], [2, 2]])),
        tooltip=[alt.Tooltip("time:T", format="%H:%M"), "series:N",
                 alt.Tooltip("patients:Q", format=".1f")],
    ).properties(height=200, width="container")
    hold = alt.Chart(pd.DataFrame({"time": t, "p_hold": pacu["p_hold"].astype(float)})).mark_bar(
        color="#ff7f0e", opacity=0.8).encode(
        x=x, y=alt.Y("p_hold:Q", title="P(hold in OR)", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("time:T", format="%H:%M"), alt.Tooltip("p_hold:Q", format=".2f")],
    ).properties(height=80, width="container")
    return alt.vconcat(occ, hold)


def drill_chart(table: pd.DataFrame, by: str, measure: str, top: int = 20) -> alt.LayerChart:
    """Bars of a drill-down measure (``top`` groups by cases) with its benchmarks as rules."""
    data = table.dropna(subset=[measure])
    if by != "room":
        data = data.nlargest(top, "cases", keep="first")
    data = data[["group", "cases", measure]]
    fmt = ".0%" if measure != "turnover_median" else ".0f"
    dom = [0, 1] if measure != "turnover_median" else [0, max(60.0, float(
        data[measure].max()) if len(data) else 60.0)]
    bars = alt.Chart(data, title=MEASURES[measure]).mark_bar(color="#4c78a8").encode(
        y=alt.Y("group:N", title=by, sort=list(data["group"])),
        x=alt.X(f"{measure}:Q", title=None, scale=alt.Scale(domain=dom),
                axis=alt.Axis(format=fmt)),
        tooltip=["group:N", "cases:Q", alt.Tooltip(f"{measure}:Q", format=fmt.replace("0", "1"))])
    marks = sorted((b for b in BENCHMARKS if b.measure == measure), key=lambda b: b.value)
    height = alt.Step(20)  # a fixed height squeezes the bands of a layered chart
    if not marks:
        return alt.layer(bars).properties(height=height, width="container")
    # labels above the plot, the lowest value's to the left of its rule, the others' to the right
    # (no legend: a legend below the plot collapses the chart's height in Streamlit)
    rd = pd.DataFrame({"value": [b.value for b in marks], "benchmark": [b.label for b in marks],
                       "colour": [b.colour for b in marks], "ypos": -7.0})
    rules = alt.Chart(rd).mark_rule(strokeWidth=2, strokeDash=[5, 3]).encode(
        x="value:Q", color=alt.Color("colour:N", scale=None),
        tooltip=["benchmark:N", alt.Tooltip("value:Q", format=fmt)])
    text = [alt.Chart(rd.iloc[[k]]).mark_text(
        align="right" if k == 0 else "left", dx=-3 if k == 0 else 3, fontSize=10).encode(
        x="value:Q", y=alt.Y("ypos:Q", scale=None), text="benchmark:N",
        color=alt.Color("colour:N", scale=None)) for k in range(len(rd))]
    return alt.layer(bars, rules, *text).properties(height=height, width="container")
