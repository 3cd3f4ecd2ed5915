"""What-if levers in plain words, applied to a scenario, and what differs from the base.

A :class:`Levers` value says how a leader wants to change a suite ("one more OR", "close two
PACU beds on Tuesdays", "one scrub nurse short per shift"). :func:`apply_levers` turns it into a
new, validated :class:`~twin.schema.Scenario` by editing the scenario's mapping and validating it
again, so a lever can never produce a scenario a file could not. :func:`scenario_diff` lists what
differs between two scenarios field by field, in the scenario's own field paths.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

from twin.scenario import WEEKDAYS, Scenario, ScenarioError, clock, from_mapping, hhmm


@dataclass(frozen=True)
class RoomDowntime:
    """A room out of service on horizon day ``day`` from ``start`` to ``end`` ("HH:MM")."""

    room: str
    day: int
    start: str
    end: str
    reason: str = "what-if downtime"


@dataclass(frozen=True)
class Levers:
    """Changes to a base scenario; the defaults change nothing.

    Rooms: ``add_rooms`` copies ``add_room_like`` (default: the first elective room) as new,
    unblocked rooms, each with one more crew (anaesthesia, circulating, scrub) on its staffed
    weekdays when ``crew_for_added_rooms``; ``close_rooms`` removes rooms (and their blocks).
    ``hours_start``/``hours_end`` ("HH:MM") move every elective room's staffed day (on-call and
    add-on rooms keep theirs).
    Blocks: ``blocks`` maps ``(room, weekday)`` to a service id, or to ``None`` for an open
    (unblocked) day; ``release_days`` sets every block's release lead time.
    PACU: ``pacu_beds``, ``pacu_after_hours_beds`` and ``pacu_beds_closed`` ({weekday: beds}).
    Staff: ``staff_delta`` adds (or with a negative number removes) staff of a role on every shift.
    Demand and durations: ``addon_factor``, ``duration_factor``, ``cancellation_factor`` and
    ``demand_factor`` (elective volume) multiply the base's. ``downtime`` adds planned room
    outages. Sterile processing: ``spd_machines`` ({stage: machines}) and ``tray_factor``
    (inventory of every tray type, rounded, at least 1).
    """

    add_rooms: int = 0
    add_room_like: str | None = None
    crew_for_added_rooms: bool = True
    close_rooms: tuple[str, ...] = ()
    hours_start: str | None = None
    hours_end: str | None = None
    blocks: dict[tuple[str, str], str | None] = field(default_factory=dict)
    release_days: int | None = None
    pacu_beds: int | None = None
    pacu_after_hours_beds: int | None = None
    pacu_beds_closed: dict[str, int] = field(default_factory=dict)
    staff_delta: dict[str, int] = field(default_factory=dict)
    addon_factor: float = 1.0
    duration_factor: float = 1.0
    cancellation_factor: float = 1.0
    demand_factor: float = 1.0
    downtime: tuple[RoomDowntime, ...] = ()
    spd_machines: dict[str, int] = field(default_factory=dict)
    tray_factor: float = 1.0
    name: str | None = None

    def is_base(self) -> bool:
        """True when these levers change nothing."""
        return self == Levers(name=self.name)


def _lever_error(scn: Scenario, lever: str, message: str) -> ScenarioError:
    return ScenarioError(f"what-if on {scn.name}", lever, message)


def _elective_rooms(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rooms that run the elective day (not on-call, not kept for add-ons)."""
    return [r for r in data["rooms"] if not r.get("addon_only") and not r.get("on_call")]


