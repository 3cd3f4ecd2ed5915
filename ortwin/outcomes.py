"""Views of a comparison's results for people: daily overtime and its tail, fairness by
service, a representative day and what happened in it room by room.

Everything here reads the frames a run already produced (one row per replication, per room-day,
per service) except :func:`day_trace`, which re-runs one replication with its event log kept:
runs are pure functions of (scenario, policy, seed, replication), so the re-run is the same
replication, not a new draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ortwin.summary import cvar
from twin.kpi_registry import room_days_from_events
from twin.scenario import Scenario

DAY = 1440

TAIL_COLUMNS = ("scenario", "policy", "n", "mean", "p50", "p90", "p95", "cvar95", "max")
"""Columns of :func:`tail_table`."""


def daily_overtime(room_days: pd.DataFrame) -> pd.DataFrame:
    """Suite overtime per (scenario, policy, rep, day) over the staffed room-days: the sum of
    the rooms' run-over minutes (days no room is staffed are left out)."""
    keys = [k for k in ("scenario", "policy", "rep") if k in room_days.columns] + ["day"]
    if room_days.empty:
        return pd.DataFrame(columns=[*keys, "overtime_minutes", "rooms"])
    out = (room_days.groupby(keys, sort=True)
           .agg(overtime_minutes=("overtime_minutes", "sum"), rooms=("room", "nunique"))
           .reset_index())
    return out


def exceedance(values: pd.Series | np.ndarray, max_points: int | None = None) -> pd.DataFrame:
    """Empirical exceedance curve: for each distinct value ``x``, ``p_exceed`` = share of
    values strictly above ``x`` (a step function falling from below 1 to 0). With
    ``max_points``, only that many distinct values are kept (evenly spaced in rank, the largest
    always), each with its exact ``p_exceed`` — for charts of thousands of replications."""
    v = np.sort(np.asarray(values, dtype=float)[~np.isnan(np.asarray(values, dtype=float))])
    if not len(v):
        return pd.DataFrame({"x": [], "p_exceed": []})
    xs = np.unique(v)
    if max_points is not None and len(xs) > max_points:
        keep = np.unique(np.linspace(0, len(xs) - 1, max_points).round().astype(int))
        xs = xs[keep]
    above = len(v) - np.searchsorted(v, xs, side="right")
    return pd.DataFrame({"x": xs, "p_exceed": above / len(v)})


def exceedance_curves(daily: pd.DataFrame, value: str = "overtime_minutes",
                      max_points: int | None = 500) -> pd.DataFrame:
    """:func:`exceedance` of ``value`` per (scenario, policy), stacked (at most ``max_points``
    points per curve)."""
    parts = []
    for (scn, pol), g in daily.groupby(["scenario", "policy"], sort=False):
        parts.append(exceedance(g[value], max_points).assign(scenario=scn, policy=pol))
    if not parts:
        return pd.DataFrame(columns=["x", "p_exceed", "scenario", "policy"])
    return pd.concat(parts, ignore_index=True)


def tail_table(daily: pd.DataFrame, value: str = "overtime_minutes") -> pd.DataFrame:
    """Mean, P50, P90, P95, CVaR95 (mean of the worst 5%) and max of ``value`` per
    (scenario, policy) — by default the suite's daily overtime."""
    rows = []
    for (scn, pol), g in daily.groupby(["scenario", "policy"], sort=False):
        v = g[value].to_numpy(float)
        p50, p90, p95 = np.percentile(v, (50, 90, 95)) if len(v) else (math.nan,) * 3
        rows.append([scn, pol, len(v), float(v.mean()) if len(v) else math.nan, float(p50),
                     float(p90), float(p95), cvar(v, 0.95, "lower"),
                     float(v.max()) if len(v) else math.nan])
    return pd.DataFrame(rows, columns=list(TAIL_COLUMNS))


FAIRNESS_COLUMNS = ("scenario", "policy", "service", "reps", "cases", "completed",
                    "cancellation_rate", "prime_start_share", "in_room_share", "overtime_share")


