"""The OR status board: ortwin/board.py against hand-computed values on a tiny day and on one day of
the bundled case log, and the app's board page driven by Streamlit's AppTest on the recorded demo
feed (tiles for every room, the stale room marked, alerts, a board time that moves the forecast,
drill-down tables with rows, the recorded feed replayed when following)."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ortwin import board, board_charts
from ortwin.nowcast import NowcastConfig, NowcastEngine
from twin.dayplan import read_plan
from twin.feed import read_feed
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SCN = ROOT / "scenarios" / "baseline.yaml"
DEMO_PLAN = ROOT / "scenarios" / "live" / "baseline_tuesday.plan.csv"
DEMO_FEED = ROOT / "scenarios" / "live" / "baseline_tuesday.feed.jsonl"
REPS = 30
TIMEOUT = 180

# --- a tiny day, by hand ------------------------------------------------------------------------
# OR1: g1 planned 07:30, in 07:32 (2 min late: on time), out 08:50; g2 planned 09:00, in 09:20
#      (turnover 30 min), still in the room at 10:00.
# OR10: o1 planned 07:30, in 07:45 (15 min late), out 08:30; o2 planned 08:30, in 08:40
#      (turnover 10 min), out 09:40, then turnover.
PLAN = """case_id,service,surgeon,procedure,patient_class,date,room,start,booked_minutes
g1,general,dr_lindqvist,inguinal_hernia_repair,outpatient,2026-11-24,OR1,07:30,75.0
g2,general,dr_lindqvist,lap_cholecystectomy,inpatient,2026-11-24,OR1,09:00,75.0
o1,ortho,dr_oduya,carpal_tunnel_release,outpatient,2026-11-24,OR10,07:30,45.0
o2,ortho,dr_oduya,knee_arthroscopy,outpatient,2026-11-24,OR10,08:30,75.0
"""
MARKS = [("07:32", "OR1", "in_room", "g1"), ("07:45", "OR10", "in_room", "o1"),
         ("08:30", "OR10", "out_of_room", "o1"), ("08:40", "OR10", "in_room", "o2"),
         ("08:50", "OR1", "out_of_room", "g1"), ("09:20", "OR1", "in_room", "g2"),
         ("09:40", "OR10", "out_of_room", "o2")]
TUESDAY = 1440.0  # the plan's midnight (day 1 of the scenario)


def _m(hhmm: str) -> float:
    return TUESDAY + int(hhmm[:2]) * 60 + int(hhmm[3:])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny day's plan, feed and engine."""
    d = tmp_path_factory.mktemp("tiny")
    (d / "tiny.plan.csv").write_text(PLAN)
    lines = [json.dumps({"v": 2, "time": f"2026-11-24T{t}:00Z", "room": room, "kind": "milestone",
                         "value": value, "case_id": cid, "source": "ehr"})
             for t, room, value, cid in MARKS]
    (d / "tiny.feed.jsonl").write_text("\n".join(lines) + "\n{not json\n")
    scn = load_scenario(SCN)
    plan = read_plan(d / "tiny.plan.csv", scn)
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=20))
    return eng, read_feed(d / "tiny.feed.jsonl")


def _live(tiny, at: str):
    eng, feed = tiny
    return board.live_at(eng.plan, [r.id for r in eng.scn.rooms], feed, _m(at))


def _windows(at_or1=("07:30", "17:30"), at_or10=("07:30", "19:30")) -> pd.DataFrame:
    return board.day_windows({"OR1": (_m(at_or1[0]), _m(at_or1[1])),
                              "OR10": (_m(at_or10[0]), _m(at_or10[1]))}, dt.date(2026, 11, 24))


def test_day_cases_are_the_feeds_milestones(tiny):
    cases = board.day_cases(_live(tiny, "10:00")).set_index("case_id")
    assert list(cases.columns) == list(board.CASE_COLUMNS[1:])
    assert cases.loc["g1", "in_room"] == pytest.approx(_m("07:32"))
    assert cases.loc["g2", "in_room"] == pytest.approx(_m("09:20"))
    assert math.isnan(cases.loc["g2", "out_of_room"])
    early = board.day_cases(_live(tiny, "08:00")).set_index("case_id")
    assert math.isnan(early.loc["o1", "out_of_room"]) and math.isnan(early.loc["o2", "in_room"])


