"""Loading case logs: mappings, validation, quarantine with reasons, and one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.loader import load_frame, load_history
from calibration.mapping import load_mapping
from calibration.overlaps import logged_room
from calibration.schema import COLUMNS, CORE_MILESTONES, MILESTONES, HistoryError
from calibration.synth import MESS_KINDS, Mess, synth_history
from ortwin.cli import main

GOOD = {
    "case_id": "c1", "date": "2023-01-02", "room": "OR1", "surgeon": "dr_a", "service": "general",
    "procedure": "hernia", "procedure_name": "", "patient_class": "outpatient",
    "priority": "elective", "is_addon": "false", "requested_at": "",
    "booked_start": "2023-01-02 07:30", "booked_minutes": "60", "in_room": "2023-01-02 07:35",
    "procedure_start": "2023-01-02 07:55", "procedure_end": "2023-01-02 08:30",
    "out_of_room": "2023-01-02 08:40", "pacu_in": "2023-01-02 08:45",
    "pacu_out": "2023-01-02 10:30", "cancelled": "false", "cancel_reason": "",
}


def _frame(*changes: dict) -> pd.DataFrame:
    rows = []
    for i, ch in enumerate(changes):
        rows.append({**GOOD, "case_id": f"c{i + 1}", **ch})
    return pd.DataFrame(rows, columns=list(COLUMNS))


BAD_ROWS = {
    "missing service": {"service": ""},
    "missing in_room": {"in_room": ""},
    "unparseable out_of_room": {"out_of_room": "n/a"},
    "unparseable date": {"date": "2023-02-30"},
    "out of order": {"procedure_start": "2023-01-02 08:35"},
    "out of order: pacu_in": {"pacu_in": "2023-01-02 08:00"},
    "impossible: in-room": {"out_of_room": "2023-01-03 14:00", "pacu_in": "2023-01-03 14:05",
                            "pacu_out": "2023-01-03 15:00"},
    "impossible: in_room on": {"date": "2022-12-20"},
    "impossible booked_minutes": {"booked_minutes": "-5"},
    "bad patient_class": {"patient_class": "vip"},
    "unparseable is_addon": {"is_addon": "maybe"},
    "missing pacu_out": {"pacu_out": ""},
    "impossible: cancelled case has in_room": {"cancelled": "true"},
}


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
def test_each_kind_of_bad_row_is_quarantined_with_its_reason(reason):
    frame = _frame({}, BAD_ROWS[reason], {})
    h = load_frame(frame)
    assert list(h.cases["case_id"]) == ["c1", "c3"]  # the good rows still load
    q = h.quarantine
    assert list(q["row"]) == [3] and list(q["case_id"]) == ["c2"]
    assert reason in q["reasons"].iat[0]
    assert q["raw_case_id"].iat[0] == "c2"  # the raw row is kept for the reader


def test_duplicates_exact_keep_first_conflicting_quarantine_all():
    frame = _frame({}, {}, {})
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)  # exact copy of row 3
    frame.loc[len(frame)] = {**frame.iloc[2].to_dict(), "room": "OR9"}  # conflicts with c3
    h = load_frame(frame)
    assert list(h.cases["case_id"]) == ["c1", "c2"]
    reasons = dict(zip(h.quarantine["row"], h.quarantine["reasons"], strict=True))
    assert reasons[5] == "duplicate of row 3"
    assert "conflicting duplicate case_id (rows 4, 6)" in reasons[4]
    assert "conflicting duplicate case_id (rows 4, 6)" in reasons[6]
    assert h.reason_counts() == {"conflicting duplicate case_id": 2, "duplicate": 1}


def test_cancelled_rows_need_no_milestones():
    h = load_frame(_frame({**{m: "" for m in MILESTONES}, "cancelled": "true",
                           "cancel_reason": "patient", "room": ""}))
    assert len(h.cases) == 1 and h.quarantine.empty


def test_every_injected_defect_of_a_synthetic_history_is_caught():
    sh = synth_history(6, 3, mess=Mess(0.02, 0.01, 0.01, 0.01, 0.01, 0.01), drift=None)
    h = load_frame(sh.frame)
    dmg = sh.damaged
    assert set(dmg["kind"]) == set(MESS_KINDS)
    quarantined = set(h.quarantine["case_id"])
    for kind in ("missing_timestamp", "out_of_order", "impossible", "unparseable",
                 "conflicting_duplicate"):
        ids = set(dmg.loc[dmg["kind"] == kind, "case_id"])
        assert ids and ids <= quarantined, kind
    # an exact duplicate keeps one copy loaded and quarantines the other
    for cid in dmg.loc[dmg["kind"] == "exact_duplicate", "case_id"]:
        assert (h.cases["case_id"] == cid).sum() == 1
        assert (h.quarantine["case_id"] == cid).sum() == 1
    assert len(h.cases) + len(h.quarantine) == len(sh.frame)  # nothing silently dropped
    clean = synth_history(6, 3, mess=None, drift=None)
    assert len(load_frame(clean.frame).quarantine) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(CORE_MILESTONES), st.integers(-300, 300)),
                min_size=0, max_size=4))
def test_loaded_rows_always_have_ordered_milestones(shifts):
    """Whatever a row's milestones are moved by, it either loads with ordered milestones or is
    quarantined; never both, never neither."""
    row = dict(GOOD)
    for col, minutes in shifts:
        t = pd.Timestamp(row[col]) + pd.Timedelta(minutes=minutes)
        row[col] = t.strftime("%Y-%m-%d %H:%M")
    h = load_frame(pd.DataFrame([row], columns=list(COLUMNS)))
    assert len(h.cases) + len(h.quarantine) == 1
    if len(h.cases):
        times = [h.cases[c].iat[0] for c in MILESTONES]
        assert all(a <= b for a, b in zip(times, times[1:], strict=False))


def test_mapping_turns_the_shared_log_into_the_schema(kaggle):
    assert kaggle.rows_read == 1357 and len(kaggle.cases) == 1357
    c = kaggle.cases
    rooms = {f"OR{i}" for i in range(1, 9)}
    assert set(c["room"].map(logged_room)) == rooms
    # 11 February charts two patients in OR3 at once: the second stream runs as OR3~2
    assert set(c["room"]) - rooms == {"OR3~2"} and len(kaggle.flags) == 4
    assert c["procedure"].str.startswith("cpt").all()
    assert c["service"].nunique() == 10 and "ortho" in set(c["service"])
    assert (c["in_room"] <= c["out_of_room"]).all()
    assert "surgeon" not in kaggle.recorded and "pacu_in" not in kaggle.recorded
    first = c.iloc[0]
    assert first["in_room"] == pd.Timestamp("2022-01-03 07:05")


def test_time_zone_conversion(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "timezone: UTC\nlocal_timezone: America/New_York\n")
    m = load_mapping(tmp_path / "m.yaml")
    frame = _frame({"booked_start": "2023-01-02 12:30", "in_room": "2023-01-02 12:35",
                    "procedure_start": "2023-01-02 12:55", "procedure_end": "2023-01-02 13:30",
                    "out_of_room": "2023-01-02 13:40", "pacu_in": "2023-01-02 13:45",
                    "pacu_out": "2023-01-02 15:30"})
    h = load_frame(frame, m)
    assert h.cases["in_room"].iat[0] == pd.Timestamp("2023-01-02 07:35")  # EST = UTC-5


@pytest.mark.parametrize("content, expect", [
    ("columns:\n  case_id: Nope\n", "columns.case_id: column 'Nope' not in or_case_log"),
    ("columns:\n  wheels: X\n", "columns: unknown canonical column 'wheels'"),
    ("timezone: Mars/Olympus\n", "timezone: unknown time zone"),
    ("colums: {}\n", "colums: unknown field"),
    ("- a list\n", "expected a YAML mapping"),
])
def test_bad_mapping_is_one_line_exit_2(tmp_path, capsys, content, expect):
    from conftest import KAGGLE_LOG

    m = tmp_path / "m.yaml"
    m.write_text(content)
    assert main(["history-check", str(KAGGLE_LOG), "--mapping", str(m), "-o",
                 str(tmp_path / "q.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err and str(m) in err
    assert not (tmp_path / "q.csv").exists()


@pytest.mark.parametrize("setup, expect", [
    (lambda p: None, "file not found"),
    (lambda p: p.mkdir(), "expected a file"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00bad"), "cannot read as CSV"),
    (lambda p: p.write_text("a,b\n1,2\n"), "case_id: required column is missing"),
])
def test_unreadable_history_is_one_line_exit_2(tmp_path, capsys, setup, expect):
    path = tmp_path / "log.csv"
    setup(path)
    assert main(["history-check", str(path), "-o", str(tmp_path / "q.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err
    with pytest.raises(HistoryError):
        load_history(path)


def test_history_check_writes_the_quarantine(tmp_path, capsys):
    sh = synth_history(3, 2, drift=None)
    path = tmp_path / "h.csv"
    sh.frame.to_csv(path, index=False)
    out = tmp_path / "q.csv"
    assert main(["history-check", str(path), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "quarantined" in text
    q = pd.read_csv(out)
    assert len(q) == len(load_history(path).quarantine) > 0
    assert {"row", "case_id", "reasons"} <= set(q.columns)
