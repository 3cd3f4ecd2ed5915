"""ORTwin what-if app for perioperative leaders (``make app``, or ``streamlit run app.py``).

A thin layer over the public API: :mod:`twin.levers` changes a scenario, :func:`ortwin.compare
.compare` runs it, :mod:`ortwin.outcomes`, :mod:`ortwin.charts` and :mod:`ortwin.report` show the
results, :mod:`calibration` loads, fits and replays case logs, and :mod:`ortwin.board` prepares the
OR status board of a live now-cast (:mod:`ortwin.nowcast`). Results are kept in session state so
moving between pages never reruns a simulation.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ortwin import board, board_charts, charts, outcomes
from ortwin.cluster import ClusterError
from ortwin.compare import (
    DEFAULT_KPIS,
    CompareError,
    compare,
    scenario_effects,
)
from ortwin.live import LiveState
from ortwin.nowcast import Nowcast, NowcastConfig, NowcastEngine
from ortwin.report import difference_table, kpi_table, render_report
from twin.dayplan import read_plan
from twin.feed import Feed, read_feed
from twin.kpis import kpi_def
from twin.levers import Levers, RoomDowntime, apply_levers, scenario_diff, summarise_diff
from twin.scenario import (
    WEEKDAYS,
    Scenario,
    ScenarioError,
    hhmm,
    load_scenario,
    scenario_from_upload,
)

ROOT = Path(__file__).resolve().parent
SCENARIOS = ROOT / "scenarios"
PAGES = ("Scenario", "Run", "Results", "History", "OR status board")
CALIBRATED = "The calibrated scenario (History page)"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BUNDLED_LOG = ROOT / "calibration" / "data" / "or_case_log_2022_jan_feb.csv"
BUNDLED_MAPPING = ROOT / "calibration" / "mappings" / "or_case_log_2022.yaml"
POLICY_HELP = {
    "as-booked": "the list exactly as booked",
    "manual": "what a scheduler does by hand",
    "rules": "your rules catalog (forecast percentile, add-on room, moves)",
    "ml-cpsat": "forecast + optimiser; slow: about 30-50 s per week replication",
}

# Per page, the session keys of its widgets whose values outlive a visit to another page
# (a comment, not a docstring: Streamlit would print a bare string on the page).
KEEP = {"Scenario": ("lv_", "bundled", "src"), "Run": ("policies", "reps", "seed", "workers", "cluster", "with_base", "rd_day"),
        "History": ("h_",), "OR status board": ("b_",)}

st.set_page_config(page_title="ORTwin what-if", layout="wide")
state = st.session_state
log = logging.getLogger("ortwin.app")


# --- scenario -----------------------------------------------------------------------------------

def _bundled() -> list[str]:
    return sorted(p.name for p in SCENARIOS.glob("*.yaml"))


def _base() -> Scenario | None:
    return state.get("base_scn")


def _set_base(scn: Scenario, source: str) -> None:
    if state.get("base_source") != source:
        for k in [k for k in state if str(k).startswith("lv_")]:
            del state[k]
    state.base_scn, state.base_source = scn, source


def _levers(scn: Scenario) -> Levers:
    """The lever widgets (keys ``lv_*``) as a :class:`Levers`."""
    rooms = [r.id for r in scn.rooms]
    services = [s.id for s in scn.services]
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Rooms and hours**")
        add = st.number_input("Extra ORs (copies of an elective room, unblocked)", 0, 10, 0,
                              key="lv_add_rooms")
        like = st.selectbox("New ORs are like", rooms, key="lv_add_like") if add else None
        crew = st.checkbox("Staff the new ORs (one more crew each)", True, key="lv_crew")
        closed = st.multiselect("Close ORs", rooms, key="lv_close_rooms")
        change_hours = st.checkbox("Change elective rooms' hours", key="lv_hours_on")
        start = end = None
        if change_hours:
            start = st.time_input("Rooms open", dt.time(7, 30), key="lv_hours_start")
            end = st.time_input("Rooms close", dt.time(17, 30), key="lv_hours_end")
        st.markdown("**Room downtime**")
        down_on = st.checkbox("Take a room down for part of a day", key="lv_down_on")
        downtime: tuple[RoomDowntime, ...] = ()
        if down_on:
            droom = st.selectbox("Room", rooms, key="lv_down_room")
            dday = st.selectbox("Day", list(range(scn.horizon_days)), key="lv_down_day",
                                format_func=lambda d: f"day {d} ({DAY_NAMES[d % 7]})")
            dstart = st.time_input("Down from", dt.time(8, 0), key="lv_down_start")
            dend = st.time_input("Back at", dt.time(12, 0), key="lv_down_end")
            downtime = (RoomDowntime(droom, int(dday), dstart.strftime("%H:%M"),
                                     dend.strftime("%H:%M")),)
    with c2:
        st.markdown("**Blocks**")
        block_room = st.selectbox("Change the block of room", ["(none)"] + rooms,
                                  key="lv_block_room")
        blocks: dict[tuple[str, str], str | None] = {}
        if block_room != "(none)":
            bday = st.selectbox("on", WEEKDAYS[:5], key="lv_block_day")
            current = scn.blocks.get(block_room, {}).get(bday)  # type: ignore[call-overload]
            opts = ["(open, unblocked)"] + services
            bsvc = st.selectbox(f"to (now: {current.service if current else 'open'})", opts,
                                key="lv_block_service")
            blocks[(block_room, bday)] = None if bsvc == opts[0] else bsvc
        release = st.number_input("Release unused block time this many days ahead "
                                  "(-1 = as in the scenario)", -1, 14, -1, key="lv_release")
        st.markdown("**PACU**")
        beds = st.number_input("PACU beds (day)", 0, 200, scn.pacu.beds, key="lv_pacu_beds")
        night = st.number_input("PACU beds (after hours)", 0, 200, scn.pacu.after_hours_beds,
                                key="lv_pacu_night")
        cday = st.selectbox("Close PACU beds on", ["(no day)"] + list(WEEKDAYS),
                            key="lv_pacu_close_day")
        cn = st.number_input("beds closed that day", 0, 200, 0, key="lv_pacu_close_n") \
            if cday != "(no day)" else 0
    with c3:
        st.markdown("**Staff per shift** (change on every shift)")
        staff = {role: int(st.number_input(f"{role}", -20, 20, 0, key=f"lv_staff_{role}"))
                 for role in scn.staff}
        st.markdown("**Demand and durations**")
        addon = st.slider("Add-on rate (% of now)", 0, 300, 100, 5, key="lv_addon")
        demand = st.slider("Elective volume (% of now)", 50, 150, 100, 5, key="lv_demand")
        dur = st.slider("Case durations (% of now)", 70, 150, 100, 5, key="lv_duration")
        canc = st.slider("Day-of cancellations (% of now)", 0, 300, 100, 5, key="lv_cancel")
        st.markdown("**Sterile processing**")
        spd = {s.name: int(st.number_input(f"{s.name} machines", 1, 50, s.machines,
                                           key=f"lv_spd_{s.name}"))
               for s in scn.spd.stages}
        trays = st.slider("Tray inventory (% of now)", 50, 200, 100, 10, key="lv_trays")
    return Levers(
        add_rooms=int(add), add_room_like=like, crew_for_added_rooms=crew,
        close_rooms=tuple(closed),
        hours_start=start.strftime("%H:%M") if start else None,
        hours_end=end.strftime("%H:%M") if end else None,
        blocks=blocks, release_days=None if release < 0 else int(release),
        pacu_beds=int(beds) if beds != scn.pacu.beds else None,
        pacu_after_hours_beds=int(night) if night != scn.pacu.after_hours_beds else None,
        pacu_beds_closed={cday: int(cn)} if cday != "(no day)" and cn else {},
        staff_delta={r: d for r, d in staff.items() if d},
        addon_factor=addon / 100, duration_factor=dur / 100, cancellation_factor=canc / 100,
        demand_factor=demand / 100, downtime=downtime,
        spd_machines={k: v for k, v in spd.items()
                      if v != next(s.machines for s in scn.spd.stages if s.name == k)},
        tray_factor=trays / 100,
    )


def page_scenario() -> None:
    st.header("1. Scenario")
    st.write("Pick a bundled scenario or upload your own, then change its levers. "
             "The table at the bottom shows what differs from the base.")
    sources = ["A bundled scenario", "An uploaded file"]
    if state.get("calibration"):
        sources.append(CALIBRATED)
    src = st.radio("Start from", sources, horizontal=True, key="src")
    if src == CALIBRATED:
        cal = state.calibration
        _set_base(cal["scenario"], str(cal["path"]))
    elif src == "A bundled scenario":
        names = _bundled()
        name = st.selectbox("Scenario", names, index=names.index("baseline.yaml")
                            if "baseline.yaml" in names else 0, key="bundled")
        try:
            _set_base(load_scenario(SCENARIOS / name), f"scenarios/{name}")
        except ScenarioError as e:
            st.error(str(e))
            return
    else:
        up = st.file_uploader("Scenario YAML", type=["yaml", "yml"], key="upload")
        if up is not None:
            try:
                scn = scenario_from_upload(up.name, up.getvalue(), SCENARIOS)
                _set_base(scn, f"upload:{up.name}")
            except ScenarioError as e:
                st.error(f"Upload rejected: {e}")
                state.pop("base_scn", None)
                state.pop("base_source", None)
                return
    scn = _base()
    if scn is None:
        st.info("Upload a scenario file to start.")
        return
    st.caption(f"**{scn.name}** ({state.base_source}): {len(scn.rooms)} rooms, "
               f"{len(scn.services)} services, {scn.horizon_days} days. "
               + " ".join(scn.description.split()))
    lv = _levers(scn)
    try:
        whatif = apply_levers(scn, lv)
    except ScenarioError as e:
        st.error(f"These levers do not make a valid suite: {e}")
        state.whatif = None
        return
    state.levers, state.whatif = lv, whatif
    diff = summarise_diff(scenario_diff(scn, whatif))
    st.subheader("What differs from the base")
    if diff:
        st.dataframe(pd.DataFrame(diff), hide_index=True, width="stretch", key="diff")
    else:
        st.write("Nothing yet: the what-if is the base scenario.")


# --- run ----------------------------------------------------------------------------------------

def page_run() -> None:
    from ortwin.registry import POLICIES

    st.header("2. Run")
    scn, whatif = _base(), state.get("whatif")
    if scn is None or whatif is None:
        st.warning("Choose a scenario (and valid levers) on the Scenario page first.")
        return
    changed = bool(scenario_diff(scn, whatif))
    pols = st.multiselect("Policies", list(POLICIES), default=["manual", "rules"],
                          key="policies", format_func=lambda p: f"{p}: {POLICY_HELP.get(p, '')}")
    reps = st.number_input("Replications (weeks simulated per policy and scenario)", 1, 2000, 20,
                           key="reps")
    seed = st.number_input("Seed", 0, 2**31 - 1, scn.seed, key="seed")
    workers = st.number_input("Worker processes (results are identical for any number)", 1, 64,
                              min(2, os.cpu_count() or 1), key="workers")
    where = st.text_input("Run on: local processes, dask (a Dask cluster on this machine) or a "
                          "Dask scheduler address tcp://HOST:PORT (docs/scaleout.md)", "local",
                          key="cluster").strip() or "local"
    with_base = st.checkbox("Also run the base scenario, to show the effect of the change",
                            value=True, key="with_base", disabled=not changed)
    arms = (2 if changed and with_base else 1) * max(1, len(pols))
    st.caption(f"{arms} arm(s) × {reps} replications, common random numbers: every arm sees the "
               "same patients in replication i.")
    if st.button("Run", type="primary", key="run"):
        if not pols:
            st.error("Choose at least one policy.")
            return
        scns = [whatif] if not changed else ([scn, whatif] if with_base else [whatif])
        total = int(reps) * len(pols) * len(scns)
        bar = st.progress(0.0, text="starting")
        done = [0]
        t0 = time.time()

        def tick(n: int) -> None:
            done[0] += n
            rate = done[0] / max(time.time() - t0, 1e-9)
            left = (total - done[0]) / rate if rate else 0
            bar.progress(min(1.0, done[0] / total),
                         text=f"{done[0]}/{total} replications · about {left:.0f} s left")

        try:
            comp = compare(scns, pols, int(reps), int(seed), int(workers), progress=tick,
                           sources=[state.base_source if s is scn else None for s in scns],
                           cluster=where)
        except (CompareError, ScenarioError, ClusterError) as e:
            st.error(str(e))
            return
        bar.progress(1.0, text=f"done: {total} replications in {time.time() - t0:.1f} s")
        state.results = {"comp": comp, "scenarios": {s.name: s for s in scns},
                         "base": scn.name if len(scns) > 1 else None, "seed": int(seed),
                         "id": state.get("run_count", 0) + 1, "seconds": time.time() - t0}
        state.run_count = state.get("run_count", 0) + 1
        state.traces = {}
        state.pop("report_html", None)
        st.success("Done. See the Results page.")
    if state.get("results"):
        r = state.results
        st.caption(f"Last run #{r['id']}: {', '.join(r['scenarios'])} · "
                   f"{', '.join(r['comp'].policies)} · {r['seconds']:.1f} s.")
    _recommended_day(whatif, int(seed))


def _recommended_day(scn: Scenario, seed: int) -> None:
    """Tomorrow's ml-cpsat plan of one day of a booked list (what ``ortwin plan`` prints)."""
    from ortwin.recommend import booked_from_frame, pick_day, recommend_day, simulated_booked_list

    with st.expander("Recommended day: one day's plan from a booked list (ml-cpsat)"):
        up = st.file_uploader("Booked list (day column) or day plan (date column), CSV; without "
                              "one, the week the twin books (replication 0 of the seed)",
                              type="csv", key="rd_upload")
        day = st.selectbox("Day (a day plan's own date decides its day)",
                           range(scn.horizon_days), index=min(1, scn.horizon_days - 1),
                           format_func=lambda d: f"day {d} ({DAY_NAMES[d % 7]})", key="rd_day")
        if st.button("Recommend a plan", key="rd_go"):
            try:
                if up is not None:
                    df = pd.read_csv(up, dtype=str, keep_default_na=False)
                    booked, date = booked_from_frame(df, scn, up.name)
                else:
                    booked, date = simulated_booked_list(scn, seed=seed), None
                d = pick_day(booked, None if date else int(day), None, date)
                with st.spinner("Forecasting durations and solving the day (a few seconds)"):
                    state.recommended = recommend_day(scn, booked, d, date=date)
            except (ScenarioError, pd.errors.ParserError, UnicodeDecodeError) as e:
                st.error(str(e))
                state.pop("recommended", None)
        rec = state.get("recommended")
        if rec is None:
            return
        st.markdown(f"**{rec.scenario}, {rec.date or f'day {rec.day}'} ({rec.weekday}): "
                    f"{len(rec.rows)} cases planned, {len(rec.left_out)} left out**")
        st.dataframe(rec.frame(), hide_index=True)
        st.caption(rec.summary())
        for line in rec.bent_lines() or ["no rule bent"]:
            st.write(f"Bent: {line}")
        st.download_button("plan.csv", rec.frame().to_csv(index=False), "plan.csv", "text/csv",
                           key="rd_csv")
        st.download_button("plan.json", json.dumps(rec.to_json(), indent=1), "plan.json",
                           "application/json", key="rd_json")


