"""Fitting case durations: per procedure, per surgeon x procedure (shrunk toward the procedure),
phases inside the room, surgeons' booking bias, and drift (a surgeon speeding up or slowing down).

Durations are wheels-in to wheels-out minutes, the twin's in-room time. A procedure with at least
:data:`MIN_FAMILY_N` cases gets the family (lognormal, gamma, Weibull, empirical) with the lowest
AIC; a thinner one gets a lognormal whose log-median is shrunk toward its service's by empirical
Bayes, with the service's pooled within-procedure spread. Surgeon x procedure log-medians are
shrunk toward the procedure's the same way. Drift is tested per surgeon on the residual
``log(minutes) - procedure log-median`` in time order; a surgeon with a detected shift is fitted
on the cases after it only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from calibration.drift import Shift, detect_shift
from calibration.families import FitResult, fit_best, lognormal_mle
from calibration.shrinkage import between_variance, shrink_means, shrinkage_weight
from twin.distributions import Distribution, Lognormal

MIN_FAMILY_N = 30
"""Cases a procedure needs before a family is chosen by AIC (below: shrunk lognormal)."""
MIN_PAIR_N = 3
"""Cases a surgeon x procedure pair needs to get its own (shrunk) duration in the scenario."""
DRIFT_MIN_SIDE = 15
"""Cases needed on each side of a candidate change point."""


@dataclass
class ProcedureFit:
    """The fitted in-room duration of one procedure."""

    service: str
    procedure: str
    n: int
    median: float            # the data's median minutes
    dist: Distribution
    method: str              # "aic" (family chosen by AIC) or "shrunk" (thin data)
    fit: FitResult | None    # every family's fit when method == "aic"
    log_mu: float            # the log-median used as the parent of surgeon fits
    sigma: float             # within-procedure log-sd


@dataclass
class PairFit:
    """A surgeon's shrunk duration for one procedure."""

    surgeon: str
    procedure: str
    n: int
    raw_median: float
    median: float
    sigma: float
    weight: float            # weight on the pair's own mean (0: all procedure, 1: all own)


@dataclass
class DurationFits:
    """Everything fitted from in-room times."""

    procedures: dict[str, ProcedureFit]
    pairs: list[PairFit]
    drifts: dict[str, Shift]
    tested_surgeons: int
    phases: dict[str, FitResult]
    booking: dict[str, float]
    notes: list[str] = field(default_factory=list)
    speeds: dict[str, float] = field(default_factory=dict)   # surgeon -> exp(effect)


def _ran(cases: pd.DataFrame) -> pd.DataFrame:
    minutes = (cases["out_of_room"] - cases["in_room"]).dt.total_seconds() / 60.0
    out = cases.assign(minutes=minutes)
    return out.loc[out["minutes"] > 0].reset_index(drop=True)


def surgeon_effects(ran: pd.DataFrame, iterations: int = 30) -> tuple[dict[str, float], np.ndarray]:
    """Two-way additive model on log minutes, ``log d = a_procedure + b_surgeon + e``, fitted by
    backfitting within each service with the surgeons' effects centred (equal weight) on 0.
    Returns each surgeon's effect ``b`` and each case's log minutes adjusted to a typical
    surgeon (``log d - b``). Cases without a surgeon are not adjusted."""
    y = np.log(ran["minutes"].to_numpy(float))
    proc = ran["procedure"].to_numpy(object)
    surg = ran["surgeon"].to_numpy(object)
    b = np.zeros(len(ran))
    effects: dict[str, float] = {}
    for _, idx in ran.groupby("service").indices.items():
        known = idx[surg[idx] != ""]
        if not len(known):
            continue
        pc, _ = pd.factorize(proc[known])
        sc, sids = pd.factorize(surg[known])
        yy, bs = y[known], np.zeros(len(sids))
        for _ in range(iterations):
            a = np.bincount(pc, yy - bs[sc]) / np.bincount(pc)
            bs = np.bincount(sc, yy - a[pc], minlength=len(sids)) / np.bincount(sc, minlength=len(sids))
            bs -= bs.mean()
        b[known] = bs[sc]
        effects.update({str(s): float(v) for s, v in zip(sids, bs, strict=True)})
    return effects, y - b


