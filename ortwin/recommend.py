"""Tomorrow's recommended schedule: the ``ml-cpsat`` plan of one day of a booked list.

:func:`recommend_day` plans one horizon day of a booked list (:mod:`twin.booked_list`, or a day
plan of :mod:`twin.dayplan`) with :class:`policies.ml_cpsat.MlCpsatPolicy`, exactly as the twin
plans a morning: quantile forecasts, CP-SAT with its neighbourhood search, the safety gate that
falls back to the ``rules`` plan. The result says, per case, the room, start, planned minutes at
the plan quantile and why, in plain words; which cases it leaves out and why; the solver's
objective, bound, gap and wall time; and every rule it bends (``rule_override``,
``rule_violation`` and ``plan_fallback`` notes). ``ortwin plan`` and the app's Run page call it.

The duration model is trained on the twin's own history of the scenario's case mix with the
booked list removed (:func:`history_scenario`). Dates: scenarios have no calendar; horizon day
0 is a Monday, so a date stands for the first booked horizon day of its weekday
(:func:`pick_day`), as a day plan's date does in :mod:`twin.dayplan`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from policies.forecast import Forecaster
from twin.booked_list import check_booked_list, read_csv_text
from twin.scenario import Scenario, ScenarioError, clock

COLUMNS: tuple[str, ...] = (
    "case_id", "status", "room", "start", "end", "planned_minutes", "p50", "service", "surgeon",
    "procedure", "patient_class", "booked_room", "booked_start", "booked_minutes", "reason")
"""Columns of ``plan.csv`` and of each entry of ``plan.json``'s ``cases`` (planned cases by
room and start, then the cases left out, with ``status`` ``planned`` or ``left out``)."""
BENDS: tuple[str, ...] = ("rule_override", "rule_violation", "plan_fallback")
"""Policy notes that bend a rule."""


@dataclass
class DayRecommendation:
    """One day's recommended plan, its solve, the rules it bends and the cases it leaves out."""

    scenario: str
    day: int
    weekday: str
    date: str | None
    seed: int
    quantile: float
    rows: list[dict]  # planned cases (COLUMNS), by room in scenario order, then start
    left_out: list[dict]  # booked cases not planned (COLUMNS), with the reason
    status: str  # the solver's status, or "fallback" when the rules plan was used
    objective: float | None
    bound: float | None
    gap: float | None  # (objective - bound) / objective
    wall_time: float  # seconds of the day's solve (not written to the files: they are seeded)
    search: str
    bent: list[dict] = field(default_factory=list)  # {event, case_id, room, detail}
    fallback: str | None = None  # why the safety gate used the rules plan, if it did

    def frame(self) -> pd.DataFrame:
        """Planned cases then left-out cases, as the rows of ``plan.csv``."""
        return pd.DataFrame(self.rows + self.left_out, columns=list(COLUMNS))

    def to_json(self) -> dict:
        """The plan as a JSON-ready dict (everything but the wall time, so a seed fixes it)."""
        return {"scenario": self.scenario, "day": self.day, "weekday": self.weekday,
                "date": self.date, "seed": self.seed, "quantile": self.quantile,
                "status": self.status, "fallback": self.fallback, "objective": self.objective,
                "bound": self.bound, "gap": self.gap, "search": self.search,
                "bent_rules": self.bent, "cases": self.rows + self.left_out}

    def summary(self) -> str:
        """``objective X, bound Y, gap Z%, wall W s, search: ...`` in one line."""
        def num(x: float | None) -> str:
            return "-" if x is None else f"{x:.0f}"
        gap = "-" if self.gap is None else f"{100 * self.gap:.1f}%"
        head = f"objective {num(self.objective)}, bound {num(self.bound)}, gap {gap}, " \
               f"wall {self.wall_time:.1f} s, search: {self.search}"
        return head + (f"; rules plan used ({self.fallback})" if self.fallback else "")

    def bent_lines(self) -> list[str]:
        """Each bent rule in one line (``event case: detail``)."""
        return [f"{b['event']} {b['case_id'] or '-'}: {b['detail']}" for b in self.bent]

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``plan.csv`` and ``plan.json`` into ``out_dir``, each atomically."""
        from twin.io import atomic_write

        out = Path(out_dir)
        csv_text = self.frame().to_csv(index=False, lineterminator="\n")
        json_text = json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"
        out.mkdir(parents=True, exist_ok=True)
        csv_path = atomic_write(out / "plan.csv",
                           lambda tmp: Path(tmp).write_text(csv_text, encoding="utf-8"))
        json_path = atomic_write(out / "plan.json",
                            lambda tmp: Path(tmp).write_text(json_text, encoding="utf-8"))
        return csv_path, json_path


class _Notes:
    """The policy's view of the suite for a morning plan: it records the policy's notes."""

    def __init__(self, scn: Scenario, day: int) -> None:
        self.scenario, self.now = scn, day * 1440.0
        self.notes: list[dict] = []

    def note(self, event: str, case_id: str = "", room: str = "", value: float = math.nan,
             detail: str = "") -> None:
        """Record a policy note (see :data:`twin.events.POLICY_EVENTS`)."""
        self.notes.append({"event": event, "case_id": case_id, "room": room, "detail": detail})


def history_scenario(scn: Scenario) -> Scenario:
    """The scenario the duration model learns from: its case mix, without the booked list."""
    return scn.model_copy(update={"booking": scn.booking.model_copy(
        update={"booked_list": None})})


def booked_from_frame(df: pd.DataFrame, scn: Scenario, source: str | Path
                      ) -> tuple[pd.DataFrame, str | None]:
    """A booked list (``day`` column) or a day plan (``date`` column) read as text, checked row
    by row (:class:`ScenarioError` names file, row and column), and the plan's date if any."""
    if "date" in df.columns and "day" not in df.columns:
        from twin.dayplan import plan_from_frame

        plan = plan_from_frame(df, scn, source)
        return plan.cases, plan.date.isoformat()
    return check_booked_list(df, scn, source), None


