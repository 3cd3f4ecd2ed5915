"""The scenario schema: frozen pydantic v2 models of a surgical suite and its week.

Unknown keys are rejected and defaults are validated. Times of day are ``"HH:MM"`` strings (up to
``"48:00"`` for windows that run past midnight); day 0 of a horizon is a Monday. Loading, merging
(``extends``) and cross-reference checks live in :mod:`twin.scenario`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.distributions import Distribution

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PatientClass = Literal["outpatient", "inpatient", "icu"]
PATIENT_CLASSES: tuple[str, ...] = ("outpatient", "inpatient", "icu")
Priority = Literal["elective", "urgent", "emergent"]
ROLES: tuple[str, ...] = ("anaesthesia", "circulating", "scrub")

_HHMM = re.compile(r"^(\d{1,2}):([0-5]\d)$")


class ScenarioError(Exception):
    """A scenario file is unreadable or invalid; ``str()`` is one line: file: field: expected."""

    def __init__(self, file: str | Path, field: str, message: str):
        self.file, self.field, self.message = str(file), field, message
        where = f"{self.file}: {field}: " if field else f"{self.file}: "
        super().__init__(where + message)

    def __reduce__(self):  # picklable (subclasses too), so worker processes can report it
        return (type(self), (self.file, self.field, self.message))


def pydantic_message(err: dict[str, Any]) -> str:
    """A pydantic error entry as the one-line phrase ORTwin's messages use ("unknown field",
    "required field is missing", "expected ...")."""
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg.replace("Input should be", "expected")


def hhmm(value: str | int | float) -> int:
    """Minutes after midnight for ``"HH:MM"`` (ints are taken as minutes already)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    m = _HHMM.match(str(value).strip())
    if not m or int(m.group(1)) > 48:
        raise ValueError(f"expected a time 'HH:MM' (00:00 to 48:00), got {value!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def clock(minute: float, wrap: bool = True) -> str:
    """``"HH:MM"`` of a minute: of the day when ``wrap`` (absolute minutes welcome), else as a
    scenario writes it (``"31:00"`` for 07:00 the next morning)."""
    m = int(round(minute))
    m = m % 1440 if wrap else m
    return f"{m // 60:02d}:{m % 60:02d}"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Window(_Frozen):
    """A time-of-day window; ``end`` after ``start`` (may pass midnight, up to 48:00)."""

    start: int
    end: int

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, v: Any) -> int:
        return hhmm(v)

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.end <= self.start:
            raise ValueError("expected end after start")
        return self

    @property
    def minutes(self) -> int:
        """Length of the window in minutes."""
        return self.end - self.start


class Downtime(_Frozen):
    """A room (or machine) out of service on ``day`` (0-based day of the horizon)."""

    day: int = Field(ge=0)
    start: int
    end: int
    reason: str = "maintenance"

    _t = field_validator("start", "end", mode="before")(classmethod(lambda cls, v: hhmm(v)))

    @model_validator(mode="after")
    def _order(self) -> Downtime:
        if self.end <= self.start:
            raise ValueError("expected end after start")
        return self


class RandomDowntime(_Frozen):
    """Unplanned failures: Poisson ``rate_per_day`` per room while staffed, repair time in min."""

    rate_per_day: float = Field(0.0, ge=0)
    duration: Distribution | None = None


class Room(_Frozen):
    """An operating room: capabilities, staffed hours per weekday, planned downtime."""

    id: str = Field(min_length=1)
    capabilities: list[str] = Field(min_length=1)
    hours: dict[Weekday, Window]
    downtime: list[Downtime] = []
    on_call: bool = Field(False, description="takes add-ons when no capable room is staffed")
    addon_only: bool = Field(False, description="kept free of electives for add-ons")


class Block(_Frozen):
    """A service's block in a room on a weekday; unused time is released ``release_days`` ahead."""

    service: str
    release_days: int | None = Field(3, ge=0, description="null: never released")


class Surgeon(_Frozen):
    """A named surgeon: one service, block weekdays, and a speed factor on case durations."""

    id: str = Field(min_length=1)
    service: str
    block_days: list[Weekday] = []
    speed: float = Field(1.0, gt=0, description="multiplies this surgeon's case durations")
    durations: dict[str, Distribution] = Field(
        default_factory=dict,
        description="procedure id -> this surgeon's in-room minutes (replaces the procedure's "
                    "duration and speed for that procedure; calibration writes these)")


class Shift(_Frozen):
    """``count`` staff of a role on duty between ``start`` and ``end`` on the given weekdays."""

    start: int
    end: int
    count: int = Field(ge=0)
    days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]

    _t = field_validator("start", "end", mode="before")(classmethod(lambda cls, v: hhmm(v)))

    @model_validator(mode="after")
    def _order(self) -> Shift:
        if self.end <= self.start:
            raise ValueError("expected end after start")
        return self


