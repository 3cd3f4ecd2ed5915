"""Starting the twin from a snapshot: work in progress resumes with its residual life."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factory import small_mapping
from scipy import integrate, special

from ortwin.registry import get_policy
from twin.demand import draw_week
from twin.distributions import Lognormal
from twin.model import SuiteModel
from twin.scenario import from_mapping
from twin.snapshot import PacuSnapshot, RoomSnapshot, SuiteSnapshot
from twin.streams import Streams


def lognormal_residual_mean(mu: float, s: float, e: float) -> float:
    """E[X − e | X > e] for X ~ lognormal(mu, s), in closed form."""
    tail = 1 - special.ndtr((math.log(e) - mu) / s)
    partial = math.exp(mu + s * s / 2) * special.ndtr((mu + s * s - math.log(e)) / s)
    return partial / tail - e


def test_residual_mean_formula_against_integration() -> None:
    d = Lognormal(median=80, sigma=0.5)
    mu, s = d.mu_sigma
    num = integrate.quad(lambda x: (1 - d.cdf(x)), 70, np.inf)[0] / (1 - d.cdf(70))
    assert lognormal_residual_mean(mu, s, 70) == pytest.approx(num, rel=1e-6)
    u = (np.arange(20000) + 0.5) / 20000
    assert np.mean(d.residual(u, 70)) == pytest.approx(num, rel=2e-3)


def one_room():
    m = small_mapping(rooms=1, services=1, pacu_beds=20, ward=200, icu=50, trays=5,
                      electives_per_week=30, addons_per_day=0, cancel=0.0, days=1)
    m["services"][0]["procedures"] = [{"id": "p", "duration": {"kind": "lognormal",
                                                              "median": 80, "sigma": 0.5},
                                       "patient_class": {"outpatient": 1.0}}]
    return from_mapping(m)


def test_case_in_progress_gets_its_residual_time() -> None:
    """A case 70 minutes into its room time finishes, on average, after E[D − 70 | D > 70]."""
    scn = one_room()
    proc = scn.services[0].procedures[0].duration
    e = 70.0
    remaining = []
    for rep in range(400):
        week = draw_week(scn, Streams(11, rep))
        booked = [c for c in week.cases.values() if c.booked_room]
        if not booked:
            continue
        first = min(booked, key=lambda c: c.booked_start)
        t0 = first.booked_start + e
        snap = SuiteSnapshot(time=t0, rooms=(RoomSnapshot("R0", "in_case", first.id, "procedure", e),))
        model = SuiteModel(scn, get_policy("as-booked", scn), week, snapshot=snap)
        model.run()
        ev = model.log.frame()
        out = ev[(ev.case_id == first.id) & (ev.event == "out_of_room")]["time"]
        assert len(out) == 1
        remaining.append(float(out.iloc[0]) - t0)
        # its earlier milestone is dated back, the rest of the day goes on
        inroom = ev[(ev.case_id == first.id) & (ev.event == "in_room")]["time"]
        assert float(inroom.iloc[0]) == pytest.approx(first.booked_start)
    mu, s = proc.mu_sigma
    expected = lognormal_residual_mean(mu, s, e)
    r = np.array(remaining)
    assert len(r) > 350
    half = 3 * r.std(ddof=1) / math.sqrt(len(r))
    assert abs(r.mean() - expected) < half, (r.mean(), expected, half)
    # never a fresh full duration: the full mean would be far larger than the residual here
    assert r.mean() < proc.mean - 10


def test_snapshot_holds_resources_and_pacu_patients_resume() -> None:
    scn = one_room()
    week = draw_week(scn, Streams(3, 0))
    booked = sorted((c for c in week.cases.values() if c.booked_room), key=lambda c: c.booked_start)
    first, second = booked[0], booked[1]
    t0 = second.booked_start - 10
    snap = SuiteSnapshot(
        time=t0,
        rooms=(RoomSnapshot("R0", "turnover", first.id, elapsed=5.0),),
        pacu=(PacuSnapshot(first.id, "recovering", elapsed=30.0),),
        done=frozenset(),
    )
    model = SuiteModel(scn, get_policy("as-booked", scn), week, snapshot=snap)
    model.run()
    ev = model.log.frame()
    assert ev["time"].min() >= t0 - 30.0 - 1e-9  # nothing simulated before the snapshot
    pacu_out = ev[(ev.case_id == first.id) & (ev.event == "pacu_out")]
    assert len(pacu_out) == 1
    nxt = ev[(ev.case_id == second.id) & (ev.event == "in_room")]["time"]
    turnover_end = ev[(ev.event == "turnover_end") & (ev.room == "R0")]["time"].min()
    assert float(nxt.iloc[0]) >= turnover_end  # the next case waits for the room to be turned
    level = ev[(ev.resource == "pacu") & (ev.event == "level")]["value"]
    assert level.iloc[0] == 1  # the recovering patient holds a PACU bed from the start
