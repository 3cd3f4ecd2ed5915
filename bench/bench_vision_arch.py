"""Classifier or detector: the CPU cost of one training step and of inference for Ultralytics'
nano classifier (the committed model's architecture, 224 px) against the nano detector that a
detector-based state decision would need (640 px, its native size, and 320 px), all built from
their YAMLs with random weights in this process. Needs the ``vision-train`` extra. Usage::

    .venv/bin/python bench/bench_vision_arch.py [--batch 8] [--repeat 3]

Prints seconds per image for a training step (forward + backward + optimiser step) and for
inference, and each as a ratio to the classifier.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_vision import best_rate  # best of N runs
from vision.train import offline


def _tensors(out) -> list:
    """Every tensor in a model's output (a tensor, or lists, tuples and dicts of them)."""
    import torch

    if torch.is_tensor(out):
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) \
        else []
    return [t for o in items for t in _tensors(o)]


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print a table (JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    offline(Path(tempfile.mkdtemp()) / ".ultralytics")
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    rows = []
    for name, yaml, imgsz in (("classifier", "yolo11n-cls.yaml", 224),
                              ("detector", "yolo11n.yaml", 640),
                              ("detector", "yolo11n.yaml", 320)):
        net = YOLO(yaml).model.float()
        x = torch.rand(args.batch, 3, imgsz, imgsz)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)

        def step(net=net, x=x, opt=opt):
            net.train()
            loss = sum(t.float().mean() for t in _tensors(net(x)))
            opt.zero_grad()
            loss.backward()
            opt.step()

        def infer(net=net, x=x):
            net.eval()
            with torch.no_grad():
                net(x)

        params = sum(p.numel() for p in net.parameters())
        rows.append({"model": name, "yaml": yaml, "imgsz": imgsz, "params_m": params / 1e6,
                     "train_s_per_image": 1.0 / best_rate(step, args.batch, args.repeat),
                     "infer_s_per_image": 1.0 / best_rate(infer, args.batch, args.repeat)})
    ref = rows[0]
    for r in rows:
        r["train_ratio"] = r["train_s_per_image"] / ref["train_s_per_image"]
        r["infer_ratio"] = r["infer_s_per_image"] / ref["infer_s_per_image"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"{'model':<11}{'px':>5}{'params M':>10}{'train s/img':>13}{'x cls':>7}"
          f"{'infer s/img':>13}{'x cls':>7}")
    for r in rows:
        print(f"{r['model']:<11}{r['imgsz']:>5}{r['params_m']:>10.2f}"
              f"{r['train_s_per_image']:>13.4f}{r['train_ratio']:>7.1f}"
              f"{r['infer_s_per_image']:>13.4f}{r['infer_ratio']:>7.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
