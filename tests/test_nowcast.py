"""The live now-cast: residual life of work in progress, common random numbers, directional
checks, staffed hours, stale rooms rolled forward by the plan, and the ``ortwin nowcast`` /
``ortwin feed`` commands."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factory import small_mapping
from helpers_scn import BASELINE, ROOT, one_line, run_cli
from test_snapshot import lognormal_residual_mean

from ortwin.live import LiveConfig, LiveState, live_state
from ortwin.nowcast import Nowcast, NowcastConfig, NowcastEngine, base_snapshot, roll_forward
from ortwin.nowcast_cli import nowcast_json
from twin.dayplan import DayPlan, plan_from_frame, read_plan
from twin.feed import Observation, read_feed
from twin.restart import case_duration
from twin.scenario import Scenario, from_mapping, load_scenario

DATE = dt.date(2026, 11, 24)  # a Tuesday: scenario day 1
LIVE_DIR = ROOT / "scenarios" / "live"
DEMO_PLAN = LIVE_DIR / "baseline_tuesday.plan.csv"
DEMO_FEED = LIVE_DIR / "baseline_tuesday.feed.jsonl"
STATUSES = {"done", "in_room", "waiting", "cancelled"}


# --- small scenarios, plans and feeds --------------------------------------------------------
def suite(rooms: int = 1, median: float = 80, sigma: float = 0.5, ample: bool = True,
          booking_c: float = 0.0) -> Scenario:
    """``rooms`` rooms, one lognormal procedure per service (service i in room i), and, when
    ``ample``, nothing shared that could make rooms wait for each other. ``booking_c``: how much
    a booking says about the true duration (0: nothing, so durations are the plain
    distribution)."""
    m = small_mapping(rooms=rooms, services=rooms, pacu_beds=60 if ample else 2, ward=500,
                      icu=100, occupancy=0.0, trays=20, staff=10 if ample else 2,
                      night_staff=10 if ample else 1, days=2, addons_per_day=0, cancel=0.0)
    m["pacu"]["after_hours_beds"] = m["pacu"]["beds"]
    m["booking"] = {**m.get("booking", {}), "estimate_correlation": booking_c}
    for svc in m["services"]:
        svc["procedures"] = [{"id": "p", "duration": {"kind": "lognormal", "median": median,
                                                      "sigma": sigma},
                              "patient_class": {"outpatient": 1.0}}]
    return from_mapping(m, "<suite>")


def make_plan(scn: Scenario, rows: list[tuple[str, str, str, float]]) -> DayPlan:
    """Rows ``(case, room, start, booked minutes)``; room Ri is service si's, surgeon drsi0."""
    df = pd.DataFrame([{"case_id": c, "service": f"s{room[1:]}", "surgeon": f"drs{room[1:]}0",
                        "procedure": "p", "patient_class": "outpatient", "date": DATE.isoformat(),
                        "room": room, "start": start, "booked_minutes": str(minutes)}
                       for c, room, start, minutes in rows])
    return plan_from_frame(df, scn, "<plan>")


def when(clock: str) -> dt.datetime:
    h, m = map(int, clock.split(":"))
    return dt.datetime(DATE.year, DATE.month, DATE.day, h, m, tzinfo=dt.UTC)


def ms(clock: str, value: str, case: str, room: str = "R0") -> Observation:
    return Observation(time=when(clock), room=room, kind="milestone", value=value, case_id=case,
                       source="ehr")


def beats(start: str, end: str, room: str = "R0") -> list[Observation]:
    """Camera heartbeats every 5 minutes from ``start`` to ``end`` inclusive."""
    t, stop, out = when(start), when(end), []
    while t <= stop:
        out.append(Observation(time=t, room=room, kind="source_status", value="live",
                               source="camera"))
        t += dt.timedelta(minutes=5)
    return out


def live_of(plan: DayPlan, scn: Scenario, obs: list[Observation],
            config: LiveConfig | None = None) -> LiveState:
    obs = sorted(obs, key=lambda o: o.time)
    live = live_state(plan, [r.id for r in scn.rooms], obs, config=config)
    assert all(q["category"] == "unreadable" for q in live.quarantine), live.quarantine
    return live


