"""Scale-out: the same experiment gives the same bits in this process, in local worker processes
and on Dask (a LocalCluster, or a scheduler and workers started as separate processes), whatever
order tasks finish in; a killed worker costs only time; long runs stream to a parquet dataset,
resume after an interruption to the same dataset, and stop at a precision target."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from ortwin.cli import main as run_cli
from ortwin.cluster import ClusterError, DaskCluster, InProcess, LocalProcesses, open_cluster
from ortwin.dataset import part_files, read_table
from ortwin.experiment import (
    SAMPLE_REPS,
    batch_size,
    execute,
    make_arm,
    run_arms,
    spans,
)
from ortwin.longrun import ResumeError, run_streamed
from ortwin.manifest import build_manifest
from ortwin.precision import PrecisionError, half_width, next_reps, parse_targets, status
from twin.scenario import load_scenario, with_horizon

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def small():
    return with_horizon(load_scenario(BASELINE), 1, str(BASELINE))


def _arms(scn, policies=("as-booked", "manual")):
    return [make_arm(scn, p, 7) for p in policies]


def _frames(results):
    return [(r.replications, r.room_days, r.services, r.events, r.cases) for r in results]


def _assert_same(a, b) -> None:
    for xa, xb in zip(_frames(a), _frames(b), strict=True):
        for fa, fb in zip(xa, xb, strict=True):
            pd.testing.assert_frame_equal(fa, fb, check_exact=True)


def _digest(out: Path) -> dict[str, str]:
    """SHA-256 of every parquet file under ``out`` (the dataset and the consolidated files)."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.parquet"))}


