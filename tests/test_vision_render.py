"""Ground-truth room timelines (vision.timeline) and the synthetic ceiling-camera renderer
(vision.render): coverage, event times, determinism, state/set-up variation, domain shift,
video read-back and the Ultralytics classification folder layout."""

from __future__ import annotations

import csv
import dataclasses
import math

import cv2
import numpy as np
import pytest

from twin.events import to_frame
from vision.render import (
    SHIFT_AXES,
    SHIFT_RANGES,
    TRAIN_RANGES,
    Setup,
    out_of_range,
    render_frame,
    render_split,
    render_video,
)
from vision.states import ALLOWED, STATES
from vision.timeline import check_timeline, room_timeline, state_at, true_milestones

DAY = 1440.0


@pytest.fixture(scope="module")
def events():
    from ortwin.runner import run_replication
    from twin.scenario import load_scenario, with_horizon

    scn = with_horizon(load_scenario("scenarios/baseline.yaml"), 1)
    return run_replication(scn, "manual", seed=1, rep=0).events


def _setup(seed: int, shift: bool = False) -> Setup:
    return Setup.sample(np.random.default_rng(seed), shift=shift)


# ------------------------------------------------------------------------------ timeline


def test_timeline_covers_day_and_matches_event_times(events):
    rooms = sorted(set(events["room"]) - {""})
    assert rooms
    expect = {"in_room": "patient_in_room", "procedure_start": "procedure",
              "procedure_end": "patient_in_room", "out_of_room": "turnover"}
    n_checked = 0
    for room in rooms:
        tl = room_timeline(events, room, 0.0, DAY)
        check_timeline(tl, 0.0, DAY)
        ms = true_milestones(tl)
        ev = events[(events["room"] == room) & events["event"].isin(list(expect))
                    & (events["time"] < DAY)]
        for t, name in zip(ev["time"], ev["event"], strict=True):
            assert state_at(tl, float(t)) == expect[name], (room, name, t)
            assert any(abs(mt - t) < 1e-9 and m == name for mt, m in ms), (room, name, t)
            n_checked += 1
        for t in ev.loc[ev["event"] == "in_room", "time"]:
            assert state_at(tl, float(t) - 1.0) in ("setup", "turnover")
            assert state_at(tl, float(t) - 1e-6) != "patient_in_room"
        ends = events[(events["room"] == room) & (events["event"] == "turnover_end")]
        for t in ends["time"]:
            if t < DAY:
                assert state_at(tl, float(t) - 1e-6) == "turnover"
                after = state_at(tl, float(t))
                assert after in ("idle", "setup", "patient_in_room")
                if after != "patient_in_room":  # else the next patient came straight in
                    assert any(abs(mt - t) < 1e-9 and m == "room_ready" for mt, m in ms)
    assert n_checked > 20


def test_timeline_rules_on_a_handmade_log():
    rows = [
        (0.0, "room_open", "", "R", "", math.nan, ""),
        (100.0, "in_room", "a", "R", "", math.nan, ""),
        (130.0, "procedure_start", "a", "R", "", math.nan, ""),
        (200.0, "procedure_end", "a", "R", "", math.nan, ""),
        (210.0, "out_of_room", "a", "R", "", math.nan, ""),
        (210.0, "turnover_start", "a", "R", "", math.nan, ""),
        (240.0, "turnover_end", "a", "R", "", math.nan, ""),
        (250.0, "in_room", "b", "R", "", math.nan, ""),  # only 10 idle minutes before it
        (250.0, "procedure_start", "b", "R", "", math.nan, ""),  # coincides: bridged
        (300.0, "in_room", "x", "OTHER", "", math.nan, ""),
    ]
    tl = room_timeline(to_frame(rows), "R", 0.0, 400.0, setup_minutes=20.0)
    check_timeline(tl, 0.0, 400.0)
    states = [s for _, _, s in tl]
    assert states == ["idle", "setup", "patient_in_room", "procedure", "patient_in_room",
                      "turnover", "setup", "patient_in_room", "procedure"]
    assert tl[1][:2] == (80.0, 100.0) and tl[5][:2] == (210.0, 240.0)
    assert tl[6][:2] == (240.0, 250.0)
    assert tl[7][1] - tl[7][0] < 1.01e-3  # the bridge
    assert tl[-1][1] == 400.0  # no procedure_end before the horizon: runs to the end
    names = [m for _, m in true_milestones(tl)]
    assert names == ["in_room", "procedure_start", "procedure_end", "out_of_room",
                     "room_ready", "in_room", "procedure_start"]
    with pytest.raises(ValueError):
        state_at(tl, 400.0)
    sub = room_timeline(to_frame(rows), "R", 120.0, 220.0)
    check_timeline(sub, 120.0, 220.0)
    assert [s for _, _, s in sub] == ["patient_in_room", "procedure", "patient_in_room",
                                      "turnover"]


