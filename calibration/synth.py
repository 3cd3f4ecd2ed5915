"""A synthetic case history of a hospital whose parameters are known, played by the twin itself.

:func:`synth_history` runs a scenario week by week (week ``w`` is replication ``w`` with the
given seed under ``as-booked``) and writes every case that ran or was cancelled as one row of the
canonical case-log schema (:mod:`calibration.schema`), exactly as a hospital export would read:
all cells are strings, ``""`` means not recorded. Alongside it comes the ground truth the history
was generated from (procedure duration distributions, surgeon speeds, a speed drift of one
surgeon part-way through the year, add-on arrivals, cancellation rates, ...), so calibration
code can be checked against known answers, and an optional layer of realistic damage
(:class:`Mess`: missing, duplicated, swapped, impossible and unparseable entries) with a list of
exactly what was injected.

Week ``w`` covers the seven days from ``start + 7*w`` (a Monday). Weeks are independent
replications: each starts with an empty suite, and cases still waiting when a week's horizon ends
(``not_started``) are left out, as a real log would not have them. Timestamps are the twin's
minutes floored to the minute (so milestones never fall out of order); there is no daylight
saving time in this hospital.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration.schema import COLUMNS, CORE_MILESTONES, MILESTONES, TIMESTAMP_FORMAT
from policies import simple_policy
from twin.io import atomic_write
from twin.replication import quiet_gc, replicate
from twin.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = REPO / "scenarios" / "baseline.yaml"
POLICY = "as-booked"
WEEK_MINUTES = 7 * 1440

_TERMINAL = ("pacu_out", "cancelled")
_UNPARSEABLE = ("n/a", "2023-13-45 25:61", "unknown", "#VALUE!", "00/00/0000 99:99", "--:--")
"""Texts an unparseable timestamp is replaced by; none parses as ``YYYY-MM-DD HH:MM``."""


@dataclass(frozen=True)
class Drift:
    """One surgeon's durations are multiplied by ``factor`` from week ``week`` on (0-based;
    ``None``: half-way through the history)."""

    surgeon: str = "dr_patel"
    week: int | None = None
    factor: float = 0.75

    def __post_init__(self) -> None:
        if self.week is not None and self.week < 0:
            raise ValueError(f"drift week must be >= 0, got {self.week}")
        if not self.factor > 0:
            raise ValueError(f"drift factor must be positive, got {self.factor}")


@dataclass(frozen=True)
class Mess:
    """Shares of clean rows damaged after generation, one kind of defect per damaged case."""

    missing_timestamp: float = 0.01
    """one core milestone (in_room ... out_of_room) of a completed case left blank"""
    exact_duplicate: float = 0.005
    """the row repeated verbatim"""
    conflicting_duplicate: float = 0.003
    """a second row with the same case_id but another room"""
    out_of_order: float = 0.003
    """procedure_start and procedure_end swapped"""
    impossible: float = 0.002
    """out_of_room 30 hours after in_room"""
    unparseable: float = 0.002
    """a recorded timestamp replaced by text such as ``n/a`` or ``2023-13-45 25:61``"""

    def __post_init__(self) -> None:
        shares = asdict(self)
        for k, v in shares.items():
            if not 0 <= v <= 1:
                raise ValueError(f"mess share {k} must be within [0, 1], got {v}")
        if sum(shares.values()) > 1:
            raise ValueError("mess shares must add up to at most 1")


MESS_KINDS: tuple[str, ...] = tuple(f.name for f in fields(Mess))
"""The kinds of injected defects, in the order they are drawn."""
DEFAULT_DRIFT = Drift()
DEFAULT_MESS = Mess()
DAMAGED_COLUMNS: tuple[str, ...] = ("case_id", "kind", "column")


@dataclass
class SynthHistory:
    """A synthetic history: the case log, the truth behind it and the defects injected."""

    frame: pd.DataFrame
    """canonical columns (:data:`calibration.schema.COLUMNS`), every cell a string"""
    truth: dict[str, Any]
    """JSON-able ground truth (scenario parameters, drift, mess shares and defects)"""
    damaged: pd.DataFrame
    """one row per injected defect: ``case_id``, ``kind`` (a :class:`Mess` field), ``column``"""


# --- generation --------------------------------------------------------------------------------


def synth_history(weeks: int, seed: int, *, scenario: Scenario | None = None,
                  start: date = date(2023, 1, 2), drift: Drift | None = DEFAULT_DRIFT,
                  mess: Mess | None = DEFAULT_MESS, spread: float = 1.0,
                  policy: str = POLICY) -> SynthHistory:
    """A ``weeks``-long synthetic case history from the twin, starting on Monday ``start``.
    Deterministic in its arguments; ``drift=None`` / ``mess=None`` leave those out; ``spread``
    multiplies every lognormal procedure duration's log-sd (a tighter hospital lets a test ask
    for a 5% recovery at 30 cases)."""
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    if isinstance(start, datetime):
        start = start.date()
    if start.weekday() != 0:
        raise ValueError(f"start must be a Monday, got {start.isoformat()} ({start:%A})")
    scn = load_scenario(DEFAULT_SCENARIO) if scenario is None else scenario
    if spread != 1.0:
        scn = with_spread(scn, spread)
    if scn.horizon_days != 7:
        scn = scn.model_copy(update={"horizon_days": 7})
    drift_week = weeks
    drifted = scn
    if drift is not None:
        drift_week = weeks // 2 if drift.week is None else drift.week
        drifted = _with_speed(scn, drift.surgeon, drift.factor)
    parts = []
    with quiet_gc():
        for w in range(weeks):
            week_scn = drifted if w >= drift_week else scn
            out = replicate(week_scn, simple_policy(policy, week_scn), seed, w, keep_events=True)
            part = _week_cases(out.events, out.cases, w)
            if len(part):
                parts.append(part)
    clean = _format(pd.concat(parts, ignore_index=True) if parts else None, start)
    frame, damaged = clean, pd.DataFrame({c: pd.Series(dtype=object) for c in DAMAGED_COLUMNS})
    if mess is not None:
        frame, damaged = inject_mess(clean, mess, seed, [r.id for r in scn.rooms])
    truth = _truth(scn, weeks, seed, start, drift, drift_week, mess, damaged, len(clean))
    return SynthHistory(frame=frame, truth=truth, damaged=damaged)


def with_spread(scn: Scenario, spread: float) -> Scenario:
    """A copy of ``scn`` whose lognormal procedure durations have their log-sd times ``spread``."""
    if not spread > 0:
        raise ValueError(f"spread must be positive, got {spread}")
    services = []
    for svc in scn.services:
        procs = [p.model_copy(update={"duration": p.duration.model_copy(
                     update={"sigma": p.duration.sigma * spread})})
                 if p.duration.kind == "lognormal" and p.duration.sigma is not None else p
                 for p in svc.procedures]
        services.append(svc.model_copy(update={"procedures": procs}))
    return scn.model_copy(update={"services": services})


def _with_speed(scn: Scenario, surgeon: str, factor: float) -> Scenario:
    """A copy of ``scn`` in which ``surgeon``'s speed is multiplied by ``factor``."""
    if surgeon not in {s.id for s in scn.surgeons}:
        raise ValueError(f"drift surgeon {surgeon!r} is not a surgeon of scenario {scn.name!r}")
    surgeons = [s.model_copy(update={"speed": s.speed * factor}) if s.id == surgeon else s
                for s in scn.surgeons]
    return scn.model_copy(update={"surgeons": surgeons})