class Shuffled(InProcess):
    """Runs tasks here but in a random order: results must not depend on finishing order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def run(self, fn, tasks):
        tasks = list(tasks)
        self.rng.shuffle(tasks)
        yield from super().run(fn, tasks)


# --- planning --------------------------------------------------------------------------------


def test_batches_depend_on_the_replications_only() -> None:
    assert [batch_size(n) for n in (1, 10, 16, 17, 100, 800, 801, 10_000)] == [
        1, 1, 1, 2, 7, 50, 50, 50]
    assert spans(0, 7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert spans(5, 12, 5) == [(5, 10), (10, 12)]  # a later round starts where the last ended
    for start, stop, b in ((0, 101, 7), (13, 250, 50), (0, 1, 1)):
        got = spans(start, stop, b)
        assert [r for lo, hi in got for r in range(lo, hi)] == list(range(start, stop))
        assert all(lo % b == 0 for lo, _ in got[1:])


# --- same bits everywhere ----------------------------------------------------------------------


def test_in_process_local_and_dask_are_identical(small) -> None:
    arms = _arms(small)
    seq = run_arms(arms, 12, InProcess(), events="all")
    for order in (1, 2):
        _assert_same(seq, run_arms(arms, 12, Shuffled(order), events="all"))
    with LocalProcesses(2) as ex:
        _assert_same(seq, run_arms(arms, 12, ex, events="all"))
    with DaskCluster(None, 2) as ex:
        assert ex.workers == 2 and ex.dashboard and ex.dashboard.startswith("http")
        _assert_same(seq, run_arms(arms, 12, ex, events="all"))
    with DaskCluster(None, 1) as ex:  # any number of workers
        _assert_same(seq, run_arms(arms, 12, ex, events="all"))
    # the results are real: replications differ, each has its events
    a = seq[0].replications
    assert list(a["rep"]) == list(range(12)) and a["utilisation"].nunique() > 1
    assert sorted(seq[1].events["rep"].unique()) == list(range(12))


def test_results_do_not_depend_on_python_hash_seed(small, tmp_path: Path) -> None:
    """Spawned Dask workers get their own PYTHONHASHSEED: nothing may iterate a set of names."""
    code = ("import sys, hashlib\n"
            "from twin.scenario import load_scenario, with_horizon\n"
            "from ortwin.runner import run_replication\n"
            f"scn = with_horizon(load_scenario({str(BASELINE)!r}), 1, 'x')\n"
            "for pol in ('as-booked', 'ml-cpsat'):\n"
            "    o = run_replication(scn, pol, 3, 1)\n"
            "    print(pol, hashlib.sha256(o.events.to_csv().encode()).hexdigest())\n")
    outs = set()
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.add(proc.stdout)
    assert len(outs) == 1


def test_streamed_dataset_is_identical_in_process_local_and_dask(small, tmp_path: Path) -> None:
    arms = _arms(small)
    man = build_manifest("compare", [small], ["as-booked", "manual"], "manual", 10, [7])
    digests = []
    for name, ex in (("seq", InProcess()), ("local", LocalProcesses(2)),
                     ("dask", DaskCluster(None, 2))):
        with ex:
            res = run_streamed(arms, tmp_path / name, ex, man, reps=10, events="sample",
                               batch=3)
        assert res.reps == 10 and res.parts_run == 8
        digests.append(_digest(tmp_path / name))
    assert digests[0] == digests[1] == digests[2]
    files = digests[0]
    assert [f for f in files if f.startswith("parts/replications/baseline/manual/")] == [
        f"parts/replications/baseline/manual/reps-{lo:06d}-{hi:06d}.parquet"
        for lo, hi in ((0, 3), (3, 6), (6, 9), (9, 10))]
    ev = read_table(tmp_path / "seq", "events")
    assert sorted(ev["rep"].unique()) == list(range(SAMPLE_REPS)) and set(ev["policy"]) == {
        "as-booked", "manual"}
    manifest = json.loads((tmp_path / "seq" / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["ranges"] == [[0, 3], [3, 6], [6, 9], [9, 10]]
    arm0 = manifest["inputs"]["arms"][0]
    assert arm0["seed"] == 7 and len(arm0["scenario_sha256"]) == 64
    assert len(arm0["policy_sha256"]) == 64 and manifest["inputs"]["batch"] == 3


@pytest.mark.parametrize("events, reps_with_events", [("none", []), ("all", list(range(12)))])
def test_events_modes(small, tmp_path: Path, events: str, reps_with_events: list[int]) -> None:
    man = build_manifest("run", [small], ["as-booked"], "as-booked", 12, [7])
    run_streamed(_arms(small, ("as-booked",)), tmp_path, InProcess(), man, reps=12, events=events)
    ev = read_table(tmp_path, "events")
    assert (sorted(ev["rep"].unique()) if len(ev) else []) == reps_with_events
    assert len(read_table(tmp_path, "room_days")) > 0  # per-replication detail always kept


# --- Dask: scheduler and workers as separate processes -------------------------------------------


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "dask"), *args], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """``dask scheduler`` and two ``dask worker`` processes (no nanny: a killed worker stays
    dead) on 127.0.0.1; yields the scheduler address and the worker processes."""
    sched_file = tmp_path / "scheduler.json"
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        workers = [_start(["worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                           "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                           "--name", f"w{i}"], tmp_path / f"worker{i}.log") for i in range(2)]
        procs += workers
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def test_external_scheduler_matches_sequential_and_survives_a_killed_worker(
        small, tmp_path: Path, dask_processes) -> None:
    address, workers = dask_processes
    arms = _arms(small)
    seq = run_arms(arms, 16, InProcess(), events="all")
    with open_cluster(address) as ex:
        assert ex.workers == 2 and address in ex.label
        _assert_same(seq, run_arms(arms, 16, ex, events="all"))

        # kill one worker (SIGKILL, no nanny to bring it back) once the first part is back
        got, killed = [], []

        def sink(i, lo, hi, tables):
            got.append((i, lo, tables))
            if not killed:
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait(timeout=20)
                killed.append(time.monotonic())

        parts = [(i, lo, hi) for i in range(2) for lo, hi in spans(0, 16, 1)]
        execute(arms, parts, ex, sink, "none", True)
        assert killed and workers[0].poll() is not None
        assert len(ex.client.nthreads()) == 1  # the other worker finished the run
    assert sorted((i, lo) for i, lo, _ in got) == sorted((i, lo) for i, lo, _ in parts)
    for i in range(2):
        rows = pd.concat([t["replications"] for j, _, t in sorted(got, key=lambda g: g[1])
                          if j == i], ignore_index=True)
        pd.testing.assert_frame_equal(rows, seq[i].replications, check_exact=True)


def test_ortwin_run_on_an_external_scheduler(small, tmp_path: Path, dask_processes,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    address, _ = dask_processes
    args = ["run", str(BASELINE), "--days", "1", "--reps", "6", "--progress", "off"]
    assert run_cli([*args, "--out", str(tmp_path / "seq")]) == 0
    assert run_cli([*args, "--out", str(tmp_path / "dask"), "--cluster", address]) == 0
    err = capsys.readouterr().err
    assert f"running on Dask scheduler {address} (2 workers)" in err
    assert _digest(tmp_path / "seq") == _digest(tmp_path / "dask")
    sched_file = tmp_path / "scheduler.json"  # written by the fixture
    assert run_cli([*args, "--out", str(tmp_path / "file"), "--cluster", str(sched_file)]) == 0
    assert _digest(tmp_path / "seq") == _digest(tmp_path / "file")


def test_local_worker_killed_mid_run_is_rerun(small) -> None:
    arms = _arms(small, ("as-booked",))
    seq = run_arms(arms, 12, InProcess())
    got, killed = [], []
    with LocalProcesses(2) as ex:
        def sink(i, lo, hi, tables):
            got.append((lo, tables))
            if not killed:
                pid = next(iter(ex._pool._processes))
                psutil.Process(pid).kill()
                killed.append(pid)

        execute(arms, [(0, lo, lo + 1) for lo in range(12)], ex, sink, "none", True)
        assert ex.restarts == 1
    rows = pd.concat([t["replications"] for _, t in sorted(got, key=lambda g: g[0])],
                     ignore_index=True)
    pd.testing.assert_frame_equal(rows, seq[0].replications, check_exact=True)


# --- resume ------------------------------------------------------------------------------------


def test_resume_after_interruption_gives_the_same_dataset(small, tmp_path: Path) -> None:
    arms = _arms(small)
    man = build_manifest("compare", [small], ["as-booked", "manual"], "manual", 9, [7])
    run_streamed(arms, tmp_path / "whole", InProcess(), man, reps=9, events="sample", batch=2)

    seen = []

    def stop_after_three(i, lo, hi):
        seen.append((i, lo))
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="--resume"):
        run_streamed(arms, tmp_path / "cut", InProcess(), man, reps=9, events="sample", batch=2,
                     sink=stop_after_three)
    assert len(part_files(tmp_path / "cut", "replications")) == 3
    assert not (tmp_path / "cut" / "replications.parquet").exists()
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["complete"] is False
    with LocalProcesses(2) as ex:  # resume anywhere
        res = run_streamed(arms, tmp_path / "cut", ex, man, reps=9, events="sample", batch=2,
                           resume=True)
    assert (res.parts_run, res.parts_resumed) == (7, 3)
    assert _digest(tmp_path / "cut") == _digest(tmp_path / "whole")


def test_resume_of_a_killed_command(tmp_path: Path) -> None:
    """``ortwin run`` killed with SIGKILL mid-run, then ``--resume``: the same files."""
    out, whole = tmp_path / "cut", tmp_path / "whole"
    args = [str(BIN / "ortwin"), "run", str(BASELINE), "--days", "1", "--reps", "60",
            "--batch-size", "2", "--progress", "off", "--events", "none"]
    proc = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 120
    while len(part_files(out, "replications")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    done = len(part_files(out, "replications"))
    assert 2 <= done < 30, "the run finished before it could be killed"
    again = subprocess.run([*args, "--out", str(out), "--resume"], capture_output=True,
                           text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    assert f"{30 - done} part(s) run, {done} resumed" in again.stdout
    assert subprocess.run([*args, "--out", str(whole)], capture_output=True).returncode == 0
    assert _digest(out) == _digest(whole)


def test_resume_refuses_other_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", str(BASELINE), "--days", "1", "--reps", "3", "--out", str(tmp_path),
            "--progress", "off"]
    assert run_cli([*base, "--resume"]) == 2
    assert "manifest.json not found" in capsys.readouterr().err
    assert run_cli(base) == 0
    capsys.readouterr()
    for extra, says in ((["--seed", "99"], "seed of baseline/as-booked changed"),
                        (["--policy", "manual"], "scenarios x policies were baseline/as-booked"),
                        (["--events", "none"], "events was all and is now none")):
        assert run_cli([*base, *extra, "--resume"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is for different inputs" in err and says in err, err
    # the same inputs: nothing left to run
    assert run_cli([*base, "--resume"]) == 0
    assert "0 part(s) run, 3 resumed" in capsys.readouterr().out


def test_resume_refuses_a_changed_scenario(small, tmp_path: Path) -> None:
    man = build_manifest("run", [small], ["as-booked"], "as-booked", 3, [7])
    run_streamed(_arms(small, ("as-booked",)), tmp_path, InProcess(), man, reps=3)
    other = with_horizon(load_scenario(BASELINE), 2, str(BASELINE))
    with pytest.raises(ResumeError, match="scenario content of baseline/as-booked changed"):
        run_streamed(_arms(other, ("as-booked",)), tmp_path, InProcess(), man, reps=3,
                     resume=True)


# --- precision ---------------------------------------------------------------------------------


def test_parse_targets() -> None:
    assert [str(t) for t in parse_targets("utilisation:0.01, overtime_minutes:5%")] == [
        "utilisation:0.01", "overtime_minutes:0.05"]
    for bad in ("utilisation", "utilisation:x", "utilisation:0", "utilisation:150%", ":0.1", ""):
        with pytest.raises(PrecisionError):
            parse_targets(bad)


def test_half_width_and_next_round() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100, 10, 400)
    hw = half_width(x)
    assert hw == pytest.approx(1.96 * x.std(ddof=1) / 20, rel=0.01)
    reps = pd.DataFrame({"scenario": "s", "policy": "p", "k": x[:100], "c": 3.0})
    st = status(reps, parse_targets("k:0.01,c:0.01"))
    assert not st.loc[0, "met"] and st.loc[1, "met"]  # a constant KPI always meets its target
    # 100 reps give about 2%: halving the half-width needs about 4x the replications
    n = next_reps(100, st, 10, 10_000)
    ratio = st.loc[0, "relative"] / 0.01
    assert n == min(400, int(np.ceil(100 * ratio ** 2 / 10) * 10))
    assert next_reps(100, st, 10, 150) == 150  # the cap
    assert next_reps(100, st.assign(met=True), 10, 10_000) == 100


def test_precision_run_stops_at_target_and_equals_a_fixed_run(small, tmp_path: Path,
                                                              capsys) -> None:
    args = ["run", str(BASELINE), "--days", "1", "--progress", "off", "--reps", "8",
            "--precision", "utilisation:0.1", "--max-reps", "200"]
    assert run_cli([*args, "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    st = pd.read_csv(tmp_path / "p" / "precision.csv")
    n = int(st["n"].iloc[0])
    assert 8 < n < 200 and bool(st["met"].iloc[0]) and st["relative"].iloc[0] <= 0.1
    assert f"precision reached with {n:,} replications per arm" in out
    reps = pd.read_parquet(tmp_path / "p" / "replications.parquet")
    assert list(reps["rep"]) == list(range(n))
    fixed = ["run", str(BASELINE), "--days", "1", "--progress", "off", "--reps", str(n),
             "--events", "sample", "--batch-size", str(batch_size(200))]
    assert run_cli([*fixed, "--out", str(tmp_path / "f")]) == 0
    pd.testing.assert_frame_equal(reps, pd.read_parquet(tmp_path / "f" / "replications.parquet"),
                                  check_exact=True)
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    rounds = manifest.pop("precision_result").pop("rounds")
    assert rounds[0] == 8 and rounds[-1] == n and rounds == sorted(set(rounds))
    assert "rounds: 8 -> " in out
    # a cap that is too low says so
    assert run_cli([*args[:-2], "--max-reps", "9", "--out", str(tmp_path / "c")]) == 0
    assert "precision NOT reached: stopped at the cap of 9" in capsys.readouterr().out


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, says", [
    (["--cluster", "yarn"], "--cluster: expected local, dask, a scheduler address"),
    (["--cluster", "nowhere.json"], "--cluster nowhere.json: scheduler file not found"),
    (["--precision", "nonsense:0.1"], "--precision: unknown KPI 'nonsense'"),
    (["--precision", "utilisation:2"], "expected a relative half-width between 0 and 1"),
    (["--max-reps", "100"], "--max-reps: only used with --precision"),
])
def test_bad_options_one_line_exit_2(tmp_path: Path, capsys, extra: list[str], says: str) -> None:
    code = run_cli(["run", str(BASELINE), "--days", "1", "--reps", "2", "--out", str(tmp_path),
                    "--progress", "off", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err


def test_unreachable_scheduler_is_one_line() -> None:
    with pytest.raises(ClusterError, match="cannot start or reach the Dask scheduler"):
        DaskCluster("tcp://127.0.0.1:9", connect_timeout=2)


def test_progress_bar_and_dashboard_line(tmp_path: Path, capsys) -> None:
    assert run_cli(["run", str(BASELINE), "--days", "1", "--reps", "4", "--out", str(tmp_path),
                    "--progress", "on", "--cluster", "dask", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("running on Dask LocalCluster (1 worker); dashboard: http://"), first
    bar = err.replace("\r", "\n").splitlines()[-1]
    assert "4/4" in bar and "rep/s" in bar and "<00:00" in bar, bar  # done, rate, time left
