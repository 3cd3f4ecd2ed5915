"""Named random streams: one per stochastic source, spawned from the replication's seed.

Stream ``(source, *key)`` of replication ``rep`` under base seed ``seed`` is
``SeedSequence(seed, spawn_key=(rep, SOURCE_INDEX[source], *key))`` — the same stream as
``SeedSequence(seed).spawn(..)[rep].spawn(..)[index]...``, so any process can rebuild it from
three small integers. New sources go at the END of :data:`SOURCES` so old ones keep their numbers.
Sub-keys (a service, a room) are stable hashes of their names, so adding a room or a service
leaves every other room's and service's draws untouched (common random numbers across variants).
"""

from __future__ import annotations

import zlib

import numpy as np

SOURCES: tuple[str, ...] = (
    "elective_demand",
    "case_mix",
    "durations",
    "phases",
    "booking",
    "cancellations",
    "first_case_delay",
    "turnover",
    "addon_arrivals",
    "addon_mix",
    "pacu_los",
    "inpatient_los",
    "spd_cycles",
    "random_downtime",
    "background_beds",
    "booking_error",
)
SOURCE_INDEX: dict[str, int] = {s: i for i, s in enumerate(SOURCES)}


def key_of(name: str) -> int:
    """A stable non-negative integer for a name (crc32), used as a spawn-key element."""
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """Factory of named generators for one replication."""

    __slots__ = ("seed", "rep")

    def __init__(self, seed: int, rep: int) -> None:
        self.seed, self.rep = int(seed), int(rep)

    def rng(self, source: str, *key: int | str) -> np.random.Generator:
        """The generator of ``source`` (optionally a sub-stream keyed by ints or names)."""
        if source not in SOURCE_INDEX:
            raise KeyError(f"unknown random source {source!r}")
        k = tuple(key_of(x) if isinstance(x, str) else int(x) for x in key)
        ss = np.random.SeedSequence(self.seed, spawn_key=(self.rep, SOURCE_INDEX[source], *k))
        return np.random.Generator(np.random.PCG64(ss))
