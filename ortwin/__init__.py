"""ORTwin, the application: the policy registry, experiments (runner, cluster, compare, gates,
replay), live operations (live state, now-cast, board), reporting and the CLI, on top of the
simulation core (:mod:`twin`), the policies, calibration and vision.

The public API, in the order a user meets it::

    scn = load_scenario("scenarios/baseline.yaml")          # validated, frozen Scenario
    res = run_experiment(scn, "as-booked", reps=50, seed=1)  # Results: three grains
    res.summary, res.replications, res.events               # pandas frames
    res.write("out/baseline")                               # parquet, atomically

Lower level (:mod:`twin`): :func:`~twin.demand.draw_week` samples one replication's patients
from named streams, :class:`~twin.model.SuiteModel` runs them under a policy,
:func:`~twin.kpis.compute_kpis` measures an event log, simulated or historical.
"""

from ortwin.experiment import run_experiment
from ortwin.registry import POLICIES, get_policy
from ortwin.runner import Results, run_replication
from ortwin.summary import format_table, paired_difference, summarise
from twin import *  # noqa: F403  (the core's public API, re-exported)
from twin import __all__ as _core

__version__ = "0.1.0"

__all__ = [*_core, "POLICIES", "Results", "format_table", "get_policy", "paired_difference",
           "run_experiment", "run_replication", "summarise"]