def fairness(services: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, policy, service): mean cases and completions per replication, and the
    pooled cancellation rate, share of prime-time starts, share of the suite's in-room time and
    share of its overtime (means over replications)."""
    if services.empty:
        return pd.DataFrame(columns=list(FAIRNESS_COLUMNS))
    g = services.groupby(["scenario", "policy", "service"], sort=False)
    out = g.agg(reps=("rep", "nunique"), cases=("cases", "mean"), completed=("completed", "mean"),
                cancelled=("cancelled", "sum"), total=("cases", "sum"),
                prime_start_share=("prime_start_share", "mean"),
                in_room_share=("in_room_share", "mean"),
                overtime_share=("overtime_share", "mean")).reset_index()
    out["cancellation_rate"] = np.where(out["total"] > 0,
                                        out["cancelled"] / out["total"].where(out["total"] > 0),
                                        np.nan)
    return out[list(FAIRNESS_COLUMNS)]


def representative_day(room_days: pd.DataFrame, policy: str | None = None,
                       scenario: str | None = None) -> tuple[int, int]:
    """The (rep, day) whose suite overtime is nearest the median over every replication's
    weekdays with electives (ties: fewest total minutes from the median utilisation, then the
    lowest rep and day) — a typical day, not a lucky or a disastrous one. ``policy`` and
    ``scenario`` pick the arm (default: the first)."""
    rd = room_days
    if scenario is not None:
        rd = rd[rd["scenario"] == scenario]
    if policy is not None:
        rd = rd[rd["policy"] == policy]
    if rd.empty:
        raise ValueError("no room-days to choose a representative day from")
    first = rd.iloc[0]
    rd = rd[(rd["scenario"] == first["scenario"]) & (rd["policy"] == first["policy"])]
    days = rd.groupby(["rep", "day"], sort=True).agg(
        overtime=("overtime_minutes", "sum"), used=("used_minutes", "sum"),
        staffed=("staffed_minutes", "sum"), rooms=("room", "nunique")).reset_index()
    busiest = days["rooms"].max()
    days = days[days["rooms"] == busiest]  # weekdays: every elective room staffed
    util = days["used"] / days["staffed"].where(days["staffed"] > 0)
    days = days.assign(d_ot=(days["overtime"] - days["overtime"].median()).abs(),
                       d_util=(util - util.median()).abs())
    best = days.sort_values(["d_ot", "d_util", "rep", "day"], kind="stable").iloc[0]
    return int(best["rep"]), int(best["day"])


@dataclass
class DayTrace:
    """One replication's day, room by room: intervals (``room, case_id, service, procedure,
    surgeon, kind, start, end`` with kind ``case``, ``pacu_hold``, ``turnover`` or ``down``),
    PACU occupancy (``time, occupied, capacity``), the plan's explanations (``case_id, room,
    planned_start, why``; empty unless the policy writes them) and the staffed windows."""

    scenario: str
    policy: str
    rep: int
    day: int
    intervals: pd.DataFrame
    pacu: pd.DataFrame
    explanations: pd.DataFrame
    windows: pd.DataFrame


def _pairs(ev: pd.DataFrame, start: str, end: str, key: str) -> pd.DataFrame:
    """Start and end times of intervals opened by ``start`` and closed by ``end``: matched by
    case (``key="case_id"``) or in order within each room (``key="room"``)."""
    cols = ["room", "time"] if key == "room" else [key, "room", "time"]
    a = ev.loc[ev["event"] == start, cols].rename(columns={"time": "start"})
    b = ev.loc[ev["event"] == end, [key, "time"]].rename(columns={"time": "end"})
    if key == "room":
        a = a.assign(k=a.groupby("room").cumcount())
        b = b.assign(k=b.groupby("room").cumcount())
        return a.merge(b, on=["room", "k"]).drop(columns="k")
    return a.merge(b, on=key)


def trace_from_events(events: pd.DataFrame, cases: pd.DataFrame, day: int, scenario: str = "",
                      policy: str = "", rep: int = 0) -> DayTrace:
    """A :class:`DayTrace` of ``day`` from one replication's event log and cases frame: every
    case whose wheels-in falls on the day, the holds and turnovers of those rooms that start on
    the day, and PACU occupancy from the day's opening to two hours past the last wheels-out."""
    lo, hi = day * DAY, (day + 1) * DAY
    ev = events
    inroom = _pairs(ev, "in_room", "out_of_room", "case_id")
    inroom = inroom[(inroom["start"] >= lo) & (inroom["start"] < hi)]
    info = cases.set_index("case_id")[["service", "procedure", "surgeon", "is_addon"]]
    parts = [inroom.join(info, on="case_id").assign(kind="case")]
    held = _pairs(ev, "pacu_requested", "out_of_room", "case_id")
    held = held[held["case_id"].isin(inroom["case_id"]) & (held["end"] > held["start"] + 1e-9)]
    parts.append(held.join(info, on="case_id").assign(kind="pacu_hold"))
    turn = _pairs(ev, "turnover_start", "turnover_end", "room")
    parts.append(turn[(turn["start"] >= lo) & (turn["start"] < hi)].assign(kind="turnover"))
    down = _pairs(ev, "room_down", "room_up", "room")
    parts.append(down[(down["end"] > lo) & (down["start"] < hi)].assign(kind="down"))
    cols = ["room", "case_id", "service", "procedure", "surgeon", "is_addon", "kind", "start",
            "end"]
    intervals = pd.concat([p.reindex(columns=cols) for p in parts if len(p)],
                          ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame(columns=cols)
    intervals = intervals.sort_values(["room", "start", "kind"], kind="stable",
                                      ignore_index=True)
    rd = room_days_from_events(ev).rename(columns={"open": "start", "close": "end"})
    windows = rd[(rd["start"] >= lo) & (rd["start"] < hi)][["room", "start", "end"]]
    last = float(intervals["end"].max()) if len(intervals) else hi
    p = ev[(ev["resource"] == "pacu") & ev["event"].isin(("level", "capacity"))]
    p = p.sort_values("time", kind="stable")
    level = p["value"].where(p["event"] == "level").ffill().fillna(0.0)
    cap = p["value"].where(p["event"] == "capacity").ffill()
    occ = pd.DataFrame({"time": p["time"].to_numpy(float), "occupied": level.to_numpy(float),
                        "capacity": cap.to_numpy(float)})
    t0 = float(windows["start"].min()) if len(windows) else lo
    t1 = max(last + 120.0, t0 + 60.0)
    before = occ[occ["time"] <= t0].tail(1).assign(time=t0)
    occ = pd.concat([before, occ[(occ["time"] > t0) & (occ["time"] <= t1)]], ignore_index=True)
    occ = pd.concat([occ, occ.tail(1).assign(time=t1)], ignore_index=True)
    occ = occ.groupby("time", sort=True).last().reset_index()
    ex = ev[ev["event"] == "plan_explained"]
    ex = ex[ex["case_id"].isin(inroom["case_id"]) | ((ex["value"] >= lo) & (ex["value"] < hi))]
    explanations = pd.DataFrame({"case_id": ex["case_id"].to_numpy(object),
                                 "room": ex["room"].to_numpy(object),
                                 "planned_start": ex["value"].to_numpy(float),
                                 "why": ex["detail"].to_numpy(object)})
    explanations = explanations.drop_duplicates("case_id", keep="last").sort_values(
        ["room", "planned_start"], ignore_index=True)
    return DayTrace(scenario, policy, rep, day, intervals, occ, explanations,
                    windows.reset_index(drop=True))


def day_trace(scn: Scenario, policy: str, seed: int, rep: int, day: int,
              base_dir: Path | None = None) -> DayTrace:
    """Re-run replication ``rep`` of ``scn`` under ``policy`` with its event log and return
    ``day`` of it (the same replication the experiment ran: same seed, same patients)."""
    from ortwin.runner import run_replication

    out = run_replication(scn, policy, seed, rep, keep_events=True, base_dir=base_dir)
    return trace_from_events(out.events, out.cases, day, scn.name, policy, rep)
