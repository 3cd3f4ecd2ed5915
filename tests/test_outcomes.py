"""Outcome views: exceedance curves and tail tables (invariants by hypothesis), daily overtime
and fairness match the frames they come from, the representative day is a median day, and the
day trace is consistent with the event log (one case at a time per room, milestones in order)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ortwin import outcomes
from ortwin.compare import compare
from ortwin.runner import run_replication
from ortwin.summary import cvar
from twin.scenario import load_scenario, with_horizon

values = st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), min_size=1,
                  max_size=200)


@given(values)
@settings(max_examples=200, deadline=None)
def test_exceedance_is_a_falling_step_function_of_the_sample(v):
    ex = outcomes.exceedance(np.array(v))
    arr = np.array(v)
    assert list(ex["x"]) == sorted(set(v))
    assert (np.diff(ex["p_exceed"]) <= 0).all()
    assert ex["p_exceed"].iloc[-1] == 0.0 and (ex["p_exceed"] >= 0).all()
    for x, p in zip(ex["x"], ex["p_exceed"], strict=True):
        assert p == pytest.approx((arr > x).mean())


@given(values, st.integers(min_value=2, max_value=50))
@settings(max_examples=100, deadline=None)
def test_thinned_exceedance_keeps_exact_points_and_the_maximum(v, k):
    full = outcomes.exceedance(np.array(v))
    thin = outcomes.exceedance(np.array(v), max_points=k)
    assert len(thin) == min(len(full), k) or len(thin) <= k
    assert thin["x"].iloc[-1] == full["x"].iloc[-1] and thin["x"].iloc[0] == full["x"].iloc[0]
    exact = dict(zip(full["x"], full["p_exceed"], strict=True))
    assert all(exact[x] == p for x, p in zip(thin["x"], thin["p_exceed"], strict=True))


@given(values)
@settings(max_examples=100, deadline=None)
def test_tail_table_orders_its_statistics(v):
    import pandas as pd

    daily = pd.DataFrame({"scenario": "s", "policy": "p", "overtime_minutes": v})
    t = outcomes.tail_table(daily).iloc[0]
    assert t["n"] == len(v)
    assert t["p50"] <= t["p90"] + 1e-9 <= t["p95"] + 2e-9 <= t["cvar95"] + 3e-9
    assert t["cvar95"] <= t["max"] + 1e-9
    assert t["cvar95"] == pytest.approx(cvar(v, 0.95, "lower"))


@pytest.fixture(scope="module")
def comp():
    scn = with_horizon(load_scenario("scenarios/baseline.yaml"), 3)
    return compare([scn], ["manual", "rules"], reps=5, seed=3)


def test_daily_overtime_sums_the_room_days(comp):
    daily = outcomes.daily_overtime(comp.room_days)
    assert len(daily) == len(comp.room_days.groupby(["scenario", "policy", "rep", "day"]))
    total = daily.groupby(["policy", "rep"])["overtime_minutes"].sum()
    rd = comp.room_days.groupby(["policy", "rep"])["overtime_minutes"].sum()
    assert np.allclose(total.sort_index(), rd.sort_index())


def test_fairness_pools_cancellations_over_replications(comp):
    fair = outcomes.fairness(comp.services)
    svc = comp.services
    for row in fair.itertuples(index=False):
        g = svc[(svc["policy"] == row.policy) & (svc["service"] == row.service)]
        assert row.reps == g["rep"].nunique()
        expected = g["cancelled"].sum() / g["cases"].sum() if g["cases"].sum() else math.nan
        assert row.cancellation_rate == pytest.approx(expected, nan_ok=True)
        assert row.cases == pytest.approx(g["cases"].mean())


def test_representative_day_has_the_median_overtime(comp):
    rep, day = outcomes.representative_day(comp.room_days, "manual")
    rd = comp.room_days[comp.room_days["policy"] == "manual"]
    days = rd.groupby(["rep", "day"])["overtime_minutes"].sum()
    med = days.median()
    best = (days - med).abs().min()
    assert abs(days[(rep, day)] - med) == pytest.approx(best)


def test_day_trace_agrees_with_the_event_log():
    scn = with_horizon(load_scenario("scenarios/pacu_closed_beds.yaml"), 2)
    out = run_replication(scn, "manual", 5, 0)
    tr = outcomes.trace_from_events(out.events, out.cases, 0, scn.name, "manual", 0)
    cases = tr.intervals[tr.intervals["kind"] == "case"]
    ev = out.events
    in_room_day0 = ev[(ev["event"] == "in_room") & (ev["time"] < 1440)]
    assert set(cases["case_id"]) == set(in_room_day0["case_id"])
    assert (cases["end"] > cases["start"]).all()
    for _, g in cases.sort_values("start").groupby("room"):  # one patient at a time per room
        assert (g["start"].to_numpy()[1:] >= g["end"].to_numpy()[:-1] - 1e-9).all()
    holds = tr.intervals[tr.intervals["kind"] == "pacu_hold"]
    for h in holds.itertuples(index=False):  # a hold ends the case's time in the room
        c = cases[cases["case_id"] == h.case_id].iloc[0]
        assert c["start"] <= h.start < h.end == pytest.approx(c["end"])
    assert (tr.pacu["occupied"] >= 0).all() and tr.pacu["time"].is_monotonic_increasing
    assert len(tr.windows) == sum(1 for r in scn.rooms if "mon" in r.hours)
    assert tr.explanations.empty  # manual writes no explanations


def test_day_trace_reruns_the_same_replication(comp):
    scn = with_horizon(load_scenario("scenarios/baseline.yaml"), 3)
    rep, day = outcomes.representative_day(comp.room_days, "manual")
    tr = outcomes.day_trace(scn, "manual", 3, rep, day)
    rd = comp.room_days[(comp.room_days["policy"] == "manual") & (comp.room_days["rep"] == rep)
                        & (comp.room_days["day"] == day)]
    cases = tr.intervals[tr.intervals["kind"] == "case"]
    assert len(cases) == int(rd["cases"].sum())


def test_ml_cpsat_explanations_reach_the_day_trace(monkeypatch):
    monkeypatch.setenv("ORTWIN_CPSAT_DTIME", "0.2")  # short limits: this checks the wiring
    monkeypatch.setenv("ORTWIN_CPSAT_REPLAN_DTIME", "0.05")
    scn = with_horizon(load_scenario("scenarios/baseline.yaml"), 1)
    tr = outcomes.day_trace(scn, "ml-cpsat", 1, 0, 0)
    ex = tr.explanations
    planned = tr.intervals[(tr.intervals["kind"] == "case") & ~tr.intervals["is_addon"].astype(bool)]
    assert len(ex) and set(planned["case_id"]) <= set(ex["case_id"])
    assert ex["why"].str.contains(r"→ OR\d+ at \d\d:\d\d, planned for").all()
    assert set(ex["room"]) <= {r.id for r in scn.rooms}
