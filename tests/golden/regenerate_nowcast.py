"""Regenerate the now-cast golden back-tests. Run only when a change is *meant* to move them:

    .venv/bin/python tests/golden/regenerate_nowcast.py            # tables from recorded feeds
    .venv/bin/python tests/golden/regenerate_nowcast.py --camera   # also re-render the camera feed

and say why in the commit message. ``tests/test_nowcast_golden.py`` recomputes every table and
compares it with ``nowcast_days.csv``, and checks the stated bounds.

Days: two real February 2022 days of the shared case log (played back as EHR feeds through the
twin calibrated on January) and one simulated day (baseline without add-ons, as-booked, truth
known) fed with perfect states and, separately, with the camera model's events
(``nowcast_sim.camera.jsonl``, rendered by ``bench/nowcast_accuracy_sim.py --record`` or
``--camera`` here), both with the booking system's day-of cancellations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
REPS = 100
SEED = 2026
REAL_DAYS = ("2022-02-08", "2022-02-23")
SIM = HERE / "nowcast_sim"
TABLE = HERE / "nowcast_days.csv"


def real_tables():
    """(case name, scores) of each real day."""
    from nowcast_accuracy import real_days

    out = []
    for d in REAL_DAYS:
        s, _ = real_days(REPS, SEED, dates=[d])
        out.append((f"real {d}", s))
    return out


def sim_tables():
    """(case name, scores) of the simulated day with each recorded feed."""
    from nowcast_accuracy_sim import sim_scenario

    from ortwin.nowcast_eval import score_day
    from twin.dayplan import read_plan
    from twin.feed import read_feed

    scn = sim_scenario()
    plan = read_plan(f"{SIM}.plan.csv", scn)
    actual = pd.read_csv(f"{SIM}.actual.csv").set_index("room")["finish"].to_dict()
    out = []
    for feed in ("perfect", "camera"):
        obs = read_feed(f"{SIM}.{feed}.jsonl").observations
        s, _ = score_day(scn, plan, obs, actual, reps=REPS, seed=SEED, label=feed)
        out.append((f"simulated {feed}", s))
    return out


def golden_table() -> pd.DataFrame:
    """The per-hour summary of every golden day."""
    from ortwin.nowcast_eval import summary

    rows = [summary(s).assign(case=name) for name, s in real_tables() + sim_tables()]
    t = pd.concat(rows, ignore_index=True)
    return t[["case", *[c for c in t.columns if c != "case"]]]


def record_sim(camera: bool) -> None:
    """Write the simulated day's plan, perfect feed and actual finishes (and camera feed)."""
    from nowcast_accuracy_sim import SEED as SIM_SEED
    from nowcast_accuracy_sim import sim_day

    from twin.dayplan import write_plan
    from twin.feed import write_feed
    from twin.sim_feed import cancellations, events_feed

    sim = sim_day(0)
    write_plan(sim.plan, f"{SIM}.plan.csv")
    write_feed(events_feed(sim, case_ids=False), f"{SIM}.perfect.jsonl")
    pd.DataFrame(sorted(sim.actual_finish().items()), columns=["room", "finish"]).to_csv(
        f"{SIM}.actual.csv", index=False)
    if camera:
        from vision.live_feed import camera_feed
        from vision.runtime import StateModel

        model = StateModel(ROOT / "vision/models/or_states.onnx")
        cam = camera_feed(sim, model, SIM_SEED) + cancellations(sim)
        write_feed(sorted(cam, key=lambda o: o.time), f"{SIM}.camera.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description="regenerate the now-cast golden back-tests")
    ap.add_argument("--camera", action="store_true", help="re-render the camera feed too")
    args = ap.parse_args()
    record_sim(args.camera)
    t = golden_table()
    t.to_csv(TABLE, index=False)
    print(t.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
