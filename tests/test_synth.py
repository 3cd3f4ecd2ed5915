"""Synthetic case history (calibration.synth): schema, determinism, drift, mess and writing."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from calibration import schema
from calibration.synth import (
    DEFAULT_SCENARIO,
    MESS_KINDS,
    Drift,
    Mess,
    inject_mess,
    synth_history,
    truth_path,
    write_synth,
)
from ortwin.runner import run_replication
from twin.events import CANCEL_REASONS
from twin.scenario import load_scenario

SEED = 5
WEEKS = 8
FMT = schema.TIMESTAMP_FORMAT


@pytest.fixture(scope="module")
def scn():
    return load_scenario(DEFAULT_SCENARIO)


@pytest.fixture(scope="module")
def clean():
    return synth_history(WEEKS, SEED, mess=None)


@pytest.fixture(scope="module")
def messy():
    return synth_history(WEEKS, SEED)


@pytest.fixture(scope="module")
def drifted():
    return synth_history(16, 3, drift=Drift(week=8), mess=None)


@pytest.fixture(scope="module")
def undrifted():
    return synth_history(16, 3, drift=None, mess=None)


def _ts(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col.replace("", None), format=FMT)


def _in_room_minutes(frame: pd.DataFrame) -> pd.Series:
    done = frame[frame["cancelled"] == "false"].set_index("case_id")
    return (_ts(done["out_of_room"]) - _ts(done["in_room"])).dt.total_seconds() / 60


def test_columns_are_the_canonical_schema_and_all_strings(clean, messy):
    for hist in (clean, messy):
        assert tuple(hist.frame.columns) == schema.COLUMNS
        assert len(hist.frame) > 1000
        assert all(isinstance(v, str) for v in hist.frame.to_numpy().ravel())


def test_deterministic(messy):
    again = synth_history(WEEKS, SEED)
    pd.testing.assert_frame_equal(again.frame, messy.frame)
    pd.testing.assert_frame_equal(again.damaged, messy.damaged)
    assert json.dumps(again.truth) == json.dumps(messy.truth)


def test_clean_rows_are_valid(clean):
    f = clean.frame
    assert f["case_id"].is_unique
    assert clean.damaged.empty
    for c in schema.REQUIRED:
        assert (f[c] != "").all(), c
    assert set(f["is_addon"]) == {"true", "false"}
    assert set(f["cancelled"]) == {"true", "false"}
    assert set(f["priority"]) <= set(schema.PRIORITIES)
    assert set(f["patient_class"]) <= set(schema.PATIENT_CLASSES)
    assert pd.to_numeric(f["booked_minutes"]).gt(0).all()
    pd.to_datetime(f["date"], format=schema.DATE_FORMAT)  # every date parses
    for c in schema.TIMESTAMPS:  # every recorded timestamp parses
        _ts(f[c])
    addon = f["is_addon"] == "true"
    assert (f.loc[addon, "requested_at"] != "").all()
    assert (f.loc[~addon, "requested_at"] == "").all()
    assert (f.loc[~addon, "booked_start"] != "").all()


def test_milestones_in_order_on_completed_rows(clean):
    f = clean.frame
    done = f[f["cancelled"] == "false"]
    assert (done[list(schema.CORE_MILESTONES)] != "").all().all()
    assert (done["room"] != "").all()
    assert ((done["pacu_in"] == "") == (done["pacu_out"] == "")).all()
    t = np.column_stack([_ts(done[c]).to_numpy(dtype="datetime64[m]").astype("int64")
                         for c in schema.MILESTONES])
    recorded = done["pacu_in"] != ""
    assert (np.diff(t[:, :4], axis=1) >= 0).all()
    assert (np.diff(t[recorded.to_numpy()], axis=1) >= 0).all()
    in_room_day = _ts(done["in_room"]).dt.normalize()
    offset = (in_room_day - pd.to_datetime(done["date"])).dt.days
    assert offset.between(0, schema.MAX_DAY_OFFSET).all()


def test_cancelled_rows_have_no_milestones(clean):
    f = clean.frame
    can = f[f["cancelled"] == "true"]
    assert len(can) > 0
    assert (can[list(schema.MILESTONES)] == "").all().all()
    assert set(can["cancel_reason"]) <= set(CANCEL_REASONS)
    assert (f.loc[f["cancelled"] == "false", "cancel_reason"] == "").all()


def test_rows_are_the_completed_and_cancelled_cases(scn):
    hist = synth_history(1, 9, drift=None, mess=None)
    ev = run_replication(scn, "as-booked", 9, 0, keep_events=True).events
    term = ev[ev["event"].isin(["pacu_out", "cancelled", "not_started"])]
    want = term.loc[term["event"] != "not_started", "case_id"]
    assert sorted(hist.frame["case_id"]) == sorted("w000-" + want)
    assert (term["event"] == "not_started").any()  # some were left out


def test_week_dates_and_start_must_be_a_monday():
    hist = synth_history(2, 1, start=date(2024, 1, 1), drift=None, mess=None)
    days = pd.to_datetime(hist.frame["date"])
    assert days.min() >= pd.Timestamp("2024-01-01")
    assert days.max() <= pd.Timestamp("2024-01-14")
    assert hist.frame["case_id"].str.startswith("w001-").any()
    with pytest.raises(ValueError, match="Monday"):
        synth_history(1, 1, start=date(2023, 1, 3))
    with pytest.raises(ValueError, match="weeks"):
        synth_history(0, 1)
    with pytest.raises(ValueError, match="surgeon"):
        synth_history(1, 1, drift=Drift(surgeon="dr_nobody"))


def test_truth_is_json_and_matches_the_scenario(messy, scn):
    truth = json.loads(json.dumps(messy.truth))
    assert truth["seed"] == SEED and truth["weeks"] == WEEKS
    assert truth["start"] == "2023-01-02" and truth["scenario"] == scn.name
    assert set(truth["surgeons"]) == {s.id for s in scn.surgeons}
    assert truth["surgeons"]["dr_patel"] == {"service": "ortho", "speed": 0.9}
    assert truth["procedures"]["cabg"]["median"] == pytest.approx(270)
    assert truth["procedures"]["cabg"]["sigma"] == pytest.approx(0.22)
    assert truth["surgeon_procedure_median"]["dr_patel|knee_arthroscopy"] == pytest.approx(
        73 * 0.9)
    assert truth["drift"]["week"] == WEEKS // 2
    assert truth["drift"]["date"] == (date(2023, 1, 2) + timedelta(weeks=WEEKS // 2)).isoformat()
    assert truth["drift"]["factor"] == 0.75
    assert truth["addons"]["per_day"] == scn.addons.per_day
    assert truth["cancellation_rate"]["ortho"] == pytest.approx(0.07)
    for key in ("first_case_delay", "turnover", "pacu_los", "phases", "booking"):
        assert truth[key]
    assert truth["mess"] == {k: getattr(Mess(), k) for k in MESS_KINDS}
    assert len(truth["damaged"]) == len(messy.damaged)


def test_drift_changes_only_the_surgeon_from_its_week(drifted, undrifted):
    a, b = _in_room_minutes(drifted.frame), _in_room_minutes(undrifted.frame)
    both = a.index.intersection(b.index)
    week = both.str[1:4].astype(int)
    surgeon = drifted.frame.set_index("case_id").loc[both, "surgeon"]
    ratio = a[both] / b[both]
    pd.testing.assert_frame_equal(  # identical before the drift week
        drifted.frame[drifted.frame["case_id"] < "w008"],
        undrifted.frame[undrifted.frame["case_id"] < "w008"])
    after = (week >= 8) & (surgeon == "dr_patel").to_numpy()
    assert after.sum() > 30
    assert ratio[after].median() == pytest.approx(0.75, abs=0.02)  # same patients, 25% faster
    others = (week >= 8) & (surgeon != "dr_patel").to_numpy()
    assert ratio[others].median() == pytest.approx(1.0, abs=0.01)


def test_drift_surgeon_median_drops_by_about_the_factor(drifted):
    f = drifted.frame[drifted.frame["cancelled"] == "false"].set_index("case_id")
    minutes = _in_room_minutes(drifted.frame)
    med = (f["surgeon"] + "|" + f["procedure"]).map(drifted.truth["surgeon_procedure_median"])
    rel = np.log(minutes / med)  # in-room minutes relative to the surgeon-procedure median
    after = f.index.str[1:4].astype(int) >= 8

    def change(surgeon: str) -> float:
        mine = (f["surgeon"] == surgeon).to_numpy()
        return float(np.exp(rel[mine & after].median() - rel[mine & ~after].median()))

    assert 0.6 < change("dr_patel") < 0.9
    assert 0.85 < change("dr_novak") < 1.25  # same service, no drift


def test_mess_keeps_the_clean_part(clean, messy):
    f, dmg = messy.frame, messy.damaged
    assert list(dmg.columns) == ["case_id", "kind", "column"]
    assert set(dmg["kind"]) == set(MESS_KINDS)
    assert dmg["case_id"].is_unique  # one defect per damaged case
    n = len(clean.frame)
    counts = dmg["kind"].value_counts()
    for kind in MESS_KINDS:
        assert counts[kind] == round(getattr(Mess(), kind) * n), kind
    dups = dmg.loc[dmg["kind"].str.endswith("duplicate"), "case_id"]
    assert len(f) == n + len(dups)
    intact = ~f["case_id"].isin(dmg["case_id"])
    want = clean.frame[~clean.frame["case_id"].isin(dmg["case_id"])]
    pd.testing.assert_frame_equal(f[intact].reset_index(drop=True), want.reset_index(drop=True))


def _check_defects(clean: pd.DataFrame, frame: pd.DataFrame, damaged: pd.DataFrame) -> None:
    orig = clean.set_index("case_id")
    rows = {cid: g for cid, g in frame.groupby("case_id", sort=False)}
    for cid, kind, column in damaged.itertuples(index=False):
        got, want = rows[cid], orig.loc[cid]
        if kind == "exact_duplicate":
            assert len(got) == 2
            assert (got.iloc[0] == got.iloc[1]).all()
            assert (got.iloc[0].drop("case_id") == want).all()
            continue
        if kind == "conflicting_duplicate":
            assert len(got) == 2
            assert got["room"].nunique() == 2 and want["room"] in set(got["room"])
            assert (got.drop(columns=["case_id", "room"]).nunique() == 1).all()
            continue
        assert len(got) == 1
        row = got.iloc[0]
        changed = set(row.index[(row.drop("case_id") != want).reindex(row.index, fill_value=False)])
        if kind == "missing_timestamp":
            assert column in schema.CORE_MILESTONES and row[column] == "" and want[column] != ""
            assert changed == {column}
        elif kind == "out_of_order":
            assert row["procedure_start"] > row["procedure_end"]
            assert (row["procedure_start"], row["procedure_end"]) == (
                want["procedure_end"], want["procedure_start"])
        elif kind == "impossible":
            span = (datetime.strptime(row["out_of_room"], FMT)
                    - datetime.strptime(row["in_room"], FMT))
            assert span == timedelta(hours=30) and changed == {"out_of_room"}
        elif kind == "unparseable":
            assert column in schema.MILESTONES and changed == {column}
            with pytest.raises(ValueError):
                datetime.strptime(row[column], FMT)
            assert pd.isna(pd.to_datetime(row[column], format=FMT, errors="coerce"))
        else:  # pragma: no cover
            raise AssertionError(kind)


def test_damaged_matches_the_frame(clean, messy):
    _check_defects(clean.frame, messy.frame, messy.damaged)


def test_heavy_mess_matches_its_shares(clean, scn):
    mess = Mess(**{k: 0.04 for k in MESS_KINDS})
    rooms = [r.id for r in scn.rooms]
    frame, damaged = inject_mess(clean.frame, mess, 1, rooms)
    n = len(clean.frame)
    assert (damaged["kind"].value_counts() == round(0.04 * n)).all()
    assert len(frame) == n + 2 * round(0.04 * n)
    _check_defects(clean.frame, frame, damaged)
    again, _ = inject_mess(clean.frame, mess, 1, rooms)
    pd.testing.assert_frame_equal(frame, again)
    other, _ = inject_mess(clean.frame, mess, 2, rooms)
    assert not frame.equals(other)


def test_mess_rejects_bad_shares():
    with pytest.raises(ValueError):
        Mess(missing_timestamp=1.5)
    with pytest.raises(ValueError):
        Mess(**{k: 0.3 for k in MESS_KINDS})


def test_write_csv_and_parquet(messy, tmp_path):
    csv, side = write_synth(messy, tmp_path / "hist.csv")
    assert side == truth_path(csv) == tmp_path / "hist.truth.json"
    back = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert tuple(back.columns) == schema.COLUMNS
    pd.testing.assert_frame_equal(back.astype(object), messy.frame.astype(object))
    assert json.loads(side.read_text()) == json.loads(json.dumps(messy.truth))
    pq, pside = write_synth(messy, tmp_path / "sub" / "hist.parquet")
    assert pside.name == "hist.truth.json" and pside.parent == pq.parent
    back = pd.read_parquet(pq)
    pd.testing.assert_frame_equal(back.astype(object), messy.frame.astype(object))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hist.csv", "hist.truth.json", "sub"]
