"""Helpers the benchmarks share."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | None, data: dict) -> None:
    """Write a benchmark's figures as indented JSON (nothing when ``path`` is None)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=1))
