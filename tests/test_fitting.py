"""Calibration fitting: family choice by AIC, shrinkage, drift detection, charts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.charts import bar_chart, ecdf_panels, qq_panels
from calibration.drift import best_split, detect_shift
from calibration.families import SIGMA_FLOOR, fit_best, fit_family, lognormal_mle
from calibration.shrinkage import between_variance, shrink_means, shrinkage_weight
from twin.distributions import Empirical, Gamma, Lognormal, Weibull

# --- families ------------------------------------------------------------------------------


def test_lognormal_recovery() -> None:
    x = np.random.default_rng(1).lognormal(math.log(80.0), 0.35, 3000)
    res = fit_best(x)
    assert res.best.family == "lognormal"
    d = res.best.dist
    assert isinstance(d, Lognormal)
    mu, sigma = d.mu_sigma
    assert math.exp(mu) == pytest.approx(80.0, rel=0.03)
    assert sigma == pytest.approx(0.35, rel=0.05)
    assert lognormal_mle(x) == pytest.approx((mu, sigma))
    assert res.n == 3000 and res.median == pytest.approx(float(np.median(x)))
    assert res.best.params().startswith("median=")


@pytest.mark.parametrize("seed", [2, 3])
def test_gamma_data_picks_gamma(seed: int) -> None:
    x = np.random.default_rng(seed).gamma(4.0, 20.0, 3000)
    res = fit_best(x)
    assert res.best.family == "gamma"
    assert isinstance(res.best.dist, Gamma)
    assert res.best.dist.shape == pytest.approx(4.0, rel=0.1)
    # the gamma MLE reproduces the sample mean exactly
    assert res.best.dist.mean == pytest.approx(float(np.mean(x)), rel=1e-6)


@pytest.mark.parametrize("seed", [4, 5])
def test_weibull_data_picks_weibull(seed: int) -> None:
    x = 60.0 * np.random.default_rng(seed).weibull(3.0, 3000)
    res = fit_best(x)
    assert res.best.family == "weibull"
    assert isinstance(res.best.dist, Weibull)
    assert res.best.dist.shape == pytest.approx(3.0, rel=0.08)
    assert res.best.dist.scale == pytest.approx(60.0, rel=0.03)


def test_bimodal_large_sample_picks_empirical() -> None:
    rng = np.random.default_rng(6)
    x = np.concatenate(
        [rng.lognormal(math.log(60), 0.12, 1500), rng.lognormal(math.log(180), 0.12, 1500)]
    )
    res = fit_best(x)
    assert res.best.family == "empirical"
    d = res.best.dist
    assert isinstance(d, Empirical) and len(d.values) == 101  # percentiles 0..100
    assert d.values[0] == pytest.approx(x.min()) and d.values[-1] == pytest.approx(x.max())
    assert 2 <= res.best.k + 1 <= 50
    assert res.best.ks_pvalue > 0.5
    assert all(c.ks_pvalue < 1e-6 for c in res.candidates if c.family != "empirical")


def test_tied_durations_empirical_has_ks_near_zero_and_says_why() -> None:
    """A procedure whose 50 cases take 2 values (a log repeating days): the empirical fit is its
    own data, so its KS D is ~0 (scipy's kstest counted each copy and said 0.5), and the report
    line says why no smooth family was chosen."""
    from scipy import stats

    from calibration.families import ks_distance

    x = np.array([122.0] * 25 + [137.0] * 25)
    r = fit_best(x, dequantize=False)
    assert r.best.family == "empirical" and r.distinct == 2
    assert r.best.ks_stat < 0.05
    assert stats.kstest(x, r.best.dist.cdf).statistic > 0.45  # what the report used to show
    logn = next(c for c in r.candidates if c.family == "lognormal")
    f = logn.dist.cdf
    assert logn.ks_stat == pytest.approx(max(f(122.0), abs(0.5 - f(122.0)), abs(0.5 - f(137.0)),
                                             1 - f(137.0)), abs=1e-6)
    why = r.why()
    assert why.startswith("empirical: lowest AIC") and "only 2 distinct values in 50 cases" in why
    assert "no smooth family fits" in why
    # untied data: the exact distance is scipy's
    y = np.random.default_rng(3).lognormal(4, 0.4, 80)
    d = Lognormal(median=55.0, sigma=0.4)
    assert ks_distance(y, d.cdf) == pytest.approx(stats.kstest(y, d.cdf).statistic, abs=1e-12)
    assert fit_best(y).why().startswith(fit_best(y).best.family + ": lowest AIC")


def test_small_n_never_empirical() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [rng.lognormal(math.log(60), 0.05, 20), rng.lognormal(math.log(180), 0.05, 20)]
    )
    res = fit_best(x)  # bimodal but n = 40 < min_n_empirical
    assert {c.family for c in res.candidates} == {"lognormal", "gamma", "weibull"}
    assert res.best.family != "empirical"
    small = fit_best(x[:30], min_n_empirical=30)
    assert any(c.family == "empirical" for c in small.candidates)
    emp = fit_family(x[:30], "empirical")
    assert isinstance(emp.dist, Empirical) and len(emp.dist.values) == 30  # n <= 101: all values


def test_rows_sorted_and_flag_the_chosen() -> None:
    x = np.random.default_rng(8).lognormal(math.log(45), 0.5, 400)
    res = fit_best(x)
    rows = res.rows()
    assert [r["family"] for r in rows] == [c.family for c in res.candidates]
    assert len(rows) == 4 and sum(r["chosen"] for r in rows) == 1 and rows[0]["chosen"]
    assert rows[0]["delta_aic"] == 0.0
    assert all(b["aic"] >= a["aic"] for a, b in zip(rows, rows[1:], strict=False))
    assert set(rows[0]) == {
        "family",
        "params",
        "loglik",
        "k",
        "aic",
        "delta_aic",
        "ks_stat",
        "ks_pvalue",
        "chosen",
    }


def test_ks_pvalue_high_for_right_family_low_for_wrong() -> None:
    x = np.random.default_rng(9).lognormal(math.log(100), 0.6, 5000)
    assert fit_family(x, "lognormal").ks_pvalue > 0.05
    wrong = fit_family(x, "weibull")
    assert wrong.ks_pvalue < 1e-4 and wrong.ks_stat > 0.03


@pytest.mark.parametrize(
    "x",
    [[5.0, 5.0], [5.0] * 80, [1.0, 1.0 + 1e-9], [100.0, 100.0, 100.0, 101.0], [0.5, 5000.0]],
)
def test_degenerate_data_is_fitted(x: list[float]) -> None:
    res = fit_best(x)
    for c in res.candidates:
        assert math.isfinite(c.aic) and math.isfinite(c.loglik)
        assert math.isfinite(c.dist.mean)
    lognormal = next(c for c in res.candidates if c.family == "lognormal")
    assert lognormal.dist.sigma >= SIGMA_FLOOR


@pytest.mark.parametrize(
    "x", [[], [3.0], [1.0, 0.0], [1.0, -2.0], [1.0, float("nan")], [2.0, float("inf")]]
)
def test_bad_input_raises(x: list[float]) -> None:
    with pytest.raises(ValueError):
        fit_best(x)


def test_unknown_family_raises() -> None:
    with pytest.raises(ValueError, match="unknown"):
        fit_family([1.0, 2.0], "pareto")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.floats(0.5, 5000.0, allow_nan=False, allow_infinity=False), min_size=2, max_size=200
    )
)
def test_fit_best_never_raises(values: list[float]) -> None:
    res = fit_best(values)
    assert res.candidates[0] is res.best
    aics = [c.aic for c in res.candidates]
    assert all(math.isfinite(a) for a in aics)
    assert res.best.aic == min(aics)
    assert (len(values) >= 50) == any(c.family == "empirical" for c in res.candidates)
    for c in res.candidates:
        assert 0.0 <= c.ks_stat <= 1.0 and 0.0 <= c.ks_pvalue <= 1.0
        assert math.isfinite(c.dist.mean) and c.dist.mean > 0


# --- shrinkage -----------------------------------------------------------------------------


def test_shrinkage_limits_and_betweenness() -> None:
    own, parent, s2, tau2 = np.array([0.4, -0.2, 0.1]), 0.05, 0.09, 0.02
    assert np.allclose(shrink_means(own, [0, 0, 0], parent, s2, tau2), parent)
    assert np.allclose(shrink_means(own, [1e9] * 3, parent, s2, tau2), own, atol=1e-6)
    counts = np.array([3, 10, 40])
    got = shrink_means(own, counts, parent, s2, tau2)
    lo, hi = np.minimum(own, parent), np.maximum(own, parent)
    assert np.all((got > lo) & (got < hi))
    w = shrinkage_weight(counts, s2, tau2)
    assert np.all(np.diff(w) > 0) and np.all((w > 0) & (w < 1))
    direct = (counts * own / s2 + parent / tau2) / (counts / s2 + 1 / tau2)
    assert np.allclose(got, direct)
    arr_parent = np.array([0.0, 0.1, 0.2])
    assert np.allclose(shrink_means(own, [0, 0, 0], arr_parent, s2, tau2), arr_parent)
    assert np.isfinite(shrink_means([np.nan], [0], parent, s2, tau2)).all()  # empty group


def test_between_variance_recovers_tau2() -> None:
    rng = np.random.default_rng(10)
    groups, tau2, s2 = 400, 0.04, 0.09
    counts = rng.integers(5, 60, groups)
    true = rng.normal(0.0, math.sqrt(tau2), groups)
    means = true + rng.normal(0.0, 1.0, groups) * np.sqrt(s2 / counts)
    assert between_variance(means, counts, s2) == pytest.approx(tau2, rel=0.25)
    same = rng.normal(0.0, 1.0, groups) * np.sqrt(s2 / counts)  # no real between variance
    floor = between_variance(same, counts, s2)
    assert 0 < floor < 0.005
    assert between_variance([0.1], [10], s2) > 0  # one group: the floor
    with pytest.raises(ValueError):
        between_variance([0.1, 0.2], [10], s2)


# --- drift ---------------------------------------------------------------------------------


def _series(rng: np.random.Generator, n_before: int, n_after: int, ratio: float):
    t = np.sort(rng.uniform(0.0, 365.0, n_before + n_after))
    r = rng.normal(0.0, 0.3, n_before + n_after)
    r[n_before:] += math.log(ratio)
    return t, r


def test_drift_detects_speed_up() -> None:
    errors = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        n_before = int(rng.integers(90, 111))
        t, r = _series(rng, n_before, 100, 0.75)
        s = detect_shift(t, r)
        assert s is not None, seed
        assert s.ratio == pytest.approx(0.75, abs=0.08)
        assert s.n_before + s.n_after == t.size and s.t_stat < 0 and s.p_value < 1e-4
        assert s.at == t[s.n_before]
        errors.append(abs(s.n_before - n_before))
    assert np.median(errors) <= 3
    assert np.mean(np.array(errors) <= 10) >= 0.85


def test_drift_false_positives_are_rare() -> None:
    hits = 0
    for seed in range(200):
        rng = np.random.default_rng(10_000 + seed)
        t, r = _series(rng, 300, 0, 1.0)
        hits += detect_shift(t, r, n_tests=35) is not None
    assert hits <= 2


def test_drift_edge_cases() -> None:
    rng = np.random.default_rng(11)
    assert best_split(np.arange(20.0), rng.normal(size=20)) is None  # < 2 * min_side
    assert best_split(np.zeros(100), rng.normal(size=100)) is None  # no distinct times
    t = np.repeat(np.arange(10.0), 10)  # ties: splits only between distinct days
    r = np.where(t >= 6, -0.4, 0.0) + rng.normal(0, 0.05, t.size)
    s = detect_shift(t, r, min_side=15)
    assert s is not None and s.at == 6.0 and s.n_before == 60
    small = np.where(t >= 6, math.log(0.98), 0.0) + rng.normal(0, 0.001, t.size)
    assert best_split(t, small) is not None
    assert detect_shift(t, small) is None  # significant but under min_ratio_change
    with pytest.raises(ValueError):
        best_split([1.0, 2.0], [0.1])


# --- charts --------------------------------------------------------------------------------


def _check_png(path, max_bytes: int = 1_500_000) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 1_000 < len(data) < max_bytes
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


def test_charts_write_pngs(tmp_path) -> None:
    rng = np.random.default_rng(12)
    panels = []
    for i in range(60):
        x = rng.lognormal(math.log(30 + i), 0.4, int(rng.integers(2, 400)))
        panels.append((f"proc {i}", x, fit_best(x, families=("lognormal",)).best.dist))
    panels.append(("no fit", rng.uniform(1, 2, 30), None))
    out = ecdf_panels(tmp_path / "sub" / "ecdf.png", panels, title="in-room minutes")
    assert out == tmp_path / "sub" / "ecdf.png"
    _check_png(out)
    _check_png(qq_panels(tmp_path / "qq.png", panels[:8], ncols=3))
    hours = [f"{h:02d}" for h in range(24)]
    counts = rng.poisson(3.0, 24).astype(float).tolist()
    _check_png(
        bar_chart(tmp_path / "bar.png", hours, counts, "add-ons", "cases", fitted=[3.0] * 24)
    )
    _check_png(ecdf_panels(tmp_path / "empty.png", []))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bar.png", "empty.png", "qq.png", "sub"]
    with pytest.raises(ValueError):
        bar_chart(tmp_path / "bad.png", ["a"], [1.0, 2.0], "t", "y")
    assert not (tmp_path / "bad.png").exists()
