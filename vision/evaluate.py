"""``ortwin vision evaluate``: the model on rendered held-out data whose truth is known.

Two views. **Frames**: the still images of a rendered split (``val`` in range, ``test_shift``
out of range): per-frame accuracy, macro-F1 and the confusion matrix. **Room-days**: videos of
simulated days (the twin's own event log of one room drives the renderer) decoded frame by
frame through :func:`vision.watch.frames`, before and after the temporal layer, plus milestone
timing: the error of each detected ``in_room`` and ``out_of_room`` against the truth, missed and
false milestones per room-day, and the delay from a true transition to its emitted event.
**Transition clips** (:func:`evaluate_delays`): short videos at one frame per second around
every true milestone of rendered room-days, decoded online as ``ortwin vision watch`` would,
for the delay from a transition to its event at the frame rate a camera feed runs at.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vision.runtime import StateModel
from vision.states import STATES
from vision.temporal import TemporalConfig, changes, smooth

TIMED = ("in_room", "out_of_room")
"""Milestones whose timing is scored."""


@dataclass
class Scores:
    """Per-frame accuracy, macro-F1 and the confusion matrix (rows true, columns predicted)."""

    n: int
    accuracy: float
    macro_f1: float
    confusion: pd.DataFrame

    def line(self) -> str:
        """One line: n, accuracy, macro-F1."""
        return f"n={self.n} accuracy={self.accuracy:.3f} macro-F1={self.macro_f1:.3f}"


def scores(truth: list[str], pred: list[str]) -> Scores:
    """:class:`Scores` of predicted states against true ones (macro-F1 over the states that
    occur in ``truth``; scikit-learn's metrics)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    cm = pd.DataFrame(confusion_matrix(truth, pred, labels=list(STATES)),
                      index=pd.Index(STATES, name="true"),
                      columns=pd.Index(STATES, name="predicted"))
    present = [s for s in STATES if s in set(truth)]
    n = len(truth)
    return Scores(n, float(accuracy_score(truth, pred)) if n else float("nan"),
                  float(f1_score(truth, pred, labels=present, average="macro", zero_division=0))
                  if present else float("nan"), cm)


def evaluate_split(model: StateModel, split_dir: str | Path) -> Scores:
    """Per-frame scores on a rendered split (``labels.csv`` beside the class folders)."""
    import cv2

    d = Path(split_dir)
    labels = pd.read_csv(d / "labels.csv")
    frames = [cv2.imread(str(d / f)) for f in labels["file"]]
    probs = model.predict(frames)
    return scores(list(labels["state"]), [STATES[i] for i in probs.argmax(1)])