def fit_procedures(ran: pd.DataFrame) -> dict[str, ProcedureFit]:
    """Per-procedure durations of a typical surgeon (surgeon effects removed, see
    :func:`surgeon_effects`): AIC family when data suffice, shrunk lognormal otherwise."""
    out: dict[str, ProcedureFit] = {}
    _, adjusted = surgeon_effects(ran)
    ran = ran.assign(adj=adjusted)
    for svc, grp in ran.groupby("service", sort=True):
        logs = {p: g["adj"].to_numpy(float) for p, g in grp.groupby("procedure")}
        means = np.array([v.mean() for v in logs.values()])
        counts = np.array([len(v) for v in logs.values()], dtype=float)
        dof = counts - 1
        ss = sum(((v - v.mean()) ** 2).sum() for v in logs.values())
        within = ss / dof.sum() if dof.sum() > 0 else float(np.var(np.concatenate(list(logs.values()))))
        within = max(within, 0.01**2)
        parent = float(np.concatenate(list(logs.values())).mean())
        tau2 = between_variance(means, counts, within) if len(means) > 1 else 1.0
        shrunk = shrink_means(means, counts, parent, within, tau2)
        for (proc, lx), mu_s in zip(logs.items(), shrunk, strict=True):
            x = np.exp(lx)
            raw = float(np.median(grp.loc[grp["procedure"] == proc, "minutes"]))
            if len(x) >= MIN_FAMILY_N:
                fit = fit_best(x, dequantize=False)
                mu, sd = lognormal_mle(x)
                out[proc] = ProcedureFit(svc, proc, len(x), raw, fit.best.dist, "aic", fit, mu, sd)
            else:
                sd = math.sqrt(within)
                out[proc] = ProcedureFit(svc, proc, len(x), raw,
                                         Lognormal(median=float(math.exp(mu_s)), sigma=sd),
                                         "shrunk", None, float(mu_s), sd)
    return out


def detect_drifts(ran: pd.DataFrame, procs: dict[str, ProcedureFit]) -> tuple[dict[str, Shift], int]:
    """Surgeons whose durations shifted (relative to their procedures) within the window."""
    if (ran["surgeon"] == "").all():
        return {}, 0
    resid = np.log(ran["minutes"].to_numpy(float)) - ran["procedure"].map(
        {p: f.log_mu for p, f in procs.items()}).to_numpy(float)
    t = ((ran["in_room"] - ran["in_room"].min()).dt.total_seconds() / 86400.0).to_numpy(float)
    groups = {s: np.flatnonzero((ran["surgeon"] == s).to_numpy())
              for s in sorted(ran["surgeon"].unique()) if s}
    tested = {s: i for s, i in groups.items() if len(i) >= 2 * DRIFT_MIN_SIDE}
    found = {}
    for s, idx in tested.items():
        order = idx[np.argsort(t[idx], kind="stable")]
        shift = detect_shift(t[order], resid[order], min_side=DRIFT_MIN_SIDE,
                             n_tests=len(tested))
        if shift is not None:
            found[s] = shift
    return found, len(tested)


def _after_drift(ran: pd.DataFrame, drifts: dict[str, Shift]) -> np.ndarray:
    """Mask of cases not from a drifting surgeon before their change point."""
    t = (ran["in_room"] - ran["in_room"].min()).dt.total_seconds() / 86400.0
    keep = np.ones(len(ran), bool)
    for s, shift in drifts.items():
        keep &= ~((ran["surgeon"] == s) & (t < shift.at)).to_numpy()
    return keep


def fit_pairs(ran: pd.DataFrame, procs: dict[str, ProcedureFit],
              drifts: dict[str, Shift]) -> tuple[list[PairFit], dict[str, float]]:
    """Surgeon x procedure log-medians shrunk toward the procedure's adjusted by the surgeon's
    overall effect (post-drift data only for a drifting surgeon); returns the pairs and each
    surgeon's speed factor ``exp(b)``."""
    if (ran["surgeon"] == "").all():
        return [], {}
    data = ran.loc[_after_drift(ran, drifts)].reset_index(drop=True)
    effects, _ = surgeon_effects(data)
    out: list[PairFit] = []
    for proc, grp in data.groupby("procedure", sort=True):
        pf = procs[proc]
        by = {s: np.log(g["minutes"].to_numpy(float)) for s, g in grp.groupby("surgeon") if s}
        if not by:
            continue
        parent = np.array([pf.log_mu + effects.get(s, 0.0) for s in by])
        means = np.array([v.mean() for v in by.values()])
        counts = np.array([len(v) for v in by.values()], dtype=float)
        dof = counts - 1
        ss = sum(((v - v.mean()) ** 2).sum() for v in by.values())
        within = max(ss / dof.sum(), 0.01**2) if dof.sum() > 0 else max(pf.sigma**2, 0.01**2)
        tau2 = between_variance(means - parent, counts, within) if len(means) > 1 else 0.05**2
        shrunk = shrink_means(means, counts, parent, within, tau2)
        weight = shrinkage_weight(counts, within, tau2)
        for (s, lx), mu, w in zip(by.items(), shrunk, weight, strict=True):
            out.append(PairFit(s, proc, len(lx), float(np.exp(np.median(lx))), float(np.exp(mu)),
                               float(math.sqrt(within)), float(w)))
    return out, {s: float(np.exp(b)) for s, b in effects.items()}


