"""Scale-out: the 20-OR week at 10,000 replications on local processes and on Dask.

    .venv/bin/python bench/bench_scaleout.py [--only big,scaling,batch,memory] [--reps 10000]
        [--workers 2] [--big-cluster local[,dask]] [--memory-cluster local|dask]
        [--work out/bench_scaleout] [--keep] [--smoke] [--json PATH]

The workload is the 20-OR week: ``scenarios/baseline.yaml`` doubled (``doubled`` of
``bench/bench_cpsat.py``: every room, block, surgeon, staff shift, tray and PACU bed twice,
elective demand twice), policy as-booked, the scenario's seed, no event logs (``--events none``).

1. big: ``--reps`` replications (default 10,000) streamed to a parquet dataset by
   ``ortwin.longrun.run_streamed`` on ``--workers`` local processes (and, with ``--big-cluster
   dask``, on a Dask LocalCluster), end to end (workers started, parts written, KPI rows read
   back). Goal: 10,000 replications in 600 s or less. Reference: the first ``--ref-reps``
   replications through the same ``run_streamed`` in this process, one after another. Reports
   seconds per replication sequential and parallel (wall / N), their ratio, the parallel
   efficiency (sequential per rep / (workers x parallel per rep)), and whether the parallel
   run's ``replications.parquet`` rows for the reference range equal the sequential ones.
2. scaling: ``--scaling-reps`` replications at the default batch size (``batch_size(reps)``) in
   this process, on 1 and N local processes and on Dask LocalClusters of 1 and N workers. Each
   executor is opened and every worker warmed up (two one-replication tasks per worker) before
   timing; those start-up seconds are reported apart. Two timings per executor: ``execute``
   with a sink that drops the tables (compute + transport of every table, no disk), and the
   tasks run through a wrapper (``timed_part``) that times ``run_part`` inside the worker and
   returns only (seconds, rows, pid). From the second: overhead per task = (wall x workers -
   sum of in-task seconds) / tasks, which counts scheduling, argument and result transport and
   the workers' idle time at the end of the run. Efficiency: rate / (workers x the in-process
   rate of the same timing).
3. batch: ``--batch-reps`` replications on N local processes and on a Dask LocalCluster of N
   workers at batch sizes ``--batch-sizes`` (default 1, 5, 10, 25, 50, 100), through the timing
   wrapper: replications/s, overhead per task, utilisation (in-task seconds / (wall x workers))
   and efficiency against this process's sequential rate - the measurement behind
   ``ortwin.experiment.MAX_BATCH``.
4. memory: ``ortwin run <20-OR YAML> --reps N --events none --workers N --out DIR`` as a
   subprocess for each of ``--memory-reps`` (default 1,000 and 10,000), its process tree's RSS
   sampled with psutil every 0.2 s: peak RSS of the client, of the largest worker and of the
   whole tree, and wall seconds. The doubled scenario is written to a YAML file first and must
   load back to the same model (same ``scenario_hash``). RSS counts pages a forked worker still
   shares with its parent in both, so the tree total overstates what the run holds.

``--smoke`` shrinks every section (40 replications, reference 20, batch sizes 1, 5, 10 on 40,
memory 40 and 80) to check the script in a minute or two. Timings depend on the machine and on
its load (the load average is printed); compare runs only from the same machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import pandas as pd  # noqa: E402
from common import write_json  # noqa: E402

from ortwin.cluster import DaskCluster, Executor, InProcess, LocalProcesses  # noqa: E402
from ortwin.experiment import Arm, batch_size, execute, make_arm, run_part, spans  # noqa: E402
from twin.scenario import Scenario, load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("big", "scaling", "batch", "memory")
KINDS = ("in-process", "local", "dask")
GOAL_REPS, GOAL_S = 10_000, 600.0
"""The goal: 10,000 replications of the 20-OR week in 600 s or less."""
WARM_REP = 1_000_000
"""Warm-up tasks run replications from here on, outside every measured range."""
SAMPLE_S = 0.2
"""Seconds between two RSS samples of the memory section."""
FULL = {"reps": 10_000, "ref_reps": 200, "scaling_reps": 400, "batch_reps": 400,
        "batch_sizes": "1,5,10,25,50,100", "memory_reps": "1000,10000"}
SMOKE = {"reps": 40, "ref_reps": 20, "scaling_reps": 40, "batch_reps": 40,
         "batch_sizes": "1,5,10", "memory_reps": "40,80"}
_tags = itertools.count()


# --- helpers -----------------------------------------------------------------------------

def twenty_or_week() -> Scenario:
    """The 20-OR suite: the baseline scenario doubled (imported here: OR-Tools loads with it)."""
    from bench_cpsat import doubled

    return doubled(load_scenario(ROOT / "scenarios" / "baseline.yaml"))


def timed_part(arm: Arm, lo: int, hi: int, events: str, detail: bool) -> tuple[float, int, int]:
    """``run_part`` timed inside the worker: (seconds, replication rows, worker pid)."""
    t0 = time.perf_counter()
    tables = run_part(arm, lo, hi, events, detail)
    return time.perf_counter() - t0, len(tables["replications"]), os.getpid()


def open_executor(kind: str, workers: int) -> Executor:
    """An executor of ``kind`` (:data:`KINDS`) with ``workers`` workers."""
    if kind == "in-process":
        return InProcess()
    if kind == "local":
        return LocalProcesses(workers)
    if kind == "dask":
        return DaskCluster(None, workers)
    raise ValueError(f"unknown executor kind {kind!r}")


def started(kind: str, workers: int, arm: Arm) -> tuple[Executor, Any, dict[str, Any]]:
    """Open an executor, share the arm and warm every worker up; with the start-up seconds."""
    t0 = time.perf_counter()
    ex = open_executor(kind, workers)
    t1 = time.perf_counter()
    handle = ex.share(arm, f"ortwin-{arm.token()}-arm")  # the key execute() shares it under
    warm = [(f"scaleout-warm-{next(_tags)}", (handle, WARM_REP + i, WARM_REP + i + 1, "none",
                                               True)) for i in range(2 * ex.workers)]
    pids = {pid for _, (_, _, pid) in ex.run(timed_part, warm)}
    t2 = time.perf_counter()
    return ex, handle, {"open_s": t1 - t0, "warmup_s": t2 - t1, "start_s": t2 - t0,
                        "workers": int(ex.workers), "warm_pids": len(pids), "label": ex.label}


def timed_run(ex: Executor, handle: Any, reps: int, batch: int) -> dict[str, Any]:
    """Replications ``0..reps-1`` in tasks of ``batch`` through :func:`timed_part`."""
    tag = next(_tags)
    tasks = [(f"scaleout-{tag}-b{batch}-{lo:06d}-{hi:06d}", (handle, lo, hi, "none", True))
             for lo, hi in spans(0, reps, batch)]
    busy, rows, pids = 0.0, 0, set()
    t0 = time.perf_counter()
    for _key, (sec, n, pid) in ex.run(timed_part, tasks):
        busy += sec
        rows += n
        pids.add(pid)
    wall = time.perf_counter() - t0
    if rows != reps:
        raise AssertionError(f"timed run returned {rows} rows for {reps} replications")
    w = int(ex.workers)
    return {"reps": reps, "batch": batch, "tasks": len(tasks), "wall_s": wall,
            "reps_per_s": reps / wall, "in_task_s_per_rep": busy / reps,
            "overhead_ms_per_task": (wall * w - busy) / len(tasks) * 1e3,
            "utilisation": busy / (wall * w), "workers": w, "pids_seen": len(pids)}


def execute_run(ex: Executor, arm: Arm, reps: int) -> dict[str, Any]:
    """Replications ``0..reps-1`` through ``execute`` at the default batch, tables dropped."""
    batch = batch_size(reps)
    parts = [(0, lo, hi) for lo, hi in spans(0, reps, batch)]
    rows = 0

    def drop(i: int, lo: int, hi: int, tables: dict[str, pd.DataFrame]) -> None:
        """Count the part's replications and drop its tables."""
        nonlocal rows
        rows += len(tables["replications"])

    t0 = time.perf_counter()
    execute([arm], parts, ex, drop, "none", True)
    wall = time.perf_counter() - t0
    if rows != reps:
        raise AssertionError(f"execute returned {rows} rows for {reps} replications")
    return {"reps": reps, "batch": batch, "tasks": len(parts), "wall_s": wall,
            "reps_per_s": reps / wall}