def test_live_at_counts_unreadable_lines(tiny):
    live = _live(tiny, "10:00")
    assert live.counts() == {"applied": 7, "unreadable": 1}
    assert live.quarantine[0]["category"] == "unreadable"


def test_turnovers_by_hand(tiny):
    tv = board.turnovers(board.day_cases(_live(tiny, "10:00")))
    got = {(r.case_before, r.case_after): r.minutes for r in tv.itertuples()}
    assert got == {("g1", "g2"): pytest.approx(30.0), ("o1", "o2"): pytest.approx(10.0)}
    assert tv.set_index("case_before").loc["g1", "procedure"] == "inguinal_hernia_repair"
    # before g2 is in, OR1 has no turnover yet; a gap above the limit is idle time
    assert len(board.turnovers(board.day_cases(_live(tiny, "09:00")))) == 1
    assert len(board.turnovers(board.day_cases(_live(tiny, "10:00")), max_minutes=20)) == 1


def test_first_case_on_time_share_by_hand(tiny):
    cases = board.day_cases(_live(tiny, "10:00"))
    fc = board.first_cases(cases, _m("10:00")).set_index("room")
    assert fc.loc["OR1", "case_id"] == "g1" and fc.loc["OR1", "late"] == pytest.approx(2.0)
    assert fc.loc["OR1", "status"] == "on time" and fc.loc["OR1", "on_time"] == 1.0
    assert fc.loc["OR10", "late"] == pytest.approx(15.0) and fc.loc["OR10", "on_time"] == 0.0
    # at 07:33 o1 is not yet due (07:30 + 5 min grace): left out; at 07:40 it is late, not in yet
    early = board.first_cases(board.day_cases(_live(tiny, "07:33")), _m("07:33"))
    assert list(early.set_index("room")["status"].loc[["OR1", "OR10"]]) == ["on time",
                                                                           "not due yet"]
    assert math.isnan(early.set_index("room").loc["OR10", "on_time"])
    late = board.first_cases(board.day_cases(_live(tiny, "07:40")), _m("07:40")).set_index("room")
    assert late.loc["OR10", "status"] == "late (not in yet)"
    assert late.loc["OR10", "late"] == pytest.approx(10.0) and late.loc["OR10", "on_time"] == 0.0
    # exactly at the grace is on time
    edge = cases.assign(in_room=cases["in_room"].where(cases["case_id"] != "o1", _m("07:35")))
    assert board.first_cases(edge, _m("10:00")).set_index("room").loc["OR10", "on_time"] == 1.0


def test_utilisation_by_hand(tiny):
    cases = board.day_cases(_live(tiny, "10:00"))
    used = board.in_room_minutes(cases, _windows(), _m("10:00"))
    # g1 78, g2 40 (still in at 10:00), o1 45, o2 60
    assert dict(zip(cases["case_id"], used, strict=True)) == pytest.approx(
        {"g1": 78.0, "g2": 40.0, "o1": 45.0, "o2": 60.0})
    assert list(board.staffed_minutes(_windows(), _m("10:00"))) == [150.0, 150.0]
    # a room opening at 07:40 and closing at 09:00 clips OR1's g1 to 07:40-08:50 and g2 to 0
    clipped = board.in_room_minutes(cases, _windows(at_or1=("07:40", "09:00")), _m("10:00"))
    assert list(clipped[:2]) == pytest.approx([70.0, 0.0])
    t = board.drilldown(cases, _windows(), "room", _m("10:00")).set_index("group")
    assert t.loc["OR1", "in_room_min"] == pytest.approx(118.0)
    assert t.loc["OR1", "utilisation"] == pytest.approx(118 / 150)
    assert t.loc["OR10", "utilisation"] == pytest.approx(105 / 150)


