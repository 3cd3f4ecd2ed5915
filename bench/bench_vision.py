"""Throughput of the torch-free room-state runtime (onnxruntime on CPU threads).

Reports frames per second at 224 and 320 px for the model alone (inputs prepared before timing)
and for the whole path (BGR frame -> preprocessing -> model -> probabilities), on one thread and
on all cores, plus the renderer's frames per second. Usage::

    .venv/bin/python bench/bench_vision.py [--model vision/models/or_states.onnx] [--frames 400]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vision.render import Setup, render_frame
from vision.runtime import (
    MODEL,
    StateModel,
    preprocess,
)
from vision.states import STATES


def best_rate(fn, n: int, repeat: int = 3) -> float:
    """Items per second of ``fn`` (which handles ``n`` items), the best of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (and JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    setup = Setup.sample(rng)
    t = time.perf_counter()
    frames = [render_frame(STATES[i % 5], setup, rng, float(i), size=320)
              for i in range(args.frames)]
    render_fps = args.frames / (time.perf_counter() - t)
    rows = []
    cores = os.cpu_count() or 1
    for threads in sorted({1, cores}):
        m = StateModel(args.model, threads=threads)
        for size in (224, 320):
            x = preprocess(frames, size)
            model_only = best_rate(lambda x=x, m=m: [m.session.run(None, {m.input: x[i:i + 32]})
                                                 for i in range(0, len(x), 32)], len(x))
            m.size = size
            whole = best_rate(lambda m=m: m.predict(frames), len(frames))
            rows.append({"threads": threads, "imgsz": size, "model_fps": round(model_only, 1),
                         "end_to_end_fps": round(whole, 1),
                         "model_fps_per_core": round(model_only / threads, 1)})
    print(f"model {args.model}; {args.frames} rendered 320 px frames; renderer "
          f"{render_fps:.0f} frames/s (320 px, one set-up)")
    print(f"{'threads':>7} {'imgsz':>5} {'model fps':>10} {'end-to-end fps':>15} "
          f"{'model fps/core':>15}")
    for r in rows:
        print(f"{r['threads']:>7} {r['imgsz']:>5} {r['model_fps']:>10} {r['end_to_end_fps']:>15} "
              f"{r['model_fps_per_core']:>15}")
    if args.json:
        Path(args.json).write_text(json.dumps({"render_fps": render_fps, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
