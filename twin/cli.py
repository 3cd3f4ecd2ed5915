"""The ``ortwin`` command: a thin layer over :mod:`twin.runner` and :mod:`twin.scenario`.

Exit status: 0 success, 2 bad input (one line on stderr naming the file, the field and what was
expected; no traceback), 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin.scenario import Scenario, ScenarioError, load_scenario


class UsageError(Exception):
    """A bad command-line value; the message is one line."""


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a whole number, got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} expects a number of at least 1, got {v}")
        return v
    return parse


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed expects a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"--seed expects a non-negative number, got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ortwin`` and its subcommands."""
    from policies import POLICIES

    p = _Parser(prog="ortwin", description=(
        "ORTwin: a discrete-event digital twin of a hospital surgical suite. Run YAML scenarios "
        "under a scheduling policy for many replications with common random numbers and get "
        "KPIs (utilisation, overtime, cancellations, PACU holds, ...) with their tails."))
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("run", help="run a scenario and print its KPI summary", description=(
        "Run SCENARIO for N replications under a policy; print the KPI summary (mean, P50, "
        "P90, P95, CVaR95) and write events, cases, replications and summary files."))
    r.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    r.add_argument("--policy", default="as-booked", choices=sorted(POLICIES),
                   help="scheduling policy (default: as-booked)")
    r.add_argument("--reps", type=_positive("--reps"), default=10,
                   help="number of replications (default: 10)")
    r.add_argument("--seed", type=_seed, default=None,
                   help="base seed (default: the scenario's seed)")
    r.add_argument("--workers", type=_positive("--workers"), default=1,
                   help="local worker processes (default: 1; results are identical)")
    r.add_argument("--out", default=None, metavar="DIR",
                   help="write parquet files here (default: out/<scenario name>)")
    r.add_argument("--days", type=_positive("--days"), default=None,
                   help="override the horizon in days (short test runs)")
    r.add_argument("--no-events", action="store_true",
                   help="do not keep the event log (large runs; KPIs are still computed)")
    r.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar on stderr (default: auto = when stderr is a terminal)")

    v = sub.add_parser("validate", help="check scenario files", description=(
        "Load and validate each scenario file; print OK lines, or one error line per bad file."))
    v.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    return p


def _load(path: str, days: int | None = None) -> Scenario:
    scn = load_scenario(path)
    return scn if days is None else with_horizon(scn, days, path)


def with_horizon(scn: Scenario, days: int, source: str = "<scenario>") -> Scenario:
    """The scenario cut (or extended) to ``days``; planned downtime past the end is dropped."""
    from twin.scenario import from_mapping

    data = scn.model_dump(by_alias=True)
    data["horizon_days"] = days
    for room in data["rooms"]:
        room["downtime"] = [d for d in room["downtime"] if d["day"] < days]
    data["spd"]["outages"] = [o for o in data["spd"]["outages"] if o["day"] < days]
    return from_mapping(data, source)


def cmd_run(args: argparse.Namespace) -> int:
    """``ortwin run``."""
    from twin.runner import run_experiment
    from twin.summary import format_table

    scn = _load(args.scenario, args.days)
    out = Path(args.out) if args.out else Path("out") / scn.name
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"--out {out}: expected a directory, {blocker} is a file")
    show = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=args.reps, unit="rep", desc=scn.name, file=sys.stderr)
    try:
        res = run_experiment(scn, args.policy, args.reps, args.seed, args.workers,
                             keep_events=not args.no_events,
                             progress=bar.update if bar else None,
                             base_dir=Path(args.scenario).parent)
    finally:
        if bar:
            bar.close()
    seed = scn.seed if args.seed is None else args.seed
    print(f"scenario {scn.name} | policy {args.policy} | {args.reps} replications | "
          f"seed {seed} | {scn.horizon_days} days")
    print(format_table(res.summary))
    try:
        res.write(out)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write ({e.strerror})") from None
    print(f"results written to {out}/ (events, cases, replications, summary, room_days, services)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``ortwin validate``."""
    status = 0
    for path in args.scenarios:
        try:
            scn = load_scenario(path)
        except ScenarioError as e:
            print(e, file=sys.stderr)
            status = 2
            continue
        print(f"{path}: OK ({scn.name}: {len(scn.rooms)} rooms, {len(scn.services)} services, "
              f"{scn.horizon_days} days)")
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ortwin`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        return cmd_validate(args)
    except (ScenarioError, UsageError) as e:
        print(f"ortwin: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ortwin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
