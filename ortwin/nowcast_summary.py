"""What a now-cast says: per-room and per-case forecasts, PACU by hour, alerts in plain words,
and the policy's day-of proposals, from the replications of :mod:`ortwin.nowcast`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ortwin.live import LiveState
from twin.restart import case_duration
from twin.snapshot import SuiteSnapshot

if TYPE_CHECKING:
    from ortwin.nowcast import Nowcast, NowcastEngine, RepDay

QUANTILES = (0.1, 0.5, 0.9)


def _q(x: np.ndarray) -> tuple[float, float, float]:
    if len(x) == 0 or np.all(np.isnan(x)):
        return (math.nan,) * 3  # type: ignore[return-value]
    a, b, c = np.nanquantile(x, QUANTILES)
    return float(a), float(b), float(c)


def _room_finish(live: LiveState, reps: list[RepDay], room: str) -> np.ndarray:
    """The room's last out-of-room minute in each replication (observed or simulated)."""
    seen = [c.at("out_of_room") for c in live.cases.values() if c.room == room]
    seen_last = max((t for t in seen if t is not None), default=-math.inf)
    out = np.full(len(reps), seen_last)
    for i, r in enumerate(reps):
        ts = [t for t, rm in r.out.values() if rm == room]
        if ts:
            out[i] = max(out[i], max(ts))
    out[np.isinf(out)] = np.nan
    return out


def summarise_nowcast(eng: NowcastEngine, live: LiveState, at: float, reps: list[RepDay],
                      stale: set[str]) -> Nowcast:
    """Frames, alerts and feed counts of a now-cast."""
    from ortwin.nowcast import Nowcast

    plan, cases = eng.plan, eng.cases
    n = len(reps)
    # --- cases
    crow = []
    for cid, c in cases.items():
        cl = live.cases[cid]
        t_out, t_in = cl.at("out_of_room"), cl.at("in_room")
        if cl.cancelled:
            status = "cancelled"
        elif t_out is not None:
            status = "done"
        elif t_in is not None:
            status = "in_room"
        else:
            status = "waiting"
        outs = np.array([r.out[cid][0] if cid in r.out else np.nan for r in reps]) \
            if status in ("in_room", "waiting") else np.full(n, t_out if t_out is not None else np.nan)
        starts = np.array([r.start.get(cid, np.nan) for r in reps]) if status == "waiting" \
            else np.full(n, t_in if t_in is not None else np.nan)
        p10, p50, p90 = _q(outs)
        crow.append({
            "case_id": cid, "room": cl.room, "service": c.service, "surgeon": c.surgeon,
            "procedure": c.procedure, "status": status, "planned_start": c.booked_start,
            "booked_minutes": c.booked_minutes, "in_room": t_in, "out_of_room": t_out,
            "start_p50": _q(starts)[1], "finish_p10": p10, "finish_p50": p50, "finish_p90": p90,
            "p_not_done": float(np.mean(np.isnan(outs))) if status in ("in_room", "waiting") else 0.0,
        })
    cdf = pd.DataFrame(crow)
    # --- rooms
    rrow, samples = [], {}
    for room in eng.scn.rooms:
        rid, r = room.id, live.rooms[room.id]
        w = eng.windows.get(rid)
        fin = samples[rid] = _room_finish(live, reps, rid)
        mine = cdf.loc[cdf["room"] == rid] if len(cdf) else cdf
        if w is None and not len(mine):
            continue
        close = w[1] if w else math.nan
        p10, p50, p90 = _q(fin)
        valid = ~np.isnan(fin)
        over = np.where(valid, np.maximum(fin - close, 0.0), np.nan) if w else np.full(n, np.nan)
        cur = live.cases.get(r.case_id or "")
        cur_row = cdf.loc[cdf["case_id"] == r.case_id].iloc[0] if cur is not None else None
        waiting = mine.loc[mine["status"] == "waiting"].sort_values("planned_start")
        nxt = waiting.iloc[0] if len(waiting) else None
        booked_end = float((mine["planned_start"] + mine["booked_minutes"]).max()) if len(mine) \
            else math.nan
        rrow.append({
            "room": rid, "state": r.state, "since": r.since, "stale": rid in stale,
            "last_seen": r.last_seen, "case_id": r.case_id,
            "procedure": cur.case_id and cases[cur.case_id].procedure if cur else None,
            "surgeon": cases[cur.case_id].surgeon if cur else None,
            "elapsed": at - cur.at("in_room") if cur and cur.at("in_room") is not None else math.nan,
            "remaining_p10": cur_row["finish_p10"] - at if cur_row is not None else math.nan,
            "remaining_p50": cur_row["finish_p50"] - at if cur_row is not None else math.nan,
            "remaining_p90": cur_row["finish_p90"] - at if cur_row is not None else math.nan,
            "next_case": nxt["case_id"] if nxt is not None else None,
            "next_planned": nxt["planned_start"] if nxt is not None else math.nan,
            "cases_left": int(len(waiting)), "cases_done": int((mine["status"] == "done").sum()),
            "open": w[0] if w else math.nan, "close": close, "booked_end": booked_end,
            "finish_p10": p10, "finish_p50": p50, "finish_p90": p90,
            "p_past_close": float(np.mean(fin[valid] > close + 1e-9)) if w and valid.any() else 0.0,
            "overtime_mean": float(np.nanmean(over)) if w and valid.any() else 0.0,
            "overtime_p90": _q(over)[2] if w and valid.any() else 0.0,
        })
    rdf = pd.DataFrame(rrow)
    pacu = _pacu_table(eng, at, reps)
    nc = Nowcast(at=at, plan=plan, rooms=rdf, cases=cdf, pacu=pacu, alerts=[],
                 proposals=pd.DataFrame(columns=PROPOSAL_COLUMNS), feed=live.counts(),
                 quarantine=pd.DataFrame(live.quarantine), reps=n, samples=samples,
                 resolutions=pd.DataFrame(live.resolutions))
    nc.alerts = alerts(eng, live, nc)
    return nc


