"""``ml-cpsat``: quantile duration forecasts + an OR-Tools CP-SAT plan of each day.

Each morning the day's electives are assigned and sequenced by :mod:`policies.cpsat_model`,
planned to the P80 forecast, warm-started from the better of the ``rules`` plan and a
constructive plan (:mod:`policies.cpsat_construct`) and held to every rule the
catalog marks enforced. A safety gate falls back to the ``rules`` plan — logged as a
``plan_fallback`` event and counted as a KPI — when a forecast input is missing, the solver finds
no feasible plan in its time limit, or the plan fails the independent checker. Day-of: when an
add-on arrives, a room runs long or goes down, the rest of the day is re-optimised within a
short time limit. Every placement comes with a plain-language explanation.

Searches run on one worker with a fixed seed under a *deterministic* time limit, so plans are
identical run to run whatever the machine's load; the wall-clock limit is only a safety net.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from policies.cpsat_bound import tightened
from policies.cpsat_dayof import SuiteNow, queue_end, suite_now
from policies.cpsat_explain import explain_plan
from policies.cpsat_lns import LnsConfig, morning_solve
from policies.cpsat_model import (
    CaseSpec,
    DayProblem,
    RoomSpec,
    Solution,
    Weights,
    solve_once,
)
from policies.forecast import Forecast, Forecaster, ForecastError
from twin.demand import Case
from twin.policy import Move, PlannedCase, SuiteView
from twin.scenario import Scenario

DETERMINISTIC_TIME = 0.5
"""Deterministic-time limit of a day's whole-day solve (``ORTWIN_CPSAT_DTIME`` overrides it); the
neighbourhood search (:mod:`policies.cpsat_lns`) then improves the plan a few rooms at a time."""
LNS = LnsConfig()
"""The morning plan's neighbourhood search (3 rooms x 12 rounds at deterministic time 0.05)."""
REPLAN_TIME = 0.1
"""Deterministic-time limit of a day-of re-plan (``ORTWIN_CPSAT_REPLAN_DTIME`` overrides it)."""
BOUND_TIME = 0.3
"""Deterministic-time limit of the assignment relaxation (:mod:`policies.cpsat_bound`) that
tightens a morning plan's proven bound, when a caller asks for it (``ortwin plan`` does; the twin's
replications do not: the bound changes no decision)."""
PACU_QUANTILE = 0.8
"""PACU stays are planned at this quantile of length of stay (stays shorter than planned
leave slack for cases that end early: plans at the P80 duration pack ends closer together)."""


class QuietView:
    """A view that passes everything through but swallows policy notes (for warm starts)."""

    def __init__(self, view: SuiteView) -> None:
        self._view = view

    def __getattr__(self, name: str):
        return getattr(self._view, name)

    def note(self, *args, **kwargs) -> None:
        """Dropped: the warm-start plan is not the plan carried out."""


class _NoFallbackNote(QuietView):
    """Passes the rules policy's audit notes through, except a second ``plan_fallback`` for a
    day this policy has already logged as fallen back."""

    def note(self, event: str, *args, **kwargs) -> None:
        """Forward every note but ``plan_fallback``."""
        if event != "plan_fallback":
            self._view.note(event, *args, **kwargs)


