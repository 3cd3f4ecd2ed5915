"""Fit one sample of positive durations to candidate families and pick the best by AIC.

Families: lognormal (closed-form MLE), gamma and Weibull (robust one-dimensional MLE on data
scaled by its geometric mean), and "empirical", a Freedman–Diaconis histogram density whose
``k = bins - 1`` free parameters make AIC prefer it only for plentiful data that no parametric
family fits (bimodal, say). Degenerate samples (all equal, tiny spread) never raise: the
lognormal sigma is floored at :data:`SIGMA_FLOOR` and the gamma / Weibull shapes capped where
their coefficient of variation reaches the same 1%, so every fit yields a valid
:mod:`twin.distributions` model and no family wins on near-constant data by being narrower.

The KS statistic of a sample with tied values (not spread, see ``dequantize``) is the exact
sup-distance (:func:`ks_distance`), not scipy's, which counts every copy of a repeated value as
its own point and so gives an empirical fit a D of up to the largest tie's share against its
own data. :meth:`FitResult.why` says in words why a family was chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from twin.distributions import Empirical, Gamma, Lognormal, Weibull

Distribution = Lognormal | Gamma | Weibull | Empirical

FAMILIES = ("lognormal", "gamma", "weibull", "empirical")
SIGMA_FLOOR = 0.01
"""Smallest lognormal log-sd a fit returns (a 1% coefficient of variation)."""
GAMMA_SHAPE_CAP = 1.0 / SIGMA_FLOOR**2
"""Largest gamma shape a fit returns: cv = 1/sqrt(shape) = SIGMA_FLOOR (near-constant data)."""
WEIBULL_SHAPE_CAP = math.pi / math.sqrt(6) / SIGMA_FLOOR
"""Largest Weibull shape a fit returns: cv ~ 1.28/shape = SIGMA_FLOOR (about 128)."""
MAX_BINS = 50
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class FamilyFit:
    """One family fitted by maximum likelihood, with its AIC and KS goodness of fit."""

    family: str
    dist: Distribution
    loglik: float
    k: int
    aic: float
    ks_stat: float
    ks_pvalue: float

    def params(self) -> str:
        """The fitted parameters as short text, e.g. ``median=80.2 sigma=0.301``."""
        d = self.dist
        if isinstance(d, Lognormal):
            mu, s = d.mu_sigma
            return f"median={math.exp(mu):.4g} sigma={s:.3g}"
        if isinstance(d, Gamma | Weibull):
            return f"shape={d.shape:.4g} scale={d.scale:.4g}"
        return f"bins={self.k + 1} p50={d.ppf(0.5):.4g}"


@dataclass(frozen=True)
class FitResult:
    """Every candidate family fitted to one sample, best (minimum AIC) first."""

    n: int
    best: FamilyFit
    candidates: tuple[FamilyFit, ...]
    median: float
    distinct: int = 0  # distinct values in the raw sample (0: not counted)

    def why(self) -> str:
        """Why the chosen family was chosen, in plain words (for the fit report)."""
        b = self.best
        rest = [c for c in self.candidates if c is not b]
        text = f"{b.family}: lowest AIC"
        if rest:
            text += f" ({rest[0].aic - b.aic:.0f} below {rest[0].family})"
        if b.family != "empirical":
            if all(c.family != "empirical" for c in self.candidates):
                text += "; empirical not compared (too few cases)"
            return text
        second = next((c for c in rest if c.family != "empirical"), None)
        fit = (f" ({second.family} KS D {second.ks_stat:.2f})" if second else "")
        if self.distinct and self.distinct * 2 <= self.n:
            return (text + f"; only {self.distinct} distinct values in {self.n} cases: a few exact "
                    "values repeated (as in a log that repeats days), which no smooth family "
                    f"fits{fit}; the empirical distribution reproduces them")
        return text + f"; no parametric family fits the data's shape{fit}"

    def rows(self) -> list[dict]:
        """One table row per fitted family (for reports)."""
        return [
            {
                "family": c.family,
                "params": c.params(),
                "loglik": c.loglik,
                "k": c.k,
                "aic": c.aic,
                "delta_aic": c.aic - self.best.aic,
                "ks_stat": c.ks_stat,
                "ks_pvalue": c.ks_pvalue,
                "chosen": c is self.best,
            }
            for c in self.candidates
        ]


def _clean(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size < 2:
        raise ValueError(f"need at least 2 values to fit a distribution, got {a.size}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("durations must be positive and finite (filter them before fitting)")
    return a


def lognormal_mle(x: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mu, sigma) of ``log(x)`` by maximum likelihood, sigma floored at ``SIGMA_FLOOR``."""
    lx = np.log(_clean(x))
    return float(lx.mean()), max(float(lx.std()), SIGMA_FLOOR)


