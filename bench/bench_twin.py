"""Benchmark of one ORTwin replication, on one core in one process.

    .venv/bin/python bench/bench_twin.py [--reps N] [--json PATH] [--profile N]

1. Throughput: ``run_replication`` of the baseline week (``--scenario``, policy ``--policy``)
   with ``keep_events=True`` and ``keep_events=False`` (interleaved), after a warm-up:
   mean/median seconds per replication, replications per second, cases per replication.
2. Breakdown of one replication: ``draw_week``, ``SuiteModel`` build, ``run``, ``log.frame()``,
   ``cases_frame``, ``KpiContext.from_scenario``, ``measure`` (KPIs, room-day and service
   tables from one preparation of the log), each timed with ``time.perf_counter`` over ``--reps`` replications.
3. Cost per case against ``bench/minimal_model.py`` (the same realised weeks through rooms
   only): the twin's simulation (``SuiteModel`` build + run), the whole replication and the
   minimal model, interleaved in this process for ``--rounds`` rounds of ``--weeks`` weeks;
   medians of seconds per case and the ratios twin / minimal.
4. Optionally (``--profile N``) a cProfile of N replications, top 15 by cumulative time.

The issue's target: one baseline-week replication in under 0.1 s.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from ortwin.registry import get_policy
from ortwin.runner import run_replication
from twin.demand import Week, cases_frame, draw_week
from twin.kpis import KpiContext, measure
from twin.model import SuiteModel
from twin.replication import quiet_gc
from twin.scenario import Scenario, load_scenario
from twin.streams import Streams

try:  # run as a script (bench/ is sys.path[0]) or as ``python -m bench.bench_twin``
    from minimal_model import run_minimal
except ImportError:  # pragma: no cover
    from bench.minimal_model import run_minimal

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.1
"""The issue's goal: seconds per baseline-week replication."""


# --- helpers -----------------------------------------------------------------------------

def pin_one_core(cpu: int | None) -> int | None:
    """Restrict this process to one CPU (Linux); returns the CPU, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    return cpu


def stats(xs: list[float]) -> dict[str, float]:
    """Mean, median, min, max and standard deviation of samples (seconds)."""
    return {
        "n": len(xs),
        "mean": statistics.fmean(xs),
        "median": statistics.median(xs),
        "min": min(xs),
        "max": max(xs),
        "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
    }


def timed(fn: Callable[..., object], *args, **kwargs) -> tuple[float, object]:
    """Seconds taken by ``fn(*args, **kwargs)``, and its result."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def ms(x: float) -> str:
    return f"{x * 1e3:9.2f}"


def us(x: float) -> str:
    return f"{x * 1e6:9.1f}"


def simulate(scn: Scenario, policy: str, week: Week) -> SuiteModel:
    """The twin's simulation only: build the model on a drawn week and run it."""
    model = SuiteModel(scn, get_policy(policy, scn), week)
    model.run()
    return model


# --- 1. throughput -----------------------------------------------------------------------

