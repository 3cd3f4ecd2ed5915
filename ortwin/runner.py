"""Replications and experiments by policy name, and their results on disk.

:func:`run_replication` runs one (:func:`twin.replication.replicate` with the named policy);
:mod:`ortwin.experiment` splits an experiment into tasks of
replication ranges and :mod:`ortwin.cluster` runs them here, in local processes or on Dask.
Replication ``i`` uses streams spawned from ``SeedSequence(seed, spawn_key=(i, ...))``, so
results are identical whatever the batch size, worker count, place or finishing order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ortwin.registry import get_policy
from twin.io import atomic_write
from twin.replication import RepOutput, replicate
from twin.scenario import Scenario
from twin.snapshot import SuiteSnapshot


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
            written.append(atomic_write(out / f"{name}.parquet", lambda p, d=df: d.to_parquet(p, index=False)))
        written.append(atomic_write(out / "summary.csv", lambda p: self.summary.to_csv(p, index=False)))
        return written


def run_replication(scn: Scenario, policy: str, seed: int, rep: int, *,
                    keep_events: bool = True, snapshot: SuiteSnapshot | None = None,
                    base_dir: Path | None = None, booked: pd.DataFrame | None = None
                    ) -> RepOutput:
    """Run replication ``rep`` of ``scn`` under the named policy (a fresh one from
    :func:`ortwin.registry.get_policy`) and compute its KPIs: :func:`twin.replication.replicate`."""
    return replicate(scn, get_policy(policy, scn), seed, rep, keep_events=keep_events,
                     snapshot=snapshot, base_dir=base_dir, booked=booked)


__all__ = ["RepOutput", "Results", "run_replication"]