# --- results ------------------------------------------------------------------------------------

def _rounded(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Numbers to a readable precision (3 significant decimals below 100, whole above)."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            big = out[c].abs() >= 100
            out[c] = out[c].where(big, out[c].round(digits)).where(~big, out[c].round(0))
    return out


def _trace(scenario: str, policy: str, rep: int, day: int) -> outcomes.DayTrace:
    key = (scenario, policy, rep, day)
    traces = state.setdefault("traces", {})
    if key not in traces:
        r = state.results
        with st.spinner(f"re-running replication {rep} of {scenario} under {policy}"):
            traces[key] = outcomes.day_trace(r["scenarios"][scenario], policy, r["seed"], rep, day)
    return traces[key]


def page_results() -> None:
    st.header("3. Results")
    r = state.get("results")
    if not r:
        st.warning("No results yet: run a scenario on the Run page.")
        return
    comp = r["comp"]
    scns = list(r["scenarios"])
    st.caption(f"Run #{r['id']}: {', '.join(scns)} · policies {', '.join(comp.policies)} · "
               f"{int(comp.runs['reps'].iloc[0])} replications · seed {r['seed']}")
    present = [k for k in DEFAULT_KPIS if k in set(comp.summary["kpi"])]
    if r["base"]:
        eff = scenario_effects(comp.replications, r["base"], present)
        _headline(eff, comp.policies[0], int(comp.runs["days"].iloc[0]))
        st.subheader("Effect of the change (what-if − base, same patients)")
        show = pd.DataFrame({
            "KPI": [f"{kpi_def(k).label} ({kpi_def(k).unit})" for k in eff["kpi"]],
            "policy": eff["policy"], "base": eff["base_mean"], "what-if": eff["mean"],
            "difference": eff["mean_diff"], "95% CI low": eff["ci_low"],
            "95% CI high": eff["ci_high"], "verdict": eff["verdict"]})
        st.dataframe(_rounded(show), hide_index=True, width="stretch", key="effects")
    scenario = st.selectbox("Scenario", scns, index=len(scns) - 1, key="res_scenario")
    st.subheader("KPIs per policy")
    table = kpi_table(comp, scenario, present)
    state.kpi_table = table
    st.dataframe(_rounded(table), hide_index=True, width="stretch", key="kpi_table")
    if len(comp.policies) > 1:
        st.markdown(f"**Paired differences from {comp.reference}** (95% intervals)")
        st.dataframe(_rounded(difference_table(comp, scenario, present)), hide_index=True,
                     width="stretch", key="diff_table")
    sub = comp.replications[comp.replications["scenario"] == scenario]
    c1, c2 = st.columns([1, 3])
    with c1:
        kpi = st.selectbox("KPI distribution", present, key="dist_kpi",
                           format_func=lambda k: kpi_def(k).label)
        kind = st.radio("as", ["box", "ecdf"], horizontal=True, key="dist_kind")
    with c2:
        st.altair_chart(charts.kpi_distribution(comp.replications if kind == "ecdf" else sub,
                                                kpi, kind), key="dist_chart")
    st.subheader("Tail risk: daily overtime of the whole suite")
    daily = outcomes.daily_overtime(comp.room_days)
    tails = outcomes.tail_table(daily)
    st.altair_chart(charts.exceedance_chart(outcomes.exceedance_curves(daily), tails),
                    key="exceedance")
    st.dataframe(_rounded(tails).rename(columns={"n": "days", "p50": "P50", "p90": "P90", "p95": "P95",
                                       "cvar95": "CVaR95"}), hide_index=True, key="tails")
    st.subheader("One representative day")
    pol = st.selectbox("Policy", list(comp.policies), key="gantt_policy")
    rep0, day0 = outcomes.representative_day(comp.room_days, comp.reference, scenario)
    st.caption(f"Representative: replication {rep0}, day {day0} — the weekday whose suite "
               f"overtime under {comp.reference} is nearest the median. Every policy sees the "
               "same patients that day.")
    g1, g2 = st.columns(2)
    reps = sorted(set(sub["rep"]))
    rep = g1.selectbox("Replication", reps, index=reps.index(rep0), key="gantt_rep")
    day = g2.selectbox("Day", list(range(r["scenarios"][scenario].horizon_days)), index=day0,
                       key="gantt_day", format_func=lambda d: f"day {d} ({DAY_NAMES[d % 7]})")
    trace = _trace(scenario, pol, int(rep), int(day))
    st.altair_chart(charts.gantt_chart(trace), key="gantt")
    if pol == "ml-cpsat":
        st.markdown("**Why the optimiser placed each case** (ml-cpsat's explanations)")
        if len(trace.explanations):
            st.dataframe(trace.explanations, hide_index=True, width="stretch",
                         key="explanations")
        else:
            st.write("The optimiser fell back to the rules plan that day; no explanations.")
    st.subheader("Fairness by service")
    fair = outcomes.fairness(comp.services)
    fsub = fair[fair["scenario"] == scenario]
    measure = st.radio("Measure", ["cancellation_rate", "prime_start_share", "overtime_share",
                                   "in_room_share"], horizontal=True, key="fair_measure")
    st.altair_chart(charts.fairness_chart(fsub, measure), key="fairness")
    st.dataframe(_rounded(fsub), hide_index=True, width="stretch", key="fair_table")
    _downloads(comp)


HEADLINE = ("overtime_minutes", "utilisation", "cases_cancelled", "pacu_hold_minutes")


def _headline(eff: pd.DataFrame, policy: str, days: int) -> None:
    """Four cards: the what-if's mean and its paired change from the base, with the 95% range
    and whether the change is real (the range excludes 0)."""
    st.markdown(f"**The answer in brief** (policy {policy}; a change is called real when its 95% "
                "range excludes zero)")
    cols = st.columns(len(HEADLINE))
    for col, k in zip(cols, HEADLINE, strict=True):
        row = eff[(eff["kpi"] == k) & (eff["policy"] == policy)]
        if row.empty:
            continue
        e, d = row.iloc[0], kpi_def(k)
        pct = d.unit == "fraction"
        fmt = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:,.0f}")
        sign = (lambda x: f"{100 * x:+.1f} pts") if pct else (lambda x: f"{x:+,.0f}")
        verdict = {"better": "real, better", "worse": "real, worse"}.get(e["verdict"],
                                                                        "not distinguishable")
        unit = f"{d.unit} over {days} days" if d.unit in ("min", "cases") else d.unit
        col.metric(f"{d.label} ({unit})", fmt(e["mean"]),
                   delta=f"{sign(e['mean_diff'])} ({verdict})",
                   delta_color="inverse" if d.better == "lower" else "normal",
                   help=f"base {fmt(e['base_mean'])}; 95% range of the change "
                        f"{sign(e['ci_low'])} to {sign(e['ci_high'])}")


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _downloads(comp) -> None:
    st.subheader("Downloads")
    c = st.columns(5)
    c[0].download_button("Replications (CSV)", comp.replications.to_csv(index=False),
                         "replications.csv", "text/csv", key="dl_reps_csv")
    c[1].download_button("Summary (CSV)", comp.summary.to_csv(index=False), "summary.csv",
                         "text/csv", key="dl_summary_csv")
    c[2].download_button("Replications (parquet)", _parquet(comp.replications),
                         "replications.parquet", key="dl_reps_parquet")
    c[3].download_button("Room-days (parquet)", _parquet(comp.room_days), "room_days.parquet",
                         key="dl_room_days")
    if c[4].button("Prepare the report", key="make_report"):
        with st.spinner("writing the self-contained HTML report"):
            state.report_html = render_report(comp, "ORTwin what-if results")[0]
    if state.get("report_html"):
        st.download_button("Report (HTML, opens offline)", state.report_html, "report.html",
                           "text/html", key="dl_report")


