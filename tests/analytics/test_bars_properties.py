"""Properties of the bar builder on any ticks (hypothesis); ``test_bars.py`` has the real recordings.

The reference is a pandas groupby on the floored timestamp, independent of
``build_bars``' lexsort and ``reduceat``: open is the first price and close the
last by (timestamp, trade_id), high/low the max/min, volume the sum, trades the
count. Ticks are drawn near bar boundaries, before 1970 too, with equal
timestamps, unsorted, and with trades sent again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.bars import (
    INTERVALS,
    Bar,
    affected_open_times,
    affected_spans,
    bar_open_time,
    build_bars,
    build_bars_from_columns,
)
from ingestion.binance import Tick

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC, a boundary of every interval
SYMBOLS = ["BTCUSDT", "ETHUSDT", "1000PEPEUSDT"]
# Volumes are float sums taken in another order than pandas takes them.
VOLUME_RTOL = 1e-12

# Mostly a few minutes around T0 (crossing 1s, 1m and 5m boundaries), some right at
# a boundary, some around the epoch (floor division of negative times).
timestamps = st.one_of(
    st.integers(T0 - 400_000, T0 + 400_000),
    st.sampled_from([T0, T0 + 1_000, T0 + 60_000, T0 + 300_000, T0 - 300_000]).flatmap(
        lambda edge: st.integers(edge - 2, edge + 1)
    ),
    st.integers(-120_000, 120_000),
)
prices = st.floats(min_value=1e-8, max_value=1e7, allow_nan=False, allow_infinity=False)
quantities = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def tick_lists(draw: st.DrawFn, max_size: int = 60) -> list[Tick]:
    """Distinct trades (one per symbol and id, as the Tick table holds them), in no particular order."""
    keys = draw(st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 10**6)), unique=True, max_size=max_size))
    return [Tick(draw(timestamps), symbol, draw(prices), draw(quantities), trade_id) for symbol, trade_id in keys]


def pandas_bars(ticks: list[Tick], interval: str) -> list[Bar]:
    """The reference: groupby (symbol, floored timestamp) of the ticks sorted by (timestamp, trade_id)."""
    if not ticks:
        return []
    length = INTERVALS[interval]
    frame = pd.DataFrame(ticks, columns=list(Tick._fields)).drop_duplicates(["symbol", "timestamp", "trade_id"])
    frame = frame.sort_values(["symbol", "timestamp", "trade_id"], kind="stable")
    frame["open_time"] = frame["timestamp"] // length * length
    grouped = frame.groupby(["symbol", "open_time"], sort=True)["price"]
    out = grouped.agg(["first", "max", "min", "last", "size"])
    out["volume"] = frame.groupby(["symbol", "open_time"], sort=True)["quantity"].sum()
    return [
        Bar(symbol, interval, int(open_time), row.first, row.max, row.min, row.last, row.volume, int(row.size))
        for (symbol, open_time), row in zip(out.index, out.itertuples(index=False), strict=True)
    ]


def assert_same_bars(actual: list[Bar], expected: list[Bar]) -> None:
    def exact(bars: list[Bar]) -> list[tuple]:
        return [(b.symbol, b.interval, b.open_time, b.open, b.high, b.low, b.close, b.trades) for b in bars]

    # Keys, prices and counts are copied or counted, never computed: exact.
    assert exact(actual) == exact(expected)
    np.testing.assert_allclose([b.volume for b in actual], [b.volume for b in expected], rtol=VOLUME_RTOL, atol=0)


@settings(max_examples=150)
@given(tick_lists(), st.sampled_from(list(INTERVALS)))
def test_bars_equal_a_pandas_groupby_of_the_floored_timestamps(ticks, interval):
    bars = build_bars(ticks, interval)
    assert_same_bars(bars, pandas_bars(ticks, interval))
    for bar in bars:
        assert bar.open_time % INTERVALS[interval] == 0
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    columns = list(zip(*ticks, strict=True)) or [[]] * 5
    assert build_bars_from_columns(*columns, interval) == bars


@settings(max_examples=100)
@given(tick_lists(), st.data())
def test_trades_sent_again_count_once(ticks, data):
    again = data.draw(st.lists(st.sampled_from(ticks), max_size=20)) if ticks else []
    mixed = data.draw(st.permutations(ticks + again))
    for interval in INTERVALS:
        assert build_bars(mixed, interval) == build_bars(ticks, interval)


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Tick], list[list[Tick]]]:
    """Distinct ticks, and the batches they arrive in: any order (so late ticks), some sent twice."""
    ticks = draw(tick_lists(max_size=50))
    order = draw(st.permutations(ticks))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=6)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    for batch in batches[1:]:
        if ticks:
            batch.extend(draw(st.lists(st.sampled_from(ticks), max_size=3)))  # a reconnect resends
    return ticks, batches


@settings(max_examples=150)
@given(arrivals())
def test_building_batch_by_batch_as_the_service_does_gives_the_bars_of_all_ticks(arrival):
    """``services.bars_resample`` without the database: store, re-read the widest affected bars, rebuild."""
    ticks, batches = arrival
    stored: dict[tuple[str, int], Tick] = {}  # the Tick table: unique (symbol, trade_id)
    tables: dict[str, dict[tuple[str, int], Bar]] = {interval: {} for interval in INTERVALS}
    widest = max(INTERVALS, key=INTERVALS.__getitem__)
    for batch in batches:
        for tick in batch:
            stored.setdefault((tick.symbol, tick.trade_id), tick)
        spans = affected_spans(batch, widest)
        reread = [
            t for t in stored.values() if any(start <= t.timestamp < end for start, end in spans.get(t.symbol, ()))
        ]
        for interval, length in INTERVALS.items():
            touched = affected_open_times(batch, interval)
            mine = [t for t in reread if (t.symbol, bar_open_time(t.timestamp, length)) in touched]
            rebuilt = build_bars(mine, interval)
            assert {(b.symbol, b.open_time) for b in rebuilt} == touched
            tables[interval].update({(b.symbol, b.open_time): b for b in rebuilt})
    for interval in INTERVALS:
        assert sorted(tables[interval].values()) == build_bars(ticks, interval)
