"""What a booked time says about a case's duration: the booking model, inverted.

The booking office (:func:`twin.demand.booked_minutes`) books a case for the surgeon's estimate
``k · natural^c · e^(s·z)`` rounded to the nearest ``round_to`` (at least ``round_to``), with
``k = bias · median^(1−c)``, ``natural`` the case's duration before stress, ``c`` the estimate's
correlation with it and ``z`` standard normal (the estimate's own error, log-sd ``s``). Given the
booked minutes ``b``, whose rounding bucket is ``[lo, hi)``, the likelihood of a natural duration
``x`` is the probability that the estimate falls in that bucket:

    L(x) = Φ((log hi − log k − c·log x) / s) − Φ((log lo − log k − c·log x) / s)

(for ``s = 0`` the indicator of the window ``log x ∈ [(log lo − log k)/c, (log hi − log k)/c)``).
The duration known to carry booking ``b`` has density ``f(x)·L(x) / P(b)``. It is drawn by
inverse transform on the prior's probability scale ``v = F(x)``: a uniform ``u`` maps to the
``v`` at which the posterior's cumulative mass reaches ``u``, then ``x = F⁻¹(v)``, so the same
uniform gives the same case under every ``t`` (common random numbers) and ``c = 0`` gives back
the prior exactly.

Numerically the posterior is integrated on a grid of normal scores ``t = Φ⁻¹(v)`` spanning the
region where ``L`` is not negligible, with the likelihood in logs (no cancellation, no overflow
for ``c`` near 0, no lost mass for ``s`` near 0). A booking the model finds (almost) impossible,
``P(b) < EVIDENCE_FLOOR``, says the model is wrong for that case, not that the case is
extraordinary: the prior is kept (``contradicted``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from twin.demand import Case, median_minutes
from twin.restart import case_duration
from twin.scenario import Scenario

GRID_POINTS = 801
"""Normal-score grid points over the posterior's support."""
T_MAX = 8.5
"""Normal scores beyond ±T_MAX carry under 1e-16 of the prior's mass."""
EVIDENCE_FLOOR = 1e-6
"""Prior probability of the booked bucket below which the booking is taken to contradict the
model (the prior is kept)."""
SPAN_SD = 9.0
"""Half-width of the likelihood's support beyond the bucket, in estimate log-sds."""


def log_bucket_probability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log(Φ(b) − Φ(a))`` for ``a ≤ b`` elementwise, accurate in both tails."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    upper = a > 0  # both in the upper tail: Φ(−a) − Φ(−b) has no cancellation
    hi = np.where(upper, special.log_ndtr(-a), special.log_ndtr(b))
    lo = np.where(upper, special.log_ndtr(-b), special.log_ndtr(a))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(hi > lo, np.log1p(-np.exp(np.minimum(lo - hi, 0.0))), -np.inf)
    return hi + gap


@dataclass(frozen=True)
class BookingModel:
    """The booking office's estimate for one case, as the likelihood of its natural duration."""

    log_k: float
    c: float
    noise: float
    log_lo: float  # log of the bucket's lower edge (−inf: the lowest bucket)
    log_hi: float
    factor: float  # in-room minutes = factor · natural

    def log_likelihood(self, minutes: np.ndarray) -> np.ndarray:
        """``log L`` of in-room durations ``minutes`` (as stressed)."""
        lx = np.log(np.maximum(np.asarray(minutes, float), 1e-12) / self.factor)
        m = self.log_k + self.c * lx
        if self.noise <= 0:
            inside = (m >= self.log_lo) & (m < self.log_hi)
            return np.where(inside, 0.0, -np.inf)
        return log_bucket_probability((self.log_lo - m) / self.noise, (self.log_hi - m) / self.noise)

    def natural_range(self, sds: float = SPAN_SD) -> tuple[float, float]:
        """Log natural durations outside which ``L`` is negligible (``±inf`` when unbounded)."""
        if self.c <= 0:
            return -math.inf, math.inf
        lo = (self.log_lo - self.log_k - sds * self.noise) / self.c
        hi = (self.log_hi - self.log_k + sds * self.noise) / self.c
        return lo, hi


def booking_model(booked: float, bias: float, c: float, median: float, round_to: float,
                  noise: float = 0.0, factor: float = 1.0) -> BookingModel:
    """The likelihood model of ``booked`` minutes under the booking parameters."""
    r = float(round_to)
    log_lo = math.log(booked - r / 2) if booked > r and booked - r / 2 > 0 else -math.inf
    return BookingModel(math.log(bias) + (1 - c) * math.log(median), float(c), float(noise),
                        log_lo, math.log(booked + r / 2), float(factor))


