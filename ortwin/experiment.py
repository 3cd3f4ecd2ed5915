"""Experiments: arms (scenario x policy x seed) split into tasks by replication range.

A task is ``run_part(arm, lo, hi, events)``: replications ``lo..hi-1`` of one arm, a pure
function of small arguments. Replication ``i`` rebuilds its own streams from
``SeedSequence(seed, spawn_key=(i, ...))`` (:mod:`twin.streams`), so a worker needs only the
arm (installed once per worker by :meth:`~ortwin.cluster.Executor.share`) and two integers, and
the results are the same bit for bit whatever the batch size, the number of workers, the place
(:mod:`ortwin.cluster`) or the order tasks finish in.

Task ranges do not depend on the workers: :func:`batch_size` picks the replications per task
from the replication count alone (see docs/scaleout.md for the measurement behind it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ortwin.cluster import Executor, InProcess, using
from ortwin.runner import Results, run_replication
from ortwin.summary import summarise
from twin.replication import RepOutput, quiet_gc
from twin.scenario import Scenario

EVENTS = ("none", "sample", "all")
"""``--events``: no event logs, those of replications ``0..SAMPLE_REPS-1`` of every arm (the same
replications under every policy, for paired drill-down), or every replication's."""

SAMPLE_REPS = 10
"""Replications whose event logs ``--events sample`` keeps."""

MAX_BATCH = 50
"""Most replications in one task (measured: docs/scaleout.md)."""

MIN_TASKS = 16
"""Below ``MAX_BATCH * MIN_TASKS`` replications, tasks shrink so a run still has about this
many tasks per arm to spread over workers."""

TABLES = ("events", "cases", "room_days", "services", "replications")
"""Tables of a part; ``replications`` (one row of KPIs per replication) comes last, so a part
whose replications file exists is complete."""


def batch_size(reps: int) -> int:
    """Replications per task for an arm of ``reps`` replications: ``ceil(reps / 16)`` between 1
    and :data:`MAX_BATCH` - independent of the workers, so every place writes the same parts."""
    return max(1, min(MAX_BATCH, math.ceil(reps / MIN_TASKS)))


def spans(start: int, stop: int, batch: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges covering ``start..stop-1``, cut at multiples of ``batch``."""
    out, lo = [], start
    while lo < stop:
        hi = min(stop, (lo // batch + 1) * batch)
        out.append((lo, hi))
        lo = hi
    return out


@dataclass(frozen=True)
class Arm:
    """One scenario under one policy from one base seed, with what a worker needs to run it."""

    scenario: Scenario
    policy: str
    seed: int
    booked: pd.DataFrame | None = None
    """The scenario's booked list, read once where the run starts (workers need no file)."""

    @property
    def label(self) -> str:
        return f"{self.scenario.name} / {self.policy}"

    def token(self) -> str:
        """A short content hash naming this arm's tasks (Dask keys)."""
        from ortwin.manifest import scenario_hash

        h = hashlib.sha256(json.dumps([scenario_hash(self.scenario), self.policy, self.seed,
                                       booked_hash(self.booked)]).encode())
        return h.hexdigest()[:12]


def booked_hash(booked: pd.DataFrame | None) -> str | None:
    """SHA-256 of a booked list's content (None without one)."""
    if booked is None:
        return None
    return hashlib.sha256(booked.to_csv(index=False).encode()).hexdigest()


def make_arm(scn: Scenario, policy: str, seed: int | None = None,
             base_dir: Path | None = None) -> Arm:
    """An :class:`Arm` (``seed`` None: the scenario's), reading its booked list now if it has one
    (relative to ``base_dir``, the scenario's folder)."""
    booked = None
    if scn.booking.booked_list:
        from twin.booked_list import read_booked_list

        booked = read_booked_list(scn, base_dir)
    return Arm(scn, policy, scn.seed if seed is None else int(seed), booked)


def keeps_events(events: str, rep: int) -> bool:
    """Whether replication ``rep`` keeps its event log under ``--events``."""
    return events == "all" or (events == "sample" and rep < SAMPLE_REPS)


def run_part(arm: Arm, lo: int, hi: int, events: str = "none",
             detail: bool = True) -> dict[str, pd.DataFrame]:
    """Replications ``lo..hi-1`` of ``arm`` as tables (:data:`TABLES`; without ``detail`` only
    ``replications``). The task every executor runs."""
    with quiet_gc(collect=False):
        outs = [run_replication(arm.scenario, arm.policy, arm.seed, r,
                                keep_events=keeps_events(events, r), booked=arm.booked)
                for r in range(lo, hi)]
    return part_tables(outs, arm.scenario.name, arm.policy, detail)


def part_tables(outputs: Sequence[RepOutput], scenario: str, policy: str,
                detail: bool = True) -> dict[str, pd.DataFrame]:
    """Stack replication outputs (in replication order) into tables with ``scenario``,
    ``policy`` and ``rep`` columns."""
    outputs = sorted(outputs, key=lambda o: o.rep)
    reps = [o.rep for o in outputs]
    rows = pd.DataFrame([o.kpis for o in outputs])
    rows.insert(0, "rep", reps)
    rows.insert(0, "policy", policy)
    rows.insert(0, "scenario", scenario)
    out = {"replications": rows}
    if detail:
        for name in ("events", "cases", "room_days", "services"):
            out[name] = _stack([getattr(o, name) for o in outputs], reps, scenario, policy)
    return out


def _stack(frames: list[pd.DataFrame], reps: list[int], scenario: str,
           policy: str) -> pd.DataFrame:
    parts = [f.assign(rep=r) for f, r in zip(frames, reps, strict=True) if len(f)]
    if not parts:
        return pd.DataFrame()
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "policy", policy)
    df.insert(0, "scenario", scenario)
    return df


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Stack non-empty frames (an empty frame when there are none)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


