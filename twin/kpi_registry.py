"""The KPI registry (stable keys, labels, units, better direction) and the context KPIs need.

Labels are for display only; code and stored results use the keys. :class:`KpiContext` holds
what a log alone does not say: staffed windows, prime time, cost rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from twin.scenario import ROLES, Scenario

DAY = 1440


@dataclass(frozen=True)
class KpiDef:
    """Display metadata of a KPI: label, unit and which direction is better."""

    label: str
    unit: str
    better: Literal["lower", "higher"]


def _staff_def(role: str) -> KpiDef:
    return KpiDef(f"Staff overtime ({role})", "staff-min", "lower")


KPIS: dict[str, KpiDef] = {
    "utilisation": KpiDef("OR utilisation (staffed)", "fraction", "higher"),
    "overtime_minutes": KpiDef("OR overtime (run-over)", "min", "lower"),
    "after_hours_minutes": KpiDef("After-hours OR time", "min", "lower"),
    "out_of_hours_minutes": KpiDef("OR time outside staffed hours", "min", "lower"),
    "overtime_p90_room_day": KpiDef("Overtime P90 per room-day", "min", "lower"),
    "overtime_max_room_day": KpiDef("Overtime max per room-day", "min", "lower"),
    **{f"staff_overtime_{r}": _staff_def(r) for r in ROLES},
    "first_case_on_time_rate": KpiDef("First-case on-time starts", "fraction", "higher"),
    "turnover_mean": KpiDef("Turnover mean", "min", "lower"),
    "turnover_p90": KpiDef("Turnover P90", "min", "lower"),
    "cases_completed": KpiDef("Cases completed", "cases", "higher"),
    "cases_cancelled": KpiDef("Cases cancelled", "cases", "lower"),
    "cancellation_rate": KpiDef("Cancellation rate", "fraction", "lower"),
    "cases_not_started": KpiDef("Cases not started", "cases", "lower"),
    "cases_run_over": KpiDef("Cases ending after close", "cases", "lower"),
    "addon_cases": KpiDef("Add-on cases", "cases", "lower"),
    "addon_wait_mean": KpiDef("Add-on wait mean", "min", "lower"),
    "addon_wait_p90": KpiDef("Add-on wait P90", "min", "lower"),
    "pacu_hold_minutes": KpiDef("PACU hold in OR", "min", "lower"),
    "pacu_hold_cases": KpiDef("Cases held for PACU", "cases", "lower"),
    "pacu_peak_occupancy": KpiDef("PACU peak occupancy", "beds", "lower"),
    "boarding_hours": KpiDef("Boarding in PACU", "h", "lower"),
    "tray_wait_minutes": KpiDef("Tray wait", "min", "lower"),
    "surgeon_idle_minutes": KpiDef("Surgeon idle between cases", "min", "lower"),
    "idle_minutes": KpiDef("Idle staffed OR time", "min", "lower"),
    "cost_idle": KpiDef("Cost of idle time", "$", "lower"),
    "cost_overtime": KpiDef("Cost of overtime", "$", "lower"),
    "cost_total": KpiDef("Cost idle + overtime", "$", "lower"),
    "fair_prime_share_gap": KpiDef("Gap in prime-time share", "fraction", "lower"),
    "fair_overtime_share_gap": KpiDef("Gap in excess overtime share", "fraction", "lower"),
    "fair_cancel_rate_gap": KpiDef("Gap in cancellation rate", "fraction", "lower"),
    "plan_fallbacks": KpiDef("Plans that fell back to rules", "days", "lower"),
    "rule_violations": KpiDef("Monitored-rule violations", "events", "lower"),
    "rule_overrides": KpiDef("Rule overrides", "events", "lower"),
}
"""Registry of KPI keys in display order (``staff_overtime_<role>`` for the standard roles)."""


def kpi_def(key: str) -> KpiDef:
    """The registry entry of ``key``; staff roles outside the registry and unknown keys get a
    generic 'lower is better' entry."""
    if key in KPIS:
        return KPIS[key]
    if key.startswith("staff_overtime_"):
        return _staff_def(key.removeprefix("staff_overtime_"))
    return KpiDef(key, "", "lower")


@dataclass(frozen=True, eq=False)
class KpiContext:
    """What KPIs need besides the log: staffed room-day windows, definitions and cost rates."""

    room_days: pd.DataFrame
    prime_time: tuple[int, int] = (450, 930)
    on_time_grace: float = 5.0
    turnover_max: float = 120.0
    early_start: float = 60.0  # minutes before its planned start a case may go in
    idle_cost_per_min: float = 37.45
    overtime_cost_per_min: float = 56.0
    services: tuple[str, ...] = ()
    roles: tuple[str, ...] = ROLES
    horizon_days: int = 7

    @classmethod
    def from_scenario(cls, scn: Scenario) -> KpiContext:
        """Context of a scenario: one staffed window per room and day from ``Room.hours``
        (planned downtime does not reduce staffed time)."""
        rows = [
            (room.id, d, float(d * DAY + w.start), float(d * DAY + w.end))
            for d in range(scn.horizon_days)
            for room in scn.rooms
            if (w := room.hours.get(scn.weekday(d))) is not None
        ]
        room_days = pd.DataFrame(rows, columns=["room", "day", "open", "close"]).astype(
            {"room": object, "day": np.int64, "open": float, "close": float}
        )
        return cls(
            room_days=room_days,
            prime_time=(scn.kpi.prime_time.start, scn.kpi.prime_time.end),
            on_time_grace=float(scn.kpi.on_time_grace_minutes),
            turnover_max=float(scn.kpi.turnover_max_minutes),
            early_start=float(scn.end_of_day.allow_early_start_minutes),
            idle_cost_per_min=scn.costs.idle_per_minute,
            overtime_cost_per_min=scn.costs.overtime_per_minute,
            services=tuple(s.id for s in scn.services),
            roles=tuple(scn.staff),
            horizon_days=scn.horizon_days,
        )


def room_days_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """Staffed windows recorded in a log as ``room_open``/``room_close`` pairs (for real logs)."""
    ev = events[events["event"].isin(("room_open", "room_close"))].sort_values("time", kind="stable")
    opens = ev[ev["event"] == "room_open"].assign(k=lambda f: f.groupby("room").cumcount())
    closes = ev[ev["event"] == "room_close"].assign(k=lambda f: f.groupby("room").cumcount())
    pairs = opens.merge(closes, on=["room", "k"], suffixes=("_o", "_c"))
    return pd.DataFrame({
        "room": pairs["room"].astype(object).to_numpy(),
        "day": (pairs["time_o"].to_numpy() // DAY).astype(np.int64),
        "open": pairs["time_o"].to_numpy(float), "close": pairs["time_c"].to_numpy(float),
    })


# --- the per-case table -----------------------------------------------------------------------
