"""A booked list: the week's electives as a hospital booked them, from a CSV file.

Columns: ``case_id, service, surgeon, procedure, patient_class, day, room, start, booked_minutes``
(``day`` is the 0-based horizon day, ``start`` is ``HH:MM``). Every row is checked against the
scenario; the first problem raises :class:`~twin.scenario.ScenarioError` naming the file, the
row (as numbered in a spreadsheet, header = row 1) and the column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from twin.scenario import PATIENT_CLASSES, Scenario, ScenarioError, hhmm

COLUMNS = ("case_id", "service", "surgeon", "procedure", "patient_class", "day", "room",
           "start", "booked_minutes")


def booked_list_path(scn: Scenario, base_dir: Path | None) -> Path:
    """Where the scenario's booked list lives (relative paths from the scenario's folder)."""
    path = Path(scn.booking.booked_list or "")
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def read_booked_list(scn: Scenario, base_dir: Path | None) -> pd.DataFrame:
    """The validated booked list, with an absolute ``booked_start`` minute per case."""
    path = booked_list_path(scn, base_dir)
    return check_booked_list(read_csv_text(path, "booked list"), scn, path)


def read_csv_text(path: Path, what: str) -> pd.DataFrame:
    """A CSV file read as text columns (:class:`ScenarioError` in one line if it cannot be)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ScenarioError(path, "", f"{what} not found") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ScenarioError(path, "", f"cannot read {what} as CSV ({type(e).__name__})") from None


def check_booked_list(df: pd.DataFrame, scn: Scenario, path: Path | str) -> pd.DataFrame:
    """Check every row of a booked list (text columns) against the scenario and add the
    absolute ``booked_start`` minute; the first problem raises :class:`ScenarioError`."""
    for col in COLUMNS:
        if col not in df.columns:
            raise ScenarioError(path, col, "required column is missing")
    services = {s.id: s for s in scn.services}
    surgeons = {s.id for s in scn.surgeons}
    rooms = {r.id for r in scn.rooms}
    seen: set[str] = set()
    starts = []
    for i, row in enumerate(df.itertuples(index=False), start=2):
        where = f"row {i}"

        def bad(col: str, msg: str) -> ScenarioError:
            return ScenarioError(path, f"{where}: {col}", msg)  # noqa: B023

        if not row.case_id or row.case_id in seen:
            raise bad("case_id", "expected a unique, non-empty case id")
        seen.add(row.case_id)
        if row.service not in services:
            raise bad("service", f"unknown service {row.service!r}")
        if row.procedure not in {p.id for p in services[row.service].procedures}:
            raise bad("procedure", f"unknown procedure {row.procedure!r} of {row.service}")
        if row.surgeon not in surgeons:
            raise bad("surgeon", f"unknown surgeon {row.surgeon!r}")
        if row.patient_class not in PATIENT_CLASSES:
            raise bad("patient_class", f"expected one of {', '.join(PATIENT_CLASSES)}")
        if row.room not in rooms:
            raise bad("room", f"unknown room {row.room!r}")
        try:
            day = int(row.day)
            if not 0 <= day < scn.horizon_days:
                raise ValueError
        except ValueError:
            raise bad("day", f"expected a day from 0 to {scn.horizon_days - 1}") from None
        try:
            start = hhmm(row.start)
        except ValueError:
            raise bad("start", "expected a time 'HH:MM'") from None
        try:
            minutes = float(row.booked_minutes)
            if not minutes > 0:
                raise ValueError
        except ValueError:
            raise bad("booked_minutes", "expected a positive number of minutes") from None
        starts.append(day * 1440 + start)
    return df.assign(booked_start=starts, day=df["day"].astype(int),
                     booked_minutes=df["booked_minutes"].astype(float))
