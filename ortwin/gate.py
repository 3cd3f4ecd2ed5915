"""Release gates: KPI thresholds per scenario and policy, checked on fresh simulation runs.

A gates file (YAML, validated by pydantic v2, unknown keys rejected; :mod:`ortwin.gate_spec`)
names scenarios, run settings (``reps``, ``seed``, ``days``) and a list of gates. Each gate
takes one KPI for one scenario and policy and checks it in one of three ways:

* **absolute**: a summary statistic (``mean``, ``p50``, ``p90``, ``p95``, ``cvar95``) ``op``
  (``<=``, ``<``, ``>=``, ``>``) ``value``;
* **relative**: the statistic against the same statistic in a stored summary (``summary.csv``
  or ``summary.parquet`` as ``ortwin run`` writes): no more than ``tolerance`` (a fraction of
  the baseline's magnitude) plus ``slack`` (KPI units) worse;
* **versus** another policy run on the same scenario, seed and replications (common random
  numbers): the paired mean difference ``policy - other`` must be at least ``improvement`` x
  ``|mean of other|`` (less ``slack``) on the better side; with ``confidence`` its whole paired
  t-interval must.

"Worse" and "better" follow the KPI registry's ``better`` direction.

:func:`load_gates` validates everything (file, schema, KPIs, policies, scenarios, baselines)
before anything runs; each problem raises :class:`GateError` naming the file and field.
:func:`run_gates` runs each distinct scenario x policy once (the other policy of a versus gate
included) and evaluates every gate; :meth:`GateReport.write` writes results, JUnit XML and
markdown (:mod:`ortwin.gate_report`), each file atomically. Paths in a gates file are relative
to the gates file.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from ortwin.cluster import Executor
from ortwin.experiment import run_experiment
from ortwin.gate_report import (
    fmt_num,
    fmt_signed,
    format_markdown,
    format_report,
    junit_xml,
)
from ortwin.gate_spec import (
    STATISTICS,
    Gate,
    GateError,
    GatePlan,
    GatesFile,
    Relative,
    Versus,
    load_gates,
    read_summary,
)
from ortwin.summary import paired_difference
from twin.io import atomic_write
from twin.kpis import kpi_def

__all__ = [
    "OPS", "RESULT_COLUMNS", "STATISTICS", "Gate", "GateError", "GatePlan", "GateReport",
    "GateResult", "GatesFile", "Relative", "Versus", "evaluate", "format_markdown",
    "format_report", "gate_name", "junit_xml", "load_gates", "read_summary",
    "relative_threshold", "run_gates", "versus_threshold", "write_baseline",
]

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}

# --- evaluation ------------------------------------------------------------------------------


@dataclass
class GateResult:
    """The outcome of one gate. For a versus gate ``actual`` is the policy's mean,
    ``versus_actual`` the other policy's, and ``op threshold`` applies to ``checked`` (the
    paired mean difference, or the CI bound on the worse side when ``confidence`` is set)."""

    index: int
    name: str
    scenario: str
    policy: str
    kpi: str
    stat: str
    kind: Literal["absolute", "relative", "versus"]
    op: str
    threshold: float
    actual: float
    baseline: float
    passed: bool
    message: str
    versus: str = ""
    versus_actual: float = math.nan
    mean_diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    ci_level: float = math.nan
    checked: str = ""
    """``mean_diff``, ``ci_high`` or ``ci_low`` (versus gates), else empty."""
    pairs: int = 0


RESULT_COLUMNS = ("index", "name", "scenario", "policy", "kpi", "stat", "kind", "op",
                  "threshold", "actual", "baseline", "passed", "message", "versus",
                  "versus_actual", "mean_diff", "ci_low", "ci_high", "ci_level", "checked",
                  "pairs")


def relative_threshold(baseline: float, better: Literal["lower", "higher"], tolerance: float,
                       slack: float = 0.0) -> tuple[str, float]:
    """The operator and bound of a relative gate: at most ``tolerance * |baseline| + slack``
    worse than ``baseline`` in the KPI's bad direction."""
    allowed = tolerance * abs(baseline) + slack
    return ("<=", baseline + allowed) if better == "lower" else (">=", baseline - allowed)


def versus_threshold(other: float, better: Literal["lower", "higher"], improvement: float,
                     slack: float = 0.0) -> tuple[str, float]:
    """The operator and bound on the paired difference ``policy - other`` of a versus gate: a
    gain of at least ``improvement * |other| - slack`` in the KPI's better direction."""
    gain = improvement * abs(other) - slack
    return ("<=", 0.0 - gain) if better == "lower" else (">=", gain + 0.0)  # no -0.0


