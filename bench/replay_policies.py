"""Weekly replay coverage of every shipped policy on the shared Q1 2022 log.

    .venv/bin/python bench/replay_policies.py [--reps 40] [--policies as-booked manual ...]
        [--ml-reps 3] [--no-docs]

February (2022-W05..W08) replays a scenario calibrated on January (cases booked before Monday
31 January, so no replayed day was fitted); March (2022-W09..W13) one calibrated on January and
February (before Monday 28 February). Per policy and month: the share of scored KPIs inside the
simulated P5-P95 over all weeks, and over the *unseen* weeks (at least half their days distinct
and not seen in fitting, :mod:`calibration.replay_scope`). Writes bench/results/
replay_policies.json and the Markdown table, which replaces the block between the markers in
docs/calibration.md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = Path("/work/shared/data/or_case_log_2022_q1.csv")
MAPPING = ROOT / "calibration/mappings/or_case_log_2022.yaml"
MONTHS = {"February": ("2022-01-31", [date(2022, 1, 31) + timedelta(7 * i) for i in range(4)]),
          "March": ("2022-02-28", [date(2022, 2, 28) + timedelta(7 * i) for i in range(5)])}
SEED = 2026
BEGIN, END = "<!-- replay-policies:begin -->", "<!-- replay-policies:end -->"


def run(policies: list[str], reps: int, ml_reps: int) -> dict:
    """Replay every month under every policy; the figures as a JSON-ready dict."""
    from calibration.build import calibrate
    from calibration.loader import load_history
    from ortwin.replay import replay_week

    hist = load_history(LOG, MAPPING)
    out: dict = {"log": LOG.name, "seed": SEED, "months": {}}
    for month, (as_of, mondays) in MONTHS.items():
        scn = calibrate(hist, as_of).validated
        rows = {}
        for pol in policies:
            n = ml_reps if pol == "ml-cpsat" else reps
            t0 = time.perf_counter()
            res = [replay_week(hist, m, scn, pol, n, SEED) for m in mondays]
            weeks = [{"week": r.week, "coverage": r.coverage, "scored": len(r.scored),
                      "inside": int(r.scored["inside"].astype(bool).sum()),
                      "days": len(r.days.days), "distinct": r.days.distinct,
                      "unseen": len(r.days.unseen), "unseen_week": r.days.is_unseen,
                      "overlap": len(r.overlap)} for r in res]
            un = [w for w in weeks if w["unseen_week"]]
            rows[pol] = {"reps": n, "seconds": round(time.perf_counter() - t0, 1), "weeks": weeks,
                         "coverage": _pool(weeks), "unseen_coverage": _pool(un) if un else None,
                         "unseen_weeks": [w["week"] for w in un]}
            print(f"{month} {pol}: {rows[pol]['coverage']:.0%} "
                  f"(unseen {rows[pol]['unseen_coverage']}) in {rows[pol]['seconds']} s", flush=True)
        out["months"][month] = {"as_of": as_of, "policies": rows}
    return out


def _pool(weeks: list[dict]) -> float:
    return sum(w["inside"] for w in weeks) / max(sum(w["scored"] for w in weeks), 1)


def table(doc: dict) -> str:
    """The Markdown table of ``doc``."""
    lines = ["| month (calibrated before) | policy | reps | coverage, all weeks | per week | "
             "coverage, unseen weeks | unseen weeks (unseen/distinct/dates) |",
             "|---|---|---|---|---|---|---|"]
    for month, m in doc["months"].items():
        for pol, r in m["policies"].items():
            per = ", ".join(f"{w['week'][-3:]} {w['coverage']:.0%}"
                            + (f" ({w['unseen']} unseen)" if w["unseen"] else "") for w in r["weeks"])
            days = ", ".join(f"{w['week'][-3:]} {w['unseen']}/{w['distinct']}/{w['days']}"
                             for w in r["weeks"] if w["unseen_week"]) or "none"
            un = "—" if r["unseen_coverage"] is None else f"{r['unseen_coverage']:.0%}"
            lines.append(f"| {month} ({m['as_of']}) | `{pol}` | {r['reps']} | "
                         f"{r['coverage']:.0%} | {per} | {un} | {days} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--ml-reps", type=int, default=3, help="replications for ml-cpsat (slow)")
    p.add_argument("--policies", nargs="+", default=None, help="default: every shipped policy")
    p.add_argument("--out", default=str(ROOT / "bench/results/replay_policies.json"))
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/calibration.md")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="run nothing: merge earlier result files (policies in file order)")
    args = p.parse_args()
    from ortwin.registry import POLICIES

    if args.merge:
        docs_in = [json.loads(Path(f).read_text()) for f in args.merge]
        doc = docs_in[0]
        for other in docs_in[1:]:
            for month, m in other["months"].items():
                doc["months"][month]["policies"].update(m["policies"])
    else:
        doc = run(args.policies or list(POLICIES), args.reps, args.ml_reps)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2))
    md = table(doc)
    Path(args.out).with_suffix(".md").write_text(md + "\n")
    print(md)
    docs = ROOT / "docs/calibration.md"
    text = docs.read_text()
    if not args.no_docs and BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        docs.write_text(head + BEGIN + "\n" + md + "\n" + END + rest.split(END, 1)[1])
        print(f"table written to {docs}")


if __name__ == "__main__":
    main()
