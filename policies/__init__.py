"""Scheduling policies, each a plug-in behind :class:`twin.policy.Policy`.

:func:`get_policy` builds one by its CLI name; :data:`POLICIES` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.as_booked import AsBooked
from twin.policy import Policy
from twin.scenario import Scenario

POLICIES: dict[str, Callable[[Scenario], Policy]] = {
    "as-booked": lambda scn: AsBooked(),
}


def get_policy(name: str, scenario: Scenario) -> Policy:
    """A fresh policy object by name (``KeyError`` naming the choices if unknown)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r} (expected one of {', '.join(POLICIES)})") from None
    return factory(scenario)
