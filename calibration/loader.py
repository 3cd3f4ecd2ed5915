"""Loading a case log: read (CSV or parquet), map to the canonical schema, validate every row.

Rows that cannot be trusted are *quarantined* with their reasons, never dropped silently: a
missing required value, an unparseable value, milestones out of order, an impossible duration
or date, an exact duplicate (the first copy is kept) or conflicting rows sharing a case id (all
are quarantined: which one is right is unknown). Rows that load but need a word are *flagged*
(kept, listed in ``History.flags``): a case wheeled in while another patient is still in its
room goes to a parallel stream of the room (:mod:`calibration.overlaps`). A file that cannot be read at all, or lacks a
mapped column, raises :class:`~calibration.schema.HistoryError` (one line).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.mapping import CANONICAL, MAPPINGS, Mapping, load_mapping
from calibration.overlaps import assign_streams, empty_flags, overlap_count
from calibration.schema import (
    BOOLS,
    COLUMNS,
    CORE_MILESTONES,
    MAX_CASE_MINUTES,
    MAX_DAY_OFFSET,
    MAX_PACU_MINUTES,
    MILESTONES,
    NUMBERS,
    PATIENT_CLASSES,
    PRIORITIES,
    REQUIRED,
    TEXT,
    TIMESTAMPS,
    HistoryError,
)
from twin.io import atomic_write

QUARANTINE_COLUMNS: tuple[str, ...] = ("row", "case_id", "reasons")
BUNDLED_NAME = "bundled"
"""The HISTORY argument that names the bundled log (package data)."""
BUNDLED_LOG = Path(__file__).resolve().parent / "data" / "or_case_log_2022_jan_feb.csv"
BUNDLED_MAPPING = MAPPINGS / "or_case_log_2022.yaml"


@dataclass
class History:
    """A validated case log: ``cases`` in canonical columns (typed), ``quarantine`` of bad rows.

    ``cases``: text columns are str ("" = not recorded), ``date`` and timestamps are
    ``datetime64`` (NaT = not recorded), ``booked_minutes`` float, ``is_addon``/``cancelled``
    pandas booleans (NA = not recorded), plus ``row`` (the source row, header = row 1).
    ``quarantine``: ``row``, ``case_id``, ``reasons`` (``; ``-joined) and the raw values.
    ``recorded``: the canonical columns the source provides (mapped or given a constant).
    ``flags``: loaded rows that carry a remark (:data:`calibration.overlaps.FLAG_COLUMNS`):
    cases overlapping another in their room, with the parallel room they were given.
    """

    cases: pd.DataFrame
    quarantine: pd.DataFrame
    recorded: frozenset[str]
    source: str
    rows_read: int
    flags: pd.DataFrame = field(default_factory=empty_flags)

    def until(self, as_of: date | str) -> History:
        """The cases booked strictly before ``as_of`` (quarantine kept whole)."""
        cut = pd.Timestamp(as_of)
        return History(self.cases.loc[self.cases["date"] < cut].reset_index(drop=True),
                       self.quarantine, self.recorded, self.source, self.rows_read, self.flags)

    def between(self, first: date | str, end: date | str) -> History:
        """The cases booked on ``first`` <= date < ``end``."""
        d = self.cases["date"]
        keep = (d >= pd.Timestamp(first)) & (d < pd.Timestamp(end))
        return History(self.cases.loc[keep].reset_index(drop=True), self.quarantine,
                       self.recorded, self.source, self.rows_read, self.flags)

    def reason_counts(self) -> dict[str, int]:
        """Quarantined rows per kind of reason (the text before any ':' or '(')."""
        out: dict[str, int] = {}
        for text in self.quarantine["reasons"]:
            for r in str(text).split("; "):
                kind = r.split(":")[0].split(" (")[0].split(" of row")[0].strip()
                out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items()))

    def summary_line(self) -> str:
        """One line: rows read, loaded, quarantined by reason, flagged."""
        kinds = ", ".join(f"{k} {v}" for k, v in self.reason_counts().items())
        q = f"{len(self.quarantine)} quarantined" + (f" ({kinds})" if kinds else "")
        flagged, moved = overlap_count(self.flags)
        if flagged:
            q += (f"; {flagged} flagged and kept (overlapping another case in its room; "
                  f"{moved} moved to a parallel room)")
        return f"{self.source}: {self.rows_read} rows read, {len(self.cases)} loaded, {q}"


# --- reading -----------------------------------------------------------------------------------


def read_raw(path: str | Path) -> pd.DataFrame:
    """The file's cells as strings (CSV or parquet by suffix); unreadable -> HistoryError."""
    path = Path(path)
    if not path.exists():
        raise HistoryError(path, "", "file not found")
    if path.is_dir():
        raise HistoryError(path, "", "expected a file, got a directory")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            return df.astype(object).where(df.notna(), "").astype(str)
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError,
            OSError) as e:
        kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "CSV"
        raise HistoryError(path, "", f"cannot read as {kind} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None


def to_canonical(raw: pd.DataFrame, mapping: Mapping, source: str,
                 mapping_file: str | None = None) -> tuple[pd.DataFrame, frozenset[str]]:
    """Rename, recode and fill constants: canonical string columns plus what is recorded (a
    mapped column missing from the export is reported against the mapping file)."""
    raw = raw.rename(columns=lambda c: str(c).strip())
    columns = dict(mapping.columns) or {c: c for c in COLUMNS if c in raw.columns}
    for canon, col in columns.items():
        if col not in raw.columns:
            raise HistoryError(mapping_file or source, f"columns.{canon}",
                               f"column {col!r} not in {Path(source).name} (it has: "
                               f"{', '.join(map(str, raw.columns[:12]))})")
    out = pd.DataFrame(index=raw.index)
    for canon in COLUMNS:
        if canon in columns:
            s = raw[columns[canon]].astype(str).str.strip()
            s = s.where(~s.str.lower().isin(("nan", "none", "nat", "null")), "")
        elif canon in mapping.constants:
            v = mapping.constants[canon]
            s = pd.Series(str(v).lower() if isinstance(v, bool) else str(v), index=raw.index)
        else:
            s = pd.Series("", index=raw.index)
        if canon in mapping.values:
            s = s.map(lambda x, m=mapping.values[canon]: m.get(x, x))
        if canon in mapping.templates:
            s = s.map(lambda x, t=mapping.templates[canon]: t.format(x) if x else x)
        out[canon] = s.astype(object)
    return out, frozenset(columns) | frozenset(mapping.constants)


# --- validation --------------------------------------------------------------------------------


def _parse_times(s: pd.Series, fmt: str) -> pd.Series:
    if fmt == "ISO8601":
        return pd.to_datetime(s.where(s != "", None), format="ISO8601", errors="coerce")
    return pd.to_datetime(s.where(s != "", None), format=fmt, errors="coerce")


def _to_local(t: pd.Series, mapping: Mapping) -> tuple[pd.Series, pd.Series]:
    """Convert naive times written in ``timezone`` to naive local time; returns (times,
    mask of times that do not exist or are ambiguous in the source zone)."""
    if not mapping.converts_zone or t.isna().all():
        return t, pd.Series(False, index=t.index)
    src = zoneinfo.ZoneInfo(mapping.timezone or "UTC")
    aware = t.dt.tz_localize(src, ambiguous="NaT", nonexistent="NaT")
    bad = aware.isna() & t.notna()
    local = aware.dt.tz_convert(zoneinfo.ZoneInfo(mapping.local_timezone or "UTC"))
    return local.dt.tz_localize(None), bad


def validate(frame: pd.DataFrame, mapping: Mapping, source: str, recorded: frozenset[str],
             rows: np.ndarray | None = None) -> History:
    """Type and check canonical string columns; bad rows go to the quarantine with reasons."""
    n = len(frame)
    frame = frame.reset_index(drop=True)
    row_no = np.arange(2, n + 2) if rows is None else np.asarray(rows)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def flag(mask: pd.Series | np.ndarray, text: str | pd.Series) -> None:
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        for i in idx:
            reasons[i].append(text if isinstance(text, str) else str(text.iloc[i]))

    cases = pd.DataFrame({"row": row_no})
    for col in TEXT:
        cases[col] = frame[col].astype(str)
    for col in REQUIRED:
        flag(frame[col] == "", f"missing {col}")

    # dates and timestamps
    d = _parse_times(frame["date"], mapping.date_format)
    flag((frame["date"] != "") & d.isna(), "unparseable date ('" + frame["date"] + "')")
    cases["date"] = d.dt.normalize()
    for col in TIMESTAMPS:
        t = _parse_times(frame[col], mapping.timestamp_format)
        flag((frame[col] != "") & t.isna(), f"unparseable {col} ('" + frame[col] + "')")
        t, gap = _to_local(t, mapping)
        flag(gap, f"impossible {col}: not a valid local time in {mapping.timezone}")
        cases[col] = t

    # numbers and booleans
    for col in NUMBERS:
        x = pd.to_numeric(frame[col].where(frame[col] != "", None), errors="coerce")
        flag((frame[col] != "") & x.isna(), f"unparseable {col} ('" + frame[col] + "')")
        flag(x.notna() & ~((x > 0) & (x <= MAX_CASE_MINUTES)),
             f"impossible {col}: expected 0 < minutes <= {MAX_CASE_MINUTES}")
        cases[col] = x.astype(float)
    truthy, falsy = {v.lower() for v in mapping.true_values}, {v.lower() for v in mapping.false_values}
    for col in BOOLS:
        low = frame[col].str.lower()
        ok = low.isin(truthy) | low.isin(falsy) | (low == "")
        flag(~ok, f"unparseable {col} ('" + frame[col] + "': expected true or false)")
        b = pd.Series(pd.NA, index=frame.index, dtype="boolean")
        b[low.isin(truthy)] = True
        b[low.isin(falsy)] = False
        cases[col] = b
    for col, allowed in (("patient_class", PATIENT_CLASSES), ("priority", PRIORITIES)):
        bad = (cases[col] != "") & ~cases[col].isin(allowed)
        flag(bad, f"bad {col} ('" + cases[col] + f"': expected one of {', '.join(allowed)})")

    # milestones: present when the case ran, absent when it was cancelled, in order, plausible
    cancelled = cases["cancelled"].fillna(False).to_numpy(bool)
    ran = ~cancelled
    for col in CORE_MILESTONES:
        flag(ran & (frame[col] == ""), f"missing {col}")
    flag(ran & (frame["room"] == ""), "missing room")
    flag((cases["pacu_in"].notna() & (frame["pacu_out"] == "")).to_numpy(), "missing pacu_out")
    flag((cases["pacu_out"].notna() & (frame["pacu_in"] == "")).to_numpy(), "missing pacu_in")
    flag(cancelled & cases["in_room"].notna().to_numpy(), "impossible: cancelled case has in_room")
    for a, b in zip(MILESTONES[:-1], MILESTONES[1:], strict=True):
        flag((cases[b] < cases[a]).to_numpy(), f"out of order: {b} before {a}")
    # non-adjacent pairs when the middle one is missing
    for i, a in enumerate(MILESTONES):
        for b in MILESTONES[i + 2:]:
            mid = MILESTONES[i + 1: MILESTONES.index(b)]
            gapped = cases[list(mid)].isna().all(axis=1)
            flag((gapped & (cases[b] < cases[a])).to_numpy(), f"out of order: {b} before {a}")
    in_room_min = (cases["out_of_room"] - cases["in_room"]).dt.total_seconds() / 60
    flag((in_room_min > MAX_CASE_MINUTES).to_numpy(),
         "impossible: in-room time " + in_room_min.round().astype("Int64").astype(str)
         + f" min (over {MAX_CASE_MINUTES})")
    flag((in_room_min == 0).to_numpy(), "impossible: in_room equals out_of_room")
    pacu_min = (cases["pacu_out"] - cases["pacu_in"]).dt.total_seconds() / 60
    flag((pacu_min > MAX_PACU_MINUTES).to_numpy(),
         f"impossible: PACU stay over {MAX_PACU_MINUTES // 1440} days")
    offset = (cases["in_room"].dt.normalize() - cases["date"]).dt.days
    flag(((offset < 0) | (offset > MAX_DAY_OFFSET)).to_numpy(),
         "impossible: in_room on " + cases["in_room"].dt.strftime("%Y-%m-%d").fillna("")
         + ", not on date " + cases["date"].dt.strftime("%Y-%m-%d").fillna("") + " or the day after")

    # duplicates: exact copies keep the first; conflicting rows sharing a case id all go
    key = frame["case_id"]
    has_id = key != ""
    exact = frame.duplicated(keep="first") & has_id
    first_row = pd.Series(row_no, index=frame.index).groupby(
        [frame[c] for c in frame.columns], sort=False, dropna=False).transform("first")
    flag(exact.to_numpy(), "duplicate of row " + first_row.astype(str))
    distinct = frame.loc[has_id & ~exact]
    conflict_ids = distinct["case_id"][distinct["case_id"].duplicated(keep=False)]
    conflict = key.isin(set(conflict_ids)) & ~exact
    rows_of = pd.Series(row_no, index=frame.index)[conflict].groupby(key[conflict]).agg(
        lambda r: ", ".join(map(str, r)))
    flag(conflict.to_numpy(), "conflicting duplicate case_id (rows "
         + key.map(lambda k: rows_of.get(k, ""))
         + ")")

    bad = np.array([bool(r) for r in reasons], dtype=bool)
    quarantine = pd.DataFrame({
        "row": row_no[bad], "case_id": frame.loc[bad, "case_id"].to_numpy(),
        "reasons": ["; ".join(dict.fromkeys(r)) for r, b in zip(reasons, bad, strict=True) if b],
    })
    raw = frame.loc[bad].reset_index(drop=True).add_prefix("raw_")
    quarantine = pd.concat([quarantine, raw], axis=1)
    good = cases.loc[~bad].reset_index(drop=True)
    good = good.sort_values(["date", "room", "in_room", "case_id"], kind="stable",
                            na_position="last").reset_index(drop=True)
    good, flags = assign_streams(good)
    return History(good, quarantine, recorded, source, n, flags)


def load_frame(frame: pd.DataFrame, mapping: Mapping | None = None,
               source: str = "<frame>") -> History:
    """Validate an in-memory export (all cells as strings) through the same path as a file."""
    canon, recorded = to_canonical(frame.astype(str), mapping or CANONICAL, source)
    return validate(canon, mapping or CANONICAL, source, recorded)


def load_history(path: str | Path, mapping: str | Path | Mapping | None = None) -> History:
    """Read, map and validate a case-log file (``mapping``: a YAML path or bundled name, a
    Mapping, or None for a file already in the canonical schema). ``path`` ``bundled`` is the
    bundled Jan-Feb 2022 log, read through its own mapping unless another is given."""
    if str(path) == BUNDLED_NAME and not Path(path).exists():
        path, mapping = BUNDLED_LOG, mapping or BUNDLED_MAPPING
    m = load_mapping(mapping) if isinstance(mapping, (str, Path)) else (mapping or CANONICAL)
    raw = read_raw(path)
    if raw.empty and not len(raw.columns):
        raise HistoryError(path, "", "the file has no columns")
    if not m.columns:
        missing = [c for c in REQUIRED if c not in raw.columns]
        if missing:
            raise HistoryError(path, missing[0], "required column is missing (a file not in the "
                               "canonical schema needs --mapping)")
    canon, recorded = to_canonical(raw, m, str(path),
                                   str(mapping) if isinstance(mapping, (str, Path)) else None)
    return validate(canon, m, str(path), recorded)


def write_quarantine(history: History, path: str | Path) -> Path:
    """Write the quarantine report as CSV, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda p: history.quarantine.to_csv(p, index=False))


def write_flags(history: History, path: str | Path) -> Path:
    """Write the flag report (rows kept with a remark) as CSV, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda p: history.flags.to_csv(p, index=False))


__all__ = ["History", "QUARANTINE_COLUMNS", "load_frame", "load_history", "read_raw",
           "to_canonical", "validate", "write_flags", "write_quarantine"]
