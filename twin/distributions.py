"""Named probability distributions used by scenarios.

Each distribution is a frozen pydantic model with ``ppf`` (inverse CDF), ``cdf``, an analytic
``mean`` and ``variance``, and ``sample(u)`` driven by uniforms. Sampling by inverse transform
from a source's uniforms couples scenario variants monotonically (common random numbers): a
scaled duration distribution maps the same uniform to a proportionally longer duration.

``residual(u, elapsed)`` samples the remaining time of an activity that has already lasted
``elapsed`` minutes (residual life), which a snapshot start needs.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import special, stats

ArrayLike = float | np.ndarray


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scale_factor: float = Field(1.0, gt=0, description="multiplies every sample (stress tests)")
    shift: float = Field(0.0, description="added to every sample after scaling (minutes)")

    # --- subclass hooks (base distribution, before scale and shift) ------------------------
    def _ppf(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cdf(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _var(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- public API ---------------------------------------------------------------------
    def ppf(self, u: ArrayLike) -> ArrayLike:
        """Inverse CDF at probability ``u`` (scalar or array)."""
        q = self._ppf(np.clip(np.asarray(u, dtype=float), 1e-12, 1 - 1e-12))
        out = q * self.scale_factor + self.shift
        return float(out) if np.ndim(out) == 0 else out

    def cdf(self, x: ArrayLike) -> ArrayLike:
        """P(X <= x)."""
        base = (np.asarray(x, dtype=float) - self.shift) / self.scale_factor
        out = self._cdf(base)
        return float(out) if np.ndim(out) == 0 else out

    def sample(self, u: ArrayLike) -> ArrayLike:
        """Draw by inverse transform from uniforms ``u`` in (0, 1)."""
        return self.ppf(u)

    def draw(self, rng: np.random.Generator, size: int | None = None) -> ArrayLike:
        """Draw from a numpy Generator (convenience for tests and tools)."""
        return self.ppf(rng.random(size))

    @property
    def mean(self) -> float:
        """Analytic mean, including scale and shift."""
        return self._mean() * self.scale_factor + self.shift

    @property
    def variance(self) -> float:
        """Analytic variance, including scale."""
        return self._var() * self.scale_factor**2

    def residual(self, u: ArrayLike, elapsed: ArrayLike) -> ArrayLike:
        """Remaining time given the activity has lasted ``elapsed``: X - e | X > e."""
        e = np.asarray(elapsed, dtype=float)
        f = np.asarray(self.cdf(e), dtype=float)
        uu = f + np.asarray(u, dtype=float) * (1.0 - f)
        rem = np.asarray(self.ppf(np.minimum(uu, 1 - 1e-12)), dtype=float) - e
        out = np.maximum(rem, 0.0)
        return float(out) if np.ndim(out) == 0 else out

    def scaled(self, factor: float) -> _Dist:
        """A copy whose samples are multiplied by ``factor`` (shift scaled too)."""
        return self.model_copy(
            update={"scale_factor": self.scale_factor * factor, "shift": self.shift * factor}
        )


class Constant(_Dist):
    """Always the same value."""

    kind: Literal["constant"] = "constant"
    value: float = Field(ge=0)

    def _ppf(self, u):
        return np.full_like(u, self.value, dtype=float)

    def _cdf(self, x):
        return (x >= self.value).astype(float)

    def _mean(self):
        return self.value

    def _var(self):
        return 0.0


class Exponential(_Dist):
    """Exponential with the given mean."""

    kind: Literal["exponential"] = "exponential"
    mean_: float = Field(alias="mean", gt=0)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def _ppf(self, u):
        return -self.mean_ * np.log1p(-u)

    def _cdf(self, x):
        return np.where(x > 0, -np.expm1(-np.maximum(x, 0) / self.mean_), 0.0)

    def _mean(self):
        return self.mean_

    def _var(self):
        return self.mean_**2


class Lognormal(_Dist):
    """Lognormal given by its median and log-sd (``sigma``), or by ``mean`` and ``cv``."""

    kind: Literal["lognormal"] = "lognormal"
    median: float | None = Field(None, gt=0)
    sigma: float | None = Field(None, gt=0)
    mean_: float | None = Field(None, alias="mean", gt=0)
    cv: float | None = Field(None, gt=0)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _params(self) -> Lognormal:
        by_median = self.median is not None and self.sigma is not None
        by_mean = self.mean_ is not None and self.cv is not None
        if by_median == by_mean:
            raise ValueError("lognormal needs either (median, sigma) or (mean, cv)")
        return self

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """Parameters of the underlying normal."""
        if self.median is not None and self.sigma is not None:
            return math.log(self.median), self.sigma
        s2 = math.log1p(self.cv**2)  # type: ignore[operator]
        return math.log(self.mean_) - s2 / 2, math.sqrt(s2)  # type: ignore[arg-type]

    def _ppf(self, u):
        mu, s = self.mu_sigma
        return np.exp(mu + s * special.ndtri(u))

    def _cdf(self, x):
        mu, s = self.mu_sigma
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 1e-300)) - mu) / s
        return np.where(x > 0, special.ndtr(z), 0.0)

    def _mean(self):
        mu, s = self.mu_sigma
        return math.exp(mu + s * s / 2)

    def _var(self):
        mu, s = self.mu_sigma
        return (math.exp(s * s) - 1) * math.exp(2 * mu + s * s)


class Gamma(_Dist):
    """Gamma with ``shape`` and ``scale`` (mean = shape * scale)."""

    kind: Literal["gamma"] = "gamma"
    shape: float = Field(gt=0)
    scale: float = Field(gt=0)

    def _ppf(self, u):
        return special.gammaincinv(self.shape, u) * self.scale

    def _cdf(self, x):
        return special.gammainc(self.shape, np.maximum(x, 0) / self.scale)

    def _mean(self):
        return self.shape * self.scale

    def _var(self):
        return self.shape * self.scale**2


class Weibull(_Dist):
    """Weibull with ``shape`` k and ``scale`` lambda."""

    kind: Literal["weibull"] = "weibull"
    shape: float = Field(gt=0)
    scale: float = Field(gt=0)

    def _ppf(self, u):
        return self.scale * (-np.log1p(-u)) ** (1.0 / self.shape)

    def _cdf(self, x):
        return -np.expm1(-((np.maximum(x, 0) / self.scale) ** self.shape))

    def _mean(self):
        return self.scale * math.gamma(1 + 1 / self.shape)

    def _var(self):
        g1 = math.gamma(1 + 1 / self.shape)
        g2 = math.gamma(1 + 2 / self.shape)
        return self.scale**2 * (g2 - g1 * g1)


class Normal(_Dist):
    """Normal truncated at ``low`` (default 0) by clipping; for small delays and lateness."""

    kind: Literal["normal"] = "normal"
    mean_: float = Field(alias="mean")
    sd: float = Field(gt=0)
    low: float = 0.0
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def _ppf(self, u):
        return np.maximum(self.mean_ + self.sd * special.ndtri(u), self.low)

    def _cdf(self, x):
        return np.where(x >= self.low, special.ndtr((x - self.mean_) / self.sd), 0.0)

    def _mean(self):
        # mean of max(X, low)
        a = (self.low - self.mean_) / self.sd
        return float(
            self.low * special.ndtr(a)
            + self.mean_ * (1 - special.ndtr(a))
            + self.sd * stats.norm.pdf(a)
        )

    def _var(self):
        a = (self.low - self.mean_) / self.sd
        phi, big = stats.norm.pdf(a), special.ndtr(a)
        m = self._mean()
        ex2 = (
            self.low**2 * big
            + (self.mean_**2 + self.sd**2) * (1 - big)
            + self.sd * (self.mean_ + self.low) * phi
        )
        return float(max(ex2 - m * m, 0.0))


class Uniform(_Dist):
    """Uniform on [low, high]."""

    kind: Literal["uniform"] = "uniform"
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("uniform needs low <= high")
        return self

    def _ppf(self, u):
        return self.low + (self.high - self.low) * u

    def _cdf(self, x):
        w = max(self.high - self.low, 1e-12)
        return np.clip((x - self.low) / w, 0.0, 1.0)

    def _mean(self):
        return (self.low + self.high) / 2

    def _var(self):
        return (self.high - self.low) ** 2 / 12


class Triangular(_Dist):
    """Triangular on [low, high] with the given mode."""

    kind: Literal["triangular"] = "triangular"
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> Triangular:
        if not (self.low <= self.mode <= self.high) or self.low == self.high:
            raise ValueError("triangular needs low <= mode <= high and low < high")
        return self

    def _ppf(self, u):
        a, c, b = self.low, self.mode, self.high
        fc = (c - a) / (b - a)
        left = a + np.sqrt(u * (b - a) * (c - a))
        right = b - np.sqrt((1 - u) * (b - a) * (b - c))
        return np.where(u < fc, left, right)

    def _cdf(self, x):
        a, c, b = self.low, self.mode, self.high
        xl = np.clip(x, a, b)
        left = (xl - a) ** 2 / ((b - a) * max(c - a, 1e-12))
        right = 1 - (b - xl) ** 2 / ((b - a) * max(b - c, 1e-12))
        return np.where(xl <= c, left, right)

    def _mean(self):
        return (self.low + self.mode + self.high) / 3

    def _var(self):
        a, c, b = self.low, self.mode, self.high
        return (a * a + b * b + c * c - a * b - a * c - b * c) / 18


class Empirical(_Dist):
    """The empirical distribution of observed ``values`` (linear interpolation of quantiles)."""

    kind: Literal["empirical"] = "empirical"
    values: list[float] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        if not all(math.isfinite(x) and x >= 0 for x in v):
            raise ValueError("empirical values must be finite and non-negative")
        return sorted(v)

    def _ppf(self, u):
        xs = np.asarray(self.values)
        n = len(xs)
        if n == 1:
            return np.full_like(u, xs[0], dtype=float)
        return np.interp(u * (n - 1), np.arange(n), xs)

    def _cdf(self, x):
        xs = np.asarray(self.values)
        n = len(xs)
        if n == 1:
            return (x >= xs[0]).astype(float)
        return np.interp(x, xs, np.arange(n) / (n - 1), left=0.0, right=1.0)

    def _mean(self):
        # mean of the piecewise-linear quantile function
        xs = np.asarray(self.values)
        if len(xs) == 1:
            return float(xs[0])
        return float(np.mean((xs[1:] + xs[:-1]) / 2))

    def _var(self):
        xs = np.asarray(self.values)
        if len(xs) == 1:
            return 0.0
        a, b = xs[:-1], xs[1:]
        ex2 = float(np.mean((a * a + a * b + b * b) / 3))
        return max(ex2 - self._mean() ** 2, 0.0)


Distribution = Annotated[
    Constant | Exponential | Lognormal | Gamma | Weibull | Normal | Uniform | Triangular | Empirical,
    Field(discriminator="kind"),
]
"""Any named distribution; YAML picks one with ``kind:``."""

KINDS = (
    "constant",
    "exponential",
    "lognormal",
    "gamma",
    "weibull",
    "normal",
    "uniform",
    "triangular",
    "empirical",
)
