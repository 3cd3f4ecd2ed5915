"""What a replay scores, besides its KPIs: the policy that judges fidelity, the scenario's fitting
window (and replayed days that fall inside it), and how many of the replayed days are distinct
and unseen in fitting (the 2022 log repeats whole days, :mod:`calibration.repeats`).

- Fidelity is judged under ``as-booked`` (:data:`FIDELITY_POLICY`): it runs the week as the
  hospital booked it (rooms, order and booked starts). Other policies re-plan the week, so their
  KPIs may legitimately differ from the log; their replay says what the week would have been
  under that policy, not how faithful the twin is.
- The fitting window is read from the scenario ``ortwin calibrate`` wrote: its description says
  ``cases booked <first> to <as-of> (exclusive)``. A scenario without it has no known window.
- A week is *unseen* when at least :data:`UNSEEN_SHARE` of its days with cases are distinct days
  not seen in fitting (not copies of a fitted day nor of an earlier day of the week).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from calibration.loader import History
from calibration.repeats import distinct_count, unseen_days
from twin.scenario import Scenario

FIDELITY_POLICY = "as-booked"
"""The policy a replay judges the twin's fidelity under (the week as the hospital booked it)."""
FIDELITY_LINE = (f"fidelity is judged under policy {FIDELITY_POLICY} (the week as booked); other "
                 "policies re-plan the week, so their KPIs may legitimately differ from the log")
UNSEEN_SHARE = 0.5
"""A week counts as unseen when at least this share of its days are unseen in fitting."""
_WINDOW = re.compile(r"cases booked (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2}) \(exclusive\)")


def fitted_window(scn: Scenario) -> tuple[date, date] | None:
    """The scenario's fitting window ``(first, until)`` (``until`` exclusive), or None."""
    m = _WINDOW.search(scn.description or "")
    return (date.fromisoformat(m[1]), date.fromisoformat(m[2])) if m else None


def overlap_days(monday: date, window: tuple[date, date] | None) -> list[date]:
    """Days of the week starting ``monday`` that lie inside the fitting window."""
    if window is None:
        return []
    days = (monday + timedelta(days=i) for i in range(7))
    return [d for d in days if window[0] <= d < window[1]]


def overlap_message(label: str, days: list[date], window: tuple[date, date]) -> str:
    """One line: which days of a replayed week the scenario was fitted on."""
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return (f"{label} overlaps the calibration period ({window[0]} to {window[1]}, exclusive): "
            f"{len(days)} day(s) ({span}) were fitted and are replayed")


@dataclass(frozen=True)
class WeekDays:
    """The days a replayed week scores."""

    days: tuple[date, ...]     # dates of the week with cases
    distinct: int              # distinct day signatures among them
    unseen: tuple[date, ...]   # distinct days not seen in fitting

    @property
    def is_unseen(self) -> bool:
        """Whether the week counts as unseen (see :data:`UNSEEN_SHARE`)."""
        return bool(self.days) and len(self.unseen) >= UNSEEN_SHARE * len(self.days)

    def to_json(self) -> dict:
        """The JSON fields of a week's days."""
        return {"days": len(self.days), "distinct_days": self.distinct,
                "unseen_days": [d.isoformat() for d in self.unseen],
                "unseen_week": self.is_unseen}


def week_days(history: History, monday: date, fitted_until: date | None) -> WeekDays:
    """Distinct and unseen days of the week starting ``monday`` (all unseen if no window)."""
    end = monday + timedelta(days=7)
    dates = sorted({d for d in history.cases["date"].dt.date if monday <= d < end})
    distinct = distinct_count(history, dates)
    unseen = unseen_days(history, dates, fitted_until or date.min)
    return WeekDays(tuple(dates), distinct, tuple(unseen))


def scope_lines(history: History, mondays: list[date], fitted_until: date | None) -> list[str]:
    """The run-wide line: distinct days scored, and those unseen in fitting."""
    days = [d for m in mondays for d in week_days(history, m, fitted_until).days]
    distinct = distinct_count(history, days)
    unseen = unseen_days(history, days, fitted_until or date.min)
    when = f"fitting (before {fitted_until})" if fitted_until else "fitting (window unknown)"
    return [f"days scored: {len(set(days))} dates, {distinct} distinct, {len(unseen)} distinct "
            f"and not seen in {when}"]


__all__ = ["FIDELITY_LINE", "FIDELITY_POLICY", "UNSEEN_SHARE", "WeekDays", "fitted_window",
           "overlap_days", "overlap_message", "scope_lines", "week_days"]
