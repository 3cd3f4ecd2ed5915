"""``ortwin feed playback`` writes each time with its zone's UTC offset (not local time labelled
UTC), across both daylight-saving changes, and the now-cast reads the feed back to the same
wall-clock minutes of the plan's day as the log and the plan use."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from helpers_scn import BASELINE, ROOT, one_line, run_cli

from ortwin.live import live_state
from ortwin.nowcast_cli import load_inputs
from twin.feed import Observation, read_feed, write_feed

MAPPING = ROOT / "calibration" / "mappings" / "or_case_log_2022.yaml"  # America/New_York
HEAD = ("index,Encounter ID,Date,OR Suite,Service,CPT Code,CPT Description,Booked Time (min),"
        "OR Schedule,Wheels In,Start Time,End Time,Wheels Out")
# Sunday 13 March 2022: clocks go 02:00 EST -> 03:00 EDT; Sunday 6 November 2022: 02:00 EDT ->
# 01:00 EST. Times are the log's local wall clock, as the export writes them.
ROWS = (
    "0,90001,3/13/22,1,General,47562,Lap chole,90,3/13/22 1:00,3/13/22 1:30,3/13/22 1:45,"
    "3/13/22 3:15,3/13/22 3:30",
    "1,90002,3/13/22,2,Orthopedics,27447,TKA,120,3/13/22 1:00,3/13/22 1:10,3/13/22 1:20,"
    "3/13/22 2:30,3/13/22 3:10",  # 02:30 does not exist that day
    "2,90003,3/13/22,1,General,49505,Hernia,60,3/13/22 4:00,3/13/22 4:00,3/13/22 4:10,"
    "3/13/22 4:50,3/13/22 5:00",
    "3,90011,11/6/22,1,General,47562,Lap chole,90,11/6/22 0:30,11/6/22 0:30,11/6/22 0:45,"
    "11/6/22 1:15,11/6/22 1:40",  # 01:15 and 01:40 happen twice that day
    "4,90012,11/6/22,2,Orthopedics,27447,TKA,120,11/6/22 0:30,11/6/22 0:40,11/6/22 1:00,"
    "11/6/22 2:20,11/6/22 2:40",
)


@pytest.fixture
def log(tmp_path) -> Path:
    p = tmp_path / "dst_log.csv"
    p.write_text("\n".join([HEAD, *ROWS]) + "\n")
    return p


def _playback(log: Path, day: str, capsys, *extra: str) -> tuple[dict[tuple[str, str], str], str]:
    """Play back ``day``; ({(case, milestone): time as written}, stdout)."""
    out = log.parent / day
    assert run_cli(["feed", "playback", str(log), "--mapping", str(MAPPING), "--scenario",
                    str(BASELINE), "--date", day, "--plan-out", f"{out}.plan.csv",
                    "--feed-out", f"{out}.feed.jsonl", *extra]) == 0
    text = capsys.readouterr().out
    lines = [json.loads(x) for x in Path(f"{out}.feed.jsonl").read_text().splitlines()]
    return {(x["case_id"], x["value"]): x["time"] for x in lines}, text


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_spring_forward_times_carry_the_zone_offset_of_each_instant(log, capsys):
    t, text = _playback(log, "2022-03-13", capsys)
    assert t["90001", "in_room"] == "2022-03-13T01:30:00-05:00"  # standard time, not ...Z
    assert t["90001", "procedure_start"] == "2022-03-13T01:45:00-05:00"
    assert t["90001", "procedure_end"] == "2022-03-13T03:15:00-04:00"  # daylight time
    assert t["90001", "out_of_room"] == "2022-03-13T03:30:00-04:00"
    # 01:30 to 03:30 on the wall clock lasted 60 real minutes
    real = _instant(t["90001", "out_of_room"]) - _instant(t["90001", "in_room"])
    assert real == dt.timedelta(minutes=60)
    # 02:30 does not exist on 13 March: moved to the end of the gap, and said so
    assert t["90002", "procedure_end"] == "2022-03-13T03:00:00-04:00"
    assert "1 time(s) in the hour skipped when clocks went forward" in text
    assert "times in America/New_York" in text
    assert not any(v.endswith("Z") or v.endswith("+00:00") for v in t.values())


def test_fall_back_repeated_hour_is_taken_at_its_first_occurrence(log, capsys):
    t, text = _playback(log, "2022-11-06", capsys)
    assert t["90011", "in_room"] == "2022-11-06T00:30:00-04:00"
    assert t["90011", "procedure_end"] == "2022-11-06T01:15:00-04:00"  # first 01:15 (EDT)
    assert t["90011", "out_of_room"] == "2022-11-06T01:40:00-04:00"
    assert t["90012", "procedure_end"] == "2022-11-06T02:20:00-05:00"  # after the change
    assert t["90012", "in_room"] == "2022-11-06T00:40:00-04:00"
    real = _instant(t["90012", "out_of_room"]) - _instant(t["90012", "in_room"])
    assert real == dt.timedelta(minutes=180)  # 00:40 EDT to 02:40 EST
    assert "time(s) in the hour repeated when clocks went back" in text
    for case in ("90011", "90012"):  # milestones stay in order as instants
        steps = ("in_room", "procedure_start", "procedure_end", "out_of_room")
        times = [_instant(t[case, s]) for s in steps]
        assert times == sorted(times)


def test_tz_option_overrides_the_mapping_zone(log, capsys):
    t, _ = _playback(log, "2022-03-13", capsys, "--tz", "Asia/Kolkata")
    assert t["90001", "out_of_room"] == "2022-03-13T03:30:00+05:30"  # no daylight time there
    t, _ = _playback(log, "2022-03-13", capsys, "--tz", "Europe/Berlin")
    assert t["90001", "in_room"] == "2022-03-13T01:30:00+01:00"


@pytest.mark.parametrize("day", ["2022-03-13", "2022-11-06"])
def test_the_nowcast_reads_the_feed_back_to_the_log_and_plan_wall_clock(log, capsys, day):
    """The twin's minutes of the day are wall-clock minutes: what the plan's HH:MM and the log
    say. The feed read back (as ``ortwin nowcast`` reads it, with or without --tz, and a copy
    of it stamped in UTC read with --tz) gives every milestone the log's wall-clock minute."""
    from calibration.loader import load_history

    _playback(log, day, capsys)
    out = log.parent / day
    cases = load_history(log, MAPPING).cases
    cases = cases.loc[cases["date"] == day]
    utc = log.parent / f"{day}.utc.jsonl"
    write_feed([Observation(**{**o.model_dump(), "time": o.time.astimezone(dt.UTC)})
                for o in read_feed(f"{out}.feed.jsonl").observations], utc)
    for feed, tz in ((f"{out}.feed.jsonl", None), (f"{out}.feed.jsonl", "America/New_York"),
                     (utc, "America/New_York")):
        scn, plan, fd = load_inputs(f"{out}.scenario.yaml", f"{out}.plan.csv", feed, tz)
        live = live_state(plan, [r.id for r in plan.scenario(scn).rooms], fd.observations)
        assert live.quarantine == [], live.quarantine
        for r in cases.itertuples(index=False):
            c = live.cases[r.case_id]
            for step in ("in_room", "procedure_start", "procedure_end", "out_of_room"):
                wall = getattr(r, step)
                want = (wall - dt.datetime.fromisoformat(day)).total_seconds() / 60
                if (r.case_id, step) == ("90002", "procedure_end"):
                    want = 180.0  # 02:30 does not exist: the end of the gap, 03:00
                assert c.at(step) - plan.midnight == pytest.approx(want), (feed, tz, step)


