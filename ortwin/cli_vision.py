"""``ortwin vision ...``: render, train, watch, evaluate. Registered by :mod:`ortwin.cli`.

Parsing imports nothing heavy; each command imports OpenCV, onnxruntime or Ultralytics only
when it runs. Exit status as everywhere in ``ortwin``: 0 success, 2 bad input (one line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from vision.runtime import MODEL


def _when(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--start expects an ISO 8601 time, got {text!r}") \
            from None
    return t if t.tzinfo else t.astimezone()


def add_parsers(sub, whole, seed) -> None:
    """Add ``vision`` and its subcommands to ``ortwin``'s subparsers."""
    v = sub.add_parser("vision", help="room states from ceiling cameras (render, train, watch, "
                       "evaluate)", description=(
        "Render labelled OR video from simulated days, train the room-state classifier, watch a "
        "video or camera and write feed observations, evaluate on held-out renders. Needs the "
        "'vision' extra (the 'vision-train' extra for train)."))
    vs = v.add_subparsers(dest="vision_command", required=True, metavar="COMMAND")

    r = vs.add_parser("render", help="render a labelled data set or a room-day video")
    r.add_argument("--out", required=True, metavar="DIR_OR_VIDEO",
                   help="folder for a data set, or a .avi/.mp4 file for a room-day video")
    r.add_argument("--per-class", type=whole("--per-class", 1), default=300,
                   help="data set: training frames per state (default: 300)")
    r.add_argument("--seed", type=seed, default=7, help="seed (default: 7)")
    r.add_argument("--size", type=whole("--size", 32), default=224, help="pixels (default 224)")
    r.add_argument("--room", default="OR1", help="video: the room (default: OR1)")
    r.add_argument("--shift", action="store_true", help="video: a set-up outside the training "
                   "ranges")
    r.add_argument("--seconds-per-frame", type=float, default=10.0,
                   help="video: simulated seconds between frames (default: 10)")

    t = vs.add_parser("train", help="render the data set and train the classifier (offline)")
    t.add_argument("--out", default="out/vision", metavar="DIR", help="work folder")
    t.add_argument("--per-class", type=whole("--per-class", 1), default=300)
    t.add_argument("--epochs", type=whole("--epochs", 1), default=15)
    t.add_argument("--imgsz", type=whole("--imgsz", 32), default=224)
    t.add_argument("--batch", type=whole("--batch", 1), default=32)
    t.add_argument("--seed", type=seed, default=7)
    t.add_argument("--device", default="cpu", help="cpu, or 0 for the first GPU")
    t.add_argument("--model-out", default=None, metavar="ONNX",
                   help="copy the exported model here (e.g. vision/models/or_states.onnx)")

    w = vs.add_parser("watch", help="classify a video, frame folder or camera into a feed")
    w.add_argument("source", metavar="SOURCE", help="video file, folder of frames, camera URL "
                   "or device number")
    w.add_argument("--room", required=True, help="room id as in the scenario")
    w.add_argument("--fps", type=float, default=1.0, help="frames per second (default: 1)")
    w.add_argument("--start", type=_when, default=None,
                   help="time of the first frame, ISO 8601 (default: now)")
    w.add_argument("--out", default=None, metavar="FEED",
                   help="JSON-lines feed to append to (default: standard output)")
    w.add_argument("--model", default=str(MODEL), help="ONNX model (default: the bundled one)")
    w.add_argument("--stale", type=float, default=30.0,
                   help="seconds without frames before a stale event (default: 30)")
    w.add_argument("--keep-frames", default=None, metavar="DIR",
                   help="also store the frames (off by default: privacy)")
    w.add_argument("--lag", type=float, default=30.0,
                   help="decision delay in seconds (default: 30)")
    w.add_argument("--min-dwell", type=float, default=20.0,
                   help="shortest time in a state, seconds (default: 20)")

    e = vs.add_parser("evaluate", help="score the model on rendered held-out data")
    e.add_argument("--data", default="out/vision/data", metavar="DIR",
                   help="rendered data set with val/ and test_shift/ (from train or render)")
    e.add_argument("--model", default=str(MODEL))
    e.add_argument("--days", type=whole("--days", 1), default=6,
                   help="room-days to render and watch per held-out set (default: 6)")
    e.add_argument("--seconds-per-frame", type=float, default=20.0,
                   help="simulated seconds between frames of the room-day videos (default: 20)")
    e.add_argument("--seed", type=seed, default=99)
    e.add_argument("--clip-days", type=whole("--clip-days", 0), default=3,
                   help="room-days whose milestones get a 1 frame/s clip for the delay "
                   "(default: 3; 0: none)")
    e.add_argument("--json", default=None, metavar="FILE", help="write the figures as JSON")
    e.add_argument("--card", default=None, metavar="MD",
                   help="also write the model card (needs --train-summary)")
    e.add_argument("--train-summary", default="out/vision/train_summary.json", metavar="JSON",
                   help="the training summary `ortwin vision train` wrote")