class GcTimer:
    """Time spent in the cyclic garbage collector, per generation (via ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            g = info["generation"]
            self.count[g] += 1
            self.seconds[g] += time.perf_counter() - self._t0

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def bench_throughput(scn: Scenario, policy: str, seed: int, reps: int) -> dict:
    """Whole replications, keep_events True and False interleaved (order alternating)."""
    times: dict[str, list[float]] = {"keep_events=True": [], "keep_events=False": []}
    completed: list[float] = []
    with GcTimer() as gct:
        for r in range(reps):
            order = (True, False) if r % 2 == 0 else (False, True)
            for keep in order:
                dt, out = timed(run_replication, scn, policy, seed, r, keep_events=keep)
                times[f"keep_events={keep}"].append(dt)
                if keep:
                    completed.append(out.kpis["cases_completed"])  # type: ignore[attr-defined]
    res: dict = {}
    for k, xs in times.items():
        s = stats(xs)
        s["reps_per_s"] = len(xs) / sum(xs)
        s["meets_target"] = s["mean"] < TARGET_S
        res[k] = s
    res["cases_completed_mean"] = statistics.fmean(completed)
    total = sum(sum(xs) for xs in times.values())
    n = sum(len(xs) for xs in times.values())
    res["gc"] = {
        "collections_per_rep": [c / n for c in gct.count],
        "seconds_per_rep": [s / n for s in gct.seconds],
        "share_of_time": sum(gct.seconds) / total,
        "tracked_objects_after": len(gc.get_objects()),
    }
    return res


# --- 2. breakdown ------------------------------------------------------------------------

STAGES = ("draw_week", "SuiteModel build", "SuiteModel run", "log.frame()", "cases_frame",
          "KpiContext.from_scenario", "measure (KPIs + tables)")


def bench_breakdown(scn: Scenario, policy: str, seed: int, reps: int) -> dict:
    """Each step of ``run_replication``, timed separately, over ``reps`` replications."""
    t: dict[str, list[float]] = {s: [] for s in STAGES}
    n_cases, n_events = [], []
    gc.collect()
    for r in range(reps):
        pc = time.perf_counter
        t0 = pc()
        week = draw_week(scn, Streams(seed, r))
        t1 = pc()
        model = SuiteModel(scn, get_policy(policy, scn), week)
        t2 = pc()
        model.run()
        t3 = pc()
        events = model.log.frame()
        t4 = pc()
        cases = cases_frame(week)
        t5 = pc()
        ctx = KpiContext.from_scenario(scn)
        t6 = pc()
        kpis, _room_days, _services = measure(events, cases, ctx)
        t7 = pc()
        for name, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5,
                                     t7 - t6), strict=True):
            t[name].append(dt)
        n_cases.append(len(week.cases))
        n_events.append(len(events))
        if r == 0:  # the steps are those of run_replication
            ref = run_replication(scn, policy, seed, r).kpis
            same = all(kpis[k] == ref[k] or (kpis[k] != kpis[k] and ref[k] != ref[k]) for k in ref)
            if not same:
                raise AssertionError("breakdown steps disagree with run_replication")
    total = sum(statistics.fmean(v) for v in t.values())
    return {
        "stages": {k: {**stats(v), "share_of_sum": statistics.fmean(v) / total}
                   for k, v in t.items()},
        "sum_of_means": total,
        "cases_per_rep": statistics.fmean(n_cases),
        "events_per_rep": statistics.fmean(n_events),
    }


# --- 3. cost per case against the minimal model ------------------------------------------

def bench_ratio(scn: Scenario, policy: str, seed: int, rounds: int, weeks: int) -> dict:
    """Twin simulation, whole replication and minimal model on the same weeks, interleaved."""
    drawn = [draw_week(scn, Streams(seed, r)) for r in range(weeks)]
    n_cases = [len(w.cases) for w in drawn]
    jobs: dict[str, Callable[[int], object]] = {
        "twin_sim": lambda r: simulate(scn, policy, drawn[r]),
        "twin_replication": lambda r: run_replication(scn, policy, seed, r, keep_events=True),
        "minimal": lambda r: run_minimal(scn, drawn[r]),
    }
    names = list(jobs)
    per_case: dict[str, list[float]] = {k: [] for k in names}
    round_medians: dict[str, list[float]] = {k: [] for k in names}
    paired: dict[str, list[float]] = {"twin_sim/minimal": [], "twin_replication/minimal": []}
    done = [len(run_minimal(scn, w)) for w in drawn]  # also warms the minimal model up
    gc.collect()
    for rnd in range(rounds):
        this_round: dict[str, list[float]] = {k: [] for k in names}
        for r in range(weeks):
            shift = (rnd * weeks + r) % len(names)  # rotate who goes first
            got = {}
            for name in names[shift:] + names[:shift]:
                dt, _ = timed(jobs[name], r)
                got[name] = dt / n_cases[r]
                per_case[name].append(got[name])
                this_round[name].append(got[name])
            paired["twin_sim/minimal"].append(got["twin_sim"] / got["minimal"])
            paired["twin_replication/minimal"].append(got["twin_replication"] / got["minimal"])
        for name in names:
            round_medians[name].append(statistics.median(this_round[name]))
    med = {k: statistics.median(v) for k, v in per_case.items()}
    return {
        "rounds": rounds,
        "weeks": weeks,
        "cases_per_week": statistics.fmean(n_cases),
        "minimal_cases_done_per_week": statistics.fmean(done),
        "seconds_per_case_median": med,
        "seconds_per_case_round_medians": round_medians,
        "ratio_of_medians": {
            "twin_sim/minimal": med["twin_sim"] / med["minimal"],
            "twin_replication/minimal": med["twin_replication"] / med["minimal"],
        },
        "median_paired_ratio": {k: statistics.median(v) for k, v in paired.items()},
    }


# --- 4. profile --------------------------------------------------------------------------

def profile(scn: Scenario, policy: str, seed: int, reps: int, top: int = 15) -> tuple[str, list]:
    """cProfile of ``reps`` replications; the pstats text and the top rows by cumulative time."""
    prof = cProfile.Profile()
    prof.enable()
    for r in range(reps):
        run_replication(scn, policy, seed, r, keep_events=True)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative")
    st.print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    total = st.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in sorted(
            st.stats.items(), key=lambda kv: -kv[1][3])[:top]:  # type: ignore[attr-defined]
        rows.append({"function": f"{file}:{line}({fn})", "ncalls": nc, "tottime": tt,
                     "cumtime": ct, "cum_share": ct / total if total else float("nan")})
    return buf.getvalue(), rows


# --- report ------------------------------------------------------------------------------

def report(res: dict) -> str:
    lines = []
    env = res["environment"]
    lines.append(f"ORTwin benchmark: {res['scenario']} / {res['policy']}, seed {res['seed']}, "
                 f"one process pinned to CPU {env['cpu']}")
    lines.append(f"python {env['python']}  simpy {env['simpy']}  numpy {env['numpy']}  "
                 f"pandas {env['pandas']}  ({env['machine']})")
    tp = res["throughput"]
    lines.append("")
    lines.append(f"1. Whole replication (run_replication), {res['reps']} reps after "
                 f"{res['warmup']} warm-up; target < {TARGET_S:.2f} s")
    lines.append(f"   {'mode':<20}{'mean ms':>9}{'median ms':>11}{'min ms':>9}{'max ms':>9}"
                 f"{'reps/s':>9}  target")
    for k in ("keep_events=True", "keep_events=False"):
        s = tp[k]
        lines.append(f"   {k:<20}{ms(s['mean'])}{ms(s['median']):>11}{ms(s['min'])}{ms(s['max'])}"
                     f"{s['reps_per_s']:9.2f}  {'met' if s['meets_target'] else 'MISSED'}")
    bd = res["breakdown"]
    lines.append(f"   cases per replication {bd['cases_per_rep']:.1f} (completed "
                 f"{tp['cases_completed_mean']:.1f}), events per replication "
                 f"{bd['events_per_rep']:.0f}")
    g = tp["gc"]
    lines.append(f"   garbage collector: {sum(g['seconds_per_rep']) * 1e3:.1f} ms/rep "
                 f"({g['share_of_time']:.1%} of the time); gen0/1/2 collections per rep "
                 + "/".join(f"{c:.2f}" for c in g["collections_per_rep"])
                 + ", gen2 " + f"{g['seconds_per_rep'][2] * 1e3:.1f} ms/rep; "
                 f"{g['tracked_objects_after']} tracked objects")
    lines.append("")
    lines.append(f"2. Breakdown of one replication ({bd['stages']['draw_week']['n']} reps)")
    lines.append(f"   {'step':<26}{'mean ms':>9}{'median ms':>11}{'share':>8}")
    for k, s in bd["stages"].items():
        lines.append(f"   {k:<26}{ms(s['mean'])}{ms(s['median']):>11}{s['share_of_sum']:8.1%}")
    lines.append(f"   {'sum':<26}{ms(bd['sum_of_means'])}")
    rt = res["ratio"]
    m = rt["seconds_per_case_median"]
    lines.append("")
    lines.append(f"3. Cost per case vs minimal rooms-only SimPy model ({rt['rounds']} rounds x "
                 f"{rt['weeks']} weeks, interleaved; per case of the week, "
                 f"{rt['cases_per_week']:.1f} cases/week, minimal runs "
                 f"{rt['minimal_cases_done_per_week']:.1f} of them)")
    lines.append(f"   {'model':<40}{'us/case':>9}{'ms/week':>9}{'x minimal':>11}")
    for k, label in (("twin_sim", "twin simulation (SuiteModel build+run)"),
                     ("twin_replication", "twin whole replication"),
                     ("minimal", "minimal model (rooms only)")):
        lines.append(f"   {label:<40}{us(m[k])}{ms(m[k] * rt['cases_per_week'])}"
                     f"{m[k] / m['minimal']:11.1f}")
    pr = rt["median_paired_ratio"]
    lines.append(f"   median of paired ratios: twin_sim/minimal {pr['twin_sim/minimal']:.1f}, "
                 f"twin_replication/minimal {pr['twin_replication/minimal']:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    ap.add_argument("--policy", default="as-booked")
    ap.add_argument("--seed", type=int, default=None, help="base seed (default: the scenario's)")
    ap.add_argument("--reps", type=int, default=20, help="replications per measurement")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up replications")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the twin/minimal comparison")
    ap.add_argument("--weeks", type=int, default=6, help="weeks per round of the comparison")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also cProfile N replications and print the top 15")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: last allowed)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers to this file")
    a = ap.parse_args(argv)
    if a.reps < 1 or a.rounds < 1 or a.weeks < 1:
        ap.error("--reps, --rounds and --weeks must be at least 1")

    cpu = None if a.no_pin else pin_one_core(a.cpu)
    scn = load_scenario(a.scenario)
    seed = scn.seed if a.seed is None else a.seed
    for r in range(a.warmup):  # imports, caches, first-call costs
        run_replication(scn, a.policy, seed, 10_000 + r)
        run_minimal(scn, draw_week(scn, Streams(seed, 10_000 + r)))

    res = {
        "scenario": scn.name,
        "policy": a.policy,
        "seed": seed,
        "reps": a.reps,
        "warmup": a.warmup,
        "target_s_per_rep": TARGET_S,
        "environment": {
            "cpu": cpu, "python": platform.python_version(), "simpy": simpy.__version__,
            "numpy": np.__version__, "pandas": pd.__version__,
            "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, "
                       f"{os.cpu_count()} CPUs",
        },
    }
    # the collector settings every batch of the runner uses (ortwin.runner.quiet_gc)
    with quiet_gc():
        res["throughput"] = bench_throughput(scn, a.policy, seed, a.reps)
        res["breakdown"] = bench_breakdown(scn, a.policy, seed, a.reps)
        res["ratio"] = bench_ratio(scn, a.policy, seed, a.rounds, a.weeks)
    print(report(res))
    if a.profile:
        text, rows = profile(scn, a.policy, seed, a.profile)
        res["profile"] = {"reps": a.profile, "top_cumulative": rows}
        print(f"\n4. cProfile of {a.profile} replications (run_replication, keep_events=True)")
        print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2, default=float) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
