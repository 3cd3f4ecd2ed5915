"""One replication: a pure function of (scenario, policy object, base seed, replication index).

Replication ``i`` draws its patients from streams spawned from ``SeedSequence(seed,
spawn_key=(i, ...))``, runs them through the model under the policy given and measures its KPIs,
so results are identical whatever the batch size, worker count, place or finishing order.
Policies are passed as objects: resolving a policy by name is the application's business
(:mod:`ortwin.registry`). :func:`quiet_gc` trims the garbage collector's work over many.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from twin.demand import cases_frame, draw_week
from twin.events import empty_events
from twin.kpis import KpiContext, measure
from twin.model import SuiteModel
from twin.policy import Policy
from twin.scenario import Scenario
from twin.snapshot import SuiteSnapshot
from twin.streams import Streams


@dataclass
class RepOutput:
    """What one replication returns."""

    rep: int
    kpis: dict[str, float]
    events: pd.DataFrame
    cases: pd.DataFrame
    room_days: pd.DataFrame
    services: pd.DataFrame


def replicate(scn: Scenario, policy: Policy, seed: int, rep: int, *,
              keep_events: bool = True, snapshot: SuiteSnapshot | None = None,
              base_dir: Path | None = None, booked: pd.DataFrame | None = None) -> RepOutput:
    """Run replication ``rep`` of ``scn`` under ``policy`` and compute its KPIs (``booked``:
    the scenario's booked list already read, see :func:`twin.demand.draw_week`). A policy
    object keeps state over a run: give each replication a fresh one."""
    week = draw_week(scn, Streams(seed, rep), base_dir, booked)
    model = SuiteModel(scn, policy, week, snapshot=snapshot)
    model.run()
    events = model.log.frame()
    cases = cases_frame(week)
    kpis, room_days, services = measure(events, cases, KpiContext.from_scenario(scn))
    return RepOutput(
        rep=rep,
        kpis=kpis,
        events=events if keep_events else empty_events(),
        cases=cases if keep_events else cases.iloc[0:0],
        room_days=room_days,
        services=services,
    )


_QUIET = [0]


@contextlib.contextmanager
def quiet_gc(threshold: int = 50_000, collect: bool = True):
    """Collect once, freeze what is alive (modules, the scenario) out of later scans, and
    collect the young generation less often; restores the thresholds afterwards. A replication
    makes few reference cycles, so this only trims time the collector would spend rescanning.
    Re-entrant: inside another ``quiet_gc`` it does nothing. ``collect=False`` skips the first
    full collection (200 ms in a worker that holds pandas, SciPy and Dask): a task does that,
    and garbage frozen with the rest is collected after the thaw."""
    if _QUIET[0]:
        yield
        return
    old = gc.get_threshold()
    if collect:
        gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, old[1], old[2])
    _QUIET[0] += 1
    try:
        yield
    finally:
        _QUIET[0] -= 1
        gc.set_threshold(*old)
        gc.unfreeze()


__all__ = ["RepOutput", "quiet_gc", "replicate"]
