"""Replications: a pure function of (scenario, policy, base seed, replication index).

:func:`run_replication` runs one; :mod:`twin.experiment` splits an experiment into tasks of
replication ranges and :mod:`twin.cluster` runs them here, in local processes or on Dask.
Replication ``i`` uses streams spawned from ``SeedSequence(seed, spawn_key=(i, ...))``, so
results are identical whatever the batch size, worker count, place or finishing order.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from twin.demand import cases_frame, draw_week
from twin.events import empty_events
from twin.kpis import KpiContext, measure
from twin.model import SuiteModel
from twin.scenario import Scenario
from twin.snapshot import SuiteSnapshot
from twin.streams import Streams


@dataclass
class Results:
    """The three grains (events, one row per replication, summary) plus detail frames."""

    events: pd.DataFrame
    cases: pd.DataFrame
    replications: pd.DataFrame
    summary: pd.DataFrame
    room_days: pd.DataFrame = field(default_factory=pd.DataFrame)
    services: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write every frame as parquet (and the summary as CSV too), each file atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, df in (("events", self.events), ("cases", self.cases),
                         ("replications", self.replications), ("summary", self.summary),
                         ("room_days", self.room_days), ("services", self.services)):
            written.append(_atomic(out / f"{name}.parquet", lambda p, d=df: d.to_parquet(p, index=False)))
        written.append(_atomic(out / "summary.csv", lambda p: self.summary.to_csv(p, index=False)))
        return written


def _atomic(path: Path, write: Callable[[str], None]) -> Path:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@dataclass
class RepOutput:
    """What one replication returns."""

    rep: int
    kpis: dict[str, float]
    events: pd.DataFrame
    cases: pd.DataFrame
    room_days: pd.DataFrame
    services: pd.DataFrame


def run_replication(scn: Scenario, policy: str, seed: int, rep: int, *,
                    keep_events: bool = True, snapshot: SuiteSnapshot | None = None,
                    base_dir: Path | None = None, booked: pd.DataFrame | None = None
                    ) -> RepOutput:
    """Run replication ``rep`` of ``scn`` under the named policy and compute its KPIs
    (``booked``: the scenario's booked list already read, see :func:`twin.demand.draw_week`)."""
    from policies import get_policy

    week = draw_week(scn, Streams(seed, rep), base_dir, booked)
    model = SuiteModel(scn, get_policy(policy, scn), week, snapshot=snapshot)
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


def run_experiment(scn: Scenario, policy: str = "as-booked", reps: int = 10,
                   seed: int | None = None, workers: int = 1, keep_events: bool = True,
                   progress: Callable[[int], None] | None = None,
                   base_dir: Path | None = None, **where) -> Results:
    """Run ``reps`` replications (in ``workers`` local processes, or ``cluster=``) and gather
    the results: :func:`twin.experiment.run_experiment`."""
    from twin.experiment import run_experiment as run

    return run(scn, policy, reps, seed, workers, keep_events, progress, base_dir, **where)
