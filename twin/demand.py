"""The week's cases: everything random about patients is drawn here, before any policy acts.

:func:`draw_week` samples one replication's demand from the scenario's named streams — electives
from each service's case mix (or a booked list), add-ons from a time-varying Poisson process —
with each case's hidden truth (durations, cancellation, turnover, lengths of stay, tray cycle
uniforms). It then books electives into blocks the way a booking office does. Policies see
:class:`Case` (what is known at booking); only the model sees :class:`Truth`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from twin.scenario import PATIENT_CLASSES, WEEKDAYS, Scenario
from twin.streams import Streams

PRIORITY_RANK = {"emergent": 0, "urgent": 1, "elective": 2}


@dataclass
class Case:
    """What is known about a case when it is booked (all a policy may see)."""

    id: str
    service: str
    surgeon: str
    procedure: str
    patient_class: str
    priority: str
    capability: str
    trays: tuple[str, ...]
    crew: dict[str, int]
    booked_minutes: float
    is_addon: bool = False
    arrival: float = math.nan
    booked_day: int = -1
    booked_room: str = ""
    booked_start: float = math.nan


@dataclass
class Truth:
    """A case's sampled outcome, hidden from policies."""

    duration: float  # in-room minutes, wheels-in to wheels-out (before PACU hold)
    pre: float
    post: float
    turnover: float
    cancel: bool
    pacu_los: float
    ward_los: float  # minutes in the inpatient bed (0 for outpatients)
    discharge_u: float
    spd_times: tuple[tuple[float, ...], ...]  # per tray: minutes of each reprocessing stage
    transport: float  # minutes to carry the case's used trays to sterile processing
    u_duration: float = 0.5  # the uniform behind ``duration`` (for residual-life restarts)


@dataclass
class Week:
    """One replication's realised demand and exogenous events."""

    cases: dict[str, Case]
    truth: dict[str, Truth]
    first_case_delay: dict[tuple[str, int], float]  # (room, day) -> minutes late
    random_downtime: list[tuple[str, float, float]]  # (room, start, end) absolute minutes
    background: dict[str, list[tuple[float, float]]]  # unit -> (admit, discharge) absolute
    unbooked: list[str] = field(default_factory=list)


