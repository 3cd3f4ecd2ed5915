"""Duration forecasts that policies plan with: P50, P80 and P95 of a case's in-room minutes.

A forecaster sees only booking-time facts (:class:`~twin.demand.Case` and the day), never a
sampled duration. :class:`BookedForecaster` trusts the surgeon's booked minutes; the quantile
model of :mod:`policies.duration_model` learns from history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from twin.demand import Case

QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.95)


@dataclass(frozen=True)
class Forecast:
    """Quantiles of a case's in-room minutes (wheels-in to ready-to-leave)."""

    p50: float
    p80: float
    p95: float

    def at(self, q: float) -> float:
        """The forecast at one of the modelled quantiles (0.5, 0.8 or 0.95)."""
        return {0.5: self.p50, 0.8: self.p80, 0.95: self.p95}[q]


class ForecastError(Exception):
    """A forecast cannot be made (missing input); policies fall back when they see it."""


@runtime_checkable
class Forecaster(Protocol):
    """Anything that forecasts in-room minutes of cases booked for a day."""

    name: str

    def forecast(self, cases: Sequence[Case], day: int) -> dict[str, Forecast]:
        """One :class:`Forecast` per case id (raises :class:`ForecastError` if it cannot)."""
        ...


class BookedForecaster:
    """The surgeon's booked minutes as every quantile (what a manual scheduler plans with)."""

    name = "booked"

    def forecast(self, cases: Sequence[Case], day: int) -> dict[str, Forecast]:
        """Booked minutes for P50, P80 and P95 alike."""
        return {c.id: Forecast(c.booked_minutes, c.booked_minutes, c.booked_minutes)
                for c in cases}