# --- history ------------------------------------------------------------------------------------

def _save_upload(tmp: Path, up) -> Path:
    path = tmp / Path(up.name).name
    path.write_bytes(up.getvalue())
    return path


def page_history() -> None:
    from calibration.build import calibrate
    from calibration.cases import iso_week, week_label
    from calibration.loader import load_history
    from calibration.report import write_calibration
    from ortwin.registry import POLICIES
    from ortwin.replay import replay_week

    st.header("4. History: calibrate and replay")
    st.write("Load a case log with its column mapping, check what was quarantined, fit a "
             "scenario from the cases before a date, and replay a later week against what "
             "actually happened.")
    use_bundled = st.checkbox("Use the bundled 2022 case log (Jan-Feb, 8 ORs)", key="h_bundled")
    log = mapping = None
    if not use_bundled:
        log = st.file_uploader("Case log (CSV)", type=["csv"], key="h_log")
        mapping = st.file_uploader("Column mapping (YAML; none if the log is in the canonical "
                                   "schema)", type=["yaml", "yml"], key="h_mapping")
    if st.button("Load the case log", key="h_load"):
        tmp = Path(tempfile.mkdtemp(prefix="ortwin-history-"))
        try:
            if use_bundled:
                path, mpath = BUNDLED_LOG, BUNDLED_MAPPING
            elif log is None:
                st.error("Choose a case log file (or the bundled one).")
                return
            else:
                path = _save_upload(tmp, log)
                mpath = _save_upload(tmp, mapping) if mapping is not None else None
            state.history = load_history(path, mpath)
            state.pop("calibration", None)
            state.pop("replay", None)
        except ScenarioError as e:  # HistoryError is a ScenarioError
            file = Path(e.file).name if e.file.startswith(str(tmp)) else e.file
            msg = e.message.replace("needs --mapping", "needs a column mapping")
            st.error(f"Case log rejected: {file}: {e.field + ': ' if e.field else ''}{msg}")
            state.pop("history", None)
            return
    hist = state.get("history")
    if hist is None:
        return
    st.success(hist.summary_line())
    st.markdown(f"**Quarantine report** ({len(hist.quarantine)} rows set aside, with reasons)")
    st.dataframe(hist.quarantine, hide_index=True, width="stretch", key="h_quarantine")
    dates = hist.cases["date"].dropna()
    lo, hi = dates.min().date(), dates.max().date()
    default = min(hi, lo + dt.timedelta(days=28))
    as_of = st.date_input("Calibrate on cases booked before", default, lo, hi, key="h_asof")
    if st.button("Calibrate", key="h_calibrate"):
        try:
            with st.spinner("fitting durations, flows and the suite"):
                cal = calibrate(hist, as_of)
                out = Path(tempfile.mkdtemp(prefix="ortwin-calibrated-")) / "calibrated.yaml"
                scn_path, report = write_calibration(cal, out)
            state.calibration = {"scenario": load_scenario(scn_path), "path": scn_path,
                                 "report": report, "as_of": as_of}
        except ScenarioError as e:
            st.error(f"Calibration failed: {e}")
            return
    cal = state.get("calibration")
    if cal is None:
        return
    st.markdown(f"**Fit report** (cases before {cal['as_of']}; scenario `{cal['scenario'].name}`)")
    with st.expander("fit_report.md", expanded=False):
        st.markdown((cal["report"] / "fit_report.md").read_text())
    pngs = sorted((cal["report"] / "charts").glob("*.png"))
    if pngs:
        cols = st.columns(3)
        for i, p in enumerate(pngs[:6]):
            cols[i % 3].image(str(p), caption=p.stem)
    if st.button("Use the calibrated scenario on the Scenario page", key="h_use"):
        _set_base(cal["scenario"], str(cal["path"]))
        state.whatif = cal["scenario"]
        state.src = CALIBRATED
        st.success("The calibrated scenario is now the base of the what-if.")
    weeks = sorted({week_label(d.date() - dt.timedelta(days=d.weekday())) for d in dates
                    if d.date() >= cal["as_of"]})
    if not weeks:
        st.info("No weeks after the calibration date to replay.")
        return
    w1, w2, w3 = st.columns(3)
    week = w1.selectbox("Replay week", weeks, key="h_week")
    pol = w2.selectbox("Policy", list(POLICIES), key="h_policy")
    reps = w3.number_input("Replications", 1, 500, 20, key="h_reps")
    if st.button("Replay", key="h_replay"):
        try:
            with st.spinner(f"replaying {week}"):
                state.replay = replay_week(hist, iso_week(week), cal["scenario"], pol, int(reps))
        except ScenarioError as e:
            st.error(f"Replay failed: {e}")
            return
    rr = state.get("replay")
    if rr is not None:
        st.markdown(f"**{rr.week}**: {rr.booked} booked cases, {rr.reps} replications; "
                    f"{rr.coverage:.0%} of the scored KPIs' actual values fall inside the "
                    "simulated P5-P95.")
        st.dataframe(rr.table, hide_index=True, width="stretch", key="h_replay_table")
        for n in rr.notes:
            st.caption(n)