def fit_phases(ran: pd.DataFrame) -> dict[str, FitResult]:
    """Wheels-in to incision (``pre``) and closure to wheels-out (``post``), lognormal family
    chosen with the others by AIC."""
    out = {}
    for name, a, b in (("pre", "in_room", "procedure_start"), ("post", "procedure_end", "out_of_room")):
        m = ((ran[b] - ran[a]).dt.total_seconds() / 60.0).to_numpy(float)
        m = m[np.isfinite(m) & (m > 0)]
        if len(m) >= 2:
            out[name] = fit_best(m, families=("lognormal",))
    return out


def fit_booking(ran: pd.DataFrame, procs: dict[str, ProcedureFit],
                speeds: dict[str, float] | None = None) -> dict[str, float]:
    """The twin's booking model ``booked = bias * actual^corr * median^(1-corr) * e^(noise*z)``
    by least squares on logs relative to the surgeon's median for the procedure (``noise``: the
    residual log-sd beyond rounding); ``round_to`` from the booked minutes."""
    b = ran["booked_minutes"].to_numpy(float)
    ok = np.isfinite(b) & (b > 0)
    if ok.sum() < 10:
        return {}
    med = np.exp(ran["procedure"].map({p: f.log_mu for p, f in procs.items()}).to_numpy(float))
    med = med * ran["surgeon"].map(speeds or {}).fillna(1.0).to_numpy(float)
    x = np.log(ran["minutes"].to_numpy(float)[ok] / med[ok])
    y = np.log(b[ok] / med[ok])
    vx = float(np.var(x))
    corr = float(np.clip(np.cov(x, y)[0, 1] / vx, 0.0, 1.0)) if vx > 0 else 0.0
    bias = float(np.exp(np.mean(y) - corr * np.mean(x)))
    booked = b[ok]
    round_to = next((r for r in (60, 30, 15, 10, 5) if np.mean(booked % r == 0) >= 0.95), 1)
    # the estimate's own error: residual variance less what rounding to round_to adds (a
    # uniform error of width round_to, in logs about (round_to / booked)^2 / 12)
    resid = y - np.log(bias) - corr * x
    rounding = float(np.mean((round_to / booked) ** 2 / 12.0))
    noise = math.sqrt(max(float(np.var(resid, ddof=2)) - rounding, 0.0)) if len(resid) > 2 else 0.0
    return {"estimate_bias": round(bias, 3), "estimate_correlation": round(corr, 3),
            "estimate_noise": round(noise, 3),
            "round_to": int(round_to), "share_over_booked": float(np.mean(x > y)),
            "n": int(ok.sum())}


def fit_durations(cases: pd.DataFrame) -> DurationFits:
    """All duration fits from the cases that ran."""
    ran = _ran(cases)
    procs = fit_procedures(ran)
    drifts, tested = detect_drifts(ran, procs)
    if drifts:  # a drifting surgeon's cases before the change no longer describe the suite
        procs = fit_procedures(ran.loc[_after_drift(ran, drifts)].reset_index(drop=True))
    pairs, speeds = fit_pairs(ran, procs, drifts)
    notes = []
    thin = sum(1 for p in procs.values() if p.method == "shrunk")
    if thin:
        notes.append(f"{thin} of {len(procs)} procedures have fewer than {MIN_FAMILY_N} cases: "
                     "lognormal shrunk toward the service")
    return DurationFits(procs, pairs, drifts, tested, fit_phases(ran),
                        fit_booking(ran, procs, speeds),
                        notes, speeds)


__all__ = ["DRIFT_MIN_SIDE", "MIN_FAMILY_N", "MIN_PAIR_N", "DurationFits", "PairFit",
           "ProcedureFit", "fit_booking", "fit_durations", "fit_pairs", "fit_phases",
           "fit_procedures"]
