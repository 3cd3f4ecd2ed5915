"""The history commands of ``ortwin``: ``synth-history``, ``history-check``, ``calibrate`` and
``replay`` (thin layers over :mod:`calibration`). Registered by :mod:`ortwin.cli`.

Exit status as everywhere in ``ortwin``: 0 success, 2 bad input (one line), and for ``replay`` 1
when the share of KPIs inside the simulated interval is below ``--min-coverage``.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import date
from pathlib import Path

from calibration.schema import HistoryError

HISTORY_HELP = ("case log (CSV or parquet), or 'bundled' for the bundled Jan-Feb 2022 log "
                "(read through its bundled mapping unless --mapping is given)")


def _date(option: str):
    def parse(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} expects a date YYYY-MM-DD, got {text!r}") from None
    return parse


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--min-coverage expects a number, got {text!r}") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"--min-coverage expects a share from 0 to 1, got {v}")
    return v


def add_parsers(sub, whole, seed) -> None:
    """Add the history subcommands to ``ortwin``'s subparsers."""
    from ortwin.registry import POLICIES

    s = sub.add_parser("synth-history", help="write a synthetic case history with known truth",
                       description=(
        "Simulate a year-scale case history of a hospital whose parameters are known (the "
        "baseline scenario, a surgeon speeding up mid-way, realistic mess) in the canonical "
        "schema; the truth goes to <stem>.truth.json beside it."))
    s.add_argument("--weeks", type=whole("--weeks", 1), default=52, help="weeks (default: 52)")
    s.add_argument("--seed", type=seed, default=2024, help="seed (default: 2024)")
    s.add_argument("-o", "--out", required=True, metavar="FILE", help="CSV or .parquet file")
    s.add_argument("--start", type=_date("--start"), default=date(2023, 1, 2),
                   help="the Monday the history starts (default: 2023-01-02)")
    s.add_argument("--clean", action="store_true", help="no damaged rows")
    s.add_argument("--no-drift", action="store_true", help="no surgeon drift")
    s.add_argument("--spread", type=float, default=1.0,
                   help="multiply every procedure's duration log-sd (default: 1.0)")

    h = sub.add_parser("history-check", help="load a case log and report quarantined rows",
                       description=(
        "Read, map and validate a case log; print how many rows loaded and why the others were "
        "quarantined, the cases charted in one room at once (moved to a parallel room) and the "
        "days that repeat other days exactly; write the quarantine and flag reports."))
    h.add_argument("history", metavar="HISTORY", help=HISTORY_HELP)
    h.add_argument("--mapping", default=None, metavar="M", help="column mapping YAML, or a bundled mapping's name")
    h.add_argument("-o", "--out", default=None, metavar="FILE",
                   help="quarantine CSV (default: out/<history stem>_quarantine.csv); the flag "
                        "report goes beside it as <stem>_flags.csv")

    c = sub.add_parser("calibrate", help="fit a scenario to a case history", description=(
        "Fit durations, turnover, lateness, add-ons, cancellations and lengths of stay to the "
        "cases booked before --as-of, and write a scenario the twin runs directly plus a fit "
        "report (Markdown, CSV tables, PNG charts)."))
    c.add_argument("history", metavar="HISTORY", help=HISTORY_HELP)
    c.add_argument("--mapping", default=None, metavar="M", help="column mapping YAML, or a bundled mapping's name")
    c.add_argument("--as-of", required=True, type=_date("--as-of"),
                   help="fit only cases booked before this date (YYYY-MM-DD)")
    c.add_argument("-o", "--out", required=True, metavar="SCENARIO.yaml")
    c.add_argument("--report", default=None, metavar="DIR",
                   help="fit report folder (default: <scenario stem>_fit beside it)")
    c.add_argument("--template", default=None, metavar="SCENARIO",
                   help="scenario giving what a case log cannot (default: the bundled baseline)")
    c.add_argument("--los", default=None, metavar="FILE",
                   help="inpatient length-of-stay samples in days, one column per group "
                        "(default: the bundled HEP hip/knee file)")
    c.add_argument("--name", default=None, help="scenario name (default: calibrated-<as-of>)")

    r = sub.add_parser("replay", help="replay a historical week through the twin", description=(
        "Run a week's actual bookings through the twin under a policy and print each KPI's "
        "simulated P5/P50/P95 beside the week's actual value. Exit 0 when the share of KPIs "
        "inside the interval reaches --min-coverage, 1 otherwise, 2 on bad input."))
    r.add_argument("history", metavar="HISTORY", help=HISTORY_HELP)
    r.add_argument("--mapping", default=None, metavar="M", help="column mapping YAML, or a bundled mapping's name")
    r.add_argument("--week", required=True, nargs="+", metavar="YYYY-Www",
                   help="ISO week(s) to replay")
    r.add_argument("--scenario", required=True, metavar="SCENARIO", help="calibrated scenario")
    r.add_argument("--policy", default="as-booked", choices=sorted(POLICIES),
                   help="scheduling policy (default: as-booked, the week as it was booked)")
    r.add_argument("--reps", type=whole("--reps", 2), default=40,
                   help="replications (default: 40)")
    r.add_argument("--seed", type=seed, default=None, help="base seed (default: the scenario's)")
    from ortwin.cli_run import add_cluster_options

    add_cluster_options(r, whole)
    r.add_argument("--min-coverage", type=_share, default=0.7,
                   help="share of KPIs that must fall inside (default: 0.7)")
    r.add_argument("--json", default=None, metavar="FILE",
                   help="machine-readable report (every week, every KPI)")
    r.add_argument("--allow-overlap", action="store_true",
                   help="replay weeks with days inside the scenario's calibration period "
                        "(refused otherwise, exit 2), with a warning")