def _gamma_mle(x: np.ndarray) -> tuple[float, float]:
    """(shape, scale): solve log(a) - digamma(a) = log(mean) - mean(log)."""
    z = x / math.exp(float(np.log(x).mean()))  # geometric mean 1, so mean(log z) = 0
    s = math.log1p(float(np.mean(z - 1.0)))
    h = lambda a: math.log(a) - float(special.digamma(a)) - s  # noqa: E731 - decreasing in a
    if s <= 0 or h(GAMMA_SHAPE_CAP) >= 0:
        a = GAMMA_SHAPE_CAP
    else:
        a = optimize.brentq(h, 1e-8, GAMMA_SHAPE_CAP, xtol=1e-12, rtol=1e-10)
    return a, float(np.mean(x)) / a


def _weibull_mle(x: np.ndarray) -> tuple[float, float]:
    """(shape, scale): solve the profile score on log data centred at zero."""
    gm = float(np.log(x).mean())
    y = np.log(x) - gm

    def score(k: float) -> float:  # increasing in k, from -inf to max(y)
        w = special.softmax(k * y)
        return float(np.dot(w, y)) - 1.0 / k

    top = float(y.max())
    if top <= 0 or score(WEIBULL_SHAPE_CAP) <= 0:
        k = WEIBULL_SHAPE_CAP
    else:
        k = optimize.brentq(score, 0.5 / (top + 1.0), WEIBULL_SHAPE_CAP, xtol=1e-12, rtol=1e-10)
    log_scale = gm + (float(special.logsumexp(k * y)) - math.log(y.size)) / k
    return k, math.exp(log_scale)


