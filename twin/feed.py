"""The live observation feed: one format for every source the twin listens to.

A feed is JSON lines, one :class:`Observation` per line: when (ISO 8601 with its UTC offset),
which room, what kind of thing was observed (a room state, a case milestone, or the status of
the source itself), its value, the case when known, the source (camera, EHR, manual entry, ...),
and a confidence. The format is versioned (``v``). Version 2 adds what the live now-cast needs:
``event_id`` (the sender's message id, for duplicate detection) and ``received`` (when the
interface got it, for late charting); version 1 lines stay readable. :func:`json_schema` is
published as package data, ``twin/schemas/observation-v2.schema.json`` (version 1's schema
is kept beside it). A line that does not parse is quarantined with its line number and reason, never silently
dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.events import CASE_MILESTONES
from twin.schema import ScenarioError, pydantic_message

FEED_VERSION = 2
"""Version of the observation format written by this package (``v`` of every line)."""
READ_VERSIONS: tuple[int, ...] = (1, 2)
"""Versions a reader accepts."""

ROOM_STATES: tuple[str, ...] = ("idle", "setup", "patient_in_room", "procedure", "turnover")
"""Values of ``room_state`` observations (the camera model's classes; see docs/vision.md)."""

ROOM_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "idle": ("setup", "patient_in_room"),
    "setup": ("idle", "patient_in_room"),
    "patient_in_room": ("procedure", "turnover", "idle", "setup"),
    "procedure": ("patient_in_room",),
    "turnover": ("idle", "setup", "patient_in_room"),
}
"""Room-state changes a room can make (besides staying): a patient enters a set-up (or, for an
emergency, idle or not-yet-clean) room; a procedure starts and ends with the patient in the
room; the patient leaves into turnover (or, rarely, straight to idle or setup); a cleaned room
becomes idle or is set up for the next case."""

MILESTONES: tuple[str, ...] = (*CASE_MILESTONES, "room_ready", "cancelled")
"""Values of ``milestone`` observations: the twin's case milestones, plus ``room_ready`` (a
room cleaned and free) and ``cancelled``."""

SOURCE_STATUS: tuple[str, ...] = ("live", "stale", "stopped")
"""Values of ``source_status`` observations: the source is sending again, has sent nothing for
longer than its stale limit, or was stopped."""

Kind = Literal["room_state", "milestone", "source_status"]
VALUES: dict[str, tuple[str, ...]] = {"room_state": ROOM_STATES, "milestone": MILESTONES,
                                      "source_status": SOURCE_STATUS}
"""Allowed values of each kind."""
Source = Literal["camera", "ehr", "manual", "rtls", "simulation"]

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "observation-v2.schema.json"
PACU = "PACU"
"""The ``room`` of PACU milestones (``pacu_in``, ``pacu_out``) when the source does not give the
operating room the patient came from."""


def parse_zone(name: str | None, field: str = "--tz") -> dt.tzinfo | None:
    """The IANA zone called ``name`` (None for None); unknown: one-line ScenarioError."""
    if name is None:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(field, "", f"unknown time zone {name!r} (expected an IANA name such "
                            "as America/New_York)") from None


class FeedError(ScenarioError):
    """A feed file or line that cannot be read; ``str()`` is one line: file: line N: what."""


