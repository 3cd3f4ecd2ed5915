"""Two patients charted in one room at the same time: detection, and the parallel-stream rule.

A case *overlaps* an earlier-starting case of the same room when it is wheeled in more than
``OVERLAP_TOLERANCE_MIN`` minutes before that case is wheeled out (the 2022 log has days with
two ophthalmology streams charted in one OR). A room cannot hold two patients, so the log's
room is then really two *parallel streams*; serialising them (one patient after the other)
would make a replay or a now-cast run the room hours too long.

The rule, applied once when a log is loaded (:func:`calibration.loader.validate`), so that
calibration, replay, playback and the now-cast all see the same rooms:

* the cases of each room are taken in wheels-in order (ties: the loader's order, by case id);
* each goes to the first *stream* whose previous case has wheeled out by its wheels-in (within
  the tolerance): the room itself, then ``<room>~2``, ``<room>~3``, ...;
* a case put in stream k > 1 gets the room id ``<room>~k`` (a *parallel room*: the replay's and
  playback's scenario adds it as a copy of the room, same capabilities and hours, open on the
  days it is used; see :func:`twin.dayplan.with_parallel_rooms`), and its own surgeon team
  when the log records no surgeon;
* every case that overlaps an earlier-starting case is *flagged* (kept, never dropped) with a
  reason naming the other case, the overlap minutes and the stream it went to.

Cases that did not run (no wheels-in or wheels-out) are left where they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.dayplan import PARALLEL_SEP

OVERLAP_TOLERANCE_MIN: float = 1.0
"""Minutes two in-room intervals of one room may overlap before it counts (charting slack)."""
STREAM_SEP: str = PARALLEL_SEP
"""Separator of a parallel stream's number in its room id (``OR3~2``; the twin's own)."""
FLAG_COLUMNS: tuple[str, ...] = ("row", "case_id", "date", "room", "stream", "overlaps",
                                 "overlap_minutes", "reasons")
"""Columns of the flag report (rows kept but marked)."""


def stream_id(room: str, k: int) -> str:
    """The room id of stream ``k`` of ``room`` (stream 1 is the room itself)."""
    return room if k <= 1 else f"{room}{STREAM_SEP}{k}"


def logged_room(room: str) -> str:
    """The room a (possibly parallel-stream) room id belongs to: ``OR3~2`` -> ``OR3``."""
    base, sep, k = str(room).rpartition(STREAM_SEP)
    return base if sep and k.isdigit() and base else str(room)


def is_parallel(room: str) -> bool:
    """Whether ``room`` names a parallel stream (``<room>~k``, k >= 2)."""
    return logged_room(room) != str(room)


def empty_flags() -> pd.DataFrame:
    """A flag report with no rows."""
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "overlap_minutes" else
                                      ("int64" if c == "row" else object)) for c in FLAG_COLUMNS})


def _hhmm(t: pd.Timestamp) -> str:
    return t.strftime("%H:%M")


def assign_streams(cases: pd.DataFrame, tolerance: float = OVERLAP_TOLERANCE_MIN
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cases`` with overlapping cases moved to parallel streams (see the module docstring),
    and the flag report (one row per case that overlaps an earlier-starting case)."""
    ran = cases["room"].ne("") & cases["in_room"].notna() & cases["out_of_room"].notna()
    if not ran.any():
        return cases, empty_flags()
    tol = pd.Timedelta(minutes=tolerance)
    sub = cases.loc[ran, ["room", "in_room", "out_of_room"]]
    order = sub.sort_values(["room", "in_room"], kind="stable")
    new_room = cases["room"].copy()
    flags: list[dict] = []
    for room, g in order.groupby("room", sort=False):
        ends: list[pd.Timestamp] = []          # each stream's last wheels-out
        live: list[tuple[int, pd.Timestamp]] = []  # (index, wheels-out) of earlier cases
        for i, t_in, t_out in zip(g.index, g["in_room"], g["out_of_room"], strict=True):
            k = next((j for j, e in enumerate(ends) if e <= t_in + tol), len(ends))
            if k == len(ends):
                ends.append(t_out)
            else:
                ends[k] = t_out
            sid = stream_id(str(room), k + 1)
            new_room.at[i] = sid
            live = [(j, e) for j, e in live if e > t_in + tol]
            if live:
                others = [(j, min(e, t_out) - t_in) for j, e in live]
                texts = []
                for j, o in others:
                    same = cases.at[j, "in_room"] == t_in
                    texts.append(f"overlaps case {cases.at[j, 'case_id']} in {room} by "
                                 f"{o.total_seconds() / 60:.0f} min ("
                                 + ("wheeled in at the same time" if same else
                                    f"wheeled in {_hhmm(t_in)}, before its wheels-out "
                                    f"{_hhmm(cases.at[j, 'out_of_room'])}") + ")")
                where = (f"moved to parallel stream {sid}" if k else
                         f"kept in {room} (its earlier case moved to a parallel stream)")
                flags.append({
                    "row": int(cases.at[i, "row"]) if "row" in cases else int(i),
                    "case_id": cases.at[i, "case_id"],
                    "date": pd.Timestamp(cases.at[i, "date"]).strftime("%Y-%m-%d"),
                    "room": str(room), "stream": sid,
                    "overlaps": ", ".join(str(cases.at[j, "case_id"]) for j, _ in others),
                    "overlap_minutes": float(max(o for _, o in others).total_seconds() / 60),
                    "reasons": "; ".join(texts) + f": {where}"})
            live.append((i, t_out))
    out = cases.assign(room=new_room) if (new_room != cases["room"]).any() else cases
    report = pd.DataFrame(flags, columns=list(FLAG_COLUMNS)) if flags else empty_flags()
    return out, report


