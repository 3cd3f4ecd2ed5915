"""Golden back-tests of the now-cast: two real days of the shared case log and one simulated day
(perfect states and the camera model's events) recomputed and compared with
``tests/golden/nowcast_days.csv`` (regenerated only by ``tests/golden/regenerate_nowcast.py``),
and held to stated bounds."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import regenerate_nowcast as gold  # noqa: E402

MAX_REAL_MAE = 20.0
"""Real days: the now-cast's P50 is within this many minutes of the actual finish on average at
every hour (the booked schedule is 70-150 minutes off on these days)."""
MIN_REAL_COVERAGE = 0.5
"""Real days: at least this share of actual finishes inside the P10-P90 band at every hour."""
MAX_CAMERA_COST = 15.0
"""Simulated day: the camera feed's MAE is at most this many minutes above perfect states'."""


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return gold.golden_table()


def test_golden_tables_match(table):
    want = pd.read_csv(gold.TABLE)
    assert list(table["case"]) == list(want["case"])
    pd.testing.assert_frame_equal(table.reset_index(drop=True), want, check_dtype=False,
                                  rtol=1e-6, atol=1e-9)


def test_real_days_beat_the_booked_schedule_and_stay_within_bounds(table):
    real = table.loc[table["case"].str.startswith("real")]
    assert len(real) == 4 * len(gold.REAL_DAYS)
    assert (real["mae_now"] < real["mae_booked"]).all()
    assert (real["crps_now"] < real["crps_booked"]).all()
    assert (real["mae_now"] <= MAX_REAL_MAE).all(), real
    assert (real["coverage"] >= MIN_REAL_COVERAGE).all(), real


def test_simulated_day_beats_both_baselines_with_either_feed(table):
    for feed in ("perfect", "camera"):
        sim = table.loc[table["case"] == f"simulated {feed}"]
        assert len(sim) == 4
        for base in ("booked", "twin"):
            assert (sim["mae_now"] < sim[f"mae_{base}"]).all(), (feed, base, sim)
            assert (sim["crps_now"] < sim[f"crps_{base}"]).all(), (feed, base, sim)
    per = table.loc[table["case"] == "simulated perfect"].set_index("hour")
    cam = table.loc[table["case"] == "simulated camera"].set_index("hour")
    assert (cam["mae_now"] - per["mae_now"] <= MAX_CAMERA_COST).all()