def test_drilldown_by_surgeon_service_and_procedure(tiny):
    cases = board.day_cases(_live(tiny, "10:00"))
    s = board.drilldown(cases, _windows(), "surgeon", _m("10:00")).set_index("group")
    assert s.loc["dr_lindqvist", ["cases", "turnovers", "first_cases", "on_time"]].tolist() == \
        [2, 1, 1, 1]
    assert s.loc["dr_lindqvist", "turnover_median"] == pytest.approx(30.0)
    assert s.loc["dr_lindqvist", "on_time_share"] == 1.0
    assert s.loc["dr_oduya", "on_time_share"] == 0.0
    assert s.loc["dr_oduya", "utilisation"] == pytest.approx(105 / 150)
    p = board.drilldown(cases, _windows(), "procedure", _m("10:00")).set_index("group")
    assert p.loc["inguinal_hernia_repair", "turnover_median"] == pytest.approx(30.0)
    assert p.loc["carpal_tunnel_release", "turnover_median"] == pytest.approx(10.0)
    assert p.loc["knee_arthroscopy", "turnovers"] == 0
    assert math.isnan(p.loc["knee_arthroscopy", "turnover_median"])
    svc = board.drilldown(cases, _windows(), "service", _m("10:00"))
    assert set(svc["group"]) == {"general", "ortho"} and svc["cases"].sum() == 4
    with pytest.raises(ValueError, match="by: expected one of"):
        board.drilldown(cases, _windows(), "ward")


def test_suite_so_far_by_hand(tiny):
    eng, _ = tiny
    s = board.suite_so_far(_live(tiny, "10:00"), eng.windows, _m("10:00"), eng.scn)
    assert (s.first_cases_due, s.first_cases_on_time, s.on_time_share) == (2, 1, 0.5)
    assert s.in_room_min == pytest.approx(223.0)
    open_rooms = len(eng.windows)  # every room staffed on Tuesday counts, used or not
    assert s.staffed_min == pytest.approx(150.0 * open_rooms)
    assert s.utilisation == pytest.approx(223.0 / (150.0 * open_rooms))
    assert (s.turnovers, s.turnover_median) == (2, pytest.approx(20.0))
    # no PACU milestones in this feed: the patients out of the room are in PACU
    assert (s.pacu_now, s.pacu_beds) == (3, eng.scn.pacu.open_beds("tue"))


def test_tiles_by_hand(tiny):
    eng, _ = tiny
    live, at = _live(tiny, "10:00"), _m("10:00")
    nc = eng.forecast(live, at)
    tiles = {t.room: t for t in board.room_tiles(nc, 29.0)}
    assert list(tiles) == list(nc.rooms["room"])
    or1, or10 = tiles["OR1"], tiles["OR10"]
    assert or1.state == "patient_in_room" and or1.minutes_in_state == pytest.approx(40.0)
    assert or1.lines[0] == "**Patient in room** 40 min"
    assert or1.lines[1] == "g2 · lap cholecystectomy · dr_lindqvist"
    assert or1.lines[2].startswith("in room 40 min, ~") and "(P10–P90 " in or1.lines[2]
    assert "no more cases" in or1.lines and or1.lines[-1].endswith("staffed to 17:30")
    assert or10.state == "turnover" and or10.turnover_minutes == pytest.approx(20.0)
    assert or10.lines[0] == f"{board.TIMER} **Turnover 20 min** (typical 29)"
    for t in tiles.values():
        assert t.risk == board.risk_level(t.p_past) and not t.stale
        assert t.header.startswith(f"**{t.room}** :{t.colour}-badge[")


def test_risk_levels_and_clock_helpers():
    assert [board.risk_level(p) for p in (0.0, 0.19, 0.2, 0.49, 0.5, 1.0)] == \
        ["green", "green", "amber", "amber", "red", "red"]
    assert board.RISK_COLOURS[board.risk_level(0.3)] == "orange"
    opts = board.clock_options("07:00", "08:00", 15)
    assert opts == ["07:00", "07:15", "07:30", "07:45", "08:00"]
    assert board.snap_clock(7 * 60 + 20, opts) == "07:15"
    assert board.snap_clock(1440 + 300, opts) == "08:00"
    assert board.clock_text(_m("13:05")) == "13:05" and board.clock_text(math.nan) == "-"
    # the replay moves 10 min per 5 s refresh and stops at the feed's end
    assert board.replay_minute(660, 0.0, 5, 10) == 660
    assert board.replay_minute(660, 4.9, 5, 10) == 660
    assert board.replay_minute(660, 5.0, 5, 10) == 670
    assert board.replay_minute(660, 31.0, 5, 10) == 720
    assert board.replay_minute(660, 3600, 5, 10, end=900) == 900


