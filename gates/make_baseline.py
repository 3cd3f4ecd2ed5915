"""Write the baseline summary that relative gates compare with.

    .venv/bin/python gates/make_baseline.py [GATES.yaml] [--out FILE]

Runs every scenario x policy of the gates file (default gates/release.yaml) with its reps, seed
and days, exactly as ``ortwin gate`` does, and writes the combined KPI summary (the columns of
``summary.csv`` from ``ortwin run``) to FILE (default: the gates file's top-level ``baseline``,
relative to the gates file), atomically. Regenerate it when a model change is intended and
review the diff; never regenerate it just to make a failing gate pass.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ortwin.gate import GateError, load_gates, write_baseline
from twin.scenario import ScenarioError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the baseline summary for relative gates.")
    p.add_argument("gates", nargs="?", default=str(Path(__file__).with_name("release.yaml")))
    p.add_argument("--out", default=None, help="summary file (.csv or .parquet)")
    args = p.parse_args(argv)
    try:
        plan = load_gates(args.gates, check_baselines=False)
    except (GateError, ScenarioError) as e:
        print(f"make_baseline: {e}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
    elif plan.spec.baseline:
        out = plan.path.parent / plan.spec.baseline
    else:
        print(f"make_baseline: {args.gates}: baseline: no baseline file named; use --out",
              file=sys.stderr)
        return 2
    path = write_baseline(plan, out)
    print(f"baseline summary of {len(plan.arms())} scenario x policy runs written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