@dataclass(frozen=True)
class BookedDuration:
    """A case's in-room duration given its booking: ``uniforms`` maps a uniform to the prior
    probability whose quantile is the conditioned duration; ``remaining`` adds the time spent."""

    dist: object  # the in-room distribution (twin.distributions), as stressed
    window: tuple[float, float] | None = None  # s = 0: posterior uniform on [v_lo, v_hi]
    t: np.ndarray | None = None  # s > 0: normal-score grid and the posterior's cumulative mass
    cum: np.ndarray | None = None
    evidence: float = 1.0
    contradicted: bool = False

    @property
    def informative(self) -> bool:
        """Whether the booking narrows the duration at all."""
        return self.window is not None or self.t is not None

    def cdf_v(self, v: np.ndarray | float) -> np.ndarray:
        """The posterior's cumulative mass at prior probabilities ``v``."""
        v = np.clip(np.asarray(v, float), 0.0, 1.0)
        if self.window is not None:
            lo, hi = self.window
            return np.clip((v - lo) / (hi - lo), 0.0, 1.0)
        if self.t is None or self.cum is None:
            return v
        with np.errstate(divide="ignore"):
            tv = special.ndtri(v)
        return np.interp(tv, self.t, self.cum, left=0.0, right=1.0)

    def ppf_v(self, q: np.ndarray | float) -> np.ndarray:
        """The prior probability at which the posterior's cumulative mass is ``q``."""
        q = np.asarray(q, float)
        if self.window is not None:
            lo, hi = self.window
            return lo + q * (hi - lo)
        if self.t is None or self.cum is None:
            return q
        t, cum = self.t, self.cum  # cum is flat where L vanishes: invert cell by cell
        i = np.clip(np.searchsorted(cum, q, side="left"), 1, len(cum) - 1)
        step = cum[i] - cum[i - 1]
        frac = np.where(step > 0, (q - cum[i - 1]) / np.where(step > 0, step, 1.0), 0.0)
        return special.ndtr(t[i - 1] + np.clip(frac, 0.0, 1.0) * (t[i] - t[i - 1]))

    def uniforms(self, u: np.ndarray | float) -> np.ndarray:
        """Prior probabilities whose quantiles are the conditioned durations of uniforms ``u``."""
        return self.ppf_v(u)

    def remaining(self, u: np.ndarray | float, elapsed: float) -> np.ndarray:
        """Remaining minutes of the case known to carry its booking and to have lasted
        ``elapsed``; the plain residual life once the case has outrun what its booking allows."""
        u = np.asarray(u, float)
        d = self.dist
        if not self.informative:
            return np.asarray(d.residual(u, elapsed), float)  # type: ignore[attr-defined]
        ve = float(d.cdf(elapsed)) if elapsed > 0 else 0.0  # type: ignore[attr-defined]
        start = float(self.cdf_v(ve))
        if 1.0 - start < 1e-9:
            return np.asarray(d.residual(u, elapsed), float)  # type: ignore[attr-defined]
        v = self.ppf_v(start + u * (1.0 - start))
        return np.maximum(np.asarray(d.ppf(np.clip(v, 0.0, 1.0)), float) - elapsed, 0.0)  # type: ignore[attr-defined]


def condition(dist, model: BookingModel | None) -> BookedDuration:
    """The in-room duration ``dist`` conditioned on the booking ``model`` (None or ``c = 0``:
    the booking carries no information)."""
    if model is None or model.c <= 0:
        return BookedDuration(dist)
    if model.noise <= 0:
        a, b = model.natural_range()
        v_lo, v_hi = _prob(dist, a, model.factor), _prob(dist, b, model.factor)
        if v_hi - v_lo < EVIDENCE_FLOOR:
            return BookedDuration(dist, evidence=max(v_hi - v_lo, 0.0), contradicted=True)
        return BookedDuration(dist, window=(v_lo, v_hi), evidence=v_hi - v_lo)
    a, b = model.natural_range()
    t_a = _score(dist, a, model.factor)
    t_b = _score(dist, b, model.factor)
    if t_b - t_a < 1e-9:
        return BookedDuration(dist, evidence=0.0, contradicted=True)
    t = np.linspace(t_a, t_b, GRID_POINTS)
    logw = model.log_likelihood(np.asarray(dist.ppf(special.ndtr(t)), float)) \
        - 0.5 * t * t - 0.5 * math.log(2 * math.pi)
    top = float(np.max(logw))
    if not math.isfinite(top):
        return BookedDuration(dist, evidence=0.0, contradicted=True)
    w = np.exp(logw - top)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(t))])
    evidence = float(cum[-1]) * math.exp(top)
    if evidence < EVIDENCE_FLOOR:
        return BookedDuration(dist, evidence=evidence, contradicted=True)
    return BookedDuration(dist, t=t, cum=cum / cum[-1], evidence=evidence)


def booked_duration(scn: Scenario, case: Case) -> BookedDuration:
    """A case's in-room duration (its surgeon's, under the scenario's stress) given its booked
    minutes under the scenario's booking model."""
    b = scn.booking
    proc = next(q for q in scn.service(case.service).procedures if q.id == case.procedure)
    surgeon = next(g for g in scn.surgeons if g.id == case.surgeon)
    model = booking_model(case.booked_minutes, b.estimate_bias, b.estimate_correlation,
                          median_minutes(proc, surgeon), b.round_to, b.estimate_noise,
                          scn.stress.duration_factor)
    return condition(case_duration(scn, case), model)


def _prob(dist, log_natural: float, factor: float) -> float:
    """The prior probability of in-room minutes below a natural duration given by its log."""
    if log_natural < -700:
        return 0.0
    if log_natural > 700:
        return 1.0
    return min(max(float(dist.cdf(math.exp(log_natural) * factor)), 0.0), 1.0)


def _score(dist, log_natural: float, factor: float) -> float:
    """The normal score of :func:`_prob`, within ±T_MAX."""
    return float(np.clip(special.ndtri(_prob(dist, log_natural, factor)), -T_MAX, T_MAX))


__all__ = ["EVIDENCE_FLOOR", "BookedDuration", "BookingModel", "booked_duration", "booking_model",
           "condition", "log_bucket_probability"]
