"""Golden back-tests: fixed seeds reproduce stored KPIs. Regenerate only with
``tests/golden/regenerate.py`` when a change is meant to move results."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from regenerate import CASES, HERE, golden_frame


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    stored = pd.read_csv(HERE / name)
    got = golden_frame(*CASES[name])
    assert list(got.columns) == list(stored.columns)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), stored, check_dtype=False,
                                  rtol=1e-7, atol=1e-7)
