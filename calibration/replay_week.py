"""The week a replay runs, from a loaded case log: its electives as a booked list, and the
scenario it replays in (7 days, the rooms staffed that week, procedures and surgeons the
calibration had not seen added)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from calibration.overlaps import parallel_room_notes
from calibration.schema import HistoryError
from twin.dayplan import with_parallel_rooms
from twin.scenario import WEEKDAYS, Scenario


def booked_list_of_week(cases: pd.DataFrame, monday: date, scn: Scenario) -> tuple[pd.DataFrame, list[str]]:
    """The week's electives as a booked list (columns of :mod:`twin.booked_list`)."""
    notes = []
    e = cases.loc[~cases["is_addon"].fillna(False).astype(bool)].copy()
    no_room = e["room"] == ""
    if no_room.any():
        notes.append(f"{int(no_room.sum())} cancelled electives without a room left out")
        e = e.loc[~no_room]
    day = (e["date"] - pd.Timestamp(monday)).dt.days
    start = e["booked_start"].fillna(e["in_room"])
    if e["booked_start"].isna().any():
        notes.append(f"{int(e['booked_start'].isna().sum())} electives without a booked start "
                     "booked at their wheels-in time")
    minute = ((start - e["date"]).dt.total_seconds() // 60).clip(lower=0, upper=47 * 60)
    default_class = "outpatient"
    booked = e["booked_minutes"]
    if booked.isna().any():
        med = {p.id: float(p.duration.ppf(0.5)) for s in scn.services for p in s.procedures}
        booked = booked.fillna(e["procedure"].map(med)).fillna(60.0)
        notes.append("electives without booked minutes booked at their procedure's median")
    out = pd.DataFrame({
        "case_id": e["case_id"].to_numpy(), "service": e["service"].to_numpy(),
        "surgeon": e["surgeon"].to_numpy(), "procedure": e["procedure"].to_numpy(),
        "patient_class": e["patient_class"].replace("", default_class).to_numpy(),
        "day": day.to_numpy(int), "room": e["room"].to_numpy(),
        "start": [f"{int(m) // 60:02d}:{int(m) % 60:02d}" for m in minute],
        "booked_minutes": booked.round(1).to_numpy(),
    })
    return out, notes


def week_scenario(scn: Scenario, booked: pd.DataFrame, source: str) -> tuple[Scenario, list[str]]:
    """The scenario a week replays in: 7 days, its own staffed room-days, unseen procedures and
    surgeons added (a new procedure takes its service's most common procedure's duration)."""
    notes: list[str] = parallel_room_notes(booked)
    scn = with_parallel_rooms(scn, booked["room"])  # OR3~2: a second stream charted in OR3
    services = {s.id: s for s in scn.services}
    rooms = {r.id for r in scn.rooms}
    for col, known in (("service", services), ("room", rooms)):
        unknown = sorted(set(booked[col]) - set(known))
        if unknown:
            raise HistoryError(source, col, f"the week uses {col} {unknown[0]!r}, which the "
                               f"scenario does not have (calibrate with a later --as-of?)")
    new_services = []
    for s in scn.services:
        have = {p.id for p in s.procedures}
        unseen = sorted(set(booked.loc[booked["service"] == s.id, "procedure"]) - have)
        if unseen:
            base = max(s.procedures, key=lambda p: p.weight)
            extra = [base.model_copy(update={"id": pid, "weight": 1e-6}) for pid in unseen]
            notes.append(f"{s.id}: {len(unseen)} procedure(s) not seen before the as-of date "
                         f"replayed with {base.id}'s duration")
            s = s.model_copy(update={"procedures": [*s.procedures, *extra]})
        new_services.append(s)
    known_sg = {g.id for g in scn.surgeons}
    new_sg = list(scn.surgeons)
    for sid, svc in sorted(set(zip(booked["surgeon"], booked["service"], strict=True)) - {
            (g.id, g.service) for g in scn.surgeons}):
        if sid in known_sg:
            continue
        new_sg.append(scn.surgeons[0].model_copy(update={"id": sid, "service": svc,
                                                          "block_days": [], "speed": 1.0,
                                                          "durations": {}}))
        notes.append(f"surgeon {sid} not seen before the as-of date added (procedure durations)")
    used = {(r, int(d)) for r, d in zip(booked["room"], booked["day"], strict=True)}
    new_rooms = []
    for r in scn.rooms:
        if r.on_call or r.addon_only:
            new_rooms.append(r)
            continue
        hours = {wd: w for wd, w in r.hours.items() if (r.id, WEEKDAYS.index(wd)) in used}
        for d in range(7):
            if (r.id, d) in used and WEEKDAYS[d] not in hours:
                w = next(iter(r.hours.values()), None)
                if w is not None:
                    hours[WEEKDAYS[d]] = w  # booked on a day it is not usually open
        new_rooms.append(r.model_copy(update={"hours": hours}))
    blocks = {r: {d: b for d, b in days.items()
                  if d in next(x for x in new_rooms if x.id == r).hours}
              for r, days in scn.blocks.items()}
    out = scn.model_copy(update={"horizon_days": 7, "services": new_services,
                                 "surgeons": new_sg, "rooms": new_rooms, "blocks": blocks})
    return out, notes


__all__ = ["booked_list_of_week", "week_scenario"]
