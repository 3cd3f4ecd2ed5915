"""Scenario files: every shipped scenario loads and runs; ``extends`` merging; bad-input errors."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_scn import (
    BASELINE,
    BOOKED_COLUMNS,
    BOOKED_ROWS,
    SCENARIO_FILES,
    baseline_raw,
    booked_csv,
    extending,
    standalone,
    write,
)

from ortwin.experiment import run_experiment
from twin.scenario import Scenario, ScenarioError, from_mapping, load_scenario


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario(BASELINE)


# --- every shipped scenario -------------------------------------------------------------------


def test_scenario_folder_is_not_empty() -> None:
    names = {p.name for p in SCENARIO_FILES}
    assert "baseline.yaml" in names and len(names) >= 2


def _short(scn: Scenario, days: int = 2) -> Scenario:
    """``scn`` over a short horizon (long enough to keep its planned downtime and outages)."""
    last = max([d.day for r in scn.rooms for d in r.downtime] + [o.day for o in scn.spd.outages],
               default=-1)
    return from_mapping({**scn.model_dump(by_alias=True), "horizon_days": max(days, last + 1)})


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_shipped_scenario_loads_and_runs(path: Path) -> None:
    scn = load_scenario(path)
    assert scn.name == path.stem  # each file sets its own name (docs/scenarios.md)
    short = _short(scn)
    assert short.horizon_days <= 4
    res = run_experiment(short, "as-booked", reps=1, base_dir=path.parent)
    reps = res.replications
    assert len(reps) == 1 and list(reps["rep"]) == [0]
    assert reps["cases_completed"].iloc[0] >= 1
    util = float(reps["utilisation"].iloc[0])
    assert math.isfinite(util) and 0 < util <= 1.5
    row = res.summary.set_index("kpi").loc["utilisation"]
    assert math.isfinite(float(row["mean"])) and float(row["mean"]) == pytest.approx(util)
    assert len(res.cases) >= 1 and len(res.events) >= 1


# --- extends / merge semantics ----------------------------------------------------------------


def test_extends_overrides_scalars_and_keeps_siblings(tmp_path: Path, base: Scenario) -> None:
    p = extending(tmp_path, "scalars", "horizon_days: 3\npacu: {beds: 4}\nstress: {addon_factor: 2.0}\n")
    scn = load_scenario(p)
    assert scn.name == "scalars" and scn.horizon_days == 3
    assert scn.pacu.beds == 4
    assert scn.pacu.after_hours_beds == base.pacu.after_hours_beds
    assert scn.pacu.los == base.pacu.los and scn.pacu.hours == base.pacu.hours
    assert scn.stress.addon_factor == 2.0
    assert scn.stress.model_dump(exclude={"addon_factor"}) == base.stress.model_dump(
        exclude={"addon_factor"})
    assert scn.rooms == base.rooms and scn.services == base.services


def test_extends_inherits_name_when_not_set(tmp_path: Path) -> None:
    p = write(tmp_path / "noname.yaml", f"extends: {BASELINE}\nseed: 7\n")
    scn = load_scenario(p)
    assert scn.name == "baseline" and scn.seed == 7


def test_extends_merges_a_room_by_id(tmp_path: Path, base: Scenario) -> None:
    p = extending(tmp_path, "room_merge", (
        "rooms:\n"
        "  - id: OR4\n"
        "    downtime: [{day: 1, start: '07:30', end: '13:00', reason: leak}]\n"
        "    hours: {sat: {start: '08:00', end: '12:00'}}\n"
    ))
    scn = load_scenario(p)
    assert [r.id for r in scn.rooms] == [r.id for r in base.rooms]  # same rooms, same order
    or4, old = scn.room("OR4"), base.room("OR4")
    assert [(d.day, d.start, d.end, d.reason) for d in or4.downtime] == [(1, 450, 780, "leak")]
    assert or4.capabilities == old.capabilities
    # hours is a mapping: the new weekday is added, the others are kept
    assert set(or4.hours) == set(old.hours) | {"sat"}
    assert or4.hours["sat"].start == 480 and or4.hours["mon"] == old.hours["mon"]
    for r in base.rooms:
        if r.id != "OR4":
            assert scn.room(r.id) == r


def test_extends_replaces_plain_lists(tmp_path: Path, base: Scenario) -> None:
    p = extending(tmp_path, "caps", "rooms:\n  - {id: OR1, capabilities: [general]}\n")
    scn = load_scenario(p)
    assert scn.room("OR1").capabilities == ["general"]
    assert len(base.room("OR1").capabilities) > 1


def test_extends_merges_nested_id_lists(tmp_path: Path, base: Scenario) -> None:
    p = extending(tmp_path, "procs", (
        "services:\n  - id: ent\n    procedures:\n      - {id: tonsillectomy, weight: 0.5}\n"
    ))
    scn = load_scenario(p)
    new, old = scn.service("ent"), base.service("ent")
    assert [q.id for q in new.procedures] == [q.id for q in old.procedures]
    assert new.procedures[0].weight == 0.5 and old.procedures[0].weight != 0.5
    assert new.procedures[0].duration == old.procedures[0].duration
    assert new.procedures[1:] == old.procedures[1:]
    assert new.electives_per_week == old.electives_per_week


def test_extends_adds_a_new_room(tmp_path: Path, base: Scenario) -> None:
    p = extending(tmp_path, "new_room", (
        "rooms:\n"
        "  - id: OR11\n"
        "    capabilities: [general, ortho]\n"
        "    hours: {mon: {start: '08:00', end: '16:00'}}\n"
        "blocks:\n  OR11: {mon: ortho}\n"
    ))
    scn = load_scenario(p)
    assert [r.id for r in scn.rooms] == [r.id for r in base.rooms] + ["OR11"]
    assert scn.room("OR11").hours["mon"].minutes == 480
    assert scn.blocks["OR11"]["mon"].service == "ortho"
    assert scn.blocks["OR1"] == base.blocks["OR1"]  # blocks mapping merged, not replaced


def test_extends_removes_an_unblocked_room(tmp_path: Path, base: Scenario) -> None:
    assert "OR10" not in base.blocks and "OR10" in [r.id for r in base.rooms]
    p = extending(tmp_path, "no_or10", "rooms:\n  - {id: OR10, remove: true}\n")
    scn = load_scenario(p)
    assert [r.id for r in scn.rooms] == [r.id for r in base.rooms if r.id != "OR10"]
    assert scn.blocks == base.blocks


def test_extends_removes_a_blocked_room_and_its_blocks(tmp_path: Path, base: Scenario) -> None:
    assert "OR9" in base.blocks
    p = extending(tmp_path, "no_or9", "rooms:\n  - {id: OR9, remove: true}\n")
    scn = load_scenario(p)
    assert "OR9" not in [r.id for r in scn.rooms]
    assert "OR9" not in scn.blocks


def test_extends_path_is_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             base: Scenario) -> None:
    shutil.copy(BASELINE, tmp_path / "baseline.yaml")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "mid.yaml", "extends: baseline.yaml\nname: mid\npacu: {beds: 9}\n")
    p = write(tmp_path / "sub" / "leaf.yaml", "extends: ../mid.yaml\nname: leaf\nseed: 3\n")
    monkeypatch.chdir(tmp_path / "sub")
    scn = load_scenario(p)
    assert (scn.name, scn.seed, scn.pacu.beds) == ("leaf", 3, 9)  # chain: leaf -> mid -> baseline
    assert scn.rooms == base.rooms


def test_circular_extends_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\nname: b\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(tmp_path / "a.yaml")
    msg = str(ei.value)
    assert "\n" not in msg and "circular" in msg and ei.value.field == "extends"
    assert str(tmp_path) in msg


def test_self_extends_is_circular(tmp_path: Path) -> None:
    p = write(tmp_path / "me.yaml", "extends: me.yaml\nname: me\n")
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(p)


# --- bad input --------------------------------------------------------------------------------
# Each case builds its bad input under tmp_path and returns (trigger, file named, field, words):
# trigger() must raise ScenarioError whose str() is one line "file: field: message", naming
# ``file`` and ``field`` and containing every word of ``words`` (what was expected).

Case = tuple[Callable[[], object], Path, str, list[str]]


def _load(p: Path) -> Callable[[], object]:
    return lambda: load_scenario(p)


def _ext(tmp: Path, name: str, body: str, field: str, words: list[str]) -> Case:
    p = extending(tmp, name, body)
    return _load(p), p, field, words


def _mutated(tmp: Path, name: str, change: Callable[[dict], None], field: str,
             words: list[str]) -> Case:
    data = baseline_raw()
    change(data)
    p = standalone(tmp, name, data)
    return _load(p), p, field, words


def _missing_file(tmp: Path) -> Case:
    p = tmp / "nope.yaml"
    return _load(p), p, "", ["file not found"]


def _yaml_syntax(tmp: Path) -> Case:
    p = write(tmp / "syntax.yaml", "name: x\nhorizon_days: 3\npacu: {beds: [1, 2\nseed: 4\n")
    return _load(p), p, "line 4", ["invalid YAML"]


def _not_mapping(tmp: Path) -> Case:
    p = write(tmp / "list.yaml", "- name: x\n- seed: 3\n")
    return _load(p), p, "", ["expected a YAML mapping at the top level"]


def _empty_file(tmp: Path) -> Case:
    p = write(tmp / "empty.yaml", "# nothing here\n")
    return _load(p), p, "", ["expected a YAML mapping"]


def _booked(tmp: Path, name: str, rows: list[list[str]], columns: list[str], field: str,
            words: list[str]) -> Case:
    csv = booked_csv(tmp / f"{name}.csv", rows, columns)
    p = extending(tmp, name, f"horizon_days: 1\nbooking: {{booked_list: {csv.name}}}\n")

    def trigger() -> object:
        return run_experiment(load_scenario(p), "as-booked", reps=1, base_dir=p.parent)

    return trigger, csv, field, words


def _booked_missing_column(tmp: Path) -> Case:
    cols = [c for c in BOOKED_COLUMNS if c != "surgeon"]
    rows = [[v for c, v in zip(BOOKED_COLUMNS, r, strict=True) if c != "surgeon"] for r in BOOKED_ROWS]
    return _booked(tmp, "no_surgeon_col", rows, cols, "surgeon", ["required column is missing"])


def _booked_unknown_surgeon(tmp: Path) -> Case:
    rows = [BOOKED_ROWS[0], [*BOOKED_ROWS[1][:2], "dr_nobody", *BOOKED_ROWS[1][3:]]]
    return _booked(tmp, "bad_surgeon", rows, BOOKED_COLUMNS, "row 3: surgeon",
                   ["unknown surgeon 'dr_nobody'"])


BAD_INPUTS: dict[str, Callable[[Path], Case]] = {
    "missing_file": _missing_file,
    "yaml_syntax": _yaml_syntax,
    "top_level_not_mapping": _not_mapping,
    "empty_file": _empty_file,
    "unknown_top_level_key": lambda t: _ext(t, "colour", "colour: red\n", "colour", ["unknown field"]),
    "unknown_nested_key": lambda t: _ext(t, "bedz", "pacu: {bedz: 3}\n", "pacu.bedz", ["unknown field"]),
    "unknown_key_in_room": lambda t: _ext(t, "room_key", "rooms:\n  - {id: OR3, colour: red}\n",
                                          "rooms[OR3].colour", ["unknown field"]),
    "wrong_type": lambda t: _ext(t, "many", "pacu: {beds: many}\n", "pacu.beds",
                                 ["expected a valid integer"]),
    "negative_count": lambda t: _ext(t, "neg", "pacu: {beds: -1}\n", "pacu.beds",
                                     ["expected greater than or equal to 0"]),
    "negative_shift_count": lambda t: _ext(
        t, "neg_shift", "staff:\n  scrub:\n    - {start: '07:00', end: '17:00', count: -2}\n",
        "staff.scrub[0].count", ["greater than or equal to 0"]),
    "bad_time": lambda t: _ext(
        t, "time", "rooms:\n  - id: OR1\n    hours: {mon: {start: '25:99', end: '17:00'}}\n",
        "rooms[OR1].hours.mon.start", ["expected a time 'HH:MM'", "25:99"]),
    "end_before_start": lambda t: _ext(
        t, "order", "rooms:\n  - id: OR1\n    hours: {mon: {start: '17:00', end: '08:00'}}\n",
        "rooms[OR1].hours.mon", ["expected end after start"]),
    "unknown_distribution_kind": lambda t: _ext(
        t, "kind", "booking: {lead_days: {kind: poisson, mean: 3}}\n", "booking.lead_days",
        ["expected a distribution kind", "lognormal", "constant"]),
    "unknown_kind_in_procedure": lambda t: _ext(
        t, "kind_proc", "services:\n  - id: ent\n    procedures:\n"
        "      - {id: new_op, duration: {kind: banana, median: 3}}\n",
        "services[ent].procedures[new_op].duration", ["expected a distribution kind"]),
    "lognormal_without_parameters": lambda t: _ext(
        t, "logn", "booking: {lead_days: {kind: lognormal, median: 3}}\n", "booking.lead_days",
        ["(median, sigma) or (mean, cv)"]),
    "block_unknown_service": lambda t: _ext(t, "blk", "blocks:\n  OR1: {mon: dentistry}\n",
                                            "blocks.OR1.mon.service", ["unknown service 'dentistry'"]),
    "block_unknown_room": lambda t: _ext(t, "blk_room", "blocks:\n  OR99: {mon: general}\n",
                                         "blocks.OR99", ["unknown room", "OR1"]),
    "surgeon_unknown_service": lambda t: _ext(
        t, "sgn", "surgeons:\n  - {id: dr_who, service: timetravel}\n",
        "surgeons[dr_who].service", ["unknown service 'timetravel'"]),
    "tray_not_in_inventory": lambda t: _ext(
        t, "tray", "services:\n  - id: ent\n    procedures:\n"
        "      - {id: tonsillectomy, trays: [ent_basic, laser]}\n",
        "services[ent].procedures[tonsillectomy].trays", ["'laser' not in spd.inventory"]),
    "duplicate_room_id": lambda t: _mutated(
        t, "dup", lambda d: d["rooms"].append(dict(d["rooms"][0])), "rooms", ["duplicate id 'OR1'"]),
    "missing_required_role": lambda t: _mutated(
        t, "no_scrub", lambda d: d["staff"].pop("scrub"), "staff.scrub", ["required role is missing"]),
    "missing_required_section": lambda t: _mutated(
        t, "no_pacu", lambda d: d.pop("pacu"), "pacu", ["required field is missing"]),
    "extends_not_a_string": lambda t: (
        _load(p := write(t / "ext_int.yaml", "extends: 3\nname: x\n")), p, "extends",
        ["expected a file name"]),
    "extends_missing_file": lambda t: (
        _load(write(t / "orphan.yaml", "extends: nowhere.yaml\nname: orphan\n")),
        t / "orphan.yaml", "extends", ["nowhere.yaml", "not found"]),
    "booked_list_missing_column": _booked_missing_column,
    "booked_list_unknown_surgeon": _booked_unknown_surgeon,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_naming_file_field_and_expectation(tmp_path: Path, case: str) -> None:
    trigger, file, field, words = BAD_INPUTS[case](tmp_path)
    with pytest.raises(ScenarioError) as ei:
        trigger()
    err = ei.value
    msg = str(err)
    assert "\n" not in msg and msg.strip() == msg
    assert err.file == str(file)
    assert err.field == field
    prefix = f"{file}: {field}: " if field else f"{file}: "
    assert msg.startswith(prefix), msg
    assert msg[len(prefix):] == err.message and err.message
    for w in words:
        assert w in err.message, (w, msg)


def test_extends_missing_file_names_the_extending_file(tmp_path: Path) -> None:
    p = write(tmp_path / "orphan.yaml", "extends: nowhere.yaml\nname: orphan\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    assert ei.value.file == str(p) and ei.value.field == "extends"
    assert "nowhere.yaml" in str(ei.value)


def test_validation_error_of_a_chain_names_the_leaf_file(tmp_path: Path) -> None:
    mid = write(tmp_path / "mid.yaml", f"extends: {BASELINE}\nname: mid\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: mid.yaml\nname: leaf\npacu: {beds: -3}\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(leaf)
    assert ei.value.file == str(leaf) and ei.value.field == "pacu.beds"
    load_scenario(mid)  # the parent alone is fine


def test_from_mapping_default_source_and_shortened_horizon(base: Scenario) -> None:
    with pytest.raises(ScenarioError) as ei:
        from_mapping({**base.model_dump(by_alias=True), "horizon_days": 0})
    assert str(ei.value).startswith("<scenario>: horizon_days: expected greater than")
    short = from_mapping({**base.model_dump(by_alias=True), "horizon_days": 2})
    assert short.horizon_days == 2
    assert short.model_dump(exclude={"horizon_days"}) == base.model_dump(exclude={"horizon_days"})
