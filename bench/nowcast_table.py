"""Write the now-cast accuracy tables of docs/nowcast.md from the JSON files that
``bench/nowcast_accuracy.py --json`` writes (figures are never typed by hand):

    python bench/nowcast_table.py out/nowcast/accuracy_feb.json out/nowcast/accuracy_mar.json

Each JSON becomes one table (all days, then the distinct days unseen in fitting), written
between the ``<!-- nowcast-q1 -->`` markers of docs/nowcast.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "nowcast.md"
START, END = "<!-- nowcast-q1 -->", "<!-- /nowcast-q1 -->"
HEAD = ("| hour | days | rooms | MAE now-cast | MAE booked | MAE twin | CRPS now-cast | CRPS booked "
        "| CRPS twin | coverage now-cast | coverage twin |\n|" + "---|" * 11)


def _bold_best(row: dict, kind: str) -> list[str]:
    """The three MAE (or CRPS) cells, the smallest in bold."""
    vals = [row[f"{kind}_{w}"] for w in ("now", "booked", "twin")]
    best = min(vals)
    return [f"**{v:.1f}**" if v == best else f"{v:.1f}" for v in vals]


def table(d: dict) -> str:
    """One month's markdown table and its caption line."""
    out = [f"*{d['days'][0][:7]}, fitted on the cases before {d['as_of']}* "
           f"({len(d['days'])} weekdays, {d['distinct']} distinct, {len(d['unseen'])} distinct "
           f"days unseen in fitting: {', '.join(d['unseen']) or 'none'}; "
           f"{d['reps']} replications):", "", HEAD]
    for label, part, n in (("all", d["all_days"], len(d["days"])),
                           ("unseen", d.get("unseen_days") or {}, len(d["unseen"]))):
        for r in part.get("hours", []):
            out.append("| " + " | ".join([
                f"{int(r['hour']):02d}:00", f"{label} {n}", str(int(r["rooms"])),
                *_bold_best(r, "mae"), *_bold_best(r, "crps"),
                f"{r['coverage']:.0%}", f"{r.get('coverage_twin', float('nan')):.0%}"]) + " |")
    return "\n".join(out)


BOOT = 4000


def paired(scores, days: list[str], seed: int = 0) -> str:
    """Now-cast minus twin, per hour, on ``days`` (absolute error of the median and CRPS), each
    with a 95% bootstrap interval that resamples whole days (rooms of a day are not independent)."""
    import numpy as np

    s = scores.loc[scores["day"].isin(days)].copy()
    s["d_mae"] = (s["now_p50"] - s["actual"]).abs() - (s["twin_p50"] - s["actual"]).abs()
    s["d_crps"] = s["crps_now"] - s["crps_twin"]
    rng, cells = np.random.default_rng(seed), []
    for h, g in s.groupby("hour"):
        by_day = [x for _, x in g.groupby("day")]
        txt = []
        for col in ("d_mae", "d_crps"):
            sums = np.array([x[col].sum() for x in by_day])
            counts = np.array([len(x) for x in by_day])
            pick = rng.integers(0, len(by_day), (BOOT, len(by_day)))
            boot = sums[pick].sum(1) / counts[pick].sum(1)
            lo, hi = np.quantile(boot, (0.025, 0.975))
            band = f" [{lo:+.1f}, {hi:+.1f}]" if len(by_day) > 1 else " (one day: no interval)"
            txt.append(f"{sums.sum() / counts.sum():+.1f}{band}")
        cells.append(f"{int(h):02d}:00 MAE {txt[0]}, CRPS {txt[1]}")
    return "; ".join(cells)


def _paired_line(path: Path, d: dict) -> str:
    """The paired-difference line of a harness JSON's unseen days (its .scores.csv beside it)."""
    import pandas as pd

    csv = path.with_suffix(".scores.csv")
    if not d["unseen"] or not csv.exists():
        return ""
    return (f"\n\nNow-cast minus twin on the {len(d['unseen'])} unseen day(s), minutes (negative: "
            f"the now-cast is better; 95% interval resampling whole days): "
            f"{paired(pd.read_csv(csv), d['unseen'])}.")


def main(argv: list[str] | None = None) -> int:
    """Replace the tables between the markers of docs/nowcast.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", type=Path)
    args = ap.parse_args(argv)
    try:
        docs = [(p, json.loads(p.read_text())) for p in args.json]
        parts = [table(d) + _paired_line(p, d) for p, d in docs]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        print(f"error: {DOC}: the {START} markers are missing", file=sys.stderr)
        return 2
    head, rest = doc.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + START + "\n" + "\n\n".join(parts) + "\n" + END + tail)
    print(f"wrote {len(parts)} table(s) into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
