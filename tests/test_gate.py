"""``ortwin gate`` and :mod:`ortwin.gate`: the shipped gates files, JUnit XML and markdown, the
relative-gate arithmetic in both directions, bad input (exit 2, one line) and atomic outputs."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers_scn import BASELINE, ROOT, one_line, run_cli, write

from ortwin.experiment import run_experiment
from ortwin.gate import GateError, load_gates, relative_threshold
from twin.scenario import load_scenario, with_horizon

GATES = ROOT / "gates"
RELEASE = GATES / "release.yaml"
FAILING = GATES / "failing_example.yaml"
OUT_FILES = ["gate_results.parquet", "replications.parquet", "summary.csv", "summary.parquet"]
REGENERATE = ("if a model change is intended, regenerate the baseline with "
              "`.venv/bin/python gates/make_baseline.py` and review the diff")


def _junit(path: Path) -> tuple[ET.Element, list[ET.Element], list[ET.Element]]:
    root = ET.parse(path).getroot()
    return root, root.findall("./testsuite/testcase"), root.findall("./testsuite/testcase/failure")


def _gate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_cli(["gate", *args, "--progress", "off"])
    out, err = capsys.readouterr()
    return code, out, err


# --- the shipped gates files ------------------------------------------------------------------


def test_release_gates_pass_and_write_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # paths in the gates file are relative to the file, not the cwd
    n = len(yaml.safe_load(RELEASE.read_text())["gates"])
    code, out, err = _gate([str(RELEASE), "--out", "res", "--junit", "reports/junit.xml",
                            "--markdown", "reports/gates.md"], capsys)
    assert code == 0, f"{out}\n{err}\n{REGENERATE}"
    assert err == ""
    lines = out.splitlines()
    assert sum(ln.startswith("PASS  ") for ln in lines) == n
    assert f"{n} gates: {n} passed, 0 failed" in lines

    root, cases, failures = _junit(tmp_path / "reports" / "junit.xml")
    assert root.tag == "testsuites"
    assert root.get("tests") == str(n) and root.get("failures") == "0"
    assert len(cases) == n and failures == []
    suites = root.findall("testsuite")
    arms = sorted({(g["scenario"], g["policy"])
                   for g in yaml.safe_load(RELEASE.read_text())["gates"]})
    assert sorted(s.get("name") for s in suites) == [f"{sc} / {po}" for sc, po in arms]
    assert {"ml-cpsat", "rules", "as-booked"} <= {po for _, po in arms}
    assert sum(int(s.get("tests")) for s in suites) == n

    md = (tmp_path / "reports" / "gates.md").read_text()
    assert md.startswith("## ORTwin gates: release.yaml: all passed")
    assert sum(ln.startswith("| pass |") for ln in md.splitlines()) == n
    assert "FAIL" not in md

    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == OUT_FILES
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["gates.md", "junit.xml"]
    results = pd.read_parquet(tmp_path / "res" / "gate_results.parquet")
    assert len(results) == n and results["passed"].all()
    assert set(results["kind"]) == {"absolute", "relative", "versus"}
    reps = pd.read_parquet(tmp_path / "res" / "replications.parquet")
    runs = load_gates(RELEASE).arms()  # the gates' arms plus manual, the other side of versus
    assert len(runs) > len(arms) and set(runs) >= set(arms)
    assert len(reps) == len(runs) * 4 and set(reps["rep"]) == {0, 1, 2, 3}  # reps 4, days 2


def test_failing_example_exits_1_with_one_failure(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _gate([str(FAILING), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and err == ""
    assert [ln for ln in out.splitlines() if ln.startswith("FAIL  ")] == [
        "FAIL  deliberately failing - mean utilisation >= 95%: mean of utilisation "
        f"(baseline, as-booked) = {_utilisation():.6g}; not >= 0.95"]
    assert "3 gates: 2 passed, 1 failed" in out
    root, cases, failures = _junit(tmp_path / "o" / "junit.xml")  # default place: DIR/junit.xml
    assert root.get("tests") == "3" and root.get("failures") == "1" and len(cases) == 3
    assert len(failures) == 1
    assert failures[0].get("type") == "GateFailed"
    assert "not >= 0.95" in failures[0].get("message")
    failed_case = next(c for c in cases if c.find("failure") is not None)
    assert failed_case.get("name") == "deliberately failing - mean utilisation >= 95%"
    md = (tmp_path / "o" / "gates.md").read_text()
    assert md.startswith("## ORTwin gates: failing_example.yaml: 1 of 3 failed")
    assert md.count("| **FAIL** |") == 1 and "### Failures" in md


def _utilisation() -> float:
    base = pd.read_csv(GATES / "baseline_summary.csv")
    row = base[(base.scenario == "baseline") & (base.kpi == "utilisation")]
    return float(row["mean"].iloc[0])


# --- relative gates ---------------------------------------------------------------------------


def test_relative_threshold_arithmetic() -> None:
    assert relative_threshold(100.0, "lower", 0.03) == ("<=", pytest.approx(103.0))
    assert relative_threshold(100.0, "lower", 0.03, 5) == ("<=", pytest.approx(108.0))
    assert relative_threshold(0.5, "higher", 0.10) == (">=", pytest.approx(0.45))
    assert relative_threshold(0.5, "higher", 0.10, 0.05) == (">=", pytest.approx(0.40))
    assert relative_threshold(-20.0, "lower", 0.5) == ("<=", pytest.approx(-10.0))  # |baseline|
    assert relative_threshold(0.0, "lower", 0.03, 2) == ("<=", 2.0)


SETTINGS = {"reps": 2, "seed": 5, "days": 1}


@pytest.fixture(scope="module")
def actual() -> pd.DataFrame:
    """Summary of baseline/as-booked under SETTINGS (what the gate run will find)."""
    scn = with_horizon(load_scenario(BASELINE), SETTINGS["days"])
    res = run_experiment(scn, "as-booked", SETTINGS["reps"], SETTINGS["seed"], keep_events=False)
    return res.summary.set_index("kpi")


def _gates_file(tmp_path: Path, gates: list[dict], baseline: str | None = "base.csv",
                **extra: object) -> Path:
    data = {**SETTINGS, **({"baseline": baseline} if baseline else {}),
            "scenarios": {"base": str(BASELINE)}, **extra,
            "gates": [{"scenario": "base", "policy": "as-booked", **g} for g in gates]}
    return write(tmp_path / "g.yaml", yaml.safe_dump(data, sort_keys=False))


def _baseline_csv(tmp_path: Path, actual: pd.DataFrame, values: dict[tuple[str, str], float]) -> None:
    df = actual.reset_index()
    for (kpi, stat), v in values.items():
        df.loc[df["kpi"] == kpi, stat] = v
    df.to_csv(tmp_path / "base.csv", index=False)


CASES = [  # kpi, stat, baseline = actual * factor, better
    ("overtime_minutes", "mean", 1 / 1.05, "lower"),  # actual 5% above baseline: worse
    ("cost_total", "p90", 1 / 1.05, "lower"),
    ("utilisation", "mean", 1 / 0.95, "higher"),      # actual 5% below baseline: worse
    ("cases_completed", "p50", 1 / 0.95, "higher"),
]


def test_relative_gates_fail_when_worse_than_tolerance_in_both_directions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], actual: pd.DataFrame) -> None:
    gates, worse, better = [], {}, {}
    for kpi, stat, factor, _ in CASES:
        a = float(actual.loc[kpi, stat])
        assert a > 0
        worse[(kpi, stat)], better[(kpi, stat)] = a * factor, a / factor
        gates += [{"kpi": kpi, "stat": stat, "relative": {"tolerance": t}}
                  for t in (0.03, "4.5%", 0.06)]
        gates += [{"kpi": kpi, "stat": stat, "relative": {"tolerance": 0.0, "slack": 0.06 * a}},
                  {"kpi": kpi, "stat": stat, "relative": {"tolerance": 0.0}}]
    path = _gates_file(tmp_path, gates)
    _baseline_csv(tmp_path, actual, worse)
    code, out, _ = _gate([str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    results = pd.read_parquet(tmp_path / "o" / "gate_results.parquet")
    for i, (kpi, stat, _, direction) in enumerate(CASES):
        r = results.iloc[5 * i: 5 * i + 5]
        assert set(r["kpi"]) == {kpi} and set(r["stat"]) == {stat}
        # 5% worse: 3% and 4.5% fail, 6% or enough slack passes, no tolerance fails
        assert list(r["passed"]) == [False, False, True, True, False], kpi
        assert set(r["op"]) == {"<=" if direction == "lower" else ">="}
        assert r["baseline"].tolist() == pytest.approx([worse[(kpi, stat)]] * 5)
        assert r["actual"].tolist() == pytest.approx([float(actual.loc[kpi, stat])] * 5)
    assert out.count("(5.00% worse)") == len(gates)

    # a baseline the run beats passes even with no tolerance at all
    _baseline_csv(tmp_path, actual, better)
    code, out, _ = _gate([str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, out
    assert out.count("% better)") == len(gates)


def test_relative_gate_uses_its_own_baseline_file_and_policy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], actual: pd.DataFrame) -> None:
    other = actual.reset_index().assign(policy="as-booked")
    other.loc[other["kpi"] == "overtime_minutes", "mean"] = 1e9
    other.to_csv(tmp_path / "other.csv", index=False)
    gates = _gates_file(tmp_path, [
        {"kpi": "overtime_minutes", "relative": {"tolerance": 0, "baseline": "other.csv",
                                                 "policy": "as-booked"}},
        {"kpi": "overtime_minutes", "op": "<", "value": 1e9}], baseline=None)
    code, out, err = _gate([str(gates), "--out", str(tmp_path / "o")], capsys)
    assert (code, err) == (0, ""), out


def test_make_baseline_script_writes_what_the_gates_compare_with(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    script = runpy.run_path(str(GATES / "make_baseline.py"))
    gates = _gates_file(tmp_path, [{"kpi": k, "stat": "p90", "relative": {"tolerance": 0}}
                                   for k in ("overtime_minutes", "utilisation")])
    assert script["main"]([str(gates)]) == 0  # writes the file's baseline: base.csv
    assert (tmp_path / "base.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.csv", "g.yaml"]
    capsys.readouterr()
    code, out, _ = _gate([str(gates), "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and out.count("(same)") == 2, out


# --- bad input --------------------------------------------------------------------------------

GOOD = {"kpi": "overtime_minutes", "stat": "p90", "op": "<=", "value": 1e6}


@pytest.mark.parametrize("case, field", [
    ("bad_yaml", "line "),
    ("unknown_kpi", "gates[1].kpi: unknown KPI 'overtime'"),
    ("unknown_stat", "gates[1].stat: expected one of 'mean', 'p50', 'p90', 'p95', 'cvar95'"),
    ("missing_baseline", "baseline: baseline file "),
    ("unknown_policy", "gates[1].policy: unknown policy 'nope'"),
    ("unknown_field", "gates[1].threshold: unknown field"),
    ("unknown_scenario", "gates[1].scenario: unknown scenario 'stress'"),
    ("both_kinds", "gates[1]: expected either op and value (absolute) or relative, not both"),
    ("bad_operator", "gates[1].op: expected one of '<=', '<', '>=', '>'"),
    ("bad_tolerance", "gates[1].relative.tolerance: expected a fraction from 0 to 1"),
    ("no_baseline_row", "gates[1]: no row for scenario 'baseline', policy 'as-booked', kpi"),
    ("missing_scenario_file", "scenarios.base: scenario file nowhere.yaml not found"),
    ("missing_gates_file", ""),
    ("no_gates", "gates: expected at least 1 item(s)"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         actual: pd.DataFrame, case: str, field: str) -> None:
    _baseline_csv(tmp_path, actual, {})
    second = dict(GOOD)
    if case == "unknown_kpi":
        second["kpi"] = "overtime"
    elif case == "unknown_stat":
        second["stat"] = "p99"
    elif case == "missing_baseline":
        second = {"kpi": "utilisation", "relative": {"tolerance": 0.03}}
    elif case == "unknown_policy":
        second["policy"] = "nope"
    elif case == "unknown_field":
        second["threshold"] = 3
    elif case == "unknown_scenario":
        second["scenario"] = "stress"
    elif case == "both_kinds":
        second["relative"] = {"tolerance": 0.03}
    elif case == "bad_operator":
        second["op"] = "=="
    elif case == "bad_tolerance":
        second = {"kpi": "utilisation", "relative": {"tolerance": 3}}
    elif case == "no_baseline_row":
        pd.read_csv(tmp_path / "base.csv").query("kpi != 'utilisation'").to_csv(
            tmp_path / "base.csv", index=False)
        second = {"kpi": "utilisation", "relative": {"tolerance": 0.03}}
    path = _gates_file(tmp_path, [GOOD, second],
                       baseline="gone.csv" if case == "missing_baseline" else "base.csv")
    if case == "bad_yaml":
        write(path, path.read_text() + "gates: [\n")
    elif case == "missing_scenario_file":
        write(path, path.read_text().replace(str(BASELINE), "nowhere.yaml"))
    elif case == "missing_gates_file":
        path = tmp_path / "absent.yaml"
    elif case == "no_gates":
        write(path, yaml.safe_dump({"scenarios": {"base": str(BASELINE)}, "gates": []}))
    out_dir, junit = tmp_path / "o", tmp_path / "j.xml"
    code, out, err = _gate([str(path), "--out", str(out_dir), "--junit", str(junit)], capsys)
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"ortwin: {path}: {field}"), line
    if case == "missing_gates_file":
        assert line == f"ortwin: {path}: file not found"
    assert out == "" and not out_dir.exists() and not junit.exists()
    with pytest.raises(GateError):
        load_gates(path)


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    path = _gates_file(tmp_path, [{**GOOD, "kpi": "nope"}], baseline=None)
    proc = subprocess.run([sys.executable, "-m", "ortwin.cli", "gate", str(path), "--out",
                           str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith(f"ortwin: {path}: gates[0].kpi: unknown KPI 'nope'")
    assert proc.stdout == "" and not (tmp_path / "o").exists()


def test_bad_scenario_file_names_the_scenario(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "bad.yaml", f"extends: {BASELINE}\nname: bad\npacu: {{beds: many}}\n")
    path = write(tmp_path / "g.yaml", yaml.safe_dump({
        "scenarios": {"bad": "bad.yaml"},
        "gates": [{"scenario": "bad", "policy": "as-booked", **GOOD}]}))
    code, out, err = _gate([str(path)], capsys)
    assert code == 2
    assert one_line(err).startswith(f"ortwin: {bad}: pacu.beds: expected a valid integer")


def test_output_path_that_is_a_file_exits_2(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    blocker = write(tmp_path / "blocker", "keep")
    path = _gates_file(tmp_path, [GOOD], baseline=None)
    code, _, err = _gate([str(path), "--out", str(tmp_path / "o"), "--junit",
                          str(blocker / "j.xml")], capsys)
    assert code == 2
    assert one_line(err) == (f"ortwin: --junit {blocker / 'j.xml'}: expected a directory, "
                             f"{blocker} is a file")
    assert not (tmp_path / "o").exists() and blocker.read_text() == "keep"


# --- nothing half-written ---------------------------------------------------------------------


def test_a_failed_write_leaves_no_partial_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = _gates_file(tmp_path, [GOOD], baseline=None)
    out_dir = tmp_path / "o"
    assert _gate([str(path), "--out", str(out_dir)], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert sorted(before) == sorted([*OUT_FILES, "gates.md", "junit.xml"])

    real = pd.DataFrame.to_parquet

    def half_then_fail(self: pd.DataFrame, target: str, *args: object, **kw: object) -> None:
        real(self.iloc[: max(1, len(self) // 2)], target, *args, **kw)
        Path(target).write_bytes(Path(target).read_bytes()[:100])  # a torn file ...
        raise OSError(28, "No space left on device", target)      # ... then the disk is full

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_then_fail)
    write(path, path.read_text().replace("seed: 5", "seed: 6"))
    code, _, err = _gate([str(path), "--out", str(out_dir)], capsys)
    assert code == 2
    assert "No space left on device" in one_line(err)
    after = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert after == before  # old files intact, no temporary files left behind