class MlCpsatPolicy:
    """CP-SAT over ML quantile forecasts, with the rules policy as warm start and safety net."""

    name = "ml-cpsat"

    def __init__(self, scenario: Scenario, forecaster: Forecaster | None = None, catalog=None,
                 fallback=None, deterministic_time: float | None = None, wall_time: float = 120.0,
                 replan_time: float | None = None, seed: int = 0,
                 weights: Weights | None = None, plan_all: bool = False,
                 lns: LnsConfig | None = LNS, bound_time: float = 0.0) -> None:
        from policies.rules_catalog import load_catalog
        from policies.rules_policy import RulesPolicy

        self.scn = scenario
        self._forecaster = forecaster
        self.catalog = catalog if catalog is not None else load_catalog(None)
        self._fallback = fallback
        self._rules = RulesPolicy
        self.deterministic_time = deterministic_time or float(
            os.environ.get("ORTWIN_CPSAT_DTIME", DETERMINISTIC_TIME))
        self.replan_time = replan_time or float(
            os.environ.get("ORTWIN_CPSAT_REPLAN_DTIME", REPLAN_TIME))
        self.wall_time, self.seed, self.weights = wall_time, seed, weights or Weights()
        self.plan_all = plan_all  # every booked case must be planned (else: infeasible day)
        self.lns = lns  # the morning plan's neighbourhood search (None: off)
        self.bound_time = bound_time  # assignment relaxation for the plan's bound (0: off)
        self.explanations: dict[str, str] = {}
        self.log: list[dict] = []  # one row per solve: day, kind, status, objective, bound, ...
        self._forecasts: dict[str, Forecast] = {}

    # --- inputs ---------------------------------------------------------------------------
    @property
    def forecaster(self) -> Forecaster:
        """The duration forecasts plans are made with: the one given (the registry,
        :mod:`ortwin.registry`, gives the quantile model trained on the scenario's history),
        else the booked minutes, as the ``rules`` policy does."""
        if self._forecaster is None:
            from policies.forecast import BookedForecaster

            self._forecaster = BookedForecaster()
        return self._forecaster

    @property
    def fallback(self):
        """The rules policy, planning with the same forecasts (warm start and safety net)."""
        if self._fallback is None:
            self._fallback = self._rules(self.scn, self.catalog, self.forecaster)
        return self._fallback

    def _quantile(self) -> float:
        """The forecast quantile plans are made for (the catalog's enforced plan_percentile)."""
        for rule in self.catalog.rules:
            if rule.kind == "plan_percentile" and rule.severity == "enforced":
                return float(_param(rule, "quantile"))
        return 0.8

    def _reserve(self, day: int) -> tuple[dict[str, float], bool]:
        """The add-on reserve per room (from the catalog's addon_reserve rule) and whether it
        is enforced (hard) rather than a penalty."""
        from policies.planning import addon_reserve

        for rule in self.catalog.rules:
            if rule.kind == "addon_reserve":
                return (addon_reserve(self.scn, day, float(_param(rule, "factor")),
                                      float(_param(rule, "max_minutes"))),
                        rule.severity == "enforced")
        return {}, False

    def _max_overtime(self) -> int:
        for rule in self.catalog.rules:
            if rule.kind == "max_planned_overtime" and rule.severity == "enforced":
                return int(_param(rule, "minutes"))
        return 120

    def _tray_turnaround(self) -> int:
        spd = self.scn.spd
        return int(round(float(spd.transport.ppf(0.5))
                         + sum(float(s.cycle.ppf(0.5)) for s in spd.stages)))

    def problem(self, day: int, cases: Sequence[Case], forecasts: dict[str, Forecast],
                rooms_free: dict[str, int] | None = None, release: dict[str, int] | None = None,
                hint: dict[str, tuple[str, int]] | None = None,
                in_use: Sequence[tuple[str, int, int, int]] = ()) -> DayProblem:
        """The solver's view of ``day`` (minutes from the day's midnight)."""
        scn, wd, q = self.scn, self.scn.weekday(day), self._quantile()
        specs = []
        for c in cases:
            f = forecasts[c.id]
            dur = max(int(math.ceil(f.at(q))), 1)
            los = scn.pacu.los.get(c.patient_class)  # type: ignore[call-overload]
            specs.append(CaseSpec(
                id=c.id, surgeon=c.surgeon, service=c.service, capability=c.capability,
                duration=dur, surgeon_minutes=dur, booked_room=c.booked_room,
                crew=dict(c.crew), trays={t: c.trays.count(t) for t in dict.fromkeys(c.trays)},
                pacu_minutes=int(round(float(los.ppf(PACU_QUANTILE)))) if los else 60,
                release=(release or {}).get(c.id, 0)))
        reserve, reserve_enforced = self._reserve(day)
        rooms = [RoomSpec(r.id, frozenset(r.capabilities), w.start, w.end,
                          (rooms_free or {}).get(r.id, 0),
                          tuple((d.start, d.end) for d in r.downtime if d.day == day),
                          int(round(reserve.get(r.id, 0.0))))
                 for r in scn.rooms if (w := r.hours.get(wd)) is not None and not r.addon_only]  # type: ignore[call-overload]
        staff = {role: [(s.start, s.end, s.count) for s in shifts if wd in s.days]
                 for role, shifts in scn.staff.items()}
        spd, turnaround = scn.spd, self._tray_turnaround()
        from twin.booking import planned_turnover

        return DayProblem(day=day, cases=specs, rooms=rooms, turnover=int(planned_turnover(scn)),
                          max_overtime=self._max_overtime(), staff=staff,
                          trays=dict(spd.inventory), tray_turnaround=turnaround,
                          pacu=[(0, 2 * 1440, scn.pacu.after_hours_beds),
                                (scn.pacu.hours.start, scn.pacu.hours.end,
                                 scn.pacu.open_beds(scn.weekday(day))
                                 - scn.pacu.after_hours_beds)],
                          prime_end=scn.kpi.prime_time.end,
                          weights=self.weights, hint=hint or {}, allow_skip=not self.plan_all,
                          reserve_enforced=reserve_enforced, in_use=tuple(in_use))

    # --- the day's plan -------------------------------------------------------------------
    def plan_day(self, day: int, cases: Sequence[Case], view: SuiteView) -> list[PlannedCase]:
        """CP-SAT plan of the day, or the rules plan when the safety gate trips."""
        rules_plan = list(self.fallback.plan_day(day, cases, QuietView(view)))
        cases = [c for c in cases if c.booked_room]
        try:
            forecasts = self.forecaster.forecast(cases, day)
        except ForecastError as e:
            return self._fall_back(day, cases, view, f"forecast input missing: {e}")
        self._forecasts.update(forecasts)
        hint = {p.case_id: (p.room, int(p.start - day * 1440)) for p in rules_plan}
        prob = self.problem(day, cases, forecasts, hint=hint)
        sol = morning_solve(prob, self.deterministic_time, self.wall_time, self.seed, self.lns)
        if self.bound_time > 0 and sol.ok:
            sol = tightened(prob, sol, self.bound_time, self.seed)
        self._record(day, "plan", sol, view)
        if not sol.ok:
            return self._fall_back(day, cases, view, f"solver status {sol.status}")
        plan = [PlannedCase(cid, room, day * 1440 + s) for cid, (room, s) in sol.assignment.items()]
        problems = self._check(day, plan, cases, forecasts)
        if problems:
            return self._fall_back(day, cases, view, f"checker: {problems[0]}")
        for cid in sol.left_out:
            self._left_out(view, cid)
        self.explanations.update(explain_plan(self.scn, day, plan, cases, forecasts,
                                              self._quantile()))
        for p in plan:  # in the log too, so a run's explanations outlive the policy object
            view.note("plan_explained", p.case_id, p.room, p.start, self.explanations[p.case_id])
        return plan

    def _left_out(self, view: SuiteView, case_id: str) -> None:
        """Audit a case the plan leaves out (the monitored plan-all-booked rule)."""
        rule = self.catalog.get("plan_all_booked")
        if rule is None or rule.severity == "advisory":
            return
        if rule.overridable:
            view.note("rule_override", case_id, detail=f"{rule.id}: capacity (left out by CP-SAT)")
        else:
            view.note("rule_violation", case_id, detail=f"{rule.id}: left out by CP-SAT")
        self.explanations[case_id] = (f"{case_id} left out of the day: no room, surgeon, crew, tray "
                                      f"or PACU capacity within the enforced rules")

    def _fall_back(self, day: int, cases: Sequence[Case], view: SuiteView, why: str):
        view.note("plan_fallback", detail=f"day {day}: {why}")
        self.log.append({"day": day, "kind": "fallback", "status": why})
        return list(self.fallback.plan_day(day, cases, _NoFallbackNote(view)))

    def search_mode(self, kind: str = "plan") -> str:
        """How a solve of this kind searches (workers, seed, limits, neighbourhood search)."""
        dtime = self.deterministic_time if kind == "plan" else self.replan_time
        mode = f"CP-SAT 1 worker, seed {self.seed}, deterministic time {dtime:g}"
        if kind == "plan" and self.lns is not None:
            mode += (f"; then LNS of {self.lns.size} rooms x {self.lns.rounds} rounds at "
                     f"deterministic time {self.lns.dtime:g} each")
        if kind == "plan" and self.bound_time > 0:
            mode += f"; bound from the assignment relaxation at deterministic time {self.bound_time:g}"

        return mode

    def _record(self, day: int, kind: str, sol: Solution, view: SuiteView) -> None:
        row = {"day": day, "kind": kind, "status": sol.status, "objective": sol.objective,
               "bound": sol.bound, "gap": sol.gap, "wall_time": sol.wall_time,
               "search": self.search_mode(kind)}
        self.log.append(row)
        if sol.ok:
            # no wall time here: the event log is a function of the seed (policy.log has it)
            view.note("plan_solved" if kind == "plan" else "replan", value=sol.objective,
                      detail=f"day {day} {kind}: {sol.status} objective {sol.objective:.0f} "
                             f"bound {sol.bound:.0f}")

    def _check(self, day, plan, cases, forecasts) -> list[str]:
        from policies.checks import check_plan

        found = check_plan(plan, {c.id: c for c in cases}, self.scn, day, forecasts,
                           self.catalog, self._quantile())
        return [str(v) for v in found]

    # --- day-of ---------------------------------------------------------------------------
    def _replan(self, view: SuiteView, why: str, busy: dict[str, float] | None = None,
                ahead: dict[str, int] | None = None, suite: SuiteNow | None = None) -> list[Move]:
        """Re-optimise today's not-yet-started electives across rooms from their current state;
        ``busy`` marks rooms unavailable until a time (a room down, an add-on just placed);
        ``ahead`` counts queue places taken in front of the electives (an add-on being placed);
        ``suite``: the suite now, when the caller has it already (:meth:`suite_now`)."""
        now = view.now
        day = int(now // 1440)
        status = view.rooms()
        waiting = [view.case(cid) for st in status.values() for cid in st.queue
                   if not view.case(cid).is_addon and int(view.planned_start(cid) // 1440) == day]
        base = day * 1440
        open_rooms = [r for r in self.scn.rooms if not r.addon_only
                      and (w := r.hours.get(self.scn.weekday(day))) is not None  # type: ignore[call-overload]
                      and base + w.end > now]
        if not waiting or not open_rooms:
            return []  # nothing to move, or no room can still start a case today
        try:
            forecasts = {c.id: self._forecasts.get(c.id) or self.forecaster.forecast([c], day)[c.id]
                         for c in waiting}
        except ForecastError:
            return []
        suite = suite or self.suite_now(view, day)
        free = {rid: int(max(suite.room_free[rid], (busy or {}).get(rid, 0.0)) - base)
                for rid in status}
        release = {c.id: int(max(now, suite.surgeon_free.get(c.surgeon, now)) - base)
                   for c in waiting}
        hint = {c.id: (rid, int(max(view.planned_start(c.id), now) - base))
                for rid, st in status.items() for c in waiting if c.id in st.queue}
        # one phase from the current queues (a complete plan): a case the re-plan leaves out
        # keeps its place, so the all-cases-first phase of a morning plan buys nothing here
        sol = solve_once(self.problem(day, waiting, forecasts, free, release, hint,
                                      suite.in_use),
                         self.replan_time, self.wall_time, self.seed, 1)
        self._record(day, f"replan ({why})", sol, view)
        if not sol.ok:
            return []
        moves: list[Move] = []
        per_room: dict[str, list[tuple[int, str]]] = {}
        for cid, (room, s) in sol.assignment.items():
            per_room.setdefault(room, []).append((s, cid))
        for room, items in per_room.items():
            addons = sum(1 for x in status[room].queue if view.case(x).is_addon)
            addons += (ahead or {}).get(room, 0)
            for i, (s, cid) in enumerate(sorted(items)):
                moves.append(Move(cid, room, addons + i, base + s))
        return moves

    def suite_now(self, view: SuiteView, day: int) -> SuiteNow:
        """Rooms and surgeons free, crews, PACU beds and trays held now
        (:func:`policies.cpsat_dayof.suite_now` at this policy's forecasts and quantiles)."""
        return suite_now(view, day, self._forecast_of(day), self._quantile(), self._turnover(),
                         PACU_QUANTILE, self._tray_turnaround())

    def _forecast_of(self, day: int):
        def forecast(c: Case) -> Forecast | None:
            f = self._forecasts.get(c.id)
            if f is None:
                try:
                    f = self._forecasts[c.id] = self.forecaster.forecast([c], day)[c.id]
                except ForecastError:
                    return None
            return f
        return forecast

    def _runs_late(self, view: SuiteView, room: str, suite: SuiteNow, extra: float = 0.0) -> bool:
        """Whether ``room``'s queued electives, at the plan quantile from when the room is
        expected free in ``suite`` (plus ``extra`` minutes ahead of them), end past its close."""
        day = int(view.now // 1440)
        st = view.rooms()[room]
        close = st.staffed_until
        if close is None:
            return True
        free = suite.room_free[room] + extra
        q, fc = self._quantile(), self._forecast_of(day)

        def planned(c: Case) -> float:
            f = fc(c)
            return f.at(q) if f is not None else c.booked_minutes
        return queue_end(view, st, free, planned, self._turnover()) > close

    def _turnover(self) -> float:
        from twin.booking import planned_turnover

        return float(planned_turnover(self.scn))

    def place_addon(self, case: Case, view: SuiteView) -> list[Move]:
        """The rules placement of the add-on, then the rest of the day re-optimised around it."""
        placed = self.fallback.place_addon(case, view)
        first = placed if isinstance(placed, Move) else list(placed)[0]
        room = view.rooms()[first.room]
        if not any(not view.case(c).is_addon for c in room.queue):
            return [first]  # nothing waits behind it: no re-plan needed
        suite = self.suite_now(view, int(view.now // 1440))
        if not self._runs_late(view, first.room, suite, case.booked_minutes + self._turnover()):
            return [first]  # the room's electives still end in staffed hours behind it
        ahead = max(room.expected_free, view.now) + case.booked_minutes
        others = [m for m in self._replan(view, f"add-on {case.id}", {first.room: ahead},
                                          {first.room: 1}, suite) if m.case_id != case.id]
        return [first, *others]

    def on_running_long(self, room: str, case: Case, view: SuiteView) -> list[Move]:
        """Re-optimise the rest of the day around the overrunning room (if it has cases waiting)."""
        if not any(not view.case(c).is_addon for c in view.rooms()[room].queue):
            return []
        suite = self.suite_now(view, int(view.now // 1440))
        if not self._runs_late(view, room, suite):
            return []  # the room's electives still end in staffed hours: the plan holds
        return self._replan(view, f"{room} running long", suite=suite)

    def on_room_down(self, room: str, until: float, view: SuiteView) -> list[Move]:
        """Re-optimise the rest of the day without the room until it is back."""
        return self._replan(view, f"{room} down", {room: until})


def _param(rule, key: str):
    params = rule.params
    return params[key] if isinstance(params, dict) else getattr(params, key)
