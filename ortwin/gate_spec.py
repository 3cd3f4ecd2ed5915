"""The gates file: its pydantic schema and :func:`load_gates`, which validates a file, loads its
scenarios and reads the baselines of its relative gates before anything runs.

Every problem raises :class:`GateError` with a one-line message naming the file and the field.
:mod:`ortwin.gate` runs and evaluates the gates; see its docstring for the three kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.kpis import KPIS
from twin.scenario import Scenario, load_scenario, read_yaml_mapping

STATISTICS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "cvar95")
"""Summary statistics a gate can check (columns of ``summary.csv``)."""


class GateError(Exception):
    """A bad gates file or baseline; ``str()`` is one line: file: field: what was expected."""

    def __init__(self, file: str | Path, field: str, message: str):
        self.file, self.field, self.message = str(file), field, message
        where = f"{self.file}: {field}: " if field else f"{self.file}: "
        super().__init__(where + message)

    def __reduce__(self):
        return (GateError, (self.file, self.field, self.message))


# --- the gates file schema -------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_TOLERANCE = "expected a fraction from 0 to 1 such as 0.03, or a percentage such as 3%"
_IMPROVEMENT = ("expected a fraction from -1 (inclusive) to 1 (exclusive) such as 0.10, or a "
                "percentage such as 10%")
_CONFIDENCE = "expected a level between 0 and 1 (exclusive) such as 0.95, or a percentage"


def _percent(v: Any, message: str) -> Any:
    """``"3%"`` -> 0.03; true/false rejected; anything else left for pydantic."""
    if isinstance(v, bool):
        raise ValueError(message)
    if isinstance(v, str) and v.strip().endswith("%"):
        try:
            return float(v.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(message) from None
    return v


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, not true/false")
    return v


class Relative(_Model):
    """Compare with the same statistic in a stored summary."""

    tolerance: float = 0.0
    """Allowed worsening as a fraction of the baseline's magnitude (0.03 = 3%; "3%" accepted)."""
    slack: float = Field(0.0, ge=0)
    """Allowed worsening in KPI units on top of ``tolerance`` (useful when the baseline is 0)."""
    baseline: str | None = None
    """Summary file (CSV or parquet); default: the file's top-level ``baseline``."""
    policy: str | None = None
    """Baseline row's policy; default: the gate's policy."""

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance_percent(cls, v: Any) -> Any:
        return _percent(v, _TOLERANCE)

    @field_validator("tolerance")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError(_TOLERANCE)
        return v

    @field_validator("slack", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        return _not_bool(v)


class Versus(_Model):
    """Compare with another policy on the same replications (common random numbers)."""

    policy: str
    """The other policy, run on the same scenario, seed and replications."""
    improvement: float = 0.0
    """Required gain as a fraction of ``|mean of the other policy|`` in the KPI's better
    direction (0.10 = at least 10% better; 0 = no worse; -0.05 = at most 5% worse)."""
    slack: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Allowance in KPI units subtracted from the required gain (for means at or near 0)."""
    confidence: float | None = None
    """When set, the two-sided paired t-interval at this level must lie wholly on the better
    side of the margin; default: the paired mean difference itself must."""

    @field_validator("improvement", mode="before")
    @classmethod
    def _improvement_percent(cls, v: Any) -> Any:
        return _percent(v, _IMPROVEMENT)

    @field_validator("improvement")
    @classmethod
    def _improvement_range(cls, v: float) -> float:
        if not -1 <= v < 1:
            raise ValueError(_IMPROVEMENT)
        return v

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence_percent(cls, v: Any) -> Any:
        return _percent(v, _CONFIDENCE)

    @field_validator("confidence")
    @classmethod
    def _confidence_range(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v < 1:
            raise ValueError(_CONFIDENCE)
        return v

    @field_validator("slack", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        return _not_bool(v)


class Gate(_Model):
    """One threshold on one statistic of one KPI for one scenario and policy."""

    name: str | None = None
    scenario: str
    policy: str
    kpi: str
    stat: Literal["mean", "p50", "p90", "p95", "cvar95"] = "mean"
    op: Literal["<=", "<", ">=", ">"] | None = None
    value: float | None = Field(None, allow_inf_nan=False)
    relative: Relative | None = None
    versus: Versus | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        return _not_bool(v)

    @property
    def kind(self) -> Literal["absolute", "relative", "versus"]:
        if self.versus is not None:
            return "versus"
        return "absolute" if self.relative is None else "relative"

    @model_validator(mode="after")
    def _one_kind(self) -> Gate:
        absolute = self.op is not None or self.value is not None
        kinds = [k for k, on in (("op and value (absolute)", absolute),
                                 ("relative", self.relative is not None),
                                 ("versus", self.versus is not None)) if on]
        if len(kinds) > 1:
            raise ValueError(f"expected either {kinds[0]} or {kinds[1]}, not both")
        if not kinds:
            raise ValueError("expected op and value (absolute), relative or versus")
        if absolute and (self.op is None or self.value is None):
            raise ValueError("an absolute gate needs both op and value")
        return self


class GatesFile(_Model):
    """The top level of a gates file."""

    description: str | None = None
    reps: int = Field(10, ge=1)
    seed: int | None = Field(None, ge=0)
    days: int | None = Field(None, ge=1)
    workers: int = Field(1, ge=1)
    baseline: str | None = None
    scenarios: dict[str, str] = Field(min_length=1)
    gates: list[Gate] = Field(min_length=1)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _validation_error(path: Path, e: ValidationError) -> GateError:
    err = e.errors()[0]
    loc = tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "literal_error":
        msg = f"expected one of {ctx.get('expected', '')}".replace(" or ", ", ")
    elif err["type"] == "too_short":
        msg = f"expected at least {ctx.get('min_length', 1)} item(s)"
    else:
        msg = msg.replace("Input should be", "expected")
    return GateError(path, _loc(loc), " ".join(msg.split()))


# --- loading ---------------------------------------------------------------------------------


@dataclass
class GatePlan:
    """A validated gates file with its scenarios loaded and baselines read."""

    path: Path
    spec: GatesFile
    scenarios: dict[str, Scenario]
    """Scenario key (in the gates file) -> scenario, with ``days`` applied."""
    scenario_files: dict[str, Path]
    baselines: dict[int, float]
    """Gate index -> baseline statistic (relative gates only)."""
    baseline_files: dict[int, Path]

    def arms(self) -> list[tuple[str, str]]:
        """Distinct (scenario key, policy) pairs the gates need, in first-use order: each
        gate's own arm, then for a versus gate the other policy's arm on the same scenario."""
        pairs: list[tuple[str, str]] = []
        for g in self.spec.gates:
            pairs.append((g.scenario, g.policy))
            if g.versus is not None:
                pairs.append((g.scenario, g.versus.policy))
        return list(dict.fromkeys(pairs))


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, GateError, "expected a gates file, got a directory")


def read_summary(path: Path, gates_file: Path, field: str) -> pd.DataFrame:
    """A stored summary (``.parquet``, else CSV) with scenario, policy and kpi columns."""
    if not path.is_file():
        raise GateError(gates_file, field, f"baseline file {path} not found")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:  # any reader failure is bad input
        raise GateError(gates_file, field,
                        f"cannot read baseline file {path} ({type(e).__name__})") from None
    missing = [c for c in ("scenario", "policy", "kpi") if c not in df.columns]
    if missing:
        raise GateError(gates_file, field, f"baseline file {path} has no column {missing[0]!r} "
                        "(expected a summary written by ortwin run)")
    return df


def _check_gate(path: Path, spec: GatesFile, i: int, g: Gate, policies: dict) -> None:
    """Checks that need more than one field or the registries (scenario, policies, KPI)."""
    where = f"gates[{i}]"
    if g.scenario not in spec.scenarios:
        raise GateError(path, f"{where}.scenario", f"unknown scenario {g.scenario!r} "
                        f"(expected one of {', '.join(spec.scenarios)})")
    for fld, pol in (("policy", g.policy),
                     ("relative.policy", g.relative.policy if g.relative else None),
                     ("versus.policy", g.versus.policy if g.versus else None)):
        if pol is not None and pol not in policies:
            raise GateError(path, f"{where}.{fld}", f"unknown policy {pol!r} "
                            f"(expected one of {', '.join(policies)})")
    if g.kpi not in KPIS:
        raise GateError(path, f"{where}.kpi", f"unknown KPI {g.kpi!r} "
                        "(expected a key of twin.kpi_registry.KPIS, e.g. overtime_minutes)")
    if g.relative is not None and (g.relative.baseline or spec.baseline) is None:
        raise GateError(path, f"{where}.relative.baseline",
                        "required field is missing (no top-level baseline either)")
    if g.versus is not None:
        if g.versus.policy == g.policy:
            raise GateError(path, f"{where}.versus.policy", f"expected a policy other than "
                            f"the gate's own ({g.policy!r})")
        if g.stat != "mean":
            raise GateError(path, f"{where}.stat", "a versus gate compares means (the paired "
                            f"mean difference); expected mean or no stat, got {g.stat!r}")


def load_gates(path: str | Path, check_baselines: bool = True) -> GatePlan:
    """Read and validate a gates file, load its scenarios (``days`` applied) and look up every
    relative gate's baseline value (unless ``check_baselines`` is false, as when writing the
    baseline); raises :class:`GateError` (or ``ScenarioError`` for a bad scenario file) before
    anything runs."""
    from ortwin.registry import POLICIES

    path = Path(path)
    data = _read_yaml(path)
    try:
        spec = GatesFile.model_validate(data)
    except ValidationError as e:
        raise _validation_error(path, e) from None
    here = path.parent
    for i, g in enumerate(spec.gates):
        _check_gate(path, spec, i, g, POLICIES)

    files: dict[str, Path] = {}
    scenarios: dict[str, Scenario] = {}
    for key, rel in spec.scenarios.items():
        f = here / rel
        if not f.is_file():
            raise GateError(path, f"scenarios.{key}", f"scenario file {rel} not found")
        scn = load_scenario(f)
        if spec.days is not None:
            from twin.scenario import with_horizon

            scn = with_horizon(scn, spec.days, str(f))
        files[key], scenarios[key] = f, scn

    summaries: dict[Path, pd.DataFrame] = {}
    baselines: dict[int, float] = {}
    baseline_files: dict[int, Path] = {}
    for i, g in enumerate(spec.gates):
        if g.relative is None or not check_baselines:
            continue
        own = g.relative.baseline is not None
        fld = f"gates[{i}].relative.baseline" if own else "baseline"
        bfile = here / (g.relative.baseline if own else spec.baseline)  # type: ignore[operator]
        if bfile not in summaries:
            summaries[bfile] = read_summary(bfile, path, fld)
        df = summaries[bfile]
        if g.stat not in df.columns:
            raise GateError(path, fld, f"baseline file {bfile} has no column {g.stat!r}")
        scn_name = scenarios[g.scenario].name
        pol = g.relative.policy or g.policy
        rows = df[(df["scenario"] == scn_name) & (df["policy"] == pol) & (df["kpi"] == g.kpi)]
        if len(rows) != 1:
            what = "no row" if rows.empty else "several rows"
            raise GateError(path, f"gates[{i}]", f"{what} for scenario {scn_name!r}, policy "
                            f"{pol!r}, kpi {g.kpi!r} in baseline file {bfile}")
        try:
            baselines[i] = float(rows[g.stat].iloc[0])
        except (TypeError, ValueError):
            raise GateError(path, f"gates[{i}]", f"baseline file {bfile}: {g.stat} of "
                            f"{g.kpi} is not a number ({rows[g.stat].iloc[0]!r})") from None
        baseline_files[i] = bfile
    return GatePlan(path, spec, scenarios, files, baselines, baseline_files)