def at_(plan: DayPlan, clock: str) -> float:
    return plan.minute(when(clock))


def forecast(scn, plan, obs, clock, reps=100, seed=11, config=None) -> Nowcast:
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=reps, seed=seed))
    return eng.forecast(live_of(plan, scn, obs, config), at_(plan, clock))


def room(nc: Nowcast, rid: str) -> pd.Series:
    return nc.rooms.set_index("room").loc[rid]


# --- residual life --------------------------------------------------------------------------
def test_the_booking_narrows_the_remaining_time_to_what_it_implies():
    """With a booking model that carries information (c = 0.5), a case booked for 60 minutes
    has its duration drawn inside the range that booking implies, and its remaining time at
    elapsed e is the mean of D - e over that range above e (numerical integration)."""
    from scipy import integrate

    from twin.booked_duration import booked_duration
    from twin.restart import case_duration

    scn = suite(booking_c=0.5)
    plan = make_plan(scn, [("c1", "R0", "07:30", 60)])
    feed = [ms("07:30", "in_room", "c1"), ms("07:40", "procedure_start", "c1")]
    e = 20.0
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=400, seed=3))
    given = booked_duration(eng.scn, eng.cases["c1"])
    assert given.window is not None  # a noise-free booking model pins the duration to a range
    d = case_duration(eng.scn, eng.cases["c1"])
    lo, hi = (float(d.ppf(v)) for v in given.window)
    assert 0 < lo < 60 < hi < 120  # booked 60 (rounded to 15): a real but bounded range
    nc = eng.forecast(live_of(plan, scn, feed), at_(plan, "07:50"))
    r = nc.samples["R0"] - nc.at
    a = max(lo, e)
    mass = float(d.cdf(hi) - d.cdf(a))
    expected = (a - e) + integrate.quad(lambda x: float(d.cdf(hi) - d.cdf(x)), a, hi)[0] / mass
    half = 3 * r.std(ddof=1) / math.sqrt(len(r))
    assert abs(r.mean() - expected) < half, (r.mean(), expected, half)
    assert r.max() <= hi - e + 1e-6 and r.min() >= 0
    # without what the booking says, the same elapsed time leaves a much wider spread
    wide = NowcastEngine(suite(booking_c=0.0), plan, NowcastConfig(reps=400, seed=3)).forecast(
        live_of(plan, scn, feed), at_(plan, "07:50"))
    assert np.std(wide.samples["R0"]) > 2 * np.std(nc.samples["R0"])


def test_case_in_progress_gets_its_residual_life():
    """In at T, forecast at T+e: the mean remaining time is E[D − e | D > e], never a fresh
    full duration."""
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "07:30", 80)])
    e = 70.0
    nc = forecast(scn, plan, [ms("07:30", "in_room", "c1"), ms("07:40", "procedure_start", "c1")],
                  "08:40", reps=400)
    assert nc.at - at_(plan, "07:30") == e
    r = nc.samples["R0"] - nc.at
    assert len(r) == 400 and not np.isnan(r).any()
    dist = scn.services[0].procedures[0].duration
    mu, s = dist.mu_sigma
    expected = lognormal_residual_mean(mu, s, e)
    half = 3 * r.std(ddof=1) / math.sqrt(len(r))
    assert abs(r.mean() - expected) < half, (r.mean(), expected, half)
    assert r.mean() < dist.mean - 25  # 46.6 against an unconditional 90.7
    assert (r >= 0).all()
    assert r.min() < float(dist.ppf(0.1))  # some finish soon: never a fresh full duration
    row = room(nc, "R0")
    assert row["case_id"] == "c1" and row["elapsed"] == e
    assert row["remaining_p50"] == pytest.approx(np.quantile(r, 0.5))


