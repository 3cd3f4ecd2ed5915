"""Large-neighbourhood search on the CP-SAT day model: improve a plan a few rooms at a time.

A single search thread finds good complete plans of a 20-OR day poorly: the whole model is too
big for it to move far from its warm start in a second. Most of a day nearly separates (cases
stay in their block rooms), so the search frees the cases of a few rooms — together with every
case left out of the day — fixes every other case where it is (room and start), and re-solves
that small model from the current plan; a better plan is kept. Neighbourhoods are taken in a fixed
order (rooms by id, windows of ``size`` rooms, shifted each pass) and each sub-solve has a
deterministic-time limit and one worker, so the same problem and seed give the same plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from policies.cpsat_construct import warm_start
from policies.cpsat_model import DayProblem, Solution, build, run_model, solve


@dataclass(frozen=True)
class LnsConfig:
    """How the neighbourhood search runs (recorded with the plan)."""

    size: int = 3              # rooms freed at a time
    rounds: int = 12           # sub-solves
    dtime: float = 0.05        # deterministic-time limit of each sub-solve
    wall_time: float = 120.0   # wall-clock guard over all rounds (never reached in normal runs)


def neighbourhoods(p: DayProblem, size: int) -> list[list[str]]:
    """Room windows in a fixed order: consecutive rooms by id, then shifted by half a window,
    so rooms that share a service's blocks meet in one window on some pass."""
    rooms = sorted(r.id for r in p.rooms)
    if len(rooms) <= size:
        return [rooms]
    out = []
    for shift in (0, max(size // 2, 1)):
        order = rooms[shift:] + rooms[:shift]
        out += [order[i:i + size] for i in range(0, len(order), size)]
    return out


def _sub_solve(p: DayProblem, plan: dict[str, tuple[str, int]], free_rooms: set[str],
               dtime: float, wall: float, seed: int) -> Solution:
    m, v = build(p)
    for c in p.cases:
        where = plan.get(c.id)
        if where is None or where[0] in free_rooms:
            continue
        room, s = where
        m.add(v["skip"][c.id] == 0)
        m.add(v["x"][c.id, room] == 1)
        m.add(v["start"][c.id] == s)
    m.clear_hints()
    for c in p.cases:
        where = plan.get(c.id)
        m.add_hint(v["skip"][c.id], where is None)
        if where is not None:
            m.add_hint(v["start"][c.id], where[1])
    for (cid, rid), lit in v["x"].items():
        where = plan.get(cid)
        m.add_hint(lit, where is not None and where[0] == rid)
    return run_model(m, v, dtime, wall, seed, 1)


def improve(p: DayProblem, sol: Solution, config: LnsConfig | None = None, seed: int = 0
            ) -> Solution:
    """``sol`` improved by neighbourhood search (``sol`` itself when nothing better is found).
    The bound kept is ``sol``'s (a sub-solve's bound holds only for its neighbourhood)."""
    config = config or LnsConfig()
    if not sol.ok or not p.cases:
        return sol
    t0 = time.perf_counter()
    best = sol
    hoods = neighbourhoods(p, config.size)
    for k in range(config.rounds):
        left = config.wall_time - (time.perf_counter() - t0)
        if left <= 0:
            break
        rooms = set(hoods[k % len(hoods)])
        trial = _sub_solve(p, best.assignment, rooms, config.dtime, left, seed + k)
        if trial.ok and trial.objective < best.objective - 1e-6:
            trial.bound = sol.bound  # the day's status: optimal only when it meets the day's bound
            trial.status = "OPTIMAL" if trial.objective <= sol.bound + 1e-6 else "FEASIBLE"
            best = trial
    best.wall_time = sol.wall_time + time.perf_counter() - t0
    return best


def morning_solve(p: DayProblem, deterministic_time: float, wall_time: float = 120.0,
                  seed: int = 0, lns: LnsConfig | None = None) -> Solution:
    """A morning plan's search: the better of the hint and the constructive plan
    (:func:`policies.cpsat_construct.warm_start`) as warm start, the whole-day solve, then the
    neighbourhood search (``lns``; None: none)."""
    p = replace(p, hint=warm_start(p))
    sol = solve(p, deterministic_time=deterministic_time, wall_time=wall_time, seed=seed)
    if lns is not None:
        sol = improve(p, sol, replace(lns, wall_time=wall_time), seed)
    return sol


__all__ = ["LnsConfig", "improve", "morning_solve", "neighbourhoods"]
