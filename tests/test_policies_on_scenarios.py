"""The three policy families run on every shipped scenario: every case accounted for, every
started case in a capable room, and the ml-cpsat day plan either solved or fallen back (logged)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_scn import SCENARIO_FILES

from ortwin.experiment import run_experiment
from twin.events import TERMINAL
from twin.scenario import Scenario, from_mapping, load_scenario

POLICY_FAMILIES = ("manual", "rules", "ml-cpsat")


def _short(scn: Scenario) -> Scenario:
    """One weekday (longer when the scenario's downtime or outages fall later in the week)."""
    last = max([d.day for r in scn.rooms for d in r.downtime] + [o.day for o in scn.spd.outages],
               default=-1)
    return from_mapping({**scn.model_dump(by_alias=True), "horizon_days": max(1, last + 1)})


@pytest.mark.parametrize("policy", POLICY_FAMILIES)
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_policy_runs_on_scenario(path: Path, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTWIN_CPSAT_DTIME", "0.2")  # short solver limits: this checks wiring,
    monkeypatch.setenv("ORTWIN_CPSAT_REPLAN_DTIME", "0.05")  # bench/ measures plan quality
    scn = _short(load_scenario(path))
    res = run_experiment(scn, policy, reps=1, base_dir=path.parent)
    ev, cases = res.events, res.cases
    assert len(cases) > 0
    row = res.replications.iloc[0]
    assert row["cases_completed"] >= 1

    # no case lost: each case ends in exactly one terminal state
    terminal = ev[ev["event"].isin(TERMINAL)]
    counts = terminal.groupby("case_id").size()
    assert set(counts.index) == set(cases["case_id"]) and (counts == 1).all()

    # every case that entered a room entered one with its capability
    caps = {r.id: set(r.capabilities) for r in scn.rooms}
    need = cases.set_index("case_id")["capability"]
    inroom = ev[ev["event"] == "in_room"]
    bad = [(c, r) for c, r in zip(inroom["case_id"], inroom["room"], strict=True)
           if need[c] not in caps[r]]
    assert not bad, f"cases in rooms without their capability: {bad[:3]}"

    if policy == "ml-cpsat":
        pol = ev[ev["resource"] == "policy"]
        days_with_electives = {int(d) for d in cases.loc[~cases["is_addon"], "booked_day"]
                               if 0 <= d < scn.horizon_days}
        planned = pol[pol["event"].isin(["plan_solved", "plan_fallback"])]
        planned_days = {int(d.split()[1].rstrip(":")) for d in planned["detail"]}
        assert days_with_electives <= planned_days, "a day with electives had no logged plan"
        assert row["plan_fallbacks"] == (planned["event"] == "plan_fallback").sum()
