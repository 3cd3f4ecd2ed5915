"""The duration model every policy run by name plans with: a
:class:`~policies.duration_model.QuantileDurationModel` trained on the scenario's own simulated
history (:func:`calibration.history.simulate_history`), memoised per process."""

from __future__ import annotations

import hashlib
import threading

from calibration.history import simulate_history
from policies.duration_model import DEFAULT_WEEKS, HISTORY_SEED, QuantileDurationModel
from twin.scenario import Scenario

_CACHE: dict[tuple[str, int, int], QuantileDurationModel] = {}
_LOCK = threading.Lock()


def scenario_key(scn: Scenario) -> str:
    """A hash of the scenario's full content (two equal scenarios share a trained model)."""
    return hashlib.sha256(scn.model_dump_json().encode()).hexdigest()


def trained_model(scn: Scenario, weeks: int = DEFAULT_WEEKS,
                  seed: int = HISTORY_SEED) -> QuantileDurationModel:
    """A :class:`QuantileDurationModel` fitted on ``weeks`` weeks of history simulated from
    ``scn`` with ``seed``, memoised per process on (scenario content, weeks, seed). Training
    is deterministic. ``seed`` must differ from the scenario's own (experiment) seed, or the
    model would be trained on the very patients it then plans (see :mod:`calibration.history`);
    an experiment run with another ``--seed`` must likewise avoid ``seed``. The returned
    model is shared: do not refit it."""
    if int(seed) == scn.seed:
        raise ValueError(f"history seed {seed} is the scenario's experiment seed: the model "
                         f"would be trained on the weeks it is evaluated on")
    key = (scenario_key(scn), int(weeks), int(seed))
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = QuantileDurationModel().fit(simulate_history(scn, weeks, seed))
            _CACHE[key] = model
    return model


def clear_cache() -> None:
    """Forget every memoised model (tests, or after changing code)."""
    with _LOCK:
        _CACHE.clear()


__all__ = ["clear_cache", "scenario_key", "trained_model"]