def _add_rooms(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    if lv.add_rooms < 0:
        raise _lever_error(scn, "add_rooms", "expected 0 or more rooms")
    if not lv.add_rooms:
        return
    rooms = data["rooms"]
    like_id = lv.add_room_like or next((r["id"] for r in _elective_rooms(data)), rooms[0]["id"])
    like = next((r for r in rooms if r["id"] == like_id), None)
    if like is None:
        raise _lever_error(scn, "add_room_like", f"unknown room {like_id!r} (expected one of "
                           f"{', '.join(r['id'] for r in rooms)})")
    taken = {r["id"] for r in rooms}
    n = len(rooms)
    for _ in range(lv.add_rooms):
        n += 1
        while f"OR{n}" in taken:
            n += 1
        new = copy.deepcopy(like)
        new.update(id=f"OR{n}", downtime=[], on_call=False, addon_only=False)
        rooms.append(new)
        taken.add(new["id"])
        if lv.crew_for_added_rooms:
            _add_crew(data, sorted(new["hours"], key=WEEKDAYS.index), new["hours"])


def _add_crew(data: dict[str, Any], days: list[str], hours: dict[str, Any]) -> None:
    """One more of each role on the shift covering the room's opening on each of ``days``."""
    for shifts in data["staff"].values():
        for d in days:
            start = hours[d]["start"]
            shift = next((s for s in shifts if d in s["days"] and s["start"] <= start < s["end"]),
                         None)
            if shift is None:
                continue
            if shift["days"] == [d]:
                shift["count"] += 1
            else:
                shift["days"] = [x for x in shift["days"] if x != d]
                shifts.append({**shift, "days": [d], "count": shift["count"] + 1})


def _close_rooms(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    ids = {r["id"] for r in data["rooms"]}
    for rid in lv.close_rooms:
        if rid not in ids:
            raise _lever_error(scn, "close_rooms", f"unknown room {rid!r}")
    data["rooms"] = [r for r in data["rooms"] if r["id"] not in lv.close_rooms]
    data["blocks"] = {r: b for r, b in data.get("blocks", {}).items() if r not in lv.close_rooms}
    if not data["rooms"]:
        raise _lever_error(scn, "close_rooms", "expected at least one room left open")


def _hours(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    if lv.hours_start is None and lv.hours_end is None:
        return
    for name, value in (("hours_start", lv.hours_start), ("hours_end", lv.hours_end)):
        if value is not None:
            try:
                hhmm(value)
            except ValueError as e:
                raise _lever_error(scn, name, str(e)) from None
    for room in _elective_rooms(data):
        for window in room["hours"].values():
            if lv.hours_start is not None:
                window["start"] = hhmm(lv.hours_start)
            if lv.hours_end is not None:
                window["end"] = hhmm(lv.hours_end)


def _blocks(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    blocks = data.setdefault("blocks", {})
    services = {s["id"] for s in data["services"]}
    rooms = {r["id"] for r in data["rooms"]}
    for (room, day), service in lv.blocks.items():
        if room not in rooms:
            raise _lever_error(scn, f"blocks[{room}]", "unknown room")
        if day not in WEEKDAYS:
            raise _lever_error(scn, f"blocks[{room}].{day}", "expected a weekday (mon..sun)")
        if service is None:
            blocks.get(room, {}).pop(day, None)
        elif service not in services:
            raise _lever_error(scn, f"blocks[{room}].{day}",
                               f"unknown service {service!r} (expected one of "
                               f"{', '.join(sorted(services))})")
        else:
            old = blocks.setdefault(room, {}).get(day) or {}
            blocks[room][day] = {"service": service,
                                 "release_days": old.get("release_days", 3)}
    if lv.release_days is not None:
        if lv.release_days < 0:
            raise _lever_error(scn, "release_days", "expected 0 or more days")
        for days in blocks.values():
            for block in days.values():
                block["release_days"] = lv.release_days


def _pacu(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    pacu = data["pacu"]
    if lv.pacu_beds is not None:
        pacu["beds"] = lv.pacu_beds
    if lv.pacu_after_hours_beds is not None:
        pacu["after_hours_beds"] = lv.pacu_after_hours_beds
    closed = {d: n for d, n in lv.pacu_beds_closed.items() if n}
    if closed:
        pacu["beds_closed"] = {**pacu.get("beds_closed", {}), **closed}


def _staff(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    for role, delta in lv.staff_delta.items():
        if role not in data["staff"]:
            raise _lever_error(scn, f"staff_delta.{role}", "unknown role (expected one of "
                               f"{', '.join(data['staff'])})")
        for shift in data["staff"][role]:
            shift["count"] = max(0, shift["count"] + delta)


def _factors(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    stress = data.setdefault("stress", {})
    for name, key in (("addon_factor", "addon_factor"), ("duration_factor", "duration_factor"),
                      ("cancellation_factor", "cancellation_factor")):
        value = getattr(lv, name)
        if not (math.isfinite(value) and value >= 0):
            raise _lever_error(scn, name, "expected a finite number of at least 0")
        stress[key] = stress.get(key, 1.0) * value
    if not (math.isfinite(lv.demand_factor) and lv.demand_factor >= 0):
        raise _lever_error(scn, "demand_factor", "expected a finite number of at least 0")
    if lv.demand_factor != 1.0:
        for svc in data["services"]:
            svc["electives_per_week"] = svc.get("electives_per_week", 0.0) * lv.demand_factor


def _downtime(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    rooms = {r["id"]: r for r in data["rooms"]}
    for dt in lv.downtime:
        if dt.room not in rooms:
            raise _lever_error(scn, "downtime", f"unknown room {dt.room!r}")
        if not 0 <= dt.day < scn.horizon_days:
            raise _lever_error(scn, "downtime", f"day {dt.day}: expected 0 to "
                               f"{scn.horizon_days - 1} (day 0 is the Monday)")
        rooms[dt.room].setdefault("downtime", []).append(
            {"day": dt.day, "start": dt.start, "end": dt.end, "reason": dt.reason})


def _spd(scn: Scenario, data: dict[str, Any], lv: Levers) -> None:
    spd = data.setdefault("spd", {})
    stages = {s["name"]: s for s in spd.get("stages", [])}
    for stage, machines in lv.spd_machines.items():
        if stage not in stages:
            raise _lever_error(scn, f"spd_machines.{stage}", "unknown sterile-processing stage "
                               f"(expected one of {', '.join(stages) or 'none'})")
        stages[stage]["machines"] = machines
    if lv.tray_factor != 1.0:
        if not (math.isfinite(lv.tray_factor) and lv.tray_factor > 0):
            raise _lever_error(scn, "tray_factor", "expected a number above 0")
        spd["inventory"] = {t: max(1, round(n * lv.tray_factor))
                            for t, n in spd.get("inventory", {}).items()}


_STEPS = (_close_rooms, _add_rooms, _hours, _blocks, _pacu, _staff, _factors, _downtime, _spd)


def apply_levers(scn: Scenario, levers: Levers) -> Scenario:
    """A new validated scenario: ``scn`` with ``levers`` applied (``ScenarioError`` naming the
    lever or field when the result is not a valid suite)."""
    data = scn.model_dump(mode="json")
    for step in _STEPS:
        step(scn, data, levers)
    if levers.name:
        data["name"] = levers.name
    elif not levers.is_base():
        data["name"] = f"{scn.name}-whatif"
    return from_mapping(data, f"what-if on {scn.name}")


# --- differences -------------------------------------------------------------------------------


_KEYED = ("blocks", "spd.inventory", "staff", "pacu.beds_closed", "addons.services")
"""Mappings whose keys are ids (rooms, tray types, roles, weekdays) rather than field names;
so are each role's shifts (``staff[<role>]``)."""


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and "kind" in value:
        out[path] = _dist_text(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            keyed = path in _KEYED or path.startswith("staff[")
            key = f"{path}[{k}]" if keyed else (f"{path}.{k}" if path else str(k))
            _flatten(v, key, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            ident = v.get("id", v.get("name", i))
            _flatten({k: x for k, x in v.items() if k not in ("id", "name")}, f"{path}[{ident}]",
                     out)
    elif value not in ([], {}):
        out[path] = value


def _dist_text(d: dict[str, Any]) -> str:
    defaults = {"scale_factor": 1, "shift": 0}
    args = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in d.items()
                     if k != "kind" and v is not None and defaults.get(k, object()) != v)
    return f"{d['kind']}({args})"


def _readable(scn: Scenario) -> dict[str, Any]:
    """The scenario's mapping in the shape people read: staff as head counts per role, weekday
    and shift window; planned downtime as one line per outage; name and description left out."""
    data = {k: v for k, v in scn.model_dump(mode="json").items()
            if k not in ("name", "description")}
    staff: dict[str, dict[str, int]] = {}
    for role, shifts in data["staff"].items():
        for sh in shifts:
            for d in sh["days"]:
                key = f"{d} {clock(sh['start'], wrap=False)}-{clock(sh['end'], wrap=False)}"
                staff.setdefault(role, {})[key] = staff.get(role, {}).get(key, 0) + sh["count"]
    data["staff"] = {r: dict(sorted(v.items(), key=lambda kv: WEEKDAYS.index(kv[0][:3])))
                     for r, v in staff.items()}
    for room in data["rooms"]:
        room["downtime"] = [f"day {d['day']} {clock(d['start'], wrap=False)}-"
                            f"{clock(d['end'], wrap=False)} ({d['reason']})"
                            for d in room["downtime"]]
    return data


@dataclass(frozen=True)
class Change:
    """One field that differs: its path in the scenario, the base value and the new value
    (``None`` where the field does not exist on that side)."""

    field: str
    base: Any
    new: Any


def scenario_diff(base: Scenario, new: Scenario) -> list[Change]:
    """Every leaf field whose value differs between ``base`` and ``new`` (the name and
    description excepted), in the field order of ``new`` then fields only ``base`` has."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(_readable(base), "", a)
    _flatten(_readable(new), "", b)
    out = [Change(k, a.get(k), v) for k, v in b.items() if a.get(k) != v]
    out += [Change(k, v, None) for k, v in a.items() if k not in b]
    return out


_WILD = re.compile(r"\[([^\]]+)\]")


def _fmt_value(path: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if path.rsplit(".", 1)[-1] in ("start", "end") and isinstance(value, int):
        return clock(value, wrap=False)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_fmt_value(path, v) if not isinstance(v, dict) else
                         " ".join(f"{k}={_fmt_value(k, x)}" for k, x in v.items())
                         for v in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt_value(k, v)}" for k, v in value.items()) or "(none)"
    return str(value)


def _ordered(items: list[str]) -> str:
    days = [d for d in WEEKDAYS if d in items]
    rest = [i for i in dict.fromkeys(items) if i not in WEEKDAYS]
    return ", ".join(rest + days)


FIELD_LABELS: dict[str, str] = {
    "rooms[*].hours.*.start": "room opens", "rooms[*].hours.*.end": "room closes",
    "rooms[*].capabilities": "room's capabilities", "rooms[*].downtime": "planned downtime",
    "rooms[*].on_call": "on-call room", "rooms[*].addon_only": "kept for add-ons",
    "blocks[*].*.service": "block owner", "blocks[*].*.release_days":
    "unused block time released (days ahead)", "pacu.beds": "PACU beds (opening hours)",
    "pacu.after_hours_beds": "PACU beds (after hours)", "pacu.beds_closed[*]":
    "PACU beds closed", "staff[*][*]": "staff on duty (role × shift)",
    "stress.addon_factor": "add-on rate (× calibrated)", "stress.duration_factor":
    "case durations (× calibrated)", "stress.cancellation_factor":
    "day-of cancellations (× calibrated)", "services[*].electives_per_week":
    "elective cases per week", "spd.stages[*].machines": "sterile-processing machines",
    "spd.inventory[*]": "trays in inventory",
}
"""Plain words for the fields the levers change (``summarise_diff``'s ``change`` column)."""


def summarise_diff(changes: list[Change]) -> list[dict[str, str]]:
    """Changes grouped for reading: fields that differ in the same way in several rooms,
    services or weekdays become one row (``change`` in plain words, ``field`` with ``*`` for
    the varying parts, ``where`` listing them, ``base`` and ``new`` in plain units, ``fields``
    the count)."""
    groups: dict[tuple[str, str, str], list[list[str]]] = {}
    for c in changes:
        parts = c.field.split(".")
        where: list[str] = []
        shape = []
        for p in parts:
            found = _WILD.findall(p)
            if found:
                where.extend(found)
                p = _WILD.sub("[*]", p)
            if p in WEEKDAYS:
                where.append(p)
                p = "*"
            shape.append(p)
        key = (".".join(shape), _fmt_value(c.field, c.base), _fmt_value(c.field, c.new))
        if key[1] == key[2]:
            continue
        groups.setdefault(key, []).append(where)
    rows = []
    for (field_, base, new), wheres in groups.items():
        cols = list(zip(*wheres, strict=True)) if wheres and wheres[0] else []
        where = " × ".join(_ordered(list(col)) for col in cols)
        rows.append({"change": FIELD_LABELS.get(field_, field_), "field": field_,
                     "where": where, "base": base, "new": new, "fields": str(len(wheres))})
    return rows