class Observation(BaseModel):
    """One observation of the suite, as one JSON line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1, 2] = Field(FEED_VERSION, description="format version (required in a feed line)")
    time: dt.datetime = Field(description="when it was observed: ISO 8601 with a UTC offset")
    room: str = Field(min_length=1, description="room id as in the scenario (e.g. OR3)")
    kind: Kind = Field(description="room_state, milestone or source_status")
    value: str = Field(description="the state, milestone or source status (see docs/feed.md)")
    case_id: str | None = Field(None, description="the case, when the source knows it")
    source: Source = Field(description="what produced it")
    source_id: str | None = Field(None, description="which camera, system or person")
    confidence: float = Field(1.0, ge=0, le=1, description="probability the value is right")
    detail: str = Field("", description="free text (model version, reason, ...)")
    event_id: str | None = Field(None, description="v2: the sender's id of this message "
                                 "(a repeat of an id is a duplicate)")
    received: dt.datetime | None = Field(None, description="v2: when the interface received it "
                                         "(ISO 8601 with a UTC offset); later than time when "
                                         "charted late")

    @model_validator(mode="after")
    def _check(self) -> Observation:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("time: expected an ISO 8601 time with a UTC offset "
                             "(e.g. 2026-11-23T07:31:00+01:00)")
        if self.received is not None and self.received.utcoffset() is None:
            raise ValueError("received: expected an ISO 8601 time with a UTC offset")
        if self.v == 1 and (self.event_id is not None or self.received is not None):
            raise ValueError("v: event_id and received need version 2")
        allowed = VALUES[self.kind]
        if self.value not in allowed:
            raise ValueError(f"value: {self.value!r} is not a {self.kind} "
                             f"(expected one of {', '.join(allowed)})")
        return self

    def line(self) -> str:
        """The observation as one compact JSON line (no trailing newline); a version 1
        observation is written without the version 2 fields."""
        return self.model_dump_json(exclude={"event_id", "received"} if self.v == 1 else None)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one feed line (draft 2020-12, this version), as published in
    twin/schemas/."""
    schema = Observation.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"ORTwin feed observation, version {FEED_VERSION}"
    schema["properties"]["time"]["pattern"] = r"(Z|z|[+-]\d\d:?\d\d)$"  # an offset is required
    schema["properties"]["received"]["anyOf"][0]["pattern"] = r"(Z|z|[+-]\d\d:?\d\d)$"
    schema["required"] = sorted(set(schema.get("required", [])) | {"v"})
    schema["allOf"] = [
        {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
         "then": {"properties": {"value": {"enum": list(values)}}}}
        for kind, values in VALUES.items()]
    schema["allOf"].append({"if": {"properties": {"v": {"const": 1}}, "required": ["v"]},
                            "then": {"properties": {"event_id": {"type": "null"},
                                                    "received": {"type": "null"}}}})
    return schema


def parse_line(text: str, lineno: int = 1, file: str | Path = "<feed>") -> Observation:
    """One feed line as an :class:`Observation` (:class:`FeedError` naming the line, field and
    what was expected)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FeedError(file, f"line {lineno}", f"not JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise FeedError(file, f"line {lineno}", "expected a JSON object")
    if "v" not in data:
        raise FeedError(file, f"line {lineno}: v", f"required field is missing (the format "
                        f"version, {FEED_VERSION})")
    if data["v"] not in READ_VERSIONS:
        raise FeedError(file, f"line {lineno}: v", f"expected one of "
                        f"{', '.join(map(str, READ_VERSIONS))} (got {data['v']!r})")
    try:
        return Observation.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = pydantic_message(err)
        where = f"line {lineno}" + (f": {loc}" if loc and not msg.startswith(f"{loc}:") else "")
        raise FeedError(file, where, msg) from None


@dataclass
class Feed:
    """A feed file read whole: its observations in file order and its quarantined lines
    (``line``, ``reason``, ``text``)."""

    observations: list[Observation]
    quarantine: list[dict[str, Any]]
    lines_read: int
    numbers: list[int] = field(default_factory=list)  # file line of each observation
    last_line: int = 0  # the file's last complete line (blank ones included)


def read_feed(path: str | Path) -> Feed:
    """Read a JSON-lines feed; bad lines are quarantined with their reason (a file that cannot
    be read raises :class:`FeedError`). Blank lines are skipped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FeedError(p, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FeedError(p, "", f"cannot read file ({getattr(e, 'strerror', None) or e})") \
            from None
    return parse_lines(text, p)


def parse_lines(text: str, path: str | Path = "<feed>", first_line: int = 1) -> Feed:
    """Parse feed text whose first line is line ``first_line`` of ``path``; a last line without
    its newline is left for later (a writer may still be writing it)."""
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    obs, bad, nums, n = [], [], [], 0
    lines = text.splitlines()
    for i, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        n += 1
        try:
            obs.append(parse_line(line, i, path))
            nums.append(i)
        except FeedError as e:
            bad.append({"line": i, "reason": f"{e.field}: {e.message}", "text": line[:500]})
    return Feed(obs, bad, n, nums, first_line - 1 + len(lines))


def write_feed(observations: Iterable[Observation], path: str | Path) -> Path:
    """Write observations as JSON lines, atomically."""
    from twin.io import atomic_write

    text = "".join(o.line() + "\n" for o in observations)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(p, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Write :func:`json_schema` (regenerate the published copy with this)."""
    from twin.io import atomic_write

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(p, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
