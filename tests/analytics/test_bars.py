"""Bars, the closing rule and the pair alignment against pandas, on real recordings (no database)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from analytics.bars import (
    DEFAULT_GRACE_MS,
    INTERVALS,
    TICK_COLUMNS,
    Bar,
    LegCloses,
    affected_open_times,
    affected_spans,
    align_closes,
    bar_is_closed,
    bar_open_time,
    build_bars,
    build_bars_from_columns,
    build_bars_of_symbol,
    feed_event_time,
    in_time_order,
    last_closed_open_time,
    parse_interval,
)
from ingestion.binance import Tick, parse_frame

RECORDINGS = Path(__file__).resolve().parents[2] / "ingestion" / "recordings"
MIDNIGHT = 1_723_161_600_000  # 2024-08-09 00:00:00 UTC, inside the 2024-08-08 recording
PANDAS_FREQ = {"1s": "1s", "1m": "1min", "5m": "5min"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def recorded_ticks(recorded_frames: list[str]) -> list[Tick]:
    """The real BTCUSDT+ETHUSDT trades of 2024-08-08 23:54-00:00 UTC."""
    ticks = [tick for frame in recorded_frames if (tick := parse_frame(frame)) is not None]
    assert len(ticks) == 21_313 + 14_076
    return ticks


@pytest.fixture(scope="module")
def stale_ticks() -> list[Tick]:
    """The 2025-11-01 sample in file order (7 rows out of order); ETHUSDT goes silent after 17 s.

    The rows carry no trade id: the line number stands in for it.
    """
    ticks = []
    with open(RECORDINGS / "ticks-20251101-stale-eth.ndjson", "rb") as fh:
        for line_no, line in enumerate(fh):
            row = orjson.loads(line)
            when = datetime.fromisoformat(row["ts"])
            ms = (when - EPOCH) // timedelta(milliseconds=1)
            ticks.append(Tick(ms, row["symbol"], row["price"], row["size"], line_no))
    return ticks


def pandas_bars(ticks: list[Tick], interval: str) -> list[Bar]:
    """The reference: pandas ``resample`` per symbol of ticks sorted by (timestamp, trade_id)."""
    frame = pd.DataFrame(ticks, columns=list(Tick._fields))
    bars = []
    for symbol, group in frame.groupby("symbol", sort=True):
        group = group.sort_values(["timestamp", "trade_id"], kind="stable")
        group = group.set_index(pd.to_datetime(group["timestamp"], unit="ms"))
        resampler = group.resample(PANDAS_FREQ[interval], label="left", closed="left")
        out = resampler["price"].ohlc()
        out["volume"] = resampler["quantity"].sum()
        out["trades"] = resampler["price"].count()
        out = out[out["trades"] > 0]  # empty bins are not bars
        open_times = (out.index - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
        for open_time, row in zip(open_times, out.itertuples(index=False), strict=True):
            ohlc = (row.open, row.high, row.low, row.close)
            bars.append(Bar(str(symbol), interval, int(open_time), *ohlc, row.volume, int(row.trades)))
    return bars


def assert_same_bars(actual: list[Bar], expected: list[Bar]) -> None:
    assert len(actual) == len(expected)

    def keys(bars: list[Bar]) -> list[tuple[str, str, int]]:
        return [(b.symbol, b.interval, b.open_time) for b in bars]

    assert keys(actual) == keys(expected)
    # Prices are copied, never computed: exact. Volume is a float sum (pandas sums with Kahan).
    assert [(b.open, b.high, b.low, b.close, b.trades) for b in actual] == [
        (b.open, b.high, b.low, b.close, b.trades) for b in expected
    ]
    np.testing.assert_allclose([b.volume for b in actual], [b.volume for b in expected], rtol=1e-12, atol=0)


def closes(bars: list[Bar], symbol: str) -> list[Bar]:
    return [b for b in bars if b.symbol == symbol]


# --------------------------------------------------------------------------- intervals


def test_it_parses_the_three_intervals():
    assert INTERVALS == {"1s": 1000, "1m": 60_000, "5m": 300_000}
    assert [parse_interval(name) for name in ("1s", "1m", "5m")] == [1000, 60_000, 300_000]


@pytest.mark.parametrize("bad", ["1h", "1M", "", "60s", None])
def test_it_rejects_an_unknown_interval_naming_the_allowed_ones(bad):
    with pytest.raises(ValueError, match=r"unknown bar interval .*1s, 1m, 5m"):
        parse_interval(bad)
    with pytest.raises(ValueError, match="unknown bar interval"):
        build_bars([Tick(0, "BTCUSDT", 1.0, 1.0, 1)], bad)


@pytest.mark.parametrize(
    ("timestamp", "interval_ms", "expected"),
    [
        (0, 1000, 0),
        (999, 1000, 0),
        (1000, 1000, 1000),
        (MIDNIGHT - 1, 60_000, MIDNIGHT - 60_000),
        (MIDNIGHT, 300_000, MIDNIGHT),
        (-1, 1000, -1000),  # floors, like pandas, before the epoch too
    ],
)
def test_it_floors_a_timestamp_to_its_bar_open_time(timestamp, interval_ms, expected):
    assert bar_open_time(timestamp, interval_ms) == expected


# --------------------------------------------------------------------------- bars vs pandas


@pytest.mark.parametrize("interval", ["1s", "1m", "5m"])
def test_it_equals_pandas_resample_bar_for_bar_on_the_real_recording(recorded_ticks, interval):
    bars = build_bars(recorded_ticks, interval)
    assert_same_bars(bars, pandas_bars(recorded_ticks, interval))
    assert {b.symbol for b in bars} == {"BTCUSDT", "ETHUSDT"}
    assert all(b.open_time % INTERVALS[interval] == 0 for b in bars)
    assert sum(b.trades for b in bars) == len(recorded_ticks)


def test_it_equals_pandas_on_out_of_order_ticks_without_trade_ids(stale_ticks):
    assert any(a.timestamp > b.timestamp for a, b in itertools.pairwise(stale_ticks))  # really out of order
    for interval in INTERVALS:
        assert_same_bars(build_bars(stale_ticks, interval), pandas_bars(stale_ticks, interval))


def test_it_splits_bars_at_utc_midnight(recorded_ticks):
    eth = [t for t in recorded_ticks if t.symbol == "ETHUSDT"]
    before = [t for t in eth if t.timestamp < MIDNIGHT]
    after = [t for t in eth if t.timestamp >= MIDNIGHT]
    assert before and after
    for interval in INTERVALS:
        by_time = {b.open_time: b for b in closes(build_bars(recorded_ticks, interval), "ETHUSDT")}
        first_of_day = by_time[MIDNIGHT]
        assert first_of_day.trades == len(after)  # the recording ends within the first second of the day
        assert (first_of_day.open, first_of_day.close) == (after[0].price, after[-1].price)
        last_of_day = by_time[MIDNIGHT - INTERVALS[interval]]
        assert last_of_day.close == before[-1].price


def test_it_skips_empty_intervals_and_orders_equal_timestamps_by_trade_id():
    ticks = [
        Tick(1_000, "BTCUSDT", 10.0, 1.0, 7),
        Tick(1_000, "BTCUSDT", 12.0, 2.0, 5),  # same ms, lower id: it is the open
        Tick(1_999, "BTCUSDT", 11.0, 0.5, 8),
        Tick(4_000, "BTCUSDT", 9.0, 1.0, 9),  # 2 s and 3 s have no trades: no bars
        Tick(4_500, "BTCUSDT", 9.5, 1.0, 11),
        Tick(4_500, "BTCUSDT", 9.25, 1.0, 10),  # same ms, lower id: before 9.5, so 9.5 closes
        Tick(2_500, "ETHUSDT", 3.0, 4.0, 1),
    ]
    assert build_bars(ticks, "1s") == [
        Bar("BTCUSDT", "1s", 1_000, 12.0, 12.0, 10.0, 11.0, 3.5, 3),
        Bar("BTCUSDT", "1s", 4_000, 9.0, 9.5, 9.0, 9.5, 3.0, 3),
        Bar("ETHUSDT", "1s", 2_000, 3.0, 3.0, 3.0, 3.0, 4.0, 1),
    ]
    assert build_bars(ticks, "1m") == [
        Bar("BTCUSDT", "1m", 0, 12.0, 12.0, 9.0, 9.5, 6.5, 6),
        Bar("ETHUSDT", "1m", 0, 3.0, 3.0, 3.0, 3.0, 4.0, 1),
    ]
    assert build_bars([], "1s") == []


def test_it_gives_the_same_bars_for_any_tick_order(recorded_ticks):
    shuffled = list(recorded_ticks)
    random.Random(7).shuffle(shuffled)
    for interval in INTERVALS:
        assert build_bars(shuffled, interval) == build_bars(recorded_ticks, interval)


def test_it_counts_a_repeated_trade_once_as_the_table_stores_it_once(recorded_ticks):
    ticks = recorded_ticks[:3000]
    assert build_bars(ticks + ticks[100:400], "1s") == build_bars(ticks, "1s")


def test_it_accepts_plain_rows_and_columns(recorded_ticks):
    ticks = recorded_ticks[:5000]
    expected = build_bars(ticks, "1s")
    assert build_bars((tuple(t) for t in ticks), "1s") == expected  # values_list rows, a generator
    assert build_bars([list(t) for t in ticks], "1s") == expected
    timestamps, symbols, prices, quantities, trade_ids = zip(*ticks, strict=True)
    assert build_bars_from_columns(timestamps, symbols, prices, quantities, trade_ids, "1s") == expected
    assert (
        build_bars_from_columns(
            np.array(timestamps), np.array(symbols), np.array(prices), np.array(quantities), np.array(trade_ids), "1s"
        )
        == expected
    )
    bar = expected[0]
    assert type(bar.open_time) is int and type(bar.close) is float and type(bar.trades) is int


@pytest.mark.parametrize("interval", list(INTERVALS))
def test_one_symbol_as_columns_gives_the_same_bars_field_for_field(recorded_ticks, interval):
    """What the resampling builds from (``TICK_COLUMNS``, any order, ids along) equals ``build_bars``."""
    for symbol in sorted({t.symbol for t in recorded_ticks}):
        ticks = [t for t in recorded_ticks if t.symbol == symbol]
        shuffled = random.Random(3).sample(ticks, len(ticks))
        rows = [(i, t.timestamp, t.price, t.quantity, t.trade_id) for i, t in enumerate(shuffled)]
        columns = np.array(rows, dtype=TICK_COLUMNS)
        assert build_bars_of_symbol(symbol, columns, interval) == build_bars(ticks, interval)
        ordered = in_time_order(columns)  # as the resampling keeps them: built without a sort
        assert in_time_order(ordered) is ordered
        assert ordered[["timestamp", "trade_id"]].tolist() == sorted((t.timestamp, t.trade_id) for t in ticks)
        assert build_bars_of_symbol(symbol, ordered, interval) == build_bars(ticks, interval)
    assert build_bars_of_symbol("BTCUSDT", np.array([], dtype=TICK_COLUMNS), "1s") == []


# --------------------------------------------------------------------------- rebuilding


def late_batches(ticks: list[Tick], *, size: int, late: int, seed: int) -> list[list[Tick]]:
    """Time-ordered batches of ``ticks``, with ``late`` ticks held back to a later batch and some resent."""
    rng = random.Random(seed)
    batches = [list(ticks[i : i + size]) for i in range(0, len(ticks), size)]
    for _ in range(late):
        src = rng.randrange(len(batches) - 1)
        if batches[src]:
            tick = batches[src].pop(rng.randrange(len(batches[src])))
            batches[rng.randrange(src + 1, len(batches))].append(tick)  # backfilled later
    for batch in batches[1:]:
        batch.extend(rng.sample(ticks, 5))  # a reconnect resends trades already stored
    return batches


@pytest.mark.parametrize("interval", ["1s", "1m", "5m"])
def test_it_rebuilds_affected_bars_from_stored_ticks_to_the_same_rows(recorded_ticks, interval):
    interval_ms = INTERVALS[interval]
    stored: dict[tuple[str, int], Tick] = {}  # the Tick table: unique (symbol, trade_id)
    bar_table: dict[tuple[str, int], Bar] = {}
    reopened = 0
    for batch in late_batches(recorded_ticks, size=2500, late=300, seed=3):
        for tick in batch:
            stored.setdefault((tick.symbol, tick.trade_id), tick)
        affected = affected_open_times(batch, interval)
        reopened += len(affected & bar_table.keys())
        # What the service does: read every stored tick of the affected bars back.
        spans = affected_spans(batch, interval)
        assert {(s, t) for s, runs in spans.items() for a, b in runs for t in range(a, b, interval_ms)} == affected
        reread = [
            t for t in stored.values() if any(start <= t.timestamp < end for start, end in spans.get(t.symbol, ()))
        ]
        rebuilt = build_bars(reread, interval)
        assert {(b.symbol, b.open_time) for b in rebuilt} == affected
        bar_table.update({(b.symbol, b.open_time): b for b in rebuilt})
    assert reopened > 0  # late ticks did land in bars built before
    assert sorted(bar_table.values()) == build_bars(recorded_ticks, interval)


def test_it_would_lose_trades_if_only_the_batch_were_built(recorded_ticks):
    """The counter-example that makes re-reading the stored ticks necessary."""
    bar_table: dict[tuple[str, int], Bar] = {}
    for batch in late_batches(recorded_ticks, size=2500, late=300, seed=3):
        bar_table.update({(b.symbol, b.open_time): b for b in build_bars(batch, "1m")})
    assert sorted(bar_table.values()) != build_bars(recorded_ticks, "1m")


def test_it_merges_adjacent_affected_bars_into_one_span():
    ticks = [Tick(t, "BTCUSDT", 1.0, 1.0, i) for i, t in enumerate([5_100, 1_500, 2_000, 2_999, 3_000, 9_999])]
    ticks.append(Tick(1_000, "ETHUSDT", 1.0, 1.0, 99))
    assert affected_spans(ticks, "1s") == {
        "BTCUSDT": [(1_000, 4_000), (5_000, 6_000), (9_000, 10_000)],
        "ETHUSDT": [(1_000, 2_000)],
    }
    assert affected_open_times(ticks, "1m") == {("BTCUSDT", 0), ("ETHUSDT", 0)}
    assert affected_open_times([], "1s") == set() and affected_spans([], "1s") == {}


# --------------------------------------------------------------------------- closing


@pytest.mark.parametrize(
    ("event_time", "now", "expected"),
    [
        (None, None, None),
        (1_999, None, 0),  # bar 1000 needs a tick at 2000 or later
        (2_000, None, 1_000),
        (2_000, 2_000, 1_000),  # the wall clock is behind: event time decides
        (None, 1_000 + 1_000 + DEFAULT_GRACE_MS - 1, 0),
        (None, 1_000 + 1_000 + DEFAULT_GRACE_MS, 1_000),
        (1_500, 10_000, 10_000 - DEFAULT_GRACE_MS - 1_000),  # a quiet feed: the wall clock decides
    ],
)
def test_it_closes_a_bar_on_event_time_or_wall_clock_plus_grace(event_time, now, expected):
    assert last_closed_open_time(event_time, 1_000, now_ms=now) == expected


def test_it_agrees_with_the_per_bar_rule_everywhere():
    rng = np.random.default_rng(5)
    for interval_ms in INTERVALS.values():
        for _ in range(300):
            event = int(rng.integers(0, 3 * interval_ms)) if rng.random() < 0.8 else None
            now = int(rng.integers(0, 4 * interval_ms)) if rng.random() < 0.5 else None
            grace = int(rng.integers(0, 3000))
            newest = last_closed_open_time(event, interval_ms, now_ms=now, grace_ms=grace)
            for open_time in range(-2 * interval_ms, 4 * interval_ms, interval_ms):
                closed = bar_is_closed(open_time, interval_ms, event_time_ms=event, now_ms=now, grace_ms=grace)
                assert closed == (newest is not None and open_time <= newest)


def test_it_closes_a_silent_symbols_bars_on_the_other_symbols_ticks(stale_ticks):
    eth_last = max(t.timestamp for t in stale_ticks if t.symbol == "ETHUSDT")
    eth_bar = bar_open_time(eth_last, 1_000)
    btc_later = min(t.timestamp for t in stale_ticks if t.symbol == "BTCUSDT" and t.timestamp >= eth_bar + 1_000)
    assert not bar_is_closed(eth_bar, 1_000, event_time_ms=eth_last)
    assert bar_is_closed(eth_bar, 1_000, event_time_ms=btc_later)  # no ETH tick needed
    assert last_closed_open_time(btc_later, 1_000) >= eth_bar


@pytest.mark.parametrize(
    ("feeds", "expected"),
    [
        ((), 9_000),  # one process ingests everything: any symbol's tick closes bars
        ((["BTCUSDT", "ETHUSDT", "SOLUSDT"],), 7_000),
        ((["BTCUSDT", "SOLUSDT"], ["ETHUSDT"]), 5_000),  # split: ETH's own feed is behind
        ((["SOLUSDT"], ["BTCUSDT"], ["ETHUSDT"]), 5_000),
        ((["BTCUSDT"], ["ETHUSDT", "SOLUSDT"]), 6_000),  # ETH closes on its feed-mate SOL; BTC is behind
    ],
)
def test_a_pairs_bars_close_on_the_event_time_of_each_legs_own_feed(feeds, expected):
    newest = {"BTCUSDT": 6_000, "ETHUSDT": 5_000, "SOLUSDT": 7_000, "XRPUSDT": 9_000}
    assert feed_event_time(("BTCUSDT", "ETHUSDT"), newest, feeds) == expected


def test_a_leg_whose_feed_has_no_trade_yet_leaves_closing_to_the_wall_clock():
    assert feed_event_time(("BTCUSDT", "ETHUSDT"), {"BTCUSDT": 6_000}, [["BTCUSDT"], ["ETHUSDT"]]) is None


def test_it_reopens_the_bar_of_a_tick_that_arrives_after_its_bar_closed(recorded_ticks):
    eth = [t for t in recorded_ticks if t.symbol == "ETHUSDT"]
    late, stored = eth[100], eth[:100] + eth[101:400]
    event_time = max(t.timestamp for t in stored)
    late_bar = bar_open_time(late.timestamp, 1_000)
    assert bar_is_closed(late_bar, 1_000, event_time_ms=event_time)  # closed before the tick arrives
    before = {(b.symbol, b.open_time): b for b in build_bars(stored, "1s")}
    assert affected_open_times([late], "1s") == {("ETHUSDT", late_bar)}
    stored.append(late)
    rebuilt = build_bars([t for t in stored if bar_open_time(t.timestamp, 1_000) == late_bar], "1s")
    assert len(rebuilt) == 1
    assert rebuilt[0].trades == before[("ETHUSDT", late_bar)].trades + 1
    assert rebuilt == [b for b in build_bars(eth[:400], "1s") if b.open_time == late_bar]


# --------------------------------------------------------------------------- alignment


def pandas_aligned(bars_a: list[Bar], bars_b: list[Bar], as_of: int, window: int):
    """The reference: reindex both close series on the union grid, forward-fill, drop the head."""
    a = pd.Series({b.open_time: b.close for b in bars_a if b.open_time <= as_of}, dtype="float64")
    b = pd.Series({b.open_time: b.close for b in bars_b if b.open_time <= as_of}, dtype="float64")
    grid = a.index.union(b.index)
    raw = pd.DataFrame({"y": a.reindex(grid), "x": b.reindex(grid)})
    aligned = raw.ffill().dropna().iloc[-window:]
    own = raw.loc[aligned.index].notna()

    def trailing_filled(col: pd.Series) -> int:
        return len(col) - (col.to_numpy().nonzero()[0][-1] + 1) if col.any() else len(col)

    return aligned, trailing_filled(own["y"]), trailing_filled(own["x"])


def assert_matches_pandas(bars_a, bars_b, as_of, window):
    got = align_closes(bars_a, bars_b, as_of=as_of, window=window)
    expected, filled_a, filled_b = pandas_aligned(bars_a, bars_b, as_of, window)
    assert got.times.dtype == np.int64 and got.y.dtype == np.float64 and got.x.dtype == np.float64
    np.testing.assert_array_equal(got.times, expected.index.to_numpy(dtype=np.int64))
    np.testing.assert_array_equal(got.y, expected["y"].to_numpy())  # copies of closes: exact
    np.testing.assert_array_equal(got.x, expected["x"].to_numpy())
    assert (got.n, got.filled_a, got.filled_b) == (len(expected), filled_a, filled_b)
    return got


def bar(symbol: str, open_time: int, close: float) -> Bar:
    return Bar(symbol, "1s", open_time, close, close, close, close, 1.0, 1)


def test_it_aligns_on_the_union_grid_forward_filling_holes():
    a = [bar("A", t, c) for t, c in [(2_000, 20.0), (3_000, 30.0), (6_000, 60.0), (7_000, 70.0)]]
    b = [bar("B", t, c) for t, c in [(1_000, 1.0), (3_000, 3.0), (4_000, 4.0), (7_000, 7.0), (9_000, 9.0)]]
    got = align_closes(list(reversed(a)), b, as_of=8_000, window=300)
    # 1000 is dropped (A has no bar yet); 5000 is no point (neither traded); 9000 is after as_of.
    np.testing.assert_array_equal(got.times, [2_000, 3_000, 4_000, 6_000, 7_000])
    np.testing.assert_array_equal(got.y, [20.0, 30.0, 30.0, 60.0, 70.0])
    np.testing.assert_array_equal(got.x, [1.0, 3.0, 4.0, 4.0, 7.0])
    assert (got.filled_a, got.filled_b, got.last_a, got.last_b) == (0, 0, 7_000, 7_000)

    tail = align_closes(a, b[:3], as_of=8_000, window=3)
    np.testing.assert_array_equal(tail.times, [4_000, 6_000, 7_000])
    np.testing.assert_array_equal(tail.x, [4.0, 4.0, 4.0])
    assert (tail.filled_a, tail.filled_b, tail.last_b) == (0, 2, 4_000)
    assert_matches_pandas(a, b, 8_000, 300)
    assert_matches_pandas(a, b[:3], 8_000, 3)


@pytest.mark.parametrize("window", [1, 4, 5, 300])
def test_legs_with_a_bar_at_every_point_align_as_any_legs_do(window):
    times = [1_000, 2_000, 4_000, 5_000, 9_000]
    a = [bar("A", t, t / 7.0) for t in times]
    b = [bar("B", t, t / 3.0) for t in times]
    got = assert_matches_pandas(list(reversed(a)), b, 9_000, window)
    assert (got.filled_a, got.filled_b, got.last_a, got.last_b) == (0, 0, 9_000, 9_000)
    columns = LegCloses(np.array(times), np.array([x.close for x in a]))
    assert align_closes(columns, b, as_of=5_000, window=window).times.tolist() == times[:4][-window:]
    assert not np.shares_memory(align_closes(columns, columns, as_of=None, window=window).y, columns.close)


def test_it_returns_an_empty_window_until_both_legs_have_a_bar():
    a = [bar("A", 1_000, 1.0)]
    got = align_closes(a, [], as_of=5_000, window=10)
    assert got.n == 0 and got.y.dtype == np.float64 and got.times.dtype == np.int64
    assert (got.filled_a, got.filled_b, got.last_a, got.last_b) == (0, 0, 1_000, None)
    assert align_closes(a, [bar("B", 2_000, 2.0)], as_of=1_000, window=10).n == 0  # B's bar is not closed


def test_it_ignores_bars_after_as_of_and_none_takes_all():
    a = [bar("A", t, float(t)) for t in (1_000, 2_000, 3_000)]
    b = [bar("B", t, float(t)) for t in (1_000, 3_000)]
    np.testing.assert_array_equal(align_closes(a, b, as_of=2_500, window=10).times, [1_000, 2_000])
    np.testing.assert_array_equal(align_closes(a, b, as_of=None, window=10).times, [1_000, 2_000, 3_000])


def test_it_rejects_a_bad_window_or_repeated_open_times():
    a = [bar("A", 1_000, 1.0)]
    with pytest.raises(ValueError, match="window"):
        align_closes(a, a, as_of=None, window=0)
    with pytest.raises(ValueError, match="repeat"):
        align_closes(a + a, a, as_of=None, window=5)


@pytest.mark.parametrize("interval", ["1s", "1m"])
def test_it_aligns_the_real_recording_like_pandas(recorded_ticks, interval):
    bars = build_bars(recorded_ticks, interval)
    btc, eth = closes(bars, "BTCUSDT"), closes(bars, "ETHUSDT")
    interval_ms = INTERVALS[interval]
    times = sorted({b.open_time for b in bars})
    for as_of in times[:: max(1, len(times) // 25)] + [times[-1]]:
        for window in (1, 7, 100, 300, 100_000):
            assert_matches_pandas(btc, eth, as_of, window)
    # As the service would call it: up to the newest bar closed by event time.
    as_of = last_closed_open_time(recorded_ticks[-1].timestamp, interval_ms)
    got = assert_matches_pandas(btc, eth, as_of, 300)
    assert got.times[-1] <= as_of and got.n == min(300, got.n)


def test_it_counts_the_forward_filled_tail_of_the_stale_leg(stale_ticks):
    bars = build_bars(stale_ticks, "1s")
    btc, eth = closes(bars, "BTCUSDT"), closes(bars, "ETHUSDT")
    eth_last = eth[-1].open_time
    btc_after = [b.open_time for b in btc if b.open_time > eth_last]
    # ETH's last trade is at 09:51:06.9; both legs are silent from 09:51:08 to 09:53:49 (a hole in
    # the sample: no grid points, see align_closes), then BTC trades alone for 15 s.
    assert len(btc_after) >= 15

    assert align_closes(btc, eth, as_of=eth_last, window=300).filled_b == 0
    for k, as_of in enumerate(btc_after, start=1):
        for window in (50, 300):
            got = assert_matches_pandas(btc, eth, as_of, window)
            assert got.filled_b == min(k, window)  # one more filled point per BTC bar
            assert got.filled_a == 0 and got.last_b == eth_last
            assert (got.x[len(got.x) - got.filled_b :] == eth[-1].close).all()
    for as_of in [b.open_time for b in eth][::5]:  # while both trade, like pandas too
        assert_matches_pandas(btc, eth, as_of, 300)


@pytest.mark.parametrize("window", [1, 5, 60, 300])
def test_it_needs_only_the_last_window_bars_of_each_leg(recorded_ticks, stale_ticks, window):
    """What the selector may load: the newest ``window`` closed bars per leg give the same window."""
    for ticks in (recorded_ticks, stale_ticks):
        bars = build_bars(ticks, "1s")
        btc, eth = closes(bars, "BTCUSDT"), closes(bars, "ETHUSDT")
        times = sorted({b.open_time for b in bars})
        for as_of in times[:: max(1, len(times) // 40)]:
            full = align_closes(btc, eth, as_of=as_of, window=window)
            tail_a = [b for b in btc if b.open_time <= as_of][-window:]
            tail_b = [b for b in eth if b.open_time <= as_of][-window:]
            cut = align_closes(tail_a, tail_b, as_of=as_of, window=window)
            np.testing.assert_array_equal(cut.times, full.times)
            np.testing.assert_array_equal(cut.y, full.y)
            np.testing.assert_array_equal(cut.x, full.x)
            assert (cut.filled_a, cut.filled_b, cut.last_a, cut.last_b) == (
                full.filled_a,
                full.filled_b,
                full.last_a,
                full.last_b,
            )