# --- OR status board ----------------------------------------------------------------------------

LIVE = SCENARIOS / "live"
DEMO_PLAN = "baseline_tuesday.plan.csv"
BOARD_TIMES = board.clock_options()
BOARD_POLICIES = ("rules", "manual", "none")
TILES_PER_ROW = 5
Stamp = tuple[str, int, int]


def _stamp(path: Path) -> Stamp:
    s = path.stat()
    return str(path), s.st_mtime_ns, s.st_size


@st.cache_resource(max_entries=8, show_spinner="building the now-cast engine")
def _engine(scn: Stamp, plan: Stamp, reps: int) -> NowcastEngine:
    """The day's now-cast engine, rebuilt only when a file changes or the replications do."""
    s = load_scenario(scn[0])
    return NowcastEngine(s, read_plan(plan[0], s), NowcastConfig(reps=reps))


@st.cache_resource(max_entries=8, show_spinner=False)
def _feed(stamp: Stamp) -> Feed:
    """The feed file, re-read when it changes."""
    return read_feed(stamp[0])


@st.cache_resource(max_entries=8, show_spinner=False)
def _latest(ekey: tuple, _eng: NowcastEngine, fkey: Stamp, _feed: Feed) -> float | None:
    """Minute of the feed's latest applied observation."""
    return board.live_at(_eng.plan, [r.id for r in _eng.scn.rooms], _feed, None).latest