# --- common random numbers ------------------------------------------------------------------
TWO_ROOMS = [("a1", "R0", "07:30", 90), ("a2", "R0", "09:30", 90),
             ("b1", "R1", "07:30", 120), ("b2", "R1", "10:00", 90)]
TWO_FEED = [ms("07:35", "in_room", "a1"), ms("07:32", "in_room", "b1", "R1"),
            ms("07:45", "procedure_start", "a1")]


def _frames_equal(a: Nowcast, b: Nowcast) -> None:
    pd.testing.assert_frame_equal(a.rooms, b.rooms)
    pd.testing.assert_frame_equal(a.cases, b.cases)
    pd.testing.assert_frame_equal(a.pacu, b.pacu)
    assert a.alerts == b.alerts


def _json(nc: Nowcast) -> str:
    d = nowcast_json(nc)
    assert isinstance(d.pop("seconds"), float)  # wall time: the one thing allowed to differ
    return json.dumps(d, sort_keys=True)


def test_same_seed_same_frames_and_json_other_seed_differs():
    scn = suite(rooms=2)
    plan = make_plan(scn, TWO_ROOMS)
    live = live_of(plan, scn, TWO_FEED)
    at = at_(plan, "08:30")
    a = NowcastEngine(scn, plan, NowcastConfig(reps=40, seed=3)).forecast(live, at)
    b = NowcastEngine(scn, plan, NowcastConfig(reps=40, seed=3)).forecast(live, at)
    _frames_equal(a, b)
    for k in a.samples:
        np.testing.assert_array_equal(a.samples[k], b.samples[k])
    assert _json(a) == _json(b)
    c = NowcastEngine(scn, plan, NowcastConfig(reps=40, seed=4)).forecast(live, at)
    assert _json(a) != _json(c)  # the seed matters
    # the same engine asked again gives the same answer (nothing consumed between forecasts)
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=40, seed=3))
    _frames_equal(eng.forecast(live, at), eng.forecast(live, at))


def test_news_from_one_room_leaves_an_independent_room_unchanged():
    scn = suite(rooms=2)  # PACU, staff, trays and beds ample: the rooms do not interact
    plan = make_plan(scn, TWO_ROOMS)
    at = "08:30"
    before = forecast(scn, plan, TWO_FEED, at, reps=60)
    after = forecast(scn, plan, [*TWO_FEED, ms("08:20", "out_of_room", "b1", "R1")], at, reps=60)
    np.testing.assert_array_equal(before.samples["R0"], after.samples["R0"])
    pd.testing.assert_series_equal(room(before, "R0"), room(after, "R0"))
    def room_a(nc: Nowcast) -> list[dict]:  # as JSON: None and NaN are both null there
        return json.loads(nc.cases.loc[nc.cases["room"] == "R0"].to_json(orient="records"))

    assert room_a(before) == room_a(after) and len(room_a(before)) == 2
    # ... while room B's own forecast did move
    assert not np.array_equal(before.samples["R1"], after.samples["R1"])
    assert room(after, "R1")["cases_done"] == 1 and room(before, "R1")["case_id"] == "b1"


# --- directional ----------------------------------------------------------------------------
def test_a_case_running_further_over_its_booking_pushes_the_room_later():
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "07:30", 80), ("c2", "R0", "09:00", 80)])
    feed = [ms("07:30", "in_room", "c1"), ms("07:40", "procedure_start", "c1")]
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=150, seed=5))
    live = live_of(plan, scn, feed)
    p50 = []
    for clock in ("09:00", "10:00", "11:00"):  # 10, 70 and 130 minutes over the booked 80
        nc = eng.forecast(live, at_(plan, clock))
        p50.append(room(nc, "R0")["finish_p50"])
        assert room(nc, "R0")["finish_p10"] >= nc.at
    assert p50[1] > p50[0] + 30 and p50[2] > p50[1] + 30, p50


