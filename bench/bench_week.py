"""A week under ``ml-cpsat``, timed: wall seconds per replication, split into the morning plans
and the day-of re-plans from the policy's own log (issue 19's 3 s-per-replication goal).

    .venv/bin/python bench/bench_week.py [--scenario scenarios/baseline.yaml] [--reps 2] [--seed 1]

Runs on one process; the duration model is trained first, outside the timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibration.training import trained_model  # noqa: E402
from policies.ml_cpsat import MlCpsatPolicy  # noqa: E402
from twin.demand import draw_week  # noqa: E402
from twin.model import SuiteModel  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402
from twin.streams import Streams  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print one line per replication and the median."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    scn = load_scenario(a.scenario)
    fc = trained_model(scn)
    walls = []
    for rep in range(a.reps):
        policy = MlCpsatPolicy(scn, forecaster=fc)
        t0 = time.perf_counter()
        SuiteModel(scn, policy, draw_week(scn, Streams(a.seed, rep))).run()
        wall = time.perf_counter() - t0
        walls.append(wall)
        plans = [r["wall_time"] for r in policy.log if r["kind"] == "plan"]
        replans = [r["wall_time"] for r in policy.log if r["kind"].startswith("replan")]
        print(f"replication {rep}: {wall:.1f} s; {len(plans)} plans {sum(plans):.1f} s; "
              f"{len(replans)} re-plans {sum(replans):.1f} s (median "
              f"{statistics.median(replans) if replans else 0.0:.3f} s)", flush=True)
    print(f"median {statistics.median(walls):.1f} s per replication (goal 3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