def read_booked(path: str | Path, scn: Scenario) -> tuple[pd.DataFrame, str | None]:
    """:func:`booked_from_frame` of a CSV file."""
    return booked_from_frame(read_csv_text(Path(path), "booked list"), scn, path)


def pick_day(booked: pd.DataFrame, day: int | None, date: str | None, date_of_list: str | None,
             source: str | Path = "<booked list>") -> int:
    """The horizon day to plan: ``day``; else the first booked day of ``date``'s weekday (day
    0 is a Monday); else the list's only day. A day plan's own date must match ``date``."""
    days = sorted({int(d) for d in booked["day"]})
    if day is not None:
        return day
    if date is not None:
        try:
            wd = dt.date.fromisoformat(date).weekday()
        except ValueError:
            raise ScenarioError("--date", "", f"expected YYYY-MM-DD (got {date!r})") from None
        if date_of_list is not None and date_of_list != date:
            raise ScenarioError(source, "date", f"the plan is for {date_of_list}, not {date}")
        match = [d for d in days if d % 7 == wd]
        if not match:
            raise ScenarioError(source, "day", f"no booked cases on a {dt.date.fromisoformat(date):%A}"
                                               f" (booked days: {_days(days)})")
        return match[0]
    if len(days) == 1:
        return days[0]
    raise ScenarioError(source, "day", f"the list books days {_days(days)}: say which with "
                                       "--day N or --date YYYY-MM-DD")


def _days(days: list[int]) -> str:
    return ", ".join(map(str, days)) or "none"


def simulated_booked_list(scn: Scenario, rep: int = 0, seed: int | None = None) -> pd.DataFrame:
    """The electives the twin books in replication ``rep`` of a week (the booked-list columns,
    checked), for a scenario that has no booked list of its own."""
    from twin.demand import draw_week
    from twin.streams import Streams

    scn = history_scenario(scn)
    week = draw_week(scn, Streams(scn.seed if seed is None else seed, rep))
    rows = [{"case_id": c.id, "service": c.service, "surgeon": c.surgeon,
             "procedure": c.procedure, "patient_class": c.patient_class,
             "day": str(c.booked_day), "room": c.booked_room, "start": clock(c.booked_start),
             "booked_minutes": f"{c.booked_minutes:g}"}
            for c in sorted(week.cases.values(), key=lambda c: (c.booked_start, c.booked_room))
            if not c.is_addon and c.booked_room]
    return check_booked_list(pd.DataFrame(rows, dtype=str), scn, f"<{scn.name} rep {rep}>")


def plan_quantile(catalog) -> float:
    """The forecast quantile ml-cpsat plans to (the catalog's enforced plan_percentile)."""
    rule = catalog.get("plan_percentile")
    return float(rule.param("quantile")) if rule and rule.severity == "enforced" else 0.8


