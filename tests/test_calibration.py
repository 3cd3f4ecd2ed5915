"""Calibration recovers a known truth, detects drift, uses only data before the as-of date, and
writes a scenario the twin runs (plus its fit report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.build import calibrate
from calibration.fit_durations import fit_durations
from calibration.loader import load_frame
from calibration.report import write_calibration
from calibration.synth import Drift, synth_history
from ortwin.runner import run_replication
from twin.scenario import load_scenario

WEEKS = 52
SEED = 11
AS_OF_END = "2023-12-25"


@pytest.fixture(scope="module")
def tight():
    """A year of a hospital with half the usual spread (so 30 cases pin a median to ~3%), the
    default drift (dr_patel x0.75 from week 26) and the default mess."""
    sh = synth_history(WEEKS, SEED, spread=0.5)
    return sh, load_frame(sh.frame, source="<synthetic>")


@pytest.fixture(scope="module")
def realistic():
    """A year at the baseline's realistic spread (log-sd 0.22-0.40)."""
    sh = synth_history(WEEKS, SEED + 1)
    return sh, load_frame(sh.frame, source="<synthetic>")


def _truth_median(truth: dict, proc: str, drifted: bool = True) -> float:
    """The procedure's median for a typical surgeon of its service: the base median times the
    geometric mean of the team's speeds (the drift surgeon at the new speed once detected). A
    procedure effect is only defined up to the surgeons' common level; calibration centres the
    surgeon effects, and so does this truth."""
    t = truth["procedures"][proc]
    speeds = {k: v["speed"] for k, v in truth["surgeons"].items() if v["service"] == t["service"]}
    if drifted and truth["drift"] and truth["drift"]["surgeon"] in speeds:
        speeds[truth["drift"]["surgeon"]] = truth["drift"]["speed_after"]
    return t["median"] * float(np.exp(np.mean(np.log(list(speeds.values())))))


def test_procedure_medians_recovered_within_5_percent(tight):
    sh, hist = tight
    d = fit_durations(hist.until(AS_OF_END).cases)
    checked = 0
    for pid, pf in d.procedures.items():
        if pf.n < 30:
            continue
        fitted = float(pf.dist.ppf(0.5))
        assert fitted == pytest.approx(_truth_median(sh.truth, pid), rel=0.05), (pid, pf.n)
        checked += 1
    assert checked >= 40


def test_realistic_spread_errors_are_sampling_error(realistic):
    """At realistic spread the 5% bar is beyond n=30 (se ~ 0.3/sqrt(30) = 5.5%): the errors are
    unbiased and within 4 standard errors."""
    sh, hist = realistic
    d = fit_durations(hist.until(AS_OF_END).cases)
    z, err = [], []
    for pid, pf in d.procedures.items():
        t = sh.truth["procedures"][pid]
        e = np.log(np.exp(pf.log_mu) / _truth_median(sh.truth, pid))
        err.append(e)
        z.append(e / (t["sigma"] / np.sqrt(pf.n)))
    assert np.max(np.abs(z)) < 4.0
    assert abs(np.mean(err)) < 0.02


def test_surgeon_effects_and_pairs_recovered(tight):
    sh, hist = tight
    d = fit_durations(hist.until("2023-06-26").cases)  # before the drift
    truth = sh.truth["surgeons"]
    for sid, speed in d.speeds.items():
        svc = truth[sid]["service"]
        team = [v["speed"] for v in truth.values() if v["service"] == svc]
        centred = truth[sid]["speed"] / np.exp(np.mean(np.log(team)))
        assert speed == pytest.approx(centred, rel=0.05), sid
    pairs = [p for p in d.pairs if p.n >= 30]
    assert len(pairs) > 30
    for p in pairs:
        assert p.median == pytest.approx(
            sh.truth["surgeon_procedure_median"][f"{p.surgeon}|{p.procedure}"], rel=0.10)


def test_drift_detected_only_once_the_as_of_date_is_past_it(tight):
    sh, hist = tight
    drift = sh.truth["drift"]
    before = fit_durations(hist.until(drift["date"]).cases)
    assert drift["surgeon"] not in before.drifts
    assert before.tested_surgeons >= 30 and not before.drifts  # no false alarm either
    early = fit_durations(hist.until(pd.Timestamp(drift["date"]) + pd.Timedelta(weeks=1)).cases)
    assert drift["surgeon"] not in early.drifts  # one week past: too little evidence
    after = fit_durations(hist.until(pd.Timestamp(drift["date"]) + pd.Timedelta(weeks=12)).cases)
    shift = after.drifts[drift["surgeon"]]
    assert shift.ratio == pytest.approx(drift["factor"], rel=0.06)
    first = pd.Timestamp(hist.until(AS_OF_END).cases["in_room"].min())
    when = first + pd.Timedelta(days=shift.at)
    assert abs((when - pd.Timestamp(drift["date"])).days) <= 14
    # the drifting surgeon is fitted on post-drift cases: pairs at the new speed
    mine = [p for p in after.pairs if p.surgeon == drift["surgeon"] and p.n >= 15]
    assert mine
    for p in mine:
        base = sh.truth["surgeon_procedure_median"][f"{p.surgeon}|{p.procedure}"]
        assert p.median == pytest.approx(base * drift["factor"], rel=0.12)


def test_no_drift_without_one():
    sh = synth_history(30, 5, drift=None, mess=None, spread=0.5)
    d = fit_durations(load_frame(sh.frame).cases)
    assert d.tested_surgeons >= 30
    assert d.drifts == {}


