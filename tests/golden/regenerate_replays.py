"""Regenerate the golden replay tables. Run only when a change is *meant* to move results:

    .venv/bin/python tests/golden/regenerate_replays.py

and say why in the commit message. ``tests/test_replay.py`` recomputes each replay and compares
it with these files (and checks the coverage).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REPS = 30
SEED = 2026
KAGGLE_AS_OF = "2022-01-31"
KAGGLE_WEEKS = {"replay_2022_W05.csv": date(2022, 1, 31), "replay_2022_W07.csv": date(2022, 2, 14)}
SYNTH = {"weeks": 20, "seed": 21, "as_of": "2023-05-01", "week": date(2023, 5, 1),
         "file": "replay_synthetic_W18.csv"}


def kaggle_history():
    """The bundled 2022 log through its mapping."""
    from calibration.loader import load_history

    return load_history(ROOT / "calibration/data/or_case_log_2022_jan_feb.csv",
                        ROOT / "calibration/mappings/or_case_log_2022.yaml")


def synthetic_history():
    """The synthetic history the golden synthetic replay uses (default drift and mess)."""
    from calibration.loader import load_frame
    from calibration.synth import synth_history

    sh = synth_history(SYNTH["weeks"], SYNTH["seed"])
    return load_frame(sh.frame, source="<synthetic>")


def replays():
    """(file name, ReplayResult) of every golden replay."""
    from calibration.build import calibrate
    from ortwin.replay import replay_week

    out = []
    k = kaggle_history()
    scn = calibrate(k, KAGGLE_AS_OF).validated
    for name, monday in KAGGLE_WEEKS.items():
        out.append((name, replay_week(k, monday, scn, "as-booked", REPS, SEED)))
    s = synthetic_history()
    scn = calibrate(s, SYNTH["as_of"]).validated
    out.append((SYNTH["file"], replay_week(s, SYNTH["week"], scn, "as-booked", REPS, SEED)))
    return out


def main() -> None:
    for name, res in replays():
        res.table.to_csv(HERE / name, index=False)
        print(f"{name}: coverage {res.coverage:.0%}")


if __name__ == "__main__":
    main()
