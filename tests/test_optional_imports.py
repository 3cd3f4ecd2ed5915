"""The core never imports the heavy optional stacks (torch, ultralytics, onnxruntime)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "ultralytics", "onnxruntime", "cv2", "dask", "distributed")


def test_core_and_cli_import_without_heavy_packages() -> None:
    code = (
        "import sys, twin, ortwin.cli, policies, calibration, vision\n"
        "from ortwin.experiment import run_experiment\n"
        "ortwin.cli.build_parser()\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