class Procedure(_Frozen):
    """A procedure of a service: mix weight, in-room duration, patient classes, room and trays."""

    id: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, description="share of the service's electives")
    duration: Distribution = Field(description="wheels-in to wheels-out minutes")
    patient_class: dict[PatientClass, float] = {"outpatient": 1.0}
    capability: str | None = Field(None, description="room capability needed (default: service)")
    trays: list[str] = []
    crew: dict[str, int] = Field(default_factory=lambda: {r: 1 for r in ROLES})


class Service(_Frozen):
    """A surgical service: weekly elective demand, procedures and day-of cancellation rate."""

    id: str = Field(min_length=1)
    electives_per_week: float = Field(0.0, ge=0, description="Poisson mean of booked demand")
    cancellation_rate: float = Field(0.05, ge=0, le=1)
    turnover: Distribution | None = Field(
        None, description="turnover after this service's cases (default: the suite's)")
    procedures: list[Procedure] = Field(min_length=1)


class Booking(_Frozen):
    """How electives are booked: surgeons' estimates and lead times."""

    estimate_bias: float = Field(0.95, gt=0, description="booked / expected duration")
    estimate_correlation: float = Field(0.5, ge=0, le=1, description="weight of the true duration")
    estimate_noise: float = Field(
        0.0, ge=0, le=3, description="log-sd of the estimate's own error (0: none)")
    round_to: int = Field(15, ge=1)
    lead_days: Distribution | None = None
    booked_list: str | None = Field(None, description="CSV of booked cases (path, relative)")


class AddOns(_Frozen):
    """Add-on (urgent and emergent) cases by a time-varying Poisson process."""

    per_day: float = Field(0.0, ge=0, description="mean arrivals per day")
    hourly_profile: list[float] = Field(default_factory=lambda: [1.0] * 24)
    weekday_factor: dict[Weekday, float] = {}
    priority: dict[Literal["urgent", "emergent"], float] = {"urgent": 0.7, "emergent": 0.3}
    services: dict[str, float] = Field(default_factory=dict, description="mix by service")

    @field_validator("hourly_profile")
    @classmethod
    def _profile(cls, v: list[float]) -> list[float]:
        if len(v) != 24 or min(v) < 0 or sum(v) <= 0:
            raise ValueError("expected 24 non-negative hourly weights, not all zero")
        return v


class Phases(_Frozen):
    """Split of in-room time: ``pre`` (wheels-in to incision) and ``post`` (close to wheels-out)."""

    pre: Distribution = Field(default={"kind": "lognormal", "median": 22, "sigma": 0.35})
    post: Distribution = Field(default={"kind": "lognormal", "median": 10, "sigma": 0.4})


class EndOfDay(_Frozen):
    """What happens to work that would run past the staffed day."""

    mode: Literal["overtime", "cancel"] = "overtime"
    cancel_margin_minutes: int = Field(
        0, ge=0, description="cancel mode: cancel a case whose booked end passes close + margin"
    )
    latest_start_after_close_minutes: int = Field(
        120, ge=0, description="overtime mode: an elective not started by close + this is cancelled"
    )
    allow_early_start_minutes: int = Field(60, ge=0)


class Pacu(_Frozen):
    """Post-anaesthesia care unit: beds while open, beds after hours, length of stay by class."""

    beds: int = Field(ge=0)
    hours: Window = Field(default={"start": "07:00", "end": "23:00"})
    after_hours_beds: int = Field(2, ge=0)
    los: dict[PatientClass, Distribution]
    when_full: Literal["hold", "overflow"] = Field(
        "hold", description="hold: the patient waits in the OR; overflow: recovers elsewhere"
    )
    beds_closed: dict[Weekday, int] = Field(
        default_factory=dict,
        description="beds closed during opening hours on these weekdays (e.g. {tue: 2})")

    @model_validator(mode="after")
    def _closed(self) -> Pacu:
        for day, n in self.beds_closed.items():
            if not 0 <= n <= self.beds:
                raise ValueError(f"beds_closed.{day}: expected 0 to {self.beds} (the PACU's beds)")
        return self

    def open_beds(self, weekday: str) -> int:
        """Beds open during opening hours on ``weekday`` (``beds`` less that day's closures)."""
        return self.beds - self.beds_closed.get(weekday, 0)  # type: ignore[call-overload]


class SpdStage(_Frozen):
    """A sterile-processing stage (wash, sterilise): machines, cycle time, trays per cycle."""

    name: str
    machines: int = Field(ge=1)
    cycle: Distribution
    batch: int = Field(1, ge=1, description="trays per machine cycle")


class SpdOutage(_Frozen):
    """Machines of a stage out of service for a window of a day."""

    stage: str
    day: int = Field(ge=0)
    start: int
    end: int
    machines: int = Field(ge=1)

    _t = field_validator("start", "end", mode="before")(classmethod(lambda cls, v: hhmm(v)))


class Spd(_Frozen):
    """Sterile processing: tray inventory by type and a reprocessing line."""

    inventory: dict[str, int] = {}
    transport: Distribution = Field(default={"kind": "constant", "value": 15})
    stages: list[SpdStage] = []
    outages: list[SpdOutage] = []