def test_a_stale_room_has_a_band_at_least_as_wide_as_when_fresh():
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "07:30", 80), ("c2", "R0", "09:00", 80),
                           ("c3", "R0", "10:40", 80)])
    feed = [ms("07:30", "in_room", "c1"), ms("07:40", "procedure_start", "c1")]
    cfg = LiveConfig(stale_after_min=20)
    fresh_feed = feed + beats("07:00", "10:00")
    stale_feed = feed + beats("07:00", "07:45")
    at = "10:00"
    fresh_live, stale_live = live_of(plan, scn, fresh_feed, cfg), live_of(plan, scn, stale_feed, cfg)
    assert not fresh_live.stale("R0", at_(plan, at)) and stale_live.stale("R0", at_(plan, at))
    fresh = forecast(scn, plan, fresh_feed, at, reps=150, config=cfg)
    stale = forecast(scn, plan, stale_feed, at, reps=150, config=cfg)
    f, s = room(fresh, "R0"), room(stale, "R0")
    assert bool(s["stale"]) and not bool(f["stale"])
    assert s["finish_p90"] - s["finish_p10"] >= f["finish_p90"] - f["finish_p10"]
    # the stale room fell back to the plan: c1 may have left unseen; the fresh one knows it is in
    c1 = {name: nc.cases.set_index("case_id").loc["c1"] for name, nc in (("f", fresh),
                                                                         ("s", stale))}
    assert c1["s"]["finish_p10"] < stale.at <= c1["f"]["finish_p10"]
    assert any("R0" in a and "stale" in a for a in stale.alerts)
    assert not any("stale" in a for a in fresh.alerts)


# --- staffed hours ---------------------------------------------------------------------------
def test_long_day_runs_past_close_and_says_so():
    scn = suite(median=110, sigma=0.3)
    plan = make_plan(scn, [("c1", "R0", "07:30", 120), ("c2", "R0", "09:30", 120),
                           ("c3", "R0", "11:30", 120), ("c4", "R0", "13:30", 120)])
    nc = forecast(scn, plan, [ms("07:30", "in_room", "c1"), ms("07:45", "procedure_start", "c1")],
                  "11:00", reps=60)
    r = room(nc, "R0")
    assert r["close"] == at_(plan, "15:30") and r["booked_end"] == at_(plan, "15:30")
    assert r["p_past_close"] > 0.9 and r["overtime_mean"] > 60
    [alert] = [a for a in nc.alerts if "run past" in a]
    assert alert.startswith("R0 will run past 15:30") and "3 cases still to come" in alert


def test_nearly_done_early_room_does_not_run_past_close():
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "07:30", 80)])
    nc = forecast(scn, plan, [ms("07:30", "in_room", "c1"), ms("07:40", "procedure_start", "c1"),
                              ms("08:40", "procedure_end", "c1")], "08:45", reps=60)
    r = room(nc, "R0")
    assert r["p_past_close"] < 0.1 and r["overtime_mean"] == 0
    assert r["finish_p90"] < at_(plan, "12:00")
    assert not any("run past" in a for a in nc.alerts)


def test_after_procedure_end_the_rest_is_the_emergence_phase_residual():
    """Once the EHR says the procedure ended, what is left is the post phase's residual given
    the minutes since it ended, not the whole case's residual."""
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "07:30", 80)])
    feed = [ms("07:30", "in_room", "c1"), ms("07:40", "procedure_start", "c1")]
    running = forecast(scn, plan, feed, "08:45", reps=400)
    ended = forecast(scn, plan, [*feed, ms("08:40", "procedure_end", "c1")], "08:45", reps=400)
    r = ended.samples["R0"] - ended.at
    mu, s = scn.phases.post.mu_sigma
    expected = lognormal_residual_mean(mu, s, 5.0)
    half = 3 * r.std(ddof=1) / math.sqrt(len(r))
    assert abs(r.mean() - expected) < half, (r.mean(), expected, half)
    run_r = running.samples["R0"] - running.at
    assert np.median(r) < np.median(run_r) and np.quantile(r, 0.9) < np.quantile(run_r, 0.9)
    assert room(ended, "R0")["state"] == "patient_in_room"


