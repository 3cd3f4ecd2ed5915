"""The app and the HTML report in a real (headless) Chromium: they load, run and draw charts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from browser import (
    ROOT,
    artifacts,
    driver,
    full_screenshot,
    goto,
    main_text,
    open_app,
    rendered_charts,
    run_replications,
    streamlit_server,
    wait_charts,
    wait_idle,
    wait_text,
)
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _errors(d: webdriver.Chrome) -> list[str]:
    """The text of every exception or error box on the page."""
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, ERROR_BOXES)]


def test_app_runs_a_scenario_in_a_real_browser() -> None:
    out = artifacts()
    with streamlit_server(ROOT / "app.py") as url:
        d = driver(1400, 1000)
        try:
            open_app(d, url)
            assert not _errors(d), _errors(d)
            scenario_png = full_screenshot(d, out / "app_scenario.png")

            d.set_window_size(1400, 1000)
            goto(d, "Run", "2. Run")
            run_replications(d, reps=3, timeout=180)
            assert not _errors(d), _errors(d)

            goto(d, "Results", "KPIs per policy")
            wait_charts(d, 3, timeout=90)
            d.set_window_size(1400, 2600)
            wait_charts(d, 3, timeout=30)
            png = full_screenshot(d, out / "app_results.png", min_height=2600)
            charts = rendered_charts(d)
            text = main_text(d)
            errors = _errors(d)
        finally:
            d.quit()
    assert scenario_png.is_file() and scenario_png.stat().st_size > 20_000
    assert png.is_file() and png.stat().st_size > 20_000, png
    assert charts >= 3, f"only {charts} charts drawn"
    assert "KPIs per policy" in text
    assert not errors, errors


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ortwin ARGS`` in a subprocess; it must exit 0."""
    r = subprocess.run([sys.executable, "-m", "ortwin.cli", *args], cwd=ROOT, text=True,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, f"ortwin {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def _no_network_refs(page: str) -> None:
    """The report's HTML references nothing on the network."""
    scripts = re.findall(r"<script\b[^>]*>", page, flags=re.IGNORECASE)
    assert scripts, "no <script> tag"
    assert all("src" not in s.lower() for s in scripts), scripts
    assert not re.search(r"<script\b[^>]*\bsrc\s*=\s*[\"']?https?:", page, flags=re.I)
    assert not re.search(r"<link\b[^>]*\bhref\s*=\s*[\"']?https?:", page, flags=re.I)
    assert not re.search(r"<link\b", page, flags=re.I), "a <link> tag"
    assert "@import" not in page


def test_report_renders_offline_in_a_real_browser(tmp_path: Path) -> None:
    res, report, png_dir = tmp_path / "results", tmp_path / "report.html", tmp_path / "png"
    _cli("compare", "--scenarios", "scenarios/baseline.yaml", "--policies", "manual,rules",
         "--reps", "3", "--days", "2", "--out", str(res), "--progress", "off")
    _cli("report", str(res), "-o", str(report), "--png", str(png_dir))
    pngs = sorted(png_dir.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs), pngs
    page = report.read_text(encoding="utf-8")
    _no_network_refs(page)

    d = driver(1400, 1000)
    try:
        d.get(report.as_uri())
        body = d.find_element(By.TAG_NAME, "body")
        n = int(body.get_attribute("data-charts") or 0)
        assert n > 0, "the report declares no charts"
        WebDriverWait(d, 60, poll_frequency=0.25).until(
            lambda drv: body.get_attribute("data-rendered") == str(n),
            f"not all {n} charts rendered")
        widths = d.execute_script(
            "return Array.from(document.querySelectorAll('div.chart')).map(function (c) {"
            "  var s = c.querySelector('svg');"
            "  return [c.dataset.chart, s ? s.getBoundingClientRect().width : 0]; });")
        resources = d.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) {"
            " return e.name; });")
        height = int(d.execute_script("return document.documentElement.scrollHeight;"))
        d.set_window_size(1400, min(max(height, 1000), 12000))
        shot = artifacts() / "report.png"
        assert d.save_screenshot(str(shot))
    finally:
        d.quit()
    assert len(widths) == n, f"{len(widths)} div.chart for data-charts={n}"
    assert all(w > 0 for _, w in widths), [c for c, w in widths if w <= 0]
    assert not [u for u in resources if u.lower().startswith(("http:", "https:"))], resources
    assert shot.is_file() and shot.stat().st_size > 20_000


