"""The true state of one operating room over time, read off the twin's event log.

This is the ground truth that rendered video is labelled with and that a vision pipeline's
detected milestones are scored against (states and transitions: :mod:`vision.states`).

Rules (times are minutes from the start of the horizon, as in :mod:`twin.events`):

* ``in_room`` -> ``procedure_start``: ``patient_in_room`` (induction, positioning);
* ``procedure_start`` -> ``procedure_end``: ``procedure``;
* ``procedure_end`` -> ``out_of_room``: ``patient_in_room`` (emergence);
* ``out_of_room`` -> the case's ``turnover_end`` (without one: the room's next ``in_room`` or
  ``room_close``, else the end of the log): ``turnover``;
* the ``setup_minutes`` before each ``in_room`` that are otherwise idle: ``setup``;
* everything else (closed, down, or open and waiting): ``idle``.

A milestone that is missing because the horizon ended leaves its state running to ``end``.
Where two milestones coincide so that a disallowed jump would result (say ``in_room`` and
``procedure_start`` at the same minute), a :data:`BRIDGE`-minute interval of the missing
state is inserted at the start of the later interval so that every consecutive pair of
intervals is a transition in :data:`vision.states.ALLOWED`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import pandas as pd

from vision.states import ALLOWED, STATES, milestones

Timeline = list[tuple[float, float, str]]
"""``[(start, end, state), ...]``: contiguous, non-overlapping, sorted, merged."""

BRIDGE: float = 1e-3
"""Minutes given to an inserted bridging state (see the module docstring)."""

_PRIORITY: dict[str, int] = {
    "idle": 0, "setup": 1, "turnover": 2, "patient_in_room": 3, "procedure": 4,
}


def _first(times: pd.Series) -> float:
    return float(times.min()) if len(times) else math.nan


def _bridge_path(a: str, b: str) -> list[str]:
    """Shortest chain of states strictly between ``a`` and ``b`` (breadth-first in ALLOWED)."""
    prev: dict[str, str | None] = {a: None}
    queue = deque([a])
    while queue:
        s = queue.popleft()
        for n in ALLOWED[s]:
            if n not in prev:
                prev[n] = s
                queue.append(n)
    if b not in prev:  # pragma: no cover - every state is reachable from every other
        raise ValueError(f"no path {a} -> {b}")
    path: list[str] = []
    s = prev[b]
    while s is not None and s != a:
        path.append(s)
        s = prev[s]
    return path[::-1]


def _merge(intervals: Timeline) -> Timeline:
    out: Timeline = []
    for a, b, s in intervals:
        if b <= a:
            continue
        if out and out[-1][2] == s and out[-1][1] == a:
            out[-1] = (out[-1][0], b, s)
        else:
            out.append((a, b, s))
    return out


def room_timeline(events: pd.DataFrame, room: str, start: float, end: float,
                  setup_minutes: float = 20.0) -> Timeline:
    """True state of ``room`` over ``[start, end)`` as ``[(start, end, state), ...]`` from the
    twin's events frame (rules in the module docstring)."""
    if not end > start:
        raise ValueError(f"need end > start, got [{start}, {end})")
    start, end = float(start), float(end)
    ev = events[events["room"] == room]
    in_rooms = ev[ev["event"] == "in_room"].sort_values("time", kind="stable")
    in_room_times = sorted(float(x) for x in in_rooms["time"])
    closes = sorted(float(x) for x in ev.loc[ev["event"] == "room_close", "time"])
    t_ends = ev[ev["event"] == "turnover_end"]
    horizon = max(end, float(ev["time"].max()) if len(ev) else end)

    # (from, to, state) painted in priority order; later elementary segments take the highest.
    paint: list[tuple[float, float, str]] = []
    for cid, t_in in zip(in_rooms["case_id"], in_rooms["time"], strict=True):
        t_in = float(t_in)
        case = ev[ev["case_id"] == cid] if cid else ev.iloc[0:0]
        t_ps = _first(case.loc[case["event"] == "procedure_start", "time"])
        t_pe = _first(case.loc[case["event"] == "procedure_end", "time"])
        t_out = _first(case.loc[case["event"] == "out_of_room", "time"])
        t_out_eff = horizon if math.isnan(t_out) else t_out
        if math.isnan(t_ps):
            paint.append((t_in, t_out_eff, "patient_in_room"))
        else:
            paint.append((t_in, t_ps, "patient_in_room"))
            t_pe_eff = t_out_eff if math.isnan(t_pe) else t_pe
            paint.append((t_ps, t_pe_eff, "procedure"))
            paint.append((t_pe_eff, t_out_eff, "patient_in_room"))
        if math.isnan(t_out):
            continue
        te = t_ends[(t_ends["case_id"] == cid) & (t_ends["time"] >= t_out)] if cid else t_ends[:0]
        if not len(te):
            te = t_ends[t_ends["time"] >= t_out]
        if len(te):
            t_te = float(te["time"].min())
        else:
            nxt = [x for x in in_room_times if x > t_out] + [x for x in closes if x > t_out]
            t_te = min(nxt) if nxt else horizon
        nxt_in = [x for x in in_room_times if x >= t_out and x > t_in]
        if nxt_in:
            t_te = min(t_te, nxt_in[0])
        paint.append((t_out, t_te, "turnover"))
    for t_in in in_room_times:
        paint.append((t_in - setup_minutes, t_in, "setup"))

    cuts = {start, end}
    for a, b, _ in paint:
        for x in (a, b):
            if start < x < end:
                cuts.add(x)
    edges = sorted(cuts)
    segs: Timeline = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        state = "idle"
        for pa, pb, ps in paint:
            if pa <= a and b <= pb and _PRIORITY[ps] > _PRIORITY[state]:
                state = ps
        segs.append((a, b, state))
    segs = _merge(segs)

    # Bridge disallowed jumps (coinciding milestones) with short intervals of the missing states.
    fixed: Timeline = [segs[0]]
    for a, b, s in segs[1:]:
        prev = fixed[-1][2]
        if s not in ALLOWED[prev]:
            path = _bridge_path(prev, s)
            width = min(BRIDGE, (b - a) / (len(path) + 1))
            for p in path:
                fixed.append((a, a + width, p))
                a += width
        fixed.append((a, b, s))
    return _merge(fixed)


