"""Case history for training duration forecasts: the training view of a case log.

Every history reaches the model through the calibration loader (:mod:`calibration.loader`),
real or simulated: :func:`training_frame` turns a loaded :class:`~calibration.loader.History`
into the rows below, and :func:`simulate_history` plays a hospital's past with the twin
(:func:`calibration.synth.synth_history`: week ``w`` is replication ``w`` of the scenario),
writes it in the canonical case-log schema and loads it back through the same loader.

History schema (the contract)
-----------------------------
Real history fed in later (calibration from logs) must use the same columns and meanings. One
row per case that reached the OR (has both ``in_room`` and ``pacu_requested``); cases that were
cancelled or never started are absent. Rows are sorted by ``week``, ``date_day``, ``case_id``.

==============  =======  ====================================================================
column          dtype    meaning
==============  =======  ====================================================================
week            int64    week index, increasing with time (simulated: 0, 1, ...); models are
                         trained on earlier weeks and tested on later ones by this column
date_day        int64    day index counted from the Monday of week 0, ``week * 7 + day``,
                         where ``day`` (0 = Monday)
                         is the day the case was booked to run: an elective's booked day, an
                         add-on's arrival day (the day a policy forecasts it for; a case
                         that slips past midnight keeps its day)
weekday         int64    ``date_day % 7``: 0 = Monday ... 6 = Sunday
case_id         str      unique over the whole history: ``"w{week:03d}-{case id}"``
service         str      the surgical service
surgeon         str      the operating surgeon's id
procedure       str      the procedure id
patient_class   str      ``outpatient``, ``inpatient`` or ``icu``
priority        str      ``elective``, ``urgent`` or ``emergent``
is_addon        bool     an add-on (urgent/emergent case booked on the day)
booked_minutes  float64  the surgeon's booked (estimated) in-room minutes
actual_minutes  float64  in-room minutes, wheels-in to wheels-out, as a case log records
                         them (a hold waiting for a PACU bed is inside, as in real logs)
==============  =======  ====================================================================

Everything except ``week``, ``date_day``, ``case_id`` and ``actual_minutes`` is known when the
case is booked; ``actual_minutes`` is the target. Use a history seed distinct from the seeds of
the experiments the forecasts are used in, or the model is trained on the very patients it is
then evaluated on (replication ``i`` with seed ``s`` is the same week under every policy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.scenario import Scenario

HISTORY_COLUMNS: tuple[str, ...] = (
    "week", "date_day", "weekday", "case_id", "service", "surgeon", "procedure",
    "patient_class", "priority", "is_addon", "booked_minutes", "actual_minutes",
)
"""Columns of a case history, in order (see the module docstring for their meaning)."""

def empty_history() -> pd.DataFrame:
    """A history frame with no rows and the documented columns and dtypes."""
    return pd.DataFrame({
        "week": pd.Series(dtype=np.int64), "date_day": pd.Series(dtype=np.int64),
        "weekday": pd.Series(dtype=np.int64), "case_id": pd.Series(dtype=object),
        "service": pd.Series(dtype=object), "surgeon": pd.Series(dtype=object),
        "procedure": pd.Series(dtype=object), "patient_class": pd.Series(dtype=object),
        "priority": pd.Series(dtype=object), "is_addon": pd.Series(dtype=bool),
        "booked_minutes": pd.Series(dtype=float), "actual_minutes": pd.Series(dtype=float),
    })


def training_frame(history) -> pd.DataFrame:
    """The training rows (see the module docstring) of a loaded case log: every case that ran,
    weeks counted from the Monday of its first date; unrecorded surgeons become service teams
    (as calibration does), unrecorded class/priority/add-on flag default to outpatient,
    elective, not an add-on."""
    from calibration.cases import in_room_minutes, week_monday, with_surgeons

    c = with_surgeons(history.cases, history.recorded)
    c = c.loc[c["in_room"].notna() & c["out_of_room"].notna()]
    if c.empty:
        return empty_history()
    monday = pd.Timestamp(week_monday(c["date"].min()))
    date_day = ((c["date"] - monday).dt.days).to_numpy(np.int64)
    out = pd.DataFrame({
        "week": date_day // 7, "date_day": date_day, "weekday": date_day % 7,
        "case_id": c["case_id"].astype(object).to_numpy(),
        "service": c["service"].to_numpy(object), "surgeon": c["surgeon"].to_numpy(object),
        "procedure": c["procedure"].to_numpy(object),
        "patient_class": c["patient_class"].replace("", "outpatient").to_numpy(object),
        "priority": c["priority"].replace("", "elective").to_numpy(object),
        "is_addon": c["is_addon"].fillna(False).astype(bool).to_numpy(),
        "booked_minutes": c["booked_minutes"].to_numpy(float),
        "actual_minutes": in_room_minutes(c).to_numpy(float),
    })
    out = out.loc[out["actual_minutes"] > 0]
    out = out.sort_values(["week", "date_day", "case_id"], kind="stable")
    return out.reset_index(drop=True).loc[:, list(HISTORY_COLUMNS)]


def simulate_history(scn: Scenario, weeks: int, seed: int,
                     policy: str = "as-booked") -> pd.DataFrame:
    """A case history of ``weeks`` consecutive weeks simulated by the twin, written in the
    canonical case-log schema and read back through the calibration loader (clean: no drift,
    no damaged rows). Deterministic in (scenario, weeks, seed, policy)."""
    from calibration.loader import load_frame
    from calibration.synth import synth_history

    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    sh = synth_history(weeks, seed, scenario=scn, drift=None, mess=None, policy=policy)
    return training_frame(load_frame(sh.frame, source=f"<simulated {scn.name}>"))


__all__ = ["HISTORY_COLUMNS", "empty_history", "simulate_history", "training_frame"]
