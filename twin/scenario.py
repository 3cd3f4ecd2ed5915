"""Scenario files: the frozen, validated description of a surgical suite and its week.

A scenario is YAML validated by pydantic v2 (unknown keys rejected). ``extends: other.yaml``
deep-merges this file over another: mappings merge key by key, lists of mappings that carry an
``id`` merge item by item (an item with ``remove: true`` is dropped), other lists are replaced.
Every problem raises :class:`ScenarioError` naming the file, the field path and what was expected.
Times of day are ``"HH:MM"`` strings (up to ``"48:00"`` for windows that run past midnight).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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

    def __reduce__(self):  # picklable, so worker processes can report it
        return (ScenarioError, (self.file, self.field, self.message))


def hhmm(value: str | int | float) -> int:
    """Minutes after midnight for ``"HH:MM"`` (ints are taken as minutes already)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    m = _HHMM.match(str(value).strip())
    if not m or int(m.group(1)) > 48:
        raise ValueError(f"expected a time 'HH:MM' (00:00 to 48:00), got {value!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


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
    procedures: list[Procedure] = Field(min_length=1)


class Booking(_Frozen):
    """How electives are booked: surgeons' estimates and lead times."""

    estimate_bias: float = Field(0.95, gt=0, description="booked / expected duration")
    estimate_correlation: float = Field(0.5, ge=0, le=1, description="weight of the true duration")
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
    random_downtime: RandomDowntime = RandomDowntime()
    pacu: Pacu
    spd: Spd = Spd()
    beds: Beds
    stress: Stress = Stress()
    costs: Costs = Costs()
    kpi: KpiSettings = KpiSettings()

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

    def weekday(self, day: int) -> str:
        """Weekday name of horizon day ``day`` (day 0 is a Monday)."""
        return WEEKDAYS[day % 7]


# --- loading ---------------------------------------------------------------------------------


def _merge(base: Any, over: Any, removed: set[str] | None = None) -> Any:
    """Deep-merge ``over`` onto ``base`` (see module docstring for the rules); ids removed
    with ``remove: true`` are added to ``removed``. A distribution (a mapping with ``kind``)
    is replaced whole, never merged."""
    if isinstance(over, dict) and "kind" in over:
        return over
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v, removed) if k in base else v
        return out
    if (
        isinstance(base, list)
        and isinstance(over, list)
        and all(isinstance(x, dict) and "id" in x for x in base + over)
    ):
        out_list = [dict(x) for x in base]
        index = {x["id"]: i for i, x in enumerate(out_list)}
        for item in over:
            item = dict(item)
            remove = item.pop("remove", False)
            if remove not in (True, False):
                raise ValueError(f"[{item['id']}].remove: expected true or false")
            if item["id"] in index:
                i = index[item["id"]]
                if remove and removed is not None:
                    removed.add(item["id"])
                out_list[i] = None if remove else _merge(out_list[i], item, removed)  # type: ignore[call-overload]
            elif remove:
                raise ValueError(f"[{item['id']}].remove: no item with this id to remove")
            else:
                index[item["id"]] = len(out_list)
                out_list.append(item)
        return [x for x in out_list if x is not None]
    return over


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError(path, "", "file not found") from None
    except OSError as e:
        raise ScenarioError(path, "", f"cannot read file ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise ScenarioError(path, where, f"invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ScenarioError(path, "", "expected a YAML mapping at the top level")
    return data


def load_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged mapping of a scenario file, following ``extends`` chains."""
    path = Path(path)
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(path, "extends", "expected a file name")
    ppath = (path.parent / parent).resolve()
    if ppath in _seen or ppath == path.resolve():
        raise ScenarioError(path, "extends", f"circular extends through {parent}")
    if not ppath.is_file():
        raise ScenarioError(path, "extends", f"file {parent} not found")
    base = load_raw(ppath, _seen + (path.resolve(),))
    removed: set[str] = set()
    try:
        merged = _merge(base, data, removed)
    except ValueError as e:
        raise ScenarioError(path, "", str(e)) from None
    if removed and isinstance(merged.get("blocks"), dict):
        # a removed room takes its blocks with it
        merged["blocks"] = {r: b for r, b in merged["blocks"].items() if r not in removed}
    return merged


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """A dotted field path; list indices become the item's id where it has one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and 0 <= item < len(node):
            node = node[item]
            ident = node.get("id") if isinstance(node, dict) else None
            parts.append(f"[{ident}]" if ident else f"[{item}]")
            continue
        if isinstance(item, str) and item in {
            "constant", "exponential", "lognormal", "gamma", "weibull", "normal",
            "uniform", "triangular", "empirical",
        } and not (isinstance(node, dict) and item in node):
            continue  # discriminated-union tag, not a field
        parts.append(("." if parts else "") + str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts).replace(".[", "[")


def from_mapping(data: dict[str, Any], source: str | Path = "<scenario>") -> Scenario:
    """Validate a merged mapping into a :class:`Scenario` (raises :class:`ScenarioError`)."""
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "union_tag_invalid":
            msg = "expected a distribution kind: " + ", ".join(
                ["constant", "exponential", "lognormal", "gamma", "weibull", "normal",
                 "uniform", "triangular", "empirical"]
            )
        elif err["type"] == "too_short":
            msg = f"expected at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
        else:
            msg = msg.replace("Input should be", "expected")
        raise ScenarioError(source, _loc(tuple(err["loc"]), data), msg) from None
    problems = check_references(scn)
    if problems:
        field, msg = problems[0]
        raise ScenarioError(source, field, msg)
    return scn


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge (``extends``) and validate a scenario file (and its booked list, if any)."""
    scn = from_mapping(load_raw(path), path)
    if scn.booking.booked_list:
        from twin.booked_list import read_booked_list

        read_booked_list(scn, Path(path).parent)
    return scn


def check_references(scn: Scenario) -> list[tuple[str, str]]:
    """Cross-field checks pydantic cannot do alone: ids unique, references resolvable."""
    out: list[tuple[str, str]] = []
    room_ids = [r.id for r in scn.rooms]
    service_ids = [s.id for s in scn.services]
    for what, ids in (("rooms", room_ids), ("services", service_ids),
                      ("surgeons", [s.id for s in scn.surgeons])):
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            out.append((what, f"duplicate id {sorted(dup)[0]!r}"))
    caps = {c for r in scn.rooms for c in r.capabilities}
    for room, days in scn.blocks.items():
        if room in room_ids and scn.room(room).addon_only and days:
            out.append((f"blocks.{room}", "an addon_only room cannot hold blocks"))
        if room not in room_ids:
            out.append((f"blocks.{room}", f"unknown room (expected one of {room_ids})"))
        for day, b in days.items():
            if b.service not in service_ids:
                out.append((f"blocks.{room}.{day}.service", f"unknown service {b.service!r}"))
    for s in scn.surgeons:
        if s.service not in service_ids:
            out.append((f"surgeons[{s.id}].service", f"unknown service {s.service!r}"))
    for role in ROLES:
        if role not in scn.staff:
            out.append((f"staff.{role}", "required role is missing"))
    for svc in scn.services:
        if not any(s.service == svc.id for s in scn.surgeons):
            out.append((f"services[{svc.id}]", "expected at least one surgeon of this service"))
        for p in svc.procedures:
            cap = p.capability or svc.id
            base = f"services[{svc.id}].procedures[{p.id}]"
            if cap not in caps:
                out.append((f"{base}.capability", f"no room has capability {cap!r}"))
            for t in p.trays:
                if t not in scn.spd.inventory:
                    out.append((f"{base}.trays", f"tray type {t!r} not in spd.inventory"))
                elif scn.spd.inventory[t] < p.trays.count(t):
                    out.append((f"{base}.trays", f"needs {p.trays.count(t)} of {t!r}, inventory has fewer"))
            for role in p.crew:
                if role not in scn.staff:
                    out.append((f"{base}.crew.{role}", f"unknown staff role (expected one of {sorted(scn.staff)})"))
            if sum(p.patient_class.values()) <= 0:
                out.append((f"{base}.patient_class", "expected positive weights"))
    for svc in scn.addons.services:
        if svc not in service_ids:
            out.append((f"addons.services.{svc}", "unknown service"))
    stage_names = [s.name for s in scn.spd.stages]
    for i, o in enumerate(scn.spd.outages):
        if o.stage not in stage_names:
            out.append((f"spd.outages[{i}].stage", f"unknown stage (expected one of {stage_names})"))
    if any(scn.spd.inventory.values()) and not scn.spd.stages:
        out.append(("spd.stages", "expected at least one reprocessing stage when trays are used"))
    for room in scn.rooms:
        for i, d in enumerate(room.downtime):
            if d.day >= scn.horizon_days:
                out.append((f"rooms[{room.id}].downtime[{i}].day", "expected a day within the horizon"))
    for i, o in enumerate(scn.spd.outages):
        if o.day >= scn.horizon_days:
            out.append((f"spd.outages[{i}].day", "expected a day within the horizon"))
    if scn.booking.booked_list is None and not any(s.electives_per_week for s in scn.services):
        pass  # add-ons only: a legal (if quiet) suite
    return out
