"""Fitting what happens around cases: turnover, first-case lateness, add-on arrivals,
cancellations, PACU and inpatient length of stay.

Each fit returns a small result with its table rows; a quantity the history does not record
returns ``None`` and calibration keeps its template's value, saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from calibration.families import FitResult, fit_best
from calibration.schema import HistoryError
from twin.distributions import Empirical
from twin.schema import clock

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIN_GROUP_N = 30
"""Cases a room or service needs for its own turnover (or a class for its own PACU stay)."""


@dataclass
class GroupFits:
    """A pooled fit plus fits of groups with enough data, and a test of group differences."""

    pooled: FitResult
    groups: dict[str, FitResult]
    counts: dict[str, int]
    kruskal_p: float          # Kruskal-Wallis p-value across groups (NaN: fewer than 2 groups)


def _group_fits(values: np.ndarray, labels: np.ndarray) -> GroupFits:
    pooled = fit_best(values)
    groups, counts, samples = {}, {}, []
    for g in sorted(set(labels)):
        v = values[labels == g]
        counts[str(g)] = len(v)
        if len(v) >= MIN_GROUP_N:
            groups[str(g)] = fit_best(v)
            samples.append(v)
    p = float(stats.kruskal(*samples).pvalue) if len(samples) > 1 else float("nan")
    return GroupFits(pooled, groups, counts, p)


def turnover_gaps(cases: pd.DataFrame, max_minutes: float = 120.0,
                  early_start: float = 60.0,
                  no_start: Sequence[tuple[int, int]] = ()) -> pd.DataFrame:
    """Wheels-out to next wheels-in gaps within a room-day (above 0, at most ``max_minutes``: the
    KPI module's turnover), kept only when the next case was available as the room came free: an
    add-on already requested, an elective within ``early_start`` minutes of its booked start (the
    twin's early-start allowance); otherwise the gap is idle time, not turnover. Unrecorded
    request or booked times count as available. A gap that overlaps a no-start window (minutes of
    the day, :func:`fit_no_start_windows`) is a wait too. Columns: room, service (of the case
    before), gap."""
    ran = cases.loc[cases["in_room"].notna() & cases["out_of_room"].notna()]
    ran = ran.sort_values(["room", "in_room"], kind="stable")
    day = ran["in_room"].dt.normalize()
    same = (ran["room"].to_numpy()[1:] == ran["room"].to_numpy()[:-1]) & \
        (day.to_numpy()[1:] == day.to_numpy()[:-1])
    free = ran["out_of_room"].to_numpy()[:-1]
    gap = (ran["in_room"].to_numpy()[1:] - free) / np.timedelta64(1, "m")
    addon = ran["is_addon"].fillna(False).astype(bool).to_numpy()[1:]
    asked = ran["requested_at"].to_numpy()[1:]
    due = (ran["booked_start"] - pd.Timedelta(minutes=early_start)).to_numpy()[1:]
    ready = np.where(addon, pd.isna(asked) | (asked <= free), pd.isna(due) | (due <= free))
    ok = same & (gap > 0) & (gap <= max_minutes) & ready
    f = (pd.DatetimeIndex(free) - pd.DatetimeIndex(free).normalize()) / pd.Timedelta(minutes=1)
    for lo, hi in no_start:
        ok &= ~((f.to_numpy(float) < hi) & (f.to_numpy(float) + gap > lo))
    return pd.DataFrame({"room": ran["room"].to_numpy()[:-1][ok],
                         "service": ran["service"].to_numpy()[:-1][ok], "gap": gap[ok]})


def fit_turnover(cases: pd.DataFrame, max_minutes: float = 120.0,
                 no_start: Sequence[tuple[int, int]] = ()) -> dict[str, GroupFits] | None:
    """Turnover pooled, by room and by service (of the case before the turnover), leaving out
    gaps that overlap a no-start window (waits, :func:`turnover_gaps`)."""
    g = turnover_gaps(cases, max_minutes, no_start=no_start)
    if len(g) < 2:
        return None
    v = g["gap"].to_numpy(float)
    return {"room": _group_fits(v, g["room"].to_numpy()),
            "service": _group_fits(v, g["service"].to_numpy())}


NO_START_BIN = 10
"""Minutes per bin of wheels-in times of day when looking for no-start windows."""


def _minute(t: pd.Series) -> np.ndarray:
    return (t.dt.hour * 60 + t.dt.minute).to_numpy(int)


def _waits(cases: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(minute of the day each room came free, minute the next case of its room-day went in)
    for gaps of 1-120 minutes."""
    r = cases.loc[cases["in_room"].notna() & cases["out_of_room"].notna()]
    r = r.sort_values(["room", "in_room"], kind="stable")
    day = r["in_room"].dt.normalize().to_numpy()
    same = (r["room"].to_numpy()[1:] == r["room"].to_numpy()[:-1]) & (day[1:] == day[:-1])
    free, went = _minute(r["out_of_room"].iloc[:-1])[same], _minute(r["in_room"].iloc[1:])[same]
    ok = (went - free > 0) & (went - free <= 120)
    return free[ok], went[ok]


def fit_no_start_windows(cases: pd.DataFrame, min_expected: float = 30.0) -> list[dict]:
    """Times of day when no elective goes in (a staff lunch). A candidate is a run of two or
    more 10-minute bins of the electives' wheels-in times, inside the day's 5th-95th percentile,
    holding at most 2% of the mean of the three bins either side (a bin may hold one) and
    expecting at least ``min_expected`` starts. It is kept when the cases were held back: of
    the rooms that came free a median turnover before a time in the window (at least 20), 80%
    or more went in only after it, after gaps 5+ minutes longer than the median. Each: start, end, expected, seen, held."""
    e = cases.loc[cases["in_room"].notna() & ~cases["is_addon"].fillna(False).astype(bool)]
    t = _minute(e["in_room"])
    free, went = _waits(cases)
    if len(t) < 100 or len(free) < 20:
        return []
    med = float(np.median(went - free))
    n = np.histogram(t, np.arange(0, 1440 + NO_START_BIN, NO_START_BIN))[0].astype(float)
    lo, hi = (int(q) // NO_START_BIN for q in np.percentile(t, (5, 95)))
    out, k = [], lo + 3
    while k < hi - 3:
        j = k
        while j < hi - 3 and n[j] <= max(0.02 * n[k - 3:k].mean(), 1.0):
            j += 1
        s, end = k * NO_START_BIN, j * NO_START_BIN
        ref = float(np.concatenate([n[k - 3:k], n[j:j + 3]]).mean()) * (j - k)
        due = (free + med >= s) & (free + med < end)
        if j - k >= 2 and n[k:j].sum() <= 0.02 * ref and ref >= min_expected and due.sum() >= 20 \
                and np.mean(went[due] >= end) >= 0.8 and np.median((went - free)[due]) >= med + 5:
            out.append({"start": clock(s, wrap=False), "end": clock(end, wrap=False),
                        "expected": round(ref, 1), "seen": int(n[k:j].sum()),
                        "held": int(due.sum())})
            k = j
        k += 1
    return out


def first_case_delays(cases: pd.DataFrame) -> np.ndarray:
    """Wheels-in minus booked start of each room-day's first booked elective (minutes)."""
    c = cases.loc[cases["booked_start"].notna() & cases["in_room"].notna()
                  & ~cases["is_addon"].fillna(False).astype(bool)]
    first = c.sort_values("booked_start").groupby([c["room"], c["in_room"].dt.normalize()]).head(1)
    return ((first["in_room"] - first["booked_start"]).dt.total_seconds() / 60.0).to_numpy(float)


@dataclass
class LatenessFit:
    """First-case lateness: the distribution the twin uses (never negative) and the data."""

    dist: object
    fit: FitResult | None
    n: int
    median: float
    share_early_or_on_time: float


def fit_first_case(cases: pd.DataFrame) -> LatenessFit | None:
    """Lateness of first cases; an empirical distribution (clipped at 0) when more than 5% of
    first cases start on time or early, else the AIC family of the positive delays."""
    d = first_case_delays(cases)
    if len(d) < 5:
        return None
    early = float(np.mean(d <= 0))
    if early > 0.05 or len(d) < MIN_GROUP_N:
        q = np.percentile(np.maximum(d, 0.0), np.linspace(0, 100, 101))
        return LatenessFit(Empirical(values=[float(v) for v in q]), None, len(d),
                           float(np.median(d)), early)
    fit = fit_best(np.maximum(d, 0.5))
    return LatenessFit(fit.best.dist, fit, len(d), float(np.median(d)), early)


@dataclass
class AddonFit:
    """Add-on arrivals: rate, weekday factors, hourly profile, mixes and a dispersion check."""

    per_day: float
    weekday_factor: dict[str, float]
    hourly_profile: list[float]
    hourly_counts: list[int]
    priority: dict[str, float]
    services: dict[str, float]
    days: int
    dispersion: float         # Pearson chi-square / dof of daily counts (1 for Poisson)
    dispersion_p: float       # P(chi-square >= observed) under Poisson
    arrival_source: str       # "requested_at" or "in_room"


def fit_addons(cases: pd.DataFrame, first: pd.Timestamp, end: pd.Timestamp,
               recorded: frozenset[str]) -> AddonFit | None:
    """Poisson arrivals by weekday and hour from the add-on rows in [first, end)."""
    if "is_addon" not in recorded:
        return None
    a = cases.loc[cases["is_addon"].fillna(False).astype(bool)]
    source = "requested_at" if "requested_at" in recorded and a["requested_at"].notna().any() \
        else "in_room"
    t = a[source].fillna(a["in_room"]).dropna()
    dates = pd.date_range(first.normalize(), end.normalize() - pd.Timedelta(days=1), freq="D")
    if len(dates) == 0:
        return None
    counts = t.dt.normalize().value_counts().reindex(dates, fill_value=0)
    per_day = float(counts.mean())
    wd = counts.groupby(counts.index.day_of_week).mean()
    factor = {WEEKDAY_NAMES[i]: round(float(wd.get(i, 0.0) / per_day), 3) if per_day > 0 else 1.0
              for i in range(7)}
    hours = np.bincount(t.dt.hour.to_numpy(int), minlength=24)
    profile = (hours + 0.5) / (hours + 0.5).sum() * 24
    expected = np.array([per_day * factor[WEEKDAY_NAMES[d.weekday()]] for d in dates])
    ok = expected > 0
    chi2 = float((((counts.to_numpy() - expected) ** 2)[ok] / expected[ok]).sum())
    dof = max(int(ok.sum()) - 7, 1)
    pri = a["priority"].replace("", "urgent").value_counts(normalize=True)
    svc = a["service"].value_counts(normalize=True)
    return AddonFit(per_day, factor, [round(float(x), 3) for x in profile], hours.tolist(),
                    {k: round(float(v), 3) for k, v in pri.items() if k in ("urgent", "emergent")},
                    {k: round(float(v), 3) for k, v in svc.items()}, len(dates), chi2 / dof,
                    float(stats.chi2.sf(chi2, dof)), source)


SYSTEM_REASONS = ("no_time",)
"""Cancellation reasons the twin produces itself (the day ran out): not part of the fitted
day-of (patient) cancellation rate, reported apart."""


def fit_cancellations(cases: pd.DataFrame, recorded: frozenset[str]) -> pd.DataFrame | None:
    """Day-of cancellation rate of booked electives by service with a Wilson 95% interval
    (cancellations for lack of time, which the twin models itself, counted apart)."""
    if "cancelled" not in recorded:
        return None
    e = cases.loc[~cases["is_addon"].fillna(False).astype(bool)]
    rows = []
    for svc, g in e.groupby("service", sort=True):
        canc = g["cancelled"].fillna(False).astype(bool)
        system = canc & g["cancel_reason"].isin(SYSTEM_REASONS)
        n, k = len(g), int((canc & ~system).sum())
        z = 1.96
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        rows.append({"service": svc, "booked": n, "cancelled": k, "no_time": int(system.sum()),
                     "rate": p,
                     "low95": max(centre - half, 0.0), "high95": min(centre + half, 1.0)})
    return pd.DataFrame(rows)


def fit_pacu(cases: pd.DataFrame, recorded: frozenset[str]) -> GroupFits | None:
    """PACU length of stay (minutes) by patient class ('' when the class is not recorded)."""
    if "pacu_in" not in recorded:
        return None
    los = ((cases["pacu_out"] - cases["pacu_in"]).dt.total_seconds() / 60.0)
    ok = los.notna() & (los > 0)
    if ok.sum() < 2:
        return None
    return _group_fits(los[ok].to_numpy(float), cases.loc[ok, "patient_class"].to_numpy())


def read_los_file(path: str | Path) -> dict[str, np.ndarray]:
    """Inpatient length-of-stay samples in days, one column per group (wide CSV)."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise HistoryError(path, "", "file not found") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise HistoryError(path, "", f"cannot read as CSV ({type(e).__name__})") from None
    out = {}
    for col in df.columns:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        bad = np.isnan(v) & df[col].notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 2
            raise HistoryError(path, f"row {row}: {col}", "expected a number of days")
        v = v[~np.isnan(v)]
        if (v < 0).any():
            raise HistoryError(path, col, "expected non-negative days")
        out[str(col)] = v
    if not out:
        raise HistoryError(path, "", "no columns of length-of-stay samples")
    return out


@dataclass
class LosFit:
    """Inpatient length of stay: the pooled fit of stays of a day or more, per-group fits and
    the share of same-day (under half a day) stays."""

    pooled: FitResult
    groups: dict[str, FitResult]
    same_day_share: float
    n: int
    samples: dict[str, np.ndarray]


def fit_inpatient_los(samples: dict[str, np.ndarray]) -> LosFit:
    """Fit stays (days) pooled over groups, and per group."""
    allv = np.concatenate(list(samples.values()))
    stay = allv[allv >= 0.5]
    groups = {g: fit_best(v[v >= 0.5]) for g, v in samples.items() if (v >= 0.5).sum() >= MIN_GROUP_N}
    return LosFit(fit_best(stay), groups, float(np.mean(allv < 0.5)), len(allv),
                  {"pooled": stay, **{g: v[v >= 0.5] for g, v in samples.items()}})


__all__ = ["AddonFit", "GroupFits", "LatenessFit", "LosFit", "fit_addons", "fit_cancellations",
           "fit_first_case", "fit_inpatient_los", "fit_no_start_windows", "fit_pacu", "fit_turnover",
           "first_case_delays", "read_los_file", "turnover_gaps"]
