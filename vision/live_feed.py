"""A simulated day as the ceiling cameras would report it: each room's true timeline rendered
to video (a held-out set-up per room), read back, classified by the camera model, smoothed by
the temporal layer, and written as feed observations (room states and milestones without case
ids, with a heartbeat every 5 minutes) — the camera's mistakes included."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np

from twin.feed import Observation
from twin.sim_feed import SimDay
from vision.evaluate import watched_video
from vision.runtime import StateModel
from vision.temporal import TemporalConfig, changes, observations, smooth
from vision.timeline import room_timeline


def camera_feed(sim: SimDay, model: StateModel, seed: int, seconds_per_frame: float = 20.0,
                size: int = 224, shift: bool = False) -> list[Observation]:
    """Camera observations of every room of the plan (from an hour before it opens to three
    hours after it closes), in time order."""
    from vision.render import Setup

    plan = sim.plan
    wd = sim.scenario.weekday(plan.day)
    day0 = dt.datetime.combine(plan.date, dt.time(), dt.UTC)
    cfg = TemporalConfig(fps=1.0 / seconds_per_frame)
    ss = np.random.SeedSequence([seed, 0xCA3, int(shift)])
    out: list[Observation] = []
    rooms = [r for r in sim.scenario.rooms if r.hours.get(wd) is not None  # type: ignore[call-overload]
             and r.id in set(plan.cases["room"])]
    with tempfile.TemporaryDirectory() as tmp:
        for room, child in zip(rooms, ss.spawn(len(rooms)), strict=True):
            rng = np.random.default_rng(child)
            w = room.hours[wd]  # type: ignore[index]
            start, end = plan.midnight + w.start - 60.0, plan.midnight + w.end + 180.0
            tl = room_timeline(sim.events, room.id, start, end)
            written, probs = watched_video(model, tl, Setup.sample(rng, shift=shift),
                                            Path(tmp) / f"{room.id}.avi",
                                            int(rng.integers(2**31)), start, end,
                                            seconds_per_frame, size)
            times = [(m - start) * 60.0 for _, m, _ in written]
            t0 = day0 + dt.timedelta(minutes=start - plan.midnight)
            sid = f"cam-{room.id.lower()}"
            out += observations(changes(smooth(times, probs, cfg)), room.id, t0, sid,
                                f"model {model.path.name}")
            for m in np.arange(0.0, end - start, 5.0):
                out.append(Observation(time=t0 + dt.timedelta(minutes=float(m)), room=room.id,
                                       kind="source_status", value="live", source="camera",
                                       source_id=sid))
    out.sort(key=lambda o: o.time)
    return out