def tree_size_mb(path: Path) -> float:
    """Megabytes of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def ints(text: str) -> list[int]:
    """``"1,5,10"`` as a list of positive integers."""
    out = [int(t) for t in text.split(",") if t.strip()]
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return out


# --- 1. big ------------------------------------------------------------------------------

def section_big(arm: Arm, reps: int, ref_reps: int, workers: int, kinds: list[str],
                work: Path, keep: bool) -> dict[str, Any]:
    """``reps`` replications streamed to disk in parallel against a sequential reference."""
    from ortwin.longrun import run_streamed
    from ortwin.manifest import build_manifest

    ref_reps = min(ref_reps, reps)
    base = Path(tempfile.mkdtemp(prefix="big-", dir=work))

    def manifest(n: int) -> dict[str, Any]:
        """The ``ortwin run`` manifest of ``n`` replications."""
        return build_manifest("run", [arm.scenario], [arm.policy], arm.policy, n, [arm.seed],
                              [None])

    try:
        t0 = time.perf_counter()
        run_streamed([arm], base / "sequential", InProcess(), manifest(ref_reps), reps=ref_reps,
                     events="none")
        seq_wall = time.perf_counter() - t0
        seq_rows = pd.read_parquet(base / "sequential" / "replications.parquet")
        seq = seq_wall / ref_reps
        res: dict[str, Any] = {"reps": reps, "ref_reps": ref_reps, "workers": workers,
                               "sequential": {"wall_s": seq_wall, "s_per_rep": seq},
                               "parallel": {}}
        for kind in kinds:
            out = base / kind
            t0 = time.perf_counter()
            ex = open_executor(kind, workers)
            open_s = time.perf_counter() - t0
            try:
                run = run_streamed([arm], out, ex, manifest(reps), reps=reps, events="none")
            finally:
                ex.close()
            wall = time.perf_counter() - t0
            rows = pd.read_parquet(out / "replications.parquet")
            head = rows[rows["rep"] < ref_reps].reset_index(drop=True)
            per = wall / reps
            w = int(ex.workers)
            res["parallel"][kind] = {
                "label": ex.label, "workers": w, "wall_s": wall, "open_s": open_s,
                "run_streamed_s": run.seconds, "reps_per_s": reps / wall, "s_per_rep": per,
                "ratio_to_sequential": per / seq, "efficiency": seq / (w * per),
                "projected_goal_s": GOAL_REPS * per,
                "goal_met": bool(reps >= GOAL_REPS and wall <= GOAL_S),
                "parts": run.parts_run, "batch": run.manifest["inputs"]["batch"],
                "dataset_mb": tree_size_mb(out), "identical": bool(head.equals(seq_rows))}
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    return res


def report_big(r: dict[str, Any]) -> list[str]:
    """The big section as text lines."""
    s = r["sequential"]
    lines = [f"1. big: {r['reps']:,} replications streamed to disk (run_streamed, events none); "
             f"goal {GOAL_REPS:,} in <= {GOAL_S:.0f} s",
             f"   sequential reference (this process, first {r['ref_reps']} reps): "
             f"{s['s_per_rep'] * 1e3:.1f} ms/rep ({s['wall_s']:.1f} s)",
             f"   {'where':<32}{'wall s':>9}{'reps/s':>8}{'ms/rep':>8}{'x seq':>7}{'eff':>7}"
             f"{'10k s':>8}{'parts':>6}{'MB':>8}  goal"]
    for kind, p in r["parallel"].items():
        lazy = (" (a local pool starts its processes at the first task, inside the wall "
                "time)" if kind == "local" else "")
        goal = ("met" if p["goal_met"] else "MISSED") if r["reps"] >= GOAL_REPS else "n/a"
        lines.append(f"   {p['label']:<32}{p['wall_s']:9.1f}{p['reps_per_s']:8.2f}"
                     f"{p['s_per_rep'] * 1e3:8.1f}{p['ratio_to_sequential']:7.2f}"
                     f"{p['efficiency']:7.0%}{p['projected_goal_s']:8.0f}{p['parts']:6d}"
                     f"{p['dataset_mb']:8.1f}  {goal}")
        lines.append(f"   identical: {p['identical']}  (rows of reps 0..{r['ref_reps'] - 1} "
                     f"against the sequential run); executor opened in {p['open_s']:.2f} s{lazy}; "
                     f"batch {p['batch']}")
    return lines


# --- 2. scaling --------------------------------------------------------------------------

def section_scaling(arm: Arm, reps: int, workers: int) -> dict[str, Any]:
    """Replications/s in this process, on 1 and N local processes and Dask workers."""
    configs = [("in-process", 1), ("local", 1), ("local", workers), ("dask", 1),
               ("dask", workers)]
    batch = batch_size(reps)
    rows = []
    for kind, n in configs:
        ex, handle, start = started(kind, n, arm)
        try:
            ex_run = execute_run(ex, arm, reps)
            timed = timed_run(ex, handle, reps, batch)
        finally:
            ex.close()
        rows.append({"kind": kind, "workers_asked": n, **start, "execute": ex_run,
                     "timed": timed})
    base = rows[0]
    for r in rows:
        for mode in ("execute", "timed"):
            r[mode]["efficiency"] = r[mode]["reps_per_s"] / (
                r["workers"] * base[mode]["reps_per_s"])
    return {"reps": reps, "batch": batch, "configs": rows}


def report_scaling(r: dict[str, Any]) -> list[str]:
    """The scaling section as text lines."""
    lines = [f"2. scaling: {r['reps']} replications, batch {r['batch']} "
             f"({len(spans(0, r['reps'], r['batch']))} tasks); start-up = open + warm-up, "
             f"not in the rates",
             f"   {'where':<30}{'start s':>8}{'execute':>9}{'eff':>6}{'timed':>8}{'eff':>6}"
             f"{'in-task ms/rep':>15}{'ovh ms/task':>12}{'util':>6}",
             f"   {'':<30}{'':>8}{'reps/s':>9}{'':>6}{'reps/s':>8}"]
    for c in r["configs"]:
        e, t = c["execute"], c["timed"]
        label = "this process" if c["kind"] == "in-process" else c["label"]
        lines.append(f"   {label:<30}{c['start_s']:8.2f}{e['reps_per_s']:9.2f}"
                     f"{e['efficiency']:6.0%}{t['reps_per_s']:8.2f}{t['efficiency']:6.0%}"
                     f"{t['in_task_s_per_rep'] * 1e3:15.1f}{t['overhead_ms_per_task']:12.1f}"
                     f"{t['utilisation']:6.0%}")
    lines.append("   execute: run_part through execute(), every table sent back and dropped; "
                 "timed: run_part timed in the worker, only (s, rows, pid) sent back")
    return lines


# --- 3. batch ----------------------------------------------------------------------------

def sequential_rate(arm: Arm, reps: int) -> dict[str, Any]:
    """This process's rate through the timing wrapper (the sequential reference)."""
    ex = InProcess()
    timed_run(ex, arm, 1, 1)  # warm-up
    return timed_run(ex, arm, reps, batch_size(reps))


