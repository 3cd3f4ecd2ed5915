"""ORTwin: a discrete-event digital twin of a hospital surgical suite.

The public API, in the order a user meets it::

    scn = load_scenario("scenarios/baseline.yaml")          # validated, frozen Scenario
    week = draw_week(scn, Streams(scn.seed, 0))             # one replication's patients
    out = replicate(scn, policy, scn.seed, 0)               # run under a Policy object, KPIs

This package is the simulation core: scenario, distributions, streams, demand and booking,
resources, the model, events and KPIs, one replication given a :class:`Policy` object. It imports
nothing from the layers above it (``policies``, ``calibration``, ``vision``, ``ortwin``): the
policy registry, experiments, live operations, reports and the CLI live in :mod:`ortwin`.
"""

from twin.demand import Case, Week, cases_frame, draw_week
from twin.distributions import Distribution
from twin.events import CASE_MILESTONES, TERMINAL, EventLog
from twin.kpis import KPIS, KpiContext, compute_kpis, room_day_table, service_table
from twin.model import SuiteModel
from twin.policy import Move, PlannedCase, Policy, PolicyError, RoomStatus, SuiteView
from twin.replication import RepOutput, replicate
from twin.scenario import Scenario, ScenarioError, from_mapping, load_scenario
from twin.snapshot import PacuSnapshot, RoomSnapshot, SuiteSnapshot
from twin.streams import SOURCES, Streams

__version__ = "0.1.0"

__all__ = [
    "CASE_MILESTONES", "KPIS", "SOURCES", "TERMINAL",
    "Case", "Distribution", "EventLog", "KpiContext", "Move", "PacuSnapshot", "PlannedCase",
    "Policy", "PolicyError", "RepOutput", "RoomSnapshot", "RoomStatus", "Scenario",
    "ScenarioError", "Streams", "SuiteModel", "SuiteSnapshot", "SuiteView", "Week",
    "cases_frame", "compute_kpis", "draw_week", "from_mapping", "load_scenario", "replicate",
    "room_day_table", "service_table",
]
