"""A self-contained HTML report of a comparison, for consultants and boards.

One file that opens anywhere, offline: the Vega, Vega-Lite and Vega-Embed libraries are inlined
from ``vl-convert`` (installed with the package; nothing is fetched when the report is written or
opened), every chart's data is in its spec, styles are in the page. Per scenario it shows KPI
summaries per policy, paired differences with 95% intervals, KPI distributions, the exceedance
curve and tail table of daily overtime, fairness by service, and a methods section. Optionally
each chart is also written as a PNG for slides.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import altair as alt
import pandas as pd

from ortwin import charts, outcomes
from ortwin.compare import DEFAULT_KPIS, Comparison, scenario_effects
from ortwin.manifest import METHODS
from ortwin.summary import fmt_number
from twin.io import atomic_write
from twin.kpis import kpi_def

DISTRIBUTION_KPIS: tuple[str, ...] = (
    "overtime_minutes", "utilisation", "cases_cancelled", "pacu_hold_minutes", "cost_total",
)
"""KPIs whose distributions over replications the report draws."""

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1b1f24}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin-bottom:4px} h2{border-bottom:2px solid #dde3ea;padding-bottom:4px;
margin-top:40px} h3{margin-top:28px} .sub{color:#57606a}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid #e4e8ee;padding:4px 8px;text-align:right}
th:first-child,td:first-child,th.l,td.l{text-align:left} th{background:#f4f6f9}
td.better{color:#1a7f37;font-weight:600} td.worse{color:#cf222e;font-weight:600}
.chart{margin:8px 0 20px} .note{font-size:13px;color:#57606a;max-width:900px}
pre{background:#f6f8fa;padding:8px;font-size:12px;white-space:pre-wrap}
nav a{margin-right:12px}
"""


@functools.lru_cache(maxsize=1)
def _bundle() -> str:
    """The Vega + Vega-Lite + Vega-Embed bundle as one script (from vl-convert, offline)."""
    import vl_convert

    version = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    try:
        js = vl_convert.javascript_bundle(vl_version=version)
    except ValueError:
        js = vl_convert.javascript_bundle()
    return js.replace("</script", "<\\/script")


def _spec(chart: alt.TopLevelMixin) -> dict:
    spec = chart.to_dict()
    spec.pop("$schema", None)  # a URL; the bundle does not need it
    return spec


