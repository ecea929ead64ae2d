"""The alert rule as a pure state machine (no Django).

``evaluate(state, snapshot, thresholds) -> (new_state, events)``. The rule of
docs/analytics.md ("Alert rule"): an entry fires on the transition into

    adf_pvalue < max_adf_pvalue  and  |zscore| > entry_z  and  correlation >= min_correlation

on a ready, non-stale snapshot; direction from the sign of z (z > 0: the spread is
rich, ``short_spread``; z < 0: ``long_spread``). At most one entry per excursion:
after an entry the rule is disarmed until |z| < exit_z. That crossing re-arms it and,
with an entry open, is an ``exit`` (reason ``reverted``). An open entry also exits
when the relationship breaks: ADF p at or above the threshold for
``break_after`` consecutive snapshots (reason ``relationship_broken``); the rule
then stays disarmed until |z| < exit_z, so the same excursion never re-enters.

The state is a small JSON-able dict, persisted per pair, so a restart, a second
worker or a replayed snapshot (``as_of`` not newer than the last one seen) never
fires twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from analytics.snapshot import PairSnapshot

Kind = Literal["entry", "exit"]
Direction = Literal["long_spread", "short_spread"]

#: Consecutive snapshots with a non-stationary spread that close an open entry.
BREAK_AFTER = 3


@dataclasses.dataclass(frozen=True)
class Thresholds:
    entry_z: float = 2.0
    exit_z: float = 0.5
    min_correlation: float = 0.6
    max_adf_pvalue: float = 0.05
    break_after: int = BREAK_AFTER


@dataclasses.dataclass(frozen=True)
class RuleState:
    armed: bool = True
    open_direction: Direction | None = None  # the open entry, if any
    open_since: int | None = None  # its bar time (ms)
    breaks: int = 0  # consecutive non-stationary snapshots while open
    last_as_of: int | None = None  # newest snapshot evaluated

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RuleState:
        if not data:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Event:
    kind: Kind
    direction: Direction
    reason: str  # "entry", "reverted" or "relationship_broken"
    message: str


def direction_of(zscore: float) -> Direction:
    return "short_spread" if zscore > 0 else "long_spread"


def entry_condition(snapshot: PairSnapshot, t: Thresholds) -> bool:
    """Whether every entry gate holds on ``snapshot`` (False when a value is missing)."""
    stats = snapshot.statistics
    z, p, r = stats.zscore, stats.adf_pvalue, stats.correlation
    if z is None or p is None or r is None:
        return False
    return p < t.max_adf_pvalue and abs(z) > t.entry_z and r >= t.min_correlation


def evaluate(state: RuleState, snapshot: PairSnapshot, thresholds: Thresholds) -> tuple[RuleState, list[Event]]:
    """Advance the rule by one snapshot; return the new state and the alerts it fires."""
    as_of = snapshot.as_of
    if as_of is None or (state.last_as_of is not None and as_of <= state.last_as_of):
        return state, []  # nothing new (a replay, or no bar yet)
    # Warm-up and stale legs: nothing fires and nothing changes but the clock.
    stats = snapshot.statistics
    z = stats.zscore
    if not snapshot.ready or snapshot.stale or z is None:
        return dataclasses.replace(state, last_as_of=as_of), []
    pair = f"{snapshot.symbol_a}/{snapshot.symbol_b}"
    events: list[Event] = []
    armed, open_direction, open_since, breaks = state.armed, state.open_direction, state.open_since, state.breaks

    if abs(z) < thresholds.exit_z:
        if open_direction is not None:
            events.append(
                Event(
                    "exit",
                    open_direction,
                    "reverted",
                    f"{pair}: z {z:+.2f} back inside ±{thresholds.exit_z:g}; "
                    f"close the {open_direction.replace('_', ' ')}",
                )
            )
        armed, open_direction, open_since, breaks = True, None, None, 0
    elif open_direction is not None:
        p = stats.adf_pvalue
        breaks = breaks + 1 if p is None or p >= thresholds.max_adf_pvalue else 0
        if breaks >= thresholds.break_after:
            events.append(
                Event(
                    "exit",
                    open_direction,
                    "relationship_broken",
                    f"{pair}: spread no longer stationary "
                    f"(ADF p {p if p is None else f'{p:.3f}'} >= {thresholds.max_adf_pvalue:g} "
                    f"for {breaks} snapshots); close the {open_direction.replace('_', ' ')}",
                )
            )
            open_direction, open_since, breaks = None, None, 0

    if armed and open_direction is None and entry_condition(snapshot, thresholds):
        direction = direction_of(z)
        legs = "sell A, buy beta of B" if direction == "short_spread" else "buy A, sell beta of B"
        events.append(
            Event(
                "entry",
                direction,
                "entry",
                f"{pair}: z {z:+.2f} beyond ±{thresholds.entry_z:g} with ADF p {stats.adf_pvalue:.3f} "
                f"and correlation {stats.correlation:.2f}: {direction.replace('_', ' ')} ({legs})",
            )
        )
        armed, open_direction, open_since, breaks = False, direction, as_of, 0

    return RuleState(armed, open_direction, open_since, breaks, as_of), events
