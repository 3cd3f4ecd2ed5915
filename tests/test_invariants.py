"""Invariants over generated suites: capacities never exceeded, no case lost, milestones in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
from factory import small_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ortwin.registry import get_policy
from twin.demand import draw_week
from twin.events import CASE_MILESTONES, ROOM_EVENTS, TERMINAL
from twin.model import SuiteModel
from twin.streams import Streams

suites = st.fixed_dictionaries({
    "rooms": st.integers(1, 4),
    "services": st.integers(1, 3),
    "surgeons_per_service": st.integers(1, 2),
    "staff": st.integers(1, 4),
    "night_staff": st.integers(0, 2),
    "pacu_beds": st.integers(1, 4),
    "trays": st.integers(1, 3),
    "machines": st.integers(1, 2),
    "batch": st.integers(1, 3),
    "ward": st.integers(1, 8),
    "icu": st.integers(1, 3),
    "occupancy": st.floats(0.0, 1.0),
    "days": st.integers(1, 3),
    "electives_per_week": st.floats(0.0, 60.0),
    "addons_per_day": st.floats(0.0, 8.0),
    "cancel": st.floats(0.0, 0.3),
    "end_mode": st.sampled_from(["overtime", "cancel"]),
    "when_full": st.sampled_from(["hold", "overflow"]),
    "downtime_rate": st.sampled_from([0.0, 0.5, 2.0]),
})


def simulate(params: dict, rep: int):
    """Run one replication of a small suite; return (events, week, model)."""
    scn = small_scenario(**params)
    week = draw_week(scn, Streams(7, rep))
    model = SuiteModel(scn, get_policy("as-booked", scn), week)
    model.run()
    return model.log.frame(), week, model


def resource_never_over(events: pd.DataFrame, resource: str) -> None:
    """Every time use rises, it is within the capacity in force at that instant."""
    ev = events[events["resource"] == resource]
    cap, level = 0.0, 0.0
    for kind, value in zip(ev["event"], ev["value"], strict=True):
        if kind == "capacity":
            cap = value
        else:
            assert value >= 0, f"{resource}: negative use {value}"
            if value > level:
                assert value <= cap, f"{resource}: {value} in use with capacity {cap}"
            level = value


def intervals_disjoint(starts: np.ndarray, ends: np.ndarray, what: str) -> None:
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    assert np.all(s[1:] >= e[:-1] - 1e-9), f"{what}: overlapping intervals"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=suites, rep=st.integers(0, 1000))
def test_capacities_cases_and_milestones(params: dict, rep: int) -> None:
    events, week, model = simulate(params, rep)

    # capacities: every pooled resource, whatever its schedule
    for resource in events.loc[events["resource"] != "", "resource"].unique():
        resource_never_over(events, resource)

    case_ev = events[(events["case_id"] != "") & ~events["event"].isin(ROOM_EVENTS)]
    pivot = case_ev.pivot_table(index="case_id", columns="event", values="time", aggfunc="first")
    pivot = pivot.reindex(columns=list(dict.fromkeys(CASE_MILESTONES + TERMINAL)))

    # rooms: one patient at a time; the next patient enters after the turnover
    inroom = case_ev[case_ev["event"] == "in_room"].set_index("case_id")
    out = case_ev[case_ev["event"] == "out_of_room"].set_index("case_id")["time"]
    for room, grp in inroom.groupby("room"):
        intervals_disjoint(grp["time"].to_numpy(), out.reindex(grp.index).to_numpy(), f"room {room}")
    # surgeons: never in two rooms at once (held from in room to procedure end)
    pend = case_ev[case_ev["event"] == "procedure_end"].set_index("case_id")["time"]
    surgeon = pd.Series({cid: c.surgeon for cid, c in week.cases.items()})
    ops = inroom.assign(surgeon=surgeon.reindex(inroom.index), end=pend.reindex(inroom.index))
    for name, grp in ops.groupby("surgeon"):
        intervals_disjoint(grp["time"].to_numpy(), grp["end"].to_numpy(), f"surgeon {name}")

    # no case lost: every case ends in exactly one terminal state
    terminal = case_ev[case_ev["event"].isin(TERMINAL)]
    counts = terminal.groupby("case_id").size()
    assert set(counts.index) == set(week.cases), "a case has no terminal event"
    assert (counts == 1).all(), "a case ended twice"
    assert set(case_ev["case_id"]) <= set(week.cases)

    # milestones in order, terminal last
    order = [m for m in CASE_MILESTONES if m not in ("booked", "scheduled")]
    times = pivot[order].to_numpy()
    for i in range(times.shape[0]):
        row = times[i][~np.isnan(times[i])]
        assert np.all(np.diff(row) >= -1e-9), f"{pivot.index[i]} milestones out of order: {row}"
    last = case_ev.groupby("case_id")["time"].max()
    assert (terminal.set_index("case_id")["time"] >= last.reindex(terminal["case_id"]).to_numpy() - 1e-9).all()

    # a completed case passed through every milestone of its path
    done = pivot[pivot["pacu_out"].notna()]
    for m in ("in_room", "procedure_start", "procedure_end", "out_of_room"):
        assert done[m].notna().all(), f"completed case without {m}"
