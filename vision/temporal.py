"""From per-frame state probabilities to clean room states and milestones, online.

A hidden semi-Markov model over the phases of a room (:data:`vision.states.PHASES`: the five
room states, with a patient in the room split into induction and emergence): each phase is a
chain of sub-states that enforces a minimum dwell time and then stays with a geometric time of
mean ``mean_stay_s``, it moves on with the odds of :data:`vision.states.PHASE_NEXT` (only moves
a room can make, :data:`vision.states.ALLOWED`), and a frame's classifier probabilities are the
emission of every phase that looks like that state (tempered by ``alpha``). Decoding is
fixed-lag Viterbi: the state of the frame ``lag`` frames back is committed from the best path
through the frames seen so far, and every path that disagrees with a committed state is
dropped, so committed states never change and only allowed transitions are ever emitted. The delay from a frame to its decision is at most ``lag`` frames.
Missing frames (a gap in time) advance the model without evidence.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from twin.feed import Observation
from vision.states import ALLOWED, PHASE_MEAN_S, PHASE_NEXT, PHASES, STATES, milestones

NEG = -1e18


@dataclass(frozen=True)
class TemporalConfig:
    """Decoder settings: frame rate, minimum dwell per room state (seconds), decision lag
    (seconds), mean time in each phase (seconds; one number for all), the odds of each phase's
    next phase (phases left out keep :data:`vision.states.PHASE_NEXT`), emission temperature
    and probability floor."""

    fps: float = 1.0
    min_dwell_s: dict[str, float] = field(default_factory=lambda: {s: 20.0 for s in STATES})
    lag_s: float = 30.0
    mean_stay_s: float | dict[str, float] = field(default_factory=lambda: dict(PHASE_MEAN_S))
    next: dict[str, dict[str, float]] = field(default_factory=lambda: {
        k: dict(v) for k, v in PHASE_NEXT.items()})
    alpha: float = 1.0
    floor: float = 1e-4

    def stay_s(self, phase: str) -> float:
        """Mean seconds in ``phase``."""
        m = self.mean_stay_s
        return float(m) if isinstance(m, (int, float)) else float(m.get(phase, 600.0))

    def frames(self, seconds: float) -> int:
        """Whole frames in ``seconds`` at ``fps`` (at least 1)."""
        return max(1, int(round(seconds * self.fps)))


@dataclass(frozen=True)
class Decision:
    """The committed state of one frame: its time (seconds), the state, and the mean classifier
    probability of that state over the frames the decision saw."""

    time: float
    state: str
    confidence: float


@dataclass(frozen=True)
class Change:
    """A committed change of room state at ``time`` (seconds) and the milestones it implies."""

    time: float
    prev: str | None
    state: str
    confidence: float
    milestones: tuple[str, ...]


class RoomStateDecoder:
    """Online fixed-lag Viterbi decoder of one room's state (see the module docstring)."""

    def __init__(self, cfg: TemporalConfig | None = None, initial: str | None = None) -> None:
        self.cfg = cfg or TemporalConfig()
        c = self.cfg
        phases = list(PHASES)
        label = [STATES.index(PHASES[p]) for p in phases]
        self.dwell = [c.frames(c.min_dwell_s.get(PHASES[p], 0.0)) for p in phases]
        self.base = np.concatenate([[label[i]] * d for i, d in enumerate(self.dwell)])
        starts = np.cumsum([0, *self.dwell[:-1]])
        ends = starts + np.array(self.dwell) - 1
        n = len(self.base)
        trans = np.full((n, n), NEG)
        for i, p in enumerate(phases):
            for k in range(starts[i], ends[i]):
                trans[k, k + 1] = 0.0  # inside the minimum dwell: move on
            odds = {q: w for q, w in c.next.get(p, PHASE_NEXT[p]).items() if w > 0}
            bad = [q for q in odds if q not in PHASES or PHASES[q] == PHASES[p]
                   or PHASES[q] not in ALLOWED[PHASES[p]]]
            if bad or not odds:
                raise ValueError(f"TemporalConfig.next[{p!r}]: expected moves to other phases a "
                                 f"room can make ({', '.join(ALLOWED[PHASES[p]])}), got "
                                 f"{sorted(odds) or 'none'}")
            leave = 1.0 / max(1.0, c.stay_s(p) * c.fps)
            total = sum(odds.values())
            trans[ends[i], ends[i]] = math.log(1.0 - leave)
            for q, w in odds.items():
                trans[ends[i], starts[phases.index(q)]] = math.log(leave * w / total)
        self.trans = trans
        self.lag = c.frames(c.lag_s)
        init = np.full(n, NEG)
        if initial is None:
            init[starts] = -math.log(len(phases))  # any phase, at the start of its dwell...
            init[ends] = -math.log(len(phases))    # ...or well into it
        elif initial not in STATES:
            raise ValueError(f"initial state {initial!r}: expected one of {', '.join(STATES)}")
        else:
            for i, p in enumerate(phases):
                if PHASES[p] == initial:
                    init[ends[i]] = 0.0
        self.delta = init
        self.bp: list[np.ndarray] = []      # back-pointers of the frames not yet committed
        self.times: list[float] = []
        self.probs: list[np.ndarray | None] = []
        self.committed: list[Decision] = []
        self._last: float | None = None

    # --- feeding --------------------------------------------------------------------------
    def push(self, t: float, probs: Sequence[float] | np.ndarray | None) -> list[Decision]:
        """Add the frame at ``t`` seconds (``probs`` over :data:`STATES`, or None for a frame
        that could not be read) and return the decisions this commits (oldest first)."""
        out: list[Decision] = []
        step = 1.0 / self.cfg.fps
        if self._last is not None:
            missing = int(round((t - self._last) / step)) - 1
            for k in range(1, min(missing, 10 * self.lag) + 1):  # a gap: advance without evidence
                out += self._step(self._last + k * step, None)
        if probs is not None:
            probs = np.asarray(probs, dtype=float)
            probs = probs / max(float(probs.sum()), 1e-12)
        out += self._step(t, probs)
        self._last = t
        return out

    def flush(self) -> list[Decision]:
        """Commit every frame still waiting (end of stream)."""
        out: list[Decision] = []
        while self.times:
            out.append(self._commit(len(self.times) - 1))
        return out

    # --- internals ------------------------------------------------------------------------
    def _emission(self, probs: np.ndarray | None) -> np.ndarray:
        if probs is None:
            return np.zeros(len(self.base))
        p = np.clip(probs, self.cfg.floor, 1.0)
        return self.cfg.alpha * np.log(p)[self.base]

    def _step(self, t: float, probs: np.ndarray | None) -> list[Decision]:
        scores = self.delta[:, None] + self.trans
        bp = scores.argmax(axis=0)
        self.delta = scores[bp, np.arange(len(bp))] + self._emission(probs)
        self.delta -= self.delta.max()
        self.bp.append(bp)
        self.times.append(t)
        self.probs.append(probs)
        if len(self.times) > self.lag:
            return [self._commit(len(self.times) - 1)]
        return []

    def _commit(self, back: int) -> Decision:
        """Commit the oldest waiting frame from the best path (``back`` steps behind the
        newest), and drop every hypothesis that disagrees with it."""
        best = int(self.delta.argmax())
        path = [best]  # the best path's sub-states, newest frame first
        anc = np.arange(len(self.delta))
        for k in range(len(self.bp) - 1, len(self.bp) - 1 - back, -1):
            anc = self.bp[k][anc]
            path.append(int(self.bp[k][path[-1]]))
        sub = int(anc[best])
        state = int(self.base[sub])
        self.delta = np.where(anc == sub, self.delta, NEG)
        on_path = [p[state] for p, q in zip(self.probs, reversed(path), strict=True)
                   if p is not None and self.base[q] == state]
        conf = float(np.mean(on_path)) if on_path else 0.0
        t = self.times.pop(0)
        self.bp.pop(0)
        self.probs.pop(0)
        d = Decision(t, STATES[state], conf)
        self.committed.append(d)
        return d