_FIRST = ("in_room", "procedure_start", "procedure_end", "out_of_room", "pacu_in")


def _week_cases(events: pd.DataFrame, cases: pd.DataFrame, week: int) -> pd.DataFrame:
    """Numeric rows of one week's completed and cancelled cases; times in minutes since the
    first Monday of the history (floats, NaN = none), ``day`` counted from the same Monday."""
    ce = events[events["case_id"] != ""]
    term = ce[ce["event"].isin(_TERMINAL)].drop_duplicates("case_id")
    if term.empty:
        return pd.DataFrame()
    term = term.set_index("case_id")
    ms = ce[ce["event"].isin(_FIRST)].drop_duplicates(["case_id", "event"])
    times = ms.pivot(index="case_id", columns="event", values="time").reindex(
        index=term.index, columns=list(_FIRST))
    rooms = ce[ce["event"] == "in_room"].drop_duplicates("case_id").set_index("case_id")["room"]
    sched = ce[ce["event"] == "scheduled"].drop_duplicates("case_id", keep="last")
    sched = sched.set_index("case_id")
    overflow = set(ce.loc[ce["event"] == "pacu_overflow", "case_id"])
    facts = cases.set_index("case_id").reindex(term.index)

    done = (term["event"] == "pacu_out").to_numpy()
    is_addon = facts["is_addon"].astype(bool).to_numpy()
    arrival = facts["arrival"].to_numpy(dtype=float)
    booked_day = pd.to_numeric(facts["booked_day"], errors="coerce").to_numpy(dtype=float)
    day = np.where(is_addon | ~(booked_day >= 0), np.floor(arrival / 1440), booked_day)
    booked_start = sched["value"].reindex(term.index).to_numpy(dtype=float)
    booked_start = np.where(np.isnan(booked_start), facts["booked_start"].to_numpy(dtype=float),
                            booked_start)
    room = rooms.reindex(term.index).fillna("").to_numpy(dtype=object)
    sched_room = sched["room"].reindex(term.index).fillna("").to_numpy(dtype=object)
    booked_room = facts["booked_room"].fillna("").to_numpy(dtype=object)
    room = np.where(done, room, np.where(sched_room != "", sched_room, booked_room))

    t = {c: times[c].to_numpy(dtype=float) for c in _FIRST}
    t["pacu_out"] = np.where(done, term["time"].to_numpy(dtype=float), np.nan)
    no_pacu = ~done | np.isin(term.index.to_numpy(), list(overflow))
    t["pacu_in"] = np.where(no_pacu, np.nan, t["pacu_in"])
    t["pacu_out"] = np.where(no_pacu, np.nan, t["pacu_out"])
    for c in CORE_MILESTONES:
        t[c] = np.where(done, t[c], np.nan)
    off = week * WEEK_MINUTES
    df = pd.DataFrame({
        "case_id": [f"w{week:03d}-{cid}" for cid in term.index],
        "day": (week * 7 + day).astype(np.int64),
        "room": room,
        "surgeon": facts["surgeon"].astype(object).to_numpy(),
        "service": facts["service"].astype(object).to_numpy(),
        "procedure": facts["procedure"].astype(object).to_numpy(),
        "patient_class": facts["patient_class"].astype(object).to_numpy(),
        "priority": facts["priority"].astype(object).to_numpy(),
        "is_addon": is_addon,
        "requested_at": np.where(is_addon, arrival, np.nan) + off,
        "booked_start": booked_start + off,
        "booked_minutes": facts["booked_minutes"].to_numpy(dtype=float),
        **{c: t[c] + off for c in MILESTONES},
        "cancelled": ~done,
        "cancel_reason": np.where(done, "", term["detail"].fillna("").to_numpy(dtype=object)),
    })
    return df


