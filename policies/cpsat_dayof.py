"""The suite as it is now, for a day-of re-plan: when rooms and surgeons come free, and what the
running cases and the PACU already hold.

A running case ends at its plan quantile (or, past that, a quarter of its P50 from now); its room
is then turned over and takes the add-ons queued in front of the electives. Until it ends the case
holds its crew; then its patient takes a PACU bed for the planned stay. A patient already in PACU
holds a bed for the rest of the stay at the planned quantile of length of stay, conditional on the
time already spent there; one who has recovered and waits for a ward or ICU bed holds it for
:data:`BOARDING_HOLD` more minutes. Trays off the shelf now are held for one reprocessing cycle.
Everything is in whole minutes of the day, as :class:`policies.cpsat_model.DayProblem` takes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from policies.forecast import Forecast
from twin.demand import Case
from twin.policy import RoomStatus, SuiteView

BOARDING_HOLD = 60
"""Minutes a recovered PACU patient waiting for a ward or ICU bed is expected to hold the bed."""


@dataclass
class SuiteNow:
    """When rooms and surgeons come free and what is held, from now (absolute minutes for the
    free times, minutes of the day for ``in_use``)."""

    room_free: dict[str, float]
    surgeon_free: dict[str, float]
    in_use: list[tuple[str, int, int, int]] = field(default_factory=list)


def suite_now(view: SuiteView, day: int, forecast_of: Callable[[Case], Forecast | None],
              quantile: float, turnover: float, pacu_quantile: float, tray_turnaround: int
              ) -> SuiteNow:
    """The suite now: rooms and surgeons free, crews, PACU beds and trays held (see module)."""
    now, base, scn = view.now, day * 1440, view.scenario
    out = SuiteNow({}, {})
    for rid, st in view.rooms().items():
        free = max(st.expected_free, now)
        if st.state == "in_case" and st.case_id is not None:
            c = view.case(st.case_id)
            f = forecast_of(c)
            if f is not None:
                end = max(st.since + f.at(quantile), now + 0.25 * f.p50)
                out.surgeon_free[c.surgeon] = max(out.surgeon_free.get(c.surgeon, now), end)
                addons = st.expected_free - max(st.since + c.booked_minutes, now)
                free = max(free, end + turnover + max(addons, 0.0))
                a, b = int(now - base), int(math.ceil(end - base))
                out.in_use += [(f"staff:{role}", a, b, n) for role, n in c.crew.items() if n > 0]
                los = scn.pacu.los.get(c.patient_class)  # type: ignore[call-overload]
                stay = int(round(float(los.ppf(pacu_quantile)))) if los else 60
                out.in_use.append(("pacu", b, b + max(stay, 1), 1))
        out.room_free[rid] = free
    for cid, since, waiting in view.pacu_patients():
        if waiting:
            left = float(BOARDING_HOLD)
        else:
            los = scn.pacu.los.get(view.case(cid).patient_class)  # type: ignore[call-overload]
            left = float(los.residual(pacu_quantile, now - since)) if los else 60.0
        out.in_use.append(("pacu", int(now - base), int(math.ceil(now + left - base)), 1))
    stock = scn.spd.inventory
    for tray, free_now in view.trays_free().items():
        held = stock.get(tray, 0) - max(free_now, 0)
        if held > 0:
            out.in_use.append((f"tray:{tray}", int(now - base), int(now - base) + tray_turnaround,
                               held))
    return out


def queue_end(view: SuiteView, status: RoomStatus, free: float,
              planned: Callable[[Case], float], turnover: float) -> float:
    """When ``room``'s queue would end if it started when the room is ``free``: each elective
    at its planned minutes (add-ons queued there are already in ``free``), with turnover."""
    t = free
    for cid in status.queue:
        c = view.case(cid)
        if not c.is_addon:
            t += planned(c) + turnover
    return t - turnover if t > free else t


__all__ = ["BOARDING_HOLD", "SuiteNow", "queue_end", "suite_now"]
