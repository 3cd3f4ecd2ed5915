"""The OR status board's data: room tiles, the suite's day so far, drill-down tables and charts.

The app (``app.py``, page "OR status board") only lays these out. Everything here reads a
:class:`~ortwin.nowcast.Nowcast`, a :class:`~ortwin.live.LiveState` or a case log and returns plain
values, frames or Altair charts.

Drill-downs (milestone frames, measures, benchmarks) are in :mod:`ortwin.drilldown`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ortwin.drilldown import (  # noqa: F401 - the board's public names
    BENCHMARKS,
    CASE_COLUMNS,
    GROUPS,
    MEASURES,
    ON_TIME_GRACE_MIN,
    TURNOVER_MAX_MIN,
    UNRECORDED,
    Benchmark,
    clock_text,
    day_cases,
    day_windows,
    detail_times,
    drill_display,
    drilldown,
    first_cases,
    history_cases,
    in_room_minutes,
    staffed_minutes,
    turnovers,
)
from ortwin.live import LiveConfig, LiveState, live_state
from ortwin.nowcast import Nowcast, base_snapshot
from twin.dayplan import DayPlan
from twin.feed import Feed
from twin.scenario import Scenario
from twin.schema import hhmm

AMBER_AT = 0.2
"""Probability of running past the staffed end from which a room's tile is amber."""
RED_AT = 0.5
"""... and red (the now-cast's own alert threshold)."""
RISK_COLOURS = {"green": "green", "amber": "orange", "red": "red"}
"""Streamlit's colour name of each risk level."""
TIMER = ":material/timer:"
"""The turnover timer's icon (Streamlit's bundled icon font: no emoji font needed)."""
STATE_WORDS = {"idle": "Idle", "setup": "Set-up", "patient_in_room": "Patient in room",
               "procedure": "Procedure", "turnover": "Turnover"}


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
    live.add_unreadable(feed.quarantine)
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

