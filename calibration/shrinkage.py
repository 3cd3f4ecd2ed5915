"""Empirical-Bayes partial pooling of group means (on the log scale).

A group (a surgeon's cases of one procedure, say) with ``n`` observations and mean ``m`` of
log-durations is pulled towards its parent's mean by the precision-weighted average

    (n m / s2 + parent / tau2) / (n / s2 + 1 / tau2),

where ``s2`` is the within-group variance and ``tau2`` the between-group variance, estimated
by the method of moments (DerSimonian–Laird). Small groups land near the parent, large ones
near their own mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TAU2_FLOOR = 1e-6
"""Smallest between-group variance returned (log scale): pooling never becomes total."""

ArrayLike = Sequence[float] | np.ndarray | float


def _check_var(name: str, v: float) -> float:
    v = float(v)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be positive and finite, got {v}")
    return v


def between_variance(
    means: ArrayLike, counts: ArrayLike, within_var: float, floor: float = TAU2_FLOOR
) -> float:
    """Method-of-moments (DerSimonian–Laird) between-group variance tau^2, at least ``floor``."""
    s2 = _check_var("within_var", within_var)
    m = np.asarray(means, dtype=float).ravel()
    n = np.asarray(counts, dtype=float).ravel()
    if m.shape != n.shape:
        raise ValueError(f"means and counts differ in length: {m.size} vs {n.size}")
    keep = (n > 0) & np.isfinite(m)
    m, w = m[keep], n[keep] / s2  # weight = 1 / var(mean) = n / s2
    if m.size < 2:
        return floor
    mbar = float(np.dot(w, m) / w.sum())
    q = float(np.dot(w, (m - mbar) ** 2))
    c = float(w.sum() - np.dot(w, w) / w.sum())
    tau2 = (q - (m.size - 1)) / c if c > 0 else 0.0
    return max(tau2, floor)


def shrinkage_weight(counts: ArrayLike, within_var: float, tau2: float) -> np.ndarray:
    """Weight on each group's own mean, ``n / (n + s2 / tau2)`` (0 for an empty group)."""
    s2 = _check_var("within_var", within_var)
    t2 = _check_var("tau2", tau2)
    n = np.maximum(np.asarray(counts, dtype=float), 0.0)
    return n / (n + s2 / t2)


def shrink_means(
    means: ArrayLike, counts: ArrayLike, parent: ArrayLike, within_var: float, tau2: float
) -> np.ndarray:
    """Precision-weighted ``(n m/s2 + parent/tau2) / (n/s2 + 1/tau2)``; parent scalar or array."""
    w = shrinkage_weight(counts, within_var, tau2)
    m = np.asarray(means, dtype=float)
    p = np.asarray(parent, dtype=float)
    own = np.where(w > 0, m, 0.0)  # an empty group's (possibly NaN) mean is ignored
    return w * own + (1.0 - w) * p
