"""A results directory's partitioned parquet dataset: one file per table, arm and replication
range, each written atomically as its task finishes.

Layout (names percent-encoded where they are not plain)::

    OUT/parts/<table>/<scenario>/<policy>/reps-000000-000050.parquet

``<table>`` is one of :data:`ortwin.experiment.TABLES`. Every file holds its own ``scenario``,
``policy`` and ``rep`` columns, so any one file stands alone, and ``pd.read_parquet(OUT/parts/
<table>)`` (or DuckDB, Polars, Spark) reads a whole table. The ``replications`` file of a part is
written last: a part is complete exactly when it exists, which is what ``--resume`` checks.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from ortwin.experiment import TABLES, concat
from twin.io import atomic_write

PARTS = "parts"
_NAME = re.compile(r"reps-(\d+)-(\d+)\.parquet")


def _seg(name: str) -> str:
    seg = quote(name, safe="@+,-_=")
    return "%2E" + seg[1:] if seg.startswith(".") else seg


def part_path(out: Path, table: str, scenario: str, policy: str, lo: int, hi: int) -> Path:
    """Where a part of ``table`` lives."""
    return Path(out) / PARTS / table / _seg(scenario) / _seg(policy) / f"reps-{lo:06d}-{hi:06d}.parquet"


def write_part(out: Path, scenario: str, policy: str, lo: int, hi: int,
               tables: dict[str, pd.DataFrame]) -> None:
    """Write a finished part's non-empty tables, each atomically, ``replications`` last."""
    for name in TABLES:
        df = tables.get(name)
        if df is None or not len(df):
            continue
        path = part_path(out, name, scenario, policy, lo, hi)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p, d=df: d.to_parquet(p, index=False))


def part_done(out: Path, scenario: str, policy: str, lo: int, hi: int) -> bool:
    """Whether the part is complete (its ``replications`` file exists)."""
    return part_path(out, "replications", scenario, policy, lo, hi).is_file()


def part_files(out: Path, table: str,
               arms: Sequence[tuple[str, str]] | None = None) -> list[Path]:
    """The files of ``table``, arm by arm (in ``arms`` order, else by name) and by range."""
    root = Path(out) / PARTS / table
    if not root.is_dir():
        return []
    if arms is None:
        dirs = sorted(p for p in root.glob("*/*") if p.is_dir())
    else:
        dirs = [root / _seg(s) / _seg(p) for s, p in arms]
    files = []
    for d in dirs:
        got = []
        for f in d.glob("reps-*.parquet") if d.is_dir() else ():
            m = _NAME.fullmatch(f.name)
            if m:
                got.append((int(m.group(1)), f))
        files += [f for _, f in sorted(got)]
    return files


def read_table(out: Path, table: str, arms: Sequence[tuple[str, str]] | None = None,
               columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A whole table read back from its parts (arm by arm, by replication), or an empty frame
    when it has none."""
    cols = list(columns) if columns is not None else None
    return concat(pd.read_parquet(f, columns=cols) for f in part_files(out, table, arms))


def clear_parts(out: Path) -> None:
    """Remove a previous run's parts (a fresh run that is not a resume)."""
    shutil.rmtree(Path(out) / PARTS, ignore_errors=True)