def test_allowed_transitions_are_all_reachable():
    for s in STATES:
        assert set(ALLOWED[s]) <= set(STATES)


# ------------------------------------------------------------------------------ frames


def test_render_frame_shape_dtype_and_determinism():
    s = _setup(0)
    a = render_frame("procedure", s, np.random.default_rng(7), t=3.0, size=96)
    b = render_frame("procedure", s, np.random.default_rng(7), t=3.0, size=96)
    c = render_frame("procedure", s, np.random.default_rng(8), t=3.0, size=96)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError):
        render_frame("sleeping", s, np.random.default_rng(0), size=32)


def test_states_look_different():
    s = dataclasses.replace(_setup(1), noise_sigma=0.0)
    imgs = {st: render_frame(st, s, np.random.default_rng(3), t=10.0, size=128).astype(float)
            for st in STATES}
    for i, a in enumerate(STATES):
        for b in STATES[i + 1:]:
            assert np.abs(imgs[a] - imgs[b]).mean() > 3.0, (a, b)


def test_setups_vary_in_colour_and_geometry():
    ss = [_setup(k) for k in range(6)]
    for name in ("floor_hue", "table_angle", "room_w", "scrub_hue", "zoom", "rotation"):
        assert len({getattr(s, name) for s in ss}) == len(ss), name
    imgs = [render_frame("idle", s, np.random.default_rng(0), size=96).astype(float)
            for s in ss[:3]]
    assert np.abs(imgs[0] - imgs[1]).mean() > 8.0
    assert np.abs(imgs[0] - imgs[2]).mean() > 8.0
    assert Setup.sample(np.random.default_rng(5)) == Setup.sample(np.random.default_rng(5))


def test_training_setups_in_range_and_shifted_setups_outside():
    assert set(SHIFT_RANGES) == set(TRAIN_RANGES)
    assert {n for names in SHIFT_AXES.values() for n in names} == set(TRAIN_RANGES)
    for name, (lo, hi) in TRAIN_RANGES.items():  # shift ranges never overlap training ones
        for a, b in SHIFT_RANGES[name]:
            if name in ("scrub_hue", "gown_hue"):
                a, b = a % 360.0, (b - 1e-9) % 360.0
                assert not (lo <= a <= hi) and not (lo <= b <= hi), name
            else:
                assert b < lo or a > hi, name
    for k in range(40):
        assert out_of_range(_setup(k)) == ()
        assert _setup(k).shifted == ()
    image_params = set(TRAIN_RANGES) - set(SHIFT_AXES["stream"])
    for k in range(40):
        s = _setup(1000 + k, shift=True)
        off = set(out_of_range(s))
        assert off and off == set(s.shifted), k
        assert off & image_params, k  # every shifted set-up changes how the image looks


def test_shifted_frames_render():
    s = _setup(3, shift=True)
    img = render_frame("turnover", s, np.random.default_rng(0), size=64)
    assert img.shape == (64, 64, 3)


