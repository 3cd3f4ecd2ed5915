"""``ortwin vision watch``: frames from a video file, a folder of frames or a camera, through
the classifier and the temporal layer, out as feed observations (JSON lines).

Frames are never stored unless asked (``keep_frames``). A camera that stops sending becomes a
``source_status: stale`` observation (and ``live`` when it comes back), not a crash. Frames of
any size are resized exactly as in training (:func:`vision.runtime.preprocess`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from twin.feed import Observation
from twin.schema import ScenarioError
from vision.runtime import StateModel
from vision.temporal import RoomStateDecoder, TemporalConfig, changes, observations

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class SourceError(ScenarioError):
    """A source that cannot be opened; ``str()`` is one line."""


@dataclass
class Frame:
    """A frame (``None``: the source sent nothing) and its time in seconds from the start."""

    t: float
    image: np.ndarray | None


def _is_stream(source: str) -> bool:
    return "://" in source or source.isdigit()


def frames(source: str, fps: float = 1.0, stale_s: float = 30.0,
           clock: Callable[[], float] = time.monotonic) -> Iterator[Frame]:
    """Frames sampled at ``fps`` from a folder (file order, ``i / fps`` seconds), a video file
    (its own timestamps) or a camera (wall-clock time; ``Frame(t, None)`` every ``stale_s`` of
    silence while it retries)."""
    import cv2

    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(path, "", f"no frames ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        for i, p in enumerate(files):
            yield Frame(i / fps, cv2.imread(str(p)))
        return
    stream = _is_stream(source)
    if not stream and not path.is_file():
        raise SourceError(source, "", "file not found")
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise SourceError(source, "", "OpenCV cannot open it as a video or camera")
    try:
        if not stream:
            ok, img = cap.read()
            if not ok:
                raise SourceError(source, "", "no readable frame (not a video OpenCV can read)")
            native = cap.get(cv2.CAP_PROP_FPS) or fps
            every = max(1, int(round(native / fps)))
            i = 0
            while ok:
                if i % every == 0:
                    yield Frame(i / native, img)
                i += 1
                ok, img = cap.read()
            return
        t0 = clock()
        last = t0
        next_due = t0
        while True:
            ok, img = cap.read()
            now = clock()
            if ok:
                last = now
                if now >= next_due:
                    next_due = now + 1.0 / fps
                    yield Frame(now - t0, img)
            elif now - last >= stale_s:
                yield Frame(now - t0, None)
                last = now
                cap.release()
                cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
            else:
                time.sleep(min(0.5, 1.0 / fps))
    finally:
        cap.release()


def watch(source: str, room: str, model: StateModel, out: TextIO, fps: float = 1.0,
          start: dt.datetime | None = None, stale_s: float = 30.0,
          keep_frames: Path | None = None, cfg: TemporalConfig | None = None,
          source_id: str | None = None, limit: int | None = None,
          heartbeat_s: float = 60.0) -> int:
    """Run ``source`` through ``model`` and the decoder, writing observations to ``out`` as
    they are decided (one JSON line each, flushed), and a ``source_status: live`` heartbeat
    every ``heartbeat_s`` seconds of video (0: none) so that silence means a dead camera;
    returns the number written."""
    start = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
    cfg = cfg or TemporalConfig(fps=fps)
    dec = RoomStateDecoder(cfg)
    detail = f"model {model.path.name}"
    sid = source_id or Path(source).name or source
    written = 0
    prev: str | None = None
    stale = False

    def emit(obs: list[Observation]) -> None:
        nonlocal written
        for o in obs:
            out.write(o.line() + "\n")
            written += 1
        out.flush()

    def status(t: float, value: str) -> None:
        emit([Observation(time=start + dt.timedelta(seconds=t), room=room, kind="source_status",
                          value=value, source="camera", source_id=sid, detail=detail)])

    n, last_t, beat = 0, 0.0, 0.0
    for fr in frames(source, fps, stale_s):
        if fr.image is None:
            if not stale:
                status(fr.t, "stale")
                stale = True
            continue
        if stale:
            status(fr.t, "live")
            stale = False
        if keep_frames is not None:
            import cv2

            keep_frames.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(keep_frames / f"{n:07d}.jpg"), fr.image)
        probs = model.predict([fr.image])[0]
        decided = dec.push(fr.t, probs)
        chs = changes(decided, prev)
        if decided:
            prev = decided[-1].state
        emit(observations(chs, room, start, sid, detail))
        if heartbeat_s > 0 and fr.t - beat >= heartbeat_s:
            status(fr.t, "live")
            beat = fr.t
        n += 1
        if limit is not None and n >= limit:
            break
        last_t = fr.t
    decided = dec.flush()
    emit(observations(changes(decided, prev), room, start, sid, detail))
    status(last_t, "stopped")
    return written
