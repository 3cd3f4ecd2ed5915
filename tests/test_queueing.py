"""The twin against queueing theory: Erlang B and C on the PACU, Little's law on event logs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factory import queue_mapping
from scipy import stats

from ortwin.registry import get_policy
from ortwin.runner import run_replication
from twin.demand import draw_week
from twin.model import SuiteModel
from twin.scenario import from_mapping, load_scenario
from twin.streams import Streams


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of an M/M/c/c loss system with offered load ``a``."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in an M/M/c queue with offered load ``a`` (< c)."""
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def pacu_runs(beds: int, per_hour: float, los: float, when_full: str, reps: int):
    """Per-replication PACU outcomes: (arrivals, overflowed, mean hold minutes, P(hold))."""
    scn = from_mapping(queue_mapping(beds, per_hour, los, when_full), "<queue>")
    out = []
    for rep in range(reps):
        week = draw_week(scn, Streams(2024, rep))
        model = SuiteModel(scn, get_policy("as-booked", scn), week)
        model.run()
        ev = model.log.frame()
        req = ev[ev.event == "pacu_requested"].set_index("case_id")["time"]
        left = ev[ev.event == "out_of_room"].set_index("case_id")["time"]
        hold = (left - req).dropna()
        over = int((ev.event == "pacu_overflow").sum())
        out.append((len(req), over, float(hold.mean()), float((hold > 1e-9).mean())))
    return np.array(out)


def t_interval(x: np.ndarray, conf: float = 0.99) -> tuple[float, float]:
    m, se = x.mean(), x.std(ddof=1) / math.sqrt(len(x))
    h = stats.t.ppf(0.5 + conf / 2, len(x) - 1) * se
    return m - h, m + h


def test_erlang_formulas_against_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(4, 3.0) == pytest.approx(3.375 / 16.375)
    assert erlang_c(4, 2.0) == pytest.approx(1.3333333 / 7.6666667, rel=1e-6)


@pytest.mark.slow
def test_pacu_as_loss_system_matches_erlang_b() -> None:
    """4 beds, Poisson arrivals 1.5/h, exponential stays of 120 min: a = 3 erlangs."""
    c, lam, los = 4, 1.5, 120.0
    res = pacu_runs(c, lam, los, "overflow", reps=30)
    blocked = res[:, 1] / res[:, 0]
    lo, hi = t_interval(blocked)
    expected = erlang_b(c, lam * los / 60)
    assert res[:, 0].mean() == pytest.approx(lam * 24 * 7, rel=0.05)  # the arrivals are right
    # the run starts empty, which biases blocking down slightly over the first hours
    assert lo - 0.01 <= expected <= hi + 0.005, (expected, lo, hi)


@pytest.mark.slow
def test_pacu_with_queue_matches_erlang_c() -> None:
    """4 beds, 1/h, 120 min stays (a = 2): patients hold in the OR; mean hold = Erlang-C Wq."""
    c, lam, los = 4, 1.0, 120.0
    a, mu = lam * los / 60, 1 / los
    res = pacu_runs(c, lam, los, "hold", reps=30)
    pw = erlang_c(c, a)
    wq = pw / (c * mu - lam / 60)
    lo, hi = t_interval(res[:, 2])
    assert lo * 0.9 <= wq <= hi * 1.1, (wq, lo, hi)
    plo, phi = t_interval(res[:, 3])
    assert plo - 0.02 <= pw <= phi + 0.02, (pw, plo, phi)


def integral(events, resource: str) -> float:
    """Time integral of a resource's use, from its ``level`` events."""
    ev = events[(events.resource == resource) & (events.event == "level")]
    t, v = ev["time"].to_numpy(), ev["value"].to_numpy()
    return float(np.sum(v[:-1] * np.diff(t)))


def test_littles_law_holds_on_the_event_log() -> None:
    """Sample-path Little's law, L·T = Σ W: the area under PACU occupancy equals the summed
    PACU stays, and the area under crews in use equals crew × room time, case by case."""
    scn = load_scenario("scenarios/baseline.yaml")
    out = run_replication(scn, "as-booked", 11, 0)
    ev = out.events
    pin = ev[ev.event == "pacu_in"].set_index("case_id")["time"]
    pout = ev[ev.event == "pacu_out"].set_index("case_id")["time"]
    stays = (pout.reindex(pin.index) - pin).to_numpy()
    assert np.isfinite(stays).all()
    assert integral(ev, "pacu") == pytest.approx(stays.sum(), rel=1e-9)

    inroom = ev[ev.event == "in_room"].set_index("case_id")["time"]
    outroom = ev[ev.event == "out_of_room"].set_index("case_id")["time"]
    crew = out.cases.set_index("case_id")
    room_time = (outroom.reindex(inroom.index) - inroom)
    # one circulating nurse per case in every baseline procedure
    assert integral(ev, "staff:circulating") == pytest.approx(room_time.sum(), rel=1e-9)
    assert len(crew) >= len(inroom)

    # and the time-average form over the week: L = lambda * W within the horizon's edges
    horizon = scn.horizon_days * 1440
    lam = len(pin) / horizon
    w = stays.mean()
    l_avg = integral(ev, "pacu") / horizon
    assert l_avg == pytest.approx(lam * w, rel=1e-9)
