"""``ortwin compare`` and :mod:`ortwin.compare`: per-scenario tables, files, paired differences
(common random numbers), the reference policy and bad input.

Policies come from the registry at call time. Besides ``as-booked`` (always there) and
``manual``/``rules`` when they are registered, the tests register two policies of their own:
``half`` (runs every other booked case, so it really differs) and an exact copy of as-booked.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_scn import BASELINE, SCENARIOS_DIR, one_line, run_cli

from ortwin.compare import (
    DEFAULT_KPIS,
    DIFF_COLUMNS,
    VERDICTS,
    CompareError,
    compare,
    default_reference,
    differences,
    format_comparison,
    resolve_policies,
)
from ortwin.registry import POLICIES
from ortwin.summary import paired_difference
from policies.as_booked import AsBooked
from twin.kpis import kpi_def
from twin.scenario import load_scenario, with_horizon

PACU = SCENARIOS_DIR / "pacu_closed_beds.yaml"
FILES = ["differences.csv", "differences.parquet", "manifest.json", "parts",
         "replications.parquet", "summary.csv", "summary.parquet"]


class _Half(AsBooked):
    """As booked, but only every other planned case runs (omitted cases are not done)."""

    def plan_day(self, day, cases, view):
        return super().plan_day(day, cases, view)[::2]


@pytest.fixture
def half(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(POLICIES, "half", lambda scn: _Half())
    return "half"


def _short(path: Path, days: int = 1):
    return with_horizon(load_scenario(path), days, str(path))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# --- the command ------------------------------------------------------------------------------


def test_cli_prints_per_scenario_tables_and_writes_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], half: str) -> None:
    others = [p for p in ("manual", "rules") if p in POLICIES]
    pols = ["as-booked", *others, half]
    ref = "manual" if "manual" in pols else "as-booked"
    out_dir = tmp_path / "cmp"
    argv = ["compare", "--scenarios", str(BASELINE), str(PACU), "--policies", ",".join(pols),
            "--reps", "2", "--days", "1", "--out", str(out_dir), "--progress", "off"]
    assert run_cli(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    blocks = out.split("\n\n")
    assert blocks[0].startswith(f"scenario baseline | policies {', '.join(pols)} | reference "
                                f"{ref} | 2 replications | seed 12345 | 1 days")
    assert blocks[1].startswith("scenario pacu_closed_beds | ")
    for block in blocks[:2]:
        assert f"diff vs {ref}" in block and "95% CI" in block
        assert block.count("(reference)") == len(DEFAULT_KPIS)
        for k in DEFAULT_KPIS:
            assert kpi_def(k).label in block
        lines = block.splitlines()
        at = lines[1].index("policy")
        col = [ln[at:].split()[0] for ln in lines[3:]]  # the policy column
        assert col == pols * len(DEFAULT_KPIS)
    assert f"results written to {out_dir}/ (replications, summary, differences, manifest.json, " \
           f"parts/ dataset); report: ortwin report {out_dir}" in out
    assert sorted(p.name for p in (out_dir / "parts").iterdir()) == [
        "replications", "room_days", "services"]  # --events none: no event logs

    assert sorted(p.name for p in out_dir.iterdir()) == FILES  # nothing else, no temp files
    reps = pd.read_parquet(out_dir / "replications.parquet")
    assert len(reps) == 2 * len(pols) * 2
    for (_, _), g in reps.groupby(["scenario", "policy"]):
        assert list(g["rep"]) == [0, 1]  # the same replications for every arm
    summary = pd.read_parquet(out_dir / "summary.parquet")
    assert set(map(tuple, summary[["scenario", "policy"]].drop_duplicates().to_numpy())) == {
        (s, p) for s in ("baseline", "pacu_closed_beds") for p in pols}
    assert list(pd.read_csv(out_dir / "summary.csv")["kpi"]) == list(summary["kpi"])
    diffs = pd.read_parquet(out_dir / "differences.parquet")
    assert list(diffs.columns) == list(DIFF_COLUMNS)
    nkpi = summary["kpi"].nunique()
    assert len(diffs) == 2 * (len(pols) - 1) * nkpi
    assert set(diffs["reference"]) == {ref} and ref not in set(diffs["policy"])
    assert set(diffs["verdict"]) <= set(VERDICTS)
    assert diffs["excludes_zero"].dtype == bool
    assert (diffs["excludes_zero"] == (diffs["verdict"] != "inconclusive")).all()
    assert len(pd.read_csv(out_dir / "differences.csv")) == len(diffs)

    # a second run into the same folder replaces the files and leaves nothing else behind
    assert run_cli(["compare", "--scenarios", str(BASELINE), "--policies", "as-booked",
                    "--reps", "1", "--days", "1", "--out", str(out_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == FILES
    assert len(pd.read_parquet(out_dir / "replications.parquet")) == 1
    assert pd.read_parquet(out_dir / "differences.parquet").empty


def test_kpis_option_chooses_the_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["compare", "--scenarios", str(BASELINE), "--policies", "as-booked",
                    "--reps", "1", "--days", "1", "--kpis", "cases_completed, pacu_hold_minutes",
                    "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[0].splitlines()[3:]
    assert [ln.split("  ")[0] for ln in table] == ["Cases completed", "PACU hold in OR"]


# --- paired differences -----------------------------------------------------------------------


def test_differences_equal_paired_difference(half: str) -> None:
    comp = compare([_short(BASELINE), _short(PACU)], ["as-booked", half], reps=3, seed=7,
                   reference="as-booked")
    reps = comp.replications
    assert comp.reference == "as-booked" and comp.policies == ("as-booked", half)
    assert list(comp.runs["seed"]) == [7, 7]
    assert len(comp.differences) == 2 * reps.drop(columns=["scenario", "policy", "rep"]).shape[1]
    for r in comp.differences.itertuples(index=False):
        sub = reps[reps["scenario"] == r.scenario]
        mean, lo, hi = paired_difference(sub, r.kpi, half, "as-booked")
        assert _same(r.mean_diff, mean) and _same(r.ci_low, lo) and _same(r.ci_high, hi), r
        a = sub[sub["policy"] == half].set_index("rep")[r.kpi]
        b = sub[sub["policy"] == "as-booked"].set_index("rep")[r.kpi]
        assert r.n == int(((a - b).notna()).sum())
    cc = comp.differences.set_index(["scenario", "kpi"]).loc[("baseline", "cases_completed")]
    assert cc["mean_diff"] < 0 and cc["verdict"] == "worse"  # half the electives: fewer cases
    text = format_comparison(comp)
    assert "worse" in text and text.count("(reference)") == 2 * len(DEFAULT_KPIS)


def test_differences_on_a_frame_pair_on_rep_and_skip_missing_values() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for scenario in ("s1", "s2"):
        for policy, shift in (("ref", 0.0), ("up", 5.0)):
            for rep in rng.permutation(6):  # stored out of order: pairing is on rep
                base = 100.0 + 10 * rep + rng.normal()
                rows.append([scenario, policy, int(rep), base + shift,  # cases_completed
                             base + shift,                             # overtime_minutes
                             np.nan if (policy == "up" and rep == 2) else base])  # utilisation
    reps = pd.DataFrame(rows, columns=["scenario", "policy", "rep", "cases_completed",
                                       "overtime_minutes", "utilisation"])
    d = differences(reps, ["ref", "up"], "ref").set_index(["scenario", "kpi"])
    for scenario in ("s1", "s2"):
        sub = reps[reps["scenario"] == scenario]
        for kpi in ("cases_completed", "overtime_minutes", "utilisation"):
            assert tuple(d.loc[(scenario, kpi), ["mean_diff", "ci_low", "ci_high"]]) == \
                paired_difference(sub, kpi, "up", "ref")
        assert d.loc[(scenario, "cases_completed"), "verdict"] == "better"   # higher is better
        assert d.loc[(scenario, "overtime_minutes"), "verdict"] == "worse"   # lower is better
        assert d.loc[(scenario, "utilisation"), "n"] == 5                    # one NaN dropped
        assert d.loc[(scenario, "cases_completed"), "n"] == 6


def test_identical_policies_differ_by_exactly_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POLICIES, "as-booked-copy", POLICIES["as-booked"])
    comp = compare([_short(BASELINE)], ["as-booked", "as-booked-copy"], reps=3)
    a = comp.replications[comp.replications["policy"] == "as-booked"].drop(columns="policy")
    b = comp.replications[comp.replications["policy"] == "as-booked-copy"].drop(columns="policy")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    d = comp.differences[comp.differences["n"] >= 2]
    assert len(d) >= len(comp.differences) - 3  # almost every KPI has values
    assert (d["mean_diff"] == 0.0).all()
    assert (d["ci_low"] == 0.0).all() and (d["ci_high"] == 0.0).all()  # zero width
    assert set(d["verdict"]) == {"inconclusive"} and not d["excludes_zero"].any()


# --- reference policy -------------------------------------------------------------------------


def test_reference_is_manual_when_compared_else_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_reference(["rules", "manual", "ml-cpsat"]) == "manual"
    assert default_reference(["rules", "ml-cpsat"]) == "rules"
    if "manual" not in POLICIES:
        monkeypatch.setitem(POLICIES, "manual", POLICIES["as-booked"])
    assert resolve_policies(["as-booked", "manual"]) == (("as-booked", "manual"), "manual")
    assert resolve_policies(["as-booked", "manual"], "as-booked")[1] == "as-booked"
    assert resolve_policies(["as-booked"]) == (("as-booked",), "as-booked")
    with pytest.raises(CompareError, match="--reference: 'x' is not one of"):
        resolve_policies(["as-booked"], "x")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, start", [
    (["--policies", "nope"], "ortwin: --policies: unknown policy 'nope' (expected one of "),
    (["--policies", "as-booked,as-booked"], "ortwin: --policies: policy 'as-booked' is listed twice"),
    (["--policies", ","], "ortwin: --policies: expected at least one policy"),
    (["--policies", "as-booked", "--reference", "manual"],
     "ortwin: --reference: 'manual' is not one of the compared policies (as-booked)"),
    (["--kpis", "nope"], "ortwin: --kpis: unknown KPI 'nope'"),
    (["--reps", "0"], "ortwin compare: error: argument --reps: --reps expects a number of at least 1"),
    (["--scenarios", str(BASELINE), str(BASELINE)], "ortwin: --scenarios "),
    (["--scenarios", "missing.yaml"], "ortwin: missing.yaml: file not found"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         args: list[str], start: str) -> None:
    out_dir = tmp_path / "out"
    scen = [] if "--scenarios" in args else ["--scenarios", str(BASELINE)]
    assert run_cli(["compare", *scen, "--days", "1", "--reps", "1", *args,
                    "--out", str(out_dir)]) == 2
    out, err = capsys.readouterr()
    assert one_line(err).startswith(start)
    assert out == "" and not out_dir.exists()


def test_out_pointing_at_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "results"
    target.write_text("keep me")
    assert run_cli(["compare", "--scenarios", str(BASELINE), "--days", "1", "--reps", "1",
                    "--out", str(target)]) == 2
    out, err = capsys.readouterr()
    assert one_line(err) == f"ortwin: --out {target}: expected a directory, {target} is a file"
    assert out == "" and target.read_text() == "keep me"
