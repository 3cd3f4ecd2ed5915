"""Detect one level shift in a time-ordered series of log-duration residuals.

A residual is ``log(actual) - log(procedure median)``; a surgeon who speeds up mid-year shows a
drop in its mean. :func:`best_split` scans every split between distinct times (each side at
least ``min_side`` cases) for the largest Welch t statistic; its p-value is Bonferroni-adjusted
over the split points scanned and over ``n_tests`` series (conservative: split points are
strongly correlated). :func:`detect_shift` reports the split only when it is significant and
large enough to matter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Shift:
    """A level shift: means before and after, the ratio of durations and its significance."""

    at: float
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    ratio: float
    t_stat: float
    p_value: float


def best_split(
    t: Sequence[float] | np.ndarray,
    r: Sequence[float] | np.ndarray,
    min_side: int = 15,
    n_tests: int = 1,
) -> Shift | None:
    """The split maximising |Welch t| (each side >= ``min_side``); None if too few data."""
    tt = np.asarray(t, dtype=float).ravel()
    rr = np.asarray(r, dtype=float).ravel()
    if tt.shape != rr.shape:
        raise ValueError(f"t and r differ in length: {tt.size} vs {rr.size}")
    ok = np.isfinite(tt) & np.isfinite(rr)
    order = np.argsort(tt[ok], kind="stable")
    tt, rr = tt[ok][order], rr[ok][order]
    n = tt.size
    side = max(int(min_side), 2)
    if n < 2 * side:
        return None
    # split index i: before = rr[:i], after = rr[i:]; only where the time changes
    idx = np.arange(side, n - side + 1)
    idx = idx[tt[idx] > tt[idx - 1]]
    if idx.size == 0:
        return None
    mu = float(rr.mean())
    rc = rr - mu  # centred: the running sums of squares then lose no precision
    c1 = np.concatenate([[0.0], np.cumsum(rc)])
    c2 = np.concatenate([[0.0], np.cumsum(rc * rc)])
    na, nb = idx.astype(float), (n - idx).astype(float)
    ma, mb = c1[idx] / na, (c1[n] - c1[idx]) / nb
    va = np.maximum((c2[idx] - na * ma * ma) / (na - 1), 0.0)
    vb = np.maximum((c2[n] - c2[idx] - nb * mb * mb) / (nb - 1), 0.0)
    se2 = va / na + vb / nb
    tiny = 1e-12 * max(float(np.var(rr)), 1e-300)  # guards exactly-constant sides
    tstat = (mb - ma) / np.sqrt(np.maximum(se2, tiny))
    j = int(np.argmax(np.abs(tstat)))
    a2, b2 = va[j] / na[j], vb[j] / nb[j]
    den = a2 * a2 / (na[j] - 1) + b2 * b2 / (nb[j] - 1)
    df = (a2 + b2) ** 2 / den if den > 0 else float(n - 2)  # Welch–Satterthwaite
    p_one = 2.0 * float(stats.t.sf(abs(tstat[j]), df))
    i = int(idx[j])
    return Shift(
        at=float(tt[i]),
        n_before=i,
        n_after=n - i,
        mean_before=float(ma[j]) + mu,
        mean_after=float(mb[j]) + mu,
        ratio=math.exp(float(mb[j] - ma[j])),
        t_stat=float(tstat[j]),
        p_value=min(1.0, p_one * idx.size * max(int(n_tests), 1)),
    )


def detect_shift(
    t: Sequence[float] | np.ndarray,
    r: Sequence[float] | np.ndarray,
    min_side: int = 15,
    alpha: float = 0.01,
    min_ratio_change: float = 0.05,
    n_tests: int = 1,
) -> Shift | None:
    """The best split if significant (adjusted p < ``alpha``) and |ratio - 1| large enough."""
    s = best_split(t, r, min_side=min_side, n_tests=n_tests)
    if s is None or s.p_value >= alpha or abs(s.ratio - 1.0) < min_ratio_change:
        return None
    return s
