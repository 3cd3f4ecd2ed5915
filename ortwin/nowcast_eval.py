"""How good the now-cast is: each room's last out-of-room time forecast at fixed hours of a day,
scored against what happened, beside two baselines.

- **now-cast**: the live state at the hour, replications to the end of the day;
- **booked**: the plan's booked end of the room (booked start + booked minutes of its last case);
- **twin**: the twin run from the start of the day with no live state (same replications).

A room is scored at an hour if its day has not ended by then (its actual last patient left after
the hour). MAE is of the P50; CRPS (continuous ranked probability score, minutes) of the whole
sample (of a point forecast it equals the absolute error). Coverage: share of actuals inside
the now-cast's P10-P90 (``inside``; the twin's band: ``inside_twin``; the booked schedule is a
point and has none). One hour before each room's staffed end, the now-cast says the room
will run past it when the probability is at least one half: accuracy, recall and precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ortwin.live import LiveConfig, live_state
from ortwin.nowcast import NowcastConfig, NowcastEngine
from twin.dayplan import DayPlan
from twin.feed import Observation

HOURS: tuple[int, ...] = (9, 11, 13, 15)


def crps(samples: np.ndarray, y: float) -> float:
    """CRPS of an ensemble against the outcome ``y``: E|X - y| - E|X - X'| / 2."""
    x = np.sort(np.asarray(samples, float))
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan
    i = np.arange(1, n + 1)
    spread = 2.0 * np.sum(x * (2 * i - n - 1)) / (n * n)
    return float(np.mean(np.abs(x - y)) - 0.5 * spread)


def score_day(scn, plan: DayPlan, observations: Sequence[Observation],
              actual: dict[str, float], hours: Sequence[int] = HOURS, reps: int = 200,
              seed: int = 20260, config: LiveConfig | None = None, label: str = "",
              min_sigma: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score one day: a row per (hour, room) still running, and a row per room for the
    one-hour-ahead overrun call."""
    engine = NowcastEngine(scn, plan, NowcastConfig(reps=reps, seed=seed, min_sigma=min_sigma))
    rooms = [r.id for r in engine.scn.rooms]
    booked = (plan.cases["booked_start"] + plan.cases["booked_minutes"]).groupby(
        plan.cases["room"]).max().to_dict()
    start = float(plan.cases["booked_start"].min()) - 60
    twin = engine.forecast(live_state(plan, rooms, [], until=start, config=config), start)
    rows = []
    for h in hours:
        at = plan.midnight + h * 60
        live = live_state(plan, rooms, list(observations), until=at, config=config)
        nc = engine.forecast(live, at)
        for r in nc.rooms.itertuples(index=False):
            y = actual.get(r.room)
            if y is None or y <= at or r.room not in booked:
                continue
            s_now, s_twin = nc.samples[r.room], twin.samples[r.room]
            t10, t90 = np.nanquantile(s_twin, (0.1, 0.9))
            rows.append({
                "day": label, "hour": h, "room": r.room, "actual": y, "stale": r.stale,
                "state": r.state, "elapsed": r.elapsed,
                "now_p10": r.finish_p10, "now_p50": r.finish_p50, "now_p90": r.finish_p90,
                "booked": booked[r.room], "twin_p50": float(np.nanmedian(s_twin)),
                "crps_now": crps(s_now, y), "crps_twin": crps(s_twin, y),
                "crps_booked": abs(booked[r.room] - y),
                "inside": bool(r.finish_p10 <= y <= r.finish_p90),
                "twin_p10": float(t10), "twin_p90": float(t90),
                "inside_twin": bool(t10 <= y <= t90)})
    over = []
    for rid, (_, close) in engine.windows.items():
        y = actual.get(rid)
        if y is None or rid not in booked or close - 60 >= y:
            continue  # the room's day was over an hour before its staffed end
        at = close - 60
        live = live_state(plan, rooms, list(observations), until=at, config=config)
        nc = engine.forecast(live, at)
        row = nc.rooms.set_index("room").loc[rid]
        over.append({"day": label, "room": rid, "close": close, "actual": y,
                     "p_past": float(row["p_past_close"]), "said": bool(row["p_past_close"] >= 0.5),
                     "ran_past": bool(y > close)})
    return pd.DataFrame(rows), pd.DataFrame(over)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per hour: rooms scored, MAE of now-cast/booked/twin P50, CRPS of each, P10-P90 coverage."""
    if scores.empty:
        return pd.DataFrame()
    g = scores.assign(ae_now=(scores["now_p50"] - scores["actual"]).abs(),
                      ae_booked=(scores["booked"] - scores["actual"]).abs(),
                      ae_twin=(scores["twin_p50"] - scores["actual"]).abs()).groupby("hour")
    return pd.DataFrame({
        "rooms": g.size(), "mae_now": g["ae_now"].mean(), "mae_booked": g["ae_booked"].mean(),
        "mae_twin": g["ae_twin"].mean(), "crps_now": g["crps_now"].mean(),
        "crps_booked": g["crps_booked"].mean(), "crps_twin": g["crps_twin"].mean(),
        "coverage": g["inside"].mean()}).reset_index()


def same_rooms(scores: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary` of only the room-days still running at the last hour, at every hour (the
    same rooms throughout, so the hours compare like with like)."""
    if scores.empty:
        return pd.DataFrame()
    last = scores.loc[scores["hour"] == scores["hour"].max(), ["day", "room"]]
    keep = scores.merge(last, on=["day", "room"])
    return summary(keep)


def overrun_summary(over: pd.DataFrame) -> dict[str, float]:
    """Accuracy, recall and precision of the one-hour-ahead "will run past staffed end" call."""
    if over.empty:
        return {"rooms": 0, "accuracy": math.nan, "recall": math.nan, "precision": math.nan}
    said, ran = over["said"].astype(bool), over["ran_past"].astype(bool)
    tp = int((said & ran).sum())
    return {"rooms": int(len(over)), "ran_past": int(ran.sum()),
            "accuracy": float((said == ran).mean()),
            "recall": tp / int(ran.sum()) if ran.any() else math.nan,
            "precision": tp / int(said.sum()) if said.any() else math.nan}
