"""Benchmark of the duration forecasts on held-out later weeks of simulated history.

    .venv/bin/python bench/bench_forecast.py [--scenario PATH] [--train-weeks 12]
        [--test-weeks 4] [--seed S] [--json PATH]

1. Simulates ``train + test`` consecutive weeks of case history from the scenario
   (:func:`calibration.history.simulate_history`, seed ``--seed``, default the model's
   ``HISTORY_SEED``) and splits it in time (:func:`policies.duration_model.time_split`).
2. Fits the quantile model (``quantile-gbm``) and the procedure-mean baseline on the first
   weeks, and forecasts the later weeks; booked minutes are the third contender.
3. Prints, per forecaster, the pinball loss at 0.5 / 0.8 / 0.95 (minutes; lower is better)
   and the coverage of its P50 / P80 / P95 (share of actuals at or below; ideal 0.50 / 0.80 /
   0.95), plus the time to simulate the history, to fit, and to forecast one day's cases.

Timings depend on the machine and on its load; compare runs only from the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import sklearn

from calibration.history import simulate_history
from policies.duration_model import (
    HISTORY_SEED,
    ProcedureMeanForecaster,
    QuantileDurationModel,
    coverage,
    pinball_loss,
    time_split,
)
from policies.forecast import QUANTILES
from twin.demand import draw_week
from twin.scenario import load_scenario
from twin.streams import Streams

ROOT = Path(__file__).resolve().parent.parent
COLS = {0.5: "p50", 0.8: "p80", 0.95: "p95"}


def evaluate(y: pd.Series, pred: pd.DataFrame) -> dict[str, float]:
    """Pinball losses and coverages of one forecaster's p50/p80/p95 columns."""
    out: dict[str, float] = {}
    for q in QUANTILES:
        out[f"pinball_{q}"] = pinball_loss(y, pred[COLS[q]], q)
    for q in QUANTILES:
        out[f"coverage_{COLS[q]}"] = coverage(y, pred[COLS[q]])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    ap.add_argument("--train-weeks", type=int, default=12)
    ap.add_argument("--test-weeks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=HISTORY_SEED,
                    help="seed of the simulated history (default: the model's HISTORY_SEED)")
    ap.add_argument("--fits", type=int, default=3, help="fits timed (median reported)")
    ap.add_argument("--json", metavar="PATH", help="also write every number to this file")
    args = ap.parse_args(argv)

    scn = load_scenario(args.scenario)
    weeks = args.train_weeks + args.test_weeks
    t0 = time.perf_counter()
    history = simulate_history(scn, weeks, args.seed)
    sim_s = time.perf_counter() - t0
    train, test = time_split(history, args.train_weeks)
    y = test["actual_minutes"]

    fit_times = []
    model = QuantileDurationModel()
    for _ in range(max(1, args.fits)):
        t0 = time.perf_counter()
        model = QuantileDurationModel().fit(train)
        fit_times.append(time.perf_counter() - t0)
    fit_s = statistics.median(fit_times)
    t0 = time.perf_counter()
    baseline = ProcedureMeanForecaster().fit(train)
    base_fit_s = time.perf_counter() - t0

    # forecasting one day's booked cases, as a policy does
    week = draw_week(scn, Streams(args.seed + 1, 0))
    day_cases = [c for c in week.cases.values() if c.booked_day == 2]
    model.forecast(day_cases, 2)
    t0 = time.perf_counter()
    n_calls = 20
    for _ in range(n_calls):
        model.forecast(day_cases, 2)
    forecast_ms = (time.perf_counter() - t0) / n_calls * 1000

    booked = pd.DataFrame({c: test["booked_minutes"] for c in COLS.values()})
    results = {
        model.name: evaluate(y, model.predict_frame(test)),
        baseline.name: evaluate(y, baseline.predict_frame(test)),
        "booked": evaluate(y, booked),
    }

    print(f"Duration forecasts: {Path(args.scenario).name}, history seed {args.seed}; "
          f"train weeks 0-{args.train_weeks - 1} ({len(train)} cases), "
          f"test weeks {args.train_weeks}-{weeks - 1} ({len(test)} cases)")
    print()
    head = (f"{'forecaster':<16}{'pinball@0.5':>12}{'pinball@0.8':>12}{'pinball@0.95':>13}"
            f"{'cov P50':>9}{'cov P80':>9}{'cov P95':>9}")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        print(f"{name:<16}{r['pinball_0.5']:>12.2f}{r['pinball_0.8']:>12.2f}"
              f"{r['pinball_0.95']:>13.2f}{r['coverage_p50']:>9.3f}{r['coverage_p80']:>9.3f}"
              f"{r['coverage_p95']:>9.3f}")
    print(f"{'ideal':<16}{'':>12}{'':>12}{'':>13}{0.5:>9.3f}{0.8:>9.3f}{0.95:>9.3f}")
    print()
    shifts = ", ".join(f"P{int(q * 100)} {model.shift_[q]:+.3f}" for q in QUANTILES)
    print(f"conformal shifts (log ratio): {shifts}")
    print(f"simulate history ({weeks} weeks): {sim_s:.2f} s")
    print(f"fit quantile model: {fit_s:.2f} s (median of {len(fit_times)}; "
          f"{', '.join(f'{t:.2f}' for t in fit_times)})")
    print(f"fit procedure-mean: {base_fit_s * 1000:.1f} ms")
    print(f"forecast one day ({len(day_cases)} cases): {forecast_ms:.1f} ms")

    if args.json:
        payload = {
            "scenario": args.scenario, "seed": args.seed, "train_weeks": args.train_weeks,
            "test_weeks": args.test_weeks, "train_cases": len(train), "test_cases": len(test),
            "results": results, "conformal_shift": {str(q): model.shift_[q] for q in QUANTILES},
            "simulate_s": sim_s, "fit_s": fit_s, "fit_times_s": fit_times,
            "baseline_fit_s": base_fit_s, "forecast_day_ms": forecast_ms,
            "forecast_day_cases": len(day_cases),
            "python": platform.python_version(), "sklearn": sklearn.__version__,
            "pandas": pd.__version__, "machine": platform.machine(), "cpus": os.cpu_count(),
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
