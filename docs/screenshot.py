"""Screenshots of the app for the docs: the Scenario page, the Results of a short run and the OR
status board on the recorded demo day (scenarios/live/) at 11:00.

Run from the repository root:  .venv/bin/python docs/screenshot.py
Writes docs/img/app_scenario.png, docs/img/app_results.png and docs/img/app_board.png (headless
Chromium, offline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import (  # noqa: E402
    driver,
    full_screenshot,
    goto,
    open_app,
    run_replications,
    set_number,
    streamlit_server,
    wait_charts,
    wait_idle,
    wait_text,
)

IMG = ROOT / "docs" / "img"


def main(argv: list[str] | None = None) -> int:
    """Start the app, run it, save the three screenshots; 0 on success."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=IMG, help="folder for the PNGs (docs/img)")
    ap.add_argument("--reps", type=int, default=10, help="replications to run (10)")
    ap.add_argument("--pacu-beds", type=int, default=9,
                    help="the what-if shown: PACU day beds (baseline 15; default 9)")
    ap.add_argument("--width", type=int, default=1400, help="window width in pixels (1400)")
    args = ap.parse_args(argv)
    with streamlit_server(ROOT / "app.py") as url:
        d = driver(args.width, 1000)
        try:
            open_app(d, url)
            set_number(d, "PACU beds (day)", args.pacu_beds)
            wait_text(d, "What differs from the base")
            wait_idle(d)
            scenario = full_screenshot(d, args.out / "app_scenario.png", args.width)
            d.set_window_size(args.width, 1000)
            goto(d, "Run", "2. Run")
            run_replications(d, reps=args.reps, timeout=600)
            goto(d, "Results", "KPIs per policy")
            wait_charts(d, 3)
            results = full_screenshot(d, args.out / "app_results.png", args.width)
            d.set_window_size(args.width, 1000)
            goto(d, "OR status board", "Tuesday 24 November 2026, 11:00", timeout=120)
            wait_text(d, "staffed to")  # the tiles
            wait_idle(d, 120)
            wait_charts(d, 4)  # PACU and the drill-down charts
            board = full_screenshot(d, args.out / "app_board.png", args.width)
        finally:
            d.quit()
    for p in (scenario, results, board):
        print(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} "
              f"({p.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
