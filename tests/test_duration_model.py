"""The simulated case history and the quantile duration model (calibration.history,
policies.duration_model): schema, booking-time features only, time-ordered splits, held-out
calibration, beating the procedure-mean baseline, input errors, determinism, unseen surgeons."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from helpers_scn import BASELINE

from calibration.history import HISTORY_COLUMNS, simulate_history
from calibration.training import scenario_key, trained_model
from policies.duration_model import (
    FEATURES,
    HISTORY_SEED,
    ProcedureMeanForecaster,
    QuantileDurationModel,
    coverage,
    pinball_loss,
    time_split,
)
from policies.forecast import Forecast, Forecaster, ForecastError
from twin.demand import draw_week
from twin.scenario import load_scenario
from twin.streams import Streams

TRAIN_WEEKS, TEST_WEEKS = 12, 4


@pytest.fixture(scope="module")
def scn():
    return load_scenario(BASELINE)


@pytest.fixture(scope="module")
def history(scn):
    return simulate_history(scn, TRAIN_WEEKS + TEST_WEEKS, HISTORY_SEED)


@pytest.fixture(scope="module")
def split(history):
    return time_split(history, TRAIN_WEEKS)


@pytest.fixture(scope="module")
def model(split):
    return QuantileDurationModel().fit(split[0])


@pytest.fixture(scope="module")
def held_out(model, split):
    test = split[1]
    return test, model.predict_frame(test)


@pytest.fixture(scope="module")
def week_cases(scn):
    """Booking-time cases of a week the model never saw (another seed)."""
    return list(draw_week(scn, Streams(4242, 0)).cases.values())


# --- history ------------------------------------------------------------------------------

def test_history_has_the_documented_schema(history):
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert sorted(history["week"].unique()) == list(range(TRAIN_WEEKS + TEST_WEEKS))
    assert history["case_id"].is_unique
    for col in ("week", "date_day", "weekday"):
        assert pd.api.types.is_integer_dtype(history[col]), col
    assert pd.api.types.is_bool_dtype(history["is_addon"])
    assert (history["date_day"] // 7 == history["week"]).all()
    assert (history["weekday"] == history["date_day"] % 7).all()
    assert (history["booked_minutes"] > 0).all() and (history["actual_minutes"] > 0).all()
    assert set(history["priority"]) <= {"elective", "urgent", "emergent"}
    assert history["is_addon"].any() and (~history["is_addon"]).any()
    assert len(history) > 150 * (TRAIN_WEEKS + TEST_WEEKS)  # ~210 cases reach a room a week


def test_history_actual_is_wheels_in_to_wheels_out_as_logged(history, scn):
    """Training rows come through the case-log loader: actual_minutes is wheels-in to wheels-out
    to the minute, i.e. the sampled in-room duration plus any hold waiting for a PACU bed."""
    week = draw_week(scn, Streams(HISTORY_SEED, 3))
    h = history[history["week"] == 3]
    assert len(h) > 100
    truth = np.array([week.truth[cid.split("-", 1)[1]].duration for cid in h["case_id"]])
    diff = h["actual_minutes"].to_numpy() - truth
    assert (diff >= -1.0 - 1e-9).all()            # never shorter than sampled (minute clock)
    assert np.mean(np.abs(diff) <= 1.0 + 1e-9) > 0.8  # most cases wait for no PACU bed
    booked = [week.cases[cid.split("-", 1)[1]].booked_minutes for cid in h["case_id"]]
    np.testing.assert_array_equal(h["booked_minutes"].to_numpy(), booked)


# --- features and splits ------------------------------------------------------------------

def test_only_booking_time_features_are_used(model, split):
    assert "actual_minutes" not in FEATURES
    assert set(FEATURES) == {"procedure", "surgeon", "service", "patient_class", "weekday",
                             "booked_minutes", "priority", "is_addon"}
    test = split[1].head(50)
    base = model.predict_frame(test)
    # the outcome (and bookkeeping columns) cannot change a forecast
    scrambled = test.assign(actual_minutes=1.0, week=99, date_day=-1, case_id="x")
    pd.testing.assert_frame_equal(model.predict_frame(scrambled), base)
    pd.testing.assert_frame_equal(model.predict_frame(test.loc[:, list(FEATURES)]), base)


def test_time_split_is_ordered_in_time(history):
    shuffled = history.sample(frac=1.0, random_state=1)
    train, test = time_split(shuffled, TRAIN_WEEKS)
    assert train["week"].max() < test["week"].min()
    assert sorted(train["week"].unique()) == list(range(TRAIN_WEEKS))
    assert sorted(test["week"].unique()) == list(range(TRAIN_WEEKS, TRAIN_WEEKS + TEST_WEEKS))
    assert len(train) + len(test) == len(history)
    assert train["date_day"].max() < test["date_day"].min()
    for bad in (0, TRAIN_WEEKS + TEST_WEEKS):
        with pytest.raises(ValueError, match="train_weeks"):
            time_split(history, bad)


# --- accuracy on later weeks --------------------------------------------------------------

def test_quantiles_are_calibrated_on_later_weeks(held_out):
    test, pred = held_out
    y = test["actual_minutes"]
    assert len(test) > 600
    assert 0.42 <= coverage(y, pred["p50"]) <= 0.58
    assert 0.75 <= coverage(y, pred["p80"]) <= 0.85
    assert 0.90 <= coverage(y, pred["p95"]) <= 0.99


def test_quantiles_are_monotone(held_out):
    _, pred = held_out
    assert (pred["p50"] <= pred["p80"]).all() and (pred["p80"] <= pred["p95"]).all()
    assert (pred > 0).all().all()


def test_beats_procedure_mean_and_booked_minutes_on_pinball_loss(split, held_out):
    train, _ = split
    test, pred = held_out
    y = test["actual_minutes"]
    base = ProcedureMeanForecaster().fit(train).predict_frame(test)
    for col, q in (("p50", 0.5), ("p80", 0.8), ("p95", 0.95)):
        ours = pinball_loss(y, pred[col], q)
        assert ours < pinball_loss(y, base[col], q), q
        assert ours < pinball_loss(y, test["booked_minutes"], q), q


# --- the Forecaster contract --------------------------------------------------------------

def test_forecast_contract(model, week_cases):
    assert isinstance(model, Forecaster) and model.name == "quantile-gbm"
    day = 2
    cases = [c for c in week_cases if c.booked_day == day]
    out = model.forecast(cases, day)
    assert set(out) == {c.id for c in cases}
    for f in out.values():
        assert isinstance(f, Forecast)
        assert 0 < f.p50 <= f.p80 <= f.p95 and math.isfinite(f.p95)
    assert model.forecast([], day) == {}


def test_forecast_error_names_case_and_field(model, week_cases):
    bad = dataclasses.replace(week_cases[0], id="c-missing", booked_minutes=math.nan)
    with pytest.raises(ForecastError, match=r"c-missing.*booked_minutes"):
        model.forecast([week_cases[1], bad], 0)
    frame = pd.DataFrame([{**{f: getattr(week_cases[0], f, None) for f in FEATURES},
                           "weekday": 0, "case_id": "row-7", "booked_minutes": np.nan}])
    with pytest.raises(ForecastError, match=r"row-7.*booked_minutes"):
        model.predict_frame(frame)
    with pytest.raises(ForecastError, match="procedure"):
        model.forecast([dataclasses.replace(week_cases[0], procedure="")], 0)
    with pytest.raises(ForecastError, match="not been fitted"):
        QuantileDurationModel().forecast(week_cases[:1], 0)


def test_unknown_surgeon_and_procedure_still_forecast(model, week_cases):
    case = week_cases[0]
    known = model.forecast([case], 1)[case.id]
    new_surgeon = dataclasses.replace(case, id="new-surgeon", surgeon="dr_never_seen")
    new_proc = dataclasses.replace(case, id="new-proc", procedure="brand_new_procedure")
    out = model.forecast([new_surgeon, new_proc], 1)
    for f in out.values():
        assert 0 < f.p50 <= f.p80 <= f.p95 and math.isfinite(f.p95)
    # an unseen surgeon is forecast from the case's other facts: same ballpark
    assert 0.5 < out["new-surgeon"].p50 / known.p50 < 2.0


def test_fits_are_deterministic(split, model):
    train, test = split
    again = QuantileDurationModel().fit(train)
    pd.testing.assert_frame_equal(again.predict_frame(test), model.predict_frame(test),
                                  check_exact=True)


# --- baseline, metrics, cache -------------------------------------------------------------

def test_procedure_mean_falls_back_to_service_then_overall(split, week_cases):
    train, _ = split
    b = ProcedureMeanForecaster().fit(train)
    case = week_cases[0]
    proc_mean = train.loc[train["procedure"] == case.procedure, "actual_minutes"].mean()
    svc_mean = train.loc[train["service"] == case.service, "actual_minutes"].mean()
    out = b.forecast([case,
                      dataclasses.replace(case, id="p", procedure="unknown"),
                      dataclasses.replace(case, id="s", procedure="unknown", service="unknown")],
                     0)
    assert out[case.id].p50 == out[case.id].p95 == pytest.approx(proc_mean)
    assert out["p"].p80 == pytest.approx(svc_mean)
    assert out["s"].p95 == pytest.approx(train["actual_minutes"].mean())


def test_metrics():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    assert pinball_loss(y, y, 0.8) == 0.0
    # under-forecast by 10 costs q * 10; over-forecast by 10 costs (1 - q) * 10
    assert pinball_loss([10.0], [0.0], 0.8) == pytest.approx(8.0)
    assert pinball_loss([0.0], [10.0], 0.8) == pytest.approx(2.0)
    assert coverage(y, np.full(4, 25.0)) == 0.5
    assert coverage(y, y) == 1.0


def test_trained_model_is_memoised_per_scenario_content(scn):
    a = trained_model(scn, weeks=2, seed=7)
    assert trained_model(scn, weeks=2, seed=7) is a
    assert trained_model(load_scenario(BASELINE), weeks=2, seed=7) is a  # equal content
    changed = scn.model_copy(update={"seed": scn.seed + 1})
    assert scenario_key(changed) != scenario_key(scn)
    assert a.n_train_ > 0 and isinstance(a, QuantileDurationModel)
    with pytest.raises(ValueError, match="experiment seed"):
        trained_model(scn, weeks=2, seed=scn.seed)