def _pacu_table(eng: NowcastEngine, at: float, reps: list[RepDay]) -> pd.DataFrame:
    """PACU occupancy at each hour mark from now to midnight, and the chance of a hold (a
    patient waiting in the OR for a PACU bed) within the hour."""
    scn, plan = eng.scn, eng.plan
    first = math.ceil(at / 60) * 60
    hours = np.arange(first, plan.midnight + 1440, 60.0)
    p = scn.pacu
    wd = scn.weekday(plan.day)
    rows = []
    for h in hours:
        occ = np.array([sum(a <= h < b for a, b in r.pacu) for r in reps], dtype=float)
        hold = np.array([any(a < h + 60 and b > h for a, b in r.holds) for r in reps])
        mod = h - plan.midnight
        beds = p.open_beds(wd) if p.hours.start <= mod < p.hours.end else p.after_hours_beds
        rows.append({"hour": float(h), "occupancy_mean": float(occ.mean()) if len(occ) else 0.0,
                     "occupancy_p50": _q(occ)[1], "occupancy_p90": _q(occ)[2], "beds": beds,
                     "p_hold": float(hold.mean()) if len(hold) else 0.0})
    return pd.DataFrame(rows)


def _minutes(x: float) -> str:
    return f"{int(round(x))} min"


def alerts(eng: NowcastEngine, live: LiveState, nc: Nowcast) -> list[str]:
    """Plain-words alerts, most urgent first."""
    cfg, at, clock = eng.config, nc.at, nc.clock
    out: list[tuple[float, str]] = []
    for r in nc.rooms.itertuples(index=False):
        if r.stale:
            seen = f"since {clock(r.last_seen)}" if r.last_seen is not None and \
                not math.isnan(r.last_seen) else "all day"
            out.append((2.0, f"{r.room}: no live observation {seen} (stale feed): forecast falls "
                             "back to the plan from the last observation, band widened"))
        running = isinstance(r.case_id, str) or r.cases_left > 0
        if running and r.p_past_close >= cfg.alert_probability and not math.isnan(r.close):
            why = _why(eng, live, r, at)
            out.append((1.0 + r.p_past_close,
                        f"{r.room} will run past {clock(r.close)} with probability "
                        f"{r.p_past_close:.1f}{': ' + why if why else ''} (P50 finish "
                        f"{clock(r.finish_p50)}, P90 {clock(r.finish_p90)})"))
        if r.cases_done == 0 and not isinstance(r.case_id, str) and not math.isnan(r.next_planned) \
                and at > r.next_planned + 15:
            out.append((1.5, f"{r.room}: first case {r.next_case} planned {clock(r.next_planned)}"
                             f" has not started at {clock(at)} ({_minutes(at - r.next_planned)} late)"))
    for h in nc.pacu.itertuples(index=False):
        if h.p_hold >= cfg.pacu_hold_alert:
            out.append((1.0 + h.p_hold, f"PACU: a patient will likely wait in an OR for a bed "
                        f"{clock(h.hour)}-{clock(h.hour + 60)} (probability {h.p_hold:.1f}; "
                        f"{h.occupancy_mean:.1f} of {h.beds} beds expected in use)"))
            break
    bad = {k: v for k, v in nc.feed.items() if k not in ("applied", "resolved", "heartbeat")}
    if bad:
        parts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in bad.items())
        out.append((0.5, f"Feed: {sum(bad.values())} observation(s) quarantined ({parts})"))
    return [text for _, text in sorted(out, key=lambda x: -x[0])]