def _stamps(minutes: np.ndarray, origin: np.datetime64) -> np.ndarray:
    """``YYYY-MM-DD HH:MM`` strings of whole minutes after ``origin`` ("" for NaN)."""
    out = np.full(len(minutes), "", dtype=object)
    ok = ~np.isnan(minutes)
    if ok.any():
        when = origin + minutes[ok].astype(np.int64).astype("timedelta64[m]")
        out[ok] = np.char.replace(np.datetime_as_string(when, unit="m"), "T", " ")
    return out


def _number(x: float) -> str:
    if np.isnan(x):
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}".rstrip("0")


def _format(df: pd.DataFrame | None, start: date) -> pd.DataFrame:
    """The canonical, all-string frame of the numeric week rows, sorted by date, room, time."""
    if df is None or df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    ms = np.floor(df.loc[:, list(MILESTONES)].to_numpy(dtype=float))
    # flooring keeps the order; the running max only guards against a model that did not
    ordered = np.fmax.accumulate(ms, axis=1)
    ms = np.where(np.isnan(ms), np.nan, ordered)
    sort_time = np.fmin(np.fmin(ms[:, 0], np.floor(df["booked_start"].to_numpy(dtype=float))),
                        np.floor(df["requested_at"].to_numpy(dtype=float)))
    origin = np.datetime64(start, "m")
    days = np.datetime64(start, "D") + df["day"].to_numpy(dtype=np.int64).astype("timedelta64[D]")
    out = pd.DataFrame({
        "case_id": df["case_id"].to_numpy(dtype=object),
        "date": np.datetime_as_string(days, unit="D").astype(object),
        "room": df["room"].to_numpy(dtype=object),
        "surgeon": df["surgeon"].to_numpy(dtype=object),
        "service": df["service"].to_numpy(dtype=object),
        "procedure": df["procedure"].to_numpy(dtype=object),
        "procedure_name": [p.replace("_", " ").title() for p in df["procedure"]],
        "patient_class": df["patient_class"].to_numpy(dtype=object),
        "priority": df["priority"].to_numpy(dtype=object),
        "is_addon": np.where(df["is_addon"].to_numpy(dtype=bool), "true", "false").astype(object),
        "requested_at": _stamps(np.floor(df["requested_at"].to_numpy(dtype=float)), origin),
        "booked_start": _stamps(np.floor(df["booked_start"].to_numpy(dtype=float)), origin),
        "booked_minutes": [_number(x) for x in df["booked_minutes"].to_numpy(dtype=float)],
        **{c: _stamps(ms[:, i], origin) for i, c in enumerate(MILESTONES)},
        "cancelled": np.where(df["cancelled"].to_numpy(dtype=bool), "true", "false").astype(object),
        "cancel_reason": df["cancel_reason"].to_numpy(dtype=object),
    })
    key = pd.DataFrame({"day": df["day"].to_numpy(), "room": out["room"],
                        "t": np.nan_to_num(sort_time, nan=np.inf), "id": out["case_id"]})
    order = key.sort_values(["day", "room", "t", "id"], kind="stable").index
    return out.loc[order, list(COLUMNS)].reset_index(drop=True)