def _table(df: pd.DataFrame, classes: dict[int, str] | None = None) -> str:
    heads = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for i, r in enumerate(df.itertuples(index=False)):
        cls = (classes or {}).get(i, "")
        cells = []
        for j, v in enumerate(r):
            text = fmt_number(v) if isinstance(v, float) else html.escape(str(v))
            c = f' class="{cls}"' if cls and j == len(r) - 1 else ""
            cells.append(f"<td{c}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _pct(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.1f}%" if abs(x) > 1e-9 else "0.0%"  # no "-0.0%" from rounding noise


def kpi_table(comp: Comparison, scenario: str, kpis: Sequence[str] = DEFAULT_KPIS
              ) -> pd.DataFrame:
    """One row per KPI and policy of ``scenario``: mean with its 95% interval, P50, P90, P95 and
    CVaR95 (the worst-5% mean on the KPI's bad side)."""
    s = comp.summary[comp.summary["scenario"] == scenario]
    rows = []
    for k in kpis:
        for pol in comp.policies:
            r = s[(s["kpi"] == k) & (s["policy"] == pol)]
            if r.empty:
                continue
            r = r.iloc[0]
            d = kpi_def(k)
            rows.append({"KPI": d.label, "unit": d.unit, "policy": pol, "mean": r["mean"],
                         "95% CI": f"[{fmt_number(r['ci95_low'])}, {fmt_number(r['ci95_high'])}]",
                         "P50": r["p50"], "P90": r["p90"], "P95": r["p95"],
                         "CVaR95": r["cvar95"]})
    return pd.DataFrame(rows)


def difference_table(comp: Comparison, scenario: str, kpis: Sequence[str] = DEFAULT_KPIS
                     ) -> pd.DataFrame:
    """Paired differences from the reference policy for ``scenario``."""
    d = comp.differences[(comp.differences["scenario"] == scenario)
                         & comp.differences["kpi"].isin(kpis)]
    return pd.DataFrame({
        "KPI": [kpi_def(k).label for k in d["kpi"]], "policy": d["policy"].to_numpy(),
        f"mean diff vs {comp.reference}": d["mean_diff"].to_numpy(float),
        "95% CI": [f"[{fmt_number(a)}, {fmt_number(b)}]" for a, b in zip(d["ci_low"], d["ci_high"],
                                                            strict=True)],
        "pairs": d["n"].to_numpy(), "verdict": d["verdict"].to_numpy(),
    })


class _Charts:
    """Collects chart specs for the page (and PNG files when asked)."""

    def __init__(self, png_dir: Path | None) -> None:
        self.specs: list[tuple[str, dict]] = []
        self.png_dir = png_dir
        self.pngs: list[Path] = []

    def add(self, name: str, chart: alt.TopLevelMixin) -> str:
        cid = f"chart{len(self.specs)}"
        spec = _spec(chart)
        self.specs.append((cid, spec))
        if self.png_dir is not None:
            import vl_convert

            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
            path = self.png_dir / f"{len(self.specs):02d}_{slug}.png"
            png = vl_convert.vegalite_to_png(spec, scale=2)
            self.pngs.append(atomic_write(path, lambda p, b=png: Path(p).write_bytes(b)))
        return f'<div class="chart" id="{cid}" data-chart="{html.escape(name)}"></div>'


def render_report(comp: Comparison, title: str = "ORTwin results",
                  png_dir: str | Path | None = None) -> tuple[str, list[Path]]:
    """The report page as one HTML string (and the PNG files written when ``png_dir``)."""
    png = Path(png_dir) if png_dir is not None else None
    if png is not None:
        png.mkdir(parents=True, exist_ok=True)
    ch = _Charts(png)
    daily = outcomes.daily_overtime(comp.room_days) if len(comp.room_days) else pd.DataFrame()
    tails = outcomes.tail_table(daily) if len(daily) else pd.DataFrame()
    fair = outcomes.fairness(comp.services) if len(comp.services) else pd.DataFrame()
    scenarios = list(dict.fromkeys(comp.replications["scenario"]))
    reps = int(comp.replications.groupby(["scenario", "policy"])["rep"].nunique().max())
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="sub">{len(scenarios)} scenario(s) · policies {", ".join(comp.policies)}'
            f" · reference {html.escape(comp.reference)} · {reps} replications per arm"
            f"{' · created ' + html.escape(comp.manifest['created']) if comp.manifest.get('created') else ''}</p>",
            "<nav>" + "".join(f'<a href="#s-{i}">{html.escape(s)}</a>'
                              for i, s in enumerate(scenarios))
            + ('<a href="#effects">Scenario effects</a>' if len(scenarios) > 1 else "")
            + '<a href="#methods">Methods</a></nav>']
    present = set(comp.summary["kpi"])
    kpis = [k for k in DEFAULT_KPIS if k in present]
    for i, scn in enumerate(scenarios):
        run = next((r for r in comp.manifest.get("runs", []) if r.get("scenario") == scn), {})
        desc = run.get("description", "")
        body.append(f'<h2 id="s-{i}">Scenario: {html.escape(scn)}</h2>')
        if run.get("days"):
            body.append(f'<p class="sub">Horizon simulated: {run["days"]} day(s) per '
                        f'replication · {run.get("reps")} replications · seed {run.get("seed")}'
                        "</p>")
        if desc:
            body.append(f'<p class="note">Scenario file: {html.escape(desc)}</p>')
        body.append("<h3>KPIs by policy</h3>")
        body.append(_table(kpi_table(comp, scn, kpis)))
        diff = difference_table(comp, scn, kpis)
        if len(diff):
            body.append(f"<h3>Paired differences from {html.escape(comp.reference)}</h3>")
            body.append('<p class="note">Same replications (common random numbers) under each '
                        "policy; a verdict is given only when the 95% interval excludes 0.</p>")
            body.append(_table(diff, {j: v for j, v in enumerate(diff["verdict"])}))
        sub = comp.replications[comp.replications["scenario"] == scn]
        body.append("<h3>KPI distributions over replications</h3>")
        for k in DISTRIBUTION_KPIS:
            if k in sub.columns and sub[k].notna().any():
                body.append(ch.add(f"{scn}_{k}_box", charts.kpi_distribution(sub, k, "box")))
        if len(daily):
            d = daily[daily["scenario"] == scn]
            t = tails[tails["scenario"] == scn]
            body.append("<h3>Tail risk: daily overtime of the whole suite</h3>")
            body.append('<p class="note">Each staffed day of each replication is one value. '
                        "The curve gives the chance that a day's overtime exceeds x minutes; "
                        "dashed lines mark each policy's P90. CVaR95 is the mean of the worst 5% "
                        "of days.</p>")
            body.append(ch.add(f"{scn}_exceedance", charts.exceedance_chart(
                outcomes.exceedance_curves(d), t)))
            body.append(_table(t.drop(columns="scenario").rename(columns={
                "n": "days", "p50": "P50", "p90": "P90", "p95": "P95", "cvar95": "CVaR95"})))
        if len(fair):
            f = fair[fair["scenario"] == scn]
            body.append("<h3>Fairness by service</h3>")
            body.append(ch.add(f"{scn}_fairness_cancel", charts.fairness_chart(
                f, "cancellation_rate")))
            body.append(ch.add(f"{scn}_fairness_prime", charts.fairness_chart(
                f, "prime_start_share")))
            ft = f.drop(columns="scenario").copy()
            for col in ("cancellation_rate", "prime_start_share", "in_room_share",
                        "overtime_share"):
                ft[col] = [_pct(x) for x in ft[col]]
            body.append(_table(ft))
    body.append(_effects_section(comp, scenarios, kpis))
    body.append(_methods(comp))
    scripts = "\n".join(
        f"vegaEmbed('#{cid}', {_json(spec)}, {{actions:false, renderer:'svg'}})"
        ".then(function(){done++;document.body.dataset.rendered=done;});"
        for cid, spec in ch.specs)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body data-charts=\"{len(ch.specs)}\" data-rendered=\"0\"><main>"
        + "\n".join(body)
        + f"</main><script>{_bundle()}</script>"
        + f"<script>var done=0;\n{scripts}\n</script></body></html>\n")
    return page, ch.pngs