def test_history_drilldown_of_one_day_by_hand():
    """2022-01-03, OR1: 07:05-09:17, 09:48-11:12, 11:50-12:58, 13:29-15:02; booked from 07:00,
    the last booked 12:45 for 120 min, so staffed 07:00-15:00 (calibration's inference)."""
    from calibration.loader import load_history

    h = load_history(ROOT / "calibration/data/or_case_log_2022_jan_feb.csv",
                     ROOT / "calibration/mappings/or_case_log_2022.yaml")
    day = dt.date(2022, 1, 3)
    cases, windows = board.history_cases(h.cases, day, day)
    assert set(cases["day"]) == {day}
    w = windows.set_index("room").loc["OR1"]
    assert (w["open"], w["close"]) == (7 * 60.0, 15 * 60.0)
    tv = board.turnovers(cases)
    assert list(tv.loc[tv["room"] == "OR1", "minutes"]) == pytest.approx([31.0, 38.0, 31.0])
    t = board.drilldown(cases, windows, "room").set_index("group")
    or1 = t.loc["OR1"]
    assert or1["cases"] == 4 and or1["turnovers"] == 3
    assert or1["turnover_median"] == pytest.approx(31.0)
    assert or1["turnover_mean"] == pytest.approx(100 / 3)
    assert (or1["first_cases"], or1["on_time"]) == (1, 1)  # 5 min late: within the grace
    assert or1["in_room_min"] == pytest.approx(132 + 84 + 68 + 91)  # the last clipped at 15:00
    assert or1["utilisation"] == pytest.approx(375 / 480)
    by_surgeon = board.drilldown(cases, windows, "surgeon")
    assert list(by_surgeon["group"]) == [board.UNRECORDED]  # the log names no surgeons
    assert by_surgeon["cases"].iloc[0] == len(cases)
    week, _ = board.history_cases(h.cases, day, day + dt.timedelta(days=4))
    assert set(week["day"]) == {day + dt.timedelta(days=i) for i in range(5)}


def test_drill_chart_draws_labelled_benchmark_rules():
    t = pd.DataFrame({"group": ["OR1", "OR2"], "cases": [3, 2], "turnover_median": [25.0, 40.0],
                      "on_time_share": [1.0, 0.5], "utilisation": [0.8, 0.6]})
    spec = json.dumps(board_charts.drill_chart(t, "room", "turnover_median").to_dict())
    assert "Mazzei 1994" in spec and "2022 log median 29 min" in spec
    spec = json.dumps(board_charts.drill_chart(t, "room", "on_time_share").to_dict())
    assert "PMC11703430: 66% before" in spec and "72% after" in spec
    assert "rule" not in json.dumps(board_charts.drill_chart(t, "room", "utilisation").to_dict())


# --- the page -----------------------------------------------------------------------------------
def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}")


