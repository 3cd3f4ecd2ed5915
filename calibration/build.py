"""Calibration: a history (up to an as-of date) plus a template scenario -> a scenario the twin
runs directly, with every fit kept for the report.

From the history: rooms, hours, blocks, surgeons, services and procedure mix, weekly elective
demand, durations (per procedure and surgeon x procedure), phases, booking bias, turnover (suite
and per service), first-case lateness, add-on arrivals, cancellation rates and PACU stays, each
only where the history records it. From the length-of-stay file: inpatient (ward) stays. From
the template: staffing pattern (scaled to the rooms), sterile-processing line, wards and ICU,
PACU beds per OR, costs and end-of-day rules. :attr:`Calibration.sources` says which is which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import scenarios
from calibration.cases import with_surgeons
from calibration.fit_durations import MIN_PAIR_N, DurationFits, fit_durations
from calibration.fit_flows import (
    AddonFit,
    GroupFits,
    LatenessFit,
    LosFit,
    fit_addons,
    fit_cancellations,
    fit_first_case,
    fit_inpatient_los,
    fit_no_start_windows,
    fit_pacu,
    fit_turnover,
    read_los_file,
)
from calibration.loader import History
from calibration.schema import HistoryError
from calibration.suite import SuiteFit, fit_suite, median_day, peak_daily_cases
from twin.scenario import PATIENT_CLASSES, Scenario, from_mapping, load_raw
from twin.schema import hhmm

DEFAULT_TEMPLATE = scenarios.path("baseline")
DEFAULT_LOS = Path(__file__).resolve().parent / "data" / "hip_knee_los_spells.csv"
MIN_CASES = 30
"""A history window with fewer cases that ran cannot be calibrated."""


@dataclass
class Calibration:
    """The calibrated scenario (as a mapping and validated) and every fit behind it."""

    scenario: dict[str, Any]
    validated: Scenario
    as_of: date
    first: date
    history: History
    durations: DurationFits
    suite: SuiteFit
    turnover: dict[str, GroupFits] | None
    first_case: LatenessFit | None
    addons: AddonFit | None
    cancellations: pd.DataFrame | None
    pacu: GroupFits | None
    inpatient_los: LosFit | None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _dist(d) -> dict[str, Any]:
    """A distribution as scenario YAML (rounded, defaults left out)."""
    data = d.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["kind"] = d.kind
    out: dict[str, Any] = {"kind": d.kind}
    for k, v in data.items():
        if k == "kind":
            continue
        out[k] = [round(float(x), 2) for x in v] if isinstance(v, list) else round(float(v), 4)
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_") or "x"


def _staff(rooms: list[dict], template: dict) -> dict[str, list[dict]]:
    """Day shift covering every open room plus one float per role, an evening team and a night
    on-call team (the template's roles; counts scaled to this suite)."""
    by_day: dict[str, list[dict]] = {}
    for r in rooms:
        for wd, w in r["hours"].items():
            by_day.setdefault(wd, []).append(w)
    shifts = []
    for wd, ws in by_day.items():
        start = min(int(w["start"][:2]) * 60 + int(w["start"][3:]) for w in ws) - 30
        end = max(int(w["end"][:2]) * 60 + int(w["end"][3:]) for w in ws)
        shifts.append((wd, max(start, 0), end, len(ws) + 1))
    out = {}
    for role in template.get("staff", {}) or ("anaesthesia", "circulating", "scrub"):
        rows = []
        for key in sorted({(s, e, c) for _, s, e, c in shifts}):
            days = [wd for wd, s, e, c in shifts if (s, e, c) == key]
            s, e, c = key
            rows.append({"start": f"{s // 60:02d}:{s % 60:02d}", "end": f"{e // 60:02d}:{e % 60:02d}",
                         "count": c, "days": days})
            ev_s, ev_e = e - 120, min(e + 300, 1440 + 6 * 60)
            rows.append({"start": f"{ev_s // 60:02d}:{ev_s % 60:02d}",
                         "end": f"{ev_e // 60:02d}:{ev_e % 60:02d}", "count": 2, "days": days})
        rows.append({"start": "23:00", "end": "31:00", "count": 1,
                     "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
        out[role] = rows
    return out


def calibrate(history: History, as_of: date | str, template: str | Path = DEFAULT_TEMPLATE,
              los_file: str | Path | None = DEFAULT_LOS, name: str | None = None) -> Calibration:
    """Fit every part of a scenario from the cases booked before ``as_of``."""
    as_of = pd.Timestamp(as_of).date()
    window = history.until(as_of)
    cases = with_surgeons(window.cases, history.recorded)
    ran = cases.loc[cases["in_room"].notna()]
    if len(ran) < MIN_CASES:
        raise HistoryError(history.source, "--as-of", f"only {len(ran)} cases ran before "
                           f"{as_of}; calibration needs at least {MIN_CASES}")
    first = pd.Timestamp(cases["date"].min())
    end = pd.Timestamp(as_of)
    rec = history.recorded
    tpl = load_raw(template)
    sources: dict[str, str] = {}
    notes: list[str] = []

    durations = fit_durations(cases)
    suite = fit_suite(cases, first, end)
    lunch = fit_no_start_windows(cases)
    turnover = fit_turnover(cases, no_start=[(hhmm(w["start"]), hhmm(w["end"])) for w in lunch])
    lateness = fit_first_case(cases)
    addons = fit_addons(cases, first, end, rec)
    cancels = fit_cancellations(cases, rec)
    pacu = fit_pacu(cases, rec)
    los = fit_inpatient_los(read_los_file(los_file)) if los_file else None
    notes += durations.notes

    # --- services and procedures
    cls_known = "patient_class" in rec and (cases["patient_class"] != "").any()
    peak = peak_daily_cases(cases)
    canc_rate = ({r.service: float(r.rate) for r in cancels.itertuples()} if cancels is not None
                 else {})
    services = []
    for svc in sorted(durations_by_service(durations)):
        procs = []
        svc_cases = cases.loc[cases["service"] == svc]
        counts = svc_cases["procedure"].value_counts()
        for pid in sorted(p for p, f in durations.procedures.items() if f.service == svc):
            pf = durations.procedures[pid]
            mix = {"outpatient": 1.0}
            if cls_known:
                vc = svc_cases.loc[(svc_cases["procedure"] == pid) & (svc_cases["patient_class"] != ""),
                                   "patient_class"].value_counts(normalize=True)
                if len(vc):
                    mix = {c: round(float(vc[c]), 3) for c in PATIENT_CLASSES if c in vc}
            procs.append({"id": pid, "weight": int(counts.get(pid, pf.n)),
                          "duration": _dist(pf.dist), "patient_class": mix,
                          "trays": [f"{_slug(svc)}_set"]})
        entry: dict[str, Any] = {"id": svc,
                                 "electives_per_week": suite.electives_per_week.get(svc, 0.0),
                                 "cancellation_rate": round(canc_rate.get(svc, 0.0), 4),
                                 "procedures": procs}
        if turnover and svc in turnover["service"].groups:
            entry["turnover"] = _dist(turnover["service"].groups[svc].best.dist)
        services.append(entry)
    sources["durations"] = "history (in-room minutes per procedure; surgeon x procedure shrunk)"
    sources["patient_class"] = "history" if cls_known else "not recorded: every case outpatient"
    if not cls_known:
        notes.append("patient class not recorded: every procedure is taken as outpatient")
    sources["cancellation_rate"] = "history" if cancels is not None else \
        "not recorded: 0 (the log lists only cases that ran)"
    if cancels is None:
        notes.append("cancellations not recorded: rates set to 0, as in the log")

    # --- surgeons (own durations where the pair has data)
    pairs: dict[str, dict[str, Any]] = {}
    for pf in durations.pairs:
        if pf.n >= MIN_PAIR_N:
            pairs.setdefault(pf.surgeon, {})[pf.procedure] = {
                "kind": "lognormal", "median": round(pf.median, 2), "sigma": round(pf.sigma, 4)}
    svc_ids = {s["id"] for s in services}
    surgeons = []
    for s in suite.surgeons:
        if s["service"] not in svc_ids:
            continue
        own = {p: d for p, d in pairs.get(s["id"], {}).items()
               if durations.procedures.get(p) and durations.procedures[p].service == s["service"]}
        speed = round(durations.speeds.get(s["id"], 1.0), 3) if "surgeon" in rec else 1.0
        surgeons.append({**s, "speed": speed, **({"durations": own} if own else {})})
    sources["surgeons"] = "history" if "surgeon" in rec else \
        "not recorded: one team per service and concurrent room (<service>-team-<k>)"

    # --- the rest, from history where recorded, else the template
    scn: dict[str, Any] = {k: v for k, v in tpl.items() if k not in ("name", "description")}
    n_rooms = len(suite.rooms)
    tpl_rooms = max(len(tpl.get("rooms", [])), 1)
    scale = n_rooms / tpl_rooms
    scn.update({
        "name": name or f"calibrated-{as_of.isoformat()}",
        "description": (f"Calibrated from {Path(history.source).name}, cases booked "
                        f"{first.date()} to {as_of} (exclusive); see the fit report."),
        "horizon_days": 7,
        "rooms": suite.rooms, "blocks": suite.blocks, "surgeons": surgeons, "services": services,
        "staff": _staff(suite.rooms, tpl),
    })
    if durations.booking:
        b = dict(tpl.get("booking", {}))
        b.update({k: durations.booking[k] for k in ("estimate_bias", "estimate_correlation",
                                                   "estimate_noise", "round_to")})
        b.pop("booked_list", None)
        scn["booking"] = b
    if durations.phases:
        scn["phases"] = {k: _dist(v.best.dist) for k, v in durations.phases.items()}
    if turnover:
        scn["turnover"] = _dist(turnover["room"].pooled.best.dist)
    if lateness:
        scn["first_case_delay"] = _dist(lateness.dist)
    sources["turnover"] = "history" if turnover else "template"
    sources["first_case_delay"] = "history" if lateness else "template"
    if addons is not None:
        scn["addons"] = {"per_day": round(addons.per_day, 3), "hourly_profile": addons.hourly_profile,
                         "weekday_factor": addons.weekday_factor,
                         "priority": addons.priority or {"urgent": 0.7, "emergent": 0.3},
                         "services": {k: v for k, v in addons.services.items() if k in svc_ids}}
        sources["addons"] = f"history (arrivals from {addons.arrival_source})"
    else:
        scn["addons"] = {"per_day": 0}
        sources["addons"] = "not recorded: no add-ons (the log has no add-on flag)"
        notes.append("add-ons not recorded: the calibrated suite has none")
    pacu_t = dict(tpl["pacu"])
    pacu_t["beds"] = max(1, round(pacu_t.get("beds", 0) * scale))
    pacu_t["after_hours_beds"] = max(1, round(pacu_t.get("after_hours_beds", 0) * scale))
    if pacu is not None:
        los_by = dict(pacu_t.get("los", {}))
        for c in PATIENT_CLASSES:
            los_by[c] = _dist((pacu.groups.get(c) or pacu.pooled).best.dist)
        pacu_t["los"] = los_by
        sources["pacu_los"] = "history"
    else:
        sources["pacu_los"] = "template (PACU times not recorded)"
    scn["pacu"] = pacu_t
    beds = {k: dict(v) for k, v in tpl["beds"].items()}
    for unit in beds.values():
        unit["capacity"] = max(1, round(unit["capacity"] * scale))
    if los is not None:
        beds["ward"]["surgical_los_days"] = _dist(los.pooled.best.dist)
        sources["inpatient_los"] = f"{Path(str(los_file)).name} (stays of half a day or more)"
    scn["beds"] = beds
    spd = dict(tpl.get("spd", {}))
    spd["inventory"] = {f"{_slug(s)}_set": max(2, math.ceil(peak.get(s, 1) / 2) + 1) for s in svc_ids}
    spd["outages"] = []
    scn["spd"] = spd
    start, end_ = median_day(suite.rooms)
    scn["kpi"] = {**tpl.get("kpi", {}), "prime_time": {"start": start, "end": end_}}
    scn["random_downtime"] = tpl.get("random_downtime", {})
    eod = dict(tpl.get("end_of_day", {}))
    late = latest_start_after_close(ran, suite.rooms)
    if late is not None:
        eod["latest_start_after_close_minutes"] = max(
            late, int(eod.get("latest_start_after_close_minutes", 0)))
        sources["end_of_day"] = (f"template; latest elective start after close raised to the "
                                 f"history's ({late} min)")
    scn["end_of_day"] = eod
    if lunch:
        scn["no_start_windows"] = [{"start": w["start"], "end": w["end"]} for w in lunch]
        sources["no_start_windows"] = "history: " + "; ".join(
            f"no elective went in {w['start']}-{w['end']} ({w['seen']} seen, {w['expected']:g} "
            f"expected; {w['held']} ready cases waited for its end)" for w in lunch)
    scn["stress"] = {}
    sources.update({"staff": "template pattern scaled to the rooms' hours",
                    "spd": "template line; one tray set per service sized from peak daily cases",
                    "beds": "template, scaled by rooms", "costs": "template"})
    validated = from_mapping(scn, f"<calibrated from {history.source}>")
    return Calibration(scn, validated, as_of, first.date(), window, durations, suite, turnover,
                       lateness, addons, cancels, pacu, los, sources, notes)


def latest_start_after_close(ran: pd.DataFrame, rooms: list[dict]) -> int | None:
    """How late after its room's close an elective still went in (P99, rounded up to 15 min);
    None when none started after close."""
    close = {(r["id"], wd): int(w["end"][:2]) * 60 + int(w["end"][3:])
             for r in rooms for wd, w in r["hours"].items()}
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    e = ran.loc[~ran["is_addon"].fillna(False).astype(bool)]
    minute = (e["in_room"] - e["date"]).dt.total_seconds() / 60
    c = [close.get((r, names[d.weekday()])) for r, d in zip(e["room"], e["date"], strict=True)]
    late = minute.to_numpy(float) - np.array([np.nan if x is None else x for x in c], float)
    late = late[np.isfinite(late) & (late > 0)]
    if not len(late):
        return None
    return int(15 * math.ceil(float(np.percentile(late, 99)) / 15))


def durations_by_service(d: DurationFits) -> set[str]:
    """Services that have at least one fitted procedure."""
    return {p.service for p in d.procedures.values()}


__all__ = ["DEFAULT_LOS", "DEFAULT_TEMPLATE", "Calibration", "calibrate"]
