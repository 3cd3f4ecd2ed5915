"""Writing a calibration: the scenario YAML and a fit report (Markdown, CSV tables, PNG charts).

Everything is written atomically: the scenario through a temporary file renamed over the
target; the report built in a temporary folder that replaces the old one in one rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from calibration import charts
from calibration.build import Calibration
from calibration.families import FitResult
from calibration.fit_durations import MIN_FAMILY_N
from calibration.fit_flows import GroupFits, first_case_delays, turnover_gaps
from calibration.loader import write_quarantine
from twin.io import atomic_write


def _fit_rows(label: str, key: str, fit: FitResult) -> list[dict]:
    return [{label: key, "n": fit.n, "data_median": round(fit.median, 2), **row}
            for row in fit.rows()]


def _group_table(label: str, g: GroupFits) -> pd.DataFrame:
    rows = [{label: "(pooled)", "n": g.pooled.n, "data_median": round(g.pooled.median, 2),
             "family": g.pooled.best.family, "params": g.pooled.best.params(),
             "fitted_median": round(float(g.pooled.best.dist.ppf(0.5)), 2),
             "ks_stat": round(g.pooled.best.ks_stat, 4), "ks_pvalue": round(g.pooled.best.ks_pvalue, 4)}]
    for k, n in g.counts.items():
        f = g.groups.get(k)
        rows.append({label: k or "(unrecorded)", "n": n,
                     "data_median": round(f.median, 2) if f else None,
                     "family": f.best.family if f else "(pooled: fewer than 30)",
                     "params": f.best.params() if f else "",
                     "fitted_median": round(float(f.best.dist.ppf(0.5)), 2) if f else None,
                     "ks_stat": round(f.best.ks_stat, 4) if f else None,
                     "ks_pvalue": round(f.best.ks_pvalue, 4) if f else None})
    return pd.DataFrame(rows)


def _md(df: pd.DataFrame, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "_none_\n"
    d = df.head(max_rows).copy()
    cols = [str(c) for c in d.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in d.itertuples(index=False):
        cells = ["" if (isinstance(v, float) and np.isnan(v)) or v is None else
                 (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    more = f"\n_{len(df) - max_rows} more rows in the CSV_\n" if len(df) > max_rows else ""
    return "\n".join(lines) + "\n" + more


def tables(cal: Calibration) -> dict[str, pd.DataFrame]:
    """Every fit as a table, keyed by file stem."""
    d = cal.durations
    out: dict[str, pd.DataFrame] = {}
    rows = []
    summary = []
    for pid, pf in sorted(d.procedures.items()):
        summary.append({"service": pf.service, "procedure": pid, "n": pf.n,
                        "data_median": round(pf.median, 2), "method": pf.method,
                        "family": pf.dist.kind,
                        "fitted_median": round(float(pf.dist.ppf(0.5)), 2),
                        "ks_stat": round(pf.fit.best.ks_stat, 4) if pf.fit else None,
                        "ks_pvalue": round(pf.fit.best.ks_pvalue, 4) if pf.fit else None,
                        "why": pf.fit.why() if pf.fit else
                        f"lognormal shrunk toward {pf.service}: fewer than {MIN_FAMILY_N} cases"})
        if pf.fit:
            rows += [{"service": pf.service, **r} for r in _fit_rows("procedure", pid, pf.fit)]
    out["durations"] = pd.DataFrame(summary)
    out["duration_families"] = pd.DataFrame(rows)
    out["surgeon_procedure"] = pd.DataFrame([vars(p) for p in d.pairs])
    out["drift"] = pd.DataFrame([{"surgeon": s, "change_at_day": round(sh.at, 1),
                                  "change_date": str((pd.Timestamp(cal.first)
                                                      + pd.Timedelta(days=sh.at)).date()),
                                  "n_before": sh.n_before, "n_after": sh.n_after,
                                  "ratio": round(sh.ratio, 3), "t_stat": round(sh.t_stat, 2),
                                  "p_value": sh.p_value} for s, sh in d.drifts.items()],
                                columns=["surgeon", "change_at_day", "change_date", "n_before",
                                         "n_after", "ratio", "t_stat", "p_value"])
    out["phases"] = pd.DataFrame([r for k, f in d.phases.items() for r in _fit_rows("phase", k, f)])
    out["booking"] = pd.DataFrame([d.booking]) if d.booking else pd.DataFrame()
    if cal.turnover:
        out["turnover_by_room"] = _group_table("room", cal.turnover["room"])
        out["turnover_by_service"] = _group_table("service", cal.turnover["service"])
    if cal.first_case:
        fc = cal.first_case
        out["first_case"] = pd.DataFrame([{"n": fc.n, "median_late": fc.median,
                                           "share_on_time_or_early": round(fc.share_early_or_on_time, 3),
                                           "family": fc.dist.kind,
                                           "fitted_median": round(float(fc.dist.ppf(0.5)), 2)}])
    if cal.addons:
        a = cal.addons
        out["addons"] = pd.DataFrame([{"days": a.days, "per_day": round(a.per_day, 3),
                                       "dispersion": round(a.dispersion, 3),
                                       "dispersion_p": a.dispersion_p,
                                       "arrivals_from": a.arrival_source,
                                       **{f"factor_{k}": v for k, v in a.weekday_factor.items()}}])
    if cal.cancellations is not None:
        out["cancellations"] = cal.cancellations.round(4)
    if cal.pacu:
        out["pacu_los"] = _group_table("patient_class", cal.pacu)
    if cal.inpatient_los:
        lf = cal.inpatient_los
        rows = _fit_rows("group", "(pooled)", lf.pooled)
        for g, f in lf.groups.items():
            rows += _fit_rows("group", g, f)
        out["inpatient_los"] = pd.DataFrame(rows)
    out["room_use"] = cal.suite.room_use
    out["sources"] = pd.DataFrame([{"part": k, "source": v} for k, v in cal.sources.items()])
    return out


def _charts(cal: Calibration, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    ran = cal.history.cases.loc[cal.history.cases["in_room"].notna()]
    minutes = (ran["out_of_room"] - ran["in_room"]).dt.total_seconds() / 60
    for svc in sorted({p.service for p in cal.durations.procedures.values()}):
        panels = []
        for pid, pf in sorted(cal.durations.procedures.items()):
            if pf.service != svc:
                continue
            x = minutes[(ran["procedure"] == pid).to_numpy()].to_numpy(float)
            if len(x) >= 5:
                panels.append((f"{pid} ({pf.method})", x[x > 0], pf.dist))
        if panels:
            stem = "".join(ch if ch.isalnum() else "_" for ch in svc)
            charts.ecdf_panels(folder / f"durations_{stem}_ecdf.png", panels,
                               title=f"{svc}: in-room minutes, data ECDF vs fitted CDF")
            charts.qq_panels(folder / f"durations_{stem}_qq.png", panels,
                             title=f"{svc}: in-room minutes, Q-Q against the fit")
            made += [f"durations_{stem}_ecdf.png", f"durations_{stem}_qq.png"]
    flows = []
    if cal.turnover:
        g = turnover_gaps(ran, no_start=[(w.start, w.end) for w in cal.validated.no_start_windows])
        flows.append(("turnover (min)", g["gap"].to_numpy(float), cal.turnover["room"].pooled.best.dist))
    if cal.first_case:
        d = np.maximum(first_case_delays(ran), 0.0)
        flows.append(("first-case lateness (min)", d, cal.first_case.dist))
    for name, fit in (("phase pre (min)", cal.durations.phases.get("pre")),
                      ("phase post (min)", cal.durations.phases.get("post"))):
        if fit is not None:
            a, b = ("in_room", "procedure_start") if "pre" in name else ("procedure_end", "out_of_room")
            x = ((ran[b] - ran[a]).dt.total_seconds() / 60).dropna().to_numpy(float)
            flows.append((name, x[x > 0], fit.best.dist))
    if cal.pacu:
        los = ((ran["pacu_out"] - ran["pacu_in"]).dt.total_seconds() / 60).dropna().to_numpy(float)
        flows.append(("PACU stay (min)", los[los > 0], cal.pacu.pooled.best.dist))
    if flows:
        charts.ecdf_panels(folder / "flows_ecdf.png", flows, xlabel="", ncols=3,
                           title="Turnover, lateness, phases, PACU: data ECDF vs fitted CDF")
        made.append("flows_ecdf.png")
    if cal.inpatient_los:
        lf = cal.inpatient_los
        panels = [("pooled", lf.samples["pooled"], lf.pooled.best.dist)]
        panels += [(g, lf.samples[g], f.best.dist) for g, f in lf.groups.items()]
        charts.qq_panels(folder / "inpatient_los_qq.png", panels, ncols=3,
                         title="Inpatient stay (days, stays of half a day or more): Q-Q")
        made.append("inpatient_los_qq.png")
    if cal.addons:
        a = cal.addons
        total = sum(a.hourly_counts)
        fitted = [p / 24 * total for p in a.hourly_profile]
        charts.bar_chart(folder / "addons_by_hour.png", [f"{h:02d}" for h in range(24)],
                         [float(c) for c in a.hourly_counts], "Add-on arrivals by hour",
                         "arrivals", fitted=fitted)
        made.append("addons_by_hour.png")
    return made


def _markdown(cal: Calibration, tabs: dict[str, pd.DataFrame], pngs: list[str]) -> str:
    h = cal.history
    d = cal.durations
    lines = [f"# Fit report: {cal.scenario['name']}", "",
             f"- History: `{h.source}`; cases booked {cal.first} to {cal.as_of} (exclusive): "
             f"{len(h.cases)} rows used ({int(h.cases['in_room'].notna().sum())} ran).",
             f"- Quarantine (whole file): {len(h.quarantine)} rows, "
             + (", ".join(f"{k} {v}" for k, v in h.reason_counts().items()) or "none")
             + " (quarantine.csv).",
             f"- Suite: {len(cal.suite.rooms)} rooms, {len(cal.validated.services)} services, "
             f"{len(d.procedures)} procedures, {len(cal.validated.surgeons)} surgeons; "
             f"{cal.suite.weeks:.1f} weeks of history.", ""]
    if cal.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in cal.notes] + [""]
    lines += ["## Where each part comes from", "", _md(tabs["sources"]),
              "## Case durations (wheels-in to wheels-out)", "",
              "Families compared by AIC for procedures with at least 30 cases "
              "(duration_families.csv lists every family's AIC and KS statistic); thinner "
              "procedures get a lognormal shrunk toward their service. The `why` column says "
              "why each family was chosen: an empirical one usually means the procedure's "
              "durations are a few exact values repeated (this log repeats whole days), which "
              "no smooth family fits. KS D is computed exactly with tied values.", "",
              _md(tabs["durations"]),
              f"Surgeon x procedure medians: {len(d.pairs)} pairs, shrunk toward the procedure "
              f"(surgeon_procedure.csv). Drift tested for {d.tested_surgeons} surgeons:", "",
              _md(tabs["drift"]), "## Phases and booking", "", _md(tabs["phases"]),
              _md(tabs.get("booking", pd.DataFrame()))]
    for key, title in (("turnover_by_room", "Turnover by room"),
                       ("turnover_by_service", "Turnover by service (of the case before)"),
                       ("first_case", "First-case lateness"),
                       ("addons", "Add-on arrivals (Poisson; dispersion 1 = Poisson)"),
                       ("cancellations", "Cancellations by service"),
                       ("pacu_los", "PACU length of stay by patient class"),
                       ("inpatient_los", "Inpatient length of stay (days)"),
                       ("room_use", "Room use by weekday (hours and blocks)")):
        if key in tabs:
            extra = ""
            if key.startswith("turnover") and cal.turnover:
                g = cal.turnover["room" if key.endswith("room") else "service"]
                extra = f"Kruskal-Wallis p across groups: {g.kruskal_p:.3g}\n\n"
            lines += [f"## {title}", "", extra + _md(tabs[key])]
    lines += ["## Charts", ""] + [f"![{p}](charts/{p})" for p in pngs]
    return "\n".join(lines) + "\n"


def write_calibration(cal: Calibration, scenario_path: str | Path,
                      report_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write the scenario YAML and the fit report folder (default ``<stem>_fit`` beside it)."""
    scenario_path = Path(scenario_path)
    report = Path(report_dir) if report_dir else scenario_path.with_name(scenario_path.stem + "_fit")
    scenario_path.parent.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{report.name}.", dir=report.parent))
    try:
        tabs = tables(cal)
        for stem, df in tabs.items():
            df.to_csv(tmp / f"{stem}.csv", index=False)
        write_quarantine(cal.history, tmp / "quarantine.csv")
        pngs = _charts(cal, tmp / "charts")
        (tmp / "fit_report.md").write_text(_markdown(cal, tabs, pngs))
        header = ("# Calibrated by `ortwin calibrate` - do not edit by hand; re-run calibration.\n"
                  f"# History: {cal.history.source}\n# Cases booked {cal.first} .. {cal.as_of} "
                  f"(exclusive). Fit report: {report.name}/fit_report.md\n"
                  + "".join(f"# {k}: {v}\n" for k, v in cal.sources.items()))
        text = header + yaml.safe_dump(cal.scenario, sort_keys=False, width=100)
        atomic_write(scenario_path, lambda p: Path(p).write_text(text))
        old = None
        if report.exists():
            old = report.with_name(f".{report.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(report, old)
        os.replace(tmp, report)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return scenario_path, report


__all__ = ["tables", "write_calibration"]