def section_batch(arm: Arm, reps: int, sizes: list[int], workers: int,
                  seq: dict[str, Any]) -> dict[str, Any]:
    """Replications/s and overhead per task against the batch size, local and Dask."""
    res: dict[str, Any] = {"reps": reps, "sizes": sizes, "sequential": seq, "runs": {}}
    for kind in ("local", "dask"):
        ex, handle, start = started(kind, workers, arm)
        try:
            runs = [timed_run(ex, handle, reps, b) for b in sizes]
        finally:
            ex.close()
        for run in runs:
            run["efficiency"] = run["reps_per_s"] / (run["workers"] * seq["reps_per_s"])
        res["runs"][kind] = {**start, "by_batch": runs}
    return res


def report_batch(r: dict[str, Any]) -> list[str]:
    """The batch section as text lines."""
    seq = r["sequential"]
    lines = [f"3. batch size: {r['reps']} replications; sequential reference "
             f"{seq['reps_per_s']:.2f} reps/s ({seq['in_task_s_per_rep'] * 1e3:.1f} ms/rep)",
             f"   {'where':<30}{'batch':>6}{'tasks':>6}{'reps/s':>8}{'ovh ms/task':>12}"
             f"{'util':>6}{'eff':>6}"]
    for run in r["runs"].values():
        for b in run["by_batch"]:
            lines.append(f"   {run['label']:<30}{b['batch']:6d}{b['tasks']:6d}"
                         f"{b['reps_per_s']:8.2f}{b['overhead_ms_per_task']:12.1f}"
                         f"{b['utilisation']:6.0%}{b['efficiency']:6.0%}")
    return lines


