"""Policy comparisons: every scenario x policy with common random numbers, KPI summaries and
paired differences from a reference policy with 95% confidence intervals.

Every arm (scenario, policy) runs the same replication indices ``0..reps-1`` from the same base
seed, so replication ``i`` has the same patients under every policy of a scenario (common random
numbers) and the difference ``KPI(policy, i) - KPI(reference, i)`` is paired on ``i``. The
interval is :func:`ortwin.summary.paired_difference`'s paired t-interval.

Policy names are looked up in :data:`ortwin.registry.POLICIES` when :func:`compare` is called, so any
policy registered by then can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ortwin.cluster import Executor
from ortwin.manifest import build_manifest
from ortwin.summary import fmt_number, kpi_columns, paired_difference, summarise
from twin.io import atomic_write
from twin.kpis import KPIS, kpi_def
from twin.scenario import Scenario

DEFAULT_KPIS: tuple[str, ...] = (
    "utilisation", "overtime_minutes", "out_of_hours_minutes", "overtime_p90_room_day",
    "cases_completed", "cases_cancelled", "pacu_hold_minutes", "addon_wait_mean", "cost_total",
    "plan_fallbacks",
)
"""KPIs shown by :func:`format_comparison` unless others are asked for (``--kpis``)."""

DIFF_COLUMNS: tuple[str, ...] = (
    "scenario", "policy", "reference", "kpi", "mean_diff", "ci_low", "ci_high", "n", "better",
    "excludes_zero", "verdict",
)
"""Columns of :attr:`Comparison.differences`."""

VERDICTS = ("better", "worse", "inconclusive")
"""``verdict``: the 95% CI of ``policy - reference`` lies wholly on the KPI's better side,
wholly on its worse side, or includes 0 (or has too few pairs to say)."""


class CompareError(ValueError):
    """A bad comparison request (unknown policy or KPI, duplicate names); one-line message."""


@dataclass
class Comparison:
    """Replications and summaries of every arm plus paired differences from the reference."""

    replications: pd.DataFrame
    """One row per (scenario, policy, rep) with every KPI."""
    summary: pd.DataFrame
    """One row per (scenario, policy, kpi): n, mean, sd, CI, P50/P90/P95, CVaR95."""
    differences: pd.DataFrame
    """One row per (scenario, policy other than the reference, kpi); see :data:`DIFF_COLUMNS`."""
    policies: tuple[str, ...]
    reference: str
    runs: pd.DataFrame
    """One row per scenario: ``scenario, days, seed, reps``."""
    room_days: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per (scenario, policy, rep, room, day): staffed, used and overtime minutes."""
    services: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per (scenario, policy, rep, service): cases, cancellations, shares."""
    manifest: dict = field(default_factory=dict)
    """What was run: :func:`ortwin.manifest.build_manifest` (scenarios, seeds, version)."""

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write replications, summary, differences, room-days and services as parquet
        (summary and differences as CSV too) and ``manifest.json``, each file atomically."""
        from ortwin.manifest import write_manifest

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, df in (("replications", self.replications), ("summary", self.summary),
                         ("differences", self.differences), ("room_days", self.room_days),
                         ("services", self.services)):
            written.append(atomic_write(out / f"{name}.parquet",
                                   lambda p, d=df: d.to_parquet(p, index=False)))
        for name, df in (("summary", self.summary), ("differences", self.differences)):
            written.append(atomic_write(out / f"{name}.csv", lambda p, d=df: d.to_csv(p, index=False)))
        written.append(write_manifest(out, self.manifest or {"kind": "compare"}))
        return written


def write_differences(comp: Comparison, out_dir: str | Path) -> list[Path]:
    """Write the paired differences (parquet and CSV), each atomically: what a streamed
    comparison adds to the replications and summary :mod:`ortwin.longrun` wrote."""
    out = Path(out_dir)
    df = comp.differences
    return [atomic_write(out / "differences.parquet", lambda p: df.to_parquet(p, index=False)),
            atomic_write(out / "differences.csv", lambda p: df.to_csv(p, index=False))]


def default_reference(policies: Sequence[str]) -> str:
    """``manual`` when it is among ``policies``, else the first of them."""
    if not policies:
        raise CompareError("--policies: expected at least one policy")
    return "manual" if "manual" in policies else policies[0]


