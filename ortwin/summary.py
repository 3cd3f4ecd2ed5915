"""Across-replication summaries of KPIs: means with t-intervals, tail quantiles and CVaR,
paired (common-random-numbers) differences between policies, and a terminal table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from twin.kpis import KPIS, kpi_def

STATS: tuple[str, ...] = (
    "n", "mean", "sd", "ci95_low", "ci95_high", "p50", "p90", "p95", "cvar95",
)
"""Statistic columns of :func:`summarise`, after the ``by`` columns and ``kpi``."""


def cvar(values: Sequence[float] | np.ndarray, alpha: float = 0.95,
         better: Literal["lower", "higher"] = "lower") -> float:
    """Conditional value at risk: mean of the worst ``1 - alpha`` tail (values >= the alpha
    quantile when lower is better, <= the 1 - alpha quantile when higher is); NaN ignored."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return math.nan
    if better == "higher":
        return float(v[v <= np.quantile(v, 1.0 - alpha)].mean())
    return float(v[v >= np.quantile(v, alpha)].mean())


def t_interval(v: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of the mean (NaN bounds with fewer than 2 values)."""
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def _describe(values: np.ndarray, better: Literal["lower", "higher"]) -> list[float]:
    v = values[~np.isnan(values)]
    if not len(v):
        return [0.0] + [math.nan] * (len(STATS) - 1)
    mean, lo, hi = t_interval(v)
    sd = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    p50, p90, p95 = (float(x) for x in np.percentile(v, (50, 90, 95)))
    return [float(len(v)), mean, sd, lo, hi, p50, p90, p95, cvar(v, 0.95, better)]


def kpi_columns(reps: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Numeric KPI columns of ``reps`` (not ``rep`` nor ``exclude``): registry order first,
    then the others in frame order."""
    skip = set(exclude) | {"rep"}
    numeric = [c for c in reps.columns if c not in skip and pd.api.types.is_numeric_dtype(reps[c])
               and not pd.api.types.is_bool_dtype(reps[c])]
    known = [k for k in KPIS if k in numeric]
    return known + [c for c in numeric if c not in KPIS]


def summarise(reps: pd.DataFrame, by: Sequence[str] = ("scenario", "policy")) -> pd.DataFrame:
    """Tidy summary of one-row-per-replication KPIs: one row per group of ``by`` and KPI with
    n, mean, sd, 95% t-interval, P50/P90/P95 and CVaR95 (``by`` columns absent are ignored)."""
    by = [b for b in by if b in reps.columns]
    kpis = kpi_columns(reps, by)
    groups = reps.groupby(by, sort=False, dropna=False) if by else [((), reps)]
    rows: list[list[object]] = []
    for key, g in groups:
        key_t = key if isinstance(key, tuple) else (key,)
        for kpi in kpis:
            rows.append([*key_t, kpi, *_describe(g[kpi].to_numpy(float), kpi_def(kpi).better)])
    out = pd.DataFrame(rows, columns=[*by, "kpi", *STATS])
    out["n"] = out["n"].astype(np.int64)
    return out


def paired_difference(reps: pd.DataFrame, kpi: str, policy_a: str, policy_b: str,
                      by: str | Sequence[str] = "rep", level: float = 0.95
                      ) -> tuple[float, float, float]:
    """Mean of ``kpi(a) - kpi(b)`` over replications both policies ran (paired on ``by``:
    common random numbers) and its two-sided paired t-interval at ``level`` (default 95%)."""
    keys = [by] if isinstance(by, str) else list(by)

    def side(policy: str) -> pd.Series:
        s = reps.loc[reps["policy"] == policy].set_index(keys)[kpi]
        if not s.index.is_unique:
            raise ValueError(f"policy {policy!r} has several rows per {keys}; pass a finer `by`")
        return s.astype(float)

    both = pd.concat([side(policy_a), side(policy_b)], axis=1, join="inner").dropna()
    return t_interval(both.iloc[:, 0].to_numpy() - both.iloc[:, 1].to_numpy(), level)


def fmt_number(x: float) -> str:
    """A number for a table: "-" for none or NaN, fewer decimals the larger it is."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    a = abs(x)
    if a >= 10_000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1 or a == 0:
        return f"{x:.2f}"
    return f"{x:.3f}"


def format_table(summary: pd.DataFrame) -> str:
    """Fixed-width text table of a :func:`summarise` result: one block per group, one line per
    KPI with label, unit, mean, P50, P90, P95 and CVaR95."""
    by = [c for c in summary.columns if c not in ("kpi", *STATS)]
    heads = ("KPI", "unit", "mean", "P50", "P90", "P95", "CVaR95")
    blocks: list[str] = []
    groups = summary.groupby(by, sort=False, dropna=False) if by else [((), summary)]
    for key, g in groups:
        key_t = key if isinstance(key, tuple) else (key,)
        lines = [[kpi_def(r.kpi).label, kpi_def(r.kpi).unit,
                  *(fmt_number(getattr(r, c)) for c in ("mean", "p50", "p90", "p95", "cvar95"))]
                 for r in g.itertuples(index=False)]
        widths = [max(len(h), *(len(ln[i]) for ln in lines)) if lines else len(h)
                  for i, h in enumerate(heads)]

        def row(cells: Sequence[str], w: list[int] = widths) -> str:
            left = [f"{cells[0]:<{w[0]}}", f"{cells[1]:<{w[1]}}"]
            return "  ".join(left + [f"{c:>{wi}}" for c, wi in zip(cells[2:], w[2:], strict=True)])

        title = ", ".join(f"{b}={k}" for b, k in zip(by, key_t, strict=True))
        n = int(g["n"].max()) if len(g) else 0
        out = [f"{title}  (n={n})" if title else f"(n={n})", row(heads),
               "  ".join("-" * w for w in widths)]
        blocks.append("\n".join(out + [row(ln) for ln in lines]))
    return "\n\n".join(blocks)