def _choose(d: webdriver.Chrome, option: str, timeout: float = 30) -> None:
    """Click the radio option labelled ``option`` in the main area."""
    from selenium.webdriver.support import expected_conditions as ec

    xpath = ('//*[@data-testid="stMain"]//label[@data-testid="stRadioOption"]'
             f'[normalize-space(.)="{option}"]')
    WebDriverWait(d, timeout).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def _upload(d: webdriver.Chrome, path: Path, index: int = 0, timeout: float = 30) -> None:
    """Give ``path`` to the page's ``index``-th file uploader and wait until the app lists it
    (the upload has reached the server and the script has rerun)."""
    wait_idle(d)  # a file given while the page's script still runs can be lost by its rerun
    WebDriverWait(d, timeout).until(
        lambda drv: len(drv.find_elements(By.CSS_SELECTOR, 'input[type="file"]')) > index)
    d.find_elements(By.CSS_SELECTOR, 'input[type="file"]')[index].send_keys(str(path))
    # the uploader lists the file with its size once the upload has finished
    listed = re.compile(re.escape(path.name) + r"\s+\d+(\.\d+)?\s?[kKMG]?B")
    WebDriverWait(d, timeout, poll_frequency=0.25).until(
        lambda drv: listed.search(main_text(drv)),
        f"{path.name} not listed with its size after {timeout:.0f} s")
    wait_idle(d)


def test_bad_uploads_show_their_message_in_a_real_browser(tmp_path: Path) -> None:
    bad_scenario = tmp_path / "bad_beds.yaml"
    bad_scenario.write_text("extends: baseline.yaml\nname: bad\npacu: {beds: -3}\n")
    bad_log = tmp_path / "cases.csv"
    bad_log.write_text("just,some,columns\n1,2,3\n")
    with streamlit_server(ROOT / "app.py") as url:
        d = driver(1400, 1000)
        try:
            open_app(d, url)
            _choose(d, "An uploaded file")
            _upload(d, bad_scenario)
            wait_text(d, "Upload rejected: bad_beds.yaml: pacu.beds: expected greater than or "
                         "equal to 0", 60)
            scenario_errors = _errors(d)
            goto(d, "History", "4. History")
            _upload(d, bad_log)
            load = (By.XPATH, '//*[@data-testid="stMain"]//button'
                              '[normalize-space(.)="Load the case log"]')
            WebDriverWait(d, 30).until(lambda drv: drv.find_element(*load).is_enabled())
            d.find_element(*load).click()
            wait_text(d, "Case log rejected: ", 60)
            history_errors = _errors(d)
            text = main_text(d)
        finally:
            full_screenshot(d, artifacts() / "app_bad_upload.png")  # kept, failed or not
            (artifacts() / "app_bad_upload.txt").write_text(main_text(d))
            d.quit()
    assert scenario_errors == ["Upload rejected: bad_beds.yaml: pacu.beds: expected greater "
                               "than or equal to 0"]
    assert "Case log rejected: " in text, text
    assert history_errors == ["Case log rejected: cases.csv: case_id: required column is "
                              "missing (a file not in the canonical schema needs a column "
                              "mapping)"]
    assert "Traceback" not in text


def test_or_status_board_in_a_real_browser() -> None:
    """The board's tiles, charts and stale marker on the recorded demo day, then following the
    feed: the fragment refreshes itself and the replay moves the board time on."""
    from twin.dayplan import read_plan
    from twin.scenario import load_scenario

    rooms = sorted(set(read_plan(ROOT / "scenarios/live/baseline_tuesday.plan.csv",
                                 load_scenario(ROOT / "scenarios/baseline.yaml")).cases["room"]))
    png = artifacts() / "app_board.png"
    with streamlit_server(ROOT / "app.py") as url:
        d = driver(1400, 1000)
        try:
            open_app(d, url)
            goto(d, "OR status board", "Tuesday 24 November 2026, 11:00", timeout=120)
            wait_text(d, "staffed to", 60)  # the tiles
            wait_idle(d, 120)
            charts = wait_charts(d, 4, timeout=90)  # PACU and the three drill-down charts
            text = main_text(d)
            errors = _errors(d)
            full_screenshot(d, png, min_height=1600)
            follow = (By.XPATH, '//*[@data-testid="stMain"]//label'
                                '[.//p[normalize-space(.)="Follow the feed"]]')
            WebDriverWait(d, 30).until(lambda drv: drv.find_element(*follow).is_displayed())
            d.find_element(*follow).click()  # every 5 s the replay moves on 10 min
            wait_text(d, "Tuesday 24 November 2026, 11:10", 60)
            wait_text(d, "Tuesday 24 November 2026, 11:20", 30)
            followed = main_text(d)
        finally:
            d.quit()
    assert png.is_file() and png.stat().st_size > 20_000, png
    assert charts >= 4, f"only {charts} charts drawn"
    assert all(f"{room}\n" in text or f"{room} " in text for room in rooms), text
    assert "Stale feed: no live observation since 10:55" in text and \
        "OR3: no live observation" in text
    assert "The suite so far" in text and "Drill-down" in text
    assert not errors, errors
    assert "replaying the recorded feed from 11:00" in followed
