"""Regenerate the golden back-test files. Run only when a change is *meant* to move results:

    .venv/bin/python tests/golden/regenerate.py

and say why in the commit message. ``tests/test_golden.py`` compares against these files.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CASES = {  # file name -> (scenario, policy, seed, replications, horizon days)
    "baseline_as_booked.csv": ("scenarios/baseline.yaml", "as-booked", 2026, 3, 7),
    "pacu_closed_beds_as_booked.csv": ("scenarios/pacu_closed_beds.yaml", "as-booked", 2026, 2, 3),
}


def golden_frame(scenario: str, policy: str, seed: int, reps: int, days: int):
    """The per-replication KPI frame a golden file stores."""
    from ortwin.experiment import run_experiment
    from twin.scenario import load_scenario, with_horizon

    scn = with_horizon(load_scenario(ROOT / scenario), days)
    return run_experiment(scn, policy, reps, seed, keep_events=False).replications


def main() -> None:
    for name, spec in CASES.items():
        df = golden_frame(*spec)
        df.to_csv(HERE / name, index=False, float_format="%.10g")
        print(f"wrote {HERE / name} ({len(df)} rows)")


if __name__ == "__main__":
    main()
