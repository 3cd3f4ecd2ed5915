"""Torch-free inference: the exported ONNX room-state classifier on onnxruntime.

Preprocessing is Ultralytics' classification transform, reproduced without torch: BGR to RGB,
resize the shortest side to the model's size with Pillow's bilinear filter (what torchvision's
``Resize`` does to a PIL image), centre crop, scale to [0, 1] (Ultralytics' mean 0, std 1),
channels first. Probabilities come back in :data:`vision.states.STATES` order whatever order the
model's classes were trained in (Ultralytics sorts class folders by name).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twin.schema import ScenarioError
from vision.states import STATES

MODEL = Path(__file__).resolve().parent / "models" / "or_states.onnx"
"""The bundled room-state model (trained by ``make vision-model``)."""


class ModelError(ScenarioError):
    """A model file that is missing or unusable; ``str()`` is one line."""


def preprocess(frames: Sequence[np.ndarray], size: int) -> np.ndarray:
    """``(N, 3, size, size)`` float32 inputs from BGR uint8 frames of any size."""
    from PIL import Image

    out = np.empty((len(frames), 3, size, size), dtype=np.float32)
    for i, f in enumerate(frames):
        rgb = np.ascontiguousarray(f[..., ::-1])
        img = Image.fromarray(rgb)
        w, h = img.size
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        img = img.resize((nw, nh), Image.BILINEAR)
        left = int(round((nw - size) / 2.0))
        top = int(round((nh - size) / 2.0))
        crop = np.asarray(img, dtype=np.float32)[top:top + size, left:left + size]
        out[i] = crop.transpose(2, 0, 1) / 255.0
    return out


class StateModel:
    """The room-state classifier: ``predict(frames)`` gives probabilities over
    :data:`STATES` for each BGR frame."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        p = Path(path)
        if not p.is_file():
            raise ModelError(p, "", "model file not found (train one with `make vision-model`, "
                             "or give --model)")
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError(p, "", "onnxruntime is not installed (pip install "
                             "'ortwin[vision]')") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types
            raise ModelError(p, "", f"not a usable ONNX model ({str(e).splitlines()[0]})") \
                from None
        meta = self.session.get_modelmeta().custom_metadata_map
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.size = int(inp.shape[-1]) if isinstance(inp.shape[-1], int) else int(
            ast.literal_eval(meta.get("imgsz", "[224, 224]"))[0])
        names = ast.literal_eval(meta["names"]) if "names" in meta else dict(enumerate(STATES))
        order = [names[i] for i in sorted(names)]
        missing = [s for s in STATES if s not in order]
        if missing:
            raise ModelError(p, "names", f"the model's classes {order} lack {missing}")
        self.columns = [order.index(s) for s in STATES]
        self.path = p
        self.meta = dict(meta)

    def predict(self, frames: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """``(N, 5)`` probabilities (rows sum to 1) in :data:`STATES` order."""
        outs = []
        for i in range(0, len(frames), batch):
            x = preprocess(frames[i:i + batch], self.size)
            y = self.session.run(None, {self.input: x})[0]
            outs.append(np.asarray(y, dtype=np.float64))
        if not outs:
            return np.zeros((0, len(STATES)))
        y = np.concatenate(outs)[:, self.columns]
        if (y < 0).any() or not np.allclose(y.sum(axis=1), 1.0, atol=1e-3):  # logits: softmax
            y = np.exp(y - y.max(axis=1, keepdims=True))
        return y / y.sum(axis=1, keepdims=True)