# --- mess --------------------------------------------------------------------------------------


def mess_rng(seed: int) -> np.random.Generator:
    """The generator the mess is drawn from: independent of the twin's streams for ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(b"mess")]))


def inject_mess(clean: pd.DataFrame, mess: Mess, seed: int,
                rooms: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Damage a clean canonical frame: ``round(share * rows)`` distinct cases per kind of
    :class:`Mess`; returns the damaged frame and one row per defect (case_id, kind, column)."""
    rng = mess_rng(seed)
    n = len(clean)
    frame = clean.copy()
    done = (clean["cancelled"] == "false").to_numpy()
    eligible: dict[str, np.ndarray] = {
        "missing_timestamp": done,
        "exact_duplicate": np.ones(n, dtype=bool),
        "conflicting_duplicate": (clean["room"] != "").to_numpy(),
        "out_of_order": done & (clean["procedure_start"] != clean["procedure_end"]).to_numpy(),
        "impossible": done,
        "unparseable": done,
    }
    perm = rng.permutation(n)
    used = np.zeros(n, dtype=bool)
    picks: dict[str, list[int]] = {}
    for kind in MESS_KINDS:
        want = int(round(getattr(mess, kind) * n))
        cand = perm[eligible[kind][perm] & ~used[perm]][:want]
        used[cand] = True
        picks[kind] = sorted(int(i) for i in cand)

    records: list[tuple[int, str, str]] = []  # (row, kind, column), by kind then row
    extra: list[tuple[float, pd.Series]] = []  # (position, row) of added duplicates
    col = {c: frame.columns.get_loc(c) for c in COLUMNS}
    for i in picks["missing_timestamp"]:
        c = CORE_MILESTONES[int(rng.integers(len(CORE_MILESTONES)))]
        frame.iat[i, col[c]] = ""
        records.append((i, "missing_timestamp", c))
    for i in picks["exact_duplicate"]:
        extra.append((i + 0.5, clean.iloc[i].copy()))
        records.append((i, "exact_duplicate", ""))
    for i in picks["conflicting_duplicate"]:
        row = clean.iloc[i].copy()
        others = [r for r in rooms if r != row["room"]] or [row["room"] + "B"]
        row["room"] = others[int(rng.integers(len(others)))]
        extra.append((i + 0.5, row))
        records.append((i, "conflicting_duplicate", "room"))
    for i in picks["out_of_order"]:
        a, b = clean.iat[i, col["procedure_start"]], clean.iat[i, col["procedure_end"]]
        frame.iat[i, col["procedure_start"]], frame.iat[i, col["procedure_end"]] = b, a
        records.append((i, "out_of_order", "procedure_start,procedure_end"))
    for i in picks["impossible"]:
        t_in = datetime.strptime(clean.iat[i, col["in_room"]], TIMESTAMP_FORMAT)
        frame.iat[i, col["out_of_room"]] = (t_in + timedelta(hours=30)).strftime(TIMESTAMP_FORMAT)
        records.append((i, "impossible", "out_of_room"))
    for i in picks["unparseable"]:
        have = [c for c in MILESTONES if clean.iat[i, col[c]] != ""]
        c = have[int(rng.integers(len(have)))]
        frame.iat[i, col[c]] = _UNPARSEABLE[int(rng.integers(len(_UNPARSEABLE)))]
        records.append((i, "unparseable", c))

    if extra:
        pos = np.concatenate([np.arange(n, dtype=float), [p for p, _ in extra]])
        added = pd.DataFrame([r for _, r in extra], columns=list(COLUMNS))
        frame = pd.concat([frame, added], ignore_index=True)
        frame = frame.iloc[np.argsort(pos, kind="stable")].reset_index(drop=True)
    damaged = pd.DataFrame({
        "case_id": [str(clean.iat[i, col["case_id"]]) for i, _, _ in records],
        "kind": [k for _, k, _ in records],
        "column": [c for _, _, c in records],
    }, columns=list(DAMAGED_COLUMNS)).astype(object)
    return frame, damaged