def _headers(at: AppTest) -> dict[str, str]:
    """Each tile's header markdown by room."""
    return {m.value[2:].split("**")[0]: m.value for m in at.markdown
            if m.value.startswith("**OR")}


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def page():
    """The board page on the recorded demo day, at its default time (11:00), 30 replications."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["b_reps"] = REPS
    at.run()
    at.sidebar.radio(key="page").set_value("OR status board").run()
    return _ok(at)


def test_board_shows_a_tile_for_every_room_of_the_plan(page):
    rooms = set(read_plan(DEMO_PLAN, load_scenario(SCN)).cases["room"])
    headers = _headers(page)
    assert rooms <= set(headers), sorted(rooms - set(headers))
    assert [s.value for s in page.subheader][0] == "Tuesday 24 November 2026, 11:00"
    assert any(m.value.startswith(f"{board.TIMER} **Turnover") for m in page.markdown)  # timer
    shown = _frame(page, "room", "finish P50", "P(past staffed end)")
    assert set(shown["room"]) >= rooms


def test_stale_room_is_marked_and_alerts_are_shown(page):
    headers = _headers(page)
    assert "stale feed" in headers["OR3"]
    assert [r for r, h in headers.items() if "stale feed" in h] == ["OR3"]
    assert any(m.value.startswith(":violet[**Stale feed**: no live observation since 10:55")
               for m in page.markdown)
    alerts = [w.value for w in page.warning]
    assert any(a.startswith("OR3: no live observation since 10:55") for a in alerts), alerts
    assert any("will run past 17:30" in a for a in alerts)
    assert any(a.startswith("Feed: 4 observation(s) quarantined") for a in alerts)
    assert len(_frame(page, "category", "reason")) == 4  # the quarantine table


def test_board_numbers_are_the_nowcast_of_the_api(page):
    scn = load_scenario(SCN)
    plan = read_plan(DEMO_PLAN, scn)
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=REPS))
    feed = read_feed(DEMO_FEED)
    at = plan.midnight + 11 * 60
    nc = eng.forecast(board.live_at(plan, [r.id for r in eng.scn.rooms], feed, at), at, "rules")
    shown = _frame(page, "room", "finish P50", "P(past staffed end)")
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), board.rooms_table(nc),
                                  check_dtype=False)
    proposals = _frame(page, "room", "proposal")
    assert list(proposals["proposal"]) == list(nc.proposals["words"])


def test_changing_the_board_time_changes_the_forecast(page):
    before = _frame(page, "room", "finish P50", "P(past staffed end)").copy()
    page.select_slider(key="b_time").set_value("13:00").run()
    _ok(page)
    after = _frame(page, "room", "finish P50", "P(past staffed end)")
    assert [s.value for s in page.subheader][0] == "Tuesday 24 November 2026, 13:00"
    assert not before.equals(after)
    assert (before["case"] != after["case"]).any()  # rooms moved on to their next cases
    assert "stale feed" in _headers(page)["OR3"]  # still stale later in the day
    page.select_slider(key="b_time").set_value("11:00").run()
    _ok(page)


def test_drilldown_tables_have_rows_for_the_day_and_a_history_period(page):
    day = _frame(page, "room", "cases", "utilisation", "turnover_median", "on_time_share")
    assert len(day) == 10 and day["cases"].sum() > 0
    assert len(_frame(page, "case_before", "case_after", "minutes")) > 0
    assert len(_frame(page, "planned_start", "late", "status")) == 10
    _ok(page.radio(key="b_by").set_value("surgeon").run())
    assert len(_frame(page, "surgeon", "cases", "utilisation")) > 0
    page.radio(key="b_period").set_value("History: the bundled 2022 case log").run()
    _ok(page)
    hist = _frame(page, "surgeon", "cases", "utilisation")
    assert list(hist["surgeon"]) == [board.UNRECORDED] and hist["cases"].iloc[0] > 1000
    page.radio(key="b_by").set_value("room").run()
    page.date_input(key="b_h_dates").set_value((dt.date(2022, 2, 1), dt.date(2022, 2, 28))).run()
    rooms = _frame(_ok(page), "room", "cases", "utilisation", "turnover_median")
    # the log's 8 rooms, and OR3's parallel stream of 11 February (two patients charted at once)
    assert set(rooms["room"]) == {f"OR{i}" for i in range(1, 9)} | {"OR3~2"}
    assert rooms["turnovers"].sum() > 100
    assert ((rooms["utilisation"] > 0) & (rooms["utilisation"] <= 1)).all()
    page.radio(key="b_period").set_value("The board's day so far").run()
    _ok(page)


def test_following_the_recorded_feed_replays_the_day():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["b_reps"] = REPS
    at.run()
    at.sidebar.radio(key="page").set_value("OR status board").run()
    at.number_input(key="b_every").set_value(3).run()
    at.number_input(key="b_step").set_value(15).run()
    at.toggle(key="b_follow").set_value(True).run()
    _ok(at)
    assert [s.value for s in at.subheader][0].endswith("11:00")
    assert any("replaying the recorded feed from 11:00" in c.value for c in at.caption)
    time.sleep(6.5)
    at.run()  # what the fragment's timer does in a browser
    _ok(at)
    shown = [s.value for s in at.subheader][0]
    assert shown.endswith(("11:30", "11:45")), shown  # two (or three) refreshes of 15 min
    at.toggle(key="b_follow").set_value(False).run()  # stopping keeps the replay's time
    _ok(at)
    assert at.select_slider(key="b_time").value in ("11:30", "11:45", "12:00")
    at.toggle(key="b_latest").set_value(True).run()  # the latest observation: end of the day
    _ok(at)
    assert [s.value for s in at.subheader][0].endswith("04:54 +1d")
