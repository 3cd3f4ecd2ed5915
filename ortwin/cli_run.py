"""``ortwin run`` and ``ortwin compare``, and the options every experiment command shares:
where it runs (``--cluster``, ``--workers``), streaming and resuming (``--out``, ``--resume``,
``--events``, ``--batch-size``) and precision (``--precision``, ``--max-reps``). A thin layer
over :mod:`ortwin.cluster`, :mod:`ortwin.experiment` and :mod:`ortwin.longrun`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ortwin.cli import UsageError, check_out_path, load_for_run
from ortwin.cluster import ClusterError, open_cluster
from ortwin.experiment import EVENTS
from ortwin.longrun import DEFAULT_MAX_REPS, PRECISION_START


def add_cluster_options(p: argparse.ArgumentParser, whole: Callable[[str, int], Any],
                        workers_default: int | None = 1) -> None:
    """``--cluster`` and ``--workers`` (every experiment command)."""
    p.add_argument("--cluster", default=None, metavar="WHERE",
                   help="where replications run: local (default: local processes), dask (a Dask "
                        "LocalCluster of --workers processes), tcp://HOST:PORT or a scheduler "
                        "file (.json) of an existing Dask scheduler; results are identical "
                        "everywhere")
    p.add_argument("--workers", type=whole("--workers", 1), default=workers_default,
                   help="worker processes for local or dask (default: "
                        f"{workers_default or 'the file’s, else 1'})")


def add_long_run_options(p: argparse.ArgumentParser, whole: Callable[[str, int], Any],
                         events_default: str) -> None:
    """Streaming, resume, events and precision options (``run``, ``compare``)."""
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: run only the missing parts "
                        "(refused if the inputs changed)")
    p.add_argument("--events", choices=EVENTS, default=None,
                   help="event logs (and case tables) to write: none, sample (replications "
                        f"0-9 of every arm) or all (default: {events_default})")
    p.add_argument("--batch-size", type=whole("--batch-size", 1), default=None, metavar="N",
                   help="replications per task (default: ceil(reps/16), at most 50)")
    p.add_argument("--precision", default=None, metavar="KPI:REL[,...]",
                   help="run rounds until the 95%% CI half-width of each KPI is within REL of "
                        "its mean (e.g. overtime_minutes:0.02 or overtime_minutes:2%%) in every "
                        f"arm; --reps is the first round (default {PRECISION_START})")
    p.add_argument("--max-reps", type=whole("--max-reps", 2), default=None, metavar="N",
                   help=f"cap per arm for --precision (default {DEFAULT_MAX_REPS:,})")


@contextlib.contextmanager
def cluster_session(cluster: str | None, workers: int) -> Iterator[Any]:
    """Open the executor, say on stderr where the run goes (and the Dask dashboard)."""
    try:
        ex = open_cluster(cluster, workers)
    except ClusterError as e:
        raise UsageError(str(e)) from None
    try:
        if cluster not in (None, "local"):
            print(f"running on {ex.label}" + (f"; dashboard: {ex.dashboard}" if ex.dashboard
                                               else ""), file=sys.stderr, flush=True)
        yield ex
    finally:
        ex.close()


class Progress:
    """A tqdm bar (rate and time left) on stderr, or nothing; its total can grow."""

    def __init__(self, mode: str, desc: str) -> None:
        self.bar = None
        if mode == "on" or (mode == "auto" and sys.stderr.isatty()):
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="rep", desc=desc, file=sys.stderr, smoothing=0.1)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def total(self, n: int) -> None:
        if self.bar is not None and self.bar.total != n:
            self.bar.total = n
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def first_round(args: argparse.Namespace) -> int:
    """``--reps``, else 10 (100 with ``--precision``, where it is the first round)."""
    return args.reps or (PRECISION_START if args.precision else 10)


def _targets(text: str | None):
    if not text:
        return None
    from ortwin.compare import CompareError, check_kpis
    from ortwin.precision import PrecisionError, parse_targets

    try:
        targets = parse_targets(text)
        check_kpis([t.kpi for t in targets])
    except (PrecisionError, CompareError) as e:
        raise UsageError(str(e).replace("--kpis", "--precision")) from None
    return targets


def _streamed(args: argparse.Namespace, arms: list, out: Path, manifest: dict, events: str,
              desc: str):
    from ortwin.longrun import Interrupted, ResumeError, run_streamed

    targets = _targets(args.precision)
    reps = first_round(args)
    if args.max_reps is not None and not targets:
        raise UsageError("--max-reps: only used with --precision")
    bar = None
    try:
        with cluster_session(args.cluster, args.workers) as ex:  # says where, before the bar
            bar = Progress(args.progress, desc)
            return run_streamed(arms, out, ex, manifest, reps=reps, events=events,
                                batch=args.batch_size, targets=targets, max_reps=args.max_reps,
                                resume=args.resume, progress=bar.update, total=bar.total)
    except ResumeError as e:
        raise UsageError(str(e)) from None
    except ClusterError as e:
        print(f"ortwin: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except Interrupted as e:
        if bar:
            bar.close()
        print(f"ortwin: {e}", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write ({e.strerror})") from None
    finally:
        if bar:
            bar.close()


def _where(res) -> str:
    m = res.manifest
    done = f"{res.parts_run} part(s) run" + (f", {res.parts_resumed} resumed"
                                              if res.parts_resumed else "")
    return f"{done} on {m.get('where')} in {res.seconds:.1f} s"


def cmd_run(args: argparse.Namespace) -> int:
    """``ortwin run``."""
    from ortwin.experiment import make_arm
    from ortwin.manifest import build_manifest
    from ortwin.precision import format_status
    from ortwin.summary import format_table

    scn = load_for_run(args.scenario, args.days)
    out = Path(args.out) if args.out else Path("out") / scn.name
    check_out_path("--out", out)
    seed = scn.seed if args.seed is None else args.seed
    reps = first_round(args)
    events = args.events or ("none" if args.no_events else
                             "all" if reps <= 100 and not args.precision else "sample")
    arm = make_arm(scn, args.policy, seed, Path(args.scenario).parent)
    manifest = build_manifest("run", [scn], [args.policy], args.policy, reps, [seed],
                              [args.scenario])
    res = _streamed(args, [arm], out, manifest, events, scn.name)
    print(f"scenario {scn.name} | policy {args.policy} | {res.reps:,} replications | "
          f"seed {seed} | {scn.horizon_days} days | events {events}")
    print(format_table(res.summary))
    if res.precision is not None:
        print()
        print(format_status(res.precision, res.reps, res.manifest["inputs"]["max_reps"],
                            res.manifest["precision_result"]["rounds"]))
    print(f"{_where(res)}; results written to {out}/ (replications, summary, manifest.json, "
          f"parts/ dataset); report: ortwin report {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``ortwin compare``."""
    from ortwin.compare import (
        CompareError,
        check_kpis,
        comparison,
        format_comparison,
        resolve_policies,
        write_differences,
    )
    from ortwin.experiment import make_arm
    from ortwin.manifest import build_manifest
    from ortwin.precision import format_status
    from ortwin.registry import POLICIES

    def names(text: str | None) -> list[str] | None:
        return None if text is None else [t.strip() for t in text.split(",") if t.strip()]

    try:
        pols, ref = resolve_policies(list(POLICIES) if args.policies is None
                                     else names(args.policies) or [], args.reference)
        kpis = None if args.kpis is None else check_kpis(names(args.kpis) or [])
    except CompareError as e:
        raise UsageError(str(e)) from None
    seen: dict[str, str] = {}
    scns = []
    for path in args.scenarios:
        scn = load_for_run(path, args.days)
        if scn.name in seen:
            raise UsageError(f"--scenarios {path}: name {scn.name!r} is also the name of "
                           f"{seen[scn.name]}")
        seen[scn.name] = path
        scns.append(scn)
    out = Path(args.out)
    check_out_path("--out", out)
    seeds = [scn.seed if args.seed is None else args.seed for scn in scns]
    arms = [make_arm(scn, pol, s, Path(path).parent)
            for scn, s, path in zip(scns, seeds, args.scenarios, strict=True) for pol in pols]
    reps = first_round(args)
    manifest = build_manifest("compare", scns, pols, ref, reps, seeds, args.scenarios)
    res = _streamed(args, arms, out, manifest, args.events or "none", "compare")
    comp = comparison(scns, pols, ref, res.reps, seeds, args.scenarios, res.replications)
    comp.manifest = res.manifest
    print(format_comparison(comp, kpis))
    if res.precision is not None:
        print()
        print(format_status(res.precision, res.reps, res.manifest["inputs"]["max_reps"],
                            res.manifest["precision_result"]["rounds"]))
    try:
        write_differences(comp, out)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write ({e.strerror})") from None
    print(f"\n{_where(res)}; results written to {out}/ (replications, summary, differences, "
          f"manifest.json, parts/ dataset); report: ortwin report {out} -o {out}/report.html")
    return 0