# --- truth -------------------------------------------------------------------------------------


def _dist(d: Any) -> dict[str, Any]:
    return d.model_dump(mode="json", by_alias=True)


def _truth(scn: Scenario, weeks: int, seed: int, start: date, drift: Drift | None,
           drift_week: int, mess: Mess | None, damaged: pd.DataFrame,
           clean_rows: int) -> dict[str, Any]:
    """The JSON-able ground truth of a synthetic history."""
    factor = scn.stress.duration_factor
    procedures: dict[str, dict[str, Any]] = {}
    for svc in scn.services:
        for p in svc.procedures:
            procedures[p.id] = {
                "service": svc.id,
                "kind": p.duration.kind,
                "median": float(p.duration.ppf(0.5)) * factor,
                "sigma": getattr(p.duration, "sigma", None),
                "distribution": _dist(p.duration),
            }
    surgeons = {s.id: {"service": s.service, "speed": s.speed} for s in scn.surgeons}
    sp_median = {
        f"{s.id}|{p.id}": float(p.duration.ppf(0.5)) * s.speed * factor
        for s in scn.surgeons for p in scn.service(s.service).procedures
    }
    drift_truth = None
    if drift is not None:
        speed = surgeons[drift.surgeon]["speed"]
        drift_truth = {
            "surgeon": drift.surgeon, "week": drift_week,
            "date": (start + timedelta(days=7 * drift_week)).isoformat(),
            "factor": drift.factor, "speed_before": speed, "speed_after": speed * drift.factor,
            "in_history": drift_week < weeks,
        }
    dump = scn.model_dump(mode="json", by_alias=True)
    st = scn.stress
    addons = dict(dump["addons"])
    addons["per_day"] = scn.addons.per_day * st.addon_factor
    return {
        "seed": seed,
        "weeks": weeks,
        "start": start.isoformat(),
        "end": (start + timedelta(days=7 * weeks - 1)).isoformat(),
        "scenario": scn.name,
        "policy": POLICY,
        "procedures": procedures,
        "surgeons": surgeons,
        "surgeon_procedure_median": sp_median,
        "drift": drift_truth,
        "addons": addons,
        "cancellation_rate": {s.id: min(s.cancellation_rate * st.cancellation_factor, 1.0)
                              for s in scn.services},
        "electives_per_week": {s.id: s.electives_per_week for s in scn.services},
        "first_case_delay": dump["first_case_delay"],
        "turnover": dump["turnover"],
        "pacu_los": dump["pacu"]["los"],
        "phases": dump["phases"],
        "booking": dump["booking"],
        "stress": dump["stress"],
        "rows": clean_rows,
        "mess": None if mess is None else asdict(mess),
        "damaged": damaged.to_dict(orient="records"),
    }


# --- writing -----------------------------------------------------------------------------------


def truth_path(path: str | Path) -> Path:
    """The truth sidecar of a history file: ``<stem>.truth.json`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.truth.json")


def write_synth(hist: SynthHistory, path: str | Path) -> tuple[Path, Path]:
    """Write the history (CSV, or parquet for a ``.parquet`` suffix) and its truth sidecar,
    each atomically; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = hist.frame.loc[:, list(COLUMNS)].astype(object)
    if path.suffix.lower() == ".parquet":
        atomic_write(path, lambda p: frame.astype(str).to_parquet(p, index=False))
    else:
        atomic_write(path, lambda p: frame.to_csv(p, index=False))
    text = json.dumps(hist.truth, indent=2) + "\n"
    side = atomic_write(truth_path(path), lambda p: Path(p).write_text(text))
    return path, side


__all__ = [
    "DAMAGED_COLUMNS",
    "DEFAULT_DRIFT",
    "DEFAULT_MESS",
    "DEFAULT_SCENARIO",
    "Drift",
    "MESS_KINDS",
    "Mess",
    "SynthHistory",
    "inject_mess",
    "mess_rng",
    "synth_history",
    "truth_path",
    "write_synth",
]
