"""Replay of a historical week: its actual bookings through the calibrated twin, simulated KPI
distributions beside the KPIs the week actually had.

The week's electives (cancelled ones too) become the twin's booked list: their rooms, days,
booked starts and booked minutes, as booked. Outcomes (durations, lateness, turnover,
cancellations, add-ons) come from the scenario's calibrated distributions, ``reps`` times. The
actual KPIs are computed by the same KPI module from the history rows
(:mod:`calibration.actuals`), against the same staffed room-days: a room is staffed on a day of
the replayed week only if the week booked electives into it that day (rooms marked on-call or
add-on-only keep their hours). A KPI whose actual value the history cannot give (not recorded)
is shown but not counted; policy-internal KPIs and costs (prices of other KPIs) are left out.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.actuals import actual_kpis
from calibration.cases import week_label, with_surgeons
from calibration.loader import History
from calibration.replay_scope import WeekDays, fitted_window, overlap_days, week_days
from calibration.replay_week import booked_list_of_week, week_scenario
from calibration.schema import HistoryError
from ortwin.cluster import Executor
from ortwin.experiment import run_experiment
from twin.kpi_registry import KPIS, KpiContext, kpi_def
from twin.scenario import Scenario

EXCLUDED = ("plan_fallbacks", "rule_violations", "rule_overrides", "cost_idle", "cost_overtime",
            "cost_total", "out_of_hours_minutes")
"""KPIs a replay never scores: policy bookkeeping, and sums or prices of other KPIs."""
REPLAY_KPIS: tuple[str, ...] = tuple(k for k in KPIS if k not in EXCLUDED)


@dataclass
class ReplayResult:
    """One week's replay: a row per KPI and what had to be adapted."""

    week: str
    policy: str
    reps: int
    table: pd.DataFrame       # kpi, label, unit, actual, p5, p50, p95, inside (NaN: not scored)
    booked: int
    notes: list[str] = field(default_factory=list)
    days: WeekDays | None = None                   # distinct and unseen days it scores
    overlap: list[date] = field(default_factory=list)  # its days inside the fitting window

    @property
    def scored(self) -> pd.DataFrame:
        """The rows whose actual value the history gives."""
        return self.table.loc[self.table["inside"].notna()]

    @property
    def coverage(self) -> float:
        """Share of scored KPIs whose actual value lies in the simulated P5-P95 interval."""
        s = self.scored
        return float(s["inside"].astype(bool).mean()) if len(s) else math.nan


def replay_week(history: History, monday: date, scn: Scenario, policy: str = "as-booked",
                reps: int = 20, seed: int | None = None, workers: int = 1,
                cluster: str | Executor | None = None) -> ReplayResult:
    """Replay the week starting ``monday`` (see the module docstring)."""
    label = week_label(monday)
    week = history.between(monday, pd.Timestamp(monday) + pd.Timedelta(days=7))
    if week.cases.empty:
        raise HistoryError(history.source, "--week", f"no cases booked in {label}")
    cases = with_surgeons(week.cases, history.recorded)
    booked, notes = booked_list_of_week(cases, monday, scn)
    if booked.empty:
        raise HistoryError(history.source, "--week", f"no electives booked in {label}")
    replay_scn, more = week_scenario(scn, booked, history.source)
    notes += more
    week_hist = History(cases, history.quarantine, history.recorded, history.source,
                        history.rows_read)
    with tempfile.TemporaryDirectory(prefix="ortwin-replay-") as tmp:
        path = Path(tmp) / "booked.csv"
        booked.to_csv(path, index=False)
        run_scn = replay_scn.model_copy(update={
            "booking": replay_scn.booking.model_copy(update={"booked_list": str(path)}),
            "name": f"{scn.name}@{label}"})
        ctx = KpiContext.from_scenario(run_scn)
        actual = actual_kpis(week_hist, monday, ctx)
        res = run_experiment(run_scn, policy, reps, seed=seed, workers=workers, keep_events=False,
                             cluster=cluster, detail=False)
    reps_df = res.replications
    rows = []
    for k in REPLAY_KPIS:
        sim = reps_df[k].to_numpy(float) if k in reps_df else np.full(1, np.nan)
        sim = sim[~np.isnan(sim)]
        a = actual.get(k, math.nan)
        if len(sim):
            p5, p50, p95 = (float(np.percentile(sim, q)) for q in (5, 50, 95))
        else:
            p5 = p50 = p95 = math.nan
        scored = not (math.isnan(a) or math.isnan(p5))
        tol = 1e-9 * max(1.0, abs(a)) if scored else 0.0
        inside = (p5 - tol <= a <= p95 + tol) if scored else math.nan
        d = kpi_def(k)
        rows.append({"kpi": k, "label": d.label, "unit": d.unit, "actual": a, "p5": p5,
                     "p50": p50, "p95": p95, "inside": inside})
    window = fitted_window(scn)
    return ReplayResult(label, policy, reps, pd.DataFrame(rows), len(booked), notes,
                        week_days(history, monday, window[1] if window else None),
                        overlap_days(monday, window))


COUNT_UNITS = ("cases", "beds", "days", "events")
"""Units of KPIs that count things: printed without decimals."""
DASH = "\u2014"


def _fmt(x: float, unit: str) -> str:
    """A table cell: a count as a whole number (one decimal for a fractional percentile)."""
    if isinstance(x, float) and math.isnan(x):
        return DASH
    if unit in COUNT_UNITS:
        return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.1f}"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:,.0f}"


def format_replay(r: ReplayResult) -> str:
    """The replay table as aligned text, with the coverage and days-scored lines."""
    head = ("KPI", "actual", "P5", "P50", "P95", "inside")
    body = []
    for row in r.table.itertuples(index=False):
        unscored = isinstance(row.inside, float) and math.isnan(row.inside)
        sim = (DASH,) * 3 if unscored else tuple(_fmt(x, row.unit) for x in (row.p5, row.p50, row.p95))
        body.append((row.label, _fmt(row.actual, row.unit), *sim,
                     "not recorded" if unscored else ("yes" if row.inside else "NO")))
    w = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = [f"replay {r.week}: {r.booked} booked electives, policy {r.policy}, {r.reps} reps"]
    lines.append("  ".join(h.ljust(w[i]) if i == 0 else h.rjust(w[i]) for i, h in enumerate(head)))
    for b in body:
        lines.append("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(b)))
    s = r.scored
    lines.append(f"coverage: {int(s['inside'].astype(bool).sum())} of {len(s)} KPIs inside the "
                 f"simulated 90% interval ({r.coverage:.0%})")
    if r.days is not None:
        d = r.days
        lines.append(f"days: {len(d.days)} with cases, {d.distinct} distinct, {len(d.unseen)} "
                     f"distinct and not seen in fitting ({'unseen' if d.is_unseen else 'seen'} week)")
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


__all__ = ["COUNT_UNITS", "EXCLUDED", "REPLAY_KPIS", "ReplayResult", "format_replay", "replay_week",
           "week_scenario"]
