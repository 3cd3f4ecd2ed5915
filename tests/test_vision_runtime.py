"""The torch-free runtime with the committed model: preprocessing equals Ultralytics' own
predict, frames of any size are handled, `ortwin vision watch` turns a rendered clip into feed
lines with milestones, a silent camera becomes a stale event, bad inputs exit 2 in one line,
and the core never imports the vision stack."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ortwin.cli import main
from twin.feed import parse_line, read_feed
from vision.render import Setup, render_frame, render_video
from vision.runtime import MODEL, ModelError, StateModel, preprocess
from vision.states import STATES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> StateModel:
    return StateModel(MODEL)


def _frames(n: int, seed: int, sizes=((320, 320), (480, 640), (200, 300))) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        setup = Setup.sample(rng)
        img = render_frame(STATES[i % len(STATES)], setup, rng, t=float(i), size=320)
        h, w = sizes[i % len(sizes)]
        out.append(cv2.resize(img, (w, h)))
    return out


def test_runtime_matches_ultralytics_predict(model, tmp_path, monkeypatch):
    from vision.train import offline

    for k in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR", "YOLO_VERBOSE"):
        monkeypatch.delenv(k, raising=False)
    offline(tmp_path / "cfg")
    from ultralytics import YOLO

    frames = _frames(30, 5)
    ours = model.predict(frames)
    yolo = YOLO(str(MODEL), task="classify")
    res = yolo.predict(frames, imgsz=model.size, device="cpu", verbose=False)
    names = res[0].names
    theirs = np.array([[r.probs.data.numpy()[[k for k, v in names.items() if v == s][0]]
                        for s in STATES] for r in res])
    assert (ours.argmax(1) == theirs.argmax(1)).all()  # same top-1 on every frame
    assert np.abs(ours - theirs).max() < 1e-4


def test_preprocess_handles_any_frame_size():
    for h, w in ((224, 224), (480, 640), (1080, 1920), (300, 200), (31, 57)):
        x = preprocess([np.zeros((h, w, 3), np.uint8)], 224)
        assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32


def _clip(tmp_path: Path, seed: int = 4) -> tuple[Path, list]:
    timeline = [(0.0, 20.0, "idle"), (20.0, 40.0, "setup"), (40.0, 60.0, "patient_in_room"),
                (60.0, 130.0, "procedure"), (130.0, 150.0, "patient_in_room"),
                (150.0, 180.0, "turnover"), (180.0, 200.0, "idle")]
    setup = Setup.sample(np.random.default_rng(seed))
    setup = Setup(**{**setup.__dict__, "drop_prob": 0.0, "freeze_prob": 0.0})
    path = tmp_path / "clip.avi"
    rows = render_video(timeline, setup, path, seed, seconds_per_frame=60.0, size=320)
    return path, rows


def test_watch_turns_a_clip_into_feed_lines(model, tmp_path):
    path, rows = _clip(tmp_path)
    feed = tmp_path / "feed.jsonl"
    # the clip is one simulated minute per frame played at 10 frames/s: dwell and lag scaled
    code = main(["vision", "watch", str(path), "--room", "OR2", "--fps", "10",
                 "--start", "2026-11-23T07:00:00+01:00", "--out", str(feed), "--lag", "0.5",
                 "--min-dwell", "0.3"])
    assert code == 0
    f = read_feed(feed)
    assert f.quarantine == [] and f.observations
    states = [o.value for o in f.observations if o.kind == "room_state"]
    ms = [o.value for o in f.observations if o.kind == "milestone"]
    assert states == ["idle", "setup", "patient_in_room", "procedure", "patient_in_room",
                      "turnover", "idle"]
    assert ms == ["in_room", "procedure_start", "procedure_end", "out_of_room", "room_ready"]
    t0 = f.observations[0].time
    when = {o.value: (o.time - t0).total_seconds() for o in f.observations
            if o.kind == "milestone"}
    assert when["in_room"] == pytest.approx(4.0, abs=0.2)  # frame 40 of the clip at 10 fps
    assert f.observations[-1].kind == "source_status" and f.observations[-1].value == "stopped"
    assert all(o.room == "OR2" and o.source == "camera" for o in f.observations)


def test_frames_are_not_stored_unless_asked(model, tmp_path):
    path, _ = _clip(tmp_path)
    before = set(tmp_path.rglob("*"))
    assert main(["vision", "watch", str(path), "--room", "OR2", "--fps", "10",
                 "--out", str(tmp_path / "f.jsonl")]) == 0
    new = set(tmp_path.rglob("*")) - before
    assert new == {tmp_path / "f.jsonl"}
    keep = tmp_path / "kept"
    assert main(["vision", "watch", str(path), "--room", "OR2", "--fps", "10",
                 "--out", str(tmp_path / "g.jsonl"), "--keep-frames", str(keep)]) == 0
    assert len(list(keep.glob("*.jpg"))) > 10


def test_a_silent_camera_becomes_a_stale_event(model, monkeypatch):
    import vision.watch as w

    img = render_frame("idle", Setup.sample(np.random.default_rng(1)),
                       np.random.default_rng(1), size=224)
    script = [True] * 3 + [False] * 25 + [True] * 3
    ticks = iter(range(10_000))

    class FakeCapture:
        def __init__(self, *_a):
            pass

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return True

        def read(self):
            if not script:
                raise KeyboardInterrupt  # the operator stops the watch
            return (script.pop(0), img)

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    monkeypatch.setattr(w.time, "sleep", lambda s: None)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for fr in w.frames("rtsp://camera/or3", fps=1.0, stale_s=10.0,
                           clock=lambda: float(next(ticks))):
            seen.append(fr.image is None)
    assert seen[:3] == [False] * 3 and seen.count(True) == 2 and seen[-1] is False

    scripted = [w.Frame(0.0, img), w.Frame(1.0, img), w.Frame(12.0, None), w.Frame(13.0, img)]
    monkeypatch.setattr(w, "frames", lambda *a, **k: iter(scripted))
    buf = io.StringIO()
    w.watch("rtsp://camera/or3", "OR3", model, buf)
    status = [parse_line(x).value for x in buf.getvalue().splitlines()
              if parse_line(x).kind == "source_status"]
    assert status == ["stale", "live", "stopped"]


@pytest.mark.parametrize(("args", "expected"), [
    (["vision", "watch", "missing.avi", "--room", "OR1"], "missing.avi: file not found"),
    (["vision", "watch", "README.md", "--room", "OR1"], "README.md: "),
    (["vision", "watch", "scenarios", "--room", "OR1"], "scenarios: no frames"),
    (["vision", "watch", "scenarios", "--room", "OR1", "--model", "nope.onnx"],
     "nope.onnx: model file not found"),
    (["vision", "watch", "scenarios", "--room", "OR1", "--model", "README.md"],
     "README.md: not a usable ONNX model"),
])
def test_bad_sources_and_models_exit_2_in_one_line(args, expected, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ortwin: ") and expected in err and "\n" not in err


def test_model_errors_are_one_line():
    with pytest.raises(ModelError):
        StateModel(ROOT / "nope.onnx")


def test_core_app_and_cli_never_import_the_vision_stack():
    code = (
        "import sys\n"
        "import ortwin.cli\n"
        "ortwin.cli.build_parser().parse_args(['vision', 'watch', 'x', '--room', 'OR1'])\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=120).run()\n"
        "heavy = ('torch', 'ultralytics', 'onnxruntime', 'cv2', 'torchvision')\n"
        "print('HEAVY=' + ','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert "HEAVY=\n" in out.stdout + "\n" and out.stdout.strip().endswith("HEAVY=")


def test_feed_lines_from_watch_parse(model, tmp_path):
    path, _ = _clip(tmp_path, seed=6)
    buf = io.StringIO()
    from vision.watch import watch

    n = watch(str(path), "OR5", model, buf, fps=10.0)
    lines = buf.getvalue().splitlines()
    assert n == len(lines) and all(parse_line(x).room == "OR5" for x in lines)
