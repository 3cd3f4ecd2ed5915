"""What-if levers: each lever changes what it says and nothing else, bad levers give one-line
errors, the diff lists exactly the changes, and the PACU weekday closure acts on that day only."""

from __future__ import annotations

import pandas as pd
import pytest

from ortwin.compare import compare, scenario_effects
from ortwin.runner import run_replication
from twin.levers import Levers, RoomDowntime, apply_levers, scenario_diff, summarise_diff
from twin.scenario import ScenarioError, load_scenario, with_horizon


@pytest.fixture(scope="module")
def base():
    return load_scenario("scenarios/baseline.yaml")


def test_no_levers_is_the_base(base):
    assert Levers().is_base()
    same = apply_levers(base, Levers())
    assert same == base
    assert scenario_diff(base, same) == []


def test_each_lever_changes_its_field(base):
    s = apply_levers(base, Levers(pacu_beds=12, pacu_after_hours_beds=2,
                                  pacu_beds_closed={"tue": 2}))
    assert (s.pacu.beds, s.pacu.after_hours_beds, s.pacu.open_beds("tue"),
            s.pacu.open_beds("wed")) == (12, 2, 10, 12)
    s = apply_levers(base, Levers(add_rooms=2, add_room_like="OR1"))
    assert [r.id for r in s.rooms][-2:] == ["OR11", "OR12"]
    assert s.room("OR11").capabilities == base.room("OR1").capabilities
    assert "OR11" not in s.blocks  # new rooms are unblocked
    day = [sh for sh in s.staff["scrub"] if "mon" in sh.days and sh.start <= 450 < sh.end]
    base_day = [sh for sh in base.staff["scrub"] if "mon" in sh.days and sh.start <= 450 < sh.end]
    assert sum(x.count for x in day) == sum(x.count for x in base_day) + 2  # a crew per new room
    s = apply_levers(base, Levers(close_rooms=("OR1",)))
    assert "OR1" not in [r.id for r in s.rooms] and "OR1" not in s.blocks
    s = apply_levers(base, Levers(hours_end="18:00"))
    assert {w.end for r in s.rooms if not r.on_call for w in r.hours.values()} == {18 * 60}
    assert s.room("OR10").hours == base.room("OR10").hours  # on-call room keeps its hours
    s = apply_levers(base, Levers(blocks={("OR1", "mon"): None, ("OR2", "tue"): "ortho"},
                                  release_days=1))
    assert "mon" not in s.blocks["OR1"] and s.blocks["OR2"]["tue"].service == "ortho"
    assert {b.release_days for days in s.blocks.values() for b in days.values()} == {1}
    s = apply_levers(base, Levers(staff_delta={"scrub": -1}))
    assert [x.count for x in s.staff["scrub"]] == [max(0, x.count - 1)
                                                   for x in base.staff["scrub"]]
    s = apply_levers(base, Levers(addon_factor=2, duration_factor=1.1, cancellation_factor=0.5,
                                  demand_factor=1.2))
    assert (s.stress.addon_factor, s.stress.duration_factor, s.stress.cancellation_factor) == \
        (2, 1.1, 0.5)
    assert s.service("general").electives_per_week == pytest.approx(
        base.service("general").electives_per_week * 1.2)
    s = apply_levers(base, Levers(downtime=(RoomDowntime("OR3", 1, "08:00", "12:00"),)))
    assert [(d.day, d.start, d.end) for d in s.room("OR3").downtime] == [(1, 480, 720)]
    s = apply_levers(base, Levers(spd_machines={"wash": 1}, tray_factor=0.5))
    assert next(st.machines for st in s.spd.stages if st.name == "wash") == 1
    assert all(n == max(1, round(base.spd.inventory[t] * 0.5)) for t, n in s.spd.inventory.items())


@pytest.mark.parametrize(("levers", "field"), [
    (Levers(close_rooms=("OR99",)), "close_rooms"),
    (Levers(add_rooms=1, add_room_like="nope"), "add_room_like"),
    (Levers(blocks={("OR1", "mon"): "cardiology"}), "blocks[OR1].mon"),
    (Levers(staff_delta={"porter": 1}), "staff_delta.porter"),
    (Levers(hours_start="25:99"), "hours_start"),
    (Levers(downtime=(RoomDowntime("OR1", 30, "08:00", "09:00"),)), "downtime"),
    (Levers(spd_machines={"autoclave": 2}), "spd_machines.autoclave"),
    (Levers(pacu_beds=4, pacu_beds_closed={"tue": 5}), "beds_closed.tue"),
    (Levers(addon_factor=-1), "addon_factor"),
])
def test_bad_levers_name_the_lever_in_one_line(base, levers, field):
    with pytest.raises(ScenarioError) as e:
        apply_levers(base, levers)
    text = str(e.value)
    assert "\n" not in text and field in text and text.startswith("what-if on baseline")


def test_diff_lists_exactly_the_changes(base):
    s = apply_levers(base, Levers(pacu_beds=12, pacu_beds_closed={"tue": 2},
                                  staff_delta={"anaesthesia": 1}))
    fields = {c.field for c in scenario_diff(base, s)}
    assert "pacu.beds" in fields and "pacu.beds_closed[tue]" in fields
    assert all(f.startswith(("pacu.", "staff[anaesthesia]")) for f in fields)
    rows = summarise_diff(scenario_diff(base, s))
    beds = next(r for r in rows if r["field"] == "pacu.beds")
    assert (beds["base"], beds["new"]) == ("15", "12")
    staff = next(r for r in rows if r["field"].startswith("staff"))
    assert staff["where"].startswith("anaesthesia × mon")
    hours = summarise_diff(scenario_diff(base, apply_levers(base, Levers(hours_end="18:00"))))
    assert [(r["base"], r["new"], r["fields"]) for r in hours] == [("17:30", "18:00", "45")]


def test_pacu_closure_acts_on_its_weekday_only(base):
    scn = with_horizon(apply_levers(base, Levers(pacu_beds_closed={"tue": 4})), 3)
    ev = run_replication(scn, "manual", 7, 0).events
    cap = ev[(ev["resource"] == "pacu") & (ev["event"] == "capacity")]
    day_caps = {int(t // 1440): v for t, v in zip(cap["time"], cap["value"], strict=True)
                if t % 1440 == scn.pacu.hours.start and t < 3 * 1440}
    assert day_caps == {0: 15.0, 1: 11.0, 2: 15.0}


def test_closing_pacu_beds_increases_holds_with_common_random_numbers(base):
    short = with_horizon(base, 3)
    shut = apply_levers(short, Levers(pacu_beds=7, name="pacu7"))
    comp = compare([short, shut], ["manual"], reps=10, seed=11)
    eff = scenario_effects(comp.replications, "baseline", ["pacu_hold_minutes",
                                                           "cases_completed"])
    hold = eff[eff["kpi"] == "pacu_hold_minutes"].iloc[0]
    assert hold["mean"] > hold["base_mean"] and hold["verdict"] == "worse"
    # paired on the replication: the effect is the mean of per-replication differences
    r = comp.replications.pivot(index="rep", columns="scenario", values="pacu_hold_minutes")
    assert hold["mean_diff"] == pytest.approx(float((r["pacu7"] - r["baseline"]).mean()))
    assert isinstance(eff, pd.DataFrame) and set(eff["scenario"]) == {"pacu7"}
