"""``ortwin plan``: tomorrow's recommended schedule from a scenario, a booked list and a day
(a thin layer over :func:`ortwin.recommend.recommend_day`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ortwin.recommend import DayRecommendation, pick_day, read_booked, recommend_day
from twin.scenario import load_scenario


def add_parsers(sub, whole, seed) -> None:
    """Register ``plan`` on the ``ortwin`` parser."""
    p = sub.add_parser("plan", help="recommend a day's schedule (room, start, minutes, why)",
                       description=(
        "Plan one day of a booked list with ml-cpsat (P80 forecasts, CP-SAT, rules fallback) "
        "and write plan.csv and plan.json: per case the room, start, planned minutes at the "
        "forecast quantile and the reason in plain words, and the cases left out. Print the "
        "plan, the objective, bound, gap, wall time and every rule it bends. Day 0 of the "
        "scenario is a Monday; --date picks the first booked day of the date's weekday."))
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML")
    p.add_argument("--booked", default=None, metavar="FILE",
                   help="booked list CSV (day column, docs/engineers.md) or a day plan (date "
                        "column, docs/nowcast.md); default: the scenario's booking.booked_list")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--day", type=whole("--day", 0), default=None, metavar="N",
                      help="horizon day to plan (0 = Monday)")
    when.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                      help="date to plan: the first booked day of its weekday")
    p.add_argument("-o", "--out", default=None, metavar="DIR",
                   help="write plan.csv and plan.json here (default: out/plan/<scenario name>)")
    p.add_argument("--seed", type=seed, default=0, help="solver seed (default 0)")
    p.add_argument("--json", action="store_true", help="print plan.json instead of the table")


def format_plan(rec: DayRecommendation) -> str:
    """The plan as a short table, the cases left out, the solve line and the bent rules."""
    head = ("room", "start", "end", "case", "procedure", "surgeon", f"P{round(rec.quantile * 100)}",
            "P50", "booked")
    cells = [(r["room"], r["start"], r["end"], r["case_id"], r["procedure"], r["surgeon"],
              str(r["planned_minutes"]), "-" if r["p50"] is None else f"{r['p50']:.0f}",
              f"{r['booked_room']} {r['booked_start']}") for r in rec.rows]
    w = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(head)]

    def line(c) -> str:
        return "  ".join(x.rjust(w[i]) if i in (6, 7) else x.ljust(w[i])
                         for i, x in enumerate(c)).rstrip()
    when = rec.date or f"day {rec.day}"
    lines = [f"{rec.scenario}, {when} ({rec.weekday}): {len(rec.rows)} cases planned, "
             f"{len(rec.left_out)} left out (seed {rec.seed})", line(head)]
    lines += [line(c) for c in cells]
    lines += [f"left out: {r['case_id']}: {r['reason']}" for r in rec.left_out]
    lines.append(rec.summary())
    bent = rec.bent_lines()
    lines += [f"bent: {b}" for b in bent] if bent else ["bent: no rule"]
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace) -> int:
    """``ortwin plan``."""
    from ortwin.cli import UsageError
    from twin.booked_list import booked_list_path, read_booked_list

    scn = load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("out") / "plan" / scn.name
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"-o {out}: expected a directory, {blocker} is a file")
    if args.booked is not None:
        booked, listed = read_booked(args.booked, scn)
        source = args.booked
    elif scn.booking.booked_list:
        base = Path(args.scenario).parent
        booked, listed = read_booked_list(scn, base), None
        source = str(booked_list_path(scn, base))
    else:
        raise UsageError(f"{args.scenario}: the scenario has no booking.booked_list: "
                         "pass --booked FILE")
    day = pick_day(booked, args.day, args.date, listed, source)
    rec = recommend_day(scn, booked, day, seed=args.seed, date=args.date or listed,
                        source=source)
    try:
        csv_path, json_path = rec.write(out)
    except OSError as e:
        raise UsageError(f"cannot write the plan ({e.filename}: {e.strerror})") from None
    print(json.dumps(rec.to_json(), indent=1, ensure_ascii=False) if args.json
          else format_plan(rec))
    if not args.json:
        print(f"plan written to {csv_path} and {json_path}")
    return 0


COMMANDS = {"plan": cmd_plan}
"""Subcommand name -> handler."""

__all__ = ["COMMANDS", "add_parsers", "cmd_plan", "format_plan"]
