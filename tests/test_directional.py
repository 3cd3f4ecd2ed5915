"""Directional tests: the twin moves the right way when a lever moves, measured by paired
differences over common random numbers (replication i is the same patients in both arms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ortwin.experiment import run_experiment
from twin.scenario import Scenario, from_mapping, load_scenario

REPS = 24


def paired(a: Scenario, b: Scenario, kpi: str, reps: int = REPS) -> tuple[float, float, float]:
    """Mean of b − a over common replications and its 95% t-interval."""
    ra = run_experiment(a, reps=reps, keep_events=False).replications[kpi].to_numpy()
    rb = run_experiment(b, reps=reps, keep_events=False).replications[kpi].to_numpy()
    d = rb - ra
    h = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean()), float(d.mean() - h), float(d.mean() + h)


def edit(scn: Scenario, change) -> Scenario:
    data = scn.model_dump(by_alias=True)
    change(data)
    return from_mapping(data)


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario("scenarios/baseline.yaml")


@pytest.mark.slow
def test_more_pacu_beds_fewer_pacu_hold_minutes(base: Scenario) -> None:
    closed = load_scenario("scenarios/pacu_closed_beds.yaml")
    assert closed.pacu.beds < base.pacu.beds
    mean, lo, hi = paired(closed, base, "pacu_hold_minutes")
    assert hi < 0, (mean, lo, hi)  # reopening the beds removes hold minutes
    more = edit(closed, lambda d: d["pacu"].update(beds=closed.pacu.beds + 4))
    mean, lo, hi = paired(closed, more, "pacu_hold_minutes")
    assert hi < 0, (mean, lo, hi)


@pytest.mark.slow
def test_added_or_less_overtime(base: Scenario) -> None:
    """An eleventh OR kept for add-ons (same electives): less OR time outside staffed hours,
    shorter add-on waits."""

    def add_room(d: dict) -> None:
        or10 = next(r for r in d["rooms"] if r["id"] == "OR10")
        d["rooms"].append({**or10, "id": "OR11", "on_call": False, "addon_only": True})

    plus = edit(base, add_room)
    mean, lo, hi = paired(base, plus, "out_of_hours_minutes")
    assert hi < 0, (mean, lo, hi)
    mean, lo, hi = paired(base, plus, "addon_wait_mean")
    assert hi < 0, (mean, lo, hi)


@pytest.mark.slow
def test_duration_inflation_more_overtime(base: Scenario) -> None:
    inflated = load_scenario("scenarios/duration_inflation.yaml")
    assert inflated.stress.duration_factor > 1
    mean, lo, hi = paired(base, inflated, "overtime_minutes")
    assert lo > 0, (mean, lo, hi)
    mean, lo, hi = paired(base, inflated, "utilisation")
    assert lo > 0, (mean, lo, hi)


@pytest.mark.slow
def test_staffing_shortage_lowers_utilisation(base: Scenario) -> None:
    short = load_scenario("scenarios/staffing_shortage.yaml")
    mean, lo, hi = paired(base, short, "utilisation")
    assert hi < 0, (mean, lo, hi)


def test_cancellation_spike_more_cancellations(base: Scenario) -> None:
    spike = load_scenario("scenarios/cancellation_spike.yaml")
    mean, lo, hi = paired(base, spike, "cases_cancelled", reps=8)
    assert lo > 0, (mean, lo, hi)


def test_common_random_numbers_pair_the_arms(base: Scenario) -> None:
    """Common random numbers shrink the variance of a difference: the same patients in both
    arms beat independent patients by a wide margin."""
    closed = load_scenario("scenarios/pacu_closed_beds.yaml")
    kpi = "utilisation"
    a = run_experiment(base, reps=12, keep_events=False).replications[kpi].to_numpy()
    b = run_experiment(closed, reps=12, keep_events=False).replications[kpi].to_numpy()
    c = run_experiment(closed, reps=12, seed=base.seed + 1, keep_events=False).replications[kpi]
    crn = np.var(b - a, ddof=1)
    independent = np.var(c.to_numpy() - a, ddof=1)
    assert crn < 0.25 * independent, (crn, independent)
