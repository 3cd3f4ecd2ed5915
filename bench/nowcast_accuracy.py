"""Now-cast accuracy on the shared real case log: every February 2022 weekday played back as an
EHR milestone feed through the twin calibrated on January; forecasts of each room's last
out-of-room time at 09:00, 11:00, 13:00 and 15:00 against the actual, beside the booked
schedule and the twin run from the start of the day with no live state (twin.nowcast_eval).

    python bench/nowcast_accuracy.py [--reps 200] [--json out/nowcast/accuracy_real.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "calibration/data/or_case_log_2022_jan_feb.csv"
MAPPING = ROOT / "calibration/mappings/or_case_log_2022.yaml"


def history():
    """The shared case log through its mapping."""
    from calibration.loader import load_history

    return load_history(LOG, MAPPING)


def distinct_days(dates: list[str]) -> list[str]:
    """The first of each set of days whose cases are identical (room, wheels-in time of day,
    procedure): the log's authors say some days repeat others exactly."""
    c = history().cases
    seen, out = set(), []
    for d in dates:
        day = c.loc[c["date"] == d]
        key = tuple(sorted(zip(day["room"], (day["in_room"] - day["date"]).dt.total_seconds(),
                               day["procedure"], strict=True)))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def real_days(reps: int, seed: int = 20260, dates: list[str] | None = None,
              min_sigma: float = 0.0, month: str = "02"):
    """(scores, overrun rows) of every weekday of the month (February; or ``dates``)."""
    from calibration.build import calibrate
    from calibration.playback import playback_day
    from twin.nowcast_eval import score_day

    h = history()
    scn = calibrate(h, "2022-01-31").validated
    month_days = h.cases.loc[h.cases["date"].dt.strftime("%m") == month, "date"].dt.date.unique()
    days = sorted(d.isoformat() for d in month_days if d.weekday() < 5) if dates is None \
        else dates
    scores, over = [], []
    for d in days:
        pb = playback_day(h, d, scn)
        actual = pb.actual.groupby("room")["out_of_room"].max().to_dict()
        s, o = score_day(pb.scenario, pb.plan, pb.observations, actual, reps=reps, seed=seed,
                         label=d, min_sigma=min_sigma)
        scores.append(s)
        over.append(o)
    return pd.concat(scores, ignore_index=True), pd.concat(over, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    from twin.nowcast_eval import overrun_summary, same_rooms, summary

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    scores, over = real_days(args.reps)
    table = summary(scores)
    print(f"{scores['day'].nunique()} February weekdays, {args.reps} replications")
    print(table.round(2).to_string(index=False))
    same = same_rooms(scores)
    print(f"the same {int(same['rooms'].iloc[0])} room-days (still running at the last hour), "
          "at every hour:")
    print(same.round(2).to_string(index=False))
    print(f"P10-P90 coverage over all hours: {scores['inside'].mean():.3f}")
    uniq = distinct_days(sorted(scores["day"].unique()))
    once = scores.loc[scores["day"].isin(uniq)]
    print(f"each distinct day once ({len(uniq)} of {scores['day'].nunique()}: the others repeat "
          "one of them exactly):")
    print(summary(once).round(2).to_string(index=False))
    print(f"P10-P90 coverage over all hours: {once['inside'].mean():.3f}")
    if args.json:
        scores.to_csv(Path(args.json).with_suffix(".scores.csv"), index=False)
    ov = overrun_summary(over)
    print("one hour ahead, 'will run past staffed end':", {k: round(v, 3) for k, v in ov.items()})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "hours": table.to_dict("records"), "same_rooms": same.to_dict("records"),
            "coverage": float(scores["inside"].mean()), "overrun": ov}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