class Ward(_Frozen):
    """An inpatient unit (ward or ICU) with background patients and a discharge pattern."""

    capacity: int = Field(ge=0)
    baseline_occupancy: float = Field(0.85, ge=0, le=1)
    background_los_days: Distribution = Field(
        default={"kind": "lognormal", "median": 4, "sigma": 0.6}
    )
    surgical_los_days: Distribution = Field(
        default={"kind": "lognormal", "median": 4, "sigma": 0.6}
    )
    discharge_profile: list[float] = Field(
        default_factory=lambda: [0] * 9 + [1, 2, 3, 3, 3, 2, 2, 1, 1] + [0] * 6
    )

    @field_validator("discharge_profile")
    @classmethod
    def _profile(cls, v: list[float]) -> list[float]:
        if len(v) != 24 or min(v) < 0 or sum(v) <= 0:
            raise ValueError("expected 24 non-negative hourly weights, not all zero")
        return v


class Beds(_Frozen):
    """Inpatient beds after PACU: the ward for inpatients and the ICU."""

    ward: Ward
    icu: Ward


class Stress(_Frozen):
    """Global multipliers for stress tests and what-if levers (1.0 = as calibrated)."""

    duration_factor: float = Field(1.0, gt=0)
    addon_factor: float = Field(1.0, ge=0)
    cancellation_factor: float = Field(1.0, ge=0)
    first_case_delay_factor: float = Field(1.0, ge=0)
    turnover_factor: float = Field(1.0, gt=0)


class Costs(_Frozen):
    """Dollars per idle staffed OR minute and per overtime minute."""

    idle_per_minute: float = Field(37.45, ge=0)
    overtime_per_minute: float = Field(56.0, ge=0)


class KpiSettings(_Frozen):
    """Definitions that KPIs depend on."""

    prime_time: Window = Field(default={"start": "07:30", "end": "15:30"})
    on_time_grace_minutes: int = Field(5, ge=0)
    turnover_max_minutes: int = Field(120, ge=1)


class Scenario(_Frozen):
    """A complete, validated suite description. Build resources per run; never store them here."""

    name: str
    description: str = ""
    horizon_days: int = Field(7, ge=1, le=366)
    seed: int = Field(12345, ge=0)
    rooms: list[Room] = Field(min_length=1)
    blocks: dict[str, dict[Weekday, Block]] = {}
    surgeons: list[Surgeon] = Field(min_length=1)
    staff: dict[str, list[Shift]]
    services: list[Service] = Field(min_length=1)
    booking: Booking = Booking()
    addons: AddOns = AddOns()
    phases: Phases = Phases()
    first_case_delay: Distribution = Field(default={"kind": "constant", "value": 0})
    turnover: Distribution = Field(default={"kind": "lognormal", "median": 29, "sigma": 0.2})
    end_of_day: EndOfDay = EndOfDay()
    no_start_windows: list[Window] = Field(
        [], description="times of day when no elective goes in (a staff lunch, at most 4 h): "
        "a case ready then waits for the window's end")
    random_downtime: RandomDowntime = RandomDowntime()
    pacu: Pacu
    spd: Spd = Spd()
    beds: Beds
    stress: Stress = Stress()
    costs: Costs = Costs()
    kpi: KpiSettings = KpiSettings()

    @field_validator("no_start_windows")
    @classmethod
    def _short(cls, v: list[Window]) -> list[Window]:
        if any(w.minutes > 240 for w in v):
            raise ValueError("expected each no-start window to last at most 4 hours")
        return v

    @field_validator("blocks", mode="before")
    @classmethod
    def _blocks(cls, v: Any) -> Any:
        # allow the short form  OR1: {mon: general}
        if isinstance(v, dict):
            return {
                room: (
                    {d: ({"service": b} if isinstance(b, str) else b) for d, b in days.items()}
                    if isinstance(days, dict)
                    else days
                )
                for room, days in v.items()
            }
        return v

    # --- lookups -------------------------------------------------------------------------
    def room(self, room_id: str) -> Room:
        """The room with this id."""
        return next(r for r in self.rooms if r.id == room_id)

    def service(self, service_id: str) -> Service:
        """The service with this id."""
        return next(s for s in self.services if s.id == service_id)

    def start_allowed(self, minute: float) -> float:
        """The earliest minute at or after ``minute`` outside every no-start window."""
        t = float(minute)
        moved = bool(self.no_start_windows)
        for _ in range(2 * len(self.no_start_windows) + 2):  # windows are under 4 h: bounded
            if not moved:
                break
            moved, day = False, t - t % 1440
            for w in self.no_start_windows:
                for base in (day, day - 1440):  # windows may pass midnight
                    if base + w.start <= t < base + w.end:
                        t, moved = base + w.end, True
        return t

    def weekday(self, day: int) -> str:
        """Weekday name of horizon day ``day`` (day 0 is a Monday)."""
        return WEEKDAYS[day % 7]