def recommend_day(scenario: Scenario, booked: pd.DataFrame, day: int, *, seed: int = 0,
                  date: str | None = None, forecaster: Forecaster | None = None, catalog=None,
                  deterministic_time: float | None = None, wall_time: float = 120.0,
                  source: str | Path = "<booked list>") -> DayRecommendation:
    """The ml-cpsat plan of ``day``'s cases of a checked booked list, explained."""
    from calibration.training import trained_model
    from policies.cpsat_explain import explain_plan
    from policies.ml_cpsat import BOUND_TIME, MlCpsatPolicy
    from twin.dayplan import with_parallel_rooms
    from twin.demand import booked_cases

    if not 0 <= day < scenario.horizon_days:
        raise ScenarioError(source, "day", f"expected a day from 0 to {scenario.horizon_days - 1}")
    wd = scenario.weekday(day)
    rows = booked[booked["day"] == day]
    if rows.empty:
        raise ScenarioError(source, "day", f"no booked cases on day {day} ({wd})")
    scn = with_parallel_rooms(scenario, rows["room"])
    if not any(r.hours.get(wd) is not None and not r.addon_only  # type: ignore[call-overload]
               for r in scn.rooms):
        raise ScenarioError(source, "day", f"day {day} is a {wd}: no elective room is open")
    cases = list(booked_cases(scn, rows).values())
    fc = forecaster if forecaster is not None else trained_model(history_scenario(scenario))
    policy = MlCpsatPolicy(scn, forecaster=fc, catalog=catalog, seed=seed,
                           deterministic_time=deterministic_time, wall_time=wall_time,
                           bound_time=BOUND_TIME)
    view = _Notes(scn, day)
    plan = policy.plan_day(day, cases, view)
    q = plan_quantile(policy.catalog)
    forecasts = policy.fallback.forecasts  # the forecasts both plans use (booked minutes if none)
    solve = next((r for r in reversed(policy.log) if r["kind"] == "plan"), None)
    fell = next((r["status"] for r in policy.log if r["kind"] == "fallback"), None)
    bent = [n for n in view.notes if n["event"] in BENDS]
    reasons = {n["case_id"]: f"left out of the day ({n['detail']})" for n in bent if n["case_id"]}
    reasons.update(policy.explanations)
    if fell is not None:
        words = explain_plan(scn, day, plan, cases, forecasts, q)
        reasons.update({k: f"rules plan (safety fallback: {fell}): {v}" for k, v in words.items()})

    def row(c, status: str, room: str = "", start: float = math.nan) -> dict:
        f = forecasts.get(c.id)
        minutes = float(f.at(q)) if f is not None else c.booked_minutes  # as the reason says
        return {"case_id": c.id, "status": status, "room": room,
                "start": "" if math.isnan(start) else clock(start),
                "end": "" if math.isnan(start) else clock(start + minutes),
                "planned_minutes": round(minutes),
                "p50": None if f is None else round(float(f.p50)),
                "service": c.service, "surgeon": c.surgeon, "procedure": c.procedure,
                "patient_class": c.patient_class, "booked_room": c.booked_room,
                "booked_start": clock(c.booked_start), "booked_minutes": c.booked_minutes,
                "reason": reasons.get(c.id) or "left out of the day by the plan"}

    by_id = {c.id: c for c in cases}
    order = {r.id: i for i, r in enumerate(scn.rooms)}
    planned = [row(by_id[p.case_id], "planned", p.room, p.start)
               for p in sorted(plan, key=lambda p: (order.get(p.room, len(order)), p.start))]
    done = {p.case_id for p in plan}
    left = [row(c, "left out") for c in cases if c.id not in done]

    def num(x) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else float(x)

    return DayRecommendation(
        scenario=scenario.name, day=day, weekday=wd, date=date, seed=seed, quantile=q,
        rows=planned, left_out=left,
        status=solve["status"] if solve and fell is None else "fallback",
        objective=num(solve["objective"]) if solve else None,
        bound=num(solve["bound"]) if solve else None, gap=num(solve["gap"]) if solve else None,
        wall_time=float(solve["wall_time"]) if solve else 0.0, search=policy.search_mode(),
        bent=bent, fallback=fell)


__all__ = ["BENDS", "COLUMNS", "DayRecommendation", "booked_from_frame", "history_scenario",
           "pick_day", "plan_quantile", "read_booked", "recommend_day", "simulated_booked_list"]