def test_nowcast_at_a_local_time_after_spring_forward(log, capsys, tmp_path):
    _playback(log, "2022-03-13", capsys)
    out = log.parent / "2022-03-13"
    js = tmp_path / "nc.json"
    assert run_cli(["nowcast", "--scenario", f"{out}.scenario.yaml", "--plan", f"{out}.plan.csv",
                    "--events", f"{out}.feed.jsonl", "--at", "03:20", "--reps", "10",
                    "--policy", "none", "--json", str(js)]) == 0
    capsys.readouterr()
    rooms = {r["room"]: r for r in json.loads(js.read_text())["rooms"]}
    # 03:20 EDT: OR1's first case is in the room since 01:30 EST (110 wall-clock minutes),
    # OR2's case left at 03:10 EDT
    assert rooms["OR1"]["case_id"] == "90001" and rooms["OR1"]["elapsed"] == pytest.approx(110)
    assert rooms["OR2"]["state"] == "turnover"


@pytest.mark.parametrize("cmd", ["playback", "nowcast"])
def test_bad_zone_is_one_line_and_exit_2(log, capsys, cmd):
    out = log.parent / "x"
    if cmd == "playback":
        args = ["feed", "playback", str(log), "--mapping", str(MAPPING), "--scenario",
                str(BASELINE), "--date", "2022-03-13", "--plan-out", f"{out}.plan.csv",
                "--feed-out", f"{out}.feed.jsonl", "--tz", "Mars/Olympus"]
    else:
        _playback(log, "2022-03-13", capsys)
        day = log.parent / "2022-03-13"
        args = ["nowcast", "--scenario", f"{day}.scenario.yaml", "--plan", f"{day}.plan.csv",
                "--events", f"{day}.feed.jsonl", "--tz", "Mars/Olympus"]
    assert run_cli(args) == 2
    std, err = capsys.readouterr()
    line = one_line(err)
    assert "--tz" in line and "'Mars/Olympus'" in line and "IANA" in line
    assert std == "" and not Path(f"{out}.feed.jsonl").exists()