def cmd_vision(args: argparse.Namespace) -> int:
    """Dispatch ``ortwin vision <command>``."""
    return {"render": _render, "train": _train, "watch": _watch,
            "evaluate": _evaluate}[args.vision_command](args)


def _render(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() in (".avi", ".mp4"):
        import numpy as np

        from twin.scenario import load_scenario, with_horizon
        from vision.render import Setup, render_video
        from vision.timeline import simulated_room_day

        scn = with_horizon(load_scenario("baseline"), 1)
        if args.room not in [r.id for r in scn.rooms]:
            from ortwin.cli import UsageError

            raise UsageError(f"--room {args.room}: not a room of the baseline scenario")
        _, tl, start, end = simulated_room_day(scn, args.seed, 0, args.room)
        rng = np.random.default_rng(args.seed)
        rows = render_video(tl, Setup.sample(rng, shift=args.shift), out, args.seed, start, end,
                            seconds_per_frame=args.seconds_per_frame, size=args.size)
        truth = out.with_suffix(".truth.csv")
        import pandas as pd

        pd.DataFrame(rows, columns=["frame", "minute", "state"]).to_csv(truth, index=False)
        print(f"wrote {out} ({len(rows)} frames) and its truth {truth}")
        return 0
    from vision.train import make_dataset

    make_dataset(out, args.per_class, args.seed, args.size)
    print(f"wrote the data set under {out}/ (train, val, test_shift)")
    return 0


def _train(args: argparse.Namespace) -> int:
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        from ortwin.cli import UsageError

        raise UsageError("training needs the 'vision-train' extra: pip install "
                         "'ortwin[vision-train]'") from None
    import shutil

    from vision.train import TrainConfig, make_dataset, train

    out = Path(args.out)
    data = make_dataset(out / "data", args.per_class, args.seed, args.imgsz)
    summary = train(TrainConfig(data=str(data), out=str(out / "train"), epochs=args.epochs,
                                imgsz=args.imgsz, batch=args.batch, seed=args.seed,
                                device=args.device))
    summary["per_class"] = args.per_class
    if args.model_out:
        Path(args.model_out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(summary["onnx"], args.model_out)
        summary["model_out"] = args.model_out
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _watch(args: argparse.Namespace) -> int:
    from vision.runtime import StateModel
    from vision.temporal import TemporalConfig
    from vision.watch import watch

    model = StateModel(args.model)
    from vision.states import STATES

    cfg = TemporalConfig(fps=args.fps, lag_s=args.lag,
                         min_dwell_s={s: args.min_dwell for s in STATES})
    keep = Path(args.keep_frames) if args.keep_frames else None
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as fh:
            n = watch(args.source, args.room, model, fh, args.fps, args.start, args.stale, keep,
                      cfg)
        print(f"{n} observations appended to {args.out}", file=sys.stderr)
    else:
        watch(args.source, args.room, model, sys.stdout, args.fps, args.start, args.stale, keep,
              cfg)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from vision.evaluate import delay_table, evaluate_days, evaluate_delays, evaluate_split
    from vision.runtime import StateModel

    model = StateModel(args.model)
    report: dict = {"model": args.model}
    for split, shift in (("val", False), ("test_shift", True)):
        d = Path(args.data) / split
        if (d / "labels.csv").is_file():
            s = evaluate_split(model, d)
            print(f"frames {split}: {s.line()}")
            print(s.confusion.to_string())
            report[f"frames_{split}"] = {"n": s.n, "accuracy": s.accuracy,
                                         "macro_f1": s.macro_f1,
                                         "confusion": s.confusion.to_numpy().tolist()}
        r = evaluate_days(model, args.days, args.seed, shift,
                          seconds_per_frame=args.seconds_per_frame)
        name = "days_shift" if shift else "days_in_range"
        print(f"\n{name} ({args.days} room-days, one frame per {args.seconds_per_frame:g} s): "
              f"raw {r.raw.line()} | smoothed {r.smoothed.line()}")
        print(r.smoothed.confusion.to_string())
        table = r.milestone_table()
        print(table.to_string(index=False))
        report[name] = {"raw": {"accuracy": r.raw.accuracy, "macro_f1": r.raw.macro_f1},
                        "smoothed": {"accuracy": r.smoothed.accuracy,
                                     "macro_f1": r.smoothed.macro_f1,
                                     "confusion": r.smoothed.confusion.to_numpy().tolist()},
                        "milestones": table.to_dict("records")}
        if args.clip_days:
            dl = delay_table(evaluate_delays(model, args.clip_days, args.seed, shift))
            print(f"\ndelay at 1 frame/s ({args.clip_days} room-days, a clip around each "
                  "milestone):")
            print(dl.to_string(index=False))
            report[name]["delays_1fps"] = dl.to_dict("records")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    if args.card:
        from vision.card import write_card

        summary = Path(args.train_summary)
        if not summary.is_file():
            from ortwin.cli import UsageError

            raise UsageError(f"--train-summary {summary}: file not found (run ortwin vision "
                             "train first)")
        print(f"model card written to {write_card(json.loads(summary.read_text()), report, args.card)}")
    return 0


COMMANDS = {"vision": cmd_vision}
