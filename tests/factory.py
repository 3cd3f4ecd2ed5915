"""Small scenarios built in code, for invariant and queueing-theory tests."""

from __future__ import annotations

from typing import Any

from twin.scenario import Scenario, from_mapping

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def small_mapping(
    *,
    rooms: int = 2,
    services: int = 2,
    surgeons_per_service: int = 1,
    staff: int = 2,
    night_staff: int = 1,
    pacu_beds: int = 2,
    trays: int = 1,
    machines: int = 1,
    batch: int = 2,
    ward: int = 4,
    icu: int = 2,
    occupancy: float = 0.5,
    days: int = 2,
    electives_per_week: float = 20.0,
    addons_per_day: float = 2.0,
    cancel: float = 0.05,
    end_mode: str = "overtime",
    when_full: str = "hold",
    downtime_rate: float = 0.0,
    seed: int = 1,
) -> dict[str, Any]:
    """A mapping of a small but complete suite; every resource can be made scarce."""
    svc_ids = [f"s{i}" for i in range(services)]
    hours = {d: {"start": "07:30", "end": "15:30"} for d in ALL_DAYS[:5]}
    return {
        "name": "small",
        "horizon_days": days,
        "seed": seed,
        "rooms": [
            {"id": f"R{i}", "capabilities": list(svc_ids), "hours": hours,
             "on_call": i == 0}
            for i in range(rooms)
        ],
        "blocks": {f"R{i}": {d: svc_ids[i % services] for d in ALL_DAYS[:5]}
                   for i in range(rooms)},
        "surgeons": [
            {"id": f"dr{s}{j}", "service": s, "block_days": ALL_DAYS[:5]}
            for s in svc_ids for j in range(surgeons_per_service)
        ],
        "staff": {
            role: [
                {"start": "07:00", "end": "16:00", "count": staff, "days": ALL_DAYS},
                {"start": "16:00", "end": "31:00", "count": night_staff, "days": ALL_DAYS},
            ]
            for role in ("anaesthesia", "circulating", "scrub")
        },
        "services": [
            {
                "id": s,
                "electives_per_week": electives_per_week,
                "cancellation_rate": cancel,
                "procedures": [
                    {"id": f"{s}-a", "duration": {"kind": "lognormal", "median": 70, "sigma": 0.4},
                     "patient_class": {"outpatient": 0.5, "inpatient": 0.4, "icu": 0.1},
                     "trays": ["t"]},
                    {"id": f"{s}-b", "duration": {"kind": "gamma", "shape": 4, "scale": 30},
                     "patient_class": {"inpatient": 1.0}},
                ],
            }
            for s in svc_ids
        ],
        "addons": {"per_day": addons_per_day},
        "first_case_delay": {"kind": "lognormal", "median": 6, "sigma": 0.7},
        "end_of_day": {"mode": end_mode, "cancel_margin_minutes": 15},
        "random_downtime": {"rate_per_day": downtime_rate,
                            "duration": {"kind": "uniform", "low": 20, "high": 90}},
        "pacu": {
            "beds": pacu_beds, "after_hours_beds": min(1, pacu_beds), "when_full": when_full,
            "los": {c: {"kind": "lognormal", "median": 90, "sigma": 0.4}
                    for c in ("outpatient", "inpatient", "icu")},
        },
        "spd": {
            "inventory": {"t": trays},
            "stages": [{"name": "wash", "machines": machines, "batch": batch,
                        "cycle": {"kind": "constant", "value": 45}}],
        },
        "beds": {
            "ward": {"capacity": ward, "baseline_occupancy": occupancy},
            "icu": {"capacity": icu, "baseline_occupancy": occupancy},
        },
    }


def small_scenario(**kw: Any) -> Scenario:
    """The validated scenario of :func:`small_mapping`."""
    return from_mapping(small_mapping(**kw), "<small>")


def queue_mapping(beds: int, arrivals_per_hour: float, los_mean: float, when_full: str,
                  days: int = 7, services: int = 10) -> dict[str, Any]:
    """A suite whose PACU sees Poisson arrivals and exponential stays: everything else ample.

    Add-ons arrive by a homogeneous Poisson process, go straight into one of many always-open
    rooms for 5 minutes, so arrivals at the PACU are Poisson too (departures of an M/G/inf
    system); PACU stays are exponential; beds after PACU are plentiful.
    """
    svc_ids = [f"s{i}" for i in range(services)]
    always = {d: {"start": "00:00", "end": "24:00"} for d in ALL_DAYS}
    return {
        "name": "queue",
        "horizon_days": days,
        "rooms": [{"id": f"R{i}", "capabilities": ["any"], "hours": always} for i in range(60)],
        "surgeons": [{"id": f"dr{s}", "service": s} for s in svc_ids],
        "staff": {role: [{"start": "00:00", "end": "24:00", "count": 60, "days": ALL_DAYS}]
                  for role in ("anaesthesia", "circulating", "scrub")},
        "services": [
            {"id": s, "procedures": [{"id": "p", "capability": "any",
                                      "duration": {"kind": "constant", "value": 5},
                                      "patient_class": {"outpatient": 1.0}}]}
            for s in svc_ids
        ],
        "addons": {"per_day": arrivals_per_hour * 24},
        "phases": {"pre": {"kind": "constant", "value": 0},
                   "post": {"kind": "constant", "value": 0}},
        "turnover": {"kind": "constant", "value": 1},
        "pacu": {
            "beds": beds, "after_hours_beds": beds, "when_full": when_full,
            "hours": {"start": "00:00", "end": "24:00"},
            "los": {c: {"kind": "exponential", "mean": los_mean}
                    for c in ("outpatient", "inpatient", "icu")},
        },
        "beds": {"ward": {"capacity": 10_000, "baseline_occupancy": 0.0},
                 "icu": {"capacity": 10_000, "baseline_occupancy": 0.0}},
    }
