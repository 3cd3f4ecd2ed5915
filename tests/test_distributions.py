"""Distributions: analytic moments, inverse transform, residual life, YAML kinds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from twin.distributions import KINDS, Distribution

EXAMPLES = [
    {"kind": "constant", "value": 30},
    {"kind": "exponential", "mean": 45},
    {"kind": "lognormal", "median": 73, "sigma": 0.41},
    {"kind": "lognormal", "mean": 120, "cv": 0.42},
    {"kind": "gamma", "shape": 3.0, "scale": 25.0},
    {"kind": "weibull", "shape": 1.7, "scale": 90.0},
    {"kind": "normal", "mean": 6, "sd": 9},
    {"kind": "uniform", "low": 20, "high": 90},
    {"kind": "triangular", "low": 10, "mode": 20, "high": 60},
    {"kind": "empirical", "values": [22, 25, 29, 31, 38, 45]},
    {"kind": "lognormal", "median": 80, "sigma": 0.3, "scale_factor": 1.15, "shift": 5},
]
ADAPTER = TypeAdapter(Distribution)


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda s: s["kind"])
def test_moments_match_stratified_samples(spec: dict) -> None:
    d = ADAPTER.validate_python(spec)
    u = (np.arange(200_000) + 0.5) / 200_000  # stratified uniforms: quadrature of the ppf
    x = d.ppf(u)
    assert np.mean(x) == pytest.approx(d.mean, rel=2e-3, abs=1e-6)
    assert np.var(x) == pytest.approx(d.variance, rel=2e-2, abs=1e-3)


@pytest.mark.parametrize("spec", [s for s in EXAMPLES if s["kind"] not in ("constant", "empirical")],
                         ids=lambda s: s["kind"])
def test_cdf_inverts_ppf(spec: dict) -> None:
    d = ADAPTER.validate_python(spec)
    u = np.linspace(0.02, 0.98, 49)
    x = d.ppf(u)
    if spec["kind"] == "normal":  # clipped at 0: invert only above the clip
        keep = x > 0
        u, x = u[keep], x[keep]
    assert np.allclose(d.cdf(x), u, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(median=st.floats(5, 500), sigma=st.floats(0.05, 1.5), elapsed=st.floats(0, 600),
       u=st.floats(0.001, 0.999))
def test_residual_is_non_negative_and_monotone(median, sigma, elapsed, u) -> None:
    d = ADAPTER.validate_python({"kind": "lognormal", "median": median, "sigma": sigma})
    r = d.residual(np.array([u, min(u + 0.0005, 0.9995)]), elapsed)
    assert r[0] >= 0 and r[1] >= r[0] - 1e-9


def test_scaled_multiplies_samples() -> None:
    d = ADAPTER.validate_python({"kind": "gamma", "shape": 2, "scale": 30})
    u = np.linspace(0.05, 0.95, 10)
    assert np.allclose(d.scaled(1.2).ppf(u), 1.2 * d.ppf(u))
    assert d.scaled(1.2).mean == pytest.approx(1.2 * d.mean)


@pytest.mark.parametrize("bad", [
    {"kind": "lognormal", "median": 50},
    {"kind": "lognormal", "median": 50, "sigma": 0.3, "mean": 60, "cv": 0.2},
    {"kind": "gamma", "shape": -1, "scale": 3},
    {"kind": "triangular", "low": 10, "mode": 5, "high": 20},
    {"kind": "uniform", "low": 5, "high": 1},
    {"kind": "empirical", "values": []},
    {"kind": "pareto", "alpha": 2},
    {"kind": "exponential", "mean": 10, "rate": 3},
])
def test_bad_parameters_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(bad)


def test_every_kind_has_an_example() -> None:
    assert {s["kind"] for s in EXAMPLES} == set(KINDS)