@dataclass
class DayResult:
    """Frames and milestones of rendered room-days."""

    raw: Scores
    smoothed: Scores
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per true timed milestone: day, milestone, true and detected minute, error (min,
    NaN when missed), delay (s: true transition to emission)."""
    false: dict[str, int] = field(default_factory=dict)
    """Detections of each timed milestone that matched no true one."""
    days: int = 0

    def milestone_table(self) -> pd.DataFrame:
        """Per milestone: count, median and P90 absolute error (min), missed and false per
        room-day, median and max delay (s)."""
        rows = []
        for m in TIMED:
            e = self.errors[self.errors["milestone"] == m]
            err = e["error"].abs().dropna()
            rows.append({"milestone": m, "true": len(e),
                         "median_abs_error_min": float(err.median()) if len(err) else np.nan,
                         "p90_abs_error_min": float(err.quantile(0.9)) if len(err) else np.nan,
                         "missed_per_day": float(e["error"].isna().sum() / max(1, self.days)),
                         "false_per_day": self.false.get(m, 0) / max(1, self.days),
                         "median_delay_s": float(e["delay_s"].median()) if len(e) else np.nan,
                         "max_delay_s": float(e["delay_s"].max()) if len(e) else np.nan})
        return pd.DataFrame(rows)


def match_times(true: list[float], found: list[float], window: float) -> tuple[list[float | None], int]:
    """Greedy nearest matching of detected to true times within ``window``; returns the matched
    detection per true time (None: missed) and the number of unmatched detections."""
    left = sorted(found)
    out: list[float | None] = []
    for t in true:
        best = min(left, key=lambda x: abs(x - t), default=None)
        if best is not None and abs(best - t) <= window:
            out.append(best)
            left.remove(best)
        else:
            out.append(None)
    return out, len(left)


def watched_video(model: StateModel, tl, setup, path: Path, seed: int, start: float,
                   end: float, seconds_per_frame: float,
                   size: int) -> tuple[list[tuple[int, float, str]], np.ndarray]:
    """Render ``[start, end)`` of a timeline to a video file, read every frame back as
    ``watch`` does, and classify it: the renderer's ``(index, minute, state)`` rows and the
    probabilities."""
    from vision.render import render_video
    from vision.watch import frames

    written = render_video(tl, setup, path, seed, start, end,
                           seconds_per_frame=seconds_per_frame, size=size)
    imgs = [f.image for f in frames(str(path), fps=1e9)]  # every frame of the file
    return written, model.predict(imgs[:len(written)])


def evaluate_days(model: StateModel, days: int, seed: int, shift: bool = False,
                  seconds_per_frame: float = 10.0, cfg: TemporalConfig | None = None,
                  scenario: str = "baseline", size: int = 320,
                  window_min: float = 15.0) -> DayResult:
    """Render ``days`` room-days (replication k of the scenario's Monday, room k mod the elective
    rooms that had cases, a held-out set-up each) as videos, watch them, and score frames and
    milestones."""
    from twin.scenario import load_scenario, with_horizon
    from vision.render import Setup
    from vision.timeline import simulated_room_day, true_milestones

    scn = with_horizon(load_scenario(scenario), 1)
    cfg = cfg or TemporalConfig(fps=1.0 / seconds_per_frame)
    ss = np.random.SeedSequence([seed, 0x5EED, int(shift)])
    truth_all, raw_all, smooth_all, rows = [], [], [], []
    false = dict.fromkeys(TIMED, 0)
    lag_s = cfg.frames(cfg.lag_s) / cfg.fps
    with tempfile.TemporaryDirectory() as tmp:
        for k, child in enumerate(ss.spawn(days)):
            rng = np.random.default_rng(child)
            room, tl, start, end = simulated_room_day(scn, seed + 1000, k, pick=k)
            setup = Setup.sample(rng, shift=shift)
            written, probs = watched_video(model, tl, setup, Path(tmp) / f"day{k}.avi",
                                            int(rng.integers(2**31)), start, end,
                                            seconds_per_frame, size)
            minutes = [m for _, m, _ in written]
            times = [(m - start) * 60.0 for m in minutes]
            dec = smooth(times, probs, cfg)
            truth_all += [s for _, _, s in written]
            raw_all += [STATES[i] for i in probs.argmax(1)]
            at = {round(d.time, 6): d.state for d in dec}  # gaps add decisions between frames
            smooth_all += [at[round(t, 6)] for t in times]
            found: dict[str, list[float]] = {m: [] for m in TIMED}
            for c in changes(dec):
                for m in c.milestones:
                    if m in found:
                        found[m].append(start + c.time / 60.0)
            for m in TIMED:
                true_t = [t for t, name in true_milestones(tl) if name == m]
                got, extra = match_times(true_t, found[m], window_min)
                false[m] += extra
                for t, g in zip(true_t, got, strict=True):
                    rows.append({"day": k, "room": room, "milestone": m, "true_min": t,
                                 "found_min": g, "error": None if g is None else g - t,
                                 "delay_s": None if g is None else (g - t) * 60.0 + lag_s})
    errors = pd.DataFrame(rows, columns=["day", "room", "milestone", "true_min", "found_min",
                                         "error", "delay_s"]).astype(
        {"error": float, "delay_s": float, "found_min": float})
    return DayResult(scores(truth_all, raw_all), scores(truth_all, smooth_all), errors, false,
                     days)


CLIP_MILESTONES = ("in_room", "procedure_start", "procedure_end", "out_of_room")
"""Milestones whose delay is measured on transition clips."""


def evaluate_delays(model: StateModel, days: int, seed: int, shift: bool = False,
                    cfg: TemporalConfig | None = None, half_min: float = 5.0,
                    scenario: str = "baseline", size: int = 320) -> pd.DataFrame:
    """Delay at one frame per second: for every true milestone of ``days`` rendered room-days,
    a clip of ``half_min`` minutes either side (a held-out set-up per day) is decoded online;
    one row per milestone: day, milestone, true minute, delay (s, true transition to the
    emitted event; NaN when the clip emitted none)."""
    from twin.scenario import load_scenario, with_horizon
    from vision.render import Setup
    from vision.temporal import RoomStateDecoder
    from vision.timeline import simulated_room_day, true_milestones

    scn = with_horizon(load_scenario(scenario), 1)
    cfg = cfg or TemporalConfig(fps=1.0)
    lag_s = cfg.frames(cfg.lag_s) / cfg.fps
    ss = np.random.SeedSequence([seed, 0xC11B, int(shift)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, child in enumerate(ss.spawn(days)):
            rng = np.random.default_rng(child)
            room, tl, _, _ = simulated_room_day(scn, seed + 2000, k, pick=k)
            setup = Setup.sample(rng, shift=shift)
            for j, (t, name) in enumerate(true_milestones(tl)):
                if name not in CLIP_MILESTONES:
                    continue
                a = t - half_min
                written, probs = watched_video(model, tl, setup, Path(tmp) / f"c{k}_{j}.avi",
                                                int(rng.integers(2**31)), a, t + half_min,
                                                1.0 / cfg.fps, size)
                dec = RoomStateDecoder(cfg)
                out = []
                for (_, m, _), p in zip(written, probs, strict=True):
                    out += dec.push((m - a) * 60.0, p)
                hits = [a + c.time / 60.0 for c in changes(out + dec.flush()) if name in
                        c.milestones]
                best = min(hits, key=lambda x: abs(x - t), default=None)
                rows.append({"day": k, "room": room, "milestone": name, "true_min": t,
                             "delay_s": np.nan if best is None else (best - t) * 60.0 + lag_s})
    return pd.DataFrame(rows, columns=["day", "room", "milestone", "true_min", "delay_s"])


def delay_table(delays: pd.DataFrame) -> pd.DataFrame:
    """Per milestone: clips, median, P90 and max delay (s), and the share emitted within 60 s."""
    rows = []
    for m in CLIP_MILESTONES:
        d = delays.loc[delays["milestone"] == m, "delay_s"]
        ok = d.dropna()
        rows.append({"milestone": m, "clips": len(d), "missed": int(d.isna().sum()),
                     "median_delay_s": float(ok.median()) if len(ok) else np.nan,
                     "p90_delay_s": float(ok.quantile(0.9)) if len(ok) else np.nan,
                     "max_delay_s": float(ok.max()) if len(ok) else np.nan,
                     "within_60s": float((d <= 60.0).mean()) if len(d) else np.nan})
    return pd.DataFrame(rows)
