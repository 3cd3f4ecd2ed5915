"""Helpers for the browser tests: headless Chromium via Selenium, a Streamlit server, artifacts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "out" / "test-artifacts"
HEALTH_TIMEOUT_S = 60.0


def artifacts() -> Path:
    """The artifacts folder (screenshots, server logs), created on demand."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def chromium_paths() -> tuple[str, str]:
    """The Chromium binary and its chromedriver, or an AssertionError saying how to get them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    drv = shutil.which("chromedriver")
    if drv is None and os.access("/usr/lib/chromium/chromedriver", os.X_OK):
        drv = "/usr/lib/chromium/chromedriver"
    missing = [n for n, p in (("chromium", browser), ("chromedriver", drv)) if p is None]
    assert not missing, (
        f"{' and '.join(missing)} not found (PATH; /usr/lib/chromium/chromedriver): the "
        "browser tests need Debian's "
        "chromium and chromium-driver packages; run `make test`, which installs them")
    return str(browser), str(drv)


def driver(width: int = 1400, height: int = 1000) -> webdriver.Chrome:
    """A headless Chrome webdriver on the system Chromium (Selenium Manager never downloads)."""
    browser, drv = chromium_paths()
    os.environ["SE_OFFLINE"] = "true"
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.binary_location = browser
    d = webdriver.Chrome(options=opts, service=Service(executable_path=drv))
    d.set_window_size(width, height)
    return d


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode().strip() == "ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@contextmanager
def streamlit_server(app_path: str | Path = "app.py", port: int | None = None) -> Iterator[str]:
    """Run ``streamlit run app_path`` on 127.0.0.1:port and yield its base URL."""
    port = port or free_port()
    log_path = artifacts() / f"streamlit-{Path(app_path).stem}.log"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_path),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + HEALTH_TIMEOUT_S
            while not _healthy(f"{base}/_stcore/health"):
                if proc.poll() is not None:
                    raise AssertionError(f"streamlit exited with {proc.returncode}; see {log_path}:"
                                         f"\n{log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"streamlit not healthy after {HEALTH_TIMEOUT_S:.0f} s; "
                                         f"see {log_path}:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.25)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --- the Streamlit app in a browser -------------------------------------------------------------

MAIN = '[data-testid="stMain"]'
REPS_LABEL = "Replications (weeks simulated per policy and scenario)"
_RENDERED_CHARTS_JS = """
return Array.from(document.querySelectorAll('.vega-embed')).filter(function (e) {
  var g = e.querySelector('svg, canvas');
  if (!g) { return false; }
  var r = g.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
}).length;
"""


def main_text(d: webdriver.Chrome) -> str:
    """The visible text of the app's main area ('' before it exists)."""
    return str(d.execute_script(
        f"var m = document.querySelector('{MAIN}'); return m ? m.innerText : '';"))


def wait_text(d: webdriver.Chrome, text: str, timeout: float = 60) -> None:
    """Wait until the main area shows ``text``."""
    WebDriverWait(d, timeout, poll_frequency=0.25).until(
        lambda drv: text in main_text(drv),
        f"{text!r} not shown after {timeout:.0f} s")


def open_app(d: webdriver.Chrome, base_url: str, timeout: float = 90) -> None:
    """Open the app and wait until the Scenario page is drawn."""
    d.get(base_url)
    wait_text(d, "1. Scenario", timeout)
    wait_idle(d)


def wait_idle(d: webdriver.Chrome, timeout: float = 60) -> None:
    """Wait until Streamlit is not running the script (no 'Running...' status widget)."""
    WebDriverWait(d, timeout, poll_frequency=0.25).until(
        lambda drv: not drv.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        and not drv.find_elements(By.CSS_SELECTOR, '[data-stale="true"]'),
        f"the app still running after {timeout:.0f} s")


def goto(d: webdriver.Chrome, page: str, header: str, timeout: float = 60) -> None:
    """Click the sidebar radio option ``page`` and wait for the page's ``header``."""
    xpath = ('//*[@data-testid="stSidebar"]//label[@data-testid="stRadioOption"]'
             f'[normalize-space(.)="{page}"]')
    WebDriverWait(d, timeout).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()
    wait_text(d, header, timeout)


def set_number(d: webdriver.Chrome, label: str, value: int, timeout: float = 30) -> None:
    """Type ``value`` into the number input labelled ``label`` (select all, type, Enter)."""
    box = WebDriverWait(d, timeout).until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, f'{MAIN} input[aria-label="{label}"]')))
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)
    WebDriverWait(d, timeout, poll_frequency=0.25).until(
        lambda drv: box.get_attribute("value") == str(value),
        f"{label!r} did not take the value {value}")


def run_replications(d: webdriver.Chrome, reps: int = 3, timeout: float = 180) -> None:
    """On the Run page: set the replications, press Run and wait for 'Done'."""
    set_number(d, REPS_LABEL, reps)
    wait_text(d, f"× {reps} replications", 30)  # the caption: the app has the new value
    wait_idle(d)
    run = (By.XPATH, '//*[@data-testid="stMain"]//button[normalize-space(.)="Run"]')
    WebDriverWait(d, 30).until(ec.element_to_be_clickable(run)).click()
    wait_text(d, "Done. See the Results page.", timeout)
    wait_idle(d)


def rendered_charts(d: webdriver.Chrome) -> int:
    """How many ``.vega-embed`` charts hold an svg or canvas of non-zero size."""
    return int(d.execute_script(_RENDERED_CHARTS_JS))


def wait_charts(d: webdriver.Chrome, n: int, timeout: float = 90) -> int:
    """Wait until at least ``n`` charts are drawn; the number drawn."""
    WebDriverWait(d, timeout, poll_frequency=0.25).until(
        lambda drv: rendered_charts(drv) >= n,
        f"fewer than {n} charts drawn after {timeout:.0f} s")
    return rendered_charts(d)


def full_screenshot(d: webdriver.Chrome, path: Path, width: int = 1400,
                    min_height: int = 1000) -> Path:
    """Resize the window to the whole main area's height and save a PNG screenshot."""
    height = int(d.execute_script(
        "var c = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        "var s = document.querySelector('[data-testid=\"stSidebarContent\"]');"
        "return Math.max(c ? c.scrollHeight : 0, s ? s.scrollHeight : 0);"))
    charts = rendered_charts(d)
    d.set_window_size(width, max(min_height, min(height + 120, 12000)))
    d.execute_script(f"var m = document.querySelector('{MAIN}'); if (m) {{ m.scrollTop = 0; }}")
    if charts:
        wait_charts(d, charts, 30)  # the charts follow the new layout
    time.sleep(0.5)  # let the layout settle before the capture
    path.parent.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(path)), f"could not save {path}"
    return path