def resolve_policies(policies: Sequence[str], reference: str | None = None
                     ) -> tuple[tuple[str, ...], str]:
    """Check ``policies`` against the registry (read now) and pick the reference."""
    from ortwin.registry import POLICIES

    pols = tuple(policies)
    if not pols:
        raise CompareError("--policies: expected at least one policy")
    for p in pols:
        if p not in POLICIES:
            raise CompareError(f"--policies: unknown policy {p!r} "
                               f"(expected one of {', '.join(POLICIES)})")
    dup = sorted({p for p in pols if pols.count(p) > 1})
    if dup:
        raise CompareError(f"--policies: policy {dup[0]!r} is listed twice")
    ref = default_reference(pols) if reference is None else reference
    if ref not in pols:
        raise CompareError(f"--reference: {ref!r} is not one of the compared policies "
                           f"({', '.join(pols)})")
    return pols, ref


def check_kpis(kpis: Sequence[str]) -> tuple[str, ...]:
    """``kpis`` if every one is a registered KPI key (``staff_overtime_<role>`` included)."""
    out = tuple(kpis)
    if not out:
        raise CompareError("--kpis: expected at least one KPI")
    for k in out:
        if k not in KPIS and not k.startswith("staff_overtime_"):
            raise CompareError(f"--kpis: unknown KPI {k!r} (expected keys such as "
                               f"{', '.join(DEFAULT_KPIS[:3])}; see docs/model.md)")
    return out


def compare(scenarios: Sequence[Scenario], policies: Sequence[str], reps: int = 10,
            seed: int | None = None, workers: int = 1, reference: str | None = None, *,
            base_dirs: Sequence[Path | None] | None = None,
            progress: Callable[[int], None] | None = None,
            sources: Sequence[str | Path | None] | None = None,
            cluster: str | Executor | None = None) -> Comparison:
    """Run every scenario under every policy (``reps`` replications each, same seed and
    replication indices for every arm) and gather summaries and paired differences.
    ``sources`` (one per scenario: its file, or None) go into the manifest.

    ``seed`` None uses each scenario's own seed (the same for all of its policies).
    ``cluster``: an open :mod:`ortwin.cluster` executor, or a ``--cluster`` value opened (with
    ``workers``) for this call; every arm's tasks are submitted together.
    ``reference`` None means ``manual`` if compared, else the first policy. ``base_dirs`` (one
    per scenario) resolve relative paths such as booked lists, as ``run_experiment`` does.
    """
    pols, ref = resolve_policies(policies, reference)
    scns = list(scenarios)
    if not scns:
        raise CompareError("--scenarios: expected at least one scenario")
    names = [s.name for s in scns]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CompareError(f"--scenarios: scenario name {dup[0]!r} is used twice")
    dirs = list(base_dirs) if base_dirs is not None else [None] * len(scns)
    if len(dirs) != len(scns):
        raise CompareError("base_dirs: expected one entry per scenario")
    if reps < 1:
        raise CompareError("--reps: expected a number of at least 1")

    from ortwin.cluster import using
    from ortwin.experiment import concat, make_arm, run_arms

    seeds = [scn.seed if seed is None else seed for scn in scns]
    arms = [make_arm(scn, pol, s, base) for scn, s, base in zip(scns, seeds, dirs, strict=True)
            for pol in pols]
    with using(cluster, workers) as ex:
        results = run_arms(arms, reps, ex, "none", True, progress)
    return comparison(scns, pols, ref, reps, seeds, sources,
                      pd.concat([r.replications for r in results], ignore_index=True),
                      concat(r.room_days for r in results),
                      concat(r.services for r in results))


def comparison(scenarios: Sequence[Scenario], policies: Sequence[str], reference: str,
               reps: int, seeds: Sequence[int], sources: Sequence[str | Path | None] | None,
               replications: pd.DataFrame, room_days: pd.DataFrame | None = None,
               services: pd.DataFrame | None = None) -> Comparison:
    """A :class:`Comparison` from every arm's replications (summary and paired differences
    computed here)."""
    pols = tuple(policies)
    summary = summarise(replications)
    runs = [{"scenario": scn.name, "days": scn.horizon_days, "seed": int(s), "reps": reps}
            for scn, s in zip(scenarios, seeds, strict=True)]
    return Comparison(
        replications=replications,
        summary=summary,
        differences=differences(replications, pols, reference),
        policies=pols,
        reference=reference,
        runs=pd.DataFrame(runs, columns=["scenario", "days", "seed", "reps"]),
        room_days=room_days if room_days is not None else pd.DataFrame(),
        services=services if services is not None else pd.DataFrame(),
        manifest=build_manifest("compare", scenarios, pols, reference, reps, list(seeds),
                                sources),
    )


