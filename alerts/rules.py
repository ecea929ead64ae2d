"""The alert rule as a pure state machine (no Django).

``evaluate(state, snapshot, thresholds) -> (new_state, events)``, the rule of
docs/analytics.md ("Alert rule"), on the signal of "The signal": snapshot t's
``signal_zscore`` (the newest bar scored with the previous window's model) and the
relationship gates (ADF p, Engle-Granger p, returns correlation) of each window.

- An entry fires on a ready, non-stale snapshot whose previous snapshot ended a
  run of at least ``confirm_bars`` related snapshots, when |signal z| > entry_z
  and the rule is armed; direction from the sign (z > 0: the spread is rich,
  ``short_spread``; z < 0: ``long_spread``). The rule is then disarmed.
- |signal z| < exit_z re-arms it and, with an entry open, is an ``exit``
  (reason ``reverted``).
- With an entry open, ``break_after`` consecutive snapshots that are not related
  are an ``exit`` (reason ``relationship_broken``); the rule stays disarmed until
  |signal z| < exit_z, so the same excursion never re-enters.

The state is a small JSON-able dict, persisted per pair, so a restart, a second
worker or a replayed snapshot (``as_of`` not newer than the last one seen) never
fires twice; it keeps the last snapshot's ``related_run`` (the confirmation an
entry on the next one needs).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from analytics.snapshot import PairSnapshot

Kind = Literal["entry", "exit"]
Direction = Literal["long_spread", "short_spread"]

#: Consecutive snapshots that are not related that close an open entry.
BREAK_AFTER = 3


@dataclasses.dataclass(frozen=True)
class Thresholds:
    entry_z: float = 2.0
    exit_z: float = 0.5
    min_correlation: float = 0.6
    max_adf_pvalue: float = 0.05
    max_coint_pvalue: float = 0.05
    confirm_bars: int = 30
    break_after: int = BREAK_AFTER


@dataclasses.dataclass(frozen=True)
class RuleState:
    armed: bool = True
    open_direction: Direction | None = None  # the open entry, if any
    open_since: int | None = None  # its bar time (ms)
    breaks: int = 0  # consecutive snapshots that are not related while open
    last_as_of: int | None = None  # newest snapshot evaluated
    related_run: int = 0  # its related_run: what an entry on the next snapshot needs

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


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _gates(snapshot: PairSnapshot) -> str:
    stats = snapshot.statistics
    r = "n/a" if stats.correlation is None else f"{stats.correlation:.2f}"
    return f"ADF p {_p(stats.adf_pvalue)}, EG p {_p(stats.coint_pvalue)}, correlation {r}"


def evaluate(state: RuleState, snapshot: PairSnapshot, thresholds: Thresholds) -> tuple[RuleState, list[Event]]:
    """Advance the rule by one snapshot; return the new state and the alerts it fires."""
    as_of = snapshot.as_of
    if as_of is None or (state.last_as_of is not None and as_of <= state.last_as_of):
        return state, []  # nothing new (a replay, or no bar yet)
    confirmed = state.related_run  # the previous snapshot's run
    z = snapshot.signal_zscore
    # Warm-up and stale legs: nothing fires and nothing changes but the clock and the run.
    if not snapshot.ready or snapshot.stale or z is None:
        return dataclasses.replace(state, last_as_of=as_of, related_run=snapshot.related_run), []
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
                    f"{pair}: signal z {z:+.2f} back inside ±{thresholds.exit_z:g}; "
                    f"close the {open_direction.replace('_', ' ')}",
                )
            )
        armed, open_direction, open_since, breaks = True, None, None, 0
    elif open_direction is not None:
        breaks = 0 if snapshot.related else breaks + 1
        if breaks >= thresholds.break_after:
            events.append(
                Event(
                    "exit",
                    open_direction,
                    "relationship_broken",
                    f"{pair}: relationship broken for {breaks} snapshots ({_gates(snapshot)}; gates ADF p < "
                    f"{thresholds.max_adf_pvalue:g}, EG p < {thresholds.max_coint_pvalue:g}, correlation >= "
                    f"{thresholds.min_correlation:g}); close the {open_direction.replace('_', ' ')}",
                )
            )
            open_direction, open_since, breaks = None, None, 0

    if armed and open_direction is None and confirmed >= thresholds.confirm_bars and abs(z) > thresholds.entry_z:
        direction = direction_of(z)
        # Per unit of A, beta' units of B: the hedge the signal was scored with.
        beta = snapshot.signal_hedge_ratio
        units = "beta" if beta is None else f"{beta:.4g}"
        a, b = snapshot.symbol_a, snapshot.symbol_b
        legs = f"sell 1 {a}, buy {units} {b}" if direction == "short_spread" else f"buy 1 {a}, sell {units} {b}"
        events.append(
            Event(
                "entry",
                direction,
                "entry",
                f"{pair}: signal z {z:+.2f} beyond ±{thresholds.entry_z:g} after {confirmed} related bars "
                f"({_gates(snapshot)}): {direction.replace('_', ' ')} ({legs})",
            )
        )
        armed, open_direction, open_since, breaks = False, direction, as_of, 0

    return RuleState(armed, open_direction, open_since, breaks, as_of, snapshot.related_run), events