def _choice(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn by inverse transform from unnormalised ``weights``."""
    cdf = np.cumsum(weights) / np.sum(weights)
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1)


@functools.lru_cache(maxsize=64)
def _profile_cdf(profile: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(profile, dtype=float) / sum(profile)
    return np.cumsum(p), p


def discharge_time(start: float, los_min: float, profile: list[float], u: float) -> float:
    """Discharge on the day ``start + los`` falls on, at an hour drawn from ``profile``."""
    day = math.floor((start + los_min) / 1440)
    cdf, p = _profile_cdf(tuple(profile))
    h = int(min(np.searchsorted(cdf, u, side="right"), 23))
    frac = (u - (cdf[h - 1] if h else 0.0)) / max(p[h], 1e-12)
    t = day * 1440 + (h + min(max(frac, 0.0), 0.999)) * 60
    return t if t > start + 60 else t + 1440


def _by_group(keys: list, u: np.ndarray, sample) -> np.ndarray:
    """``sample(key, u[idx])`` evaluated once per distinct key, vectorised over its cases."""
    out = np.empty(len(keys))
    groups: dict[int, tuple[object, list[int]]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(id(k), (k, []))[1].append(i)
    for k, idx in groups.values():
        out[idx] = sample(k, u[idx])
    return out


def _duration(proc, surgeon):
    """The distribution of a surgeon's in-room minutes for a procedure (before speed)."""
    return surgeon.durations.get(proc.id, proc.duration)


def median_minutes(proc, surgeon) -> float:
    """Median in-room minutes of a procedure by a surgeon (what a booking office plans from)."""
    d = surgeon.durations.get(proc.id)
    return float(d.ppf(0.5)) if d is not None else float(proc.duration.ppf(0.5)) * surgeon.speed


def _truths(scn: Scenario, streams: Streams, key: str, procs: list, classes: list[str],
            surgeons: list, n: int, services: list[str]) -> tuple[list[Truth], np.ndarray]:
    """Sample the hidden outcomes of ``n`` cases of one service (or of the add-on stream)."""
    u = truth_uniforms(streams, key, n, sum(len(p.trays) for p in procs))
    rate = 0.0 if key == "addons" else min(
        scn.service(key).cancellation_rate * scn.stress.cancellation_factor, 1.0)
    return truths_from_uniforms(scn, u, procs, classes, surgeons, services, np.full(n, rate))


TRUTH_SOURCES: tuple[str, ...] = ("durations", "phases", "turnover", "cancellations", "pacu_los",
                                  "inpatient_los", "spd_cycles")
"""The random sources behind a case's hidden outcomes (one stream each)."""


def truth_uniforms(streams: Streams, key: str, n: int, ntrays: int) -> dict[str, np.ndarray]:
    """The uniforms behind ``n`` cases' outcomes, one array per source of :data:`TRUTH_SOURCES`
    (``phases`` and ``inpatient_los`` have two columns; ``spd_cycles`` one row per tray)."""
    return {
        "durations": streams.rng("durations", key).random(n),
        "phases": streams.rng("phases", key).random((n, 2)),
        "turnover": streams.rng("turnover", key).random(n),
        "cancellations": streams.rng("cancellations", key).random(n),
        "pacu_los": streams.rng("pacu_los", key).random(n),
        "inpatient_los": streams.rng("inpatient_los", key).random((n, 2)),
        "spd_cycles": streams.rng("spd_cycles", key).random(ntrays),
    }


def truths_from_uniforms(scn: Scenario, u: dict[str, np.ndarray], procs: list, classes: list[str],
                         surgeons: list, services: list[str],
                         cancel_rate: np.ndarray) -> tuple[list[Truth], np.ndarray]:
    """Cases' hidden outcomes from their uniforms (:func:`truth_uniforms`), vectorised over
    cases; also returns the natural (unstressed) durations."""
    st = scn.stress
    u_dur, u_ph, u_turn, u_can = u["durations"], u["phases"], u["turnover"], u["cancellations"]
    u_pacu, u_los, u_spd = u["pacu_los"], u["inpatient_los"], u["spd_cycles"]
    n = len(u_dur)
    ntrays = [len(p.trays) for p in procs]

    natural = _by_group([_duration(p, sg) for p, sg in zip(procs, surgeons, strict=True)], u_dur,
                        lambda d, u: d.ppf(u))
    natural *= np.array([1.0 if p.id in sg.durations else sg.speed
                         for p, sg in zip(procs, surgeons, strict=True)])
    dur = np.maximum(natural * st.duration_factor, 5.0)
    pre, post = scn.phases.pre.ppf(u_ph[:, 0]), scn.phases.post.ppf(u_ph[:, 1])
    both = pre + post
    shrink = np.where(both > 0.7 * dur, 0.7 * dur / np.maximum(both, 1e-12), 1.0)
    pre, post = pre * shrink, post * shrink
    turn = [scn.service(p_svc).turnover or scn.turnover for p_svc in services]
    turnover = _by_group(turn, u_turn, lambda d, u: d.ppf(u)) * st.turnover_factor
    cancel = u_can < cancel_rate
    los = scn.pacu.los
    pacu = _by_group(classes, u_pacu, lambda c, u: los[c].ppf(u) if c in los else np.full(len(u), 60.0))
    units = {"icu": scn.beds.icu, "inpatient": scn.beds.ward}
    ward = _by_group(classes, u_los[:, 0], lambda c, u: (
        np.maximum(units[c].surgical_los_days.ppf(u) * 1440, 240.0) if c in units else np.zeros(len(u))))
    stages = scn.spd.stages
    cycles = np.column_stack([s.cycle.ppf(u_spd) for s in stages]) if stages and len(u_spd) else \
        np.zeros((len(u_spd), len(stages)))
    starts = np.concatenate([[0], np.cumsum(ntrays)])
    first = np.minimum(starts[:-1], max(len(u_spd) - 1, 0))  # a case's first tray
    transport = scn.spd.transport.ppf(u_spd[first]) if len(u_spd) else np.zeros(n)
    out = []
    for i in range(n):
        a, b = starts[i], starts[i + 1]
        out.append(Truth(
            duration=float(dur[i]), pre=float(pre[i]), post=float(post[i]),
            turnover=float(turnover[i]), cancel=bool(cancel[i]), pacu_los=float(pacu[i]),
            ward_los=float(ward[i]), discharge_u=float(u_los[i, 1]),
            spd_times=tuple(tuple(row) for row in cycles[a:b].tolist()),
            transport=float(transport[i]) if b > a else 0.0,
            u_duration=float(u_dur[i]),
        ))
    return out, natural


def booked_minutes(scn: Scenario, natural: float, median: float, z: float = 0.0) -> float:
    """A surgeon's estimate: biased, partly informed by the true duration, with its own
    log-normal error (``z`` standard normal, scaled by ``estimate_noise``), rounded."""
    b = scn.booking
    est = b.estimate_bias * natural**b.estimate_correlation * median ** (1 - b.estimate_correlation)
    if b.estimate_noise > 0:
        est *= math.exp(b.estimate_noise * z)
    return float(max(b.round_to, round(est / b.round_to) * b.round_to))


def booking_errors(scn: Scenario, streams: Streams, key: str, n: int) -> np.ndarray:
    """Standard-normal errors of ``n`` estimates (own stream; none drawn without noise, so a
    noise-free scenario's draws are unchanged)."""
    if scn.booking.estimate_noise <= 0:
        return np.zeros(n)
    return special.ndtri(streams.rng("booking_error", key).random(n))


def _electives(scn: Scenario, streams: Streams, week: Week) -> list[tuple[float, str]]:
    """Generate each service's electives; returns (booking order key, case id)."""
    order: list[tuple[float, str]] = []
    weeks = scn.horizon_days / 7.0
    for svc in scn.services:
        n = int(streams.rng("elective_demand", svc.id).poisson(svc.electives_per_week * weeks))
        if n == 0:
            continue
        surgeons = [s for s in scn.surgeons if s.service == svc.id]
        mix = streams.rng("case_mix", svc.id).random((n, 3))
        pidx = _choice(np.array([p.weight for p in svc.procedures]), mix[:, 0])
        sidx = np.minimum((mix[:, 1] * len(surgeons)).astype(int), len(surgeons) - 1)
        procs = [svc.procedures[i] for i in pidx]
        sgs = [surgeons[i] for i in sidx]
        classes = []
        for i, p in enumerate(procs):
            names = [c for c in PATIENT_CLASSES if p.patient_class.get(c, 0) > 0]
            w = np.array([p.patient_class[c] for c in names])
            classes.append(names[int(_choice(w, np.array([mix[i, 2]]))[0])])
        truths, natural = _truths(scn, streams, svc.id, procs, classes, sgs, n, [svc.id] * n)
        lead = streams.rng("booking", svc.id).random(n)
        z = booking_errors(scn, streams, svc.id, n)
        for i in range(n):
            cid = f"{svc.id}-{i + 1:04d}"
            p = procs[i]
            med = median_minutes(p, sgs[i])
            week.cases[cid] = Case(
                id=cid, service=svc.id, surgeon=sgs[i].id, procedure=p.id,
                patient_class=classes[i], priority="elective",
                capability=p.capability or svc.id, trays=tuple(p.trays), crew=dict(p.crew),
                booked_minutes=booked_minutes(scn, natural[i], med, z[i]),
            )
            week.truth[cid] = truths[i]
            order.append((float(lead[i]), cid))
    return order


def _addons(scn: Scenario, streams: Streams, week: Week) -> None:
    """Add-ons by a non-homogeneous Poisson process (time rescaling of a unit-rate process)."""
    a = scn.addons
    if a.per_day <= 0 or scn.stress.addon_factor <= 0:
        return
    prof = np.asarray(a.hourly_profile, float) / sum(a.hourly_profile)
    rates = np.concatenate([
        a.per_day * scn.stress.addon_factor * a.weekday_factor.get(scn.weekday(d), 1.0) * prof
        for d in range(scn.horizon_days)
    ])  # expected arrivals in each hour
    cum = np.concatenate([[0.0], np.cumsum(rates)])
    rng = streams.rng("addon_arrivals")
    times: list[float] = []
    s = rng.exponential()
    while s < cum[-1]:
        h = int(np.searchsorted(cum, s, side="right") - 1)
        times.append((h + (s - cum[h]) / rates[h]) * 60.0)
        s += rng.exponential()
    n = len(times)
    if n == 0:
        return
    svc_ids = list(a.services) or [s.id for s in scn.services]
    svc_w = np.array([a.services.get(s, 1.0) for s in svc_ids]) if a.services else np.ones(len(svc_ids))
    mix = streams.rng("addon_mix").random((n, 4))
    prios = list(a.priority)
    pr_idx = _choice(np.array([a.priority[p] for p in prios]), mix[:, 0])
    s_idx = _choice(svc_w, mix[:, 1])
    procs, classes, sgs, svcs = [], [], [], []
    for i in range(n):
        svc = scn.service(svc_ids[s_idx[i]])
        p = svc.procedures[int(_choice(np.array([q.weight for q in svc.procedures]), mix[i:i + 1, 2])[0])]
        names = [c for c in PATIENT_CLASSES if p.patient_class.get(c, 0) > 0]
        w = np.array([p.patient_class[c] for c in names])
        cls = names[int(_choice(w, mix[i:i + 1, 3])[0])]
        cls = "inpatient" if cls == "outpatient" else cls  # add-ons are admitted
        procs.append(p), classes.append(cls), svcs.append(svc)
        sgs.append(on_call_surgeon(scn, svc.id, int(times[i] // 1440)))
    truths, natural = _truths(scn, streams, "addons", procs, classes, sgs, n,
                              [sv.id for sv in svcs])
    z = booking_errors(scn, streams, "addons", n)
    for i in range(n):
        cid = f"addon-{i + 1:04d}"
        p = procs[i]
        med = median_minutes(p, sgs[i])
        week.cases[cid] = Case(
            id=cid, service=svcs[i].id, surgeon=sgs[i].id, procedure=p.id,
            patient_class=classes[i], priority=prios[pr_idx[i]],
            capability=p.capability or svcs[i].id, trays=tuple(p.trays), crew=dict(p.crew),
            booked_minutes=booked_minutes(scn, natural[i], med, z[i]), is_addon=True, arrival=times[i],
            booked_day=int(times[i] // 1440),
        )
        week.truth[cid] = truths[i]


def on_call_surgeon(scn: Scenario, service: str, day: int):
    """The service's on-call surgeon on ``day``: a rota over its surgeons who have no elective
    block that weekday (all its surgeons if every one has)."""
    team = sorted((s for s in scn.surgeons if s.service == service), key=lambda s: s.id)
    free = [s for s in team if scn.weekday(day) not in s.block_days] or team
    return free[day % len(free)]


def _exogenous(scn: Scenario, streams: Streams, week: Week) -> None:
    """First-case delays per room-day, random room failures, background ward patients."""
    H = scn.horizon_days
    for room in scn.rooms:
        u = streams.rng("first_case_delay", room.id).random(H)
        delays = scn.first_case_delay.ppf(u) * scn.stress.first_case_delay_factor
        for d in range(H):
            week.first_case_delay[(room.id, d)] = float(delays[d])
        rd = scn.random_downtime
        if rd.rate_per_day > 0 and rd.duration is not None:
            r = streams.rng("random_downtime", room.id)
            for d in range(H):
                w = room.hours.get(scn.weekday(d))  # type: ignore[call-overload]
                k = int(r.poisson(rd.rate_per_day))
                us = r.random((k, 2))
                if w is None or k == 0:
                    continue
                starts = d * 1440 + w.start + us[:, 0] * w.minutes
                ends = starts + rd.duration.ppf(us[:, 1])
                week.random_downtime.extend((room.id, float(a), float(b))
                                            for a, b in zip(starts, ends, strict=True))
    background_beds(scn, streams, week)


def background_beds(scn: Scenario, streams: Streams, week: Week) -> None:
    """Other services' patients in ward and ICU beds: those in bed at time 0 and later
    admissions keeping the census at its baseline (Little's law), into ``week.background``."""
    H = scn.horizon_days
    surgical = surgical_census(scn)
    for name, unit in (("ward", scn.beds.ward), ("icu", scn.beds.icu)):
        r = streams.rng("background_beds", name)
        occupied = int(round(unit.baseline_occupancy * unit.capacity))
        mean_los = unit.background_los_days.mean * 1440
        # patients already in bed: a uniform share of their stay has passed
        u0 = r.random((occupied, 3))
        los0 = unit.background_los_days.ppf(u0[:, 0]) * 1440
        start0 = -u0[:, 1] * los0
        # Little's law, L = lambda W: other admissions keep the census at baseline together
        # with the suite's own expected inpatients
        other = max(occupied - surgical[name], 0.0)
        rate = other / mean_los if mean_los > 0 else 0.0
        arrivals: list[float] = []
        t = r.exponential(1 / rate) if rate > 0 else math.inf
        while t < H * 1440:
            arrivals.append(t)
            t += r.exponential(1 / rate)
        u1 = r.random((len(arrivals), 2))
        starts = np.concatenate([start0, arrivals])
        los = np.concatenate([los0, unit.background_los_days.ppf(u1[:, 0]) * 1440])
        us = np.concatenate([u0[:, 2], u1[:, 1]])
        week.background[name] = [
            (float(a), discharge_time(float(a), float(b), unit.discharge_profile, float(c)))
            for a, b, c in zip(starts, los, us, strict=True)
        ]


def surgical_census(scn: Scenario) -> dict[str, float]:
    """Expected beds held by the suite's own patients in steady state (Little's law)."""
    per_day = {"ward": 0.0, "icu": 0.0}
    for svc in scn.services:
        done = svc.electives_per_week / 7 * (1 - min(svc.cancellation_rate * scn.stress.cancellation_factor, 1))
        total_w = sum(p.weight for p in svc.procedures)
        for p in svc.procedures:
            cls_w = sum(p.patient_class.values())
            for cls, w in p.patient_class.items():
                if cls != "outpatient":
                    per_day["icu" if cls == "icu" else "ward"] += done * p.weight / total_w * w / cls_w
    a = scn.addons
    if a.per_day > 0:
        ids = list(a.services) or [s.id for s in scn.services]
        sw = {s: (a.services.get(s, 1.0) if a.services else 1.0) for s in ids}
        rate = a.per_day * scn.stress.addon_factor
        for sid, w in sw.items():
            svc = scn.service(sid)
            total_w = sum(p.weight for p in svc.procedures)
            for p in svc.procedures:
                icu = p.patient_class.get("icu", 0) / sum(p.patient_class.values())
                share = rate * w / sum(sw.values()) * p.weight / total_w
                per_day["icu"] += share * icu
                per_day["ward"] += share * (1 - icu)
    return {
        "ward": per_day["ward"] * scn.beds.ward.surgical_los_days.mean,
        "icu": per_day["icu"] * scn.beds.icu.surgical_los_days.mean,
    }


def draw_week(scn: Scenario, streams: Streams, base_dir: Path | None = None,
              booked: pd.DataFrame | None = None) -> Week:
    """Sample one replication's cases and exogenous events, and book electives into blocks.
    ``booked`` is the scenario's booked list already read (:func:`twin.booked_list.
    read_booked_list`), so a remote worker needs no file; None reads it from ``base_dir``."""
    week = Week(cases={}, truth={}, first_case_delay={}, random_downtime=[], background={})
    if scn.booking.booked_list:
        order = _booked_list(scn, streams, week, base_dir, booked)
    else:
        order = _electives(scn, streams, week)
        from twin.booking import book_electives

        book_electives(scn, week, order)
    _addons(scn, streams, week)
    _exogenous(scn, streams, week)
    return week


def _booked_list(scn: Scenario, streams: Streams, week: Week, base_dir: Path | None,
                 booked: pd.DataFrame | None) -> list:
    """Electives from the scenario's booked list (validated by :mod:`twin.booked_list`)."""
    from twin.booked_list import read_booked_list

    rows = read_booked_list(scn, base_dir) if booked is None else booked
    for svc_id, grp in rows.groupby("service", sort=False):
        svc = scn.service(str(svc_id))
        procs = [next(q for q in svc.procedures if q.id == p) for p in grp["procedure"]]
        sgs = [next(s for s in scn.surgeons if s.id == g) for g in grp["surgeon"]]
        truths, _ = _truths(scn, streams, str(svc_id), procs, list(grp["patient_class"]), sgs,
                            len(grp), [str(svc_id)] * len(grp))
        for j, row in enumerate(grp.itertuples(index=False)):
            week.cases[row.case_id] = booked_case(scn, row)
            week.truth[row.case_id] = truths[j]
    return []


def booked_case(scn: Scenario, row) -> Case:
    """One row of a validated booked list (:func:`twin.booked_list.check_booked_list`; a
    named tuple or mapping) as a :class:`Case`: crew, trays and capability from the scenario's
    procedure catalog."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    svc = scn.service(str(get("service")))
    p = next(q for q in svc.procedures if q.id == get("procedure"))
    return Case(
        id=str(get("case_id")), service=svc.id, surgeon=str(get("surgeon")), procedure=p.id,
        patient_class=str(get("patient_class")), priority="elective",
        capability=p.capability or svc.id, trays=tuple(p.trays), crew=dict(p.crew),
        booked_minutes=float(get("booked_minutes")), booked_day=int(get("day")),
        booked_room=str(get("room")), booked_start=float(get("booked_start")),
    )


def booked_cases(scn: Scenario, rows: pd.DataFrame) -> dict[str, Case]:
    """Every row of a validated booked list as a :class:`Case`, by case id (in row order)."""
    return {c.id: c for c in (booked_case(scn, r) for r in rows.itertuples(index=False))}


def cases_frame(week: Week) -> pd.DataFrame:
    """The cases frame (see ``twin.events.CASE_COLUMNS``)."""
    rows = [
        (c.id, c.service, c.surgeon, c.procedure, c.patient_class, c.priority, c.capability,
         ";".join(c.trays), c.booked_minutes, c.booked_day, c.booked_room, c.booked_start,
         c.is_addon, c.arrival)
        for c in week.cases.values()
    ]
    from twin.events import CASE_COLUMNS

    return pd.DataFrame(rows, columns=list(CASE_COLUMNS))


__all__ = ["Case", "Truth", "Week", "booked_case", "booked_cases", "draw_week", "cases_frame",
           "PRIORITY_RANK", "WEEKDAYS"]