PartSink = Callable[[int, int, int, dict[str, pd.DataFrame]], None]
"""Called with ``(arm index, lo, hi, tables)`` as each part finishes."""


def execute(arms: Sequence[Arm], parts: Sequence[tuple[int, int, int]], executor: Executor,
            sink: PartSink, events: str = "none", detail: bool = True,
            progress: Callable[[int], None] | None = None) -> None:
    """Run every ``(arm index, lo, hi)`` part on ``executor``; hand each to ``sink`` as it
    finishes (in finishing order) and report its replications to ``progress``."""
    if events not in EVENTS:
        raise ValueError(f"events: expected one of {', '.join(EVENTS)}, got {events!r}")
    tokens = [f"ortwin-{a.token()}" for a in arms]
    shared = {}
    tasks = []
    for i, lo, hi in parts:
        if i not in shared:
            shared[i] = executor.share(arms[i], f"{tokens[i]}-arm")
        tasks.append((f"{tokens[i]}-{events[0]}{int(detail)}-reps-{lo:06d}-{hi:06d}",
                      (shared[i], lo, hi, events, detail)))
    index = {key: part for (key, _), part in zip(tasks, parts, strict=True)}
    with quiet_gc():  # in-process runs: once for the whole run (no-op inside run_part)
        for key, tables in executor.run(run_part, tasks):
            i, lo, hi = index[key]
            sink(i, lo, hi, tables)
            if progress:
                progress(hi - lo)


def run_arms(arms: Sequence[Arm], reps: int, executor: Executor | None = None,
             events: str = "none", detail: bool = True,
             progress: Callable[[int], None] | None = None) -> list[Results]:
    """Run ``reps`` replications of every arm (all arms' tasks at once, so workers stay busy)
    and gather each arm's :class:`Results` in memory, sorted by replication."""
    if reps < 1:
        raise ValueError("reps must be at least 1")
    batch = batch_size(reps)
    parts = [(i, lo, hi) for i in range(len(arms)) for lo, hi in spans(0, reps, batch)]
    got: dict[int, list[tuple[int, dict[str, pd.DataFrame]]]] = {i: [] for i in range(len(arms))}
    own = executor is None
    ex = executor or InProcess()
    try:
        execute(arms, parts, ex, lambda i, lo, hi, t: got[i].append((lo, t)), events, detail,
                progress)
    finally:
        if own:
            ex.close()
    return [_results(sorted(got[i], key=lambda p: p[0])) for i in range(len(arms))]


def _results(parts: list[tuple[int, dict[str, pd.DataFrame]]]) -> Results:
    def table(name: str) -> pd.DataFrame:
        return concat(t.get(name, pd.DataFrame()) for _, t in parts)

    rows = table("replications")
    return Results(events=table("events"), cases=table("cases"),
                   replications=rows, summary=summarise(rows), room_days=table("room_days"),
                   services=table("services"))


def run_experiment(scn: Scenario, policy: str = "as-booked", reps: int = 10,
                   seed: int | None = None, workers: int = 1, keep_events: bool = True,
                   progress: Callable[[int], None] | None = None,
                   base_dir: Path | None = None, *, cluster: str | Executor | None = None,
                   detail: bool = True) -> Results:
    """Run ``reps`` replications of one scenario under one policy and gather the results in
    memory. ``cluster``: an open executor, or a ``--cluster`` value opened (with ``workers``)
    for this call only; without ``detail`` only the replications and summary are kept."""
    arm = make_arm(scn, policy, seed, base_dir)
    with using(cluster, workers) as ex:
        return run_arms([arm], reps, ex, "all" if keep_events else "none", detail, progress)[0]