@st.cache_resource(max_entries=64, show_spinner="forecasting the rest of the day")
def _forecast(ekey: tuple, _eng: NowcastEngine, fkey: Stamp, _feed: Feed, at: float,
              policy: str) -> tuple[LiveState, Nowcast]:
    """The live state and the now-cast at ``at`` (a refresh with nothing new costs nothing)."""
    live = board.live_at(_eng.plan, [r.id for r in _eng.scn.rooms], _feed, at)
    return live, _eng.forecast(live, at, None if policy == "none" else policy)


@st.cache_resource(show_spinner="loading the bundled case log")
def _bundled_history():
    from calibration.loader import load_history

    return load_history(BUNDLED_LOG, BUNDLED_MAPPING)


def _follow_changed() -> None:
    """Following starts the replay clock at the board time; stopping leaves the board where the
    replay had got to."""
    if state.b_follow:
        state.b_follow_since, state.b_follow_from = time.time(), state.b_time
    elif not state.get("b_latest") and state.get("b_replay_at"):
        state.b_time = state.b_replay_at


def _replay_restart() -> None:
    state.b_follow_since, state.b_follow_from = time.time(), state.b_time


def page_board() -> None:
    st.header("OR status board")
    st.write("The suite now, from the day's plan and its live feed: a tile per room with the "
             "forecast of the rest of its day (P10–P90 from the now-cast's replications), the "
             "day so far, PACU, alerts, and drill-downs against figures from the literature.")
    plans = sorted(p.name for p in LIVE.glob("*.plan.csv"))
    if not plans:
        st.warning("No day plans (*.plan.csv) in scenarios/live/.")
        return
    names = _bundled()
    c = st.columns([2, 3, 1, 1])
    scn_name = c[0].selectbox("Scenario", names, index=names.index("baseline.yaml")
                              if "baseline.yaml" in names else 0, key="b_scenario")
    plan_name = c[1].selectbox("Day plan (its feed is the .feed.jsonl of the same name)", plans,
                               index=plans.index(DEMO_PLAN) if DEMO_PLAN in plans else 0,
                               key="b_plan")
    state.setdefault("b_reps", 100)
    reps = c[2].number_input("Replications", 10, 2000, step=10, key="b_reps")
    c[3].selectbox("Proposals from", BOARD_POLICIES, key="b_policy")
    state.setdefault("b_time", "11:00")
    t = st.columns([4, 2, 1, 1])
    t[0].select_slider("Board time", BOARD_TIMES, key="b_time", on_change=_replay_restart)
    latest = t[1].toggle("Latest in feed", key="b_latest",
                         help="the board time is the feed's latest observation")
    follow = t[1].toggle("Follow the feed", key="b_follow", on_change=_follow_changed,
                         help="re-read the feed file and refresh the board every few seconds; "
                              "without 'Latest in feed' the recorded day is replayed from the "
                              "board time")
    every = t[2].number_input("Refresh every (s)", 1, 600, 5, key="b_every")
    t[3].number_input("Replay: min per refresh", 1, 240, 10, key="b_step", disabled=latest)
    feed_path = LIVE / plan_name.replace(".plan.csv", ".feed.jsonl")
    if not feed_path.is_file():
        st.error(f"No feed for {plan_name}: expected scenarios/live/{feed_path.name}.")
        return
    try:
        _engine(_stamp(SCENARIOS / scn_name), _stamp(LIVE / plan_name), int(reps))
    except ScenarioError as e:
        st.error(f"Cannot build the board: {e}")
        return
    st.fragment(_board, run_every=float(every) if follow else None)(
        SCENARIOS / scn_name, LIVE / plan_name, feed_path, int(reps))


