"""Key performance indicators computed only from an event log, a cases frame and a context.

Nothing here knows the simulator: the same functions read real historical logs converted to the
event format of :mod:`twin.events`. A KPI whose inputs are missing from a log (no staff resource
events, no PACU milestones, ...) is NaN rather than an error.

Conventions: times are absolute minutes (day * 1440 + minute of day); a case's *room-day* is its
room and the day of its ``in_room``; the planned start (value of the last ``scheduled`` event, else
the cases frame ``booked_start``, read as a minute of ``booked_day`` when below 1440 on a later
day) is an absolute minute. Choices where the definitions leave room:

* in-room minutes outside the room's staffed windows are split in two: *overtime* (run-over)
  belongs to cases that overlap a staffed window — the day ran long; *after-hours* minutes
  belong to cases that lie wholly outside every staffed window — on-call emergency work.
  Overtime P90/max run over the staffed room-days only; the cost of overtime prices both;
* the first case of a room-day is its earliest scheduled elective (an add-on that goes in first
  is skipped; the elective it delays counts, late);
* hold, boarding and tray sums count only cases that need them (reached the OR / PACU as an
  inpatient or ICU patient / have trays); 0 when none does, NaN when some does but the log never
  records the milestones;
* ``fair_overtime_share_gap`` is 0 when there is no overtime at all.
* a turnover is an out-of-room to next in-room gap of a room-day (0 to ``turnover_max``) before a
  case that was ready as the room came free (planned start less the early-start allowance
  reached, or an add-on already requested): waiting for a later planned start is idle time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.events import CASE_MILESTONES
from twin.kpi_registry import DAY, KPIS, KpiContext, KpiDef, kpi_def, room_days_from_events

__all__ = ["KPIS", "KpiContext", "KpiDef", "case_table", "compute_kpis", "kpi_def", "measure",
           "room_day_table", "room_days_from_events", "service_table"]
_NAMES: tuple[str, ...] = CASE_MILESTONES + ("cancelled", "not_started")
_CODE = {name: i for i, name in enumerate(_NAMES)}
_NAN = math.nan


_ATTRS = ("service", "surgeon", "patient_class", "trays", "is_addon", "arrival",
          "booked_start", "booked_day")


@dataclass
class _Log:
    """The columns of an events frame as numpy arrays, rows in time order."""

    time: np.ndarray
    code: np.ndarray          # index into _NAMES, or -1
    event: np.ndarray
    case_id: np.ndarray
    room: np.ndarray
    resource: np.ndarray
    value: np.ndarray
    detail: np.ndarray


def _log(events: pd.DataFrame) -> _Log:
    if not events["time"].is_monotonic_increasing:
        events = events.sort_values("time", kind="stable")
    ev_codes, uniques = pd.factorize(events["event"])
    lookup = np.array([_CODE.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
    return _Log(
        time=events["time"].to_numpy(float), code=lookup[ev_codes],
        event=np.append(np.asarray(uniques, dtype=object), None).take(ev_codes),
        case_id=events["case_id"].to_numpy(object), room=events["room"].to_numpy(object),
        resource=events["resource"].to_numpy(object), value=events["value"].to_numpy(float),
        detail=events["detail"].to_numpy(object),
    )


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    if len(values) == n:
        return values
    if values.dtype.kind == "f":
        return np.concatenate([values, np.full(n - len(values), _NAN)])
    return np.concatenate([values.astype(object), np.full(n - len(values), None, dtype=object)])


def _case_arrays(log: _Log, cases: pd.DataFrame, attrs: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """Column arrays of :func:`case_table`; ``attrs``: cases-frame columns to carry (None: all)."""
    keep = (log.code >= 0) & (log.case_id != "") & pd.notna(log.case_id)
    cid, code, time = log.case_id[keep], log.code[keep], log.time[keep]
    room, value, detail = log.room[keep], log.value[keep], log.detail[keep]
    known = cases["case_id"].to_numpy(object) if "case_id" in cases else np.zeros(0, object)
    codes, ids = pd.factorize(np.concatenate([known, cid]))
    kc, ci = codes[: len(known)], codes[len(known):]
    _, rows = np.unique(kc, return_index=True)
    rows = rows[kc[rows] >= 0]  # first row of each known case, in code order
    n, k = len(ids), len(_NAMES)

    grid = np.full(n * k, _NAN)
    first_key, first = np.unique(ci * k + code, return_index=True)
    grid[first_key] = time[first]
    grid = grid.reshape(n, k)
    out: dict[str, np.ndarray] = {"case_id": np.asarray(ids, dtype=object)}
    for j, name in enumerate(_NAMES):
        out[name] = grid[:, j]

    def pick(name: str, last: bool = False) -> np.ndarray:
        at = np.flatnonzero(code == _CODE[name])
        at = at[::-1] if last else at
        return at[np.unique(ci[at], return_index=True)[1]]

    sched = pick("scheduled", last=True)
    out["scheduled"] = out["scheduled"].copy()
    out["scheduled"][ci[sched]] = time[sched]
    planned = np.full(n, _NAN)
    planned[ci[sched]] = value[sched]
    rooms = np.full(n, "", dtype=object)
    rooms[ci[sched]] = room[sched]
    inr = pick("in_room")
    inr = inr[(room[inr] != "") & pd.notna(room[inr])]
    rooms[ci[inr]] = room[inr]
    rooms[pd.isna(rooms)] = ""
    reason = np.full(n, "", dtype=object)
    canc = pick("cancelled")
    reason[ci[canc]] = detail[canc]

    cols = [c for c in (cases.columns if attrs is None else attrs) if c in cases and c != "case_id"]
    for col in cols:
        out.setdefault(col, _pad(cases[col].to_numpy()[rows], n))
    if "booked_start" in out:
        bs = _num(out["booked_start"])
        bd = np.nan_to_num(_num(out["booked_day"])) if "booked_day" in out else np.zeros(n)
        bs = np.where((bs < DAY) & (bd >= 1), bd * DAY + bs, bs)  # minute-of-day convention
        planned = np.where(np.isnan(planned), bs, planned)
    out.update(planned_start=planned, room=rooms, cancel_reason=reason)
    return out


def _num(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=float)


def _text(values: np.ndarray) -> np.ndarray:
    return np.where(pd.isna(values), "", values).astype(object)


def case_table(events: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """One row per case: first time of each milestone (``scheduled``: the last), ``cancelled``,
    ``not_started``, ``planned_start``, ``room``, ``cancel_reason`` and the cases-frame columns."""
    return pd.DataFrame(_case_arrays(_log(events), cases, None))


# --- shared preparation -----------------------------------------------------------------------


@dataclass
class _Prep:
    log: _Log
    c: dict[str, np.ndarray]  # case arrays (see case_table)
    t_in: np.ndarray          # in_room per case
    dur: np.ndarray           # in-room minutes (NaN when in or out is missing)
    within: np.ndarray        # in-room minutes inside a staffed window of the case's room
    over: np.ndarray          # run-over: dur - within, for cases overlapping a staffed window
    after: np.ndarray         # after-hours: dur, for cases wholly outside staffed windows
    rd_key: np.ndarray        # room-day key of each case (-1 when it never got in room)
    keys: np.ndarray          # sorted unique keys of all room-days (staffed or used)
    staffed_key: np.ndarray   # sorted unique keys of staffed room-days
    rd_staffed: np.ndarray    # staffed minutes per key
    rd_close: np.ndarray      # latest close per key (NaN for unstaffed)
    staffed_total: float      # staffed minutes of the union of windows
    room_names: np.ndarray
    day0: int
    ndays: int


def _prepare(events: pd.DataFrame, cases: pd.DataFrame, ctx: KpiContext) -> _Prep:
    log = _log(events)
    c = _case_arrays(log, cases, _ATTRS)
    rd = ctx.room_days
    t_in, t_out = c["in_room"], c["out_of_room"]
    ok = ~np.isnan(t_in) & ~np.isnan(t_out)
    codes, names = pd.factorize(np.concatenate([rd["room"].to_numpy(object), c["room"]]))
    wcode, ccode = codes[: len(rd)], codes[len(rd):]
    w_open, w_close = rd["open"].to_numpy(float), rd["close"].to_numpy(float)

    # merge each room's windows, then lay rooms side by side on one line spaced by `span`
    allt = np.concatenate([w_open, w_close, t_in[ok], t_out[ok], [0.0]])
    lo = float(allt.min())
    span = float(allt.max()) - lo + 2.0
    so, sc = w_open - lo + wcode * span, w_close - lo + wcode * span
    order = np.argsort(so, kind="stable")
    so, sc = so[order], sc[order]
    new = np.ones(len(so), bool)
    new[1:] = so[1:] > np.maximum.accumulate(sc)[:-1]
    starts = so[new]
    lens = (np.maximum.reduceat(sc, np.flatnonzero(new)) if len(so) else sc) - starts
    before = np.cumsum(lens) - lens

    def staffed_upto(q: np.ndarray) -> np.ndarray:
        """Staffed minutes of the (shifted) line before ``q``."""
        if not len(starts):
            return np.zeros_like(q)
        i = np.searchsorted(starts, q, side="right") - 1
        j = np.maximum(i, 0)
        return np.where(i >= 0, before[j] + np.clip(q - starts[j], 0.0, lens[j]), 0.0)

    base = ccode * span - lo
    dur = np.where(ok, t_out - t_in, _NAN)
    within = np.where(ok, staffed_upto(np.nan_to_num(t_out) + base)
                      - staffed_upto(np.nan_to_num(t_in) + base), _NAN)

    # room-day keys: room code * ndays + (day - day0)
    w_day = rd["day"].to_numpy(np.int64)
    has_in = ~np.isnan(t_in)
    c_day = np.floor(np.nan_to_num(t_in) / DAY).astype(np.int64)
    days = np.concatenate([w_day, c_day[has_in], [0]])
    day0, ndays = int(days.min()), int(days.max() - days.min() + 1)
    w_key = wcode * ndays + (w_day - day0)
    rd_key = np.where(has_in, ccode * ndays + (c_day - day0), -1)
    staffed_key = np.unique(w_key)
    keys = np.union1d(staffed_key, rd_key[has_in])
    pos = np.searchsorted(keys, w_key)
    rd_staffed = np.bincount(pos, weights=w_close - w_open, minlength=len(keys))
    rd_close = np.full(len(keys), -np.inf)
    np.maximum.at(rd_close, pos, w_close)
    rd_close[np.isinf(rd_close)] = _NAN
    inside = within > 1e-9
    over = np.where(inside, dur - within, np.where(ok, 0.0, _NAN))
    after = np.where(ok & ~inside, dur, np.where(ok, 0.0, _NAN))
    return _Prep(log, c, t_in, dur, within, over, after, rd_key, keys, staffed_key, rd_staffed,
                 rd_close, float(lens.sum()), np.asarray(names, object), day0, ndays)


def _rd_sum(p: _Prep, values: np.ndarray) -> np.ndarray:
    ok = p.rd_key >= 0
    return np.bincount(np.searchsorted(p.keys, p.rd_key[ok]),
                       weights=np.nan_to_num(values[ok]), minlength=len(p.keys))


def _first_cases(p: _Prep) -> tuple[np.ndarray, np.ndarray]:
    """Room-day key and (in_room - planned start) of the first scheduled elective of each
    room-day (an add-on that goes in first does not count; the elective it delays does)."""
    planned = p.c["planned_start"]
    flag = p.c.get("is_addon")
    addon = (np.zeros(len(planned), bool) if flag is None
             else np.where(pd.isna(flag), False, flag).astype(bool))
    ok = (p.rd_key >= 0) & ~np.isnan(planned) & ~addon
    key, t_in, pl = p.rd_key[ok], p.t_in[ok], planned[ok]
    order = np.lexsort((t_in, key))
    ukey, first = np.unique(key[order], return_index=True)
    i = order[first]
    return ukey, t_in[i] - pl[i]


def room_day_table(events: pd.DataFrame, cases: pd.DataFrame, ctx: KpiContext) -> pd.DataFrame:
    """One row per room-day (staffed, or with in-room time): staffed, used (within staffed) and
    overtime minutes, cases started, and how late the first planned case came in."""
    return _room_days(_prepare(events, cases, ctx))


def _room_days(p: _Prep) -> pd.DataFrame:
    late = np.full(len(p.keys), _NAN)
    fkey, delay = _first_cases(p)
    late[np.searchsorted(p.keys, fkey)] = np.maximum(delay, 0.0)
    return pd.DataFrame({
        "room": p.room_names[p.keys // p.ndays],
        "day": (p.keys % p.ndays + p.day0).astype(np.int64),
        "staffed_minutes": p.rd_staffed,
        "used_minutes": _rd_sum(p, p.within),
        "overtime_minutes": _rd_sum(p, p.over),
        "after_hours_minutes": _rd_sum(p, p.after),
        "cases": _rd_sum(p, np.ones(len(p.rd_key))).astype(np.int64),
        "first_case_late_minutes": late,
    })


# --- per service ------------------------------------------------------------------------------


def _services(p: _Prep, ctx: KpiContext) -> dict[str, np.ndarray]:
    """Per-service arrays of :func:`service_table` (context services first, then others)."""
    c = p.c
    n = len(c["case_id"])
    svc = _text(c["service"]) if "service" in c else np.full(n, "", object)
    seen = [s for s in pd.unique(svc) if s != "" and s not in ctx.services]
    names = np.array(list(ctx.services) + sorted(map(str, seen)), dtype=object)
    idx = pd.Index(names).get_indexer(svc) if len(names) else np.full(n, -1)
    has = idx >= 0
    m = len(names)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(idx[has & mask], minlength=m).astype(float)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(idx[has], weights=np.nan_to_num(values[has]), minlength=m)

    done, canc = _completed(c), ~np.isnan(c["cancelled"])
    started_done = done & ~np.isnan(p.t_in)
    mod = np.mod(p.t_in, DAY)
    prime = started_done & (mod >= ctx.prime_time[0]) & (mod < ctx.prime_time[1])
    decided = count(done) + count(canc) + count(~np.isnan(c["not_started"]))
    n_start = count(started_done)
    in_room, over = total(p.dur), total(p.over)
    tot_in, tot_over = in_room.sum(), over.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "service": names,
            "cases": count(np.ones(n, bool)).astype(np.int64),
            "completed": count(done).astype(np.int64),
            "cancelled": count(canc).astype(np.int64),
            "cancellation_rate": np.where(decided > 0, count(canc) / decided, _NAN),
            "prime_start_share": np.where(n_start > 0, count(prime) / n_start, _NAN),
            "in_room_minutes": in_room,
            "overtime_minutes": over,
            "in_room_share": in_room / tot_in if tot_in > 0 else np.full(m, _NAN),
            "overtime_share": over / tot_over if tot_over > 0 else np.full(m, _NAN),
        }


def service_table(events: pd.DataFrame, cases: pd.DataFrame, ctx: KpiContext) -> pd.DataFrame:
    """Per service: cases, completed, cancelled, cancellation rate, share of completed cases
    starting in prime time, in-room and overtime minutes and shares of the totals."""
    return pd.DataFrame(_services(_prepare(events, cases, ctx), ctx))


# --- KPIs -------------------------------------------------------------------------------------


def _pct(values: np.ndarray, q: float) -> float:
    v = values[~np.isnan(values)]
    return float(np.percentile(v, q)) if len(v) else _NAN


def _mean(values: np.ndarray) -> float:
    v = values[~np.isnan(values)]
    return float(v.mean()) if len(v) else _NAN


def _gap(values: np.ndarray) -> float:
    v = values[~np.isnan(values)]
    return float(v.max() - v.min()) if len(v) else _NAN


def _excess_integrals(log: _Log) -> dict[str, float]:
    """Per ``staff:*`` resource: integral of max(0, level - capacity) over time, both step
    functions starting at 0."""
    sel = np.flatnonzero(((log.event == "level") | (log.event == "capacity"))
                         & (log.resource != "") & pd.notna(log.resource))
    if not len(sel):
        return {}
    codes, names = pd.factorize(log.resource[sel])
    t = log.time[sel]
    order = np.lexsort((t, codes))
    sel, codes, t = sel[order], codes[order], t[order]
    v, is_level = log.value[sel], log.event[sel] == "level"
    start = np.ones(len(t), bool)
    start[1:] = codes[1:] != codes[:-1]
    idx = np.arange(len(t))

    def ffill(mask: np.ndarray) -> np.ndarray:
        vals = np.where(mask, v, _NAN)
        vals = np.where(start & np.isnan(vals), 0.0, vals)
        return vals[np.maximum.accumulate(np.where(np.isnan(vals), 0, idx))]

    excess = np.maximum(ffill(is_level) - ffill(~is_level), 0.0)
    dt = np.zeros(len(t))
    dt[:-1] = np.where(start[1:], 0.0, t[1:] - t[:-1])
    sums = np.bincount(codes, weights=excess * dt, minlength=len(names))
    return {str(nm): float(s) for nm, s in zip(names, sums, strict=True)}


def _pacu_peak(p: _Prep) -> float:
    log = p.log
    lvl = log.value[(log.resource == "pacu") & (log.event == "level")]
    if (~np.isnan(lvl)).any():
        return float(np.nanmax(lvl))
    t_in, t_out = p.c["pacu_in"], p.c["pacu_out"]
    has_in = ~np.isnan(t_in)
    if not has_in.any():
        return _NAN
    t_out = t_out[has_in & ~np.isnan(t_out)]
    times = np.concatenate([t_in[has_in], t_out])
    step = np.concatenate([np.ones(int(has_in.sum())), -np.ones(len(t_out))])
    order = np.lexsort((step, times))  # departures before arrivals at the same minute
    return float(max(np.cumsum(step[order]).max(), 0.0))


def _completed(c: dict[str, np.ndarray]) -> np.ndarray:
    """Cases that finished: through PACU, or (a log without PACU times) out of the room with no
    other terminal event."""
    out = ~np.isnan(c["out_of_room"]) & np.isnan(c["cancelled"]) & np.isnan(c["not_started"])
    return ~np.isnan(c["pacu_out"]) | out & np.isnan(c["pacu_in"])


def _durations(c: dict[str, np.ndarray], start: str, end: str, applies: np.ndarray) -> np.ndarray:
    """``end - start`` (clipped at 0) of applicable cases having both; ``[nan]`` when the log
    never records one of the milestones although some case needs it."""
    a, b = c[start], c[end]
    if not applies.any():
        return np.zeros(0)
    if np.isnan(a).all() or np.isnan(b).all():
        return np.full(1, _NAN)
    d = (b - a)[applies]
    return np.maximum(d[~np.isnan(d)], 0.0)


def _surgeon_idle(c: dict[str, np.ndarray]) -> float:
    ps, pe = c["procedure_start"], c["procedure_end"]
    if "surgeon" not in c or np.isnan(ps).all():
        return _NAN
    surgeon = _text(c["surgeon"])
    ok = ~np.isnan(ps) & (surgeon != "")
    code = pd.factorize(surgeon[ok])[0]
    ps, pe = ps[ok], pe[ok]
    day = np.floor(ps / DAY)
    order = np.lexsort((ps, day, code))
    code, day, ps, pe = code[order], day[order], ps[order], pe[order]
    gap = ps[1:] - pe[:-1]
    same = (code[1:] == code[:-1]) & (day[1:] == day[:-1]) & (gap > 0)
    return float(gap[same].sum())


def measure(events: pd.DataFrame, cases: pd.DataFrame, ctx: KpiContext
            ) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """KPIs, room-day table and service table of one log, preparing the log only once."""
    p = _prepare(events, cases, ctx)
    return _kpis(p, ctx), _room_days(p), pd.DataFrame(_services(p, ctx))


def compute_kpis(events: pd.DataFrame, cases: pd.DataFrame, ctx: KpiContext) -> dict[str, float]:
    """All KPIs of one replication (or one real period) as floats, in registry order (NaN where
    the log lacks the data)."""
    return _kpis(_prepare(events, cases, ctx), ctx)


def _turnover_gaps(p: _Prep, ctx: KpiContext) -> np.ndarray:
    """Out-of-room to next in-room gaps within a room-day (0 to ``turnover_max``) where the next
    case was ready as the room came free: an elective whose planned start less the early-start
    allowance had come, an add-on already requested (unknown times count as ready). A gap
    before a case that was not yet due is idle time (waiting for its planned start), not
    turnover; calibration fits turnover from the same gaps."""
    c = p.c
    ok = p.rd_key >= 0
    planned = c["planned_start"]
    flag = c.get("is_addon")
    addon = (np.zeros(len(planned), bool) if flag is None
             else np.where(pd.isna(flag), False, flag).astype(bool))
    arrival = _num(c["arrival"]) if "arrival" in c else np.full(len(planned), _NAN)
    due = np.where(addon, arrival, planned - ctx.early_start)
    key, t_i, t_o, due = p.rd_key[ok], p.t_in[ok], c["out_of_room"][ok], due[ok]
    order = np.lexsort((t_i, key))
    key, t_i, t_o, due = key[order], t_i[order], t_o[order], due[order]
    gap = t_i[1:] - t_o[:-1]
    ready = np.isnan(due[1:]) | (due[1:] <= t_o[:-1] + 1e-9)
    return gap[(key[1:] == key[:-1]) & (gap >= 0) & (gap <= ctx.turnover_max) & ready]


def _kpis(p: _Prep, ctx: KpiContext) -> dict[str, float]:
    c = p.c
    n = len(c["case_id"])
    k: dict[str, float] = {}
    used, over = float(np.nansum(p.within)), float(np.nansum(p.over))
    k["utilisation"] = used / p.staffed_total if p.staffed_total > 0 else _NAN
    k["overtime_minutes"] = over
    after = float(np.nansum(p.after))
    k["after_hours_minutes"] = after
    k["out_of_hours_minutes"] = over + after
    rd_over = _rd_sum(p, p.over)[np.searchsorted(p.keys, p.staffed_key)]
    k["overtime_p90_room_day"] = _pct(rd_over, 90)
    k["overtime_max_room_day"] = float(rd_over.max()) if len(rd_over) else _NAN

    staff = _excess_integrals(p.log)
    for role in ctx.roles:
        k[f"staff_overtime_{role}"] = staff.get(f"staff:{role}", _NAN)

    delay = _first_cases(p)[1]
    k["first_case_on_time_rate"] = float(np.mean(delay <= ctx.on_time_grace)) if len(delay) else _NAN

    t_out = c["out_of_room"]
    ok = p.rd_key >= 0
    gaps = _turnover_gaps(p, ctx)
    k["turnover_mean"] = float(gaps.mean()) if len(gaps) else _NAN
    k["turnover_p90"] = _pct(gaps, 90)

    done = _completed(c)
    n_done = float(done.sum())
    n_canc = float((~np.isnan(c["cancelled"])).sum())
    n_ns = float((~np.isnan(c["not_started"])).sum())
    k["cases_completed"], k["cases_cancelled"] = n_done, n_canc
    k["cancellation_rate"] = n_canc / (n_done + n_canc + n_ns) if n_done + n_canc + n_ns else _NAN
    k["cases_not_started"] = n_ns
    close = np.full(n, _NAN)
    close[ok] = p.rd_close[np.searchsorted(p.keys, p.rd_key[ok])]
    k["cases_run_over"] = float((done & ok & ~np.isnan(t_out) & ~(t_out <= close)).sum())

    if "is_addon" in c:
        addon = np.where(pd.isna(c["is_addon"]), False, c["is_addon"]).astype(bool)
        arrival = _num(c["arrival"]) if "arrival" in c else np.full(n, _NAN)
        wait = (p.t_in - np.where(np.isnan(arrival), c["booked"], arrival))[addon]
        k["addon_cases"] = float(addon.sum())
        k["addon_wait_mean"], k["addon_wait_p90"] = _mean(wait), _pct(wait, 90)
    else:
        k["addon_cases"] = k["addon_wait_mean"] = k["addon_wait_p90"] = _NAN

    hold = _durations(c, "pacu_requested", "out_of_room", ~np.isnan(t_out))
    k["pacu_hold_minutes"] = float(hold.sum())
    k["pacu_hold_cases"] = float((hold > 0.5).sum()) if not np.isnan(hold).any() else _NAN
    k["pacu_peak_occupancy"] = _pacu_peak(p)
    needs_bed = ~np.isnan(c["pacu_in"]) | ~np.isnan(c["pacu_ready"]) | done
    if "patient_class" in c and (_text(c["patient_class"]) != "").any():
        needs_bed &= np.isin(_text(c["patient_class"]), ("inpatient", "icu"))
    k["boarding_hours"] = float(_durations(c, "pacu_ready", "bed_assigned", needs_bed).sum()) / 60
    needs_tray = ~np.isnan(p.t_in)
    if "trays" in c:
        needs_tray &= _text(c["trays"]) != ""
    k["tray_wait_minutes"] = float(_durations(c, "trays_requested", "trays_ready", needs_tray).sum())
    k["surgeon_idle_minutes"] = _surgeon_idle(c)

    idle = p.staffed_total - used
    k["idle_minutes"] = idle
    k["cost_idle"] = idle * ctx.idle_cost_per_min
    k["cost_overtime"] = (over + after) * ctx.overtime_cost_per_min
    k["cost_total"] = k["cost_idle"] + k["cost_overtime"]

    svc = _services(p, ctx)
    k["fair_prime_share_gap"] = _gap(svc["prime_start_share"])
    active = svc["in_room_minutes"] > 0
    if not active.any():
        k["fair_overtime_share_gap"] = _NAN
    elif over <= 0:
        k["fair_overtime_share_gap"] = 0.0
    else:
        k["fair_overtime_share_gap"] = _gap((svc["overtime_share"] - svc["in_room_share"])[active])
    k["fair_cancel_rate_gap"] = _gap(svc["cancellation_rate"])
    ev = p.log.event
    k["plan_fallbacks"] = float(np.sum(ev == "plan_fallback"))
    k["rule_violations"] = float(np.sum(ev == "rule_violation"))
    k["rule_overrides"] = float(np.sum(ev == "rule_override"))
    return k
