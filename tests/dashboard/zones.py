"""The z tile's words for each kind of snapshot and rule state: what the server renders
(``dashboard.views.pairs.zone_of``) and the page script writes (``zoneOf``) alike."""

from __future__ import annotations

from alerts.rules import RuleState
from analytics.snapshot import PairSnapshot, Thresholds


def zone_snapshot(
    z: float | None,
    *,
    related: bool = True,
    ready: bool = True,
    run: int = 31,
    stale: tuple[str, ...] = (),
    entry_z: float = 2.0,
    exit_z: float = 0.5,
) -> PairSnapshot:
    return PairSnapshot(
        pair=1,
        symbol_a="BTCUSDT",
        symbol_b="ETHUSDT",
        interval="1s",
        window=100,
        thresholds=Thresholds(entry_z=entry_z, exit_z=exit_z, confirm_bars=30),
        ready=ready,
        signal_zscore=z,
        related=related,
        related_run=run if related else 0,
        stale=bool(stale),
        stale_legs=stale,
    )


SHORT_OPEN = RuleState(armed=False, open_direction="short_spread", open_since=0)


#: (snapshot, rule state, the run before it, zone key, words)
ZONE_CASES: list[tuple[PairSnapshot, RuleState | None, int, str, str]] = [
    # Flat and armed: the trade is named only when the rule would enter on this snapshot.
    (zone_snapshot(2.4), RuleState(), 0, "entry-high", "stretched high: short the spread"),
    (zone_snapshot(-2.4), None, 0, "entry-low", "stretched low: long the spread"),
    # The shock may spoil its own window's tests: the confirmation is the run before it.
    (zone_snapshot(2.4, related=False), None, 30, "entry-high", "stretched high: short the spread"),
    (
        zone_snapshot(2.4, related=False),
        None,
        12,
        "unrelated",
        "stretched high, no trade: related 12/30 bars before this one",
    ),
    (zone_snapshot(2.4, run=30), None, 29, "unrelated", "stretched high, no trade: related 29/30 bars before this one"),
    (zone_snapshot(-2.4, stale=("ETHUSDT",)), None, 31, "unrelated", "stretched low, no trade: ETHUSDT silent"),
    (
        zone_snapshot(2.4),
        RuleState(armed=False),
        30,
        "unrelated",
        "stretched high, no trade: this move was traded; waits for the mean",
    ),
    (zone_snapshot(-1.2), None, 0, "between", "leaning low, inside ±2.00"),
    (zone_snapshot(0.2, related=False), None, 0, "exit", "back at the mean"),
    (zone_snapshot(None), None, 0, "none", "no signal yet"),
    (zone_snapshot(None, ready=False), None, 0, "none", "warming up"),
    # An open entry: what happens to it.
    (zone_snapshot(2.6, related=False), SHORT_OPEN, 0, "entry-high", "stretched high: short spread open"),
    (zone_snapshot(1.1), SHORT_OPEN, 0, "hold", "short spread open, exit inside ±0.50"),
    (zone_snapshot(-2.2), SHORT_OPEN, 0, "hold", "short spread open, exit inside ±0.50"),
    (zone_snapshot(0.3), SHORT_OPEN, 0, "exit", "back at the mean: exit the short spread"),
    (zone_snapshot(0.3, stale=("BTCUSDT",)), SHORT_OPEN, 0, "hold", "short spread open, BTCUSDT silent"),
    # Thresholds as the gates write them (0.125 is a binary half: rounding would differ by side).
    (zone_snapshot(0.2, entry_z=2.125, exit_z=0.125), SHORT_OPEN, 0, "hold", "short spread open, exit inside ±0.125"),
    (zone_snapshot(-1.2, entry_z=2.125, exit_z=0.125), None, 0, "between", "leaning low, inside ±2.125"),
]
