"""Shared fixtures: the bundled real-format case log, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KAGGLE_LOG = ROOT / "calibration" / "data" / "or_case_log_2022_jan_feb.csv"
KAGGLE_MAPPING = ROOT / "calibration" / "mappings" / "or_case_log_2022.yaml"


@pytest.fixture(scope="session")
def kaggle():
    """The 2022 case log (8 ORs, Jan-Feb) through its mapping."""
    from calibration.loader import load_history

    return load_history(KAGGLE_LOG, KAGGLE_MAPPING)
