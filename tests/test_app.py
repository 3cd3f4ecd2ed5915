"""The what-if app driven by Streamlit's AppTest: a lever changes the scenario, a run shows
tables and charts whose numbers equal the API's for the same inputs, moving between pages never
reruns the simulation, and bad uploads or levers show a message, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ortwin.compare import compare, scenario_effects
from ortwin.report import kpi_table
from twin.levers import Levers, apply_levers
from twin.scenario import load_scenario

TIMEOUT = 300
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def _page(at: AppTest, name: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, at.exception
    return at


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}")


def _charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs on the page, each with its datasets (which Streamlit ships as Arrow
    beside the spec) put back as ``spec["datasets"][name]`` frames."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for e in at.main:
        if getattr(e, "type", "") == "vega_lite_chart":
            spec = json.loads(e.proto.spec)
            spec["datasets"] = {d.name: convert_arrow_bytes_to_pandas_df(d.data.data)
                                for d in e.proto.datasets}
            out.append(spec)
    return out


@pytest.fixture(scope="module")
def ran():
    """The app after closing PACU beds and running 3 replications of manual."""
    at = _app()
    at.number_input(key="lv_pacu_beds").set_value(8).run()
    diff = _frame(at, "field", "base", "new")
    assert diff.to_dict("records") == [{"change": "PACU beds (opening hours)",
                                        "field": "pacu.beds", "where": "", "base": "15",
                                        "new": "8", "fields": "1"}]
    _page(at, "Run")
    at.multiselect(key="policies").set_value(["manual"]).run()
    at.number_input(key="reps").set_value(3).run()
    at.button(key="run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["results"]["id"] == 1
    _page(at, "Results")
    return at


def test_results_match_the_api_for_the_same_inputs(ran):
    base = load_scenario("scenarios/baseline.yaml")
    whatif = apply_levers(base, Levers(pacu_beds=8))
    direct = compare([base, whatif], ["manual"], reps=3, seed=base.seed)
    shown = _frame(ran, "KPI", "policy", "mean", "P90")
    expected = kpi_table(direct, whatif.name, list(shown["KPI"].map(
        {v: k for k, v in _labels().items()})))
    assert list(shown["KPI"]) == list(expected["KPI"])
    for col in ("mean", "P90", "P95", "CVaR95"):
        assert shown[col].to_numpy() == pytest.approx(_round(expected[col]).to_numpy(),
                                                      rel=1e-9, nan_ok=True)
    eff = _frame(ran, "KPI", "base", "what-if", "difference")
    direct_eff = scenario_effects(direct.replications, "baseline", _kpis(shown))
    assert eff["difference"].to_numpy() == pytest.approx(
        _round(direct_eff["mean_diff"]).to_numpy(), nan_ok=True)
    hold = direct_eff[direct_eff["kpi"] == "pacu_hold_minutes"].iloc[0]
    assert hold["mean"] > hold["base_mean"]  # fewer beds: more holds, shown as the effect
    card = next(m for m in ran.metric if m.label.startswith("PACU hold in OR"))
    assert card.value == f"{hold['mean']:,.0f}" and card.delta.startswith(
        f"{hold['mean_diff']:+,.0f} (")


def test_charts_appear_with_the_run_data(ran):
    specs = _charts(ran)
    assert len(specs) >= 4  # distribution, exceedance, Gantt + PACU, fairness
    text = json.dumps([{k: v for k, v in s.items() if k != "datasets"} for s in specs])
    assert "P(daily overtime > x)" in text and "PACU beds" in text
    dist = next(iter(specs[0]["datasets"].values()))
    reps = ran.session_state["results"]["comp"].replications
    shown = reps[reps["scenario"] == "baseline-whatif"]
    kpi = ran.selectbox(key="dist_kpi").value
    assert sorted(dist[kpi]) == pytest.approx(sorted(shown[kpi]))
    assert set(dist["scenario"]) == {"baseline-whatif"}
    gantt = next(s for s in specs if "vconcat" in s)
    assert any(len(v) > 20 for v in gantt["datasets"].values())  # cases of the day


def test_moving_between_pages_never_reruns(ran):
    before = ran.session_state["results"]
    for page in ("Scenario", "Run", "History", "Results"):
        _page(ran, page)
    assert ran.session_state["results"] is before and ran.session_state["run_count"] == 1
    _page(ran, "Scenario")
    assert ran.number_input(key="lv_pacu_beds").value == 8  # levers kept too
    _page(ran, "Results")


def test_bad_scenario_upload_shows_its_message():
    at = _app()
    at.radio(key="src").set_value("An uploaded file").run()
    # AppTest cannot drive st.file_uploader (tests/test_browser.py uploads in a real browser);
    # the page hands the upload's name and bytes to this loader
    from twin.scenario import ScenarioError, scenario_from_upload

    def load(name: str, data: bytes) -> str:
        with pytest.raises(ScenarioError) as e:
            scenario_from_upload(name, data, "scenarios")
        return str(e.value)

    assert load("bad.yaml", b"extends: baseline.yaml\npacu: {beds: -3}\n") == \
        "bad.yaml: pacu.beds: expected greater than or equal to 0"
    assert load("broken.yaml", b"rooms: [\n").startswith("broken.yaml: line 2: invalid YAML")
    assert load("bin.yaml", b"\xff\xfe\x00") == "bin.yaml: expected a text file, found binary data"
    assert load("orphan.yaml", b"extends: nowhere.yaml\n") == \
        "orphan.yaml: extends: file nowhere.yaml not found"
    ok = scenario_from_upload("mine.yaml", b"extends: baseline.yaml\nname: mine\n", "scenarios")
    assert ok.name == "mine" and ok.rooms == load_scenario("scenarios/baseline.yaml").rooms
    assert not at.exception


def test_invalid_levers_show_a_message_not_a_traceback():
    at = _app()
    at.number_input(key="lv_pacu_beds").set_value(2).run()
    at.selectbox(key="lv_pacu_close_day").set_value("tue").run()
    at.number_input(key="lv_pacu_close_n").set_value(5).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "These levers do not make a valid suite: what-if on baseline: pacu: beds_closed.tue: "
        "expected 0 to 2 (the PACU's beds)"]
    _page(at, "Run")
    assert any("Choose a scenario" in w.value for w in at.warning)


def test_history_page_loads_calibrates_and_replays_a_week():
    import datetime as dt

    from ortwin.replay import replay_week

    at = _app()
    _page(at, "History")
    at.checkbox(key="h_bundled").check().run()
    at.button(key="h_load").click().run()
    assert not at.exception and not at.error
    assert any("rows read" in s.value for s in at.success)
    q = _frame(at, "row", "reasons")
    hist = at.session_state["history"]
    assert len(q) == len(hist.quarantine)
    at.date_input(key="h_asof").set_value(dt.date(2022, 1, 31)).run()
    at.button(key="h_calibrate").click().run()
    assert not at.exception and not at.error
    cal = at.session_state["calibration"]
    assert (cal["report"] / "fit_report.md").is_file()
    assert any(m.value.startswith("**Fit report**") for m in at.markdown)
    assert sum(getattr(e, "type", "") == "image" for e in at.main) >= 1  # fit charts shown
    at.selectbox(key="h_week").set_value("2022-W06").run()
    at.selectbox(key="h_policy").set_value("as-booked").run()
    at.number_input(key="h_reps").set_value(4).run()
    at.button(key="h_replay").click().run()
    assert not at.exception and not at.error
    shown = _frame(at, "kpi", "actual", "p5", "p95")
    direct = replay_week(hist, dt.date(2022, 2, 7), cal["scenario"], "as-booked", 4)
    def tidy(df: pd.DataFrame) -> pd.DataFrame:  # Arrow brings NaN flags back as None
        return df.reset_index(drop=True).assign(
            inside=[None if pd.isna(x) else bool(x) for x in df["inside"]])

    pd.testing.assert_frame_equal(tidy(shown), tidy(direct.table), check_dtype=False)
    at.button(key="h_use").click().run()  # the calibrated suite becomes the what-if base
    _page(at, "Scenario")
    assert at.session_state["base_scn"] == cal["scenario"]


def _labels() -> dict[str, str]:
    from twin.kpis import KPIS

    return {k: d.label for k, d in KPIS.items()}


def _kpis(shown: pd.DataFrame) -> list[str]:
    inv = {v: k for k, v in _labels().items()}
    return list(dict.fromkeys(shown["KPI"].map(inv)))


def _round(s: pd.Series) -> pd.Series:
    from app import _rounded  # the app's display rounding

    return _rounded(s.to_frame("v").astype(float))["v"]


def test_run_on_a_dask_cluster_gives_the_same_results_and_bad_values_say_so():
    at = _app()
    _page(at, "Run")
    at.multiselect(key="policies").set_value(["manual"]).run()
    at.number_input(key="reps").set_value(2).run()
    at.text_input(key="cluster").set_value("yarn://x").run()
    at.button(key="run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "--cluster: expected local, dask, a scheduler address such as tcp://HOST:8786 or a "
        "scheduler file (.json), got 'yarn://x'"]
    assert "results" not in at.session_state
    at.text_input(key="cluster").set_value("dask").run()
    at.number_input(key="workers").set_value(1).run()
    at.button(key="run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    base = load_scenario("scenarios/baseline.yaml")
    direct = compare([base], ["manual"], reps=2, seed=base.seed)
    pd.testing.assert_frame_equal(at.session_state["results"]["comp"].replications,
                                  direct.replications, check_exact=True)


def test_recommended_day_shows_the_plan_recommend_day_makes():
    from ortwin.recommend import recommend_day, simulated_booked_list

    at = _page(_app(), "Run")
    at.selectbox(key="rd_day").set_value(2).run()
    at.button(key="rd_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = _frame(at, "case_id", "status", "room", "start", "planned_minutes", "reason")
    base = load_scenario("scenarios/baseline.yaml")
    rec = recommend_day(base, simulated_booked_list(base, seed=base.seed), 2)
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), rec.frame(), check_dtype=False)
    solve = rec.summary().split(", wall")[0]  # the wall time differs run to run
    assert any(c.value.startswith(solve) for c in at.caption), [c.value for c in at.caption]
    assert any(m.value.startswith("Bent: ") for m in at.markdown)
    _page(at, "Results")
    _page(at, "Run")  # the plan and the chosen day survive a visit to another page
    assert at.selectbox(key="rd_day").value == 2
    assert _frame(at, "case_id", "reason").equals(shown)
