"""``ortwin nowcast`` and ``ortwin feed``: the live now-cast from a plan and a feed, and the
converters that make feeds (a case-log day played back, a simulated day)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from pathlib import Path

import pandas as pd

from ortwin.live import LiveConfig, LiveState
from ortwin.nowcast import Nowcast, NowcastConfig, NowcastEngine
from twin.dayplan import DayPlan, read_plan, write_plan
from twin.feed import Feed, FeedError, parse_lines, parse_zone, read_feed, write_feed
from twin.scenario import Scenario, ScenarioError, hhmm, load_scenario


def add_parsers(sub, whole, seed) -> None:
    """Register ``nowcast`` and ``feed`` on the ``ortwin`` parser."""
    n = sub.add_parser("nowcast", help="forecast the rest of the day from a plan and a live feed",
                       description=(
        "Apply the feed to the day's plan (bad observations quarantined by the rules in "
        "docs/nowcast.md), build the suite's snapshot and run replications to the end of the "
        "day: per room P10/P50/P90 finish, chance of running past staffed hours, overtime; "
        "PACU by hour; alerts in plain words; the policy's day-of proposals."))
    n.add_argument("--scenario", required=True, help="scenario YAML")
    n.add_argument("--plan", required=True, help="the day's plan (CSV, see docs/nowcast.md)")
    n.add_argument("--events", required=True, help="feed (JSON lines, docs/feed.md)")
    n.add_argument("--at", default=None, metavar="HH:MM",
                   help="forecast time on the plan's date (default: the feed's latest time)")
    n.add_argument("--follow", action="store_true",
                   help="tail the feed and re-forecast whenever observations arrive")
    n.add_argument("--reps", type=whole("--reps", 1), default=200, help="replications (default 200)")
    n.add_argument("--seed", type=seed, default=20260, help="base seed (default 20260)")
    n.add_argument("--policy", default="rules",
                   help="policy asked for day-of proposals (default rules; 'none' to skip)")
    n.add_argument("--stale-after", type=float, default=20.0, metavar="MIN",
                   help="minutes of camera silence before a busy room is stale (default 20)")
    n.add_argument("--json", default=None, metavar="FILE", help="also write the now-cast as JSON")
    n.add_argument("--tz", default=None, metavar="ZONE",
                   help="the plan's time zone (IANA, e.g. America/New_York): feed times are read "
                        "as its wall clock (default: each time's own UTC offset)")
    n.add_argument("--interval", type=float, default=2.0, help="--follow: seconds between polls")
    n.add_argument("--idle-exit", type=float, default=0.0, metavar="S",
                   help="--follow: stop after S seconds with no new line (0: never)")
    f = sub.add_parser("feed", help="make feeds: play back a case-log day, or a simulated day")
    fs = f.add_subparsers(dest="feed_command", required=True)
    pb = fs.add_parser("playback", help="a day of a case log as its plan and EHR milestone feed")
    pb.add_argument("log", help="case log (CSV or parquet)")
    pb.add_argument("--mapping", required=True, help="column mapping YAML")
    pb.add_argument("--scenario", required=True, help="calibrated scenario YAML")
    pb.add_argument("--date", required=True, help="YYYY-MM-DD")
    pb.add_argument("--plan-out", required=True, help="plan CSV to write")
    pb.add_argument("--feed-out", required=True, help="feed JSON lines to write")
    pb.add_argument("--scenario-out", default=None, metavar="FILE",
                    help="the day's scenario to write, for ortwin nowcast (default: beside the "
                         "plan, NAME.scenario.yaml)")
    pb.add_argument("--tz", default=None, metavar="ZONE",
                    help="zone of the log's local times, for the feed's UTC offsets (default: the "
                         "mapping's local_timezone, else its timezone)")
    sm = fs.add_parser("simulate", help="a simulated day's plan and perfect feed (truth known)")
    sm.add_argument("--scenario", required=True, help="scenario YAML")
    sm.add_argument("--day", type=int, default=1, help="scenario day (0 = Monday; default 1)")
    sm.add_argument("--rep", type=int, default=0, help="replication (default 0)")
    sm.add_argument("--seed", type=seed, default=7, help="base seed (default 7)")
    sm.add_argument("--plan-out", required=True, help="plan CSV to write")
    sm.add_argument("--feed-out", required=True, help="feed JSON lines to write")


# --- formatting -----------------------------------------------------------------------------
def _c(nc: Nowcast, x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else nc.clock(x)


def _m(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0f}"


def format_nowcast(nc: Nowcast) -> str:
    """The room table, alerts, proposals and PACU outlook as text."""
    head = ("room", "state", "case", "in room", "left", "P10", "P50", "P90", "staffed",
            "P(past)", "overtime")
    rows = []
    for r in nc.rooms.itertuples(index=False):
        rows.append((r.room + (" (stale)" if r.stale else ""), r.state,
                     r.case_id if isinstance(r.case_id, str) else "-",
                     f"{_m(r.elapsed)} min" if isinstance(r.case_id, str) else "-",
                     str(r.cases_left), _c(nc, r.finish_p10), _c(nc, r.finish_p50),
                     _c(nc, r.finish_p90), _c(nc, r.close), f"{r.p_past_close:.2f}",
                     f"{_m(r.overtime_mean)} min"))
    w = [max(len(h), *(len(x[i]) for x in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w[i]) if i < 3 else c.rjust(w[i])  # noqa: E731
                                  for i, c in enumerate(cells))
    bad = sum(v for k, v in nc.feed.items() if k not in ("applied", "resolved", "heartbeat"))
    lines = [f"now-cast {nc.plan.date.isoformat()} {nc.clock(nc.at)}: {nc.reps} replications in "
             f"{nc.seconds:.2f} s; feed {nc.feed.get('applied', 0)} applied, "
             f"{nc.feed.get('resolved', 0)} resolved, {bad} quarantined", fmt(head)]
    lines += [fmt(r) for r in rows]
    lines.append("finish = the room's last patient out (P10/P50/P90); overtime = mean minutes "
                 "past staffed end")
    lines += ["alerts:"] + [f"  - {a}" for a in nc.alerts] if nc.alerts else ["alerts: none"]
    if len(nc.proposals):
        lines += ["day-of proposals (not applied):"] + [f"  - {w}" for w in nc.proposals["words"]]
    lines += [f"note: {n}" for n in nc.notes]
    nxt = nc.pacu.head(4)
    if len(nxt):
        lines.append("PACU: " + "; ".join(
            f"{nc.clock(h.hour)} {h.occupancy_mean:.1f}/{h.beds} beds, hold {h.p_hold:.2f}"
            for h in nxt.itertuples(index=False)))
    return "\n".join(lines)


def nowcast_json(nc: Nowcast) -> dict:
    """The now-cast as a JSON-ready dict (times as HH:MM and minutes of the day)."""
    def frame(df: pd.DataFrame) -> list[dict]:
        return json.loads(df.to_json(orient="records"))

    return {"date": nc.plan.date.isoformat(), "at": nc.clock(nc.at), "reps": nc.reps,
            "seconds": nc.seconds, "feed": nc.feed, "alerts": nc.alerts,
            "rooms": frame(nc.rooms), "cases": frame(nc.cases), "pacu": frame(nc.pacu),
            "proposals": frame(nc.proposals), "quarantine": frame(nc.quarantine),
            "resolutions": frame(nc.resolutions), "notes": nc.notes,
            "minute_of_midnight": nc.plan.midnight}


# --- commands -------------------------------------------------------------------------------
def _at(text: str | None, plan: DayPlan, live: LiveState) -> float:
    if text is None:
        return live.latest if live.latest is not None else float(plan.cases["booked_start"].min())
    try:
        return plan.midnight + hhmm(text)
    except ValueError:
        raise ScenarioError("--at", "", f"expected HH:MM (got {text!r})") from None


def _write_json(nc: Nowcast, path: str) -> None:
    from twin.io import atomic_write

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(nowcast_json(nc), indent=1)
    atomic_write(p, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def load_inputs(scenario: str | Path, plan: str | Path, events: str | Path,
                tz: str | None = None) -> tuple[Scenario, DayPlan, Feed]:
    """The scenario, plan and feed ``ortwin nowcast`` reads (one-line errors, exit 2)."""
    zone = parse_zone(tz)
    scn = load_scenario(scenario)
    feed = read_feed(events)  # FeedError (one line, exit 2) when unreadable
    return scn, read_plan(plan, scn, zone), feed


def cmd_nowcast(args: argparse.Namespace) -> int:
    """``ortwin nowcast``."""
    scn, plan, feed = load_inputs(args.scenario, args.plan, args.events, args.tz)
    engine = NowcastEngine(scn, plan, NowcastConfig(reps=args.reps, seed=args.seed))
    rooms = [r.id for r in engine.scn.rooms]
    live = LiveState.empty(plan, rooms, LiveConfig(stale_after_min=args.stale_after))
    live.add_unreadable(feed.quarantine)
    fixed = None if args.at is None else _at(args.at, plan, live)
    for line, obs in zip(feed.numbers, feed.observations, strict=True):
        if fixed is None or plan.minute(obs.time) <= fixed + 1e-9:
            live.apply(obs, line)
    policy = None if args.policy == "none" else args.policy
    nc = engine.forecast(live, fixed if fixed is not None else _at(None, plan, live), policy)
    print(format_nowcast(nc), flush=True)
    if args.json:
        _write_json(nc, args.json)
    if not args.follow:
        return 0
    return _follow(args, engine, live, policy, feed.last_line)


def _follow(args, engine: NowcastEngine, live: LiveState, policy, done: int) -> int:
    """Tail the feed: apply new complete lines as they come and re-forecast (``done``: lines
    of the file already read). Quarantine indexes are file line numbers throughout."""
    path = Path(args.events)
    idle_since = time.monotonic()
    while True:
        time.sleep(args.interval)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise FeedError(path, "", f"cannot read file while following ({e.strerror})") from None
        rest = "".join(text.splitlines(keepends=True)[done:])
        feed = parse_lines(rest, path, done + 1)
        if feed.last_line == done:
            if args.idle_exit and time.monotonic() - idle_since >= args.idle_exit:
                return 0
            continue
        idle_since = time.monotonic()
        done = feed.last_line
        live.add_unreadable(feed.quarantine)
        for line, obs in zip(feed.numbers, feed.observations, strict=True):
            live.apply(obs, line)
        at = live.latest if live.latest is not None else engine.plan.midnight
        nc = engine.forecast(live, at, policy)
        print("\n" + format_nowcast(nc), flush=True)
        if args.json:
            _write_json(nc, args.json)


def cmd_feed(args: argparse.Namespace) -> int:
    """``ortwin feed playback|simulate``."""
    if args.feed_command == "playback":
        from calibration.loader import load_history
        from calibration.mapping import load_mapping
        from calibration.playback import log_zone, playback_day, write_playback

        parse_zone(args.tz)
        scn = load_scenario(args.scenario)
        zone = args.tz or log_zone(load_mapping(args.mapping))
        history = load_history(args.log, args.mapping)
        try:
            date = dt.date.fromisoformat(args.date)
        except ValueError:
            raise ScenarioError("--date", "", f"expected YYYY-MM-DD (got {args.date!r})") from None
        pb = playback_day(history, date, scn, zone)
        out = args.scenario_out or scenario_beside(args.plan_out)
        write_playback(pb, args.plan_out, args.feed_out, out)
        plan, obs, notes = pb.plan, pb.observations, pb.notes
        where = f" (times in {zone})" if zone else ""
    else:
        from ortwin.registry import get_policy
        from twin.sim_feed import events_feed, simulate_day

        sim = simulate_day(load_scenario(args.scenario), args.day, args.seed, args.rep,
                           lambda scn: get_policy("manual", scn))
        plan, obs, notes, out, where = sim.plan, events_feed(sim), [], args.scenario, ""
        write_plan(plan, args.plan_out)
        write_feed(obs, args.feed_out)
    print(f"plan of {plan.date.isoformat()}: {len(plan.cases)} cases -> {args.plan_out}; "
          f"feed: {len(obs)} observations{where} -> {args.feed_out}")
    if out != args.scenario:
        print(f"scenario of the day -> {out}")
    for n in notes:
        print(f"note: {n}")
    print(f"now-cast it: ortwin nowcast --scenario {out} --plan {args.plan_out} "
          f"--events {args.feed_out}")
    return 0


def scenario_beside(plan_out: str | Path) -> Path:
    """Where playback writes the day's scenario by default: ``X.plan.csv`` -> ``X.scenario.yaml``
    (any other name: its stem + ``.scenario.yaml``)."""
    p = Path(plan_out)
    stem = p.name.removesuffix(".csv").removesuffix(".plan")
    return p.with_name(f"{stem}.scenario.yaml")


COMMANDS = {"nowcast": cmd_nowcast, "feed": cmd_feed}