def versus_requirement(v: Versus, unit: str) -> str:
    """``at least 10% better than manual``, ``no worse than manual`` or ``at most 2% worse
    than manual``, then ``with 1 cases slack`` when there is slack."""
    pct = f"{abs(v.improvement) * 100:.4g}%"
    text = ("no worse" if v.improvement == 0 else
            f"at least {pct} better" if v.improvement > 0 else f"at most {pct} worse")
    return f"{text} than {v.policy}" + (f" with {fmt_num(v.slack, unit)} slack" if v.slack
                                        else "")


def gate_name(g: Gate) -> str:
    """The gate's ``name`` or a description such as ``overtime_minutes mean <= 45``."""
    if g.name:
        return g.name
    unit = kpi_def(g.kpi).unit
    if g.versus is not None:
        v = g.versus
        ci = f" ({v.confidence:.4g} CI)" if v.confidence is not None else ""
        return f"{g.kpi} mean {versus_requirement(v, unit)}{ci}"
    if g.relative is None:
        return f"{g.kpi} {g.stat} {g.op} {g.value:g}"
    r = g.relative
    extra = f" + {fmt_num(r.slack, unit)}" if r.slack else ""
    vs = f" ({r.policy})" if r.policy else ""
    return (f"{g.kpi} {g.stat} at most {r.tolerance * 100:.4g}%{extra} worse than "
            f"baseline{vs}")


_CHECKED = {"mean_diff": "mean difference", "ci_high": "CI upper bound",
            "ci_low": "CI lower bound"}


def _versus(i: int, g: Gate, scn_name: str, actual: float, table: pd.DataFrame,
            replications: pd.DataFrame) -> GateResult:
    v = g.versus
    assert v is not None
    d = kpi_def(g.kpi)
    key = (scn_name, v.policy, g.kpi)
    other = float(table.loc[key, "mean"]) if key in table.index else math.nan
    level = 0.95 if v.confidence is None else v.confidence
    sub = replications[(replications["scenario"] == scn_name)
                       & replications["policy"].isin([g.policy, v.policy])]
    if g.kpi in sub.columns:
        sides = [sub.loc[sub["policy"] == p].set_index("rep")[g.kpi] for p in (g.policy, v.policy)]
        pairs = len(pd.concat(sides, axis=1, join="inner").dropna())
        mean, lo, hi = paired_difference(sub, g.kpi, g.policy, v.policy, level=level)
    else:
        pairs, (mean, lo, hi) = 0, (math.nan,) * 3
    op, threshold = versus_threshold(other, d.better, v.improvement, v.slack)
    checked = ("mean_diff" if v.confidence is None
               else "ci_high" if d.better == "lower" else "ci_low")
    value = {"mean_diff": mean, "ci_low": lo, "ci_high": hi}[checked]
    passed = not (math.isnan(value) or math.isnan(threshold)) and OPS[op](value, threshold)
    u = d.unit
    verb = "" if passed else "not "
    msg = (f"mean of {g.kpi} ({g.scenario}): {g.policy} {fmt_num(actual, u)} vs {v.policy} "
           f"{fmt_num(other, u)}; paired difference {fmt_signed(mean, u)} ({level:.4g} CI "
           f"[{fmt_signed(lo, u)}, {fmt_signed(hi, u)}], {pairs} pairs); {d.better} is "
           f"better, required {versus_requirement(v, u)}: {_CHECKED[checked]} {verb}{op} "
           f"{fmt_signed(threshold, u)}")
    if pairs == 0:
        msg += " (no value: no replication where both policies have the KPI)"
    elif math.isnan(value):
        msg += " (no interval: fewer than 2 paired replications)"
    return GateResult(i, gate_name(g), g.scenario, g.policy, g.kpi, g.stat, "versus", op,
                      threshold, actual, math.nan, passed, msg, v.policy, other, mean, lo, hi,
                      level, checked, pairs)


