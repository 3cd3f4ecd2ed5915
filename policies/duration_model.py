"""Quantile forecasts of in-room minutes learnt from case history.

:class:`QuantileDurationModel` is a :class:`~policies.forecast.Forecaster`: one scikit-learn
histogram gradient-boosting model per quantile (P50, P80, P95) with the quantile (pinball)
loss, fitted on a case history in the schema of :mod:`calibration.history`. It uses only
booking-time facts (:data:`FEATURES`), never the outcome.

Modelling choices:

- **Target.** Each model learns the conditional quantile of ``log(actual / booked)``. Because
  ``booked_minutes`` is itself a feature and quantiles commute with monotone maps, ``booked *
  exp(q)`` is the conditional quantile of the actual minutes. The ratio makes the trees' job
  (and the fallback for unseen surgeons or procedures) "how far off is this booking", which
  transfers across procedures much better than raw minutes.
- **Inputs.** The categories (procedure, surgeon, service, patient class, priority) are
  ordinal-encoded and passed as native categorical features; a category not seen in training
  (a new surgeon or procedure) is encoded as missing, so it still gets a forecast from the
  other features. Weekday, booked minutes and the add-on flag are numeric. One derived input,
  also known at booking, is the *relative booking*: ``log(booked)`` minus the typical log
  booking of that (procedure, surgeon) in the training history (shrunk towards the
  procedure's, then the overall typical; unseen pairs fall back the same way). A surgeon who
  books longer than usual for a procedure expects a harder case.
- **Calibration.** Quantile boosting fitted on a few thousand cases is over-confident out of
  sample (the held-out P80 covers ~77%, P95 ~91%). ``fit`` therefore holds out the latest
  quarter of the training weeks, measures on them how far a model fitted on the earlier weeks
  misses each quantile, and shifts that quantile by the conformal correction (split-conformal
  quantile regression) before refitting on every week. The refit has more data than the
  model that measured the correction, so the shift is slightly conservative.
- **Monotone quantiles.** The three models are fitted separately, so predictions are sorted
  per case to guarantee ``p50 <= p80 <= p95``.
- **Time-ordered evaluation.** :func:`time_split` splits a history by week, never at random:
  the model is always judged on weeks after the ones it learnt from.
- **Threads.** Boosters fit and predict on one OpenMP thread (see :func:`_single_thread`).

:func:`trained_model` fits on a history simulated by the twin itself
(:func:`calibration.history.simulate_history`) and memoises the result per process, so a policy
can ask for it in every replication at no cost after the first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import ThreadpoolController

from policies.forecast import QUANTILES, Forecast, ForecastError
from twin.demand import PRIORITY_RANK, Case
from twin.scenario import PATIENT_CLASSES

CATEGORICAL: tuple[str, ...] = ("procedure", "surgeon", "service", "patient_class", "priority")
"""Booking-time features used as categories."""

NUMERIC: tuple[str, ...] = ("weekday", "booked_minutes", "is_addon")
"""Booking-time features used as numbers (``is_addon`` as 0/1)."""

FEATURES: tuple[str, ...] = (
    "procedure", "surgeon", "service", "patient_class", "weekday", "booked_minutes",
    "priority", "is_addon",
)
"""Every input of the model: facts known when a case is booked (never its outcome)."""

TARGET = "actual_minutes"
"""The history column the model learns (in-room minutes, see :mod:`calibration.history`)."""

DEFAULT_WEEKS = 16
"""Weeks of simulated history :func:`trained_model` trains on by default."""

HISTORY_SEED = 0x5EED_4157
"""Default seed of the simulated training history: distinct from experiment seeds."""

_PARAMS = dict(
    learning_rate=0.1,
    max_iter=150,
    max_leaf_nodes=8,
    min_samples_leaf=20,
    l2_regularization=1.0,
    early_stopping=False,
    random_state=0,
)


_CONTROLLER: ThreadpoolController | None = None


def _single_thread():
    """Run the boosters on one OpenMP thread. Fits are small and forecasts tiny; replications
    often run in several processes at once, where OpenMP's default of every core per process
    oversubscribes the machine and can make a fit tens of times slower."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="openmp")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------

