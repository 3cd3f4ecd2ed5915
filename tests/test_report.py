"""``ortwin report``: a self-contained HTML file (no network references for scripts or styles)
with every section the consultants need, PNGs on request, results read back exactly, and bad
input refused in one line with exit 2. (Rendering in a real browser: tests/test_browser.py.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ortwin.cli import main
from ortwin.compare import compare, read_comparison
from ortwin.report import render_report
from twin.scenario import load_scenario, with_horizon

SCRIPT_OR_STYLE_URL = re.compile(
    r"<script[^>]*\bsrc\s*=|<link[^>]*\bhref\s*=\s*['\"]?https?:|@import|url\(\s*['\"]?https?:",
    re.IGNORECASE)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "results"
    code = main(["compare", "--scenarios", "scenarios/baseline.yaml",
                 "scenarios/pacu_closed_beds.yaml", "--policies", "manual,rules", "--reps", "4",
                 "--days", "2", "--out", str(out), "--progress", "off"])
    assert code == 0
    return out


def test_report_is_self_contained_with_every_section(results, tmp_path, capsys):
    html_path = tmp_path / "r" / "report.html"
    assert main(["report", str(results), "-o", str(html_path), "--png", str(tmp_path / "png"),
                 "--title", "Board pack"]) == 0
    assert "opens offline" in capsys.readouterr().out
    html = html_path.read_text()
    assert not SCRIPT_OR_STYLE_URL.search(html)
    assert "vegaEmbed" in html and "<title>Board pack</title>" in html
    for section in ("Scenario: baseline", "Scenario: pacu_closed_beds", "KPIs by policy",
                    "Paired differences from manual", "KPI distributions over replications",
                    "Tail risk: daily overtime", "Fairness by service", "Methods",
                    "Common random numbers", "Confidence intervals", "Calibration source",
                    "Scenarios against baseline"):
        assert section in html, section
    manifest = json.loads((results / "manifest.json").read_text())
    for run in manifest["runs"]:  # seeds, replications and scenario hashes are stated
        assert run["sha256"][:16] in html and f"<td>{run['seed']}</td>" in html
    n_charts = int(re.search(r'data-charts="(\d+)"', html).group(1))
    assert n_charts == html.count('class="chart"') >= 12
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == n_charts and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["report.html"]  # no temp files


def test_tail_table_in_the_report_matches_the_data(results):
    comp = read_comparison(results)
    from ortwin import outcomes

    daily = outcomes.daily_overtime(comp.room_days)
    tails = outcomes.tail_table(daily)
    html = render_report(comp)[0]
    from ortwin.summary import fmt_number

    for t in tails.itertuples(index=False):
        assert f"<td>{fmt_number(t.p95)}</td>" in html and f"<td>{fmt_number(t.cvar95)}</td>" in html


def test_scenario_effects_in_the_report_are_paired_differences(results):
    from ortwin.compare import scenario_effects
    from ortwin.summary import fmt_number

    comp = read_comparison(results)
    eff = scenario_effects(comp.replications, "baseline", ["pacu_hold_minutes"])
    html = render_report(comp)[0]
    r = comp.replications.pivot_table(index=["policy", "rep"], columns="scenario",
                                      values="pacu_hold_minutes")
    for e in eff.itertuples(index=False):
        d = r.loc[e.policy]
        assert e.mean_diff == pytest.approx(float((d["pacu_closed_beds"] - d["baseline"]).mean()))
        assert f"<td>{fmt_number(e.mean_diff)}</td>" in html


def test_results_read_back_equal_the_run(results):
    scns = [with_horizon(load_scenario(p), 2) for p in ("scenarios/baseline.yaml",
                                                       "scenarios/pacu_closed_beds.yaml")]
    direct = compare(scns, ["manual", "rules"], reps=4)
    back = read_comparison(results)
    pd.testing.assert_frame_equal(back.summary, direct.summary)
    pd.testing.assert_frame_equal(back.differences, direct.differences)
    pd.testing.assert_frame_equal(back.room_days, direct.room_days)
    assert back.policies == ("manual", "rules") and back.reference == "manual"


def test_report_of_a_single_run(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "scenarios/baseline.yaml", "--reps", "3", "--days", "2", "--out",
                 str(out), "--progress", "off", "--no-events"]) == 0
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "Scenario: baseline" in html and "Paired differences" not in html
    assert "scenarios/baseline.yaml" in html


@pytest.mark.parametrize("damage", ["missing_dir", "no_replications", "bad_parquet",
                                    "bad_manifest"])
def test_bad_results_are_refused_in_one_line(results, tmp_path, capsys, damage):
    d = tmp_path / "res"
    if damage != "missing_dir":
        shutil.copytree(results, d)
    if damage == "no_replications":
        (d / "replications.parquet").unlink()
    elif damage == "bad_parquet":
        (d / "replications.parquet").write_text("not parquet")
    elif damage == "bad_manifest":
        (d / "manifest.json").write_text("{oops")
    assert main(["report", str(d), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ortwin: ") and "\n" not in err and str(d) in err
    assert not (tmp_path / "x.html").exists()


def test_methods_name_the_calibration_source_of_a_calibrated_scenario(tmp_path):
    from ortwin.manifest import calibration_source

    cal = tmp_path / "cal.yaml"
    base = (tmp_path / "baseline.yaml")
    base.write_text(Path("scenarios/baseline.yaml").read_text())
    cal.write_text("# Calibrated by `ortwin calibrate` - do not edit by hand; re-run calibration.\n"
                   "# History: logs/or_cases.csv\n# durations: history\n"
                   "extends: baseline.yaml\nname: calibrated\n")
    assert calibration_source(cal) == "History: logs/or_cases.csv\ndurations: history"
    assert calibration_source("scenarios/baseline.yaml") is None
    scn = with_horizon(load_scenario(cal), 1)
    comp = compare([scn], ["manual"], reps=2, sources=[cal])
    html = render_report(comp)[0]
    assert "calibrated by <code>ortwin calibrate</code>" in html
    assert "History: logs/or_cases.csv" in html and "hand-built" not in html
