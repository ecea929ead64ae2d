"""The alert rule, pure: gates, direction, hysteresis, exits, replays."""

from __future__ import annotations

import pytest

from alerts.rules import RuleState, Thresholds, evaluate
from analytics import snapshot as snapshots

T = Thresholds(entry_z=2.0, exit_z=0.5, min_correlation=0.6, max_adf_pvalue=0.05)


def snap(
    as_of: int, z: float | None, *, p: float = 0.01, r: float | None = 0.9, ready: bool = True, stale: bool = False
) -> snapshots.PairSnapshot:
    return snapshots.PairSnapshot(
        pair=1,
        symbol_a="BTCUSDT",
        symbol_b="ETHUSDT",
        interval="1s",
        window=300,
        thresholds=snapshots.Thresholds(entry_z=2.0, exit_z=0.5, min_correlation=0.6, max_adf_pvalue=0.05),
        as_of=as_of,
        ready=ready,
        stale=stale,
        statistics=snapshots.Statistics(zscore=z, adf_pvalue=p, correlation=r),
    )


def run(sequence: list[snapshots.PairSnapshot], state: RuleState | None = None) -> tuple[RuleState, list]:
    state = state or RuleState()
    fired = []
    for s in sequence:
        state, events = evaluate(state, s, T)
        fired.extend((s.as_of, e.kind, e.direction, e.reason) for e in events)
    return state, fired


def test_it_creates_an_entry_when_every_gate_holds():
    _, fired = run([snap(1, 0.0), snap(2, 2.3)])
    assert fired == [(2, "entry", "short_spread", "entry")]
    _, fired = run([snap(1, 0.0), snap(2, -2.3)])
    assert fired == [(2, "entry", "long_spread", "entry")]


@pytest.mark.parametrize(
    "snapshot",
    [
        snap(2, 2.5, p=0.0501),  # ADF p just above the threshold
        snap(2, 2.5, p=0.05),  # not strictly below
        snap(2, 2.5, r=0.59),  # correlation too low
        snap(2, 1.999),  # |z| just below entry
        snap(2, 2.0),  # not strictly above
        snap(2, 3.0, ready=False),  # warming up
        snap(2, 3.0, stale=True),  # a stale leg
        snap(2, None),  # no z-score
        snap(2, 3.0, r=None),  # no correlation
    ],
)
def test_each_gate_alone_blocks_the_entry(snapshot):
    _, fired = run([snap(1, 0.0), snapshot])
    assert fired == []


def test_an_oscillating_z_enters_once_and_exits_once():
    # Five minutes of 1 s snapshots around the entry threshold, then back to the mean.
    zs = [2.0 + (0.15 if k % 2 else -0.15) for k in range(300)] + [1.2, 0.8, 0.45, 0.1, -0.2]
    _, fired = run([snap(k + 1, z) for k, z in enumerate(zs)])
    assert fired == [(2, "entry", "short_spread", "entry"), (303, "exit", "short_spread", "reverted")]


def test_it_rearms_only_below_exit_z():
    zs = [2.5, 1.0, 2.6, 0.6, 2.7, 0.4, 2.8]
    _, fired = run([snap(k + 1, z) for k, z in enumerate(zs)])
    assert [(a, k) for a, k, _, _ in fired] == [(1, "entry"), (6, "exit"), (7, "entry")]


def test_crossing_to_the_other_side_without_reverting_does_not_enter_again():
    _, fired = run([snap(1, 2.5), snap(2, -2.5), snap(3, 0.2), snap(4, -2.5)])
    assert fired == [
        (1, "entry", "short_spread", "entry"),
        (3, "exit", "short_spread", "reverted"),
        (4, "entry", "long_spread", "entry"),
    ]


def test_a_broken_relationship_closes_the_entry_and_does_not_reenter_the_same_excursion():
    snapshots = [
        snap(1, -2.5),
        snap(2, -2.4, p=0.2),
        snap(3, -2.6, p=0.3),
        snap(4, -2.7, p=0.3),
        snap(5, -2.8),
        snap(6, -2.2),
        snap(7, -0.3),
        snap(8, -2.1),
    ]
    _, fired = run(snapshots)
    assert fired == [
        (1, "entry", "long_spread", "entry"),
        (4, "exit", "long_spread", "relationship_broken"),
        (8, "entry", "long_spread", "entry"),
    ]


def test_a_single_non_stationary_snapshot_does_not_close_the_entry():
    _, fired = run([snap(1, 2.5), snap(2, 2.4, p=0.2), snap(3, 2.4), snap(4, 2.4, p=0.2), snap(5, 2.3, p=0.2)])
    assert fired == [(1, "entry", "short_spread", "entry")]


def test_below_exit_with_no_open_entry_is_silent():
    _, fired = run([snap(1, 0.1), snap(2, 1.0), snap(3, 0.2)])
    assert fired == []


def test_a_replayed_or_older_snapshot_fires_nothing():
    state, fired = run([snap(1, 0.0), snap(2, 2.5)])
    assert len(fired) == 1
    for replay in (snap(2, 2.5), snap(1, 0.0), snap(2, 0.1)):
        again, events = evaluate(state, replay, T)
        assert events == [] and again == state


def test_the_state_survives_a_round_trip_through_json():
    import json

    state, _ = run([snap(1, 0.0), snap(2, -2.5)])
    restored = RuleState.from_dict(json.loads(json.dumps(state.as_dict())))
    assert restored == state
    _, events = evaluate(restored, snap(3, -2.6), T)
    assert events == []  # still the same excursion after a "restart"
    assert RuleState.from_dict(None) == RuleState() == RuleState.from_dict({"unknown": 1})


def test_warm_up_advances_the_clock_without_firing():
    state, fired = run([snap(1, 3.0, ready=False), snap(2, 3.0, stale=True)])
    assert fired == [] and state.armed and state.last_as_of == 2