def read_comparison(results_dir: str | Path) -> Comparison:
    """A :class:`Comparison` read back from what ``ortwin compare --out`` or ``ortwin run
    --out`` wrote (summary and differences recomputed from the replications; ``CompareError``
    naming the file when it is missing or unreadable)."""
    from ortwin.manifest import read_manifest
    from ortwin.summary import summarise

    d = Path(results_dir)
    if not d.is_dir():
        raise CompareError(f"{d}: expected a results directory (from ortwin run or compare)")

    def frame(name: str, required: bool) -> pd.DataFrame:
        p = d / f"{name}.parquet"
        if not required and (d / "parts" / name).is_dir():  # a streamed run's dataset
            from ortwin.dataset import read_table

            try:
                return read_table(d, name)
            except Exception as e:  # pyarrow raises several types
                raise CompareError(f"{d / 'parts' / name}: not a readable parquet dataset "
                                   f"({e})") from None
        if not p.is_file():
            if required:
                raise CompareError(f"{p}: missing (expected the output of ortwin run or "
                                   f"ortwin compare)")
            return pd.DataFrame()
        try:
            return pd.read_parquet(p)
        except Exception as e:  # pyarrow raises several types
            raise CompareError(f"{p}: not a readable parquet file ({e})") from None

    reps = frame("replications", True)
    for col in ("scenario", "policy", "rep"):
        if col not in reps.columns:
            raise CompareError(f"{d / 'replications.parquet'}: column {col!r} is missing")
    if reps.empty:
        raise CompareError(f"{d / 'replications.parquet'}: expected at least one replication")
    manifest = read_manifest(d)
    pols = tuple(manifest.get("policies") or dict.fromkeys(reps["policy"]))
    ref = manifest.get("reference") or default_reference(pols)
    runs = pd.DataFrame(manifest.get("runs") or [
        {"scenario": s, "days": None, "seed": None, "reps": int(g["rep"].nunique())}
        for s, g in reps.groupby("scenario", sort=False)],
        columns=["scenario", "days", "seed", "reps"])
    summary = summarise(reps)
    return Comparison(replications=reps, summary=summary,
                      differences=differences(reps, pols, ref), policies=pols, reference=ref,
                      runs=runs, room_days=frame("room_days", False),
                      services=frame("services", False), manifest=manifest)


def _verdict(lo: float, hi: float, better: str) -> tuple[bool, str]:
    if math.isnan(lo) or math.isnan(hi) or lo <= 0 <= hi:
        return False, "inconclusive"
    side = "higher" if lo > 0 else "lower"
    return True, "better" if side == better else "worse"


def differences(replications: pd.DataFrame, policies: Sequence[str], reference: str,
                kpis: Sequence[str] | None = None) -> pd.DataFrame:
    """Paired differences ``policy - reference`` per scenario and KPI with 95% t-intervals
    (:func:`ortwin.summary.paired_difference` on that scenario's replications), the number of
    pairs and the verdict (:data:`VERDICTS`)."""
    ks = list(kpis) if kpis is not None else kpi_columns(replications,
                                                         ("scenario", "policy", "rep"))
    rows = []
    for scenario, sub in replications.groupby("scenario", sort=False):
        ref_rows = sub.loc[sub["policy"] == reference].set_index("rep")
        for pol in policies:
            if pol == reference:
                continue
            pol_rows = sub.loc[sub["policy"] == pol].set_index("rep")
            for kpi in ks:
                mean, lo, hi = paired_difference(sub, kpi, pol, reference)
                n = len(pd.concat([pol_rows[kpi], ref_rows[kpi]], axis=1, join="inner").dropna())
                better = kpi_def(kpi).better
                excl, verdict = _verdict(lo, hi, better)
                rows.append([scenario, pol, reference, kpi, mean, lo, hi, n, better, excl,
                             verdict])
    out = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
    return out.astype({"mean_diff": float, "ci_low": float, "ci_high": float, "n": "int64",
                       "excludes_zero": bool})


EFFECT_COLUMNS: tuple[str, ...] = (
    "scenario", "base", "policy", "kpi", "base_mean", "mean", "mean_diff", "ci_low", "ci_high",
    "n", "better", "verdict",
)
"""Columns of :func:`scenario_effects`."""