def test_a_turnover_under_way_gets_the_residual_of_its_services_turnover():
    """Out at 08:50, forecast at 09:00: the room is ready after E[T − 10 | T > 10] of the
    leaving case's service's turnover T (the next case, constant 30 min, is already due)."""
    m = small_mapping(rooms=1, services=1, pacu_beds=60, ward=500, icu=100, occupancy=0.0,
                      trays=20, staff=10, night_staff=10, days=2, addons_per_day=0, cancel=0.0)
    m["pacu"]["after_hours_beds"] = 60
    m["services"][0]["procedures"] = [{"id": "p", "duration": {"kind": "constant", "value": 30},
                                       "patient_class": {"outpatient": 1.0}}]
    m["services"][0]["turnover"] = {"kind": "lognormal", "median": 60, "sigma": 0.3}
    scn = from_mapping(m, "<turnover>")
    plan = make_plan(scn, [("c1", "R0", "07:30", 80), ("c2", "R0", "08:00", 80)])
    nc = forecast(scn, plan, [ms("07:30", "in_room", "c1"), ms("08:50", "out_of_room", "c1")],
                  "09:00", reps=800, seed=4)
    assert room(nc, "R0")["state"] == "turnover"
    r = nc.samples["R0"] - nc.at - 30.0  # the rest of the turnover, then c2's 30 minutes
    turnover = scn.services[0].turnover
    expected = lognormal_residual_mean(*turnover.mu_sigma, 10.0)
    half = 3 * r.std(ddof=1) / math.sqrt(len(r))
    assert abs(r.mean() - expected) < half, (r.mean(), expected, half)
    suite_mu, suite_s = scn.turnover.mu_sigma  # the suite's default turnover is far shorter
    assert r.mean() > lognormal_residual_mean(suite_mu, suite_s, 10.0) + 15


def test_a_room_booked_past_its_hours_is_staffed_as_booked():
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "13:30", 80), ("c2", "R0", "15:00", 90)])
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=20, seed=1))
    assert any("R0" in n and "16:30" in n for n in eng.notes), eng.notes
    nc = eng.forecast(live_of(plan, scn, []), at_(plan, "12:00"))
    assert room(nc, "R0")["close"] == at_(plan, "16:30")


# --- stale rooms roll forward by the plan -----------------------------------------------------
def test_roll_forward_lets_the_case_finish_then_follows_the_plan():
    scn = suite()
    plan = make_plan(scn, [("c1", "R0", "07:30", 80), ("c2", "R0", "09:00", 80),
                           ("c3", "R0", "10:40", 80)])
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=60, seed=9))
    live = live_of(plan, scn, [ms("07:30", "in_room", "c1"), *beats("07:00", "07:45")],
                   LiveConfig(stale_after_min=20))
    seen = live.rooms["R0"].last_seen
    assert seen == at_(plan, "07:45")
    dist = case_duration(eng.scn, eng.cases["c1"])
    kinds = set()
    for clock in ("07:50", "10:30", "12:00"):
        at = at_(plan, clock)
        assert live.stale("R0", at) == (clock != "07:50")
        [snap] = base_snapshot(live, at).rooms
        assert (snap.state, snap.case_id, snap.elapsed) == ("in_case", "c1", at - at_(plan, "07:30"))
        for truths in eng.truths:
            rs, fin = roll_forward(live, "R0", at, truths, eng.scn, eng.cases, snap)
            end = seen + float(dist.residual(truths["c1"].u_duration, seen - at_(plan, "07:30")))
            if end >= at:  # still in: left as last seen
                assert rs == snap and fin == {}
                kinds.add("still in")
                continue
            assert fin["c1"] == pytest.approx(end)
            assert list(fin) == [c for c in ("c1", "c2", "c3") if c in fin]  # in plan order
            assert all(t < at for t in fin.values())
            assert (rs.state, rs.case_id) != ("in_case", "c1")
            last = list(fin)[-1]
            if rs.state == "in_case":
                kinds.add("next case")
                assert rs.case_id in ("c2", "c3") and rs.case_id not in fin
                start = at - rs.elapsed
                assert start >= eng.cases[rs.case_id].booked_start - 1e-9
                assert start >= fin[last] + truths[last].turnover - 1e-9
                assert rs.elapsed < truths[rs.case_id].duration
            elif rs.state == "turnover":
                kinds.add("turnover")
                assert rs.case_id == last
                assert rs.elapsed == pytest.approx(at - fin[last])
                assert rs.elapsed < truths[last].turnover
            else:
                kinds.add(rs.state)
                assert rs.state == "idle"
    assert {"still in", "next case", "turnover"} <= kinds, kinds


