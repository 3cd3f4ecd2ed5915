"""KPIs and summaries on small hand-built event logs with hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ortwin.summary import cvar, format_table, paired_difference, summarise
from twin.events import CASE_COLUMNS, empty_events, to_frame
from twin.kpis import (
    KPIS,
    KpiContext,
    case_table,
    compute_kpis,
    room_day_table,
    room_days_from_events,
    service_table,
)
from twin.scenario import from_mapping

NAN = math.nan
T975_3 = 3.182446305284263  # Student t quantile 0.975 with 3 degrees of freedom


# --- builders ---------------------------------------------------------------------------------


def ctx_of(windows: list[tuple[str, int, float, float]], **kw: object) -> KpiContext:
    rd = pd.DataFrame(windows, columns=["room", "day", "open", "close"])
    base: dict[str, object] = dict(
        prime_time=(450, 930), on_time_grace=5.0, turnover_max=120.0, idle_cost_per_min=2.0,
        overtime_cost_per_min=3.0, services=("gen", "ortho"),
        roles=("anaesthesia", "circulating", "scrub"), horizon_days=2,
    )
    base.update(kw)
    return KpiContext(room_days=rd, **base)  # type: ignore[arg-type]


def cases_of(*rows: dict[str, object]) -> pd.DataFrame:
    defaults: dict[str, object] = dict(
        service="gen", surgeon="S1", procedure="p", patient_class="outpatient",
        priority="elective", capability="gen", trays="", booked_minutes=60.0, booked_day=0,
        booked_room="", booked_start=NAN, is_addon=False, arrival=NAN,
    )
    return pd.DataFrame([{**defaults, **r} for r in rows], columns=list(CASE_COLUMNS))


def case_rows(cid: str, room: str, t_in: float, t_out: float, done: bool = True) -> list[tuple]:
    rows = [(t_in, "in_room", cid, room, "", NAN, ""), (t_out, "out_of_room", cid, room, "", NAN, "")]
    if done:
        rows.append((t_out + 60, "pacu_out", cid, "", "", NAN, ""))
    return rows


OR1_2DAYS = [("OR1", 0, 480.0, 960.0), ("OR1", 1, 1920.0, 2400.0)]


# --- utilisation, overtime, run-over ----------------------------------------------------------


@pytest.fixture
def straddle() -> tuple[pd.DataFrame, pd.DataFrame, KpiContext]:
    rows = (case_rows("A", "OR1", 480, 600) + case_rows("B", "OR1", 900, 1020)
            + case_rows("D", "OR1", 1400, 1500) + case_rows("E", "OR1", 2350, 2440)
            + case_rows("C", "OR2", 600, 660))
    cases = cases_of(*({"case_id": c} for c in "ABCDE"))
    return to_frame(rows), cases, ctx_of(OR1_2DAYS)


def test_utilisation_overtime_and_costs(straddle) -> None:
    k = compute_kpis(*straddle)
    # within staffed: A 120, B 60 (of 120, straddles 16:00), D 0, E 50; C is in an unstaffed room
    assert k["utilisation"] == pytest.approx(230 / 960)
    # run-over (cases overlapping a window): B 60 after 16:00, E 40 past midnight of day 1
    assert k["overtime_minutes"] == pytest.approx(60 + 40)
    # after-hours (wholly outside every window): D 100 at night, C 60 in a room never staffed
    assert k["after_hours_minutes"] == pytest.approx(100 + 60)
    assert k["out_of_hours_minutes"] == pytest.approx(260)
    assert k["idle_minutes"] == pytest.approx(960 - 230)
    assert k["cost_idle"] == pytest.approx(730 * 2.0)
    assert k["cost_overtime"] == pytest.approx(260 * 3.0)  # prices run-over and after-hours
    assert k["cost_total"] == pytest.approx(730 * 2.0 + 260 * 3.0)
    # staffed room-days, run-over only: OR1 day 0 = 60 (D is after-hours), day 1 = 40
    assert k["overtime_max_room_day"] == pytest.approx(60)
    assert k["overtime_p90_room_day"] == pytest.approx(40 + 0.9 * 20)
    # B, D, E end after close; C has no staffed window at all
    assert k["cases_run_over"] == 4
    assert k["cases_completed"] == 5


def test_room_day_table(straddle) -> None:
    rd = room_day_table(*straddle).set_index(["room", "day"])
    assert list(rd.columns) == ["staffed_minutes", "used_minutes", "overtime_minutes",
                                "after_hours_minutes", "cases", "first_case_late_minutes"]
    # OR1 day 0: A, B and D (runs past midnight, charged to day 0); D is after-hours, not run-over
    assert rd.loc[("OR1", 0)].tolist()[:5] == pytest.approx([480, 180, 60, 100, 3])
    assert rd.loc[("OR1", 1)].tolist()[:5] == pytest.approx([480, 50, 40, 0, 1])
    assert rd.loc[("OR2", 0)].tolist()[:5] == pytest.approx([0, 0, 0, 60, 1])
    assert rd["first_case_late_minutes"].isna().all()  # nothing was planned


def test_run_over_versus_after_hours() -> None:
    # OR1 staffed 08:00-16:00 on days 0 and 1; OR2 only on day 0
    ctx = ctx_of(OR1_2DAYS + [("OR2", 0, 480.0, 960.0)], overtime_cost_per_min=5.0)
    rows = (case_rows("run", "OR2", 900, 1000)       # straddles OR2's 16:00 close: 60 in, 40 out
            + case_rows("night", "OR1", 1380, 1470)  # 23:00-00:30, OR1 closed: all 90 after-hours
            + case_rows("off", "OR2", 2000, 2100))   # day 1, OR2 not staffed that day: 100
    cases = cases_of(*({"case_id": c} for c in ("run", "night", "off")))
    ev = to_frame(rows)
    k = compute_kpis(ev, cases, ctx)
    assert k["overtime_minutes"] == pytest.approx(40)
    assert k["after_hours_minutes"] == pytest.approx(90 + 100)
    assert k["out_of_hours_minutes"] == pytest.approx(40 + 190)
    assert k["cost_overtime"] == pytest.approx(230 * 5.0)
    assert k["utilisation"] == pytest.approx(60 / (3 * 480))
    assert k["cost_total"] == pytest.approx((1440 - 60) * 2.0 + 230 * 5.0)
    # per staffed room-day run-over: OR1 d0 0, OR1 d1 0, OR2 d0 40 (OR2 d1 is not staffed)
    assert k["overtime_max_room_day"] == pytest.approx(40)
    assert k["overtime_p90_room_day"] == pytest.approx(0.8 * 40)

    rd = room_day_table(ev, cases, ctx)
    cols = ["room", "day", "staffed_minutes", "used_minutes", "overtime_minutes",
            "after_hours_minutes", "cases"]
    assert rd[cols].values.tolist() == [
        ["OR1", 0, 480, 0, 0, 90, 1],   # the night case crosses midnight: charged to day 0
        ["OR1", 1, 480, 0, 0, 0, 0],
        ["OR2", 0, 480, 60, 40, 0, 1],
        ["OR2", 1, 0, 0, 0, 100, 1],
    ]
    assert rd["overtime_minutes"].sum() == k["overtime_minutes"]
    assert rd["after_hours_minutes"].sum() == k["after_hours_minutes"]


def test_case_table_pivot() -> None:
    rows = [
        (0, "booked", "A", "", "", 60, ""), (1, "scheduled", "A", "OR1", "", 480, ""),
        (2, "scheduled", "A", "OR2", "", 500, ""), (3, "in_room", "A", "OR3", "", NAN, ""),
        (4, "in_room", "A", "OR4", "", NAN, ""), (1, "scheduled", "B", "OR2", "", 600, ""),
        (5, "cancelled", "B", "", "", NAN, "patient"), (6, "in_room", "X", "OR1", "", NAN, ""),
    ]
    cases = cases_of({"case_id": "A"}, {"case_id": "B", "service": "ortho"})
    t = case_table(to_frame(rows), cases).set_index("case_id")
    assert list(t.index) == ["A", "B", "X"]  # cases frame first, then log-only cases
    assert t.loc["A", "scheduled"] == 2 and t.loc["A", "planned_start"] == 500
    assert t.loc["A", "in_room"] == 3 and t.loc["A", "room"] == "OR3"
    assert t.loc["B", "room"] == "OR2" and t.loc["B", "cancel_reason"] == "patient"
    assert t.loc["B", "service"] == "ortho" and pd.isna(t.loc["X", "service"])


# --- first case, turnover ---------------------------------------------------------------------


def test_first_case_on_time_with_grace() -> None:
    rows = [
        (0, "scheduled", "F1", "OR1", "", 480, ""), (1, "scheduled", "F1", "OR1", "", 500, ""),
        (0, "scheduled", "F2", "OR1", "", 600, ""), (0, "scheduled", "G2", "OR2", "", 480, ""),
    ]
    rows += case_rows("F1", "OR1", 504, 580) + case_rows("F2", "OR1", 600, 650)
    rows += case_rows("G1", "OR2", 470, 485) + case_rows("G2", "OR2", 490, 560)
    rows += case_rows("H", "OR1", 1924, 2000)
    cases = cases_of({"case_id": "F1"}, {"case_id": "F2"}, {"case_id": "G1", "is_addon": True},
                     {"case_id": "G2"},
                     {"case_id": "H", "booked_day": 1, "booked_start": 480})  # minute of day
    ctx = ctx_of(OR1_2DAYS + [("OR2", 0, 480.0, 960.0), ("OR2", 1, 1920.0, 2400.0)])
    ev = to_frame(rows)
    # F1 504 <= 500 + 5 on time; G2 (first planned in OR2; add-on G1 ignored) 490 > 485 late;
    # H 1924 <= 1920 + 5 on time; OR2 day 1 has no case
    assert compute_kpis(ev, cases, ctx)["first_case_on_time_rate"] == pytest.approx(2 / 3)
    late = room_day_table(ev, cases, ctx).set_index(["room", "day"])["first_case_late_minutes"]
    assert late.loc[("OR1", 0)] == 4 and late.loc[("OR2", 0)] == 10 and late.loc[("OR1", 1)] == 4
    assert math.isnan(late.loc[("OR2", 1)])


def test_turnover_excludes_long_negative_and_cross_day_gaps() -> None:
    rows = (case_rows("a1", "OR1", 480, 560) + case_rows("a2", "OR1", 590, 700)
            + case_rows("a3", "OR1", 900, 1000) + case_rows("a4", "OR1", 1920, 2000)
            + case_rows("b1", "OR2", 500, 600) + case_rows("b2", "OR2", 620, 700)
            + case_rows("b3", "OR2", 690, 750))
    cases = cases_of(*({"case_id": c} for c in ("a1", "a2", "a3", "a4", "b1", "b2", "b3")))
    k = compute_kpis(to_frame(rows), cases, ctx_of(OR1_2DAYS))
    # kept gaps: 30 (a1->a2) and 20 (b1->b2); 200 > max, -10 negative, a3->a4 another day
    assert k["turnover_mean"] == pytest.approx(25)
    assert k["turnover_p90"] == pytest.approx(29)


# --- resources --------------------------------------------------------------------------------


def test_staff_overtime_integral() -> None:
    rows = [
        (0, "capacity", "", "", "staff:scrub", 2, ""), (100, "level", "", "", "staff:scrub", 3, ""),
        (50, "level", "", "", "staff:anaesthesia", 1, ""),  # capacity still 0: excess 1
        (70, "level", "", "", "staff:anaesthesia", 0, ""),
        (120, "level", "", "", "pacu", 9, ""),
        (130, "level", "", "", "staff:scrub", 2, ""), (200, "capacity", "", "", "staff:scrub", 1, ""),
        (260, "level", "", "", "staff:scrub", 0, ""), (300, "level", "", "", "staff:porter", 5, ""),
    ]
    k = compute_kpis(to_frame(rows), cases_of(), ctx_of(OR1_2DAYS))
    assert k["staff_overtime_scrub"] == pytest.approx(30 * 1 + 60 * 1)
    assert k["staff_overtime_anaesthesia"] == pytest.approx(20)
    assert math.isnan(k["staff_overtime_circulating"])
    assert k["pacu_peak_occupancy"] == 9
    assert "staff_overtime_porter" not in k


def _flow_log() -> tuple[pd.DataFrame, pd.DataFrame]:
    def r(t: float, e: str, c: str) -> tuple:
        return (t, e, c, "OR1", "", NAN, "")
    rows = [
        r(300, "trays_requested", "c1"), r(360, "trays_ready", "c1"),
        r(400, "trays_requested", "c2"), r(415, "trays_ready", "c2"),
        r(480, "in_room", "c1"), r(600, "pacu_requested", "c1"), r(640, "out_of_room", "c1"),
        r(645, "pacu_in", "c1"), r(700, "pacu_ready", "c1"), r(820, "bed_assigned", "c1"),
        r(830, "pacu_out", "c1"),
        r(650, "in_room", "c2"), r(689, "pacu_requested", "c2"), r(689.3, "out_of_room", "c2"),
        r(690, "pacu_in", "c2"), r(750, "pacu_ready", "c2"), r(810, "bed_assigned", "c2"),
        r(815, "pacu_out", "c2"),
        r(700, "in_room", "c3"), r(800, "pacu_requested", "c3"), r(810, "out_of_room", "c3"),
        r(830, "pacu_in", "c3"), r(900, "pacu_ready", "c3"), r(910, "pacu_out", "c3"),
        r(815, "in_room", "c4"), r(820, "out_of_room", "c4"), r(820, "pacu_requested", "c4"),
        r(830, "pacu_in", "c4"), r(860, "pacu_ready", "c4"), r(870, "pacu_out", "c4"),
    ]
    cases = cases_of(
        {"case_id": "c1", "patient_class": "inpatient", "trays": "a;b"},
        {"case_id": "c2", "patient_class": "icu", "trays": "a"},
        {"case_id": "c3"}, {"case_id": "c4"},
    )
    return to_frame(rows), cases


def test_pacu_hold_boarding_trays() -> None:
    ev, cases = _flow_log()
    k = compute_kpis(ev, cases, ctx_of(OR1_2DAYS))
    assert k["pacu_hold_minutes"] == pytest.approx(40 + 0.3 + 10 + 0)
    assert k["pacu_hold_cases"] == 2  # c2's 0.3 min is not a hold
    assert k["boarding_hours"] == pytest.approx((120 + 60) / 60)  # outpatients need no bed
    assert k["tray_wait_minutes"] == pytest.approx(60 + 15)
    # no pacu resource events: from pacu_in/out; c1 leaves at 830 as c3 and c4 arrive
    assert k["pacu_peak_occupancy"] == 2


def test_surgeon_idle() -> None:
    def proc(c: str, s: float, e: float) -> list[tuple]:
        return [(s, "procedure_start", c, "OR1", "", NAN, ""), (e, "procedure_end", c, "OR1", "", NAN, "")]
    rows = (proc("x", 500, 600) + proc("y", 650, 700) + proc("z", 690, 800) + proc("w", 2000, 2100)
            + proc("v", 520, 580) + proc("u", 600, 650))
    cases = cases_of({"case_id": "x"}, {"case_id": "y"}, {"case_id": "z"}, {"case_id": "w"},
                     {"case_id": "v", "surgeon": "S2"}, {"case_id": "u", "surgeon": "S2"})
    # S1: 650 - 600 = 50, z overlaps y (-10, ignored), w another day; S2: 600 - 580 = 20
    assert compute_kpis(to_frame(rows), cases, ctx_of(OR1_2DAYS))["surgeon_idle_minutes"] == 70


# --- counts, cancellation, fairness -----------------------------------------------------------


@pytest.fixture
def services_log() -> tuple[pd.DataFrame, pd.DataFrame, KpiContext]:
    rows = (case_rows("g1", "OR1", 480, 600) + case_rows("g2", "OR1", 900, 1000)
            + case_rows("g3", "OR1", 1000, 1060) + case_rows("o1", "OR1", 1840, 1960))
    rows += [(300, "cancelled", "g4", "", "", NAN, "patient"),
             (3000, "not_started", "o2", "", "", NAN, "")]
    cases = cases_of(*({"case_id": c} for c in ("g1", "g2", "g3", "g4")),
                     {"case_id": "o1", "service": "ortho"}, {"case_id": "o2", "service": "ortho"},
                     {"case_id": "a1", "service": "ortho", "is_addon": True, "arrival": 1800.0})
    return to_frame(rows), cases, ctx_of(OR1_2DAYS)


def test_cancellation_and_fairness(services_log) -> None:
    k = compute_kpis(*services_log)
    assert (k["cases_completed"], k["cases_cancelled"], k["cases_not_started"]) == (4, 1, 1)
    assert k["cancellation_rate"] == pytest.approx(1 / 6)
    assert k["fair_cancel_rate_gap"] == pytest.approx(0.25 - 0.0)
    # prime 07:30-15:30: gen 480, 900 in, 1000 out -> 2/3; ortho 1840 = 06:40 -> 0
    assert k["fair_prime_share_gap"] == pytest.approx(2 / 3)
    # in-room gen 120 + 100 + 60 = 280, ortho 120; run-over gen 40 (g2 after 16:00; g3 lies
    # wholly after close: after-hours, not in the shares), ortho 80 (o1 before 1920 opening)
    gen, ortho = 40 / 120 - 280 / 400, 80 / 120 - 120 / 400
    assert k["fair_overtime_share_gap"] == pytest.approx(ortho - gen)
    assert k["addon_cases"] == 1 and math.isnan(k["addon_wait_mean"])  # a1 never got in


def test_service_table(services_log) -> None:
    st = service_table(*services_log).set_index("service")
    assert list(st.index) == ["gen", "ortho"]
    assert st.loc["gen", ["cases", "completed", "cancelled"]].tolist() == [4, 3, 1]
    assert st.loc["ortho", "cases"] == 3 and st.loc["ortho", "cancellation_rate"] == 0
    assert st.loc["gen", "in_room_minutes"] == 280 and st.loc["ortho", "overtime_minutes"] == 80
    assert st.loc["gen", "overtime_minutes"] == 40  # g3 (1000-1060) is after-hours, not run-over
    assert st.loc["gen", "overtime_share"] == pytest.approx(40 / 120)
    assert st.loc["ortho", "overtime_share"] == pytest.approx(80 / 120)
    assert st.loc["gen", "prime_start_share"] == pytest.approx(2 / 3)


def test_addon_wait_falls_back_to_booked_time() -> None:
    rows = [(100, "booked", "a1", "", "", 60, ""), (200, "booked", "a2", "", "", 60, "")]
    rows += case_rows("a1", "OR1", 500, 560) + case_rows("a2", "OR1", 600, 700)
    cases = cases_of({"case_id": "a1", "is_addon": True, "arrival": 90.0},
                     {"case_id": "a2", "is_addon": True}, {"case_id": "e"})
    k = compute_kpis(to_frame(rows), cases, ctx_of(OR1_2DAYS))
    assert k["addon_cases"] == 2
    assert k["addon_wait_mean"] == pytest.approx((410 + 400) / 2)
    assert k["addon_wait_p90"] == pytest.approx(400 + 0.9 * 10)


# --- missing data -----------------------------------------------------------------------------


def test_missing_data_gives_nan() -> None:
    rows = case_rows("A", "OR1", 480, 600) + case_rows("B", "OR1", 700, 720)
    cases = pd.DataFrame({"case_id": ["A", "B"], "trays": ["t", "t"]})  # a sparse real extract
    k = compute_kpis(to_frame(rows), cases, ctx_of(OR1_2DAYS))
    assert set(KPIS) <= set(k) and all(isinstance(v, float) for v in k.values())
    for key in ("staff_overtime_scrub", "first_case_on_time_rate", "addon_cases",
                "addon_wait_mean", "pacu_hold_minutes", "pacu_hold_cases", "pacu_peak_occupancy",
                "boarding_hours", "tray_wait_minutes", "surgeon_idle_minutes",
                "fair_prime_share_gap", "fair_cancel_rate_gap"):
        assert math.isnan(k[key]), key
    assert k["utilisation"] == pytest.approx(140 / 960)
    assert k["turnover_mean"] == 100


def test_empty_log_does_not_crash() -> None:
    k = compute_kpis(empty_events(), cases_of(), ctx_of([]))
    assert list(k)[:4] == list(KPIS)[:4]
    assert math.isnan(k["utilisation"]) and k["overtime_minutes"] == 0
    assert k["cases_completed"] == 0 and math.isnan(k["cancellation_rate"])
    assert room_day_table(empty_events(), cases_of(), ctx_of([])).empty


def test_unsorted_log_is_handled(straddle) -> None:
    ev, cases, ctx = straddle
    shuffled = ev.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a, b = compute_kpis(ev, cases, ctx), compute_kpis(shuffled, cases, ctx)
    assert a == pytest.approx(b, nan_ok=True)


# --- context from a scenario ------------------------------------------------------------------


def test_context_from_scenario() -> None:
    const = {"kind": "constant", "value": 60}
    scn = from_mapping({
        "name": "t", "horizon_days": 8,
        "rooms": [{"id": "OR1", "capabilities": ["gen"],
                   "hours": {"mon": {"start": "07:30", "end": "15:30"},
                             "sat": {"start": "08:00", "end": "26:00"}},
                   "downtime": [{"day": 0, "start": "08:00", "end": "09:00"}]}],
        "surgeons": [{"id": "S1", "service": "gen"}],
        "staff": {r: [{"start": "07:00", "end": "17:00", "count": 2}]
                  for r in ("anaesthesia", "circulating", "scrub")},
        "services": [{"id": "gen", "procedures": [{"id": "p", "duration": const}]}],
        "pacu": {"beds": 4, "los": {"outpatient": const}},
        "beds": {"ward": {"capacity": 10}, "icu": {"capacity": 2}},
        "kpi": {"on_time_grace_minutes": 10},
    })
    ctx = KpiContext.from_scenario(scn)
    assert ctx.room_days.values.tolist() == [
        ["OR1", 0, 450.0, 930.0], ["OR1", 5, 5 * 1440 + 480.0, 5 * 1440 + 1560.0],
        ["OR1", 7, 7 * 1440 + 450.0, 7 * 1440 + 930.0],
    ]
    assert ctx.prime_time == (450, 930) and ctx.on_time_grace == 10 and ctx.turnover_max == 120
    assert ctx.services == ("gen",) and ctx.roles == ("anaesthesia", "circulating", "scrub")
    assert (ctx.idle_cost_per_min, ctx.overtime_cost_per_min) == (37.45, 56.0)


def test_room_days_from_events() -> None:
    rows = [(480, "room_open", "", "OR1", "", NAN, ""), (960, "room_close", "", "OR1", "", NAN, ""),
            (500, "room_open", "", "OR2", "", NAN, ""), (1920, "room_open", "", "OR1", "", NAN, ""),
            (2400, "room_close", "", "OR1", "", NAN, ""), (900, "room_close", "", "OR2", "", NAN, "")]
    rd = room_days_from_events(to_frame(rows)).sort_values(["room", "open"])
    assert rd.values.tolist() == [["OR1", 0, 480, 960], ["OR1", 1, 1920, 2400],
                                  ["OR2", 0, 500, 900]]


# --- summaries --------------------------------------------------------------------------------


def test_cvar_known_vector() -> None:
    v = np.arange(1.0, 101.0)
    assert cvar(v) == pytest.approx(98.0)  # 96..100 are >= the 95th percentile 95.05
    assert cvar(v, better="higher") == pytest.approx(3.0)  # 1..5 are <= 5.95
    assert cvar([1.0, NAN, 3.0], alpha=0.5) == pytest.approx(3.0)
    assert math.isnan(cvar([NAN]))


def _reps() -> pd.DataFrame:
    return pd.DataFrame({
        "scenario": "s", "policy": ["a"] * 4 + ["b"] * 5, "rep": [0, 1, 2, 3, 0, 1, 2, 3, 4],
        "foo": np.arange(9.0),
        "overtime_minutes": [10, 12, 14, 16, 9, 10, 11, 15, 99.0],
        "utilisation": [0.5, 0.6, 0.7, 0.8, 0.5, NAN, 0.7, 0.8, 0.9],
    })


def test_summarise_columns_and_values() -> None:
    s = summarise(_reps())
    assert list(s.columns) == ["scenario", "policy", "kpi", "n", "mean", "sd", "ci95_low",
                               "ci95_high", "p50", "p90", "p95", "cvar95"]
    assert s.loc[s.policy == "a", "kpi"].tolist() == ["utilisation", "overtime_minutes", "foo"]
    row = s[(s.policy == "a") & (s.kpi == "overtime_minutes")].iloc[0]
    sd = math.sqrt(20 / 3)  # values 10, 12, 14, 16
    assert (row.n, row["mean"], row.sd) == (4, 13, pytest.approx(sd))
    assert row.ci95_low == pytest.approx(13 - T975_3 * sd / 2)
    assert row.ci95_high == pytest.approx(13 + T975_3 * sd / 2)
    assert (row.p50, row.p90, row.p95) == pytest.approx((13, 15.4, 15.7))
    assert row.cvar95 == pytest.approx(16)  # lower is better: the high tail
    util = s[(s.policy == "a") & (s.kpi == "utilisation")].iloc[0]
    assert util.cvar95 == pytest.approx(0.5)  # higher is better: the low tail
    util_b = s[(s.policy == "b") & (s.kpi == "utilisation")].iloc[0]
    assert util_b.n == 4 and util_b["mean"] == pytest.approx(0.725)  # NaN ignored


def test_paired_difference_on_common_reps() -> None:
    mean, lo, hi = paired_difference(_reps(), "overtime_minutes", "a", "b")
    # common reps 0..3: differences 1, 2, 3, 1 (rep 4 only ran b)
    half = T975_3 * math.sqrt(2.75 / 3) / 2
    assert (mean, lo, hi) == pytest.approx((1.75, 1.75 - half, 1.75 + half))


def test_format_table_is_aligned() -> None:
    text = format_table(summarise(_reps()))
    lines = text.splitlines()
    assert lines[0].startswith("scenario=s, policy=a") and "OR utilisation" in text
    assert "CVaR95" in lines[1] and set(lines[2]) == {"-", " "} and "13.00" in text
    body = [ln for ln in lines if ln.startswith("OR overtime")]
    assert len(body) == 2 and len(body[0]) == len(lines[1])