def _hist_edges(x: np.ndarray) -> np.ndarray:
    """Freedman–Diaconis bin edges over the data range (2..MAX_BINS bins)."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12 * hi:  # all (nearly) equal: two bins around the value
        return np.array([lo * (1 - SIGMA_FLOOR), lo, hi * (1 + SIGMA_FLOOR)])
    q75, q25 = np.percentile(x, [75, 25])
    width = 2.0 * (q75 - q25) / x.size ** (1 / 3)
    distinct = np.unique(x)
    width = max(width, float(np.diff(distinct).min()))  # never finer than the data's resolution
    bins = int(math.ceil((hi - lo) / width)) if q75 > q25 else int(math.log2(x.size)) + 1
    return np.linspace(lo, hi, min(max(bins, 2), MAX_BINS) + 1)


def _fit_empirical(x: np.ndarray) -> tuple[Empirical, float, int]:
    edges = _hist_edges(x)
    counts, _ = np.histogram(x, bins=edges)
    widths = np.diff(edges)
    hit = counts > 0
    loglik = float(np.sum(counts[hit] * np.log(counts[hit] / (x.size * widths[hit]))))
    values = np.percentile(x, np.arange(101)) if x.size > 101 else x
    return Empirical(values=[float(v) for v in values]), loglik, len(counts) - 1


def fit_family(x: Sequence[float] | np.ndarray, family: str) -> FamilyFit:
    """Fit one family (``lognormal``, ``gamma``, ``weibull`` or ``empirical``) by MLE."""
    a = _clean(x)
    if family == "lognormal":
        mu, s = lognormal_mle(a)
        lx = np.log(a)
        ll = float(np.sum(-lx - math.log(s) - 0.5 * _LOG_2PI - (lx - mu) ** 2 / (2 * s * s)))
        dist: Distribution = Lognormal(median=math.exp(mu), sigma=s)
        k = 2
    elif family == "gamma":
        shape, scale = _gamma_mle(a)
        ll = float(np.sum(stats.gamma.logpdf(a, shape, scale=scale)))
        dist, k = Gamma(shape=shape, scale=scale), 2
    elif family == "weibull":
        shape, scale = _weibull_mle(a)
        ll = float(np.sum(stats.weibull_min.logpdf(a, shape, scale=scale)))
        dist, k = Weibull(shape=shape, scale=scale), 2
    elif family == "empirical":
        dist, ll, k = _fit_empirical(a)
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if not math.isfinite(ll):  # only on pathological inputs; keeps AIC comparable
        ll = -1e300
    if np.unique(a).size == a.size:
        ks = stats.kstest(a, dist.cdf)
        d, p = float(ks.statistic), float(ks.pvalue)
    else:  # tied values: scipy's D counts each copy as its own point (wrong by up to k/n)
        d = ks_distance(a, dist.cdf)
        p = float(stats.kstwo.sf(d, a.size))
    return FamilyFit(
        family=family,
        dist=dist,
        loglik=ll,
        k=k,
        aic=2 * k - 2 * ll,
        ks_stat=d,
        ks_pvalue=p,
    )


def ks_distance(x: Sequence[float] | np.ndarray, cdf) -> float:
    """The KS statistic sup |F_n - F| of a sample with tied values against a right-continuous
    ``cdf`` (exact: both sides of every jump of F_n; on untied data it equals scipy's)."""
    u, counts = np.unique(np.asarray(x, dtype=float), return_counts=True)
    fn = np.cumsum(counts) / counts.sum()
    fn_left = np.concatenate([[0.0], fn[:-1]])
    f = np.asarray(cdf(u), dtype=float)
    f_left = np.asarray(cdf(u - 1e-9 * np.maximum(1.0, np.abs(u))), dtype=float)
    return float(max(np.max(np.abs(fn - f)), np.max(np.abs(fn_left - f_left))))


def fit_best(
    x: Sequence[float] | np.ndarray,
    families: Sequence[str] = FAMILIES,
    min_n_empirical: int = 50,
    dequantize: bool = True,
) -> FitResult:
    """Fit every family in ``families`` and choose the minimum-AIC one (empirical needs n).

    Data recorded in whole units (minutes, days) are fitted as ``x + U(-1/2, 1/2)`` with a fixed
    seed (``dequantize``), so ties do not favour a spiky histogram or distort the KS statistic;
    the reported median is the raw data's."""
    raw = _clean(x)
    a = _spread_whole_units(raw) if dequantize else raw
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; expected some of {FAMILIES}")
    todo = [f for f in families if f != "empirical" or a.size >= min_n_empirical]
    if not todo:
        raise ValueError(f"no family to fit for n={a.size} (empirical needs {min_n_empirical})")
    fits = sorted((fit_family(a, f) for f in todo), key=lambda c: c.aic)
    return FitResult(n=a.size, best=fits[0], candidates=tuple(fits), median=float(np.median(raw)),
                     distinct=int(np.unique(raw).size))


def _spread_whole_units(a: np.ndarray) -> np.ndarray:
    """``a`` plus seeded uniform jitter of +-0.5 when every value is a whole number >= 1."""
    if a.size < 2 or not np.all(a == np.round(a)) or a.min() < 1:
        return a
    u = np.random.default_rng(20240601).random(a.size)
    return np.maximum(a + u - 0.5, a.min() * 0.5)
