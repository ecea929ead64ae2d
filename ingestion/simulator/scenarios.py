"""The scenarios by name, as the command line and the server choose them."""

from __future__ import annotations

from typing import Any

from .market import PairScenario, Scenario
from .replay import ReplayScenario

SCENARIOS = ("cointegrated", "random_walk", "replay")


def make_scenario(name: str, *, rate: float = 50.0, seed: int | None = None, **options: Any) -> Scenario:
    """Build the scenario ``name`` (one of ``SCENARIOS``) with its options."""
    if name == "cointegrated":
        return PairScenario(rate=rate, seed=seed, mean_reverting=True, **options)
    if name == "random_walk":
        return PairScenario(rate=rate, seed=seed, mean_reverting=False, **options)
    if name == "replay":
        # Replay keeps the recorded ids and prices.
        for option in ("id_offset", "first_ids", "x_start", "y_start"):
            options.pop(option, None)
        return ReplayScenario(**options)
    raise ValueError(f"unknown scenario {name!r} (expected one of {', '.join(SCENARIOS)})")
