"""The policy registry: every scheduling policy by its CLI name, each built fresh for a
scenario, with the duration forecasts ``rules`` and ``ml-cpsat`` plan with (the quantile model
trained on the scenario's simulated history, :func:`calibration.training.trained_model`)."""

from __future__ import annotations

from collections.abc import Callable

from policies import SIMPLE
from policies.rules_policy import RulesPolicy
from twin.policy import Policy
from twin.scenario import Scenario


def forecaster_for(scn: Scenario):
    """The project's duration forecast: the quantile model trained on the scenario's history
    (cached per process)."""
    from calibration.training import trained_model

    return trained_model(scn)


def _ml_cpsat(scn: Scenario) -> Policy:
    from policies.ml_cpsat import MlCpsatPolicy  # OR-Tools loads only when asked for

    return MlCpsatPolicy(scn, forecaster=forecaster_for(scn))


POLICIES: dict[str, Callable[[Scenario], Policy]] = {
    **SIMPLE,
    "rules": lambda scn: RulesPolicy(scn, forecaster=forecaster_for(scn)),
    "ml-cpsat": _ml_cpsat,
}
"""Every policy by CLI name."""


def get_policy(name: str, scenario: Scenario) -> Policy:
    """A fresh policy object by name (``KeyError`` naming the choices if unknown)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r} (expected one of {', '.join(POLICIES)})") from None
    return factory(scenario)


__all__ = ["POLICIES", "forecaster_for", "get_policy"]