def test_flows_recovered(tight):
    sh, hist = tight
    cal = calibrate(hist, AS_OF_END)
    v, t = cal.validated, sh.truth
    for cls, dist in v.pacu.los.items():
        assert float(dist.ppf(0.5)) == pytest.approx(t["pacu_los"][cls]["median"], rel=0.05), cls
    # observed turnover and lateness include waits the truth does not: close, never below
    assert 1.0 <= float(v.turnover.ppf(0.5)) / t["turnover"]["median"] <= 1.08
    assert 0.95 <= float(v.first_case_delay.ppf(0.5)) / t["first_case_delay"]["median"] <= 1.2
    for k in ("pre", "post"):
        assert float(getattr(v.phases, k).ppf(0.5)) == pytest.approx(t["phases"][k]["median"], rel=0.1)
    assert v.booking.estimate_bias == pytest.approx(t["booking"]["estimate_bias"], rel=0.03)
    assert v.booking.estimate_correlation == pytest.approx(
        t["booking"]["estimate_correlation"], abs=0.05)
    # day-of cancellations: each service's truth inside its 95% interval (Bonferroni-free but
    # wide enough: 9 services)
    c = cal.cancellations.set_index("service")
    inside = [(c.loc[s, "low95"] <= r <= c.loc[s, "high95"]) for s, r in t["cancellation_rate"].items()]
    assert sum(inside) >= len(inside) - 1
    # add-ons: Poisson, about the truth's rate (the synthetic week drops add-ons still waiting
    # at its end, so a little fewer are logged), weekend lower than weekdays
    a = cal.addons
    assert 0.8 * t["addons"]["per_day"] <= a.per_day <= 1.02 * t["addons"]["per_day"]
    assert a.weekday_factor["sun"] < np.mean([a.weekday_factor[d] for d in ("mon", "tue", "wed")])
    assert a.dispersion_p > 0.01
    hours = np.array(a.hourly_profile)
    assert hours[9:17].mean() > 2 * hours[1:5].mean()


def test_as_of_limits_what_the_fit_sees(tight):
    sh, hist = tight
    cal = calibrate(hist, "2023-03-06")
    assert cal.history.cases["date"].max() < pd.Timestamp("2023-03-06")
    d = cal.durations
    assert sum(p.n for p in d.procedures.values()) == int(
        (cal.history.cases["in_room"].notna() & cal.history.cases["out_of_room"].notna()).sum())
    # changing rows after the as-of date cannot change the fit
    frame = sh.frame.copy()
    late = pd.to_datetime(frame["date"]) >= pd.Timestamp("2023-03-06")
    frame.loc[late, "out_of_room"] = ""
    other = calibrate(load_frame(frame, source="<synthetic>"), "2023-03-06")
    assert other.scenario == cal.scenario


def test_calibrated_scenario_runs_and_report_is_written(tight, tmp_path):
    _, hist = tight
    cal = calibrate(hist, "2023-04-03")
    scn_path, report = write_calibration(cal, tmp_path / "cal.yaml")
    scn = load_scenario(scn_path)
    assert len(scn.rooms) == 10 and {s.id for s in scn.services} >= {"general", "ortho", "cardiac"}
    out = run_replication(scn, "as-booked", 1, 0, keep_events=False)
    assert out.kpis["cases_completed"] > 100
    assert 0.3 < out.kpis["utilisation"] < 1.0
    md = (report / "fit_report.md").read_text()
    assert "## Case durations" in md and "Drift tested" in md
    for name in ("durations.csv", "duration_families.csv", "surgeon_procedure.csv", "drift.csv",
                 "turnover_by_room.csv", "turnover_by_service.csv", "cancellations.csv",
                 "pacu_los.csv", "inpatient_los.csv", "addons.csv", "quarantine.csv"):
        assert (report / name).stat().st_size > 0, name
    fam = pd.read_csv(report / "duration_families.csv")
    assert set(fam["family"]) == {"lognormal", "gamma", "weibull", "empirical"}
    assert fam.groupby("procedure")["chosen"].sum().eq(1).all()
    pngs = list((report / "charts").glob("*.png"))
    assert len(pngs) >= 10
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    # rewriting replaces the report folder whole, leaving no temporary folders behind
    write_calibration(cal, tmp_path / "cal.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.yaml", "cal_fit"]


def test_shared_log_calibrates(kaggle):
    cal = calibrate(kaggle, "2022-01-31")
    v = cal.validated
    assert [r.id for r in v.rooms] == [f"OR{i}" for i in range(1, 9)]
    assert len(v.services) == 10
    assert v.addons.per_day == 0  # not recorded: said so, not invented
    assert any("add-ons not recorded" in n for n in cal.notes)
    # first cases: a median 6 min late in the log, never early
    assert float(v.first_case_delay.ppf(0.5)) == pytest.approx(6, abs=1)
    # in-room medians of the busiest procedures match the log's
    d = cal.durations
    ran = cal.history.cases
    minutes = (ran["out_of_room"] - ran["in_room"]).dt.total_seconds() / 60
    for pid in ("cpt66982", "cpt42826"):
        assert float(d.procedures[pid].dist.ppf(0.5)) == pytest.approx(
            minutes[ran["procedure"] == pid].median(), rel=0.05)


def test_drift_spec_is_validated():
    with pytest.raises(ValueError):
        synth_history(2, 1, drift=Drift(surgeon="dr_nobody"))