def state_at(timeline: Timeline, t: float) -> str:
    """The state at minute ``t`` (intervals are half-open ``[start, end)``)."""
    if not timeline or not timeline[0][0] <= t < timeline[-1][1]:
        raise ValueError(f"t={t} outside the timeline")
    i = bisect.bisect_right([a for a, _, _ in timeline], t) - 1
    return timeline[i][2]


def true_milestones(timeline: Timeline) -> list[tuple[float, str]]:
    """``[(time, milestone), ...]`` implied by the timeline's transitions
    (:func:`vision.states.milestones`)."""
    out: list[tuple[float, str]] = []
    for (_, _, prev), (a, _, new) in zip(timeline[:-1], timeline[1:], strict=True):
        out.extend((a, m) for m in milestones(prev, new))
    return out


def check_timeline(timeline: Timeline, start: float, end: float) -> None:
    """Raise ``AssertionError`` unless the timeline covers ``[start, end)`` contiguously with
    known states, merged, and only allowed transitions."""
    assert timeline, "empty timeline"
    assert timeline[0][0] == start and timeline[-1][1] == end, "does not cover [start, end)"
    for a, b, s in timeline:
        assert a < b and s in STATES, (a, b, s)
    for (_, b0, s0), (a1, _, s1) in zip(timeline[:-1], timeline[1:], strict=True):
        assert b0 == a1, f"gap or overlap at {b0}/{a1}"
        assert s1 != s0, f"unmerged {s0} at {a1}"
        assert s1 in ALLOWED[s0], f"disallowed {s0} -> {s1} at {a1}"


def simulated_room_day(scn, seed: int, rep: int, room: str | None = None,
                       pick: int = 0) -> tuple[str, Timeline, float, float]:
    """A room's Monday in replication ``rep`` of ``scn`` under the manual policy: the room
    (``room``, else the ``pick``-th elective room that had cases, cycling), its true timeline,
    and the window shown (an hour before opening to three hours after closing)."""
    from policies.manual import ManualPolicy
    from twin.replication import replicate

    ev = replicate(scn, ManualPolicy(scn), seed, rep).events
    if room is None:
        rooms = [r.id for r in scn.rooms if not r.on_call and "mon" in r.hours]
        busy = [r for r in rooms if ((ev["room"] == r) & (ev["event"] == "in_room")).any()]
        room = (busy or rooms)[pick % len(busy or rooms)]
    w = scn.room(room).hours.get("mon")
    start, end = (w.start - 60.0, w.end + 180.0) if w else (0.0, 1440.0)
    return room, room_timeline(ev, room, start, end), start, end
