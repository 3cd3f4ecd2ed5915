"""Counting resources: a request waiting for a busy type holds back only that type."""

from __future__ import annotations

import simpy

from twin.events import EventLog
from twin.resources import Pool


def _pool() -> tuple[simpy.Environment, Pool]:
    env = simpy.Environment()
    return env, Pool(env, EventLog(), "surgeon:", {"A": [(0, 1)], "B": [(0, 1)]})


def test_a_wait_for_one_type_does_not_block_another_type():
    env, pool = _pool()
    first = pool.request({"A": 1})            # A taken
    waits_a = pool.request({"A": 1})          # waits for A
    b = pool.request({"B": 1})                # B is free: served at once, not behind waits_a
    assert first.triggered and not waits_a.triggered and b.triggered
    assert pool.try_acquire({"A": 1}) is False  # nobody overtakes the A request waiting
    pool.release({"B": 1})
    assert pool.try_acquire({"B": 1}) is True   # B: nothing queued for it
    pool.release({"A": 1})
    assert waits_a.triggered


def test_same_type_requests_keep_their_priority_order():
    env, pool = _pool()
    pool.request({"A": 1})
    late = pool.request({"A": 1}, priority=2)
    urgent = pool.request({"A": 1}, priority=0)
    both = pool.request({"A": 1, "B": 1}, priority=1)
    pool.release({"A": 1})
    assert urgent.triggered and not both.triggered and not late.triggered
    pool.release({"A": 1})
    assert both.triggered and not late.triggered  # the A+B request keeps its place for A
    pool.release({"A": 1, "B": 1})
    assert late.triggered
