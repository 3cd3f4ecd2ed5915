"""Now-cast accuracy on simulated days where the truth is known: the baseline scenario's
weekdays (as-booked, no add-ons, so the plan holds every case), fed once with perfect room
states and milestones (what a perfect camera would send: no case ids) and once with what the
camera model reports from rendered video (vision.live_feed); both with the booking system's
day-of cancellations. A third run feeds the perfect EHR (milestones with case ids). Same scores
as bench/nowcast_accuracy.py (ortwin.nowcast_eval). Needs the vision extra (onnxruntime, OpenCV);
rendering takes a few minutes a day on 2 cores.

    python bench/nowcast_accuracy_sim.py [--days 3] [--reps 200] [--json out/nowcast/accuracy_sim.json]
    python bench/nowcast_accuracy_sim.py --days 20 --no-camera   # perfect feeds only, quick
    python bench/nowcast_accuracy_sim.py --record tests/golden/nowcast_sim   # golden feed files
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from common import write_json

ROOT = Path(__file__).resolve().parents[1]
SEED = 11


def sim_scenario():
    """The baseline scenario without add-ons."""
    from twin.scenario import load_scenario

    scn = load_scenario(ROOT / "scenarios/baseline.yaml")
    return scn.model_copy(update={"addons": scn.addons.model_copy(update={"per_day": 0.0})})


def sim_day(k: int):
    """Simulated day ``k``: weekday 1 + k mod 4 of replication k (as-booked)."""
    from policies.as_booked import AsBooked
    from twin.sim_feed import simulate_day

    return simulate_day(sim_scenario(), 1 + k % 4, SEED, k, lambda scn: AsBooked())


def main(argv: list[str] | None = None) -> int:
    from ortwin.nowcast_eval import overrun_summary, same_rooms, score_day, summary
    from twin.dayplan import write_plan
    from twin.feed import read_feed, write_feed
    from twin.sim_feed import cancellations, events_feed
    from vision.live_feed import camera_feed
    from vision.runtime import StateModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-camera", action="store_true", help="perfect feeds only (no rendering)")
    ap.add_argument("--cache", default=str(ROOT / "out/nowcast/camera"),
                    help="folder of rendered camera feeds, reused when present")
    ap.add_argument("--record", default=None, metavar="PREFIX",
                    help="write day 0's plan, perfect feed and camera feed as PREFIX.*")
    args = ap.parse_args(argv)
    model = None if args.no_camera else StateModel(ROOT / "vision/models/or_states.onnx")
    names = ("perfect states", "perfect EHR") if args.no_camera else (
        "perfect states", "camera", "perfect EHR")
    res: dict[str, list] = {n: [] for n in names}
    over: dict[str, list] = {n: [] for n in names}
    for k in range(args.days):
        sim = sim_day(k)
        actual = sim.actual_finish()
        feeds = {"perfect states": events_feed(sim, case_ids=False), "perfect EHR": events_feed(sim)}
        if model is not None:
            cached = Path(args.cache) / f"day{k}.camera.jsonl"
            if cached.is_file():  # the same day, seed and model render to the same feed
                cam = read_feed(cached).observations
                print(f"day {k}: camera feed from {cached}", flush=True)
            else:
                t = time.perf_counter()
                cam = camera_feed(sim, model, SEED + k)
                print(f"day {k} ({sim.plan.date}): {len(sim.plan.cases)} cases; camera feed "
                      f"{len(cam)} lines in {time.perf_counter() - t:.0f} s", flush=True)
                write_feed(cam, cached)
            feeds["camera"] = sorted(cam + cancellations(sim), key=lambda o: o.time)
        if args.record and k == 0:
            write_plan(sim.plan, f"{args.record}.plan.csv")
            write_feed(feeds["perfect states"], f"{args.record}.perfect.jsonl")
            if "camera" in feeds:
                write_feed(feeds["camera"], f"{args.record}.camera.jsonl")
        for name, feed in feeds.items():
            s, o = score_day(sim.scenario, sim.plan, feed, actual, reps=args.reps,
                             label=f"day{k}")
            res[name].append(s)
            over[name].append(o)
    out = {}
    for name in res:
        scores = pd.concat(res[name], ignore_index=True)
        table = summary(scores)
        ov = overrun_summary(pd.concat(over[name], ignore_index=True))
        print(f"\n{name} feed, {args.days} simulated days, {args.reps} replications")
        print(table.round(2).to_string(index=False))
        same = same_rooms(scores)
        print(f"the same {int(same['rooms'].iloc[0])} room-days at every hour:")
        print(same.round(2).to_string(index=False))
        print(f"P10-P90 coverage over all hours: {scores['inside'].mean():.3f}")
        print("one hour ahead:", {k: round(v, 3) for k, v in ov.items()})
        out[name] = {"hours": table.to_dict("records"), "same_rooms": same.to_dict("records"),
                     "coverage": float(scores["inside"].mean()), "overrun": ov}
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
