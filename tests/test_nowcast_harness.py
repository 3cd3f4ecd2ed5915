"""The real-log accuracy harness (bench/nowcast_accuracy.py) and ``ortwin feed playback`` +
``ortwin nowcast`` build a day the same way: the same files, and the same PACU rule (a log with
no PACU times never holds a patient in the OR). The harness takes its log, mapping, as-of date
and days on the command line, and reports distinct days and the days unseen in fitting."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from conftest import KAGGLE_LOG, KAGGLE_MAPPING
from helpers_scn import ROOT, one_line, run_cli

sys.path.insert(0, str(ROOT / "bench"))
import nowcast_accuracy as harness

DAY = "2022-02-08"


@pytest.fixture(scope="module")
def january(tmp_path_factory) -> Path:
    """The twin calibrated on January 2022 (ortwin calibrate --as-of 2022-02-01)."""
    out = tmp_path_factory.mktemp("cal") / "jan.yaml"
    assert run_cli(["calibrate", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING), "--as-of",
                    "2022-02-01", "-o", str(out)]) == 0
    return out


def _playback(january: Path, folder: Path) -> Path:
    stem = folder / DAY
    assert run_cli(["feed", "playback", str(KAGGLE_LOG), "--mapping", str(KAGGLE_MAPPING),
                    "--scenario", str(january), "--date", DAY, "--plan-out",
                    f"{stem}.plan.csv", "--feed-out", f"{stem}.feed.jsonl"]) == 0
    return stem


def _holds(scenario: Path, stem: Path, out: Path) -> list[float]:
    assert run_cli(["nowcast", "--scenario", str(scenario), "--plan", f"{stem}.plan.csv",
                    "--events", f"{stem}.feed.jsonl", "--at", "13:00", "--reps", "30",
                    "--policy", "none", "--json", str(out)]) == 0
    return [h["p_hold"] for h in json.loads(out.read_text())["pacu"]]


def test_cli_nowcast_of_a_played_back_day_holds_no_one_for_pacu(january, tmp_path, capsys):
    """The log records no PACU times, so playback plays the day with PACU overflow; the
    scenario it writes carries that rule to ``ortwin nowcast``, as the harness scores it."""
    stem = _playback(january, tmp_path)
    text = capsys.readouterr().out
    day_scn = Path(f"{stem}.scenario.yaml")
    assert f"scenario of the day -> {day_scn}" in text
    assert f"ortwin nowcast --scenario {day_scn}" in text
    holds = _holds(day_scn, stem, tmp_path / "day.json")
    assert holds and all(h == 0.0 for h in holds), holds
    # the calibrated scenario itself would hold patients: the rule is what makes the difference
    assert max(_holds(january, stem, tmp_path / "cal.json")) > 0


def test_harness_builds_the_day_from_the_files_the_cli_writes(january, tmp_path, capsys):
    from calibration.loader import load_history
    from twin.scenario import load_scenario

    stem = _playback(january, tmp_path / "cli")
    capsys.readouterr()
    h = load_history(KAGGLE_LOG, KAGGLE_MAPPING)
    folder = tmp_path / "bench"
    folder.mkdir()
    scn, plan, obs, actual = harness.day_inputs(h, dt.date.fromisoformat(DAY),
                                                load_scenario(january), "America/New_York", folder)
    for ext in ("plan.csv", "feed.jsonl", "scenario.yaml"):
        assert (folder / f"{DAY}.{ext}").read_bytes() == Path(f"{stem}.{ext}").read_bytes(), ext
    assert scn.pacu.when_full == "overflow" and scn.stress.cancellation_factor == 0
    assert obs[0].time.utcoffset() == dt.timedelta(hours=-5)
    assert set(actual) == set(plan.cases["room"])


@pytest.mark.parametrize("argv, words", [
    (["--month", "2022-13"], ["--month", "YYYY-MM", "'2022-13'"]),
    (["--from", "2022-02-01"], ["--from and --to"]),
    (["--from", "2022-02-10", "--to", "2022-02-01"], ["--to 2022-02-01 is before --from"]),
    (["--month", "2022-02", "--from", "2022-02-01", "--to", "2022-02-02"], ["not both"]),
    (["--as-of", "31/01/2022"], ["--as-of", "YYYY-MM-DD"]),
    (["--hours", "9,25"], ["--hours", "0-23"]),
    (["--reps", "zero"], ["--reps"]),
    (["--log", "nope.csv"], ["nope.csv", "file not found"]),
    (["--mapping", "nope.yaml"], ["nope.yaml"]),
    (["--month", "2023-05"], ["no weekdays with cases from 2023-05-01 to 2023-05-31"]),
    (["--as-of", "2022-01-02"], ["--as-of", "calibration needs at least"]),
])
def test_harness_bad_arguments_are_one_line_and_exit_2(argv, words, capsys):
    assert harness.main([*argv, "--reps", "1"] if "--reps" not in argv else argv) == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert out == "" and line.startswith("nowcast_accuracy.py: ")
    for w in words:
        assert w in line, (w, line)


def test_harness_says_plainly_when_no_scored_day_is_unseen(tmp_path, capsys):
    """14 and 15 February 2022 are copies of 21 and 7 January: fitted on January, nothing is
    left to score on unseen days, and the harness says so instead of printing empty tables."""
    js = tmp_path / "acc.json"
    assert harness.main(["--as-of", "2022-02-01", "--from", "2022-02-14", "--to", "2022-02-15",
                         "--hours", "9,13", "--reps", "5", "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "2 days scored (2022-02-14 to 2022-02-15), 2 distinct; 0 distinct day(s) not seen" \
        in text
    assert "2022-02-15 = 2022-01-07" in text and "2022-02-14 = 2022-01-21" in text
    assert "no scored day is unseen in fitting" in text and "NaN" not in text
    d = json.loads(js.read_text())
    assert d["distinct"] == 2 and d["unseen"] == [] and d["unseen_days"] is None
    assert [h["hour"] for h in d["all_days"]["hours"]] == [9, 13]
    assert Path(js.with_suffix(".scores.csv")).exists()


def test_harness_scores_the_unseen_days_apart(tmp_path, capsys):
    """7 and 8 February 2022 copy no January day: both are unseen, and the unseen-day figures
    are those of the two days."""
    js = tmp_path / "acc.json"
    assert harness.main(["--as-of", "2022-02-01", "--from", "2022-02-07", "--to", "2022-02-08",
                         "--hours", "11", "--reps", "5", "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "the 2 distinct day(s) not seen in fitting (2022-02-07, 2022-02-08):" in text
    d = json.loads(js.read_text())
    assert d["days"] == ["2022-02-07", "2022-02-08"] and d["distinct"] == 2
    assert d["unseen"] == ["2022-02-07", "2022-02-08"]
    assert d["unseen_days"]["hours"] == d["all_days"]["hours"]


def test_paired_difference_resamples_whole_days():
    """Two days: the now-cast is 2 min better on one (two rooms) and 4 worse on the other (one
    room): the mean difference is room-weighted, (-2-2+4)/3 = 0, and the interval spans the two
    days' own means; a single day gets no interval."""
    import nowcast_table
    import pandas as pd

    rows = [("d1", 10, 10, 12), ("d1", 20, 20, 22), ("d2", 30, 34, 30)]  # day, actual, now, twin
    s = pd.DataFrame([{"day": d, "hour": 9, "actual": y, "now_p50": n, "twin_p50": t,
                       "crps_now": abs(n - y), "crps_twin": abs(t - y)} for d, y, n, t in rows])
    s["crps_now"] = [0.0, 0.0, 4.0]
    s["crps_twin"] = [2.0, 2.0, 0.0]
    line = nowcast_table.paired(s, ["d1", "d2"])
    assert line == "09:00 MAE +0.0 [-2.0, +4.0], CRPS +0.0 [-2.0, +4.0]"
    assert "one day" in nowcast_table.paired(s, ["d1"])
