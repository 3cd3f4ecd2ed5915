"""``ortwin plan``: a day of a booked list planned by ml-cpsat, written as CSV and JSON that
agree, pass the independent plan checker, account for every booked case, repeat exactly for
the same seed, and bad input exits 2 with one line and writes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers_scn import (
    BASELINE,
    ROOT,
    baseline_raw,
    booked_csv,
    extending,
    one_line,
    run_cli,
    standalone,
)

from calibration.training import trained_model
from ortwin.recommend import COLUMNS, history_scenario, pick_day
from policies.checks import check_plan
from policies.rules_catalog import load_catalog
from twin.booked_list import read_booked_list
from twin.demand import booked_cases
from twin.policy import PlannedCase
from twin.scenario import ScenarioError, hhmm, load_scenario

TUESDAY = ROOT / "scenarios" / "live" / "baseline_tuesday.plan.csv"  # 41 cases in 10 ORs


def _main(argv: list[str]) -> tuple[int, str]:
    """``ortwin.cli.main`` in this process, with its stdout."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = run_cli(argv)
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def booked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario whose booked list is the recorded Tuesday as day 1, plus one case no room can
    take (15 hours booked) and one Wednesday case."""
    tmp = tmp_path_factory.mktemp("booked")
    df = pd.read_csv(TUESDAY, dtype=str).drop(columns="date")
    df.insert(5, "day", "1")
    huge = df.iloc[[0]].assign(case_id="huge-1", booked_minutes="900")
    wed = df.iloc[[1]].assign(case_id="wed-1", day="2")
    pd.concat([df, huge, wed]).to_csv(tmp / "list.csv", index=False)
    return extending(tmp, "booked", "booking: {booked_list: list.csv}\n")


@pytest.fixture(scope="module")
def planned(booked: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``ortwin plan booked.yaml --day 1`` run twice with the same seed."""
    out = tmp_path_factory.mktemp("plan")
    runs = [_main(["plan", str(booked), "--day", "1", "-o", str(out / k), "--seed", "3"])
            for k in ("a", "b")]
    return {"runs": runs, "a": out / "a", "b": out / "b"}


def test_plan_prints_the_table_footer_and_bent_rules(planned: dict) -> None:
    rc, text = planned["runs"][0]
    assert rc == 0
    lines = text.splitlines()
    assert lines[0] == "booked, day 1 (tue): 41 cases planned, 1 left out (seed 3)"
    assert lines[1].split() == ["room", "start", "end", "case", "procedure", "surgeon", "P80",
                                "P50", "booked"]
    footer = next(ln for ln in lines if ln.startswith("objective "))
    assert ", bound " in footer and ", gap " in footer and "%, wall " in footer
    assert "search: CP-SAT 1 worker, seed 3" in footer
    assert "left out: huge-1: huge-1 left out of the day" in text
    assert "bent: rule_override huge-1: plan-all-booked: capacity (left out by CP-SAT)" in lines
    assert lines[-1] == f"plan written to {planned['a'] / 'plan.csv'} and {planned['a'] / 'plan.json'}"


def test_plan_passes_the_checker_and_accounts_for_every_booked_case(booked: Path,
                                                                   planned: dict) -> None:
    scn = load_scenario(booked)
    doc = json.loads((planned["a"] / "plan.json").read_text())
    rows = read_booked_list(scn, booked.parent)
    cases = booked_cases(scn, rows[rows["day"] == 1])
    got = {c["case_id"]: c for c in doc["cases"]}
    assert sorted(got) == sorted(cases)  # every booked case of the day, once; not wed-1
    left = [c for c in doc["cases"] if c["status"] == "left out"]
    assert [c["case_id"] for c in left] == ["huge-1"] and left[0]["room"] == ""
    assert all(c["reason"] for c in doc["cases"])
    plan = [PlannedCase(c["case_id"], c["room"], 1440 + hhmm(c["start"]))
            for c in doc["cases"] if c["status"] == "planned"]
    forecasts = trained_model(history_scenario(scn)).forecast(list(cases.values()), 1)
    assert check_plan(plan, cases, scn, 1, forecasts, load_catalog(None), 0.8) == []
    for c in doc["cases"]:
        assert c["planned_minutes"] == round(forecasts[c["case_id"]].p80)
        if c["status"] == "planned":
            assert c["room"] in c["reason"] and c["start"] in c["reason"]
    assert (doc["day"], doc["weekday"], doc["seed"], doc["fallback"]) == (1, "tue", 3, None)
    assert doc["status"] in ("OPTIMAL", "FEASIBLE")
    assert doc["bound"] <= doc["objective"] and 0 <= doc["gap"] < 1
    assert doc["bent_rules"] == [{"event": "rule_override", "case_id": "huge-1", "room": "",
                                  "detail": "plan-all-booked: capacity (left out by CP-SAT)"}]


def test_csv_and_json_agree_and_the_same_seed_writes_identical_files(planned: dict) -> None:
    a = planned["a"]
    csv = pd.read_csv(a / "plan.csv", dtype=str, keep_default_na=False)
    cases = json.loads((a / "plan.json").read_text())["cases"]
    assert list(csv.columns) == list(COLUMNS)
    assert csv.to_dict("records") == [{k: "" if v is None else str(v) for k, v in c.items()}
                                      for c in cases]
    for name in ("plan.csv", "plan.json"):
        assert (a / name).read_bytes() == (planned["b"] / name).read_bytes(), name
    assert planned["runs"][1][0] == 0


