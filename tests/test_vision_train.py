"""The training path works end to end offline: a few rendered frames, one epoch, ONNX export,
and the torch-free runtime loads the result, while every socket call fails the run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, socket, sys
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args)[:120])
        raise OSError("network disabled by the test")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    from vision.train import TrainConfig, make_dataset, train
    from vision.runtime import StateModel
    out = sys.argv[1]
    data = make_dataset(out + "/data", 4, seed=3, imgsz=64, held_out=2)
    summary = train(TrainConfig(data=str(data), out=out + "/train", epochs=1, imgsz=64,
                                batch=8, seed=3))
    import cv2
    frame = cv2.imread(str(next((data / "val" / "procedure").glob("*.jpg"))))
    probs = StateModel(summary["onnx"]).predict([frame, frame])
    print("RESULT " + json.dumps({"attempts": attempts, "shape": list(probs.shape),
                                  "sum": float(probs.sum()), "onnx": summary["onnx"],
                                  "torch_in_runtime": None}))
""")


def test_one_epoch_trains_and_exports_with_the_network_refused(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, text=True,
                       capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line.removeprefix("RESULT "))
    assert got["attempts"] == []  # no DNS lookup, no connection: fonts, checks, telemetry closed
    assert got["shape"] == [2, 5] and abs(got["sum"] - 2.0) < 1e-6
    assert Path(got["onnx"]).is_file()
    settings = json.loads((tmp_path / "train" / ".ultralytics" / "Ultralytics" /
                           "settings.json").read_text())
    assert settings["sync"] is False
