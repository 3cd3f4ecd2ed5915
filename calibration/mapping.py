"""Column mappings: a small YAML file that turns a site's case-log export into the canonical
schema of :mod:`calibration.schema`.

Example (the mapping shipped for the bundled 2022 log)::

    name: or_case_log_2022
    timestamp_format: "%m/%d/%y %H:%M"   # strptime format of the export's timestamps
    date_format: "%m/%d/%y"
    timezone: America/New_York           # zone the export's timestamps are written in
    local_timezone: America/New_York     # the hospital's zone (default: timezone)
    columns:                             # canonical column: the export's column
      case_id: Encounter ID
      in_room: Wheels In
    templates:                           # canonical column: a format applied to each value
      room: "OR{}"
    values:                              # canonical column: {export value: canonical value}
      service: {Orthopedics: ortho}
    constants:                           # canonical column: one value for every row
      priority: elective

A canonical column that is neither mapped nor given a constant is *not recorded*: KPIs that
need it are left out of replays, and calibration falls back to its template for it.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from calibration.schema import COLUMNS, HistoryError
from twin.scenario import field_path, read_yaml_mapping

MAPPINGS = Path(__file__).resolve().parent / "mappings"
"""The bundled column mappings (package data); a bare name such as ``or_case_log_2022`` that is
not a file names one of them."""


class Mapping(BaseModel):
    """A validated column mapping (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "canonical"
    description: str = ""
    timestamp_format: str = Field("ISO8601", description="strptime format, or ISO8601")
    date_format: str = Field("ISO8601", description="strptime format, or ISO8601")
    timezone: str | None = Field(None, description="zone of the export's timestamps")
    local_timezone: str | None = Field(None, description="the hospital's zone (default: timezone)")
    columns: dict[str, str] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    constants: dict[str, str | bool | int | float] = Field(default_factory=dict)
    true_values: list[str] = ["true", "t", "yes", "y", "1"]
    false_values: list[str] = ["false", "f", "no", "n", "0"]

    @field_validator("columns", "templates", "values", "constants")
    @classmethod
    def _canonical(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if k not in COLUMNS]
        if bad:
            raise ValueError(f"unknown canonical column {bad[0]!r}; expected one of "
                             + ", ".join(COLUMNS))
        return v

    @field_validator("templates")
    @classmethod
    def _template(cls, v: dict[str, str]) -> dict[str, str]:
        for k, t in v.items():
            if t.count("{}") != 1:
                raise ValueError(f"template of {k} must contain '{{}}' exactly once")
        return v

    @field_validator("timezone", "local_timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zoneinfo.ZoneInfo(v)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as "
                                 "Europe/London)") from None
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> Mapping:
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            raise ValueError(f"{both[0]} is both mapped to a column and given a constant")
        return self

    @property
    def converts_zone(self) -> bool:
        """Whether timestamps are converted from ``timezone`` to ``local_timezone``."""
        return bool(self.timezone and self.local_timezone
                    and self.timezone != self.local_timezone)


CANONICAL = Mapping()
"""The identity mapping for files already in the canonical schema (ISO timestamps)."""


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML (a path, or a bundled mapping's name); problems raise
    :class:`HistoryError` (one line)."""
    path = bundled_mapping(path)
    data = read_yaml_mapping(path, HistoryError)
    try:
        return Mapping.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise HistoryError(path, field_path(tuple(err["loc"]), data) or "mapping", msg) from None


def bundled_mapping(path: str | Path) -> Path:
    """``path`` when it is a file or has a folder part, else the bundled mapping of that name
    (``or_case_log_2022`` or ``or_case_log_2022.yaml``) when there is one."""
    given = Path(path)
    if given.exists() or given.name != str(path):
        return given
    found = MAPPINGS / f"{given.name.removesuffix('.yaml')}.yaml"
    return found if found.is_file() else given


__all__ = ["CANONICAL", "MAPPINGS", "Mapping", "bundled_mapping", "load_mapping"]
