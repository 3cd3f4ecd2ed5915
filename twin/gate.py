"""Release gates: KPI thresholds per scenario and policy, checked on fresh simulation runs.

A gates file (YAML, validated by pydantic v2, unknown keys rejected) names scenarios, run
settings (``reps``, ``seed``, ``days``) and a list of gates. Each gate takes a summary statistic
(``mean``, ``p50``, ``p90``, ``p95``, ``cvar95``) of one KPI for one scenario and policy and
checks it either

* **absolutely**: ``op`` (``<=``, ``<``, ``>=``, ``>``) against ``value``, or
* **relatively** against the same statistic in a stored summary (``summary.csv`` or
  ``summary.parquet`` as ``ortwin run`` writes): no more than ``tolerance`` (a fraction of the
  baseline's magnitude) plus ``slack`` (KPI units) worse, where "worse" follows the KPI
  registry's ``better`` direction.

:func:`load_gates` validates everything (file, schema, KPIs, policies, scenarios, baselines)
before anything runs; each problem raises :class:`GateError` naming the file and field.
:func:`run_gates` runs each distinct scenario x policy once and evaluates every gate;
:meth:`GateReport.write` writes results, JUnit XML and markdown, each file atomically.
Paths in a gates file are relative to the gates file.
"""

from __future__ import annotations

import math
import operator
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.cluster import Executor
from twin.kpis import KPIS, kpi_def
from twin.runner import _atomic, run_experiment
from twin.scenario import Scenario, load_scenario, read_yaml_mapping

