"""The manifest of a results directory: what was run, from which inputs, with which seeds.

``manifest.json`` sits beside the parquet files ``ortwin run`` and ``ortwin compare`` write. It
records per scenario its file, a content hash of the validated scenario, its description and
calibration source, the seed and replications, plus the policies, the reference policy and the
package version, so a report's methods section (and a later reader) can say exactly what the
numbers come from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from twin.scenario import Scenario

MANIFEST = "manifest.json"

METHODS = {
    "common_random_numbers": (
        "Every policy of a scenario runs the same replication indices from the same base seed; "
        "replication i draws its patients, durations and disruptions from streams spawned from "
        "SeedSequence(seed, spawn_key=(i, source)), one stream per stochastic source, so policy "
        "differences are paired on i and policies never draw from the model's streams."),
    "confidence_intervals": (
        "Means carry 95% Student-t intervals over replications; policy differences carry 95% "
        "paired t-intervals on the replication index. P90/P95 are empirical percentiles; "
        "CVaR95 is the mean of the worst 5% of values."),
}
"""Plain statements of how results are produced, for a report's methods section."""


def scenario_hash(scn: Scenario) -> str:
    """SHA-256 of the validated scenario (canonical JSON): equal for equal suites however the
    file was written."""
    text = json.dumps(scn.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def calibration_source(path: str | Path | None) -> str | None:
    """The header ``ortwin calibrate`` writes at the top of a calibrated scenario (history file,
    cases used, what was fitted and what came from the template), or None for other files."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
            if not first.startswith("# Calibrated by"):
                return None
            lines = []
            for line in fh:
                if not line.startswith("#"):
                    break
                lines.append(line[1:].strip())
    except OSError:
        return None
    return "\n".join(lines)


def package_version() -> str:
    """The installed ortwin version ("unknown" when not installed)."""
    try:
        return metadata.version("ortwin")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_manifest(kind: str, scenarios: Sequence[Scenario], policies: Sequence[str],
                   reference: str, reps: int, seeds: Sequence[int],
                   sources: Sequence[str | Path | None] | None = None) -> dict[str, Any]:
    """The manifest of a run (``kind`` ``run``) or comparison (``compare``)."""
    srcs = list(sources) if sources is not None else [None] * len(scenarios)
    runs = []
    for scn, seed, src in zip(scenarios, seeds, srcs, strict=True):
        cal = calibration_source(src)
        runs.append({
            "scenario": scn.name, "days": scn.horizon_days, "seed": int(seed), "reps": int(reps),
            "file": str(src) if src is not None else None, "sha256": scenario_hash(scn),
            "description": " ".join(scn.description.split()),
            "rooms": len(scn.rooms),
            "calibration": cal,
        })
    return {
        "kind": kind, "ortwin_version": package_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "policies": list(policies), "reference": reference, "reps": int(reps), "runs": runs,
        "methods": METHODS,
    }


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically."""
    from twin.io import atomic_write

    text = json.dumps(manifest, indent=2, sort_keys=False, default=str)
    return atomic_write(Path(out_dir) / MANIFEST, lambda p: Path(p).write_text(text + "\n"))


def read_manifest(results_dir: Path) -> dict[str, Any]:
    """The manifest of a results directory, or ``{}`` when it has none (older results)."""
    p = Path(results_dir) / MANIFEST
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        from ortwin.compare import CompareError

        raise CompareError(f"{p}: not valid JSON ({e})") from None
    return data if isinstance(data, dict) else {}
