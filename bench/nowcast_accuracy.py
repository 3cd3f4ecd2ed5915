"""Now-cast accuracy on a real case log: every weekday of a month (or a date range) played back
as an EHR milestone feed through the twin calibrated on the cases before an as-of date, exactly
as ``ortwin feed playback`` writes it and ``ortwin nowcast`` reads it; forecasts of each room's
last out-of-room time at the chosen hours against the actual, beside the booked schedule and the
twin run from the start of the day with no live state (ortwin.nowcast_eval). Reports how many
days it scored and how many are distinct, and the figures on all of them and on the distinct
days not seen in fitting (calibration.repeats): a log that repeats days must not score its
copies of the fitted days as forecasts.

    python bench/nowcast_accuracy.py [--log CSV] [--mapping YAML] [--as-of YYYY-MM-DD]
        [--month YYYY-MM | --from YYYY-MM-DD --to YYYY-MM-DD] [--weekends] [--hours 9,11,13,15]
        [--reps 200] [--seed 20260] [--json out/nowcast/accuracy_real.json]

Defaults: the bundled January-February 2022 log, fitted on the cases before 2022-01-31 (the
cut-off is exclusive, as in ``ortwin calibrate --as-of``), scoring February's weekdays.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "calibration/data/or_case_log_2022_jan_feb.csv"
MAPPING = ROOT / "calibration/mappings/or_case_log_2022.yaml"
AS_OF = "2022-01-31"
MONTH = "2022-02"
HOURS: tuple[int, ...] = (9, 11, 13, 15)


class UsageError(Exception):
    """A bad command line: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(message)


