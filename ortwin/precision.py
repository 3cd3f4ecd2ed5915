"""How many replications are enough: run until the 95% confidence half-width of named KPIs is
within a relative target (the sequential procedure of Law, *Simulation Modeling and Analysis*,
section 9.4.1).

After a round of ``n`` replications the half-width of KPI ``k`` in an arm is
``t(0.975, n-1) * s / sqrt(n)``. The target ``k:REL`` is met when it is at most ``REL * |mean|``
(a KPI that is constant, sd 0, always meets it). If some arm misses a target the next round
goes to ``n * (half-width / target)^2`` (the usual estimate, as the half-width shrinks with
``1/sqrt(n)``), at least 10% more and at most 4 times more, rounded up to whole tasks and capped
at ``--max-reps``. Replications are always ``0..n-1``, so the result equals a fixed run of the
final ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


class PrecisionError(ValueError):
    """A bad ``--precision`` value; the message is one line."""


@dataclass(frozen=True)
class Target:
    """Relative half-width target for one KPI."""

    kpi: str
    rel: float

    def __str__(self) -> str:
        return f"{self.kpi}:{self.rel:g}"


def parse_targets(text: str) -> list[Target]:
    """``KPI:REL[,KPI:REL...]`` with REL a fraction (0.05) or a percentage (5%)."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        kpi, sep, rel = item.rpartition(":")
        if not sep or not kpi:
            raise PrecisionError(f"--precision: expected KPI:REL such as overtime_minutes:0.05, "
                                 f"got {item!r}")
        try:
            value = float(rel[:-1]) / 100 if rel.endswith("%") else float(rel)
        except ValueError:
            raise PrecisionError(f"--precision {item}: expected a relative half-width such as "
                                 f"0.05 or 5%, got {rel!r}") from None
        if not 0 < value < 1 or not math.isfinite(value):
            raise PrecisionError(f"--precision {item}: expected a relative half-width between "
                                 f"0 and 1 (0.05 = 5% of the mean), got {rel}")
        out.append(Target(kpi.strip(), value))
    if not out:
        raise PrecisionError("--precision: expected at least one KPI:REL")
    return out


def half_width(x: np.ndarray) -> float:
    """The 95% Student-t half-width of the mean of ``x`` (nan below 2 values)."""
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


STATUS_COLUMNS = ("scenario", "policy", "kpi", "n", "mean", "half_width", "relative", "target",
                  "met")


def status(replications: pd.DataFrame, targets: Sequence[Target]) -> pd.DataFrame:
    """Per arm and target: n, mean, half-width, relative half-width, target and whether met."""
    rows = []
    for (scn, pol), g in replications.groupby(["scenario", "policy"], sort=False):
        for t in targets:
            x = g[t.kpi].to_numpy(float) if t.kpi in g else np.full(0, np.nan)
            mean = float(np.nanmean(x)) if np.isfinite(x).any() else math.nan
            hw = half_width(x)
            if hw == 0:
                rel = 0.0
            elif math.isnan(hw) or mean == 0 or math.isnan(mean):
                rel = math.inf
            else:
                rel = hw / abs(mean)
            rows.append([scn, pol, t.kpi, int(np.isfinite(x).sum()), mean, hw, rel, t.rel,
                         bool(rel <= t.rel)])
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))


def next_reps(n: int, st: pd.DataFrame, batch: int, max_reps: int) -> int:
    """The replication count of the next round (``n`` when every target is met or at the cap)."""
    if st["met"].all() or n >= max_reps:
        return n
    ratio = (st["relative"] / st["target"]).max()
    want = n * 4 if not math.isfinite(ratio) else math.ceil(n * ratio ** 2)
    want = min(max(want, math.ceil(n * 1.1)), n * 4)
    want = math.ceil(want / batch) * batch
    return min(max(want, n + 1), max_reps)


def format_status(st: pd.DataFrame, reps: int, max_reps: int,
                  rounds: Sequence[int] = ()) -> str:
    """The precision table and a one-line verdict (with the replications after each round)."""
    lines = [f"{'scenario / policy':<34}{'KPI':<26}{'n':>7}{'mean':>12}{'±95%':>11}"
             f"{'rel':>8}{'target':>8}  met"]
    for r in st.itertuples(index=False):
        rel = "-" if not math.isfinite(r.relative) else f"{r.relative:.1%}"
        lines.append(f"{(r.scenario + ' / ' + r.policy)[:33]:<34}{r.kpi[:25]:<26}{r.n:>7}"
                     f"{r.mean:>12.4g}{r.half_width:>11.3g}{rel:>8}{r.target:>8.1%}  "
                     f"{'yes' if r.met else 'NO'}")
    if len(rounds) > 1:
        lines.append("rounds: " + " -> ".join(f"{n:,}" for n in rounds) + " replications")
    if st["met"].all():
        lines.append(f"precision reached with {reps:,} replications per arm")
    else:
        lines.append(f"precision NOT reached: stopped at the cap of {max_reps:,} replications "
                     f"per arm (--max-reps)")
    return "\n".join(lines)
