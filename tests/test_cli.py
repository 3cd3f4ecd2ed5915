"""The ``ortwin`` command: help, validate, run, bad values, outputs and reproducibility."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers_scn import (
    BASELINE,
    BOOKED_ROWS,
    ROOT,
    SCENARIO_FILES,
    booked_csv,
    extending,
    one_line,
    run_cli,
    write,
)

OUTPUTS = ["manifest.json", "parts", "replications.parquet", "summary.csv", "summary.parquet"]
PART_TABLES = ["cases", "events", "replications", "room_days", "services"]


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ortwin.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _bad_booked_list(tmp_path: Path) -> Path:
    rows = [BOOKED_ROWS[0], [*BOOKED_ROWS[1][:2], "dr_nobody", *BOOKED_ROWS[1][3:]]]
    booked_csv(tmp_path / "list.csv", rows)
    return extending(tmp_path, "booked", "booking: {booked_list: list.csv}\n")


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["--help"], ["run", "validate", "digital twin"]),
    (["run", "--help"], ["SCENARIO", "--policy", "--reps", "--seed", "--workers", "--out",
                         "--days", "as-booked"]),
    (["validate", "--help"], ["SCENARIO"]),
])
def test_help_exits_0_and_describes_options(capsys: pytest.CaptureFixture[str], argv: list[str],
                                            words: list[str]) -> None:
    assert run_cli(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("usage: ortwin")
    for w in words:
        assert w in out, w


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli([]) == 2
    line = one_line(capsys.readouterr().err)
    assert "required" in line and "COMMAND" in line


# --- validate ---------------------------------------------------------------------------------


def test_validate_all_shipped_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["validate", *map(str, SCENARIO_FILES)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == len(SCENARIO_FILES)
    for path, line in zip(SCENARIO_FILES, lines, strict=True):
        assert line.startswith(f"{path}: OK ({path.stem}: ")


def test_validate_with_one_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = extending(tmp_path, "bad", "pacu: {beds: many}\n")
    files = [str(SCENARIO_FILES[0]), str(bad), str(BASELINE)]
    assert run_cli(["validate", *files]) == 2
    out, err = capsys.readouterr()
    assert one_line(err) == f"{bad}: pacu.beds: expected a valid integer, unable to parse string as an integer"
    assert out.splitlines() == [ln for ln in out.splitlines() if ": OK (" in ln]
    assert len(out.splitlines()) == 2  # the good files are still checked and reported


def test_validate_subprocess_bad_file_has_no_traceback(tmp_path: Path) -> None:
    bad = extending(tmp_path, "bad", "rooms:\n  - id: OR1\n    hours: {mon: {start: '25:99', end: '17:00'}}\n")
    proc = _subprocess("validate", str(BASELINE), str(bad))
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"{bad}: rooms[OR1].hours.mon.start: expected a time 'HH:MM'")
    assert proc.stdout.startswith(f"{BASELINE}: OK (baseline: ")


# --- run --------------------------------------------------------------------------------------


def test_run_writes_all_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    code = run_cli(["run", str(BASELINE), "--days", "2", "--reps", "2", "--out", str(out_dir),
                    "--progress", "off"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    assert out.startswith("scenario baseline | policy as-booked | 2 replications | seed 12345 | 2 days")
    assert "OR utilisation" in out and "Cases completed" in out
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUTS)  # no leftover temp files
    reps = pd.read_parquet(out_dir / "replications.parquet")
    assert len(reps) == 2 and list(reps["rep"]) == [0, 1]
    assert set(reps["scenario"]) == {"baseline"} and set(reps["policy"]) == {"as-booked"}
    assert (reps["cases_completed"] >= 1).all() and reps["utilisation"].between(0, 1.5).all()
    assert sorted(p.name for p in (out_dir / "parts").iterdir()) == PART_TABLES
    events = pd.read_parquet(out_dir / "parts" / "events")  # the whole dataset
    assert set(events["rep"]) == {0, 1}
    assert {"in_room", "out_of_room"} <= set(events["event"])
    cases = pd.read_parquet(out_dir / "parts" / "cases")
    assert set(cases["rep"]) == {0, 1}
    pd.testing.assert_frame_equal(pd.read_parquet(out_dir / "parts" / "replications"), reps)
    summary = pd.read_parquet(out_dir / "summary.parquet")
    csv = pd.read_csv(out_dir / "summary.csv")
    assert list(csv["kpi"]) == list(summary["kpi"]) and "utilisation" in set(summary["kpi"])
    assert summary.set_index("kpi").loc["utilisation", "n"] == 2
    assert summary.set_index("kpi").loc["utilisation", "mean"] == pytest.approx(reps["utilisation"].mean())

    # re-running into the same folder replaces the files and leaves nothing else behind
    assert run_cli(["run", str(BASELINE), "--days", "1", "--reps", "1", "--out", str(out_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUTS)
    assert len(pd.read_parquet(out_dir / "replications.parquet")) == 1
    assert len(pd.read_parquet(out_dir / "parts" / "replications")) == 1  # old parts removed


def test_same_seed_gives_identical_replications(tmp_path: Path) -> None:
    def reps(name: str, *extra: str) -> pd.DataFrame:
        d = tmp_path / name
        assert run_cli(["run", str(BASELINE), "--days", "1", "--reps", "2", "--out", str(d),
                        *extra]) == 0
        return pd.read_parquet(d / "replications.parquet")

    a, b = reps("a", "--seed", "7"), reps("b", "--seed", "7")
    pd.testing.assert_frame_equal(a, b)
    c = reps("c", "--seed", "8")
    assert not a.drop(columns=["rep"]).equals(c.drop(columns=["rep"]))  # the seed matters
    d = reps("d", "--seed", "7", "--workers", "2")
    pd.testing.assert_frame_equal(a, d)  # worker count does not change results


def test_outputs_have_ordinary_permissions(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert run_cli(["run", str(BASELINE), "--days", "1", "--reps", "1",
                        "--out", str(out_dir)]) == 0
        plain = write(tmp_path / "plain.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(plain).st_mode) == 0o644
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    assert len(files) == 4 + len(PART_TABLES)  # manifest, replications, summary x2, one part each
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == stat.S_IMODE(os.stat(plain).st_mode), f


# --- bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--reps", "0"], ["--reps", "at least 1", "0"]),
    (["--reps", "x"], ["--reps", "whole number", "'x'"]),
    (["--seed", "-1"], ["--seed", "non-negative", "-1"]),
    (["--seed", "1.5"], ["--seed", "whole number"]),
    (["--policy", "nope"], ["--policy", "nope", "as-booked"]),
    (["--workers", "0"], ["--workers", "at least 1"]),
    (["--days", "0"], ["--days", "at least 1"]),
])
def test_bad_option_values_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], words: list[str]) -> None:
    out_dir = tmp_path / "out"
    assert run_cli(["run", str(BASELINE), *args, "--out", str(out_dir)]) == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line.startswith("ortwin run: error: ")
    for w in words:
        assert w in line, w
    assert out == "" and not out_dir.exists()


def test_missing_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    out_dir = tmp_path / "out"
    assert run_cli(["run", str(missing), "--out", str(out_dir)]) == 2
    out, err = capsys.readouterr()
    assert one_line(err) == f"ortwin: {missing}: file not found"
    assert out == "" and not out_dir.exists()


def test_out_pointing_at_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = write(tmp_path / "results", "keep me")
    assert run_cli(["run", str(BASELINE), "--days", "1", "--reps", "1", "--out", str(target)]) == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line == f"ortwin: --out {target}: expected a directory, {target} is a file"
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_out_under_a_file_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = write(tmp_path / "results", "keep me")
    assert run_cli(["run", str(BASELINE), "--days", "1", "--reps", "1",
                    "--out", str(target / "sub")]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"ortwin: --out {target / 'sub'}: expected a directory, {target} is a file"
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("kind", ["invalid_field", "bad_booked_list"])
def test_bad_scenario_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     kind: str) -> None:
    if kind == "invalid_field":
        scn = extending(tmp_path, "bad", "pacu: {beds: -1}\n")
        expected = f"ortwin: {scn}: pacu.beds: expected greater than or equal to 0"
    else:  # valid YAML, but the booked list fails when the run starts
        scn = _bad_booked_list(tmp_path)
        expected = f"ortwin: {tmp_path / 'list.csv'}: row 3: surgeon: unknown surgeon 'dr_nobody'"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert run_cli(["run", str(scn), "--days", "1", "--reps", "1", "--out", str(out_dir)]) == 2
    assert one_line(capsys.readouterr().err) == expected
    assert list(out_dir.iterdir()) == []  # nothing written, not even temporary files


def test_run_subprocess_error_during_the_run_has_no_traceback(tmp_path: Path) -> None:
    scn = _bad_booked_list(tmp_path)  # valid YAML; the booked list fails when the run starts
    proc = _subprocess("run", str(scn), "--days", "1", "--reps", "1", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        f"ortwin: {tmp_path / 'list.csv'}: row 3: surgeon: unknown surgeon 'dr_nobody'")
    assert proc.stdout == "" and not (tmp_path / "out").exists()


def test_run_with_workers_reports_booked_list_error_cleanly(tmp_path: Path) -> None:
    scn = _bad_booked_list(tmp_path)
    proc = _subprocess("run", str(scn), "--days", "1", "--reps", "2", "--workers", "2",
                       "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-300:]
    assert "unknown surgeon 'dr_nobody'" in one_line(proc.stderr)


def test_days_shorter_than_planned_downtime_is_a_clean_outcome(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # room_downtime.yaml plans downtime on day 3; --days 2 must either run or fail cleanly
    path = ROOT / "scenarios" / "room_downtime.yaml"
    code = run_cli(["run", str(path), "--days", "2", "--reps", "1", "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    if code == 0:
        assert "OR utilisation" in out and (tmp_path / "o" / "replications.parquet").exists()
    else:
        assert code == 2
        line = one_line(err)
        assert line.startswith(f"ortwin: {path}: rooms[OR2].downtime[0].day: ")
        assert not (tmp_path / "o").exists()