def test_a_date_plans_its_weekday_from_a_day_plan_file(tmp_path: Path) -> None:
    rc, text = _main(["plan", str(BASELINE), "--booked", str(TUESDAY), "--date", "2026-11-24",
                      "-o", str(tmp_path), "--json"])
    assert rc == 0
    doc = json.loads(text)
    assert (doc["date"], doc["day"], doc["weekday"]) == ("2026-11-24", 1, "tue")
    assert len(doc["cases"]) == 41 and json.loads((tmp_path / "plan.json").read_text()) == doc


def test_pick_day_maps_a_date_to_the_first_booked_day_of_its_weekday() -> None:
    booked = pd.DataFrame({"day": [1, 3, 8, 10]})
    assert pick_day(booked, None, "2026-11-26", None) == 3  # a Thursday
    assert pick_day(booked, None, "2026-11-24", None) == 1  # Tuesday: days 1 and 8, the first
    assert pick_day(booked, 8, None, None) == 8
    assert pick_day(pd.DataFrame({"day": [4, 4]}), None, None, None) == 4  # the only day
    with pytest.raises(ScenarioError, match="no booked cases on a Monday"):
        pick_day(booked, None, "2026-11-23", None)
    with pytest.raises(ScenarioError, match="--day N or --date"):
        pick_day(booked, None, None, None)


def _sunday(tmp: Path) -> list[str]:
    """A suite with no room open at weekends, and a booked case on Sunday."""
    data = baseline_raw()
    for room in data["rooms"]:
        room["hours"] = {d: h for d, h in room["hours"].items() if d not in ("sat", "sun")}
    scn = standalone(tmp, "weekdays", data)
    rows = pd.read_csv(TUESDAY, dtype=str).drop(columns="date").head(1).assign(day="6")
    rows.to_csv(tmp / "sunday.csv", index=False)
    return [str(scn), "--booked", str(tmp / "sunday.csv"), "--day", "6"]


BAD = {
    "missing scenario": (lambda t, b: ["nope.yaml", "--day", "1"], "nope.yaml: file not found"),
    "missing booked list": (lambda t, b: [str(b), "--booked", str(t / "x.csv"), "--day", "1"],
                            "x.csv: booked list not found"),
    "no booked list": (lambda t, b: [str(BASELINE), "--day", "1"],
                       "the scenario has no booking.booked_list: pass --booked FILE"),
    "bad row": (lambda t, b: [str(b), "--booked", str(booked_csv(t / "bad.csv", [
        ["c1", "general", "dr_okafor", "lap_cholecystectomy", "outpatient", "0", "OR99", "07:30",
         "90"]])), "--day", "0"], "bad.csv: row 2: room: unknown room 'OR99'"),
    "no cases that day": (lambda t, b: [str(b), "--day", "4"], "no booked cases on day 4 (fri)"),
    "day past the horizon": (lambda t, b: [str(b), "--day", "9"], "expected a day from 0 to 6"),
    "closed weekday": (lambda t, b: _sunday(t), "day 6 is a sun: no elective room is open"),
    "bad date": (lambda t, b: [str(b), "--date", "2026-02-30"], "--date: expected YYYY-MM-DD"),
    "no day": (lambda t, b: [str(b)], "the list books days 1, 2: say which with --day N"),
    "date of another plan": (lambda t, b: [str(BASELINE), "--booked", str(TUESDAY), "--date",
                                           "2026-11-25"], "the plan is for 2026-11-24"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
        name: str, booked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, words = BAD[name]
    argv = make(tmp_path, booked)
    out = tmp_path / "out"
    assert run_cli(["plan", *argv, "-o", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("ortwin: ") and words in line, line
    assert not out.exists()


def test_an_output_path_that_is_a_file_exits_2(booked: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert run_cli(["plan", str(booked), "--day", "1", "-o", str(tmp_path / "f" / "x")]) == 2
    assert "expected a directory" in one_line(capsys.readouterr().err)


def test_bad_input_in_a_subprocess_has_no_traceback(booked: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ortwin.cli", "plan", str(booked), "--date",
                           "24/11/2026", "-o", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_line(proc.stderr) == "ortwin: --date: expected YYYY-MM-DD (got '24/11/2026')"
    assert not (tmp_path / "out").exists()


def test_a_solver_that_finds_no_plan_in_time_falls_back_to_the_rules_plan_and_says_so() -> None:
    from ortwin.recommend import read_booked, recommend_day

    scn = load_scenario(BASELINE)
    booked, date = read_booked(TUESDAY, scn)
    rec = recommend_day(scn, booked, 1, date=date, deterministic_time=1e-9, wall_time=1e-3)
    assert rec.status == "fallback" and rec.fallback and rec.fallback.startswith("solver status")
    assert rec.bent[0]["event"] == "plan_fallback" and "day 1: solver status" in rec.bent[0]["detail"]
    assert "rules plan used" in rec.summary()
    assert len(rec.rows) + len(rec.left_out) == 41
    assert all(r["reason"].startswith("rules plan (safety fallback: ") for r in rec.rows)