# --- the commands -----------------------------------------------------------------------------
def _nowcast_args(json_out: Path | None, *extra: str, plan: Path = DEMO_PLAN,
                  feed: Path = DEMO_FEED) -> list[str]:
    args = ["nowcast", "--scenario", str(BASELINE), "--plan", str(plan), "--events", str(feed),
            "--reps", "20", "--policy", "none", *extra]
    return args + (["--json", str(json_out)] if json_out is not None else [])


def test_cli_nowcast_table_alerts_and_json(tmp_path, capsys):
    out = tmp_path / "nc.json"
    assert run_cli(_nowcast_args(out, "--at", "11:00")) == 0
    text, err = capsys.readouterr()
    assert err == ""
    lines = text.splitlines()
    assert lines[0].startswith("now-cast 2026-11-24 11:00: 20 replications")
    assert lines[1].split()[:3] == ["room", "state", "case"]
    rooms = [r.id for r in load_scenario(BASELINE).rooms]
    table = [ln.split()[0] for ln in lines[2:2 + len(rooms)]]
    assert table == rooms
    assert "alerts:" in lines
    alerts = [ln for ln in lines[lines.index("alerts:") + 1:] if ln.startswith("  - ")]
    assert alerts and any(a.startswith("  - Feed: ") and "quarantined" in a for a in alerts)
    d = json.loads(out.read_text())
    assert {"rooms", "cases", "pacu", "alerts"} <= set(d)
    assert [r["room"] for r in d["rooms"]] == rooms
    assert len(d["cases"]) == len(read_plan(DEMO_PLAN, load_scenario(BASELINE)).cases)
    assert d["at"] == "11:00" and d["reps"] == 20 and d["alerts"] == [a[4:] for a in alerts]


@pytest.mark.parametrize("what", ["missing_feed", "directory_feed", "binary_feed", "bad_at",
                                  "bad_plan_row", "bad_reps"])
def test_cli_nowcast_bad_inputs_exit_2_in_one_line(tmp_path, capsys, what):
    out = tmp_path / "nc.json"
    feed, plan, extra = DEMO_FEED, DEMO_PLAN, ["--at", "11:00"]
    if what == "missing_feed":
        feed = tmp_path / "nope.jsonl"
        words = [str(feed), "file not found"]
    elif what == "directory_feed":
        feed = tmp_path / "adir"
        feed.mkdir()
        words = [str(feed), "cannot read"]
    elif what == "binary_feed":
        feed = tmp_path / "bin.jsonl"
        feed.write_bytes(b"\xff\xfe\x00\x01\x89PNG\r\n\x1a\n" * 10)
        words = [str(feed), "cannot read"]
    elif what == "bad_at":
        extra, words = ["--at", "noon"], ["--at", "HH:MM", "'noon'"]
    elif what == "bad_reps":
        extra, words = ["--at", "11:00", "--reps", "0"], ["--reps"]
    else:
        rows = DEMO_PLAN.read_text().splitlines()
        bad = rows[2].split(",")
        bad[2] = "dr_nobody"
        plan = tmp_path / "plan.csv"
        plan.write_text("\n".join([rows[0], rows[1], ",".join(bad), *rows[3:]]) + "\n")
        words = [str(plan), "row 3", "surgeon", "dr_nobody"]
    assert run_cli(_nowcast_args(out, *extra, plan=plan, feed=feed)) == 2
    stdout, err = capsys.readouterr()
    line = one_line(err)
    for w in words:
        assert w in line, (w, line)
    assert stdout == "" and not out.exists()