# ------------------------------------------------------------------------------ video


def _read_all(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    cap.release()
    return frames


TL = [(0.0, 3.0, "idle"), (3.0, 6.0, "setup"), (6.0, 8.0, "patient_in_room"),
      (8.0, 10.0, "procedure")]


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_render_video_reads_back_with_truth(tmp_path, suffix):
    s = dataclasses.replace(_setup(2), drop_prob=0.0, freeze_prob=0.0)
    truth = render_video(TL, s, tmp_path / f"v{suffix}", seed=4, seconds_per_frame=30.0,
                         size=48)
    assert [i for i, _, _ in truth] == list(range(20))
    assert [t for _, t, _ in truth] == [0.5 * k for k in range(20)]
    assert all(state == state_at(TL, t) for _, t, state in truth)
    frames = _read_all(tmp_path / f"v{suffix}")
    assert len(frames) == len(truth)
    assert frames[0].shape == (48, 48, 3)


def test_render_video_drops_and_freezes(tmp_path):
    s = dataclasses.replace(_setup(2), drop_prob=0.3, freeze_prob=0.0)
    truth = render_video(TL, s, tmp_path / "d.avi", seed=4, start=1.0, end=9.0,
                         seconds_per_frame=15.0, size=32)
    grid = [1.0 + 0.25 * k for k in range(32)]
    times = [t for _, t, _ in truth]
    assert 0 < len(truth) < len(grid)  # some frames dropped (deterministic for this seed)
    assert set(times) <= set(grid) and times == sorted(times)
    assert [i for i, _, _ in truth] == list(range(len(truth)))
    assert all(state == state_at(TL, t) for _, t, state in truth)
    assert len(_read_all(tmp_path / "d.avi")) == len(truth)

    frozen = dataclasses.replace(s, drop_prob=0.0, freeze_prob=1.0)
    truth = render_video(TL, frozen, tmp_path / "f.avi", seed=4, seconds_per_frame=60.0,
                         size=32)
    frames = _read_all(tmp_path / "f.avi")
    assert len(frames) == len(truth) == 10
    assert {st for _, _, st in truth} == {"idle", "setup", "patient_in_room", "procedure"}
    assert all(np.array_equal(frames[0], f) for f in frames[1:])  # every frame repeats the first


# ------------------------------------------------------------------------------ data sets


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_render_split_layout_labels_and_determinism(tmp_path):
    out = render_split(tmp_path / "a", "train", 2, seed=11, size=48, setups=3)
    assert out == tmp_path / "a" / "train"
    for st in STATES:
        assert len(list((out / st).glob("*.jpg"))) == 2
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(STATES)
    assert {r["state"] for r in rows} == set(STATES)
    assert all((out / r["file"]).is_file() and r["file"].startswith(r["state"] + "/")
               for r in rows)
    assert len({r["setup_id"] for r in rows}) == 3
    img = cv2.imread(str(out / rows[0]["file"]))
    assert img.shape == (48, 48, 3)

    render_split(tmp_path / "b", "train", 2, seed=11, size=48, setups=3)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")

    val = render_split(tmp_path / "a", "val", 2, seed=11, size=48, setups=3)
    tr, va = _tree(out), _tree(val)
    assert not set(tr.values()) & set(va.values())  # no image shared between splits
    with open(val / "labels.csv", newline="") as fh:
        assert not {r["setup_id"] for r in csv.DictReader(fh)} & {r["setup_id"] for r in rows}


def test_render_split_shift_uses_shifted_setups(tmp_path):
    out = render_split(tmp_path, "test", 1, seed=11, shift=True, size=32, setups=0)
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(STATES) and len({r["setup_id"] for r in rows}) == len(STATES)
    assert all(r["shifted"] for r in rows)
    train = render_split(tmp_path, "train", 1, seed=11, size=32, setups=0)
    with open(train / "labels.csv", newline="") as fh:
        assert not any(r["shifted"] for r in csv.DictReader(fh))