def _effects_section(comp: Comparison, scenarios: list[str], kpis: Sequence[str]) -> str:
    """Each scenario against the first, per policy, paired on the replication — when they ran
    from the same seed (common random numbers); otherwise a note that they cannot be paired."""
    if len(scenarios) < 2:
        return ""
    base = scenarios[0]
    out = [f'<h2 id="effects">Scenarios against {html.escape(base)}</h2>']
    seeds = {r["scenario"]: r.get("seed") for r in comp.runs.to_dict("records")}
    paired = [s for s in scenarios[1:] if seeds.get(s) == seeds.get(base)]
    if len(paired) < len(scenarios) - 1:
        out.append('<p class="note">Scenarios run from another seed than '
                   f"{html.escape(base)} are not paired and left out here.</p>")
    if not paired:
        return "\n".join(out)
    out.append('<p class="note">Same seed and replication indices: replication i of each '
               "scenario draws the same random numbers, so the difference is paired on i "
               "(95% paired t-interval). Where a scenario changes demand itself, patients "
               "differ by that change.</p>")
    eff = scenario_effects(comp.replications[comp.replications["scenario"].isin(
        [base, *paired])], base, kpis)
    table = pd.DataFrame({
        "scenario": eff["scenario"], "policy": eff["policy"],
        "KPI": [kpi_def(k).label for k in eff["kpi"]], base: eff["base_mean"],
        "scenario mean": eff["mean"], "difference": eff["mean_diff"],
        "95% CI": [f"[{fmt_number(a)}, {fmt_number(b)}]" for a, b in zip(eff["ci_low"], eff["ci_high"],
                                                            strict=True)],
        "verdict": eff["verdict"]})
    out.append(_table(table, {j: v for j, v in enumerate(table["verdict"])}))
    return "\n".join(out)


def _json(spec: dict) -> str:
    """A spec as a JavaScript literal that cannot close its script tag."""
    return json.dumps(spec).replace("</", "<\\/")


def _methods(comp: Comparison) -> str:
    m = comp.manifest
    out = ['<h2 id="methods">Methods</h2>']
    rows = []
    for r in m.get("runs") or comp.runs.to_dict("records"):
        rows.append({"scenario": r.get("scenario"), "file": r.get("file") or "(in memory)",
                     "days": r.get("days"), "replications": r.get("reps"),
                     "base seed": r.get("seed"),
                     "scenario SHA-256": (r.get("sha256") or "")[:16]})
    out.append(_table(pd.DataFrame(rows)))
    methods = m.get("methods") or METHODS
    out.append(f"<p class=\"note\"><b>Replications and seeds.</b> Each arm (scenario × policy) "
               f"ran the replications listed above from its scenario's base seed. "
               f"<b>Common random numbers.</b> {html.escape(methods['common_random_numbers'])}"
               f"</p><p class=\"note\"><b>Confidence intervals.</b> "
               f"{html.escape(methods['confidence_intervals'])}</p>")
    cal = [(r.get("scenario"), r.get("calibration")) for r in m.get("runs", [])]
    out.append("<h3>Calibration source</h3>")
    for scn, text in cal or [(None, None)]:
        if text:
            out.append(f"<p class=\"note\">{html.escape(str(scn))}: calibrated by "
                       f"<code>ortwin calibrate</code>:</p><pre>{html.escape(text)}</pre>")
        else:
            out.append(f"<p class=\"note\">{html.escape(str(scn or 'scenarios'))}: hand-built "
                       "scenario; every input is cited in the scenario file (see "
                       "docs/scenarios.md), not fitted to a local case log.</p>")
    ver = m.get("ortwin_version", "unknown")
    out.append(f'<p class="note">ORTwin {html.escape(str(ver))}. Charts are Vega-Lite, drawn '
               "in the page by the inlined Vega libraries; the report loads nothing from the "
               "network.</p>")
    return "\n".join(out)


def write_report(comp: Comparison, out: str | Path, title: str = "ORTwin results",
                 png_dir: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Write the report atomically to ``out`` (and PNGs to ``png_dir``)."""
    page, pngs = render_report(comp, title, png_dir)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda p: Path(p).write_text(page, encoding="utf-8")), pngs