def test_cli_nowcast_reports_unreadable_lines_and_goes_on(tmp_path, capsys):
    lines = DEMO_FEED.read_text().splitlines()
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join([lines[0], "{not json", *lines[1:50], '{"v": 9}', *lines[50:]])
                    + "\n")
    out = tmp_path / "nc.json"
    assert run_cli(_nowcast_args(out, "--at", "11:00", feed=feed)) == 0
    text, err = capsys.readouterr()
    assert err == ""
    d = json.loads(out.read_text())
    assert d["feed"]["unreadable"] == 2
    bad_total = sum(v for k, v in d["feed"].items() if k not in ("applied", "resolved",
                                                                 "heartbeat"))
    assert f"{bad_total} quarantined" in text.splitlines()[0]
    bad = [q for q in d["quarantine"] if q["category"] == "unreadable"]
    assert sorted(q["index"] for q in bad) == [2, 52]  # file line numbers
    assert any("unreadable" in a for a in d["alerts"])
    base = json.loads(json.dumps({k: v for k, v in d["feed"].items() if k != "unreadable"}))
    clean = tmp_path / "clean.json"
    assert run_cli(_nowcast_args(clean, "--at", "11:00")) == 0
    capsys.readouterr()
    assert json.loads(clean.read_text())["feed"] == base  # the other lines applied as before


def follow_args(feed, out, idle: str) -> list[str]:
    """``ortwin nowcast --follow`` on the demo plan, polling fast, stopping when idle."""
    return ["nowcast", "--scenario", str(BASELINE), "--plan", str(DEMO_PLAN), "--events",
            str(feed), "--reps", "5", "--policy", "none", "--json", str(out), "--follow",
            "--idle-exit", idle, "--interval", "0.2"]


def test_cli_nowcast_follow_reforecasts_as_lines_arrive(tmp_path, capsys):
    lines = DEMO_FEED.read_text().splitlines()
    cut = next(i for i, ln in enumerate(lines) if '"2026-11-24T10:00' in ln)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines[:cut]) + "\n")
    out = tmp_path / "nc.json"
    chunks = [lines[cut:cut + 40], lines[cut + 40:cut + 80]]
    errors: list[BaseException] = []

    def append() -> None:
        try:
            deadline = time.monotonic() + 60
            while not out.exists():  # the first forecast is written: following has begun
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
            for chunk in chunks:
                with feed.open("a", encoding="utf-8") as f:
                    f.write("\n".join(chunk) + "\n")
                time.sleep(0.5)
        except BaseException as e:  # reported by the test below
            errors.append(e)

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    args = follow_args(feed, out, idle="1")
    assert run_cli(args) == 0
    writer.join(10)
    assert not errors
    text = capsys.readouterr().out
    headers = [ln for ln in text.splitlines() if ln.startswith("now-cast 2026-11-24 ")]
    assert len(headers) >= 2, text[:500]
    clocks = [h.split()[2].rstrip(":") for h in headers]
    assert clocks[-1] > clocks[0]  # the latest observation moved on
    assert json.loads(out.read_text())["at"] == clocks[-1]


def test_cli_nowcast_follow_waits_for_a_complete_line(tmp_path, capsys):
    """A line caught half-written by a poll is read once it is complete, not quarantined."""
    lines = DEMO_FEED.read_text().splitlines()
    cut = next(i for i, ln in enumerate(lines) if '"2026-11-24T10:00' in ln)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines[:cut]) + "\n")
    out = tmp_path / "nc.json"
    line = lines[cut]

    def append() -> None:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with feed.open("a", encoding="utf-8") as f:
            f.write(line[:40])
        time.sleep(0.7)  # several polls see the half line
        with feed.open("a", encoding="utf-8") as f:
            f.write(line[40:] + "\n")

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    args = follow_args(feed, out, idle="1.5")
    assert run_cli(args) == 0
    writer.join(10)
    capsys.readouterr()
    d = json.loads(out.read_text())
    assert "unreadable" not in d["feed"], d["feed"]
    assert d["at"] == "10:00"


