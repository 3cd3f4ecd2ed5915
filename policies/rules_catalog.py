"""The rules catalog: scheduling rules as data (``policies/rules/*.yaml``), validated by pydantic.

A catalog file is a mapping with a ``name``, an optional ``description`` and a list of
``rules``. Every rule has

- ``id``: a unique name, quoted in audit events (``rule_violation`` / ``rule_override``);
- ``description``: what the rule says, in plain words;
- ``severity``: ``enforced`` (a hard rule: the rules policy never makes a plan that breaks it,
  and :func:`policies.checks.check_plan` checks it), ``monitored`` (the policy follows it where
  it can; every departure is written to the audit log) or ``advisory`` (guidance the policy
  follows where it can, not audited);
- ``owner``: who answers for the rule (a committee, a role);
- ``overridable``: whether a departure may be justified. A monitored, overridable rule that the
  policy departs from for a documented reason is written as a ``rule_override`` with a
  justification code (:data:`JUSTIFICATIONS`); any other departure from a monitored rule is a
  ``rule_violation``. An enforced rule cannot be overridable (make it monitored instead);
- ``kind``: what the engine does with it (:data:`KINDS`), and ``params`` checked per kind.

Kinds and what they mean (the definitions :mod:`policies.rules_policy` implements and
:mod:`policies.checks` checks, independently):

``sequence``
    Within each room, cases run in order of expected (P50 forecast) duration:
    ``order: longest_first`` or ``shortest_first``. When the next case in order would wait more
    than ``reorder_after_minutes`` for staff, trays, a PACU bed or its surgeon, a later case that
    can start sooner goes first (a departure; never when the rule is enforced).
``plan_percentile``
    Each case is planned for its forecast at ``quantile`` (0.5, 0.8 or 0.95) rather than its
    booked minutes: a room's next case starts no earlier than the previous one's start plus that
    forecast plus the planned turnover.
``addon_reserve``
    Keep ``reserve`` minutes at the end of every elective room-day free for add-ons: a room's
    planned end (forecast at the plan quantile) is at most close − reserve. The reserve is derived
    from the scenario's add-on rate: the expected add-on arrivals within the room's staffed
    window that day (``addons.per_day × stress.addon_factor × weekday_factor`` × the share of
    ``hourly_profile`` inside the window), times the mean add-on in-room minutes (procedure
    medians weighted by the add-on service mix and procedure weights) plus the planned turnover,
    spread evenly over the rooms staffed that day (``addon_only`` rooms excluded; their staffed
    minutes absorb add-ons first), times ``factor`` and capped at ``max_minutes``.
``emergent_bump``
    An arriving add-on whose priority is in ``priorities`` goes to the front of the capable room
    that will be free soonest (behind emergent cases already waiting there), bumping electives
    and urgent add-ons; rooms staffed now first, then on-call rooms. A departure: its expected
    wait is over ``max_wait_minutes``.
``move_on_overrun``
    When a room's case runs past its booked end and the room's next waiting case is already more
    than ``threshold_minutes`` behind its planned start (now + planned turnover − planned start),
    that case moves to a capable room staffed now that can start it sooner (after that room's own
    queue, within its staffed hours and ``max_planned_overtime``), same day. A departure: no
    capable room can start it sooner.
``move_on_room_down``
    When a room goes down for at least ``min_down_minutes``, each waiting case that would start
    later than planned moves to the capable room staffed now that starts it soonest, if sooner.
    A departure: no capable room can start it sooner.
``max_planned_overtime``
    A room's planned end (forecast at the plan quantile) is at most close + ``minutes``. With
    ``relocate: true`` a case that does not fit in its own room may move to another capable room
    the same day (with slack: it still ends by close − its add-on reserve there) if its surgeon
    is free then.
``surgeon_one_room``
    A surgeon's planned cases never overlap, and cases of one surgeon in two different rooms are
    at least ``gap_minutes`` apart.
``first_case_at_open``
    Each room's first planned case starts by the room's open + ``grace_minutes``.
``plan_all_booked``
    Every booked elective is planned on its booked day (monitored or advisory only: it can
    conflict with hard constraints).

:func:`load_catalog` reads one or more files (rules concatenated, ids unique across them) and
raises :class:`twin.scenario.ScenarioError` with a one-line ``file: field path: expected ...``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.scenario import ScenarioError, field_path, read_yaml_mapping
from twin.schema import pydantic_message

RULES_DIR = Path(__file__).resolve().parent / "rules"
STANDARD = RULES_DIR / "standard.yaml"

Severity = Literal["enforced", "monitored", "advisory"]
SEVERITIES: tuple[str, ...] = ("enforced", "monitored", "advisory")

JUSTIFICATIONS: dict[str, str] = {
    "block_booking": "the block owner's booked cases keep their block time",
    "capacity": "no capable room could take the case within the hard constraints and enforced rules",
    "relocated_case": "a case moved from an over-full room runs after the target room's own cases",
    "resource_limit": "crew, trays, PACU beds or the surgeon were not free earlier",
}
"""Justification codes written with ``rule_override`` events (``detail = "<rule id>: <code>"``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- params per kind ---------------------------------------------------------------------------
class SequenceParams(_Strict):
    """Order of cases within a room by expected duration."""

    order: Literal["longest_first", "shortest_first"] = "longest_first"
    reorder_after_minutes: float = Field(15.0, ge=0)


class PlanPercentileParams(_Strict):
    """The forecast quantile a plan leaves room for."""

    quantile: Literal[0.5, 0.8, 0.95] = 0.8


class AddonReserveParams(_Strict):
    """Reserve per room-day = factor × expected daytime add-on minutes / staffed rooms."""

    factor: float = Field(1.0, ge=0)
    max_minutes: float = Field(120.0, ge=0)


class EmergentBumpParams(_Strict):
    """Which add-ons bump electives, and the wait they should not exceed."""

    priorities: tuple[Literal["emergent", "urgent"], ...] = ("emergent",)
    max_wait_minutes: float = Field(60.0, ge=0)


class MoveOnOverrunParams(_Strict):
    """How late the next waiting case must be before it moves."""

    threshold_minutes: float = Field(15.0, ge=0)


class MoveOnRoomDownParams(_Strict):
    """How long a room must be down before its waiting cases move."""

    min_down_minutes: float = Field(30.0, ge=0)


class MaxPlannedOvertimeParams(_Strict):
    """Planned end at the plan quantile <= close + minutes; relocate cases that do not fit."""

    minutes: float = Field(60.0, ge=0)
    relocate: bool = True


class SurgeonOneRoomParams(_Strict):
    """A surgeon's cases never overlap; cases in different rooms at least gap_minutes apart."""

    gap_minutes: float = Field(0.0, ge=0)


class FirstCaseAtOpenParams(_Strict):
    """First case of each room planned by open + grace_minutes."""

    grace_minutes: float = Field(0.0, ge=0)


class PlanAllBookedParams(_Strict):
    """Every booked elective is planned on its booked day (no parameters)."""


PARAMS: dict[str, type[_Strict]] = {
    "sequence": SequenceParams,
    "plan_percentile": PlanPercentileParams,
    "addon_reserve": AddonReserveParams,
    "emergent_bump": EmergentBumpParams,
    "move_on_overrun": MoveOnOverrunParams,
    "move_on_room_down": MoveOnRoomDownParams,
    "max_planned_overtime": MaxPlannedOvertimeParams,
    "surgeon_one_room": SurgeonOneRoomParams,
    "first_case_at_open": FirstCaseAtOpenParams,
    "plan_all_booked": PlanAllBookedParams,
}
KINDS: tuple[str, ...] = tuple(PARAMS)
"""Rule kinds the engine implements."""

NOT_ENFORCEABLE: frozenset[str] = frozenset(
    {"emergent_bump", "move_on_overrun", "move_on_room_down", "plan_all_booked"})
"""Kinds that cannot be enforced: day-of decisions and goals that may conflict with hard
constraints (a plan cannot guarantee them)."""


# --- a rule and a catalog ------------------------------------------------------------------------
class Rule(_Strict):
    """One rule of the catalog."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field(min_length=1)
    severity: Severity
    owner: str = Field(min_length=1)
    overridable: bool
    kind: str
    params: Any = None

    @model_validator(mode="before")
    @classmethod
    def _params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("kind")
        if kind is None:
            return data  # "required field is missing" follows
        if not isinstance(kind, str) or kind not in PARAMS:
            raise _FieldError(("kind",), f"expected a rule kind: {', '.join(KINDS)}")
        data = dict(data)
        raw = data.get("params")
        try:
            data["params"] = PARAMS[kind].model_validate({} if raw is None else raw)
        except ValidationError as e:
            err = e.errors()[0]
            raise _FieldError(("params", *err["loc"]), pydantic_message(err)) from None
        return data

    @model_validator(mode="after")
    def _severity(self) -> Rule:
        if self.severity == "enforced" and self.overridable:
            raise _FieldError(("overridable",), "expected false for an enforced rule "
                              "(a rule that may be overridden is monitored)")
        if self.severity == "enforced" and self.kind in NOT_ENFORCEABLE:
            raise _FieldError(("severity",), f"expected monitored or advisory for kind "
                              f"{self.kind!r} (it cannot be enforced on a plan)")
        return self

    def param(self, key: str) -> Any:
        """One parameter of the rule."""
        return getattr(self.params, key)


class _FieldError(ValueError):
    """A problem at a field path below the model being validated."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc, self.message = loc, message


class RuleCatalog(_Strict):
    """A validated set of rules (at most one rule of each kind)."""

    name: str = Field(min_length=1)
    description: str = ""
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _unique(self) -> RuleCatalog:
        ids, kinds = set(), set()
        for i, r in enumerate(self.rules):
            if r.id in ids:
                raise _FieldError(("rules", i, "id"), f"duplicate rule id {r.id!r}")
            if r.kind in kinds:
                raise _FieldError(("rules", i, "kind"),
                                  f"expected at most one rule of kind {r.kind!r}")
            ids.add(r.id)
            kinds.add(r.kind)
        return self

    def get(self, kind: str) -> Rule | None:
        """The catalog's rule of ``kind``, or None."""
        return next((r for r in self.rules if r.kind == kind), None)

    def by_id(self, rule_id: str) -> Rule:
        """The rule with this id (``KeyError`` if none)."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def with_severity(self, *severities: str) -> list[Rule]:
        """Rules of the given severities, in catalog order."""
        return [r for r in self.rules if r.severity in severities]

    def enforced(self) -> list[Rule]:
        """The enforced rules."""
        return self.with_severity("enforced")


# --- loading ------------------------------------------------------------------------------------
def catalog_from_mapping(data: dict[str, Any], source: str | Path = "<catalog>") -> RuleCatalog:
    """Validate a mapping into a :class:`RuleCatalog` (raises :class:`ScenarioError`)."""
    try:
        return RuleCatalog.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc, msg = tuple(err["loc"]), pydantic_message(err)
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _FieldError):
            loc, msg = loc + ctx_err.loc, ctx_err.message
        raise ScenarioError(source, field_path(loc, data), msg) from None


def load_catalog(path_or_paths: str | Path | Iterable[str | Path] | None = None) -> RuleCatalog:
    """Load a catalog file, or several (rules concatenated; ids and kinds unique across them).

    ``None`` loads the standard catalog (``policies/rules/standard.yaml``).
    """
    if path_or_paths is None:
        return standard_catalog()
    paths = [Path(path_or_paths)] if isinstance(path_or_paths, (str, Path)) else \
        [Path(p) for p in path_or_paths]
    if not paths:
        raise ValueError("load_catalog: expected at least one file")
    catalogs = [catalog_from_mapping(read_yaml_mapping(p), p) for p in paths]
    if len(catalogs) == 1:
        return catalogs[0]
    rules: list[Rule] = []
    ids: dict[str, Path] = {}
    kinds: dict[str, Path] = {}
    for path, cat in zip(paths, catalogs, strict=True):
        for r in cat.rules:
            if r.id in ids:
                raise ScenarioError(path, f"rules[{r.id}].id",
                                    f"duplicate rule id (also in {ids[r.id]})")
            if r.kind in kinds:
                raise ScenarioError(path, f"rules[{r.id}].kind",
                                    f"expected at most one rule of kind {r.kind!r} (also in {kinds[r.kind]})")
            ids[r.id], kinds[r.kind] = path, path
            rules.append(r)
    return RuleCatalog(name="+".join(c.name for c in catalogs),
                       description=" ".join(c.description for c in catalogs if c.description),
                       rules=rules)


@functools.lru_cache(maxsize=1)
def standard_catalog() -> RuleCatalog:
    """The standard catalog shipped in ``policies/rules/standard.yaml`` (loaded once)."""
    return catalog_from_mapping(read_yaml_mapping(STANDARD), STANDARD)


__all__ = [
    "JUSTIFICATIONS",
    "KINDS",
    "PARAMS",
    "SEVERITIES",
    "STANDARD",
    "Rule",
    "RuleCatalog",
    "catalog_from_mapping",
    "load_catalog",
    "standard_catalog",
]