def _check_text(name: str, value: object, where: str, allowed: Sequence[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise ForecastError(f"{where}: {name}: expected a non-empty string, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ForecastError(
            f"{where}: {name}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _check_row(where: str, row: dict) -> dict:
    """Validate one case's features (raises :class:`ForecastError` naming case and field)."""
    out = {}
    for name in ("procedure", "surgeon", "service"):
        out[name] = _check_text(name, row.get(name), where)
    out["patient_class"] = _check_text("patient_class", row.get("patient_class"), where,
                                       PATIENT_CLASSES)
    out["priority"] = _check_text("priority", row.get("priority"), where, tuple(PRIORITY_RANK))
    b = row.get("booked_minutes")
    try:
        bf = float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        bf = math.nan
    if isinstance(b, bool) or not math.isfinite(bf) or bf <= 0:
        raise ForecastError(f"{where}: booked_minutes: expected a positive number of minutes, "
                            f"got {b!r}")
    out["booked_minutes"] = bf
    a = row.get("is_addon")
    if not isinstance(a, (bool, np.bool_)) and not (isinstance(a, (int, np.integer))
                                                     and a in (0, 1)):
        raise ForecastError(f"{where}: is_addon: expected True or False, got {a!r}")
    out["is_addon"] = bool(a)
    d = row.get("weekday")
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= int(d) <= 6:
        raise ForecastError(f"{where}: weekday: expected an integer 0-6, got {d!r}")
    out["weekday"] = int(d)
    return out


def _check_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Validated feature frame (same index as ``df``)."""
    missing = [f for f in FEATURES if f not in df.columns]
    if missing:
        raise ForecastError(f"history/frame: missing column(s): {', '.join(missing)}")
    ids = df["case_id"].tolist() if "case_id" in df.columns else list(df.index)
    recs = df.loc[:, list(FEATURES)].to_dict("records")
    rows = [_check_row(f"case {cid}", r) for cid, r in zip(ids, recs, strict=True)]
    return pd.DataFrame(rows, index=df.index, columns=list(FEATURES))


def case_features(cases: Sequence[Case], day: int) -> pd.DataFrame:
    """The feature frame of ``cases`` booked for ``day`` (index = case id), validated."""
    if isinstance(day, bool) or not isinstance(day, (int, np.integer)):
        raise ForecastError(f"day: expected an integer day index, got {day!r}")
    rows, ids = [], []
    for c in cases:
        where = f"case {getattr(c, 'id', '?')}"
        raw = {f: getattr(c, f, None) for f in FEATURES if f != "weekday"}
        raw["weekday"] = int(day) % 7
        rows.append(_check_row(where, raw))
        ids.append(c.id)
    return pd.DataFrame(rows, index=pd.Index(ids, name="case_id"), columns=list(FEATURES))


# --------------------------------------------------------------------------------------------
# the quantile model
# --------------------------------------------------------------------------------------------

class QuantileDurationModel:
    """Gradient-boosted quantile regression of in-room minutes (P50, P80, P95).

    ``calibration_share`` of the latest training weeks (at least one week; only when the
    history has a ``week`` column with at least 4 weeks) is held out once to measure how far
    the quantiles of a model fitted on the earlier weeks miss out of sample; each quantile is
    then shifted by that amount (split-conformal quantile regression) and the final models
    are refitted on every week. ``calibration_share=0`` turns this off. ``params`` override
    the :class:`~sklearn.ensemble.HistGradientBoostingRegressor` settings.
    """

    name = "quantile-gbm"

    def __init__(self, calibration_share: float = 0.25, **params) -> None:
        if not 0.0 <= calibration_share < 1.0:
            raise ValueError(f"calibration_share must be in [0, 1), got {calibration_share}")
        self.quantiles: tuple[float, ...] = QUANTILES
        self.calibration_share = calibration_share
        self.params = {**_PARAMS, **params}
        self.codes_: dict[str, dict[str, int]] = {}
        self.models_: dict[float, HistGradientBoostingRegressor] = {}
        self.shift_: dict[float, float] = dict.fromkeys(QUANTILES, 0.0)
        self.typ_all_: float = math.nan
        self.typ_p_: dict = {}
        self.typ_ps_: dict = {}
        self.n_train_: int = 0

    # -- features ----------------------------------------------------------------------------
    def _fit_typical(self, feats: pd.DataFrame, k: float = 5.0) -> None:
        """Typical log booked minutes per procedure and per (procedure, surgeon), from booked
        minutes only, each shrunk towards the level above with ``k`` pseudo-cases."""
        lb = np.log(feats["booked_minutes"].to_numpy(dtype=float))
        d = feats.assign(lb=lb)
        self.typ_all_ = float(lb.mean())
        gp = d.groupby("procedure")["lb"].agg(["sum", "count"])
        self.typ_p_ = ((gp["sum"] + k * self.typ_all_) / (gp["count"] + k)).to_dict()
        gps = d.groupby(["procedure", "surgeon"])["lb"].agg(["sum", "count"])
        prior = gps.index.get_level_values(0).map(self.typ_p_).to_numpy(dtype=float)
        self.typ_ps_ = ((gps["sum"] + k * prior) / (gps["count"] + k)).to_dict()

    def _relative_booking(self, feats: pd.DataFrame) -> np.ndarray:
        """``log(booked)`` minus the typical log booking of the row's (procedure, surgeon),
        else of its procedure, else overall: how long this booking is for what it is."""
        keys = list(zip(feats["procedure"], feats["surgeon"], strict=True))
        t_ps = np.array([self.typ_ps_.get(k, math.nan) for k in keys], dtype=float)
        t_p = np.array([self.typ_p_.get(p, math.nan) for p in feats["procedure"]], dtype=float)
        typical = np.where(np.isfinite(t_ps), t_ps,
                           np.where(np.isfinite(t_p), t_p, self.typ_all_))
        return np.log(feats["booked_minutes"].to_numpy(dtype=float)) - typical

    def _matrix(self, feats: pd.DataFrame) -> np.ndarray:
        """Model inputs: ordinal codes of the categories (NaN = not seen in training), the
        numeric features and the relative booking."""
        cols = [np.array([codes.get(v, np.nan) for v in feats[name]], dtype=float)
                for name, codes in self.codes_.items()]
        cols += [feats[name].to_numpy(dtype=float) for name in NUMERIC]
        cols.append(self._relative_booking(feats))
        return np.column_stack(cols)

    # -- fitting -----------------------------------------------------------------------------
    def _fit_core(self, feats: pd.DataFrame, target: np.ndarray) -> None:
        """Encoder, booking statistics and one booster per quantile on these rows."""
        self.codes_ = {name: {v: i for i, v in enumerate(sorted(set(feats[name])))}
                       for name in CATEGORICAL}
        self._fit_typical(feats)
        X = self._matrix(feats)
        is_cat = [True] * len(CATEGORICAL) + [False] * (X.shape[1] - len(CATEGORICAL))
        with _single_thread():
            self.models_ = {
                q: HistGradientBoostingRegressor(loss="quantile", quantile=q,
                                                 categorical_features=is_cat,
                                                 **self.params).fit(X, target)
                for q in self.quantiles
            }

    def _raw(self, feats: pd.DataFrame) -> np.ndarray:
        """Unshifted predicted quantiles of ``log(actual / booked)``, one column per quantile."""
        X = self._matrix(feats)
        with _single_thread():
            return np.column_stack([self.models_[q].predict(X) for q in self.quantiles])

    def fit(self, history: pd.DataFrame) -> QuantileDurationModel:
        """Fit on ``history`` (schema of :mod:`calibration.history`; needs :data:`FEATURES` and
        ``actual_minutes``, and ``week`` for the calibration hold-out). Rows without a
        positive actual are dropped; invalid features raise :class:`ForecastError`."""
        if TARGET not in history.columns:
            raise ForecastError(f"history: missing column {TARGET!r}")
        y = pd.to_numeric(history[TARGET], errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(y) & (y > 0)
        hist = history.loc[keep]
        if len(hist) < 2:
            raise ForecastError("history: fewer than 2 cases with a positive actual_minutes")
        feats = _check_frame(hist)
        target = np.log(y[keep] / feats["booked_minutes"].to_numpy())

        self.shift_ = dict.fromkeys(self.quantiles, 0.0)
        weeks = np.sort(hist["week"].unique()) if "week" in hist.columns else np.array([])
        if self.calibration_share > 0 and len(weeks) >= 4:
            n_cal = max(1, int(round(self.calibration_share * len(weeks))))
            late = (hist["week"] > weeks[-n_cal - 1]).to_numpy()
            early = QuantileDurationModel(calibration_share=0.0, **self.params)
            early._fit_core(feats.loc[~late], target[~late])
            scores = target[late][:, None] - early._raw(feats.loc[late])
            n = len(scores)
            for j, q in enumerate(self.quantiles):
                # the finite-sample conformal level ceil((n + 1) q) / n, capped at 1
                level = min(math.ceil((n + 1) * q) / n, 1.0)
                self.shift_[q] = float(np.quantile(scores[:, j], level, method="higher"))
        self._fit_core(feats, target)
        self.n_train_ = len(hist)
        return self

    # -- predicting --------------------------------------------------------------------------
    def _predict(self, feats: pd.DataFrame) -> np.ndarray:
        if not self.models_:
            raise ForecastError(f"{self.name}: the model has not been fitted")
        if feats.empty:
            return np.empty((0, len(self.quantiles)))
        logr = self._raw(feats) + np.array([self.shift_[q] for q in self.quantiles])
        logr = np.maximum.accumulate(logr, axis=1)  # monotone: p50 <= p80 <= p95
        return feats["booked_minutes"].to_numpy(dtype=float)[:, None] * np.exp(logr)

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """``p50``, ``p80``, ``p95`` minutes for every row of ``df`` (which holds
        :data:`FEATURES`; other columns are ignored), with ``df``'s index. Raises
        :class:`ForecastError` naming the row (its ``case_id`` if present) and the field."""
        pred = self._predict(_check_frame(df))
        return pd.DataFrame(pred, index=df.index, columns=["p50", "p80", "p95"])

    def forecast(self, cases: Sequence[Case], day: int) -> dict[str, Forecast]:
        """One :class:`Forecast` per case booked for ``day`` (raises :class:`ForecastError`
        naming the case and field when an input is missing or invalid)."""
        feats = case_features(cases, day)
        pred = self._predict(feats)
        return {str(cid): Forecast(float(a), float(b), float(c))
                for cid, (a, b, c) in zip(feats.index, pred, strict=True)}


# --------------------------------------------------------------------------------------------
# baseline
# --------------------------------------------------------------------------------------------

class ProcedureMeanForecaster:
    """Each procedure's historical mean minutes as every quantile (falling back to the
    service's mean, then the overall mean): the usual 'historical average' booking rule."""

    name = "procedure-mean"

    def __init__(self) -> None:
        self.by_procedure_: dict[str, float] = {}
        self.by_service_: dict[str, float] = {}
        self.overall_: float = math.nan

    def fit(self, history: pd.DataFrame) -> ProcedureMeanForecaster:
        """Means of ``actual_minutes`` by procedure, by service and overall."""
        y = pd.to_numeric(history[TARGET], errors="coerce")
        h = history.loc[np.isfinite(y) & (y > 0)]
        if h.empty:
            raise ForecastError("history: no cases with a positive actual_minutes")
        self.by_procedure_ = h.groupby("procedure")[TARGET].mean().to_dict()
        self.by_service_ = h.groupby("service")[TARGET].mean().to_dict()
        self.overall_ = float(h[TARGET].mean())
        return self

    def _one(self, procedure: object, service: object) -> float:
        if procedure in self.by_procedure_:
            return float(self.by_procedure_[procedure])  # type: ignore[index]
        if service in self.by_service_:
            return float(self.by_service_[service])  # type: ignore[index]
        return self.overall_

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The mean as ``p50``, ``p80`` and ``p95`` for every row of ``df``."""
        m = [self._one(p, s) for p, s in zip(df["procedure"], df["service"], strict=True)]
        return pd.DataFrame({"p50": m, "p80": m, "p95": m}, index=df.index, dtype=float)

    def forecast(self, cases: Sequence[Case], day: int) -> dict[str, Forecast]:
        """The mean for P50, P80 and P95 alike."""
        if math.isnan(self.overall_):
            raise ForecastError(f"{self.name}: the model has not been fitted")
        out = {}
        for c in cases:
            v = self._one(c.procedure, c.service)
            out[c.id] = Forecast(v, v, v)
        return out


# --------------------------------------------------------------------------------------------
# evaluation helpers
# --------------------------------------------------------------------------------------------

def time_split(history: pd.DataFrame, train_weeks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``history`` in time: the first ``train_weeks`` weeks present (by ``week``) train,
    all later weeks test. Never random, so the model is judged on weeks after its data."""
    weeks = np.sort(history["week"].unique())
    if not 1 <= train_weeks < len(weeks):
        raise ValueError(f"train_weeks must be between 1 and {len(weeks) - 1} "
                         f"(the history has {len(weeks)} weeks), got {train_weeks}")
    cut = weeks[train_weeks - 1]
    train = history.loc[history["week"] <= cut].reset_index(drop=True)
    test = history.loc[history["week"] > cut].reset_index(drop=True)
    return train, test


def pinball_loss(y, q_pred, q: float) -> float:
    """Mean pinball (quantile) loss of predictions ``q_pred`` of quantile ``q`` for ``y``."""
    y, p = np.asarray(y, dtype=float), np.asarray(q_pred, dtype=float)
    diff = y - p
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def coverage(y, upper) -> float:
    """Share of ``y`` at or below ``upper`` (a quantile forecast's empirical level)."""
    y, u = np.asarray(y, dtype=float), np.asarray(upper, dtype=float)
    return float(np.mean(y <= u))


__all__ = [
    "CATEGORICAL", "DEFAULT_WEEKS", "FEATURES", "HISTORY_SEED", "NUMERIC", "TARGET",
    "ProcedureMeanForecaster", "QuantileDurationModel", "case_features", "coverage",
    "pinball_loss", "time_split",
]