def test_cli_feed_simulate_writes_a_plan_and_a_clean_feed(tmp_path, capsys):
    p, f = tmp_path / "p.csv", tmp_path / "f.jsonl"
    assert run_cli(["feed", "simulate", "--scenario", str(BASELINE), "--day", "1", "--rep", "0",
                    "--plan-out", str(p), "--feed-out", str(f)]) == 0
    assert "plan of 2026-11-24" in capsys.readouterr().out
    scn = load_scenario(BASELINE)
    plan = read_plan(p, scn)
    feed = read_feed(f)
    assert len(plan.cases) > 0 and feed.observations and feed.quarantine == []
    live = live_state(plan, [r.id for r in plan.scenario(scn).rooms], feed.observations)
    assert live.quarantine == [], live.quarantine[:3]  # a perfect feed applies cleanly


@pytest.mark.parametrize("plan_path", sorted(LIVE_DIR.glob("*.plan.csv")), ids=lambda p: p.name)
def test_every_recorded_pair_runs(plan_path):
    feed_path = plan_path.with_name(plan_path.name.replace(".plan.csv", ".feed.jsonl"))
    assert feed_path.exists()
    scn_path = ROOT / "scenarios" / f"{plan_path.name.split('_')[0]}.yaml"
    scn = load_scenario(scn_path if scn_path.exists() else BASELINE)
    plan = read_plan(plan_path, scn)
    feed = read_feed(feed_path)
    assert feed.quarantine == []
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=10))
    live = live_state(plan, [r.id for r in eng.scn.rooms], feed.observations)
    nc = eng.forecast(live, live.latest)
    assert len(nc.cases) == len(plan.cases) and nc.reps == 10


# --- accounting ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> tuple[NowcastEngine, LiveState, Nowcast]:
    scn = load_scenario(BASELINE)
    plan = read_plan(DEMO_PLAN, scn)
    eng = NowcastEngine(scn, plan, NowcastConfig(reps=20, seed=2))
    at = plan.midnight + 11 * 60
    feed = read_feed(DEMO_FEED)
    live = live_state(plan, [r.id for r in eng.scn.rooms], feed.observations, until=at)
    return eng, live, eng.forecast(live, at)


def test_every_case_is_accounted_for_and_pacu_is_never_negative(demo):
    eng, live, nc = demo
    cases = nc.cases
    assert sorted(cases["case_id"]) == sorted(eng.plan.cases["case_id"])
    assert set(cases["status"]) <= STATUSES
    for r in cases.itertuples(index=False):
        c = live.cases[r.case_id]
        expected = ("cancelled" if c.cancelled else "done" if c.at("out_of_room") is not None
                    else "in_room" if c.at("in_room") is not None else "waiting")
        assert r.status == expected, r
        if r.status == "in_room":
            assert live.rooms[c.room].case_id == r.case_id
        if r.status == "waiting" and not math.isnan(r.finish_p10):
            assert r.finish_p10 >= nc.at
        if not math.isnan(r.finish_p50):
            assert r.finish_p10 <= r.finish_p50 <= r.finish_p90
        assert 0.0 <= r.p_not_done <= 1.0
    assert {"in_room", "waiting", "done"} <= set(cases["status"])
    pacu = nc.pacu
    assert len(pacu) and (pacu["hour"] >= nc.at).all()
    for col in ("occupancy_mean", "occupancy_p50", "occupancy_p90"):
        assert (pacu[col] >= 0).all(), col
    assert pacu["p_hold"].between(0, 1).all()
    rooms = nc.rooms
    assert list(rooms["room"]) == [r.id for r in eng.scn.rooms]
    assert rooms["p_past_close"].between(0, 1).all()
    assert (rooms["cases_left"] + rooms["cases_done"] + rooms["case_id"].notna()
            <= rooms["room"].map(cases.groupby("room").size()).fillna(0)).all()