STATISTICS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "cvar95")
"""Summary statistics a gate can check (columns of ``summary.csv``)."""

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}


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
    def _percent(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(_TOLERANCE)
        if isinstance(v, str) and v.strip().endswith("%"):
            try:
                return float(v.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(_TOLERANCE) from None
        return v

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


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, not true/false")
    return v


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

    @field_validator("value", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        return _not_bool(v)

    @model_validator(mode="after")
    def _one_kind(self) -> Gate:
        absolute = self.op is not None or self.value is not None
        if absolute and self.relative is not None:
            raise ValueError("expected either op and value (absolute) or relative, not both")
        if not absolute and self.relative is None:
            raise ValueError("expected op and value (absolute) or relative")
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
    return GateError(path, _loc(loc), msg)


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
        """Distinct (scenario key, policy) pairs the gates need, in first-use order."""
        return list(dict.fromkeys((g.scenario, g.policy) for g in self.spec.gates))


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


def load_gates(path: str | Path, check_baselines: bool = True) -> GatePlan:
    """Read and validate a gates file, load its scenarios (``days`` applied) and look up every
    relative gate's baseline value (unless ``check_baselines`` is false, as when writing the
    baseline); raises :class:`GateError` (or ``ScenarioError`` for a bad scenario file) before
    anything runs."""
    from policies import POLICIES

    path = Path(path)
    data = _read_yaml(path)
    try:
        spec = GatesFile.model_validate(data)
    except ValidationError as e:
        raise _validation_error(path, e) from None
    here = path.parent

    for i, g in enumerate(spec.gates):
        where = f"gates[{i}]"
        if g.scenario not in spec.scenarios:
            raise GateError(path, f"{where}.scenario", f"unknown scenario {g.scenario!r} "
                            f"(expected one of {', '.join(spec.scenarios)})")
        for fld, pol in (("policy", g.policy),
                         ("relative.policy", g.relative.policy if g.relative else None)):
            if pol is not None and pol not in POLICIES:
                raise GateError(path, f"{where}.{fld}", f"unknown policy {pol!r} "
                                f"(expected one of {', '.join(POLICIES)})")
        if g.kpi not in KPIS:
            raise GateError(path, f"{where}.kpi", f"unknown KPI {g.kpi!r} "
                            "(expected a key of twin.kpi_registry.KPIS, e.g. overtime_minutes)")
        if g.relative is not None and (g.relative.baseline or spec.baseline) is None:
            raise GateError(path, f"{where}.relative.baseline",
                            "required field is missing (no top-level baseline either)")

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


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class GateResult:
    """The outcome of one gate."""

    index: int
    name: str
    scenario: str
    policy: str
    kpi: str
    stat: str
    kind: Literal["absolute", "relative"]
    op: str
    threshold: float
    actual: float
    baseline: float
    passed: bool
    message: str


RESULT_COLUMNS = ("index", "name", "scenario", "policy", "kpi", "stat", "kind", "op",
                  "threshold", "actual", "baseline", "passed", "message")


def _num(x: float, unit: str = "") -> str:
    if math.isnan(x):
        return "NaN"
    text = f"{x:.6g}"
    return f"{text} {unit}" if unit and unit != "fraction" else text


def relative_threshold(baseline: float, better: Literal["lower", "higher"], tolerance: float,
                       slack: float = 0.0) -> tuple[str, float]:
    """The operator and bound of a relative gate: at most ``tolerance * |baseline| + slack``
    worse than ``baseline`` in the KPI's bad direction."""
    allowed = tolerance * abs(baseline) + slack
    return ("<=", baseline + allowed) if better == "lower" else (">=", baseline - allowed)


def gate_name(g: Gate) -> str:
    """The gate's ``name`` or a description such as ``overtime_minutes mean <= 45``."""
    if g.name:
        return g.name
    if g.relative is None:
        return f"{g.kpi} {g.stat} {g.op} {g.value:g}"
    r = g.relative
    unit = kpi_def(g.kpi).unit
    extra = f" + {_num(r.slack, unit)}" if r.slack else ""
    vs = f" ({r.policy})" if r.policy else ""
    return (f"{g.kpi} {g.stat} at most {r.tolerance * 100:.4g}%{extra} worse than "
            f"baseline{vs}")


def evaluate(plan: GatePlan, summary: pd.DataFrame) -> list[GateResult]:
    """Check every gate of ``plan`` against ``summary`` (a :func:`twin.summary.summarise`
    frame covering the plan's arms)."""
    table = summary.set_index(["scenario", "policy", "kpi"])
    out = []
    for i, g in enumerate(plan.spec.gates):
        scn_name = plan.scenarios[g.scenario].name
        d = kpi_def(g.kpi)
        key = (scn_name, g.policy, g.kpi)
        actual = float(table.loc[key, g.stat]) if key in table.index else math.nan
        what = f"{g.stat} of {g.kpi} ({g.scenario}, {g.policy})"
        if g.relative is None:
            op, threshold, base = str(g.op), float(g.value), math.nan  # type: ignore[arg-type]
            passed = not math.isnan(actual) and OPS[op](actual, threshold)
            verb = "" if passed else "not "
            msg = f"{what} = {_num(actual, d.unit)}; {verb}{op} {_num(threshold, d.unit)}"
        else:
            base = plan.baselines[i]
            r = g.relative
            op, threshold = relative_threshold(base, d.better, r.tolerance, r.slack)
            passed = not (math.isnan(actual) or math.isnan(threshold)) and OPS[op](actual, threshold)
            worse = (actual - base) if d.better == "lower" else (base - actual)
            change = ""
            if base and not math.isnan(worse):
                change = (f" ({abs(worse / base):.2%} {'worse' if worse > 0 else 'better'})"
                          if worse else " (same)")
            allowed = f"{r.tolerance * 100:.4g}%" + (f" + {_num(r.slack, d.unit)}" if r.slack else "")
            verb = "" if passed else "not "
            msg = (f"{what} = {_num(actual, d.unit)}{change}; baseline {_num(base, d.unit)}, "
                   f"{d.better} is better, allowed {allowed} worse: {verb}{op} "
                   f"{_num(threshold, d.unit)}")
        if math.isnan(actual):
            msg += " (no value: the KPI had no data in any replication)"
        out.append(GateResult(i, gate_name(g), g.scenario, g.policy, g.kpi, g.stat,
                              "absolute" if g.relative is None else "relative", op, threshold,
                              actual, base, passed, msg))
    return out


@dataclass
class GateReport:
    """What :func:`run_gates` found: results per gate plus the runs behind them."""

    plan: GatePlan
    results: list[GateResult]
    replications: pd.DataFrame
    summary: pd.DataFrame
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    """Run time per (scenario key, policy)."""

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def frame(self) -> pd.DataFrame:
        """One row per gate (:data:`RESULT_COLUMNS`)."""
        return pd.DataFrame([[getattr(r, c) for c in RESULT_COLUMNS] for r in self.results],
                            columns=list(RESULT_COLUMNS))

    def write(self, out_dir: str | Path | None = None, junit: str | Path | None = None,
              markdown: str | Path | None = None) -> list[Path]:
        """Write (each atomically, each only if asked for) the replications, summary and gate
        results into ``out_dir`` and the JUnit XML and markdown reports."""
        written = []
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            for name, df in (("replications", self.replications), ("summary", self.summary),
                             ("gate_results", self.frame())):
                written.append(_atomic(out / f"{name}.parquet",
                                       lambda p, d=df: d.to_parquet(p, index=False)))
            written.append(_atomic(out / "summary.csv",
                                   lambda p: self.summary.to_csv(p, index=False)))
        if junit is not None:
            j = Path(junit)
            j.parent.mkdir(parents=True, exist_ok=True)
            xml = junit_xml(self)
            written.append(_atomic(j, lambda p: Path(p).write_bytes(xml)))
        if markdown is not None:
            m = Path(markdown)
            m.parent.mkdir(parents=True, exist_ok=True)
            md = format_markdown(self)
            written.append(_atomic(m, lambda p: Path(p).write_text(md, encoding="utf-8")))
        return written


def run_gates(plan: GatePlan, workers: int | None = None,
              progress: Callable[[int], None] | None = None,
              cluster: str | Executor | None = None) -> GateReport:
    """Run each distinct scenario x policy of ``plan`` once (``reps``/``seed`` of the gates
    file, the same seed for every policy of a scenario) and evaluate every gate. ``cluster``:
    an open :mod:`twin.cluster` executor or a ``--cluster`` value (see :func:`run_experiment`)."""
    spec = plan.spec
    reps_frames, summ_frames, seconds = [], [], {}
    for key, pol in plan.arms():
        scn = plan.scenarios[key]
        t0 = time.perf_counter()
        res = run_experiment(scn, pol, spec.reps, spec.seed, workers or spec.workers,
                             keep_events=False, progress=progress,
                             base_dir=plan.scenario_files[key].parent, cluster=cluster,
                             detail=False)
        seconds[(key, pol)] = time.perf_counter() - t0
        reps_frames.append(res.replications)
        summ_frames.append(res.summary)
    replications = pd.concat(reps_frames, ignore_index=True)
    summary = pd.concat(summ_frames, ignore_index=True)
    summary["n"] = summary["n"].astype("int64")
    return GateReport(plan, evaluate(plan, summary), replications, summary, seconds)


def write_baseline(plan: GatePlan, out: str | Path, workers: int | None = None,
                   cluster: str | Executor | None = None) -> Path:
    """Run every arm of ``plan`` and write the combined summary to ``out`` (CSV, or parquet
    when the name ends in ``.parquet``) atomically: a baseline for relative gates."""
    summ = []
    for key, pol in plan.arms():
        res = run_experiment(plan.scenarios[key], pol, plan.spec.reps, plan.spec.seed,
                             workers or plan.spec.workers, keep_events=False,
                             base_dir=plan.scenario_files[key].parent, cluster=cluster,
                             detail=False)
        summ.append(res.summary)
    summary = pd.concat(summ, ignore_index=True)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        return _atomic(path, lambda p: summary.to_parquet(p, index=False))
    return _atomic(path, lambda p: summary.to_csv(p, index=False))


# --- reports ---------------------------------------------------------------------------------


def _settings(plan: GatePlan) -> str:
    s = plan.spec
    seed = "scenario seed" if s.seed is None else f"seed {s.seed}"
    days = "scenario horizon" if s.days is None else f"{s.days} days"
    return f"{s.reps} replications, {seed}, {days}"


def junit_xml(report: GateReport) -> bytes:
    """JUnit XML: one ``testsuite`` per scenario x policy, one ``testcase`` per gate, a
    ``failure`` (message: actual vs threshold) for each gate that does not hold."""
    plan = report.plan
    total = len(report.results)
    fails = len(report.failures)
    root = ET.Element("testsuites", {
        "name": f"ortwin gate {plan.path.name}", "tests": str(total), "failures": str(fails),
        "errors": "0", "time": f"{sum(report.seconds.values()):.3f}"})
    for key, pol in plan.arms():
        mine = [r for r in report.results if (r.scenario, r.policy) == (key, pol)]
        suite = ET.SubElement(root, "testsuite", {
            "name": f"{key} / {pol}", "tests": str(len(mine)),
            "failures": str(sum(not r.passed for r in mine)), "errors": "0", "skipped": "0",
            "time": f"{report.seconds.get((key, pol), 0.0):.3f}"})
        props = ET.SubElement(suite, "properties")
        for name, value in (("gates_file", str(plan.path)),
                            ("scenario_file", str(plan.scenario_files[key])),
                            ("settings", _settings(plan))):
            ET.SubElement(props, "property", {"name": name, "value": value})
        for r in mine:
            case = ET.SubElement(suite, "testcase", {
                "classname": f"ortwin.gate.{key}.{pol}", "name": r.name, "time": "0"})
            if not r.passed:
                fail = ET.SubElement(case, "failure", {"message": r.message, "type": "GateFailed"})
                fail.text = r.message
            else:
                ET.SubElement(case, "system-out").text = r.message
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(report: GateReport) -> str:
    """A markdown summary: verdict, settings and a table with one row per gate."""
    plan = report.plan
    n, f = len(report.results), len(report.failures)
    head = (f"## ORTwin gates: {plan.path.name}: "
            + ("all passed" if not f else f"{f} of {n} failed"))
    lines = [head, "", f"{n} gates on {len(plan.arms())} scenario x policy runs "
             f"({_settings(plan)}).", "",
             "| result | scenario | policy | gate | actual | threshold | baseline |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in report.results:
        unit = kpi_def(r.kpi).unit
        lines.append("| " + " | ".join([
            "pass" if r.passed else "**FAIL**", _md(r.scenario), _md(r.policy), _md(r.name),
            _num(r.actual, unit), f"{r.op} {_num(r.threshold, unit)}",
            "" if r.kind == "absolute" else _num(r.baseline, unit)]) + " |")
    if f:
        lines += ["", "### Failures", ""]
        lines += [f"- `{_md(r.name)}`: {_md(r.message)}"
                  for r in report.failures]
    return "\n".join(lines) + "\n"


def format_report(report: GateReport) -> str:
    """Terminal text: one PASS/FAIL line per gate and a total line."""
    n, f = len(report.results), len(report.failures)
    lines = [f"{'PASS' if r.passed else 'FAIL'}  {r.name}: {r.message}" for r in report.results]
    lines.append(f"{n} gates: {n - f} passed, {f} failed")
    return "\n".join(lines)
