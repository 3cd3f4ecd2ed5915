"""ORTwin: a discrete-event digital twin of a hospital surgical suite.

The public API, in the order a user meets it::

    scn = load_scenario("scenarios/baseline.yaml")          # validated, frozen Scenario
    res = run_experiment(scn, "as-booked", reps=50, seed=1)  # Results: three grains
    res.summary, res.replications, res.events               # pandas frames
    res.write("out/baseline")                               # parquet, atomically

Lower level: :func:`draw_week` samples one replication's patients from named streams
(:class:`Streams`), :class:`SuiteModel` runs them under a policy, :func:`compute_kpis` measures
an event log — simulated or historical.
"""

from twin.demand import Case, Week, cases_frame, draw_week
from twin.distributions import Distribution
from twin.events import CASE_MILESTONES, TERMINAL, EventLog
from twin.kpis import KPIS, KpiContext, compute_kpis, room_day_table, service_table
from twin.model import SuiteModel
from twin.policy import Move, PlannedCase, Policy, PolicyError, RoomStatus, SuiteView
from twin.runner import Results, run_experiment, run_replication
from twin.scenario import Scenario, ScenarioError, from_mapping, load_scenario
from twin.snapshot import PacuSnapshot, RoomSnapshot, SuiteSnapshot
from twin.streams import SOURCES, Streams
from twin.summary import format_table, paired_difference, summarise

__version__ = "0.1.0"

__all__ = [
    "CASE_MILESTONES", "KPIS", "SOURCES", "TERMINAL",
    "Case", "Distribution", "EventLog", "KpiContext", "Move", "PacuSnapshot", "PlannedCase",
    "Policy", "PolicyError", "Results", "RoomSnapshot", "RoomStatus", "Scenario",
    "ScenarioError", "Streams", "SuiteModel", "SuiteSnapshot", "SuiteView", "Week",
    "cases_frame", "compute_kpis", "draw_week", "format_table", "from_mapping", "load_scenario",
    "paired_difference", "room_day_table", "run_experiment", "run_replication",
    "service_table", "summarise",
]