def _board_time(eng: NowcastEngine, latest: float | None) -> tuple[float, str]:
    """The board time and how it was set (by hand, latest observation, or a replay)."""
    plan = eng.plan
    if latest is None:
        latest = float(plan.cases["booked_start"].min())
    if state.b_latest:
        return latest, "latest observation in the feed"
    if not state.b_follow:
        return plan.midnight + hhmm(state.b_time), "set by hand"
    start = state.setdefault("b_follow_from", state.b_time)
    since = state.setdefault("b_follow_since", time.time())
    at = board.replay_minute(plan.midnight + hhmm(start), time.time() - since,
                             float(state.b_every), float(state.b_step), latest)
    state.b_replay_at = board.snap_clock(at - plan.midnight, BOARD_TIMES)
    return at, (f"replaying the recorded feed from {start}, {state.b_step} min on every "
                f"{state.b_every} s" + (" (end of the feed)" if at >= latest else ""))


def _board(scn_path: Path, plan_path: Path, feed_path: Path, reps: int) -> None:
    """The board (a fragment: refreshed on its own while following the feed)."""
    try:
        _board_body(scn_path, plan_path, feed_path, reps)
    except (OSError, ScenarioError) as e:  # a file changed under the board (FeedError too)
        st.error(f"Cannot refresh the board: {e}")
    except Exception as e:  # a fragment's rerun is outside main()'s guard
        log.exception("the OR status board failed")
        st.error(f"Something went wrong on this page ({type(e).__name__}: {e}). The details "
                 "are in the app's log; please report them.")


