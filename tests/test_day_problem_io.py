"""Day problems as JSON (the frozen benchmark-instance format of issue 19): a real baseline day
round-trips field for field and solves to the same plan; bad files name the bad field."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_cpsat import day_cases

from calibration.training import trained_model
from policies.cpsat_model import solve
from policies.day_problem_io import (
    FORMAT,
    ProblemFormatError,
    problem_from_dict,
    problem_to_dict,
    read_problem,
    write_problem,
)
from policies.ml_cpsat import MlCpsatPolicy
from twin.scenario import load_scenario


@pytest.fixture(scope="module")
def baseline_day():
    scn = load_scenario("scenarios/baseline.yaml")
    policy = MlCpsatPolicy(scn, forecaster=trained_model(scn), deterministic_time=1.0)
    _, cases = day_cases(scn, 1)
    prob = policy.problem(1, cases, policy.forecaster.forecast(cases, 1))
    return dataclasses.replace(prob, pinned={cases[0].id: cases[0].booked_room})


def test_a_baseline_day_round_trips_and_solves_the_same(baseline_day, tmp_path):
    path = write_problem(baseline_day, tmp_path / "day.json", best_known=123.0)
    back, extra = read_problem(path)
    assert extra == {"best_known": 123.0}
    assert back == baseline_day
    assert json.loads(path.read_text())["format"] == FORMAT
    # a wall-clock limit far out of reach: only the deterministic limit may stop the search
    a = solve(baseline_day, deterministic_time=1.0, wall_time=600.0)
    b = solve(back, deterministic_time=1.0, wall_time=600.0)
    assert (a.status, a.objective, a.assignment) == (b.status, b.objective, b.assignment)


@pytest.mark.parametrize(("edit", "words"), [
    (lambda d: d.update(format="other/9"), "format: expected 'ortwin-day-problem/1'"),
    (lambda d: d["cases"][2].pop("duration"), "cases[2].duration: missing"),
    (lambda d: d["cases"][0].update(duration="long"), "cases[0].duration: expected a number"),
    (lambda d: d["rooms"][1].update(color="red"), "rooms[1].color: unknown field"),
    (lambda d: d.update(cases={}), "cases: expected a list"),
    (lambda d: d["cases"].append(dict(d["cases"][0])), "case ids repeat"),
])
def test_bad_problems_name_the_field(baseline_day, edit, words):
    d = json.loads(json.dumps(problem_to_dict(baseline_day)))
    edit(d)
    with pytest.raises(ProblemFormatError, match=words.replace("[", r"\[").replace("]", r"\]")):
        problem_from_dict(d, "day")


def test_an_unreadable_file_is_one_error(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ProblemFormatError, match="bad.json: not readable JSON"):
        read_problem(p)
