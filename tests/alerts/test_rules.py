"""The alert rule, pure: the signal, the confirmation run, hysteresis, exits, replays (docs/analytics.md)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from alerts.rules import RuleState, Thresholds, evaluate
from analytics import snapshot as snapshots

T = Thresholds(
    entry_z=2.0, exit_z=0.5, min_correlation=0.6, max_adf_pvalue=0.05, max_coint_pvalue=0.05, confirm_bars=30
)


def snap(
    as_of: int,
    z: float | None,
    *,
    related: bool = True,
    run: int = 0,
    ready: bool = True,
    stale: bool = False,
    in_sample: float | None = 0.0,
) -> snapshots.PairSnapshot:
    """A snapshot with signal z ``z``; ``run`` is its related_run (``sequence`` chains them)."""
    return snapshots.PairSnapshot(
        pair=1,
        symbol_a="BTCUSDT",
        symbol_b="ETHUSDT",
        interval="1s",
        window=300,
        thresholds=snapshots.Thresholds(),
        as_of=as_of,
        ready=ready,
        stale=stale,
        statistics=snapshots.Statistics(zscore=in_sample, adf_pvalue=0.01, coint_pvalue=0.02, correlation=0.9),
        signal_zscore=z,
        related=related and ready,
        related_run=run,
    )


def sequence(*steps: tuple[float | None, bool], start: int = 1, run: int = 0) -> list[snapshots.PairSnapshot]:
    """Snapshots from (signal z, related) steps, each related_run counted as the snapshot builder does."""
    out = []
    for k, (z, related) in enumerate(steps):
        run = run + 1 if related else 0
        out.append(snap(start + k, z, related=related, run=run))
    return out


def confirmed(bars: int = 30, z: float = 0.0) -> list[snapshots.PairSnapshot]:
    """``bars`` related snapshots in a row, quiet."""
    return sequence(*[(z, True)] * bars)


def run(steps: list[snapshots.PairSnapshot], state: RuleState | None = None, t: Thresholds = T):
    state = state or RuleState()
    fired = []
    for s in steps:
        state, events = evaluate(state, s, t)
        fired.extend((s.as_of, e.kind, e.direction, e.reason) for e in events)
    return state, fired


def then(steps: list[snapshots.PairSnapshot], *more: tuple[float | None, bool]) -> list[snapshots.PairSnapshot]:
    last = steps[-1]
    return steps + sequence(*more, start=last.as_of + 1, run=last.related_run)


def test_it_enters_on_the_signal_once_the_relationship_is_confirmed():
    _, fired = run(then(confirmed(), (2.3, True)))
    assert fired == [(31, "entry", "short_spread", "entry")]
    _, fired = run(then(confirmed(), (-2.3, True)))
    assert fired == [(31, "entry", "long_spread", "entry")]


@pytest.mark.parametrize(("bars", "enters"), [(29, False), (30, True), (31, True)])
def test_confirm_bars_is_the_exact_boundary(bars, enters):
    _, fired = run(then(confirmed(bars), (2.5, True)))
    assert bool(fired) is enters


def test_the_confirmation_is_the_previous_snapshots_run_not_the_shocked_bars_own():
    """A 15-sigma shock may spoil the tests of the very window that contains it: it still enters, in its own bar."""
    _, fired = run(then(confirmed(), (15.0, False)))
    assert fired == [(31, "entry", "short_spread", "entry")]


def test_a_run_broken_just_before_the_shock_blocks_the_entry():
    _, fired = run(then(confirmed(), (0.0, False), (2.5, True)))
    assert fired == []


@pytest.mark.parametrize(
    ("z", "enters"),
    [(1.999, False), (2.0, False), (2.0001, True), (-2.0, False), (-2.0001, True)],
)
def test_entry_z_is_a_strict_bound_on_the_signal(z, enters):
    _, fired = run(then(confirmed(), (z, True)))
    assert bool(fired) is enters


@pytest.mark.parametrize(
    "last",
    [
        snap(31, 3.0, run=31, ready=False),  # warming up
        snap(31, 3.0, run=31, stale=True),  # a stale leg
        snap(31, None, run=31),  # no signal (the previous window was not ready)
    ],
)
def test_nothing_enters_without_a_ready_fresh_signal(last):
    _, fired = run([*confirmed(), last])
    assert fired == []


def test_the_in_sample_z_does_not_fire_anything():
    steps = confirmed()
    steps.append(snap(31, 0.1, run=31, in_sample=4.0))
    _, fired = run(steps)
    assert fired == []


def test_a_random_walk_that_passes_adf_alone_never_confirms():
    """ADF p < 0.05 and a high correlation, but Engle-Granger fails: the window is not related, so no entry."""
    stats = snapshots.Statistics(adf_pvalue=0.01, coint_pvalue=0.3, correlation=0.95)
    assert not snapshots.related_of(stats, snapshots.Thresholds())
    _, fired = run(sequence(*[(0.0, False)] * 100, (3.0, False), (-3.0, False)))
    assert fired == []


@pytest.mark.parametrize(
    ("adf", "coint", "correlation", "related"),
    [
        (0.0499, 0.0499, 0.6, True),  # correlation at the gate passes (>=)
        (0.05, 0.01, 0.9, False),  # p-values strictly below
        (0.01, 0.05, 0.9, False),
        (0.01, 0.01, 0.5999, False),
        (None, 0.01, 0.9, False),  # a missing value fails its gate
        (0.01, None, 0.9, False),
        (0.01, 0.01, None, False),
    ],
)
def test_related_is_every_relationship_gate_at_its_exact_boundary(adf, coint, correlation, related):
    stats = snapshots.Statistics(adf_pvalue=adf, coint_pvalue=coint, correlation=correlation)
    assert snapshots.related_of(stats, snapshots.Thresholds()) is related


def test_an_oscillating_signal_enters_once_and_exits_once():
    zs = [2.0 + (0.15 if k % 2 else -0.15) for k in range(300)] + [1.2, 0.8, 0.45, 0.1, -0.2]
    _, fired = run(then(confirmed(), *[(z, True) for z in zs]))
    assert fired == [(32, "entry", "short_spread", "entry"), (333, "exit", "short_spread", "reverted")]


@pytest.mark.parametrize(("z", "exits"), [(0.5, False), (0.4999, True), (-0.4999, True)])
def test_exit_z_is_a_strict_bound_on_the_signal(z, exits):
    _, fired = run(then(confirmed(), (2.5, True), (z, True)))
    assert [k for _, k, _, _ in fired] == (["entry", "exit"] if exits else ["entry"])


def test_it_rearms_only_below_exit_z():
    _, fired = run(then(confirmed(), *[(z, True) for z in (2.5, 1.0, 2.6, 0.6, 2.7, 0.4, 2.8)]))
    assert [(a, k) for a, k, _, _ in fired] == [(31, "entry"), (36, "exit"), (37, "entry")]


def test_crossing_to_the_other_side_without_reverting_does_not_enter_again():
    _, fired = run(then(confirmed(), (2.5, True), (-2.5, True), (0.2, True), (-2.5, True)))
    assert fired == [
        (31, "entry", "short_spread", "entry"),
        (33, "exit", "short_spread", "reverted"),
        (34, "entry", "long_spread", "entry"),
    ]


def test_break_after_unrelated_snapshots_closes_the_entry_and_the_excursion_never_reenters():
    steps = then(
        confirmed(),
        (-2.5, True),
        (-2.4, False),
        (-2.6, False),
        (-2.7, False),  # the third in a row: broken
        (-2.8, True),
        *[(-2.2, True)] * 35,  # confirmed again, still the same excursion
        (-0.3, True),  # back inside exit_z: re-armed
        (-2.1, True),
    )
    _, fired = run(steps)
    assert fired == [
        (31, "entry", "long_spread", "entry"),
        (34, "exit", "long_spread", "relationship_broken"),
        (72, "entry", "long_spread", "entry"),
    ]


def test_unrelated_snapshots_that_are_not_consecutive_do_not_close_the_entry():
    _, fired = run(then(confirmed(), (2.5, True), (2.4, False), (2.4, False), (2.4, True), (2.4, False), (2.3, False)))
    assert fired == [(31, "entry", "short_spread", "entry")]


def test_below_exit_with_no_open_entry_is_silent():
    _, fired = run(then(confirmed(), (0.1, True), (1.0, True), (0.2, True)))
    assert fired == []


def test_a_replayed_or_older_snapshot_fires_nothing():
    state, fired = run(then(confirmed(), (2.5, True)))
    assert len(fired) == 1
    for replay in (snap(31, 2.5, run=31), snap(1, 0.0, run=1), snap(31, 0.1, run=31)):
        again, events = evaluate(state, replay, T)
        assert events == [] and again == state


def test_a_restart_in_the_middle_of_a_confirmation_run_changes_nothing():
    steps = then(confirmed(20), *[(0.0, True)] * 10, (2.6, True), (0.1, True))
    _, uninterrupted = run(steps)
    state, before = run(steps[:25])  # the process stops after 25 related snapshots...
    restored = RuleState.from_dict(json.loads(json.dumps(state.as_dict())))  # ...and its state is read back
    assert restored == state and restored.related_run == 25
    _, after = run(steps[25:], restored)
    assert (
        before + after
        == uninterrupted
        == [(31, "entry", "short_spread", "entry"), (32, "exit", "short_spread", "reverted")]
    )


def test_the_state_survives_a_round_trip_through_json():
    state, _ = run(then(confirmed(), (-2.5, True)))
    restored = RuleState.from_dict(json.loads(json.dumps(state.as_dict())))
    assert restored == state
    _, events = evaluate(restored, snap(32, -2.6, run=32), T)
    assert events == []  # still the same excursion after a "restart"
    assert RuleState.from_dict(None) == RuleState() == RuleState.from_dict({"unknown": 1})


def test_warm_up_advances_the_clock_and_the_run_without_firing():
    state, fired = run([snap(1, 3.0, ready=False), snap(2, 3.0, stale=True, run=4)])
    assert fired == [] and state.armed and state.last_as_of == 2 and state.related_run == 4


def test_the_entry_message_carries_the_numbers_that_fired_it():
    state, _ = run(confirmed())
    _, (event,) = evaluate(state, snap(31, 2.34, run=31), T)
    assert event.message == (
        "BTCUSDT/ETHUSDT: signal z +2.34 beyond ±2 after 30 related bars "
        "(ADF p 0.010, EG p 0.020, correlation 0.90): short spread (sell 1 BTCUSDT, buy beta ETHUSDT)"
    )


def test_the_entry_message_names_the_legs_with_the_signals_hedge():
    state, _ = run(confirmed())
    shock = dataclasses.replace(snap(31, -2.5, run=31), signal_hedge_ratio=19.8213)
    _, (event,) = evaluate(state, shock, T)
    assert event.message.endswith(": long spread (buy 1 BTCUSDT, sell 19.82 ETHUSDT)")