def _board_body(scn_path: Path, plan_path: Path, feed_path: Path, reps: int) -> None:
    """The board at its time: tiles, the day so far, PACU, alerts, feed, drill-down."""
    ekey = (_stamp(scn_path), _stamp(plan_path), reps)
    eng = _engine(*ekey)
    fkey = _stamp(feed_path)
    feed = _feed(fkey)
    plan = eng.plan
    latest = _latest(ekey, eng, fkey, feed)
    at, how = _board_time(eng, latest)
    live, nc = _forecast(ekey, eng, fkey, feed, float(at), state.b_policy)
    st.subheader(f"{plan.date:%A %d %B %Y}, {nc.clock(at)}")
    st.caption(f"Board time {how}. {nc.reps} replications in {nc.seconds:.1f} s; bands are "
               "P10–P90 of the replications · plan "
               f"{plan_path.name} · feed {feed_path.name} ({feed.lines_read} lines, latest "
               f"observation {nc.clock(latest) if latest is not None else '-'}). Risk of running "
               f"past the staffed end: green below {board.AMBER_AT:.0%}, amber from "
               f"{board.AMBER_AT:.0%}, red from {board.RED_AT:.0%}."
               + "".join(f" {n[0].upper()}{n[1:]}." for n in eng.notes))
    turn = eng.scn.turnover.scaled(eng.scn.stress.turnover_factor)
    tiles = board.room_tiles(nc, float(turn.ppf(0.5)))
    for i in range(0, len(tiles), TILES_PER_ROW):
        for col, tile in zip(st.columns(TILES_PER_ROW), tiles[i:i + TILES_PER_ROW], strict=False):
            with col.container(border=True):
                st.markdown(tile.header)
                st.markdown(tile.body)
    with st.expander("The tiles as a table"):
        st.dataframe(board.rooms_table(nc), hide_index=True, width="stretch", key="board_rooms")
    _suite_summary(eng, live, nc, at)
    _drilldown(eng, live, at)


