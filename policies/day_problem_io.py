"""A day problem (:class:`~policies.cpsat_model.DayProblem`) as JSON, for frozen benchmark
instances (``bench/instances/``, format in its README) and for reproducing a plan outside the twin.

The JSON holds every field of the problem, cases and rooms as lists of objects, times as integer
minutes from the day's midnight, and ``format`` (:data:`FORMAT`). Reading checks the format and
every field, and raises :class:`ProblemFormatError` naming the first bad one.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from policies.cpsat_model import CaseSpec, DayProblem, RoomSpec, Weights

FORMAT = "ortwin-day-problem/1"


class ProblemFormatError(ValueError):
    """A day-problem JSON that does not hold what the format says (message names the field)."""


def problem_to_dict(p: DayProblem) -> dict[str, Any]:
    """The problem as a JSON-ready dict (cases and rooms in the problem's order)."""
    d = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    d["cases"] = [{**dataclasses.asdict(c), "crew": dict(c.crew), "trays": dict(c.trays)}
                  for c in p.cases]
    d["rooms"] = [{**dataclasses.asdict(r), "caps": sorted(r.caps),
                   "down": [list(w) for w in r.down]} for r in p.rooms]
    d["staff"] = {role: [list(s) for s in shifts] for role, shifts in p.staff.items()}
    d["trays"] = dict(p.trays)
    d["pacu"] = [list(w) for w in p.pacu]
    d["weights"] = dataclasses.asdict(p.weights)
    d["hint"] = {cid: list(v) for cid, v in p.hint.items()}
    d["pinned"] = dict(p.pinned)
    return {"format": FORMAT, **d}


def _take(cls, d: Any, where: str):
    """``cls(**d)`` with each field checked present and of the field's basic type."""
    if not isinstance(d, dict):
        raise ProblemFormatError(f"{where}: expected an object")
    names = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(set(d) - set(names))
    if extra:
        raise ProblemFormatError(f"{where}.{extra[0]}: unknown field")
    out = {}
    for name, f in names.items():
        if name not in d:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProblemFormatError(f"{where}.{name}: missing")
            continue
        v = d[name]
        kind = str(f.type)
        if kind in ("int", "float") and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ProblemFormatError(f"{where}.{name}: expected a number, got {v!r}")
        if kind == "str" and not isinstance(v, str):
            raise ProblemFormatError(f"{where}.{name}: expected a string, got {v!r}")
        out[name] = int(v) if kind == "int" else v
    return out


def problem_from_dict(d: Any, source: str = "problem") -> DayProblem:
    """The problem a :func:`problem_to_dict` dict describes; ProblemFormatError on bad input."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise ProblemFormatError(f"{source}.format: expected {FORMAT!r}, got {got!r}")
    body = _take(DayProblem, {k: v for k, v in d.items() if k != "format"}, source)
    for key in ("cases", "rooms"):
        if not isinstance(body.get(key), list):
            raise ProblemFormatError(f"{source}.{key}: expected a list")
    cases = [CaseSpec(**_take(CaseSpec, c, f"{source}.cases[{i}]"))
             for i, c in enumerate(body["cases"])]
    rooms = []
    for i, r in enumerate(body["rooms"]):
        x = _take(RoomSpec, r, f"{source}.rooms[{i}]")
        x["caps"] = frozenset(x["caps"])
        x["down"] = tuple(tuple(int(t) for t in w) for w in x.get("down", ()))
        rooms.append(RoomSpec(**x))
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ProblemFormatError(f"{source}.cases: case ids repeat")
    body.update(
        cases=cases, rooms=rooms,
        staff={role: [tuple(int(t) for t in s) for s in shifts]
               for role, shifts in body["staff"].items()},
        pacu=[tuple(int(t) for t in w) for w in body["pacu"]],
        weights=Weights(**_take(Weights, body.get("weights", {}), f"{source}.weights")),
        hint={cid: (str(v[0]), int(v[1])) for cid, v in body.get("hint", {}).items()},
        pinned=dict(body.get("pinned", {})),
        in_use=tuple((str(u[0]), int(u[1]), int(u[2]), int(u[3])) for u in body.get("in_use", ())))
    return DayProblem(**body)


def write_problem(p: DayProblem, path: str | Path, **extra: Any) -> Path:
    """Write the problem (plus ``extra`` top-level keys, e.g. best known objective) as JSON."""
    path = Path(path)
    path.write_text(json.dumps({**problem_to_dict(p), **extra}, indent=1, sort_keys=False) + "\n")
    return path


def read_problem(path: str | Path) -> tuple[DayProblem, dict[str, Any]]:
    """(problem, the file's other top-level keys) of a day-problem JSON file."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ProblemFormatError(f"{path}: not readable JSON ({e})") from None
    known = {f.name for f in dataclasses.fields(DayProblem)} | {"format"}
    extra = {k: v for k, v in d.items() if k not in known} if isinstance(d, dict) else {}
    core = {k: v for k, v in d.items() if k in known} if isinstance(d, dict) else d
    return problem_from_dict(core, str(path)), extra


__all__ = ["FORMAT", "ProblemFormatError", "problem_from_dict", "problem_to_dict", "read_problem",
           "write_problem"]
