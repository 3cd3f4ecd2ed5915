"""The model card of the committed room-state model, written from the training summary and the
evaluation report (``ortwin vision evaluate --card``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vision.states import STATES


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def _num(x: Any, digits: int = 2) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if v != v else f"{v:.{digits}f}"


def _confusion(rows: list[list[int]]) -> list[str]:
    head = "| true \\ predicted | " + " | ".join(STATES) + " |"
    out = [head, "|---" * (len(STATES) + 1) + "|"]
    out += [f"| {s} | " + " | ".join(str(int(v)) for v in r) + " |"
            for s, r in zip(STATES, rows, strict=True)]
    return out


def card(train: dict[str, Any], evaluation: dict[str, Any]) -> str:
    """The card as Markdown."""
    cfg = train.get("config", {})
    lines = [
        "# Model card: `or_states.onnx` (room state from a ceiling camera)", "",
        f"- **Classes** (output order of `vision.runtime.StateModel`): {', '.join(STATES)}; "
        "defined in docs/vision.md (labelling guide).",
        f"- **Architecture**: Ultralytics `{cfg.get('model')}` classifier, built from its YAML "
        "(random initial weights, nothing pretrained), exported to ONNX (opset 17, dynamic "
        f"batch and size), input {cfg.get('imgsz')} px RGB in [0, 1].",
        f"- **Data**: rendered by `vision/render.py`: {cfg.get('data')} with `train/` "
        f"({train.get('per_class', 300)} frames per state from "
        f"{max(50, int(train.get('per_class', 300)) // 2)} set-ups), `val/` (in-range held "
        "out: its own seed stream and set-ups) and `test_shift/` (set-ups outside the training "
        "ranges). No real footage.",
        f"- **Training**: `ortwin vision train --out out/vision --per-class "
        f"{train.get('per_class', 300)} --epochs {cfg.get('epochs')} --seed {cfg.get('seed')}` "
        f"(`make vision-model`), batch {cfg.get('batch')}, device {cfg.get('device')}, offline; "
        f"{_num(train.get('train_seconds'), 0)} s in all, "
        f"{_num(train.get('seconds_per_epoch'), 1)} s per epoch.",
        "- **Runtime**: onnxruntime + numpy + OpenCV (`pip install 'ortwin[vision]'`), no torch.",
        "", "## Metrics on held-out renders", "",
        "| set | frames | accuracy | macro-F1 |", "|---|---|---|---|",
    ]
    for key, label in (("frames_val", "still frames, in range (val)"),
                       ("frames_test_shift", "still frames, shifted (test_shift)")):
        r = evaluation.get(key)
        if r:
            lines.append(f"| {label} | {r['n']} | {_pct(r['accuracy'])} | {_pct(r['macro_f1'])} |")
    for key, label in (("days_in_range", "room-days in range"), ("days_shift", "room-days shifted")):
        r = evaluation.get(key)
        if r:
            lines.append(f"| {label}, per frame, raw | | {_pct(r['raw']['accuracy'])} | "
                         f"{_pct(r['raw']['macro_f1'])} |")
            lines.append(f"| {label}, per frame, smoothed | | {_pct(r['smoothed']['accuracy'])} "
                         f"| {_pct(r['smoothed']['macro_f1'])} |")
    for key, label in (("days_in_range", "in range"), ("days_shift", "shifted")):
        r = evaluation.get(key)
        if not r:
            continue
        lines += ["", f"### Milestones, room-days {label}", "",
                  "| milestone | true | median abs error (min) | P90 abs error (min) | missed "
                  "per day | false per day | median delay (s) |", "|---|---|---|---|---|---|---|"]
        for m in r["milestones"]:
            lines.append(f"| {m['milestone']} | {m['true']} | {_num(m['median_abs_error_min'])} |"
                         f" {_num(m['p90_abs_error_min'])} | {_num(m['missed_per_day'])} | "
                         f"{_num(m['false_per_day'])} | {_num(m['median_delay_s'], 0)} |")
        if r.get("delays_1fps"):
            lines += ["", f"Delay from a true transition to its event at 1 frame/s, {label} "
                      "(a 10-minute clip around each milestone, decoded online):", "",
                      "| milestone | clips | missed | median (s) | P90 (s) | max (s) | within 60 s |",
                      "|---|---|---|---|---|---|---|"]
            lines += [f"| {d['milestone']} | {d['clips']} | {d['missed']} | "
                      f"{_num(d['median_delay_s'], 0)} | {_num(d['p90_delay_s'], 0)} | "
                      f"{_num(d['max_delay_s'], 0)} | {_pct(d['within_60s'])} |"
                      for d in r["delays_1fps"]]
        lines += ["", f"Smoothed confusion matrix, room-days {label}:", "",
                  *_confusion(r["smoothed"]["confusion"])]
    goals = []
    r = evaluation.get("days_in_range")
    if r:
        f1 = r["smoothed"]["macro_f1"]
        goals.append(f"- macro-F1 after smoothing, in range: {_pct(f1)} against a goal of 95% "
                     f"({'met' if f1 >= 0.95 else 'NOT met'})")
        for m in r["milestones"]:
            ok = (m["median_abs_error_min"] or 99) <= 1 and (m["p90_abs_error_min"] or 99) <= 3
            goals.append(f"- {m['milestone']} timing: median {_num(m['median_abs_error_min'])} "
                         f"min, P90 {_num(m['p90_abs_error_min'])} min against 1 and 3 "
                         f"({'met' if ok else 'NOT met'}); {_num(m['missed_per_day'])} missed "
                         "per room-day")
        if r.get("delays_1fps"):
            d1 = r["delays_1fps"]
            clips = sum(d["clips"] for d in d1)
            missed = sum(d["missed"] for d in d1)
            within = sum(d["within_60s"] * d["clips"] for d in d1 if d["clips"])
            worst = max((d["max_delay_s"] for d in d1 if d["max_delay_s"] == d["max_delay_s"]),
                        default=float("nan"))
            p90 = max((d["p90_delay_s"] for d in d1 if d["p90_delay_s"] == d["p90_delay_s"]),
                      default=float("nan"))
            goals.append(f"- delay at 1 frame/s, goal 60 s: P90 at most {_num(p90, 0)} s for "
                         f"every milestone ({'met' if p90 <= 60 else 'NOT met'}); "
                         f"{int(round(within))} of {clips} clips within 60 s, the slowest "
                         f"{_num(worst, 0)} s, {missed} missed")
    if goals:
        lines += ["", "## Against the goals", "", *goals]
    lines += ["", "## Limits", "",
              "Trained and tested on rendered frames only. Before use on real footage, a site "
              "labels its own frames with the same guide and measures the model on them "
              "(`ortwin vision evaluate` takes any folder in the same layout), and fine-tunes "
              "when it falls short.", ""]
    return "\n".join(lines)


def write_card(train: dict[str, Any], evaluation: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`card` to ``path``."""
    p = Path(path)
    p.write_text(card(train, evaluation), encoding="utf-8")
    return p