def cmd_synth(args: argparse.Namespace) -> int:
    """``ortwin synth-history``."""
    from calibration.synth import DEFAULT_DRIFT, DEFAULT_MESS, synth_history, write_synth

    if args.start.weekday() != 0:
        raise HistoryError("--start", "", f"expected a Monday, {args.start} is a "
                           f"{args.start.strftime('%A')}")
    hist = synth_history(args.weeks, args.seed, start=args.start,
                         drift=None if args.no_drift else DEFAULT_DRIFT,
                         mess=None if args.clean else DEFAULT_MESS, spread=args.spread)
    try:
        data, truth = write_synth(hist, Path(args.out))
    except OSError as e:
        raise HistoryError(args.out, "", f"cannot write ({e.strerror})") from None
    print(f"{len(hist.frame)} rows ({len(hist.damaged)} damaged on purpose) written to {data}; "
          f"truth in {truth}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``ortwin history-check``."""
    from calibration.loader import load_history, write_flags, write_quarantine
    from calibration.overlaps import logged_room, overlap_report
    from calibration.repeats import repeat_report

    hist = load_history(args.history, args.mapping)
    out = Path(args.out) if args.out else Path("out") / f"{Path(args.history).stem}_quarantine.csv"
    flags = out.with_name(f"{out.stem}_flags.csv")
    print(hist.summary_line())
    if len(hist.cases):
        c = hist.cases
        rooms = c["room"].loc[c["room"] != ""].map(logged_room).nunique()
        print(f"dates {c['date'].min().date()} to {c['date'].max().date()}; "
              f"{rooms} rooms, {c['service'].nunique()} services, "
              f"{c['procedure'].nunique()} procedures; recorded: {', '.join(sorted(hist.recorded))}")
        for line in overlap_report(hist.flags) + repeat_report(hist):
            print(line)
    try:
        write_quarantine(hist, out)
        write_flags(hist, flags)
    except OSError as e:
        raise HistoryError(out, "", f"cannot write ({e.strerror})") from None
    print(f"quarantine report: {out}; flagged rows (kept): {flags}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``ortwin calibrate``."""
    from calibration.build import DEFAULT_LOS, DEFAULT_TEMPLATE, calibrate
    from calibration.loader import load_history
    from calibration.report import write_calibration

    hist = load_history(args.history, args.mapping)
    print(hist.summary_line())
    cal = calibrate(hist, args.as_of, args.template or DEFAULT_TEMPLATE,
                    args.los or DEFAULT_LOS, args.name)
    try:
        scn, report = write_calibration(cal, args.out, args.report)
    except OSError as e:
        raise HistoryError(args.out, "", f"cannot write ({e.strerror})") from None
    d = cal.durations
    print(f"fitted {len(d.procedures)} procedures ({sum(p.method == 'aic' for p in d.procedures.values())} "
          f"by AIC), {len(d.pairs)} surgeon x procedure pairs, {len(cal.suite.rooms)} rooms; "
          f"drift in {len(d.drifts)} of {d.tested_surgeons} surgeons tested"
          + (f" ({', '.join(f'{s} x{sh.ratio:.2f}' for s, sh in d.drifts.items())})"
             if d.drifts else ""))
    for n in cal.notes:
        print(f"note: {n}")
    print(f"scenario written to {scn}; fit report in {report}/fit_report.md")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """``ortwin replay``: 0 when coverage >= --min-coverage in every week, else 1."""
    import sys

    from calibration.cases import iso_week, week_label
    from calibration.loader import load_history
    from calibration.replay_scope import (
        FIDELITY_LINE,
        FIDELITY_POLICY,
        UNSEEN_SHARE,
        fitted_window,
        overlap_days,
        overlap_message,
        scope_lines,
    )
    from ortwin.cli_run import cluster_session
    from ortwin.replay import format_replay, replay_week
    from twin.io import atomic_write
    from twin.scenario import load_scenario

    weeks = [iso_week(w) for w in args.week]
    scn = load_scenario(args.scenario)
    window = fitted_window(scn)
    warnings = [overlap_message(week_label(m), d, window) for m in weeks
                if window and (d := overlap_days(m, window))]
    if warnings and not args.allow_overlap:
        raise HistoryError(args.scenario, "--week", warnings[0] + " (pass --allow-overlap to "
                           "replay it anyway)")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    hist = load_history(args.history, args.mapping)
    with cluster_session(args.cluster, args.workers) as ex:
        results = [replay_week(hist, m, scn, args.policy, args.reps, args.seed, cluster=ex)
                   for m in weeks]
    ok = True
    for r in results:
        print(format_replay(r))
        print()
        ok &= not math.isnan(r.coverage) and r.coverage >= args.min_coverage
    until = window[1] if window else None
    unseen = [r for r in results if r.days is not None and r.days.is_unseen]
    hits = sum(int(r.scored["inside"].astype(bool).sum()) for r in unseen)
    scored = sum(len(r.scored) for r in unseen)
    unseen_cov = hits / scored if scored else None
    print(FIDELITY_LINE if args.policy == FIDELITY_POLICY else
          f"policy {args.policy} re-plans the week: this replay does not judge fidelity "
          f"({FIDELITY_LINE})")
    for line in scope_lines(hist, weeks, until):
        print(line)
    print(f"coverage on unseen weeks (>= {UNSEEN_SHARE:.0%} of days distinct and not seen in "
          "fitting): " + (f"{hits} of {scored} KPIs ({unseen_cov:.0%}) over "
                          + ", ".join(r.week for r in unseen) if unseen else "no such week"))
    print(f"{'PASS' if ok else 'FAIL'}: coverage "
          + ", ".join(f"{r.week} {r.coverage:.0%}" for r in results)
          + f" (threshold {args.min_coverage:.0%})")
    if args.json:
        doc = {"scenario": args.scenario, "history": args.history, "policy": args.policy,
               "fidelity_policy": FIDELITY_POLICY, "judges_fidelity": args.policy == FIDELITY_POLICY,
               "fitted_window": [d.isoformat() for d in window] if window else None,
               "warnings": warnings, "reps": args.reps, "min_coverage": args.min_coverage,
               "passed": bool(ok), "unseen_share_rule": UNSEEN_SHARE,
               "unseen_weeks": [r.week for r in unseen], "unseen_coverage": unseen_cov,
               "days_scored": scope_lines(hist, weeks, until)[0],
               "weeks": [{"week": r.week, "booked": r.booked,
                          "coverage": None if math.isnan(r.coverage) else r.coverage,
                          "overlap_days": [d.isoformat() for d in r.overlap],
                          **(r.days.to_json() if r.days else {}), "notes": r.notes,
                          "kpis": json.loads(r.table.to_json(orient="records"))} for r in results]}
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write(path, lambda p: Path(p).write_text(json.dumps(doc, indent=2)))
        except OSError as e:
            raise HistoryError(path, "", f"cannot write ({e.strerror})") from None
    return 0 if ok else 1


COMMANDS = {"synth-history": cmd_synth, "history-check": cmd_check, "calibrate": cmd_calibrate,
            "replay": cmd_replay}
"""Subcommand name -> handler."""

__all__ = ["COMMANDS", "add_parsers"]
