"""Scheduling policies, each a plug-in behind :class:`twin.policy.Policy`.

:func:`get_policy` builds one by its CLI name; :data:`POLICIES` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.as_booked import AsBooked
from policies.manual import ManualPolicy
from policies.rules_policy import RulesPolicy
from twin.policy import Policy
from twin.scenario import Scenario


def _forecast(scn: Scenario):
    """The project's duration forecast: the quantile model trained on the scenario's history
    (cached per process)."""
    from policies.duration_model import trained_model

    return trained_model(scn)


def _ml_cpsat(scn: Scenario) -> Policy:
    from policies.ml_cpsat import MlCpsatPolicy  # OR-Tools loads only when asked for

    return MlCpsatPolicy(scn, forecaster=_forecast(scn))


POLICIES: dict[str, Callable[[Scenario], Policy]] = {
    "as-booked": lambda scn: AsBooked(),
    "manual": lambda scn: ManualPolicy(scn),
    "rules": lambda scn: RulesPolicy(scn, forecaster=_forecast(scn)),
    "ml-cpsat": _ml_cpsat,
}


def get_policy(name: str, scenario: Scenario) -> Policy:
    """A fresh policy object by name (``KeyError`` naming the choices if unknown)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r} (expected one of {', '.join(POLICIES)})") from None
    return factory(scenario)
