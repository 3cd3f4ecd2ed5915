"""A case's duration given its booking (twin.booked_duration): the posterior against numerical
integration for every booking correlation in [0, 1] and estimate noise, the law of total
probability over bookings (no booking's window hides the bulk of the distribution), the
booking model the twin generates with, and the calibrated real log whose fitted correlation
(0.078) used to blow windows up."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from twin.booked_duration import (
    EVIDENCE_FLOOR,
    booking_model,
    condition,
    log_bucket_probability,
)
from twin.distributions import Gamma, Lognormal

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "or_case_log_2022_q1.csv"
MAPPING = ROOT / "calibration" / "mappings" / "or_case_log_2022.yaml"


def likelihood(x: float, booked: float, bias: float, c: float, median: float, r: float,
               s: float, f: float = 1.0) -> float:
    """P(booking | natural = x / f), written out independently of the module."""
    est = math.log(bias) + (1 - c) * math.log(median) + c * math.log(x / f)
    lo = math.log(booked - r / 2) if booked > r else -math.inf
    hi = math.log(booked + r / 2)
    if s == 0:
        return float(lo <= est < hi)
    return float(stats.norm.cdf((hi - est) / s) - stats.norm.cdf((lo - est) / s))


def posterior_cdf_by_quad(prior, booked, bias, c, median, r, s, x, f=1.0) -> tuple[float, float]:
    """(P(X <= x | booking), P(booking)) by adaptive quadrature over the prior's probability
    scale, with the window's edges as break points."""
    def g(v: float) -> float:
        return likelihood(float(prior.ppf(v)), booked, bias, c, median, r, s, f)

    edges = []
    if c > 0:
        k = math.log(bias) + (1 - c) * math.log(median)
        for e in (booked - r / 2, booked + r / 2):
            if e > 0:
                z = (math.log(e) - k) / c
                if abs(z) < 700:
                    v = float(prior.cdf(math.exp(z) * f))
                    if 0 < v < 1:
                        edges.append(v)
    vx = float(prior.cdf(x))
    pts = sorted(set(edges))
    total = integrate.quad(g, 0, 1, points=pts or None, limit=400, epsabs=1e-10)[0]
    below = integrate.quad(g, 0, vx, points=[p for p in pts if p < vx] or None, limit=400,
                           epsabs=1e-10)[0] if vx > 0 else 0.0
    return below / total if total > 0 else math.nan, total


priors = st.one_of(
    st.builds(lambda m, s: Lognormal(median=m, sigma=s), st.floats(30, 240), st.floats(0.1, 0.7)),
    st.builds(lambda k, sc: Gamma(shape=k, scale=sc), st.floats(3, 30), st.floats(2, 20)),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prior=priors, c=st.one_of(st.just(1.0), st.just(1e-4), st.floats(0.0, 1.0)),
       s=st.one_of(st.just(0.0), st.floats(0.01, 0.8)), bias=st.floats(0.7, 1.3),
       q=st.floats(0.05, 0.95), pick=st.floats(0.02, 0.98), r=st.sampled_from([5, 15, 30]))
def test_the_posterior_matches_numerical_integration(prior, c, s, bias, q, pick, r):
    """For any correlation in [0, 1] (near 0 and at 1 included) and any estimate noise, the
    conditioned duration's distribution function equals f(x)L(x) integrated numerically."""
    median = float(prior.ppf(0.5))
    natural = float(prior.ppf(pick))  # a booking the model produces for some case
    booked = max(r, round(bias * natural**c * median ** (1 - c) / r) * r)
    x = float(prior.ppf(q))
    want, evidence = posterior_cdf_by_quad(prior, booked, bias, c, median, r, s, x)
    got = condition(prior, booking_model(booked, bias, c, median, r, s))
    if c == 0 or evidence < EVIDENCE_FLOOR:
        assert not got.informative
        return
    assert got.evidence == pytest.approx(evidence, rel=2e-3, abs=1e-6)
    assert float(got.cdf_v(prior.cdf(x))) == pytest.approx(want, abs=3e-3)
    # and drawing by inverse transform lands on the same distribution
    v = got.uniforms(np.array([0.25, 0.5, 0.75]))
    back = got.cdf_v(v)
    assert np.allclose(back, [0.25, 0.5, 0.75], atol=3e-3)


