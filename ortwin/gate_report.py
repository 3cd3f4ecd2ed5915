"""Reports of a gate run (:class:`ortwin.gate.GateReport`): JUnit XML for CI test reports,
markdown for job summaries and PR comments, and the terminal's PASS/FAIL lines.

Versus gates get their own markdown table: the policy's mean, the other policy's mean, the
paired mean difference with its confidence interval and the required margin.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from twin.kpis import kpi_def

if TYPE_CHECKING:
    from ortwin.gate import GateReport, GateResult
    from ortwin.gate_spec import GatePlan


def fmt_num(x: float, unit: str = "") -> str:
    """``x`` to 6 significant digits with its unit (none for fractions); ``NaN`` for NaN."""
    if math.isnan(x):
        return "NaN"
    text = f"{x:.6g}"
    return f"{text} {unit}" if unit and unit != "fraction" else text


def _settings(plan: GatePlan) -> str:
    s = plan.spec
    seed = "scenario seed" if s.seed is None else f"seed {s.seed}"
    days = "scenario horizon" if s.days is None else f"{s.days} days"
    return f"{s.reps} replications, {seed}, {days}"


def junit_xml(report: GateReport) -> bytes:
    """JUnit XML: one ``testsuite`` per scenario x policy that has gates, one ``testcase`` per
    gate, a ``failure`` (message: actual vs threshold) for each gate that does not hold. A
    versus gate belongs to its own policy's suite; the other policy's run time counts in the
    root's ``time``."""
    plan = report.plan
    total = len(report.results)
    fails = len(report.failures)
    root = ET.Element("testsuites", {
        "name": f"ortwin gate {plan.path.name}", "tests": str(total), "failures": str(fails),
        "errors": "0", "time": f"{sum(report.seconds.values()):.3f}"})
    for key, pol in plan.arms():
        mine = [r for r in report.results if (r.scenario, r.policy) == (key, pol)]
        if not mine:  # only the other side of versus gates
            continue
        suite = ET.SubElement(root, "testsuite", {
            "name": f"{key} / {pol}", "tests": str(len(mine)),
            "failures": str(sum(not r.passed for r in mine)), "errors": "0", "skipped": "0",
            "time": f"{report.seconds.get((key, pol), 0.0):.3f}"})
        props = ET.SubElement(suite, "properties")
        versus = sorted({r.versus for r in mine if r.versus})
        for name, value in (("gates_file", str(plan.path)),
                            ("scenario_file", str(plan.scenario_files[key])),
                            ("settings", _settings(plan)),
                            *((("versus", ", ".join(versus)),) if versus else ())):
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


def fmt_signed(x: float, unit: str = "") -> str:
    """:func:`fmt_num` with a ``+`` on positive values (differences)."""
    text = fmt_num(x, unit)
    return f"+{text}" if not math.isnan(x) and x > 0 else text


_CHECKED = {"mean_diff": "diff", "ci_high": "CI high", "ci_low": "CI low"}


def _verdict(r: GateResult) -> str:
    return "pass" if r.passed else "**FAIL**"


def _threshold_rows(results: list[GateResult]) -> list[str]:
    lines = ["| result | scenario | policy | gate | actual | threshold | baseline |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in results:
        unit = kpi_def(r.kpi).unit
        lines.append("| " + " | ".join([
            _verdict(r), _md(r.scenario), _md(r.policy), _md(r.name),
            fmt_num(r.actual, unit), f"{r.op} {fmt_num(r.threshold, unit)}",
            "" if r.kind == "absolute" else fmt_num(r.baseline, unit)]) + " |")
    return lines


def _versus_rows(results: list[GateResult]) -> list[str]:
    lines = ["| result | scenario | policy | versus | gate | policy mean | versus mean | "
             "paired difference [CI] | required |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in results:
        unit = kpi_def(r.kpi).unit
        diff = (f"{fmt_signed(r.mean_diff, unit)} [{fmt_signed(r.ci_low)}, "
                f"{fmt_signed(r.ci_high)}] ({r.ci_level:.4g}, {r.pairs} pairs)")
        lines.append("| " + " | ".join([
            _verdict(r), _md(r.scenario), _md(r.policy), _md(r.versus), _md(r.name),
            fmt_num(r.actual, unit), fmt_num(r.versus_actual, unit), diff,
            f"{_CHECKED[r.checked]} {r.op} {fmt_signed(r.threshold, unit)}"]) + " |")
    return lines


def format_markdown(report: GateReport) -> str:
    """A markdown summary: verdict, settings, a table of absolute and relative gates and one of
    versus gates (each gate in one row of one table), then the failures."""
    plan = report.plan
    n, f = len(report.results), len(report.failures)
    head = (f"## ORTwin gates: {plan.path.name}: "
            + ("all passed" if not f else f"{f} of {n} failed"))
    lines = [head, "", f"{n} gates on {len(plan.arms())} scenario x policy runs "
             f"({_settings(plan)})."]
    fixed = [r for r in report.results if r.kind != "versus"]
    versus = [r for r in report.results if r.kind == "versus"]
    if fixed:
        lines += ["", *_threshold_rows(fixed)]
    if versus:
        lines += ["", "### Versus another policy (paired on the same replications)", "",
                  *_versus_rows(versus)]
    if f:
        lines += ["", "### Failures", ""]
        lines += [f"- `{_md(r.name)}`: {_md(r.message)}" for r in report.failures]
    return "\n".join(lines) + "\n"


def format_report(report: GateReport) -> str:
    """Terminal text: one PASS/FAIL line per gate and a total line."""
    n, f = len(report.results), len(report.failures)
    lines = [f"{'PASS' if r.passed else 'FAIL'}  {r.name}: {r.message}" for r in report.results]
    lines.append(f"{n} gates: {n - f} passed, {f} failed")
    return "\n".join(lines)
