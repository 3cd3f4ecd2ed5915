"""Scheduling policies, each a plug-in behind :class:`twin.policy.Policy`.

The policies that need no duration forecast can be built here by name (:func:`simple_policy`);
the full registry, which trains the forecasts ``rules`` and ``ml-cpsat`` plan with, is
:mod:`ortwin.registry`.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.as_booked import AsBooked
from policies.manual import ManualPolicy
from twin.policy import Policy
from twin.scenario import Scenario

SIMPLE: dict[str, Callable[[Scenario], Policy]] = {
    "as-booked": lambda scn: AsBooked(),
    "manual": lambda scn: ManualPolicy(scn),
}
"""The policies that plan without duration forecasts, by CLI name."""


def simple_policy(name: str, scenario: Scenario) -> Policy:
    """A fresh forecast-free policy by name (``KeyError`` naming the choices if unknown)."""
    try:
        factory = SIMPLE[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r} here (expected one of {', '.join(SIMPLE)}; "
                       f"the others need forecasts: ortwin.registry)") from None
    return factory(scenario)


__all__ = ["SIMPLE", "simple_policy"]