def evaluate(plan: GatePlan, summary: pd.DataFrame,
             replications: pd.DataFrame | None = None) -> list[GateResult]:
    """Check every gate of ``plan`` against ``summary`` (a :func:`ortwin.summary.summarise`
    frame covering the plan's arms); versus gates need the ``replications`` behind it."""
    table = summary.set_index(["scenario", "policy", "kpi"])
    out = []
    for i, g in enumerate(plan.spec.gates):
        scn_name = plan.scenarios[g.scenario].name
        d = kpi_def(g.kpi)
        key = (scn_name, g.policy, g.kpi)
        actual = float(table.loc[key, g.stat]) if key in table.index else math.nan
        if g.versus is not None:
            if replications is None:
                raise ValueError("evaluate: versus gates need the replications")
            out.append(_versus(i, g, scn_name, actual, table, replications))
            continue
        what = f"{g.stat} of {g.kpi} ({g.scenario}, {g.policy})"
        if g.relative is None:
            op, threshold, base = str(g.op), float(g.value), math.nan  # type: ignore[arg-type]
            passed = not math.isnan(actual) and OPS[op](actual, threshold)
            verb = "" if passed else "not "
            msg = f"{what} = {fmt_num(actual, d.unit)}; {verb}{op} {fmt_num(threshold, d.unit)}"
        else:
            base = plan.baselines[i]
            r = g.relative
            op, threshold = relative_threshold(base, d.better, r.tolerance, r.slack)
            known = not (math.isnan(actual) or math.isnan(threshold))
            passed = known and OPS[op](actual, threshold)
            worse = (actual - base) if d.better == "lower" else (base - actual)
            change = ""
            if base and not math.isnan(worse):
                change = (f" ({abs(worse / base):.2%} {'worse' if worse > 0 else 'better'})"
                          if worse else " (same)")
            allowed = (f"{r.tolerance * 100:.4g}%"
                       + (f" + {fmt_num(r.slack, d.unit)}" if r.slack else ""))
            verb = "" if passed else "not "
            msg = (f"{what} = {fmt_num(actual, d.unit)}{change}; baseline "
                   f"{fmt_num(base, d.unit)}, {d.better} is better, allowed {allowed} worse: "
                   f"{verb}{op} {fmt_num(threshold, d.unit)}")
        if math.isnan(actual):
            msg += " (no value: the KPI had no data in any replication)"
        out.append(GateResult(i, gate_name(g), g.scenario, g.policy, g.kpi, g.stat, g.kind,
                              op, threshold, actual, base, passed, msg))
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
                written.append(atomic_write(out / f"{name}.parquet",
                                       lambda p, d=df: d.to_parquet(p, index=False)))
            written.append(atomic_write(out / "summary.csv",
                                   lambda p: self.summary.to_csv(p, index=False)))
        if junit is not None:
            j = Path(junit)
            j.parent.mkdir(parents=True, exist_ok=True)
            xml = junit_xml(self)
            written.append(atomic_write(j, lambda p: Path(p).write_bytes(xml)))
        if markdown is not None:
            m = Path(markdown)
            m.parent.mkdir(parents=True, exist_ok=True)
            md = format_markdown(self)
            written.append(atomic_write(m, lambda p: Path(p).write_text(md, encoding="utf-8")))
        return written


def _run_arms(plan: GatePlan, workers: int | None, progress: Callable[[int], None] | None,
              cluster: str | Executor | None):
    """Each arm's :func:`run_experiment` result and run time, in :meth:`GatePlan.arms` order."""
    spec = plan.spec
    for key, pol in plan.arms():
        t0 = time.perf_counter()
        res = run_experiment(plan.scenarios[key], pol, spec.reps, spec.seed,
                             workers or spec.workers, keep_events=False, progress=progress,
                             base_dir=plan.scenario_files[key].parent, cluster=cluster,
                             detail=False)
        yield (key, pol), res, time.perf_counter() - t0


def run_gates(plan: GatePlan, workers: int | None = None,
              progress: Callable[[int], None] | None = None,
              cluster: str | Executor | None = None) -> GateReport:
    """Run each distinct scenario x policy of ``plan`` once (``reps``/``seed`` of the gates
    file, the same seed for every policy of a scenario, so versus gates pair replication ``i``
    of both policies) and evaluate every gate. ``cluster``: an open :mod:`ortwin.cluster`
    executor or a ``--cluster`` value (see :func:`run_experiment`)."""
    reps_frames, summ_frames, seconds = [], [], {}
    for arm, res, secs in _run_arms(plan, workers, progress, cluster):
        seconds[arm] = secs
        reps_frames.append(res.replications)
        summ_frames.append(res.summary)
    replications = pd.concat(reps_frames, ignore_index=True)
    summary = pd.concat(summ_frames, ignore_index=True)
    summary["n"] = summary["n"].astype("int64")
    return GateReport(plan, evaluate(plan, summary, replications), replications, summary,
                      seconds)


def write_baseline(plan: GatePlan, out: str | Path, workers: int | None = None,
                   cluster: str | Executor | None = None) -> Path:
    """Run every arm of ``plan`` and write the combined summary to ``out`` (CSV, or parquet
    when the name ends in ``.parquet``) atomically: a baseline for relative gates."""
    summary = pd.concat([res.summary for _, res, _ in _run_arms(plan, workers, None, cluster)],
                        ignore_index=True)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        return atomic_write(path, lambda p: summary.to_parquet(p, index=False))
    return atomic_write(path, lambda p: summary.to_csv(p, index=False))
