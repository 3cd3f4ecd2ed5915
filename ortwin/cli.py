"""The ``ortwin`` command: a thin layer over :mod:`ortwin.runner` and :mod:`twin.scenario`.

Exit status: 0 success, 2 bad input (one line on stderr naming the file, the field and what was
expected; no traceback), 1 an unexpected failure (``gate``: also a gate that does not hold).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from twin.scenario import Scenario, ScenarioError, load_scenario, with_horizon


class UsageError(Exception):
    """A bad command-line value; the message is one line."""


def _whole(name: str, minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a whole number, got {text!r}") from None
        if v < minimum:
            least = "a non-negative number" if minimum == 0 else f"a number of at least {minimum}"
            raise argparse.ArgumentTypeError(f"{name} expects {least}, got {v}")
        return v
    return parse


def _positive(name: str):
    return _whole(name, 1)


_seed = _whole("--seed", 0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ortwin`` and its subcommands."""
    from ortwin.cli_run import add_cluster_options, add_long_run_options
    from ortwin.registry import POLICIES

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
    r.add_argument("--reps", type=_positive("--reps"), default=None,
                   help="number of replications (default: 10)")
    r.add_argument("--seed", type=_seed, default=None,
                   help="base seed (default: the scenario's seed)")
    r.add_argument("--out", default=None, metavar="DIR",
                   help="write the results here (default: out/<scenario name>)")
    r.add_argument("--days", type=_positive("--days"), default=None,
                   help="override the horizon in days (short test runs)")
    r.add_argument("--no-events", action="store_true", help="the same as --events none")
    r.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar on stderr (default: auto = when stderr is a terminal)")
    add_cluster_options(r, _whole)
    add_long_run_options(r, _whole, "all up to 100 replications, else sample")

    v = sub.add_parser("validate", help="check scenario files", description=(
        "Load and validate each scenario file; print OK lines, or one error line per bad file."))
    v.add_argument("scenarios", nargs="+", metavar="SCENARIO")

    c = sub.add_parser("compare", help="compare policies on scenarios (paired differences)",
                       description=(
        "Run every scenario under every policy with common random numbers (same seed and "
        "replications for every arm); print each policy's KPIs (mean, P90) and its paired "
        "difference from the reference policy with a 95% CI; write replications, summary and "
        "differences files."))
    c.add_argument("--scenarios", nargs="+", required=True, metavar="SCENARIO",
                   help="scenario YAML files")
    c.add_argument("--policies", default=None, metavar="P1,P2,...",
                   help=f"comma-separated policies (registered: {', '.join(POLICIES)}; "
                        "default: all registered)")
    c.add_argument("--reference", default=None, metavar="POLICY",
                   help="policy the others are compared with (default: manual if compared, "
                        "else the first policy)")
    c.add_argument("--reps", type=_positive("--reps"), default=None,
                   help="replications per scenario and policy (default: 10)")
    c.add_argument("--seed", type=_seed, default=None,
                   help="base seed for every arm (default: each scenario's seed)")
    c.add_argument("--days", type=_positive("--days"), default=None,
                   help="override the horizon in days (short test runs)")
    c.add_argument("--kpis", default=None, metavar="K1,K2,...",
                   help="comma-separated KPI keys to print (default: a standard subset; "
                        "every KPI is in the files)")
    c.add_argument("--out", default="out/compare", metavar="DIR",
                   help="write parquet/CSV files here (default: out/compare)")
    c.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar on stderr (default: auto)")
    add_cluster_options(c, _whole)
    add_long_run_options(c, _whole, "none")

    g = sub.add_parser("gate", help="check KPI release gates (exit 1 if one fails)",
                       description=(
        "Run what GATES needs (each scenario x policy once), check every KPI gate, write JUnit "
        "XML and a markdown summary. Exit 0 when all gates hold, 1 when one fails, 2 on bad "
        "input."))
    g.add_argument("gates", metavar="GATES", help="gates YAML file")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="write replications, summary and gate results here "
                        "(default: out/gate/<gates file name>)")
    g.add_argument("--junit", default=None, metavar="FILE",
                   help="JUnit XML report (default: DIR/junit.xml)")
    g.add_argument("--markdown", default=None, metavar="FILE",
                   help="markdown summary (default: DIR/gates.md)")
    add_cluster_options(g, _whole, None)
    g.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar on stderr (default: auto)")

    rp = sub.add_parser("report", help="write a self-contained HTML report of results",
                        description=(
        "Read a results directory written by `ortwin compare --out` or `ortwin run --out` and "
        "write one HTML file that opens offline (chart libraries inlined): per scenario and "
        "policy KPI tables, paired differences, KPI distributions, exceedance curves and "
        "P90/P95/CVaR95 of daily overtime, fairness by service, and a methods section."))
    rp.add_argument("results", metavar="RESULTS", help="results directory")
    rp.add_argument("-o", "--out", default=None, metavar="FILE",
                    help="HTML file to write (default: RESULTS/report.html)")
    rp.add_argument("--title", default="ORTwin results", help="report title")
    rp.add_argument("--png", default=None, metavar="DIR",
                    help="also write every chart as a PNG (for slides) into DIR")

    from ortwin.cli_calibrate import add_parsers
    from ortwin.cli_plan import add_parsers as add_plan
    from ortwin.cli_scenarios import add_parsers as add_scenarios
    from ortwin.cli_vision import add_parsers as add_vision
    from ortwin.nowcast_cli import add_parsers as add_nowcast

    add_parsers(sub, _whole, _seed)
    add_nowcast(sub, _whole, _seed)
    add_plan(sub, _whole, _seed)
    add_vision(sub, _whole, _seed)
    add_scenarios(sub)
    return p