# --- 4. memory ---------------------------------------------------------------------------

def sample_tree(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd``, sampling its process tree's RSS every :data:`SAMPLE_S` seconds."""
    import psutil

    mb = 1e6
    peak = {"client_mb": 0.0, "largest_worker_mb": 0.0, "total_mb": 0.0}
    kids_seen: set[int] = set()
    samples = 0
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            client = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    own = client.memory_info().rss
                    kids = client.children(recursive=True)
                except psutil.Error:
                    break
                rss = []
                for k in kids:
                    try:
                        rss.append(k.memory_info().rss)
                        kids_seen.add(k.pid)
                    except psutil.Error:
                        pass
                samples += 1
                peak["client_mb"] = max(peak["client_mb"], own / mb)
                peak["largest_worker_mb"] = max(peak["largest_worker_mb"],
                                                max(rss, default=0) / mb)
                peak["total_mb"] = max(peak["total_mb"], (own + sum(rss)) / mb)
                time.sleep(SAMPLE_S)
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
    wall = time.perf_counter() - t0
    return {**peak, "wall_s": wall, "rc": rc, "samples": samples,
            "child_processes": len(kids_seen)}


def section_memory(scn: Scenario, sizes: list[int], workers: int, cluster: str, work: Path,
                   keep: bool) -> dict[str, Any]:
    """Peak RSS of ``ortwin run`` on the 20-OR week at each replication count."""
    import json

    import yaml

    from ortwin.manifest import scenario_hash

    base = Path(tempfile.mkdtemp(prefix="memory-", dir=work))
    res: dict[str, Any] = {"workers": workers, "cluster": cluster, "runs": []}
    try:
        path = base / f"{scn.name}.yaml"
        path.write_text(yaml.safe_dump(scn.model_dump(mode="json", by_alias=True),
                                       sort_keys=False))
        back = load_scenario(path)
        res["yaml_roundtrip"] = bool(back == scn and scenario_hash(back) == scenario_hash(scn))
        if not res["yaml_roundtrip"]:
            raise AssertionError(f"{path} does not load back to the 20-OR scenario")
        ortwin = Path(sys.executable).with_name("ortwin")
        for n in sizes:
            out = base / f"run-{n}"
            cmd = [str(ortwin), "run", str(path), "--reps", str(n), "--events", "none",
                   "--workers", str(workers), "--out", str(out), "--progress", "off"]
            if cluster != "local":
                cmd += ["--cluster", cluster]
            got = sample_tree(cmd, base / f"run-{n}.log")
            text = (base / f"run-{n}.log").read_text().strip().splitlines()
            got["last_line"] = text[-1] if text else ""
            if got["rc"] != 0:
                print("\n".join(text[-20:]), file=sys.stderr)
            else:
                man = json.loads((out / "manifest.json").read_text())
                got["run_s"] = float(man["seconds"])
            res["runs"].append({"reps": n, "command": " ".join(cmd), **got})
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    return res


def report_memory(r: dict[str, Any]) -> list[str]:
    """The memory section as text lines."""
    lines = [f"4. memory: ortwin run <20-OR YAML> --events none --workers {r['workers']} "
             f"--cluster {r['cluster']}; RSS sampled every {SAMPLE_S} s "
             f"(YAML loads back identical: {r['yaml_roundtrip']})",
             f"   {'reps':>7}{'wall s':>9}{'run s':>8}{'client MB':>11}{'worker MB':>11}"
             f"{'tree MB':>9}{'procs':>6}{'samples':>8}  rc"]
    for m in r["runs"]:
        lines.append(f"   {m['reps']:7,d}{m['wall_s']:9.1f}{m.get('run_s', float('nan')):8.1f}"
                     f"{m['client_mb']:11.0f}{m['largest_worker_mb']:11.0f}{m['total_mb']:9.0f}"
                     f"{m['child_processes']:6d}{m['samples']:8d}  {m['rc']}")
    return lines


# --- main --------------------------------------------------------------------------------

def environment() -> dict[str, Any]:
    """Versions, machine and load."""
    import dask
    import distributed
    import numpy as np
    import simpy

    return {"python": platform.python_version(), "simpy": simpy.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "dask": dask.__version__,
            "distributed": distributed.__version__,
            "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, "
                       f"{os.cpu_count()} CPUs",
            "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for, print their tables and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"sections to run, comma-separated (default: {','.join(SECTIONS)})")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes everywhere (about a minute)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the parallel runs")
    ap.add_argument("--reps", type=int, default=None, help=f"big: replications ({FULL['reps']:,})")
    ap.add_argument("--ref-reps", type=int, default=None,
                    help=f"big: sequential reference replications ({FULL['ref_reps']})")
    ap.add_argument("--big-cluster", default="local", metavar="local[,dask]",
                    help="big: where the parallel run goes (default local)")
    ap.add_argument("--scaling-reps", type=int, default=None,
                    help=f"scaling: replications ({FULL['scaling_reps']})")
    ap.add_argument("--batch-reps", type=int, default=None,
                    help=f"batch: replications ({FULL['batch_reps']})")
    ap.add_argument("--batch-sizes", default=None, help=f"batch: ({FULL['batch_sizes']})")
    ap.add_argument("--memory-reps", default=None, help=f"memory: ({FULL['memory_reps']})")
    ap.add_argument("--memory-cluster", choices=["local", "dask"], default="local",
                    help="memory: --cluster of the ortwin run (default local)")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "bench_scaleout",
                    help="folder for the runs' temporary output (default out/bench_scaleout)")
    ap.add_argument("--keep", action="store_true", help="keep the runs' output")
    ap.add_argument("--json", default=None, help="write the numbers to this file")
    a = ap.parse_args(argv)
    size = SMOKE if a.smoke else FULL

    def pick(name: str) -> Any:
        """The option's value, else its full or smoke default."""
        value = getattr(a, name)
        return size[name] if value is None else value

    only = [s.strip() for s in a.only.split(",") if s.strip()]
    kinds = [k.strip() for k in a.big_cluster.split(",") if k.strip()]
    if bad := [s for s in only if s not in SECTIONS]:
        ap.error(f"--only: unknown section(s) {', '.join(bad)}; expected {', '.join(SECTIONS)}")
    if bad := [k for k in kinds if k not in ("local", "dask")]:
        ap.error(f"--big-cluster: expected local and/or dask, got {', '.join(bad)}")
    reps, ref_reps = pick("reps"), pick("ref_reps")
    scaling_reps, batch_reps = pick("scaling_reps"), pick("batch_reps")
    try:
        batch_sizes, memory_reps = ints(pick("batch_sizes")), ints(pick("memory_reps"))
    except (ValueError, argparse.ArgumentTypeError) as e:
        ap.error(str(e))
    if min(a.workers, reps, ref_reps, scaling_reps, batch_reps) < 1:
        ap.error("--workers and every replication count must be at least 1")

    a.work.mkdir(parents=True, exist_ok=True)
    scn = twenty_or_week()
    arm = make_arm(scn, "as-booked")
    res: dict[str, Any] = {"scenario": scn.name, "rooms": len(scn.rooms), "policy": arm.policy,
                           "seed": arm.seed, "events": "none", "smoke": a.smoke,
                           "workers": a.workers, "environment": environment()}
    env = res["environment"]
    print(f"ORTwin scale-out: {scn.name} ({len(scn.rooms)} ORs, {scn.horizon_days} days) / "
          f"{arm.policy}, seed {arm.seed}, events none, {a.workers} workers"
          + (" [smoke sizes]" if a.smoke else ""))
    print(f"python {env['python']}  numpy {env['numpy']}  pandas {env['pandas']}  simpy "
          f"{env['simpy']}  dask {env['dask']}  distributed {env['distributed']}")
    load = env["loadavg_start"]
    print(f"{env['machine']}, {env['cpus_allowed']} allowed; load average "
          + ("/".join(f"{x:.2f}" for x in load) if load else "n/a"))
    timed_run(InProcess(), arm, 1, 1)  # imports and first-call costs, before any timing

    def show(lines: list[str]) -> None:
        """Print a section's lines after a blank line."""
        print("\n" + "\n".join(lines), flush=True)

    def seq() -> dict[str, Any]:
        """The sequential reference of the batch section."""
        sc = res.get("scaling")
        if sc and sc["reps"] == batch_reps:  # the in-process timed run of the scaling section
            return sc["configs"][0]["timed"]
        return sequential_rate(arm, batch_reps)

    steps: list[tuple[str, Callable[[], dict[str, Any]], Callable[..., list[str]]]] = [
        ("big", lambda: section_big(arm, reps, ref_reps, a.workers, kinds, a.work, a.keep),
         report_big),
        ("scaling", lambda: section_scaling(arm, scaling_reps, a.workers), report_scaling),
        ("batch", lambda: section_batch(arm, batch_reps, batch_sizes, a.workers, seq()),
         report_batch),
        ("memory", lambda: section_memory(scn, memory_reps, a.workers, a.memory_cluster,
                                          a.work, a.keep), report_memory),
    ]

    t0 = time.perf_counter()
    for name, run, report in steps:
        if name in only:
            res[name] = run()
            show(report(res[name]))
    res["total_s"] = time.perf_counter() - t0
    if hasattr(os, "getloadavg"):
        env["loadavg_end"] = list(os.getloadavg())
    print(f"\ntotal {res['total_s']:.0f} s")
    write_json(a.json, res)
    if a.json:
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