@settings(max_examples=25, deadline=None)
@given(sigma=st.floats(0.15, 0.5), c=st.one_of(st.just(1e-3), st.just(1.0), st.floats(0, 1)),
       s=st.one_of(st.just(0.0), st.floats(0.02, 0.4)), r=st.sampled_from([15, 30]))
def test_averaged_over_bookings_the_posterior_is_the_prior(sigma, c, s, r):
    """The law of total probability: the bookings' posteriors, weighted by how often each
    booking happens, add back to the duration's own distribution. No booking's window can
    then hide the bulk of the distribution, whatever the correlation; bookings the model
    (almost) never makes keep the prior, and together they weigh little."""
    prior, median, bias = Lognormal(median=90.0, sigma=sigma), 90.0, 0.95
    xs = [float(prior.ppf(q)) for q in (0.1, 0.3, 0.5, 0.7, 0.9)]
    prior_cdf = np.array([float(prior.cdf(x)) for x in xs])
    spread = 6 * math.hypot(c * sigma, s)
    lo_b = max(r, math.floor(bias * median * math.exp(-spread) / r) * r)
    hi_b = math.ceil(bias * median * math.exp(spread) / r) * r
    mass, mix, kept = 0.0, np.zeros(len(xs)), 0.0
    for booked in range(int(lo_b), int(hi_b) + r, r):
        got = condition(prior, booking_model(booked, bias, c, median, r, s))
        if c == 0:
            assert not got.informative
            mass, mix = 1.0, prior_cdf
            break
        mass += got.evidence
        if not got.informative:
            assert got.contradicted and got.evidence < EVIDENCE_FLOOR
            kept += got.evidence
            mix += got.evidence * prior_cdf
            continue
        mix += got.evidence * np.array([float(got.cdf_v(prior.cdf(x))) for x in xs])
    assert mass == pytest.approx(1.0, abs=0.01)
    assert kept < 0.01
    assert np.allclose(mix, prior_cdf, atol=0.01 + kept)


def test_the_likelihood_in_logs_is_exact_far_in_the_tails():
    """log(Φ(b) − Φ(a)) stays finite and right where Φ(b) − Φ(a) underflows."""
    a, b = np.array([-50.0, 40.0, -1.0, 10.0]), np.array([-49.0, 41.0, 1.0, 10.5])
    got = log_bucket_probability(a, b)
    assert np.all(np.isfinite(got))
    assert got[2] == pytest.approx(math.log(stats.norm.cdf(1) - stats.norm.cdf(-1)))
    assert got[1] == pytest.approx(stats.norm.logsf(40.0) + math.log1p(
        -math.exp(stats.norm.logsf(41.0) - stats.norm.logsf(40.0))), rel=1e-9)
    assert got[0] == pytest.approx(stats.norm.logcdf(-49.0) + math.log1p(
        -math.exp(stats.norm.logcdf(-50.0) - stats.norm.logcdf(-49.0))), rel=1e-9)


def test_remaining_time_given_booking_and_elapsed_time_by_integration():
    """E[D − e | booking, D > e] by quadrature equals the mean of the sampled remaining times."""
    prior, c, s, booked = Lognormal(median=80.0, sigma=0.4), 0.6, 0.15, 90.0
    model = booking_model(booked, 1.0, c, 80.0, 15, s)
    got = condition(prior, model)
    e = 70.0
    u = (np.arange(20000) + 0.5) / 20000
    sampled = float(np.mean(got.remaining(u, e)))
    ll = stats.lognorm(s=0.4, scale=80.0)

    def w(x: float) -> float:
        return ll.pdf(x) * likelihood(x, booked, 1.0, c, 80.0, 15, s)

    z = integrate.quad(w, e, np.inf, limit=200)[0]
    want = integrate.quad(lambda x: (x - e) * w(x), e, np.inf, limit=200)[0] / z
    assert sampled == pytest.approx(want, rel=5e-3)


