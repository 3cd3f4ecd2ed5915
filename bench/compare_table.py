"""The policy comparison table of docs/policies.md, from an ``ortwin compare`` output folder.

    ortwin compare --scenarios scenarios/*.yaml --policies manual,rules,ml-cpsat --reps 6 \\
        --workers 2 --out out/compare_all
    .venv/bin/python bench/compare_table.py out/compare_all [--csv bench/results/compare_all.csv]

Prints a markdown table (mean per policy; for rules and ml-cpsat the paired difference from
manual with its 95% CI, ✓ when the CI lies wholly on the better side, ✗ wholly on the worse
side) and a tally per policy; ``--csv`` keeps the differences of the tabled KPIs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

KPIS = [("overtime_p90_room_day", "P90 overtime per room-day (min)", 0),
        ("overtime_minutes", "run-over overtime per week (min)", 0),
        ("pacu_hold_minutes", "PACU hold per week (min)", 0),
        ("cases_completed", "cases completed", 1)]
POLICIES = ["manual", "rules", "ml-cpsat"]


def table(folder: Path) -> tuple[str, pd.DataFrame]:
    """The markdown table and tally, and the differences of the tabled KPIs."""
    s = pd.read_parquet(folder / "summary.parquet").set_index(["scenario", "policy", "kpi"])
    d = pd.read_parquet(folder / "differences.parquet")
    D = d.set_index(["scenario", "policy", "kpi"])
    scenarios = sorted({i[0] for i in s.index})
    lines = ["| scenario | policy | " + " | ".join(n for _, n, _ in KPIS) + " |",
             "|---|---|" + "---|" * len(KPIS)]
    for sc in scenarios:
        for po in POLICIES:
            cells = []
            for k, _, nd in KPIS:
                m = s.loc[(sc, po, k), "mean"]
                if po == "manual":
                    cells.append(f"{m:.{nd}f}")
                    continue
                r = D.loc[(sc, po, k)]
                mark = {"better": " ✓", "worse": " ✗"}.get(r["verdict"], "")
                cells.append(f"{m:.{nd}f} ({r['mean_diff']:+.{nd}f} [{r['ci_low']:+.{nd}f}, "
                             f"{r['ci_high']:+.{nd}f}]){mark}")
            lines.append(f"| {sc} | {po} | " + " | ".join(cells) + " |")
    lines.append("")
    for po in POLICIES[1:]:
        parts = []
        for k, name, _ in KPIS:
            v = d[(d.policy == po) & (d.kpi == k)]
            better_side = (v.mean_diff > 0) if k == "cases_completed" else (v.mean_diff < 0)
            parts.append(f"{name}: better in {int(better_side.sum())}/{len(v)} "
                         f"({int((v.verdict == 'better').sum())} significant), significantly "
                         f"worse in {int((v.verdict == 'worse').sum())}")
        lines.append(f"- `{po}` vs `manual`: " + "; ".join(parts))
    keep = d[d.kpi.isin([k for k, _, _ in KPIS])]
    return "\n".join(lines), keep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--csv", type=Path, default=None)
    a = ap.parse_args(argv)
    text, keep = table(a.folder)
    print(text)
    if a.csv:
        keep.to_csv(a.csv, index=False, float_format="%.4g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
