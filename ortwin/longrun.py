"""Long runs: an experiment streamed to a parquet dataset as its tasks finish, resumable, and
optionally run until a precision target is met.

Each finished task is written at once as its part of the dataset (:mod:`ortwin.dataset`), so
memory holds one task's tables at a time, whatever the replication count; only the KPI rows
(one per replication) are read back at the end for the summary. ``manifest.json`` records the
inputs - each scenario's and policy's content hash, the booked list's, the code's, the package
version, base seeds, events mode, batch size - and the replication ranges planned.

``--resume`` reads the manifest, refuses (one line) when the inputs now differ, and runs only
the parts whose ``replications`` file is missing: an interrupted run (Ctrl-C, a killed
process, a lost machine) continues where it stopped and ends with the same dataset as a run
that was never interrupted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ortwin.cluster import Executor
from ortwin.dataset import clear_parts, part_done, read_table, write_part
from ortwin.experiment import Arm, batch_size, booked_hash, execute, spans
from ortwin.manifest import MANIFEST, package_version, read_manifest, scenario_hash, write_manifest
from ortwin.precision import Target, next_reps, status
from ortwin.summary import summarise
from twin.io import atomic_write

DEFAULT_MAX_REPS = 10_000
"""``--max-reps``: the cap of a ``--precision`` run, per arm."""

PRECISION_START = 100
"""First round of a ``--precision`` run when ``--reps`` is not given."""

STALE = ("replications.parquet", "summary.parquet", "summary.csv", "differences.parquet",
         "differences.csv", "precision.csv",
         "events.parquet", "cases.parquet", "room_days.parquet", "services.parquet")
"""Files a previous run may have left (the last four: whole-table files from before datasets);
a fresh run removes them with the parts, so nothing of another experiment stays beside it."""


class ResumeError(ValueError):
    """``--resume`` cannot continue this directory; the message is one line."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says how far it got and how to resume."""


