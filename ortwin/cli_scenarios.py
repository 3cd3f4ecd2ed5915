"""``ortwin scenarios``: the bundled scenarios by name, and a copy of one to edit.

Every command that takes a SCENARIO takes a bundled scenario's name too (``ortwin run baseline``);
``ortwin scenarios copy`` writes one out, with the files it ``extends``, to start a what-if from.
"""

from __future__ import annotations

import argparse
import sys

import scenarios
from twin.scenario import ScenarioError, load_scenario

ABOUT_WIDTH = 72


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``scenarios list`` and ``scenarios copy`` on the ``ortwin`` parser."""
    p = sub.add_parser("scenarios", help="list the bundled scenarios, or copy one out to edit",
                       description=(
        "The scenarios bundled with ORTwin. Any command that takes a SCENARIO file takes one of "
        "these names too (ortwin run baseline). 'copy' writes a bundled scenario into a folder "
        "with the files it extends, so the copy can be edited and run on its own."))
    act = p.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)
    act.add_parser("list", help="the bundled scenarios: name, rooms, days, description")
    c = act.add_parser("copy", help="copy a bundled scenario to a file or folder")
    c.add_argument("name", metavar="NAME", help="bundled scenario (see: ortwin scenarios list)")
    c.add_argument("dest", nargs="?", default=".", metavar="DEST",
                   help="file or existing folder to write to (default: the current folder)")


def describe(name: str) -> str:
    """One line for ``name``: its rooms, days and its description's first sentence (cut to
    ``ABOUT_WIDTH`` characters)."""
    scn = load_scenario(scenarios.path(name))
    about = " ".join(scn.description.split()).split(". ")[0].rstrip(".")
    if len(about) > ABOUT_WIDTH:
        about = about[:ABOUT_WIDTH - 3].rsplit(" ", 1)[0] + "..."
    return f"{name:<20} {len(scn.rooms):>3} rooms {scn.horizon_days:>2} days  {about}".rstrip()


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``ortwin scenarios list|copy``."""
    if args.scenarios_command == "list":
        for name in scenarios.names():
            print(describe(name))
        return 0
    try:
        written = scenarios.copy_out(args.name, args.dest)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, FileNotFoundError, PermissionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        load_scenario(written)
    except ScenarioError as e:  # pragma: no cover - the bundled files are validated by tests
        print(e, file=sys.stderr)
        return 2
    print(f"{args.name}: written to {written}; run it with: ortwin run {written}")
    return 0


COMMANDS = {"scenarios": cmd_scenarios}