def _suite_summary(eng: NowcastEngine, live: LiveState, nc: Nowcast, at: float) -> None:
    s = board.suite_so_far(live, eng.windows, at, eng.scn)
    st.subheader("The suite so far")
    m = st.columns(4)
    m[0].metric("First cases on time", f"{s.on_time_share:.0%}" if s.first_cases_due else "-",
                help=f"{s.first_cases_on_time} of {s.first_cases_due} rooms' first cases in the "
                     f"room by their planned start + {board.ON_TIME_GRACE_MIN:.0f} min "
                     "(rooms whose first case is not yet due are left out). Literature: 66% "
                     "rising to 72% after an intervention (PMC11703430).", border=True)
    m[1].metric("Utilisation so far", f"{s.utilisation:.0%}" if s.staffed_min else "-",
                help=f"{s.in_room_min:,.0f} in-room minutes within staffed hours / "
                     f"{s.staffed_min:,.0f} staffed minutes elapsed", border=True)
    m[2].metric("Median turnover so far",
                f"{s.turnover_median:.0f} min" if s.turnovers else "-",
                help=f"{s.turnovers} turnovers. Literature ~36 min (Mazzei 1994); the 2022 case "
                     "log's median is 29 min.", border=True)
    m[3].metric("PACU now", f"{s.pacu_now} of {s.pacu_beds} beds", border=True)
    st.caption(f"First cases on time: {s.first_cases_on_time} of {s.first_cases_due} due "
               "(benchmark 66% → 72%, PMC11703430) · utilisation: in-room / staffed minutes "
               "elapsed · turnover benchmark ~36 min (Mazzei 1994), 29 min (2022 log median).")
    left, right = st.columns([3, 2])
    with left:
        if len(nc.pacu):
            st.altair_chart(board_charts.pacu_chart(nc.pacu, eng.plan), key="board_pacu")
        else:
            st.caption("No PACU forecast: the board time is past the end of the day.")
    with right:
        st.markdown("**Alerts**")
        for a in nc.alerts:
            st.warning(a)
        if not nc.alerts:
            st.success("No alerts.")
        policy = state.b_policy
        st.markdown(f"**Day-of proposals** ({policy}; shown, never applied)")
        if policy == "none":
            st.caption("No policy asked.")
        elif len(nc.proposals):
            st.dataframe(board.proposals_table(nc), hide_index=True, width="stretch",
                         key="board_proposals")
        else:
            st.caption("None: no room with a case in it is likely to run past its staffed end.")
    bad = sum(v for k, v in nc.feed.items() if k not in ("applied", "resolved", "heartbeat"))
    with st.expander(f"Feed: {nc.feed.get('applied', 0)} applied, {nc.feed.get('resolved', 0)} "
                     f"resolved, {bad} quarantined"):
        st.dataframe(board.feed_table(nc), hide_index=True, key="board_feed")
        st.markdown("**Quarantine** (observations set aside, with their reasons)")
        st.dataframe(nc.quarantine, hide_index=True, width="stretch", key="board_quarantine")


def _drilldown(eng: NowcastEngine, live: LiveState, at: float) -> None:
    st.subheader("Drill-down")
    d = st.columns([2, 3])
    day = d[0].radio("Period", ("The board's day so far", "History: the bundled 2022 case log"),
                     key="b_period") == "The board's day so far"
    by = d[1].radio("By", board.GROUPS, horizontal=True, key="b_by")
    if day:
        cases, windows, upto = board.day_cases(live), board.day_windows(eng.windows,
                                                                         live.plan.date), at
    else:
        hist = _bundled_history()
        dates = hist.cases["date"].dropna()
        lo, hi = dates.min().date(), dates.max().date()
        rng = st.date_input("Dates", (lo, hi), lo, hi, key="b_h_dates")
        if not isinstance(rng, tuple) or len(rng) != 2:
            st.info("Choose the last date of the period too.")
            return
        cases, windows = board.history_cases(hist.cases, rng[0], rng[1])
        upto = None
        st.caption(f"{len(cases)} cases run from {rng[0]} to {rng[1]}; each room's staffed "
                   "hours inferred from the period as calibration does (median first booked "
                   "start to median end of the last booked case).")
    if cases.empty:
        st.info("No cases in this period.")
        return
    table = board.drilldown(cases, windows, by, upto)
    cols = st.columns(len(board.MEASURES))
    for col, m in zip(cols, board.MEASURES, strict=True):
        col.altair_chart(board_charts.drill_chart(table, by, m), key=f"board_chart_{m}")
    st.caption("Turnover: out of room to the next case in, same room and day, 0 to "
               f"{board.TURNOVER_MAX_MIN:.0f} min, credited to the case before. First case: the "
               f"room-day's earliest planned case, on time within {board.ON_TIME_GRACE_MIN:.0f} "
               "min. Rules: turnover ~36 min (Mazzei, J Clin Anesth 6:405, 1994) and the bundled "
               "2022 case log's median 29 min; first-case on-time starts 66% rising to 72% after "
               "an intervention (PMC11703430).")
    st.dataframe(board.drill_display(table, by), hide_index=True, width="stretch",
                 key="board_drill")
    with st.expander("Turnovers and first cases, one row each"):
        st.dataframe(board.detail_times(board.turnovers(cases), ("out_of_room", "in_room")),
                     hide_index=True, width="stretch", key="board_turnovers")
        st.dataframe(board.detail_times(board.first_cases(cases, upto),
                                        ("planned_start", "in_room")),
                     hide_index=True, width="stretch", key="board_first_cases")


# --- page ---------------------------------------------------------------------------------------

def main() -> None:
    st.sidebar.title("ORTwin")
    st.sidebar.caption("A digital twin of the surgical suite: ask 'what if?' and see the "
                       "answer with its uncertainty.")
    page = st.sidebar.radio("Page", PAGES, key="page")
    hidden = tuple(p for name, keys in KEEP.items() if name != page for p in keys)
    for k in [k for k in state if str(k).startswith(hidden)]:
        state[k] = state[k]  # keep widget values while their page is not shown
    if "base_scn" not in state:
        try:
            _set_base(load_scenario(SCENARIOS / "baseline.yaml"), "scenarios/baseline.yaml")
            state.whatif = state.base_scn
        except ScenarioError as e:
            st.error(str(e))
    if state.get("results"):
        st.sidebar.success(f"Results of run #{state.results['id']} kept for this session.")
    try:
        {"Scenario": page_scenario, "Run": page_run, "Results": page_results,
         "History": page_history, "OR status board": page_board}[page]()
    except Exception as e:  # a page shows a message, never a traceback
        log.exception("page %s failed", page)
        st.error(f"Something went wrong on this page ({type(e).__name__}: {e}). The details "
                 "are in the app's log; please report them.")


main()