def moves(flags: pd.DataFrame) -> list[str]:
    """One line per case moved to a parallel stream: ``2022-03-07 OR3: case 11513 -> OR3~2``."""
    m = flags.loc[flags["stream"] != flags["room"]] if len(flags) else flags
    return [f"{r.date} {r.room}: case {r.case_id} -> {r.stream} (overlaps {r.overlaps} by "
            f"{r.overlap_minutes:.0f} min)" for r in m.itertuples(index=False)]


def parallel_room_notes(booked: pd.DataFrame) -> list[str]:
    """Notes for a replay or playback: each parallel room its booked list uses, and why."""
    if booked.empty or "room" not in booked:
        return []
    par = booked.loc[booked["room"].map(is_parallel)]
    out = []
    day = par["day"] if "day" in par else pd.Series(0, index=par.index)
    for (d, rid), g in par.groupby([day, par["room"]], sort=True):
        base = logged_room(rid)
        when = _DAYS[int(d) % 7] + " " if "day" in par else ""
        out.append(f"{when}{rid}: cases {', '.join(map(str, g['case_id']))} were charted in "
                   f"{base} while another patient was in it; they run in parallel room {rid} (a "
                   f"copy of {base}), not after {base}'s cases (history-check lists them)")
    return out


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def overlap_report(flags: pd.DataFrame) -> list[str]:
    """Lines for ``history-check``: cases overlapping another in their room, and the moves."""
    n, moved = overlap_count(flags)
    if not n:
        return ["overlapping cases: none (no room holds two patients at once)"]
    days = flags[["date", "room"]].drop_duplicates()
    return [f"overlapping cases: {n} in {len(days)} room-days (two patients charted in one room "
            f"at once); {moved} moved to a parallel room, so they run beside the room's other "
            "cases, not after them"] + [f"  {m}" for m in moves(flags)]


def overlap_count(flags: pd.DataFrame) -> tuple[int, int]:
    """(cases flagged for overlapping, of them moved to a parallel stream)."""
    if not len(flags):
        return 0, 0
    return len(flags), int(np.sum(flags["stream"].to_numpy() != flags["room"].to_numpy()))


__all__ = ["FLAG_COLUMNS", "OVERLAP_TOLERANCE_MIN", "STREAM_SEP", "assign_streams",
           "empty_flags", "is_parallel", "logged_room", "moves", "overlap_count",
           "overlap_report", "parallel_room_notes", "stream_id"]
