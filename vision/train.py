"""Training the room-state classifier with Ultralytics, offline and seeded, and exporting it to
ONNX for the torch-free runtime.

Only the ``vision-train`` extra provides Ultralytics and torch; nothing else imports this
module. Every way Ultralytics reaches for the network is closed by configuration before it is
imported: ``YOLO_OFFLINE`` (no version check, no hub), ``YOLO_AUTOINSTALL=false`` (no ``pip
install`` on export), a project ``YOLO_CONFIG_DIR`` with settings ``sync`` off (no telemetry)
and a local font copied in as ``Arial.ttf`` (no font download), ``plots=False``, and a model
built from its YAML (no pretrained weights).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MODEL_YAML = "yolo11n-cls.yaml"
"""The architecture: Ultralytics' nano classifier, built from its YAML (random weights)."""

FONTS = ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@dataclass(frozen=True)
class TrainConfig:
    """What a training run needs; saved beside the model (the model card quotes it)."""

    data: str
    out: str
    epochs: int = 15
    imgsz: int = 224
    batch: int = 32
    seed: int = 0
    model: str = MODEL_YAML
    workers: int = 0
    device: str = "cpu"
    erasing: float = 0.0
    """Random erasing off (Ultralytics' default is 0.4): erasing the patient, the one thing that
    tells ``patient_in_room`` from ``setup``, would leave a wrong label; the renderer already
    randomises occlusion."""
    scale: float = 0.25
    """Crops keep 75-100% of the frame (default 50-100%), so the table stays in view."""
    flipud: float = 0.5
    """A ceiling camera sees the room from above: a vertical flip is as valid as a horizontal one."""


def offline(config_dir: str | Path) -> Path:
    """Configure Ultralytics for offline use (call before importing it); returns the folder
    where its settings and fonts live."""
    cfg = Path(config_dir).resolve()
    cfg.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ.setdefault("YOLO_VERBOSE", "false")
    user = cfg / "Ultralytics"
    user.mkdir(exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        for font in FONTS:
            if not (user / name).exists() and Path(font).is_file():
                shutil.copy(font, user / name)
    settings = user / "settings.json"
    data = json.loads(settings.read_text()) if settings.is_file() else {}
    data.update(sync=False, hub=False if "hub" in data else data.get("hub", False))
    settings.write_text(json.dumps(data))
    return user


def train(cfg: TrainConfig) -> dict:
    """Train on ``cfg.data`` (``train/`` and ``val/`` class folders), export ONNX, and return
    a summary (paths, seconds per epoch, top-1 on val)."""
    out = Path(cfg.out).resolve()
    offline(out / ".ultralytics")
    from ultralytics import YOLO, settings

    settings.update({"sync": False})
    model = YOLO(cfg.model, task="classify")
    t0 = time.perf_counter()
    model.train(data=str(Path(cfg.data).resolve()), epochs=cfg.epochs, imgsz=cfg.imgsz,
                batch=cfg.batch, seed=cfg.seed, deterministic=True, workers=cfg.workers,
                device=cfg.device, pretrained=False, plots=False, project=str(out),
                name="run", exist_ok=True, verbose=False, amp=False, erasing=cfg.erasing,
                scale=cfg.scale, flipud=cfg.flipud)
    seconds = time.perf_counter() - t0
    onnx = Path(model.export(format="onnx", imgsz=cfg.imgsz, simplify=True, dynamic=True,
                             opset=17))
    top1 = float(getattr(model.trainer, "metrics", {}).get("metrics/accuracy_top1", float("nan")))
    return {"config": asdict(cfg), "onnx": str(onnx), "train_seconds": seconds,
            "seconds_per_epoch": seconds / max(1, cfg.epochs), "val_top1_ultralytics": top1,
            "best": str(out / "run" / "weights" / "best.pt")}


SPLITS = {"train": False, "val": False, "test_shift": True}
"""Rendered splits and whether each is drawn outside the training ranges (domain shift).
``val`` is the in-range held-out set: its own seed stream and set-ups never used in train."""


def make_dataset(root: str | Path, per_class: int, seed: int, imgsz: int = 224,
                 held_out: int | None = None) -> Path:
    """Render ``train`` (``per_class`` frames per state from ``per_class // 2`` set-ups, at
    least 50), ``val`` and ``test_shift`` (``held_out`` per state, default a third of
    ``per_class``, from 50 set-ups each) under ``root``."""
    from vision.render import render_split

    held = held_out if held_out is not None else max(1, per_class // 3)
    for split, shift in SPLITS.items():
        train = split == "train"
        render_split(root, split, per_class if train else held, seed, shift=shift,
                     size=imgsz, setups=max(50, per_class // 2) if train else 50)
    return Path(root)
