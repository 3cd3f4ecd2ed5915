"""Helpers for the scenario and CLI tests: write small scenario files, run the CLI in-process."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS_DIR = ROOT / "scenarios"
BASELINE = SCENARIOS_DIR / "baseline.yaml"
SCENARIO_FILES = sorted(SCENARIOS_DIR.glob("*.yaml"))

BOOKED_COLUMNS = ["case_id", "service", "surgeon", "procedure", "patient_class", "day", "room",
                  "start", "booked_minutes"]
# Two valid rows of the baseline suite: general surgery in OR1 on Monday.
BOOKED_ROWS = [
    ["c1", "general", "dr_okafor", "lap_cholecystectomy", "outpatient", "0", "OR1", "07:30", "90"],
    ["c2", "general", "dr_okafor", "inguinal_hernia_repair", "outpatient", "0", "OR1", "09:30", "90"],
]


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text)
    return path


def extending(tmp_path: Path, name: str, body: str, parent: Path = BASELINE) -> Path:
    """A scenario file ``name.yaml`` in tmp_path that extends ``parent`` (absolute path)."""
    return write(tmp_path / f"{name}.yaml", f"extends: {parent}\nname: {name}\n{body}")


def baseline_raw() -> dict[str, Any]:
    """A deep copy of the merged baseline mapping (no ``extends``)."""
    from twin.scenario import load_raw

    return copy.deepcopy(load_raw(BASELINE))


def standalone(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    """A self-contained scenario file (no ``extends``) holding ``data``."""
    return write(tmp_path / f"{name}.yaml", yaml.safe_dump(data, sort_keys=False))


def booked_csv(path: Path, rows: list[list[str]], columns: list[str] = BOOKED_COLUMNS) -> Path:
    """Write a booked-list CSV."""
    lines = [",".join(columns)] + [",".join(r) for r in rows]
    return write(path, "\n".join(lines) + "\n")


def run_cli(argv: list[str]) -> int:
    """``ortwin.cli.main(argv)`` as an exit status (argparse errors raise SystemExit)."""
    from ortwin.cli import main

    try:
        return main(argv)
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)


def one_line(text: str) -> str:
    """The single non-empty line of ``text``; fails if there are zero or several."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one line, got {len(lines)}:\n{text}"
    assert "Traceback" not in text
    return lines[0]
