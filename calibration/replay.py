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
from calibration.overlaps import parallel_room_notes
from calibration.replay_scope import WeekDays, fitted_window, overlap_days, week_days
from calibration.schema import HistoryError
from twin.cluster import Executor
from twin.dayplan import with_parallel_rooms
from twin.kpi_registry import KPIS, KpiContext, kpi_def
from twin.runner import run_experiment
from twin.scenario import WEEKDAYS, Scenario

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


def _booked_list(cases: pd.DataFrame, monday: date, scn: Scenario) -> tuple[pd.DataFrame, list[str]]:
    """The week's electives as a booked list (columns of :mod:`twin.booked_list`)."""
    notes = []
    e = cases.loc[~cases["is_addon"].fillna(False).astype(bool)].copy()
    no_room = e["room"] == ""
    if no_room.any():
        notes.append(f"{int(no_room.sum())} cancelled electives without a room left out")
        e = e.loc[~no_room]
    day = (e["date"] - pd.Timestamp(monday)).dt.days
    start = e["booked_start"].fillna(e["in_room"])
    if e["booked_start"].isna().any():
        notes.append(f"{int(e['booked_start'].isna().sum())} electives without a booked start "
                     "booked at their wheels-in time")
    minute = ((start - e["date"]).dt.total_seconds() // 60).clip(lower=0, upper=47 * 60)
    default_class = "outpatient"
    booked = e["booked_minutes"]
    if booked.isna().any():
        med = {p.id: float(p.duration.ppf(0.5)) for s in scn.services for p in s.procedures}
        booked = booked.fillna(e["procedure"].map(med)).fillna(60.0)
        notes.append("electives without booked minutes booked at their procedure's median")
    out = pd.DataFrame({
        "case_id": e["case_id"].to_numpy(), "service": e["service"].to_numpy(),
        "surgeon": e["surgeon"].to_numpy(), "procedure": e["procedure"].to_numpy(),
        "patient_class": e["patient_class"].replace("", default_class).to_numpy(),
        "day": day.to_numpy(int), "room": e["room"].to_numpy(),
        "start": [f"{int(m) // 60:02d}:{int(m) % 60:02d}" for m in minute],
        "booked_minutes": booked.round(1).to_numpy(),
    })
    return out, notes


def week_scenario(scn: Scenario, booked: pd.DataFrame, source: str) -> tuple[Scenario, list[str]]:
    """The scenario a week replays in: 7 days, its own staffed room-days, unseen procedures and
    surgeons added (a new procedure takes its service's most common procedure's duration)."""
    notes: list[str] = parallel_room_notes(booked)
    scn = with_parallel_rooms(scn, booked["room"])  # OR3~2: a second stream charted in OR3
    services = {s.id: s for s in scn.services}
    rooms = {r.id for r in scn.rooms}
    for col, known in (("service", services), ("room", rooms)):
        unknown = sorted(set(booked[col]) - set(known))
        if unknown:
            raise HistoryError(source, col, f"the week uses {col} {unknown[0]!r}, which the "
                               f"scenario does not have (calibrate with a later --as-of?)")
    new_services = []
    for s in scn.services:
        have = {p.id for p in s.procedures}
        unseen = sorted(set(booked.loc[booked["service"] == s.id, "procedure"]) - have)
        if unseen:
            base = max(s.procedures, key=lambda p: p.weight)
            extra = [base.model_copy(update={"id": pid, "weight": 1e-6}) for pid in unseen]
            notes.append(f"{s.id}: {len(unseen)} procedure(s) not seen before the as-of date "
                         f"replayed with {base.id}'s duration")
            s = s.model_copy(update={"procedures": [*s.procedures, *extra]})
        new_services.append(s)
    known_sg = {g.id for g in scn.surgeons}
    new_sg = list(scn.surgeons)
    for sid, svc in sorted(set(zip(booked["surgeon"], booked["service"], strict=True)) - {
            (g.id, g.service) for g in scn.surgeons}):
        if sid in known_sg:
            continue
        new_sg.append(scn.surgeons[0].model_copy(update={"id": sid, "service": svc,
                                                          "block_days": [], "speed": 1.0,
                                                          "durations": {}}))
        notes.append(f"surgeon {sid} not seen before the as-of date added (procedure durations)")
    used = {(r, int(d)) for r, d in zip(booked["room"], booked["day"], strict=True)}
    new_rooms = []
    for r in scn.rooms:
        if r.on_call or r.addon_only:
            new_rooms.append(r)
            continue
        hours = {wd: w for wd, w in r.hours.items() if (r.id, WEEKDAYS.index(wd)) in used}
        for d in range(7):
            if (r.id, d) in used and WEEKDAYS[d] not in hours:
                w = next(iter(r.hours.values()), None)
                if w is not None:
                    hours[WEEKDAYS[d]] = w  # booked on a day it is not usually open
        new_rooms.append(r.model_copy(update={"hours": hours}))
    blocks = {r: {d: b for d, b in days.items()
                  if d in next(x for x in new_rooms if x.id == r).hours}
              for r, days in scn.blocks.items()}
    out = scn.model_copy(update={"horizon_days": 7, "services": new_services,
                                 "surgeons": new_sg, "rooms": new_rooms, "blocks": blocks})
    return out, notes


def replay_week(history: History, monday: date, scn: Scenario, policy: str = "as-booked",
                reps: int = 20, seed: int | None = None, workers: int = 1,
                cluster: str | Executor | None = None) -> ReplayResult:
    """Replay the week starting ``monday`` (see the module docstring)."""
    label = week_label(monday)
    week = history.between(monday, pd.Timestamp(monday) + pd.Timedelta(days=7))
    if week.cases.empty:
        raise HistoryError(history.source, "--week", f"no cases booked in {label}")
    cases = with_surgeons(week.cases, history.recorded)
    booked, notes = _booked_list(cases, monday, scn)
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
