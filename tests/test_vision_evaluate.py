"""Evaluation: the scores are right on known cases, and the committed model meets its marks on
fresh held-out renders (frames, and a rendered room-day before and after smoothing)."""

from __future__ import annotations

import numpy as np
import pytest

from vision.evaluate import (
    CLIP_MILESTONES,
    delay_table,
    evaluate_days,
    evaluate_delays,
    evaluate_split,
    match_times,
    scores,
)
from vision.render import render_split
from vision.runtime import MODEL, StateModel
from vision.states import STATES


def test_scores_on_a_known_confusion():
    truth = ["idle"] * 4 + ["setup"] * 4 + ["procedure"] * 2
    pred = ["idle"] * 3 + ["setup"] + ["setup"] * 4 + ["procedure", "idle"]
    s = scores(truth, pred)
    assert s.n == 10 and s.accuracy == pytest.approx(0.8)
    assert s.confusion.loc["idle", "setup"] == 1 and s.confusion.loc["procedure", "idle"] == 1
    f1 = {"idle": 2 * 0.75 * 0.75 / 1.5, "setup": 2 * 0.8 * 1 / 1.8, "procedure": 2 * 1 * 0.5 / 1.5}
    assert s.macro_f1 == pytest.approx(np.mean(list(f1.values())))
    assert list(s.confusion.index) == list(STATES)


def test_matching_counts_missed_and_false():
    got, extra = match_times([10.0, 50.0, 90.0], [11.0, 49.0, 200.0, 48.0], window=5.0)
    assert got == [11.0, 49.0, None] and extra == 2


@pytest.fixture(scope="module")
def model() -> StateModel:
    return StateModel(MODEL)


def test_committed_model_on_fresh_in_range_frames(model, tmp_path):
    d = render_split(tmp_path, "fresh", 20, seed=12345)
    s = evaluate_split(model, d)
    assert s.n == 100 and s.accuracy >= 0.9 and s.macro_f1 >= 0.9


def test_committed_model_on_a_rendered_room_day(model):
    r = evaluate_days(model, 1, seed=2024, seconds_per_frame=60.0)
    assert r.raw.n > 500
    assert r.smoothed.accuracy >= max(0.93, r.raw.accuracy - 0.02)
    t = r.milestone_table()
    assert set(t["milestone"]) == {"in_room", "out_of_room"}
    assert (t["true"] > 0).all()


def test_delay_at_one_frame_per_second_on_transition_clips(model):
    """Clips at 1 frame/s around every milestone of a rendered room-day: each milestone is
    emitted, no later than the decision lag plus a little, and the table summarises them."""
    d = evaluate_delays(model, 1, seed=31, half_min=1.5, size=224)
    assert set(d["milestone"]) == set(CLIP_MILESTONES)
    assert len(d) % len(CLIP_MILESTONES) == 0 and len(d) >= len(CLIP_MILESTONES)
    ok = d["delay_s"].dropna()
    assert len(ok) >= 0.75 * len(d)
    assert ok.median() <= 60.0 and (ok > 0).all()
    t = delay_table(d)
    assert list(t["milestone"]) == list(CLIP_MILESTONES)
    assert t["clips"].sum() == len(d) and t["missed"].sum() == d["delay_s"].isna().sum()


def test_model_card_reports_the_goals_from_the_figures():
    """The card says met or NOT met from the figures it is given, never by itself."""
    import json

    from vision.card import card

    ev = json.loads((MODEL.parent / "or_states_eval.json").read_text())
    summary = {"config": {"model": "yolo11n-cls.yaml", "epochs": 35, "seed": 7, "imgsz": 224},
               "per_class": 400}
    text = card(summary, ev)
    f1 = ev["days_in_range"]["smoothed"]["macro_f1"]
    assert f"{100 * f1:.1f}% against a goal of 95% ({'met' if f1 >= 0.95 else 'NOT met'})" in text
    ev["days_in_range"]["smoothed"]["macro_f1"] = 0.94
    ev["days_in_range"]["delays_1fps"][0]["p90_delay_s"] = 75.0
    text = card(summary, ev)
    assert "94.0% against a goal of 95% (NOT met)" in text
    assert "P90 at most 75 s for every milestone (NOT met)" in text
    assert "--per-class 400 --epochs 35 --seed 7" in text
