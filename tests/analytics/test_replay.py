"""Snapshots replayed over aligned closes: the snapshot cycle's chain, without the database."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analytics import selectors, services
from analytics.bars import align_closes, build_bars
from analytics.replay import snapshots_replay, statistics_of
from analytics.snapshot import PairSnapshot, Statistics, Thresholds, snapshot_build
from analytics.stats import PairStats, pair_stats
from tests.support import T0, cointegrated_ticks, make_pair, store_and_resample

SETTINGS = {
    "pair": 1,
    "symbols": ("BTCUSDT", "ETHUSDT"),
    "interval": "1s",
    "window": 60,
    "min_bars": 40,
    "thresholds": Thresholds(),
}


def aligned(seconds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid and closes of a cointegrated pair's 1 s bars, as the snapshot cycle aligns them."""
    bars = build_bars(cointegrated_ticks(seconds, seed=5), "1s")
    a = [b for b in bars if b.symbol == "BTCUSDT"]
    b = [b for b in bars if b.symbol == "ETHUSDT"]
    series = align_closes(a, b, as_of=None, window=seconds)
    return series.times, series.y, series.x


def test_each_snapshot_is_snapshot_build_on_its_window_under_the_previous_ones_model():
    times, y, x = aligned(90)
    replayed = list(snapshots_replay(times, y, x, **SETTINGS))
    assert [s.as_of for s in replayed] == times.tolist()
    previous: PairSnapshot | None = None
    for k, snapshot in enumerate(replayed):
        start = max(0, k + 1 - 60)
        n = k + 1 - start
        statistics = statistics_of(pair_stats(y[start : k + 1], x[start : k + 1]), 1000) if n >= 40 else None
        expected = snapshot_build(
            **SETTINGS,
            as_of=int(times[k]),
            n=n,
            last_prices=(float(y[k]), float(x[k])),
            stale_legs=(),
            statistics=statistics,
            computed_at=int(times[k]) + 1000,
            formation=previous.statistics if previous is not None and previous.ready else None,
            previous_run=previous.related_run if previous is not None else 0,
        )
        assert snapshot == expected, k
        previous = snapshot
    ready = [s for s in replayed if s.ready]
    assert len(ready) == 90 - 39 and ready[0].n == 40 and ready[-1].n == 60
    # The first ready one has no formation model (its previous was warming up); the next ones do.
    assert ready[0].signal_zscore is None and all(s.signal_zscore is not None for s in ready[1:])


def test_the_run_continues_and_restarts_with_the_relationship_and_the_signal_uses_the_previous_model():
    """A stand-in for ``pair_stats`` makes every window's gates and model known."""
    related = PairStats(n=0, hedge_ratio=2.0, spread_mean=1.0, spread_std=0.5, adf_pvalue=0.01, coint_pvalue=0.01)
    related = dataclasses.replace(related, correlation=0.9)
    broken = dataclasses.replace(related, coint_pvalue=0.2, hedge_ratio=3.0)
    verdicts = iter([related] * 4 + [broken] + [related] * 3)

    def stats_of(y: np.ndarray, x: np.ndarray) -> PairStats:
        return next(verdicts)

    n = 10
    times = T0 + 1000 * np.arange(n)
    y = np.linspace(10.0, 11.0, n)
    x = np.full(n, 4.0)
    settings = SETTINGS | {"window": 5, "min_bars": 3}
    replayed = list(snapshots_replay(times, y, x, **settings, stats_of=stats_of))
    assert [s.ready for s in replayed] == [False, False] + [True] * 8
    assert [s.related_run for s in replayed] == [0, 0, 1, 2, 3, 4, 0, 1, 2, 3]
    # Point 7 is scored with point 6's model (the broken window's: hedge ratio 3), point 8 with a related one's.
    assert replayed[7].signal_zscore == pytest.approx((y[7] - 3.0 * 4.0 - 1.0) / 0.5)
    assert replayed[8].signal_zscore == pytest.approx((y[8] - 2.0 * 4.0 - 1.0) / 0.5)
    assert replayed[2].signal_zscore is None  # its previous was warming up


def test_the_statistics_are_the_snapshot_cycles():
    """``statistics_of`` is the conversion ``analytics.services`` makes (half-life in seconds included)."""
    times, y, x = aligned(120)
    for interval_ms in (1000, 60_000):
        stats = pair_stats(y, x)
        assert statistics_of(stats, interval_ms) == services._statistics(y, x, interval_ms, None)
    assert statistics_of(PairStats(n=3), 1000) == Statistics()


@pytest.mark.django_db
def test_a_replay_of_the_stored_bars_gives_the_snapshots_the_cycle_computes():
    """The snapshot cycle's chain over the same bars (each bar's snapshot the next one's ``previous``)."""
    pair = make_pair(window=50, min_bars=30)
    store_and_resample(cointegrated_ticks(80, seed=3, half_life=2))
    settings = {"pair": pair.id, "symbols": pair.symbols, "interval": "1s", "window": 50, "min_bars": 30}
    first, last = T0 + 25_000, T0 + 79_000
    legs = [selectors.closes_window(symbol=symbol, interval="1s", as_of=last, limit=80) for symbol in pair.symbols]
    full = align_closes(*legs, as_of=last, window=80)  # every stored bar
    replayed = {
        s.as_of: s
        for s in snapshots_replay(full.times, full.y, full.x, **settings, thresholds=services.thresholds_of(pair))
    }
    assert full.n == 80
    previous = None
    runs = []
    for closed in range(first, last + 1, 1000):
        live, _ = services.pair_snapshot_at(pair=pair, closed=closed, previous=previous)
        mine = replayed[closed]
        assert dataclasses.replace(mine, computed_at=live.computed_at) == live, closed
        runs.append(live.related_run)
        previous = live
    assert max(runs) > 10 and 0 in runs[runs.index(max(runs)) :]  # runs that grow and end, as the cycle chains them


def test_series_that_cannot_be_a_grid_are_refused():
    with pytest.raises(ValueError, match="one length"):
        list(snapshots_replay([1, 2], [1.0], [1.0, 2.0], **SETTINGS))
    with pytest.raises(ValueError, match="increase"):
        list(snapshots_replay([2, 1], [1.0, 2.0], [1.0, 2.0], **SETTINGS))
    with pytest.raises(ValueError, match="window"):
        list(snapshots_replay([1], [1.0], [1.0], **SETTINGS | {"window": 0}))
    assert list(snapshots_replay([], [], [], **SETTINGS)) == []
