"""Scenario files: loading, ``extends`` merging and validation of the :mod:`twin.schema` models.

A scenario is YAML validated by pydantic v2 (unknown keys rejected). ``extends: other.yaml``
deep-merges this file over another: mappings merge key by key, lists of mappings that carry an
``id`` merge item by item (an item with ``remove: true`` is dropped, and a removed room takes its
blocks with it), a distribution (a mapping with ``kind``) is replaced whole, other lists are
replaced. Every problem raises :class:`ScenarioError` naming the file, the field path and what
was expected. The schema's names are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import scenarios
from twin.distributions import KINDS
from twin.io import TextFileError, read_text
from twin.schema import (  # re-exported: the schema is part of this module's API
    PATIENT_CLASSES,
    ROLES,
    WEEKDAYS,
    AddOns,
    Beds,
    Block,
    Booking,
    Costs,
    Downtime,
    EndOfDay,
    KpiSettings,
    Pacu,
    PatientClass,
    Phases,
    Priority,
    Procedure,
    RandomDowntime,
    Room,
    Scenario,
    ScenarioError,
    Service,
    Shift,
    Spd,
    SpdOutage,
    SpdStage,
    Stress,
    Surgeon,
    Ward,
    Weekday,
    Window,
    clock,
    hhmm,
)

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


def read_yaml_mapping(path: Path, error: type[Exception] = ScenarioError,
                      directory: str | None = None) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; any problem raises ``error(path, where, what)``
    with a one-line message (``directory``: the message when ``path`` is a directory)."""
    if path.is_dir():
        raise error(path, "", directory or "cannot read file (Is a directory)")
    try:
        text = read_text(path)
    except TextFileError as e:  # missing, unreadable, binary or not UTF-8: one line
        raise error(path, "", e.problem) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise error(path, where, f"invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise error(path, "", "expected a YAML mapping at the top level")
    return data


def load_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged mapping of a scenario file, following ``extends`` chains."""
    path = Path(path)
    data = read_yaml_mapping(path)
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


def field_path(loc: tuple[Any, ...], data: Any) -> str:
    """A dotted field path of a pydantic error location; list indices become the item's id
    (``rooms[OR1]``) where it has one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and 0 <= item < len(node):
            node = node[item]
            ident = node.get("id") if isinstance(node, dict) else None
            parts.append(f"[{ident}]" if ident else f"[{item}]")
            continue
        if isinstance(item, str) and item in KINDS and not (isinstance(node, dict) and item in node):
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
            msg = "expected a distribution kind: " + ", ".join(KINDS)
        elif err["type"] == "too_short":
            msg = f"expected at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
        else:
            msg = msg.replace("Input should be", "expected")
        raise ScenarioError(source, field_path(tuple(err["loc"]), data), msg) from None
    problems = check_references(scn)
    if problems:
        field, msg = problems[0]
        raise ScenarioError(source, field, msg)
    return scn


def scenario_from_upload(name: str, data: bytes, library: str | Path) -> Scenario:
    """Validate an uploaded scenario file (its bytes and file name); a file it ``extends`` that
    did not come with it is taken from ``library`` (the bundled scenarios). Errors name the
    uploaded file."""
    import shutil
    import tempfile

    name = Path(name).name or "upload.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            head = read_yaml_mapping(path)
            parent = head.get("extends")
            if isinstance(parent, str) and "/" not in parent \
                    and (Path(library) / parent).is_file():
                shutil.copy(Path(library) / parent, Path(tmp) / parent)
            return from_mapping(load_raw(path), name)
        except ScenarioError as e:  # name the uploaded file, not its temporary copy
            file = Path(e.file).name if e.file.startswith(tmp) else e.file
            raise ScenarioError(file, e.field, e.message) from None
        except UnicodeDecodeError:
            raise ScenarioError(name, "", "not a text file (expected UTF-8 YAML)") from None


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge (``extends``) and validate a scenario file (and its booked list, if any);
    a bare name that is not a file (``baseline``) is the bundled scenario of that name."""
    path = scenarios.resolve(path)
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
            continue
        own = {p.id for p in scn.service(s.service).procedures}
        for pid in s.durations:
            if pid not in own:
                out.append((f"surgeons[{s.id}].durations.{pid}",
                            f"unknown procedure of service {s.service}"))
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


def with_horizon(scn: Scenario, days: int, source: str = "<scenario>") -> Scenario:
    """The scenario cut (or extended) to ``days``; planned downtime past the end is dropped."""
    data = scn.model_dump(by_alias=True)
    data["horizon_days"] = days
    for room in data["rooms"]:
        room["downtime"] = [d for d in room["downtime"] if d["day"] < days]
    data["spd"]["outages"] = [o for o in data["spd"]["outages"] if o["day"] < days]
    return from_mapping(data, source)


__all__ = [
    "AddOns",
    "Beds",
    "Block",
    "Booking",
    "Costs",
    "Downtime",
    "EndOfDay",
    "clock",
    "hhmm",
    "KpiSettings",
    "Pacu",
    "PATIENT_CLASSES",
    "PatientClass",
    "Phases",
    "Priority",
    "Procedure",
    "RandomDowntime",
    "ROLES",
    "Room",
    "Scenario",
    "ScenarioError",
    "Service",
    "Shift",
    "Spd",
    "SpdOutage",
    "SpdStage",
    "Stress",
    "Surgeon",
    "Ward",
    "Weekday",
    "WEEKDAYS",
    "Window",
    "check_references",
    "from_mapping",
    "load_raw",
    "load_scenario",
    "scenario_from_upload",
    "with_horizon",
]