def changes(decisions: Iterable[Decision], prev: str | None = None) -> list[Change]:
    """The state changes in a run of decisions, each with the milestones it implies."""
    out: list[Change] = []
    for d in decisions:
        if d.state != prev:
            ms = milestones(prev, d.state) if prev is not None else ()
            out.append(Change(d.time, prev, d.state, d.confidence, ms))
            prev = d.state
    return out


def smooth(times: Sequence[float], probs: np.ndarray, cfg: TemporalConfig | None = None,
           initial: str | None = None) -> list[Decision]:
    """Decode a whole sequence (every frame's decision, in order)."""
    dec = RoomStateDecoder(cfg, initial)
    out: list[Decision] = []
    for t, p in zip(times, probs, strict=True):
        out += dec.push(float(t), p)
    return out + dec.flush()


def observations(chs: Iterable[Change], room: str, start: dt.datetime,
                 source_id: str | None = None, detail: str = "") -> list[Observation]:
    """Feed observations of state changes: a ``room_state`` line per change and a
    ``milestone`` line per milestone it implies, at ``start`` + the change's seconds."""
    out: list[Observation] = []
    for c in chs:
        when = start + dt.timedelta(seconds=c.time)
        common = {"time": when, "room": room, "source": "camera", "source_id": source_id,
                  "confidence": min(1.0, max(0.0, c.confidence)), "detail": detail}
        out.append(Observation(kind="room_state", value=c.state, **common))
        out += [Observation(kind="milestone", value=m, **common) for m in c.milestones]
    return out