def test_the_twins_booking_error_is_its_own_stream_and_none_is_drawn_without_noise():
    """A scenario with estimate noise books with a log-normal error from the ``booking_error``
    stream; without noise the week's draws are those of a scenario that has no such field."""
    from helpers_scn import BASELINE

    from twin.demand import draw_week
    from twin.scenario import load_scenario
    from twin.streams import Streams

    scn = load_scenario(BASELINE)
    noisy = scn.model_copy(update={"booking": scn.booking.model_copy(
        update={"estimate_noise": 0.3})})
    a, b = draw_week(scn, Streams(11, 0)), draw_week(noisy, Streams(11, 0))
    assert a.cases.keys() == b.cases.keys()
    same_truth = all(a.truth[k].duration == b.truth[k].duration for k in a.cases)
    assert same_truth  # the error draws nothing from the duration streams
    ratio = np.log([b.cases[k].booked_minutes / a.cases[k].booked_minutes for k in a.cases])
    assert 0.15 < float(np.std(ratio)) < 0.45  # about the 0.3 asked for, blurred by rounding


@pytest.mark.skipif(not SHARED.exists(), reason="the shared Q1 log is not beside the checkout")
def test_calibrated_on_january_and_february_the_booking_keeps_the_bulk(tmp_path):
    """The issue's case: calibrated on January-February the fitted correlation is small but
    positive (0.078). The fit now carries the estimate's noise, and every March case's
    conditioned duration keeps the median of its own distribution inside its P10-P90, where the
    noise-free inversion put cpt28060's whole window below its median."""
    from helpers_scn import run_cli

    from twin.booked_duration import booked_duration
    from twin.demand import Case
    from twin.scenario import load_scenario

    out = tmp_path / "janfeb.yaml"
    rc = run_cli(["calibrate", str(SHARED), "--mapping", str(MAPPING), "--as-of", "2022-03-01",
                  "-o", str(out)])
    assert rc == 0
    scn = load_scenario(out)
    b = scn.booking
    assert 0 < b.estimate_correlation < 0.3 and b.estimate_noise > 0.05
    checked = 0
    for svc in scn.services:
        for p in svc.procedures:
            sg = next(g for g in scn.surgeons if g.service == svc.id)
            for booked in (15.0, 60.0, 120.0, 240.0):
                case = Case(id="x", service=svc.id, surgeon=sg.id, procedure=p.id,
                            patient_class="outpatient", priority="elective",
                            capability=svc.id, trays=(), crew={}, booked_minutes=booked)
                given = booked_duration(scn, case)
                d = given.dist
                lo, hi = (float(d.ppf(given.uniforms(q))) for q in (0.1, 0.9))
                median = float(d.ppf(0.5))
                assert lo <= median <= hi, (p.id, booked, lo, median, hi)
                checked += 1
    assert checked >= 40


def test_calibration_recovers_the_booking_noise_the_twin_booked_with():
    """A synthetic history booked with a known estimate error (log-sd 0.2, correlation 0.5):
    the fit recovers both, so the now-cast conditions on a booking as loosely as it deserves."""
    from helpers_scn import BASELINE

    from calibration.fit_durations import fit_durations
    from calibration.loader import load_frame
    from calibration.synth import synth_history
    from twin.scenario import load_scenario

    scn = load_scenario(BASELINE)
    scn = scn.model_copy(update={"booking": scn.booking.model_copy(
        update={"estimate_noise": 0.2, "estimate_correlation": 0.5})})
    sh = synth_history(16, 5, scenario=scn, drift=None, mess=None)
    fit = fit_durations(load_frame(sh.frame, source="<synthetic>").cases).booking
    assert fit["estimate_noise"] == pytest.approx(0.2, abs=0.03)
    assert fit["estimate_correlation"] == pytest.approx(0.5, abs=0.08)
    # and a noise-free history fits (close to) no noise
    plain = synth_history(8, 5, drift=None, mess=None)
    assert fit_durations(load_frame(plain.frame, source="<synthetic>").cases).booking[
        "estimate_noise"] < 0.05
