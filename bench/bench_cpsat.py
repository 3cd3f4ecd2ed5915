"""CP-SAT on a surgical day: wall time, status, objective and gap to the bound.

    .venv/bin/python bench/bench_cpsat.py [--instances bench/instances] [--json PATH]
    .venv/bin/python bench/bench_cpsat.py --suites [--days 3] [--dtime 1 5] [--json PATH]

Default: every frozen day problem of ``bench/instances`` (made by ``bench/make_instances.py``)
solved as ``ml-cpsat`` solves it (one worker, its deterministic-time limit, seed 1, then its
neighbourhood search): objective, the day model's own bound, the bound raised by the assignment
relaxation (``policies.cpsat_bound``, as ``ortwin plan`` reports it), the proven gap, the gap to
the best objective known, and the wall times of the solve and of the bound. ``--suites`` instead draws days
afresh:

Two suites: the baseline (10 ORs) and a 20-OR suite made by doubling the baseline (every room,
block, surgeon, staff shift, tray and PACU bed twice, elective demand twice). Forecasts are the
quantile duration model's (trained on the twin's own simulated history), the warm start is the
rules plan, one search worker, fixed seed. Each day is solved at every deterministic-time limit
given (default: the policy's own limit, then 5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibration.training import trained_model  # noqa: E402
from policies.cpsat_model import solve  # noqa: E402
from policies.ml_cpsat import DETERMINISTIC_TIME, MlCpsatPolicy  # noqa: E402
from twin.demand import draw_week  # noqa: E402
from twin.model import SuiteModel  # noqa: E402
from twin.scenario import Scenario, from_mapping, load_scenario  # noqa: E402
from twin.streams import Streams  # noqa: E402


def doubled(scn: Scenario) -> Scenario:
    """The suite twice over: 2x rooms, blocks, surgeons, staff, trays, PACU beds and demand."""
    d = scn.model_dump(by_alias=True)
    rooms = d["rooms"]
    d["rooms"] = rooms + [{**r, "id": f"{r['id']}b", "on_call": False} for r in rooms]
    d["blocks"] = {**d["blocks"], **{f"{k}b": v for k, v in d["blocks"].items()}}
    d["surgeons"] = d["surgeons"] + [{**s, "id": f"{s['id']}b"} for s in d["surgeons"]]
    for shifts in d["staff"].values():
        for s in shifts:
            s["count"] *= 2
    d["spd"]["inventory"] = {k: 2 * v for k, v in d["spd"]["inventory"].items()}
    for st in d["spd"]["stages"]:
        st["machines"] *= 2
    d["pacu"]["beds"] *= 2
    d["pacu"]["after_hours_beds"] *= 2
    for s in d["services"]:
        s["electives_per_week"] *= 2
    d["name"] = f"{scn.name}_x2"
    return from_mapping(d)


def bench_suite(scn: Scenario, days: int, dtimes: list[float], seed: int) -> list[dict]:
    """Solve the first ``days`` weekdays of replication 0 at each limit and report each solve."""
    policy = MlCpsatPolicy(scn, forecaster=trained_model(scn))
    t0 = time.perf_counter()
    policy.forecaster  # train the duration model once, outside the timings  # noqa: B018
    train = time.perf_counter() - t0
    week = draw_week(scn, Streams(seed, 0))
    view = SuiteModel(scn, policy, week)
    rows = []
    for day in range(days):
        cases = [c for c in week.cases.values()
                 if not c.is_addon and c.booked_day == day and c.booked_room]
        rules = policy.fallback.plan_day(day, cases, view)
        hint = {p.case_id: (p.room, int(p.start - day * 1440)) for p in rules}
        problem = policy.problem(day, cases, policy.forecaster.forecast(cases, day), hint=hint)
        for dtime in dtimes:
            sol = solve(problem, deterministic_time=dtime, wall_time=max(60.0, 8 * dtime),
                        seed=seed)
            rows.append({"suite": scn.name, "rooms": len(problem.rooms), "day": day,
                         "cases": len(cases), "dtime": dtime, "status": sol.status,
                         "objective": sol.objective, "bound": sol.bound, "gap": sol.gap,
                         "left_out": len(sol.left_out), "wall_s": sol.wall_time,
                         "train_s": train})
    return rows


def bench_instances(folder: Path, dtime: float, seed: int) -> list[dict]:
    """Solve every instance of ``folder`` as the policy does (whole-day solve, then its
    neighbourhood search); one row each."""
    from policies.cpsat_bound import tightened
    from policies.cpsat_lns import morning_solve
    from policies.day_problem_io import read_problem
    from policies.ml_cpsat import BOUND_TIME, LNS

    rows = []
    for path in sorted(folder.glob("*.json")):
        prob, meta = read_problem(path)
        sol = morning_solve(prob, dtime, seed=seed, lns=LNS)
        tight = tightened(prob, sol, BOUND_TIME, seed) if sol.ok else sol
        best = float(meta.get("best_known", float("nan")))
        rows.append({"instance": path.stem, "rooms": len(prob.rooms), "cases": len(prob.cases),
                     "kind": meta.get("kind", ""), "status": tight.status,
                     "objective": sol.objective, "model_bound": sol.bound, "bound": tight.bound,
                     "gap": tight.gap, "best_known": best,
                     "lower_bound": float(meta.get("lower_bound", float("nan"))),
                     "to_best": (sol.objective - best) / max(abs(best), 1.0),
                     "wall_s": sol.wall_time, "bound_wall_s": tight.wall_time - sol.wall_time})
    return rows


def print_instances(rows: list[dict]) -> None:
    """The per-instance table."""
    print(f"{'instance':28s} {'cases':>5s} {'kind':>6s} {'status':>9s} {'objective':>9s} "
          f"{'model bd':>8s} {'bound':>8s} {'gap':>6s} {'best':>8s} {'to best':>7s} "
          f"{'wall s':>6s} {'bound s':>7s}")
    for r in rows:
        print(f"{r['instance']:28s} {r['cases']:5d} {r['kind']:>6s} {r['status']:>9s} "
              f"{r['objective']:9.0f} {r['model_bound']:8.0f} {r['bound']:8.0f} {r['gap']:6.1%} "
              f"{r['best_known']:8.0f} {r['to_best']:7.1%} {r['wall_s']:6.2f} "
              f"{r['bound_wall_s']:7.2f}")
    ok = [r for r in rows if r["objective"] == r["objective"]]
    if ok:
        print(f"to best: mean {statistics.mean(r['to_best'] for r in ok):.1%}, median "
              f"{statistics.median(r['to_best'] for r in ok):.1%}; proven gap: median "
              f"{statistics.median(r['gap'] for r in ok):.1%}; wall: median "
              f"{statistics.median(r['wall_s'] for r in ok):.2f} s (+ bound "
              f"{statistics.median(r['bound_wall_s'] for r in ok):.2f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=Path, default=ROOT / "bench" / "instances")
    ap.add_argument("--suites", action="store_true", help="draw days afresh instead")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--dtime", type=float, nargs="+", default=[DETERMINISTIC_TIME, 5.0],
                    help="deterministic time limits to solve each day at")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    if not a.suites:
        rows = bench_instances(a.instances, DETERMINISTIC_TIME, a.seed)
        print_instances(rows)
        if a.json:
            a.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    base = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    rows = bench_suite(base, a.days, a.dtime, a.seed) + bench_suite(doubled(base), a.days, a.dtime, a.seed)
    print(f"{'suite':14s} {'rooms':>5s} {'day':>3s} {'cases':>5s} {'dtime':>5s} {'status':>9s} "
          f"{'objective':>10s} {'bound':>10s} {'gap':>7s} {'out':>3s} {'wall s':>7s}")
    for r in rows:
        print(f"{r['suite']:14s} {r['rooms']:5d} {r['day']:3d} {r['cases']:5d} {r['dtime']:5.1f} "
              f"{r['status']:>9s} {r['objective']:10.0f} {r['bound']:10.0f} {r['gap']:7.1%} "
              f"{r['left_out']:3d} {r['wall_s']:7.2f}")
    print(f"duration model training: {rows[0]['train_s']:.1f} s (10 ORs), "
          f"{rows[-1]['train_s']:.1f} s (20 ORs)")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