def _tree_hash(package: str) -> str:
    import importlib

    root = Path(importlib.import_module(package).__file__).parent
    h = hashlib.sha256()
    for f in sorted(root.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def code_hash() -> str:
    """SHA-256 of the twin's source (``twin/*.py``): a resume refuses if the model changed."""
    return _tree_hash("twin")


def policy_hash(policy: str) -> str:
    """SHA-256 of a policy: its name and the policies' source (``policies/*.py``)."""
    return hashlib.sha256(f"{policy}\0{_tree_hash('policies')}".encode()).hexdigest()


def run_inputs(arms: Sequence[Arm], events: str, batch: int, reps: int | None,
               targets: Sequence[Target] | None, max_reps: int | None) -> dict[str, Any]:
    """What determines a run's results: a resume must find exactly these in the manifest."""
    return {
        "ortwin_version": package_version(),
        "code_sha256": code_hash(),
        "events": events,
        "batch": int(batch),
        "reps": None if targets else int(reps or 0),
        "precision": [str(t) for t in targets] if targets else None,
        "min_reps": int(reps or 0) if targets else None,
        "max_reps": int(max_reps) if targets and max_reps else None,
        "arms": [{"scenario": a.scenario.name, "policy": a.policy, "seed": int(a.seed),
                  "scenario_sha256": scenario_hash(a.scenario),
                  "policy_sha256": policy_hash(a.policy),
                  "booked_sha256": booked_hash(a.booked)} for a in arms],
    }


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first input that differs, in words (None when they agree)."""
    for k in ("ortwin_version", "code_sha256", "events", "batch", "reps", "precision",
              "min_reps", "max_reps"):
        if old.get(k) != new.get(k):
            a, b = old.get(k), new.get(k)
            if isinstance(a, str) and len(a) == 64:
                a, b = a[:12] + "…", str(b)[:12] + "…"
            return f"{k} was {a} and is now {b}"
    oa, na = old.get("arms") or [], new["arms"]
    if [(a.get("scenario"), a.get("policy")) for a in oa] != [(a["scenario"], a["policy"]) for a in na]:
        return ("scenarios x policies were " + ", ".join(f"{a.get('scenario')}/{a.get('policy')}" for a in oa)
                + " and are now " + ", ".join(f"{a['scenario']}/{a['policy']}" for a in na))
    for a, b in zip(oa, na, strict=True):
        for k, what in (("seed", "seed"), ("scenario_sha256", "scenario content"),
                        ("policy_sha256", "policy code"), ("booked_sha256", "booked list")):
            if a.get(k) != b[k]:
                return f"{what} of {b['scenario']}/{b['policy']} changed"
    return None


@dataclass
class LongRun:
    """What a streamed run produced (the dataset itself is on disk under ``out``)."""

    out: Path
    reps: int
    """Replications per arm at the end."""
    replications: pd.DataFrame
    summary: pd.DataFrame
    precision: pd.DataFrame | None
    parts_run: int
    parts_resumed: int
    seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)


def run_streamed(arms: Sequence[Arm], out: Path, executor: Executor, manifest: dict[str, Any], *,
                 reps: int, events: str = "none", batch: int | None = None,
                 targets: Sequence[Target] | None = None, max_reps: int | None = None,
                 resume: bool = False, progress: Callable[[int], None] | None = None,
                 total: Callable[[int], None] | None = None,
                 sink: Callable[[int, int, int], None] | None = None) -> LongRun:
    """Run ``reps`` replications of every arm (with ``targets``: at least ``reps``, then rounds
    until each target is met or ``max_reps``), writing each part under ``out`` as it finishes.
    ``manifest`` (:func:`ortwin.manifest.build_manifest`) is extended with the inputs and ranges.
    ``total`` is told the planned replication total (it grows with precision rounds) and
    ``sink`` each part written."""
    out = Path(out)
    max_reps = max(max_reps or DEFAULT_MAX_REPS, reps) if targets else None
    batch = int(batch or batch_size(max_reps if targets else reps))
    inputs = run_inputs(arms, events, batch, reps, targets, max_reps)
    keys = [(a.scenario.name, a.policy) for a in arms]
    if resume:
        old = read_manifest(out)
        if not old.get("inputs"):
            raise ResumeError(f"--resume: {out / MANIFEST} not found or not from a streamed run; "
                              f"nothing to resume (run without --resume)")
        diff = _difference(old["inputs"], inputs)
        if diff is not None:
            raise ResumeError(f"--resume: {out / MANIFEST} is for different inputs ({diff}); "
                              f"use another --out or run without --resume")
        for tmp in (out / "parts").rglob(".*"):  # temporary files of writes that were cut off
            if tmp.is_file():
                tmp.unlink()
    else:
        clear_parts(out)
        for name in STALE:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    man = {**manifest, "inputs": inputs, "complete": False, "where": executor.label}

    def record(n: int) -> None:
        man["ranges"] = [list(s) for s in spans(0, n, batch)]
        man["reps"] = n
        for r in man.get("runs", []):
            r["reps"] = n
        write_manifest(out, man)

    def written(i: int, lo: int, hi: int, tables: dict[str, pd.DataFrame]) -> None:
        write_part(out, arms[i].scenario.name, arms[i].policy, lo, hi, tables)
        if sink:
            sink(i, lo, hi)

    done_n, n, ran, resumed, st, rounds = 0, reps, 0, 0, None, []
    while True:
        rounds.append(n)
        record(n)
        if total:
            total(n * len(arms))
        todo = []
        for i, (scn, pol) in enumerate(keys):
            for lo, hi in spans(done_n, n, batch):
                if resume and part_done(out, scn, pol, lo, hi):
                    resumed += 1
                    if progress:
                        progress(hi - lo)
                else:
                    todo.append((i, lo, hi))
        try:
            execute(arms, todo, executor, written, events, True, progress)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; the parts finished so far are in {out}/parts: "
                              f"run the same command with --resume to continue") from None
        ran += len(todo)
        done_n = n
        if not targets:
            break
        kpis = list(dict.fromkeys(t.kpi for t in targets))
        st = status(read_table(out, "replications", keys, ["scenario", "policy", *kpis]), targets)
        nxt = next_reps(n, st, batch, max_reps or n)
        if nxt == n:
            break
        n = nxt
    rows = read_table(out, "replications", keys)
    expected = n * len(arms)
    if len(rows) != expected:  # parts of another run in the same folder, or files removed
        raise ResumeError(f"{out}/parts: expected {expected} replications, found {len(rows)}; "
                          f"run again without --resume")
    summary = summarise(rows)
    atomic_write(out / "replications.parquet", lambda p: rows.to_parquet(p, index=False))
    atomic_write(out / "summary.parquet", lambda p: summary.to_parquet(p, index=False))
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    if st is not None:
        atomic_write(out / "precision.csv", lambda p: st.to_csv(p, index=False))
        man["precision_result"] = {"reps": n, "met": bool(st["met"].all()),
                                   "max_reps": max_reps, "rounds": rounds}
    seconds = time.perf_counter() - t0
    man.update(complete=True, parts_run=ran, parts_resumed=resumed,
               seconds=round(seconds, 3))
    record(n)
    return LongRun(out, n, rows, summary, st, ran, resumed, seconds, man)