def _why(eng: NowcastEngine, live: LiveState, r, at: float) -> str:
    """Why a room runs long, in words: late start, over its P50, work still to come."""
    parts = []
    if isinstance(r.case_id, str):
        c = eng.cases[r.case_id]
        t_in = live.cases[r.case_id].at("in_room")
        if t_in is not None and t_in - c.booked_start >= 10:
            parts.append(f"case {r.case_id} started {_minutes(t_in - c.booked_start)} late")
        p50 = float(case_duration(eng.scn, c).ppf(0.5))
        if r.elapsed > p50:
            parts.append(f"{'is' if parts else f'case {r.case_id} is'} "
                         f"{_minutes(r.elapsed - p50)} over its P50")
    if r.cases_left:
        parts.append(f"{r.cases_left} case{'s' if r.cases_left > 1 else ''} still to come, "
                     f"booked to end {eng.plan.clock(r.booked_end)}")
    return " and ".join(parts[:2]) + (", " + parts[2] if len(parts) > 2 else "")


PROPOSAL_COLUMNS = ("room", "policy", "case_id", "to_room", "position", "start", "words")


def proposals(eng: NowcastEngine, live: LiveState, at: float, snap: SuiteSnapshot, nc: Nowcast,
              policy: str) -> pd.DataFrame:
    """The policy's day-of answer for each room likely to run past its staffed end: the moves
    it would make now (shown, never applied)."""
    from ortwin.registry import get_policy
    from policies.as_booked import AsBooked
    from twin.demand import Week
    from twin.model import SuiteModel

    long = nc.rooms.loc[(nc.rooms["p_past_close"] >= eng.config.alert_probability)
                        & nc.rooms["case_id"].notna()]
    rows = []
    if long.empty:
        return pd.DataFrame(columns=PROPOSAL_COLUMNS)
    pol = get_policy(policy, eng.scn)
    week = Week(cases=eng.cases, truth=dict(eng.truths[0]), first_case_delay={},
                random_downtime=[], background={})
    model = SuiteModel(eng.scn, AsBooked(), week, snapshot=snap)
    while model.env.peek() <= at:
        model.env.step()
    for r in long.itertuples(index=False):
        moves = list(pol.on_running_long(r.room, eng.cases[r.case_id], model) or [])
        if not moves:
            rows.append({"room": r.room, "policy": policy, "case_id": None, "to_room": None,
                         "position": None, "start": math.nan,
                         "words": f"{policy}: no move for {r.room} (nothing it can start sooner "
                                  "elsewhere)"})
        for mv in moves:
            c = eng.cases[mv.case_id]
            when = f" at {eng.plan.clock(mv.start)}" if mv.start is not None else ""
            rows.append({"room": r.room, "policy": policy, "case_id": mv.case_id,
                         "to_room": mv.room, "position": str(mv.position),
                         "start": mv.start if mv.start is not None else math.nan,
                         "words": f"{policy}: move case {mv.case_id} ({c.procedure}, "
                                  f"{c.surgeon}) from {c.booked_room} to {mv.room}{when}"})
    return pd.DataFrame(rows, columns=PROPOSAL_COLUMNS)
