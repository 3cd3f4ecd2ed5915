"""Repeated days: signatures ignore ids and dates, groups, distinct and unseen days, near copies;
checked on synthetic days and on the real Q1 2022 log (22 of 23 March weekdays copy January)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.loader import load_frame, load_history
from calibration.repeats import (
    day_signature,
    describe_repeats,
    distinct_count,
    near_repeats,
    repeat_groups,
    unseen_days,
)

Q1 = Path("/work/shared/data/or_case_log_2022_q1.csv")
MAPPING = Path(__file__).resolve().parents[1] / "calibration" / "mappings" / "or_case_log_2022.yaml"


def _day(d: str, cases: list[tuple[str, str, str, int]], first_id: int) -> list[dict]:
    """Rows of one day: (room, procedure, wheels-in HH:MM, minutes in room) per case."""
    rows = []
    for k, (room, proc, t, mins) in enumerate(cases):
        start = pd.Timestamp(f"{d} {t}")
        rows.append({
            "case_id": f"c{first_id + k}", "date": d, "room": room, "service": "general",
            "procedure": proc, "booked_minutes": str(mins), "booked_start": str(start),
            "in_room": str(start), "procedure_start": str(start + pd.Timedelta(minutes=10)),
            "procedure_end": str(start + pd.Timedelta(minutes=mins - 10)),
            "out_of_room": str(start + pd.Timedelta(minutes=mins))})
    return rows


A = [("OR1", "p1", "07:30", 60), ("OR1", "p2", "09:00", 90), ("OR2", "p1", "08:00", 45)]
B = [("OR1", "p1", "07:30", 60), ("OR2", "p3", "08:00", 120)]
A_CHANGED = [("OR1", "p1", "07:30", 60), ("OR1", "p2", "09:05", 90), ("OR2", "p1", "08:00", 45)]


def _history(days: list[tuple[str, list]]):
    rows, n = [], 1
    for d, cases in days:
        rows += _day(d, cases, n)
        n += len(cases)
    return load_frame(pd.DataFrame(rows).astype(str))


@pytest.fixture(scope="module")
def synthetic():
    return _history([("2023-01-02", A), ("2023-01-03", B), ("2023-01-04", A),
                     ("2023-01-05", A_CHANGED), ("2023-01-06", B), ("2023-01-09", A)])


def test_signature_ignores_ids_dates_and_row_order(synthetic):
    c = synthetic.cases
    one = c.loc[c["date"] == "2023-01-02"]
    copy = c.loc[c["date"] == "2023-01-04"].iloc[::-1]
    assert set(one["case_id"]).isdisjoint(copy["case_id"])
    assert day_signature(one) == day_signature(copy)
    assert day_signature(one) != day_signature(c.loc[c["date"] == "2023-01-05"])
    assert day_signature(one) != day_signature(c.loc[c["date"] == "2023-01-03"])


def test_groups_distinct_and_unseen(synthetic):
    d = [date(2023, 1, k) for k in (2, 3, 4, 5, 6, 9)]
    assert repeat_groups(synthetic) == [[d[0], d[2], d[5]], [d[1], d[4]]]
    assert describe_repeats(synthetic) == ["2023-01-02 = 2023-01-04 = 2023-01-09",
                                           "2023-01-03 = 2023-01-06"]
    assert distinct_count(synthetic, d) == 3
    # fitted on the 2nd only: the 3rd (B) is new, the 4th copies the 2nd, the 5th is new
    # (one case changed), the 6th copies the 3rd (an earlier scored day), the 9th copies the 2nd
    assert unseen_days(synthetic, d[1:], fitted_until=d[1]) == [d[1], d[3]]
    assert unseen_days(synthetic, d[1:], fitted_until=d[1], strict=True) == [d[1]]
    near = {r.day: (r.of, r.changed) for r in near_repeats(synthetic, d[1:], d[1])}
    assert near[d[3]] == (d[0], 1) and near[d[2]] == (d[0], 0) and d[1] not in near


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["OR1", "OR2", "OR3"]), st.sampled_from(["p1", "p2"]),
                          st.sampled_from(["07:00", "08:15", "10:40", "13:05"]),
                          st.integers(20, 200)), min_size=1, max_size=6, unique=True),
       st.randoms(use_true_random=False))
def test_a_shuffled_copy_on_another_date_has_the_same_signature(cases, rnd):
    shuffled = list(cases)
    rnd.shuffle(shuffled)
    h = _history([("2023-03-06", cases), ("2023-05-17", shuffled)])
    days = h.cases.groupby("date")
    sigs = {day_signature(g) for _, g in days}
    assert len(sigs) == 1
    assert unseen_days(h, [date(2023, 5, 17)], fitted_until=date(2023, 3, 7)) == []
    assert unseen_days(h, [date(2023, 5, 17)], fitted_until=date(2023, 3, 6)) == [date(2023, 5, 17)]


@pytest.mark.skipif(not Q1.exists(), reason="shared Q1 2022 log not present")
def test_q1_log_march_repeats_january():
    h = load_history(Q1, MAPPING)
    march = sorted({d.date() for d in h.cases["date"] if d.month == 3})
    assert len(march) == 23
    groups = repeat_groups(h)
    jan_copies = [d for d in march for g in groups
                  if d in g and any(x.month == 1 for x in g)]
    assert len(jan_copies) == 22
    assert distinct_count(h, march) == 5
    # only 7 March is new to a twin fitted on Jan-Feb, and it is 11 February with one case changed
    assert unseen_days(h, march, fitted_until=date(2022, 3, 1)) == [date(2022, 3, 7)]
    assert unseen_days(h, march, fitted_until=date(2022, 3, 1), strict=True) == []
    near = [r for r in near_repeats(h, march, date(2022, 3, 1)) if r.changed]
    assert [(r.day, r.of, r.changed) for r in near] == [(date(2022, 3, 7), date(2022, 2, 11), 1)]
    assert "2022-01-10 = 2022-02-16 = 2022-02-17 = 2022-02-23 = 2022-03-01" in describe_repeats(h)[2]


@pytest.mark.skipif(not Q1.exists(), reason="shared Q1 2022 log not present")
def test_history_check_reports_overlaps_repeats_and_distinct_days(tmp_path, capsys):
    from ortwin.cli import main

    out = tmp_path / "q1_quarantine.csv"
    assert main(["history-check", str(Q1), "--mapping", str(MAPPING), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 rooms" in text  # OR3~2 is a stream of OR3, not a ninth room
    assert "overlapping cases: 8 in 2 room-days" in text
    assert "2022-03-07 OR3: case 11513 -> OR3~2 (overlaps 11510 by 18 min)" in text
    assert "days: 62 dates, 23 distinct; 39 repeat an earlier date exactly (9 groups)" in text
    assert "2022-03 23 dates (5 distinct, 1 not seen before the month)" in text
    assert "exact repeat: 2022-01-12 = 2022-02-04 = 2022-03-18 = 2022-03-25 = 2022-03-30" in text
    assert "2022-03-07 ~ 2022-02-11" in text  # the near copy (one case changed)
    assert "0.000" not in text
    flags = pd.read_csv(tmp_path / "q1_quarantine_flags.csv", dtype=str)
    assert len(flags) == 8 and set(flags["stream"]) == {"OR3", "OR3~2"}
    assert flags["reasons"].str.contains("overlaps case").all()