def _date(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: expected YYYY-MM-DD (got {text!r})") from None


def scored_range(month: str | None, first: str | None, last: str | None) -> tuple[dt.date, dt.date]:
    """(first day, last day) scored, both included, from ``--month`` or ``--from``/``--to``."""
    if month is not None and (first or last):
        raise UsageError("give --month or --from/--to, not both")
    if first or last:
        if not (first and last):
            raise UsageError("--from and --to go together")
        a, b = _date(first, "--from"), _date(last, "--to")
        if b < a:
            raise UsageError(f"--to {b} is before --from {a}")
        return a, b
    text = month or MONTH
    try:
        a = dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise UsageError(f"--month: expected YYYY-MM (got {text!r})") from None
    nxt = (a.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return a, nxt - dt.timedelta(days=1)


def parse_hours(text: str) -> tuple[int, ...]:
    """``9,11,13,15`` as hours of the day (0-23), increasing."""
    try:
        hours = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--hours: expected hours like 9,11,13,15 (got {text!r})") from None
    if not hours or any(not 0 <= h <= 23 for h in hours) or list(hours) != sorted(set(hours)):
        raise UsageError(f"--hours: expected increasing hours 0-23 (got {text!r})")
    return hours


def log_days(history, first: dt.date, last: dt.date, weekends: bool = False) -> list[dt.date]:
    """The days of the log with cases in [first, last] (weekdays only unless ``weekends``)."""
    dates = sorted({d.date() for d in history.cases["date"]})
    return [d for d in dates if first <= d <= last and (weekends or d.weekday() < 5)]


def day_inputs(history, day: dt.date, scn, zone: str | None, folder: Path):
    """(scenario, plan, observations, actual last-out per room) of one day, through the files
    ``ortwin feed playback`` writes and ``ortwin nowcast`` reads (one code path)."""
    from calibration.playback import playback_day, write_playback
    from ortwin.nowcast_cli import load_inputs

    pb = playback_day(history, day, scn, zone)
    stem = folder / day.isoformat()
    paths = (f"{stem}.plan.csv", f"{stem}.feed.jsonl", f"{stem}.scenario.yaml")
    write_playback(pb, *paths)
    day_scn, plan, feed = load_inputs(paths[2], paths[0], paths[1])
    actual = pb.actual.groupby("room")["out_of_room"].max().to_dict()
    return day_scn, plan, feed.observations, actual


def evaluate(history, scn, days: list[dt.date], zone: str | None, reps: int, seed: int = 20260,
             hours: tuple[int, ...] = HOURS, min_sigma: float = 0.0):
    """(scores, overrun rows) of ``days`` played back through ``scn`` (ortwin.nowcast_eval)."""
    from ortwin.nowcast_eval import score_day

    scores, over = [], []
    with tempfile.TemporaryDirectory(prefix="nowcast_days.") as tmp:
        for d in days:
            day_scn, plan, obs, actual = day_inputs(history, d, scn, zone, Path(tmp))
            s, o = score_day(day_scn, plan, obs, actual, hours=hours, reps=reps, seed=seed,
                             label=d.isoformat(), min_sigma=min_sigma)
            scores.append(s)
            over.append(o)
    return pd.concat(scores, ignore_index=True), pd.concat(over, ignore_index=True)


def real_days(reps: int, seed: int = 20260, dates: list[str] | None = None,
              min_sigma: float = 0.0, month: str = MONTH, log: str | Path = LOG,
              mapping: str | Path = MAPPING, as_of: str = AS_OF,
              hours: tuple[int, ...] = HOURS):
    """(scores, overrun rows) of every weekday of ``month`` (or of ``dates``), fitted on the
    cases before ``as_of`` (the golden back-tests call this with its defaults)."""
    from calibration.build import calibrate
    from calibration.loader import load_history
    from calibration.mapping import load_mapping
    from calibration.playback import log_zone

    h = load_history(log, mapping)
    scn = calibrate(h, as_of).validated
    days = log_days(h, *scored_range(month, None, None)) if dates is None \
        else [dt.date.fromisoformat(d) for d in dates]
    return evaluate(h, scn, days, log_zone(load_mapping(mapping)), reps, seed, hours, min_sigma)


def hour_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per hour: rooms, MAE and CRPS of now-cast, booked and twin, P10-P90 coverage of the
    now-cast and of the twin (the booked schedule is a point: no band)."""
    from ortwin.nowcast_eval import summary

    t = summary(scores)
    if t.empty:
        return t
    cov = scores.groupby("hour")["inside_twin"].mean().rename("coverage_twin")
    return t.merge(cov, left_on="hour", right_index=True)


def _block(title: str, scores: pd.DataFrame, over: pd.DataFrame) -> tuple[list[str], dict]:
    from ortwin.nowcast_eval import overrun_summary, same_rooms

    table, same = hour_table(scores), same_rooms(scores)
    ov = overrun_summary(over)
    lines = [title, table.round(2).to_string(index=False)]
    if not same.empty:
        lines += [f"the same {int(same['rooms'].iloc[0])} room-days (still running at the last "
                  "hour), at every hour:", same.round(2).to_string(index=False)]
    lines += [f"P10-P90 coverage over all hours: now-cast {scores['inside'].mean():.3f}, twin "
              f"{scores['inside_twin'].mean():.3f}",
              "one hour ahead, 'will run past staffed end': "
              + str({k: round(v, 3) for k, v in ov.items()})]
    return lines, {"hours": table.to_dict("records"), "same_rooms": same.to_dict("records"),
                   "coverage": float(scores["inside"].mean()),
                   "coverage_twin": float(scores["inside_twin"].mean()), "overrun": ov}


def report(history, days: list[dt.date], as_of: dt.date, scores: pd.DataFrame,
           over: pd.DataFrame, head: str) -> tuple[str, dict]:
    """The text and JSON of a run: days scored, distinct, unseen in fitting, and the figures on
    all days and on the unseen distinct days."""
    from calibration.repeats import distinct_count, near_repeats, unseen_days

    distinct = distinct_count(history, days)
    unseen = unseen_days(history, days, as_of)
    strict = unseen_days(history, days, as_of, strict=True)
    copies = near_repeats(history, days, as_of, max_changed=0)
    lines = [head, f"{len(days)} days scored ({days[0]} to {days[-1]}), {distinct} distinct; "
             f"{len(unseen)} distinct day(s) not seen in fitting (no copy before {as_of}), "
             f"{len(strict)} of them more than one case from every earlier day"]
    if copies:
        by: dict[dt.date, list[str]] = {}
        for c in copies:
            by.setdefault(c.of, []).append(c.day.isoformat())
        lines.append("copies: " + "; ".join(f"{', '.join(v)} = {k}" for k, v in sorted(by.items())))
    text, all_json = _block(f"all {len(days)} days:", scores, over)
    lines += text
    out = {"days": [d.isoformat() for d in days], "distinct": distinct,
           "unseen": [d.isoformat() for d in unseen], "unseen_strict": [d.isoformat() for d in strict],
           "as_of": as_of.isoformat(), "all_days": all_json, "unseen_days": None}
    keep = {d.isoformat() for d in unseen}
    mine = scores.loc[scores["day"].isin(keep)]
    if not unseen:
        lines.append(f"no scored day is unseen in fitting: every one is a copy of a day before "
                     f"{as_of} or of an earlier scored day, so there are no unseen-day figures")
    elif mine.empty:
        lines.append(f"the {len(unseen)} unseen day(s) have no room still running at the hours "
                     "scored: no unseen-day figures")
    else:
        text, out["unseen_days"] = _block(
            f"the {len(unseen)} distinct day(s) not seen in fitting "
            f"({', '.join(sorted(keep))}):", mine, over.loc[over["day"].isin(keep)])
        lines += text
    return "\n".join(lines), out


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="nowcast_accuracy.py", description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=str(LOG), help="case log (CSV or parquet)")
    ap.add_argument("--mapping", default=str(MAPPING), help="column mapping YAML")
    ap.add_argument("--as-of", default=AS_OF, help="calibrate on the cases before this date")
    ap.add_argument("--month", default=None, help="YYYY-MM to score (default 2022-02)")
    ap.add_argument("--from", dest="first", default=None, help="first day scored, YYYY-MM-DD")
    ap.add_argument("--to", dest="last", default=None, help="last day scored (included)")
    ap.add_argument("--weekends", action="store_true", help="also score weekend days")
    ap.add_argument("--hours", default="9,11,13,15", help="hours of the day scored")
    ap.add_argument("--reps", type=int, default=200, help="replications (default 200)")
    ap.add_argument("--seed", type=int, default=20260, help="base seed (default 20260)")
    ap.add_argument("--json", default=None, help="also write the figures (and .scores.csv)")
    try:
        return run(ap.parse_args(argv))
    except UsageError as e:
        print(f"nowcast_accuracy.py: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Run the harness for parsed arguments (``UsageError`` or a one-line data error: exit 2)."""
    from calibration.build import calibrate
    from calibration.loader import load_history
    from calibration.mapping import load_mapping
    from calibration.playback import log_zone
    from twin.scenario import ScenarioError

    first, last = scored_range(args.month, args.first, args.last)
    as_of = _date(args.as_of, "--as-of")
    hours = parse_hours(args.hours)
    if args.reps < 1:
        raise UsageError(f"--reps: expected a whole number >= 1 (got {args.reps})")
    try:
        zone = log_zone(load_mapping(args.mapping))
        h = load_history(args.log, args.mapping)
        days = log_days(h, first, last, args.weekends)
        if not days:
            raise UsageError(f"{args.log}: no {'' if args.weekends else 'week'}days with cases from "
                        f"{first} to {last}")
        scn = calibrate(h, as_of).validated
        scores, over = evaluate(h, scn, days, zone, args.reps, args.seed, hours)
    except ScenarioError as e:  # HistoryError too
        raise UsageError(str(e)) from None
    head = (f"{Path(args.log).name}: fitted on the cases before {as_of}; {args.reps} "
            f"replications, hours {','.join(map(str, hours))}")
    text, out = report(h, days, as_of, scores, over, head)
    print(text)
    if args.json:
        p = Path(args.json)
        p.parent.mkdir(parents=True, exist_ok=True)
        scores.to_csv(p.with_suffix(".scores.csv"), index=False)
        p.write_text(json.dumps({"log": str(args.log), "mapping": str(args.mapping),
                                 "reps": args.reps, "seed": args.seed, "hours": list(hours),
                                 **out}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