def load_for_run(path: str, days: int | None = None) -> Scenario:
    """The scenario at ``path``, cut to its first ``days`` days when given."""
    scn = load_scenario(path)
    return scn if days is None else with_horizon(scn, days, path)


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


def check_out_path(option: str, path: Path, is_file: bool = False) -> None:
    """Fail early (exit 2) when an output path cannot be a directory (or, for files, a file)."""
    if is_file and path.is_dir():
        raise UsageError(f"{option} {path}: expected a file, {path} is a directory")
    start = path.parent if is_file else path
    blocker = next((p for p in (start, *start.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"{option} {path}: expected a directory, {blocker} is a file")


def cmd_report(args: argparse.Namespace) -> int:
    """``ortwin report``."""
    from ortwin.compare import CompareError, read_comparison
    from ortwin.report import write_report

    out = Path(args.out) if args.out else Path(args.results) / "report.html"
    check_out_path("-o", out, is_file=True)
    if args.png:
        check_out_path("--png", Path(args.png))
    try:
        comp = read_comparison(args.results)
    except CompareError as e:
        raise UsageError(str(e)) from None
    try:
        path, pngs = write_report(comp, out, args.title, args.png)
    except OSError as e:
        raise UsageError(f"cannot write the report ({e.filename}: {e.strerror})") from None
    print(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)"
          + (f"; {len(pngs)} PNG charts in {args.png}/" if args.png else ""))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """``ortwin gate``: 0 when every gate holds, 1 when one fails."""
    from ortwin.cli_run import Progress, cluster_session
    from ortwin.gate import GateError, format_report, load_gates, run_gates

    try:
        plan = load_gates(args.gates)
    except GateError as e:
        raise UsageError(str(e)) from None
    out = Path(args.out) if args.out else Path("out") / "gate" / Path(args.gates).stem
    junit = Path(args.junit) if args.junit else out / "junit.xml"
    markdown = Path(args.markdown) if args.markdown else out / "gates.md"
    check_out_path("--out", out)
    check_out_path("--junit", junit, is_file=True)
    check_out_path("--markdown", markdown, is_file=True)
    with cluster_session(args.cluster, args.workers or plan.spec.workers) as ex:
        bar = Progress(args.progress, "gate")  # after the line that says where the run goes
        bar.total(plan.spec.reps * len(plan.arms()))
        try:
            report = run_gates(plan, progress=bar.update, cluster=ex)
        finally:
            bar.close()
    print(format_report(report))
    try:
        report.write(out, junit, markdown)
    except OSError as e:
        raise UsageError(f"cannot write results ({e.filename}: {e.strerror})") from None
    print(f"results written to {out}/, JUnit XML to {junit}, markdown to {markdown}")
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ortwin`` console script."""
    from ortwin.cli_calibrate import COMMANDS
    from ortwin.cli_plan import COMMANDS as PLAN
    from ortwin.cli_run import cmd_compare, cmd_run
    from ortwin.cli_scenarios import COMMANDS as SCENARIOS
    from ortwin.cli_vision import COMMANDS as VISION
    from ortwin.nowcast_cli import COMMANDS as NOWCAST

    args = build_parser().parse_args(argv)
    try:
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        if args.command in NOWCAST:
            return NOWCAST[args.command](args)
        if args.command in VISION:
            return VISION[args.command](args)
        if args.command in PLAN:
            return PLAN[args.command](args)
        if args.command in SCENARIOS:
            return SCENARIOS[args.command](args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "gate":
            return cmd_gate(args)
        if args.command == "report":
            return cmd_report(args)
        return cmd_validate(args)
    except (ScenarioError, UsageError) as e:  # HistoryError is a ScenarioError
        print(f"ortwin: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ortwin: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ortwin run ... | head`: the reader left; outputs are written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
