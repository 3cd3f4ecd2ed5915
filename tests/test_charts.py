"""Charts carry their data inline; past RAW_LIMIT replications distributions are drawn from
exact summaries, so charts of 10,000 replications stay small and still show the right numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ortwin import charts


def _reps(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"scenario": "s", "policy": np.repeat(["manual", "rules"], n),
                         "rep": np.tile(np.arange(n), 2),
                         "overtime_minutes": rng.gamma(2.0, 300.0, 2 * n)})


def _rows(spec: dict) -> list[pd.DataFrame]:
    return [pd.DataFrame(v) for v in spec.get("datasets", {}).values()]


def test_small_runs_draw_every_replication():
    spec = charts.kpi_distribution(_reps(50), "overtime_minutes", "box").to_dict()
    (data,) = _rows(spec)
    assert len(data) == 100 and "$schema" in spec


@pytest.mark.parametrize("n", [charts.RAW_LIMIT, 10_000])
def test_large_runs_draw_exact_box_statistics(n):
    reps = _reps(n)
    spec = charts.kpi_distribution(reps, "overtime_minutes", "box").to_dict()
    (stats,) = _rows(spec)
    assert len(stats) == 2  # one row per policy, whatever the replications
    for row in stats.itertuples(index=False):
        v = reps.loc[reps["policy"] == row.policy, "overtime_minutes"]
        assert row.count == n and row.min == pytest.approx(v.min())
        assert row.median == pytest.approx(v.median()) and row.max == pytest.approx(v.max())
        assert (row.q1, row.q3) == pytest.approx(tuple(v.quantile([0.25, 0.75])))


def test_large_runs_draw_the_ecdf_from_quantiles():
    reps = _reps(10_000)
    spec = charts.kpi_distribution(reps, "overtime_minutes", "ecdf").to_dict()
    (data,) = _rows(spec)
    assert len(data) == 2 * 500
    for arm, g in data.groupby("arm"):
        v = reps.loc[reps["policy"] == arm.split(" · ")[1], "overtime_minutes"]
        assert g["overtime_minutes"].min() == pytest.approx(v.min())
        assert g["overtime_minutes"].median() == pytest.approx(v.median(), rel=0.01)