def scenario_effects(replications: pd.DataFrame, base: str,
                     kpis: Sequence[str] | None = None) -> pd.DataFrame:
    """The effect of each other scenario against ``base`` under the same policy: per KPI the
    means and the paired difference ``scenario - base`` on the replication index with its 95%
    t-interval and verdict. Scenarios run from the same seed share their random numbers per
    replication, so the pairing removes the noise common to both."""
    from ortwin.summary import t_interval

    ks = list(kpis) if kpis is not None else kpi_columns(replications,
                                                         ("scenario", "policy", "rep"))
    rows = []
    ref = replications[replications["scenario"] == base]
    for (scn, pol), sub in replications.groupby(["scenario", "policy"], sort=False):
        if scn == base:
            continue
        b = ref[ref["policy"] == pol].set_index("rep")
        s = sub.set_index("rep")
        for kpi in ks:
            both = pd.concat([s[kpi], b[kpi]], axis=1, join="inner").dropna().to_numpy(float)
            mean, lo, hi = t_interval(both[:, 0] - both[:, 1]) if len(both) else (math.nan,) * 3
            better = kpi_def(kpi).better
            verdict = _verdict(lo, hi, better)[1]
            rows.append([scn, base, pol, kpi, float(both[:, 1].mean()) if len(both) else math.nan,
                         float(both[:, 0].mean()) if len(both) else math.nan, mean, lo, hi,
                         len(both), better, verdict])
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))


def _signed(x: float) -> str:
    text = fmt_number(x)
    return f"+{text}" if isinstance(x, float) and not math.isnan(x) and x > 0 else text


def format_comparison(comp: Comparison, kpis: Sequence[str] | None = None) -> str:
    """One fixed-width table per scenario: for each KPI (default :data:`DEFAULT_KPIS`, those
    present) and policy the mean and P90, and for non-reference policies the paired difference
    from the reference, its 95% CI and the verdict (``better``, ``worse``, or ``n.s.`` for
    inconclusive: the CI includes 0)."""
    wanted = list(DEFAULT_KPIS if kpis is None else check_kpis(kpis))
    present = set(comp.summary["kpi"])
    wanted = [k for k in wanted if k in present]
    summ = comp.summary.set_index(["scenario", "policy", "kpi"])
    diffs = comp.differences.set_index(["scenario", "policy", "kpi"])
    heads = ("KPI", "unit", "policy", "mean", "P90", f"diff vs {comp.reference}", "95% CI",
             "verdict")
    blocks = []
    for run in comp.runs.itertuples(index=False):
        lines: list[list[str]] = []
        for kpi in wanted:
            d = kpi_def(kpi)
            for i, pol in enumerate(comp.policies):
                key = (run.scenario, pol, kpi)
                if key not in summ.index:
                    continue
                s = summ.loc[key]
                if pol == comp.reference:
                    diff, ci, verdict = "(reference)", "", ""
                elif key in diffs.index:
                    r = diffs.loc[key]
                    diff = _signed(float(r["mean_diff"]))
                    ci = f"[{_signed(float(r['ci_low']))}, {_signed(float(r['ci_high']))}]"
                    verdict = "n.s." if r["verdict"] == "inconclusive" else str(r["verdict"])
                else:
                    diff, ci, verdict = "-", "", ""
                lines.append([d.label if i == 0 else "", d.unit if i == 0 else "", pol,
                              fmt_number(float(s["mean"])), fmt_number(float(s["p90"])), diff, ci, verdict])
        widths = [max(len(h), *(len(ln[i]) for ln in lines)) if lines else len(h)
                  for i, h in enumerate(heads)]

        def row(cells: Sequence[str], w: list[int] = widths) -> str:
            left = [f"{c:<{wi}}" for c, wi in zip(cells[:3], w[:3], strict=True)]
            right = [f"{c:>{wi}}" for c, wi in zip(cells[3:6], w[3:6], strict=True)]
            tail = [f"{c:<{wi}}" for c, wi in zip(cells[6:], w[6:], strict=True)]
            return "  ".join(left + right + tail).rstrip()

        title = (f"scenario {run.scenario} | policies {', '.join(comp.policies)} | reference "
                 f"{comp.reference} | {run.reps} replications | seed {run.seed} | "
                 f"{run.days} days")
        blocks.append("\n".join([title, row(heads), "  ".join("-" * w for w in widths),
                                 *(row(ln) for ln in lines)]))
    return "\n\n".join(blocks)
