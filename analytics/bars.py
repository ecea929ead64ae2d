"""OHLCV bars from ticks, when a bar is closed, and a pair's aligned close series.

Pure numerics (numpy only, no Django): the resampling service loads ticks, calls
these functions and stores the rows. The definitions are the binding ones of
``docs/analytics.md`` ("Bars", "When a bar is closed", "The pair's aligned
series"); the tests check them against pandas ``resample`` on a real Binance
recording.

Times are integer milliseconds since the epoch (UTC) throughout, as in
``ingestion.binance.Tick`` and the ``Tick`` table. A tick is any 5-tuple in
``Tick`` field order ``(timestamp, symbol, price, quantity, trade_id)``: a
``Tick``, or a row of ``Tick.objects.values_list("timestamp", "symbol", "price",
"quantity", "trade_id")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

#: Bar intervals by name, in ms.
INTERVALS: dict[str, int] = {"1s": 1_000, "1m": 60_000, "5m": 300_000}

#: How long past ``t + D`` the wall clock waits before closing a bar nobody's
#: ticks have closed. It covers exchange-to-us latency (tens to hundreds of ms),
#: the tick writer's batching (0.25 s flush) and one resampling cycle (1 s).
DEFAULT_GRACE_MS = 2_000


class Bar(NamedTuple):
    """One OHLCV bar: the ticks of ``symbol`` with ``open_time <= timestamp < open_time + D``."""

    symbol: str
    interval: str
    open_time: int  # ms since the epoch, a multiple of the interval
    open: float
    high: float
    low: float
    close: float
    volume: float  # sum of quantities
    trades: int  # number of ticks


def parse_interval(interval: str) -> int:
    """The length in ms of the interval named ``interval`` (one of ``INTERVALS``).

    Raises ``ValueError`` naming the allowed intervals otherwise.
    """
    try:
        return INTERVALS[interval]
    except (KeyError, TypeError):
        allowed = ", ".join(INTERVALS)
        raise ValueError(f"unknown bar interval {interval!r} (expected one of: {allowed})") from None


def bar_open_time(timestamp_ms: int, interval_ms: int) -> int:
    """Open time of the bar holding ``timestamp_ms``: the largest multiple of ``interval_ms`` <= it."""
    return timestamp_ms - timestamp_ms % interval_ms  # Python's % floors, so this holds before 1970 too


# --------------------------------------------------------------------------- building


def build_bars(ticks: Iterable[Sequence[Any]], interval: str) -> list[Bar]:
    """OHLCV bars of ``ticks``, one per (symbol, open time) that has ticks.

    Parameters
    ----------
    ticks : iterable of (timestamp, symbol, price, quantity, trade_id)
        Ticks of any symbols, in any order (``Tick`` or rows in its field order);
        timestamp in ms since the epoch.
    interval : {"1s", "1m", "5m"}
        The bar length.

    Returns
    -------
    list of Bar
        Sorted by (symbol, open_time). Within a bar the ticks are ordered by
        (timestamp, trade_id): open is the first price, close the last, high/low
        the max/min, volume the sum of quantities and trades their number.
        Intervals without ticks have no bar (no forward-filled bars here; the
        pair alignment forward-fills, see ``align_closes``).

    Raises
    ------
    ValueError
        ``interval`` is not one of ``INTERVALS``.

    Notes
    -----
    A tick repeated with the same (symbol, timestamp, trade_id) counts once, as
    the ``Tick`` table stores it once; so building from a batch that overlaps the
    stored ticks gives the same bars as building from the table.

    The ticks become numpy columns in one C-level pass (a structured array),
    then everything is vectorised: a lexsort, run boundaries and ``reduceat``.
    Use ``build_bars_from_columns`` when the ticks are already columns.
    """
    interval_ms = parse_interval(interval)
    rows = ticks if isinstance(ticks, list) else list(ticks)
    if not rows:
        return []
    names = sorted(set(map(itemgetter(1), rows)))
    table_dtype = np.dtype(
        [
            ("timestamp", np.int64),
            ("symbol", f"U{max(1, *map(len, names))}"),  # wide enough: never truncates a name
            ("price", np.float64),
            ("quantity", np.float64),
            ("trade_id", np.int64),
        ]
    )
    if not isinstance(rows[0], tuple):  # numpy reads structured rows from tuples only
        rows = [tuple(row) for row in rows]
    table = np.array(rows, dtype=table_dtype)
    codes = np.searchsorted(np.array(names), table["symbol"])
    return _build(
        table["timestamp"], codes, names, table["price"], table["quantity"], table["trade_id"], interval, interval_ms
    )


def build_bars_from_columns(
    timestamps: Any,
    symbols: Any,
    prices: Any,
    quantities: Any,
    trade_ids: Any,
    interval: str,
) -> list[Bar]:
    """``build_bars`` on ticks given as equal-length columns (numpy arrays or sequences)."""
    interval_ms = parse_interval(interval)
    ts = np.asarray(timestamps, dtype=np.int64)
    symbol_col = np.asarray(symbols, dtype=str)
    price_col = np.asarray(prices, dtype=np.float64)
    quantity_col = np.asarray(quantities, dtype=np.float64)
    ids = np.asarray(trade_ids, dtype=np.int64)
    if not (len(ts) == len(symbol_col) == len(price_col) == len(quantity_col) == len(ids)):
        raise ValueError("tick columns differ in length")
    if len(ts) == 0:
        return []
    names_col, codes = np.unique(symbol_col, return_inverse=True)
    return _build(ts, codes, names_col.tolist(), price_col, quantity_col, ids, interval, interval_ms)


def _build(
    ts: npt.NDArray[np.int64],
    codes: npt.NDArray[np.intp],
    names: list[str],
    prices: npt.NDArray[np.float64],
    quantities: npt.NDArray[np.float64],
    ids: npt.NDArray[np.int64],
    interval: str,
    interval_ms: int,
) -> list[Bar]:
    """Bars of ticks given as columns; ``codes`` index ``names`` (sorted) per tick."""
    # Sort by (symbol, timestamp, trade_id): lexsort's last key is the primary one.
    # Ticks in that order already (the resampling keeps them so) stay as they are:
    # the stable sort would not move them.
    if not _ordered(codes, ts, ids):
        order = np.lexsort((ids, ts, codes))
        ts, codes, ids = ts[order], codes[order], ids[order]
        prices, quantities = prices[order], quantities[order]

    # Drop repeats of one trade (adjacent after the sort).
    repeat = np.zeros(len(ts), dtype=bool)
    repeat[1:] = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1]) & (ids[1:] == ids[:-1])
    if repeat.any():
        keep = ~repeat
        ts, codes, prices, quantities = ts[keep], codes[keep], prices[keep], quantities[keep]

    opens = ts - ts % interval_ms  # numpy's % floors like Python's
    new_bar = np.ones(len(ts), dtype=bool)
    new_bar[1:] = (codes[1:] != codes[:-1]) | (opens[1:] != opens[:-1])
    starts = np.flatnonzero(new_bar)
    ends = np.append(starts[1:], len(ts))

    # .tolist() gives Python ints/floats, not numpy scalars, for the DB and JSON.
    return [
        Bar(names[code], interval, open_time, open_, high, low, close, volume, trades)
        for code, open_time, open_, high, low, close, volume, trades in zip(
            codes[starts].tolist(),
            opens[starts].tolist(),
            prices[starts].tolist(),
            np.maximum.reduceat(prices, starts).tolist(),
            np.minimum.reduceat(prices, starts).tolist(),
            prices[ends - 1].tolist(),
            np.add.reduceat(quantities, starts).tolist(),
            (ends - starts).tolist(),
            strict=True,
        )
    ]


#: One symbol's stored ticks as columns (``id`` the row id): what the resampling keeps between runs.
TICK_COLUMNS = np.dtype(
    [("id", np.int64), ("timestamp", np.int64), ("price", np.float64), ("quantity", np.float64), ("trade_id", np.int64)]
)


def build_bars_of_symbol(symbol: str, ticks: npt.NDArray[Any], interval: str) -> list[Bar]:
    """``build_bars`` of ticks of one ``symbol`` given as a ``TICK_COLUMNS`` array (the same bars, field for field)."""
    interval_ms = parse_interval(interval)
    if not len(ticks):
        return []
    codes = np.zeros(len(ticks), dtype=np.intp)
    return _build(
        ticks["timestamp"], codes, [symbol], ticks["price"], ticks["quantity"], ticks["trade_id"], interval, interval_ms
    )


class WidestBarTicks:
    """The stored ticks of the widest bars one resampling run rebuilt, kept for the next run.

    A new tick re-opens its 1s, 1m and 5m bars, and each is rebuilt from all of its
    stored ticks: without this, every run re-reads every stored tick of the current
    5 m bar, a cost that grows through the bar (quadratic in a burst). The ticks are
    kept with what they are the ticks *of*: ``key`` names the run's watermark (the
    highest tick id it read, and the watermark row's save), and ``take`` hands them
    over only to a run that starts from that very watermark, so a run after another
    process's, a rolled-back one or one on another database reads the database as
    before. Given the watermark, the kept ticks of a bar plus the new ticks above it
    are all of the bar's stored ticks (ids become visible in id order).
    """

    def __init__(self, max_ticks: int = 1_000_000) -> None:
        self.max_ticks = max_ticks
        self._key: object = None
        self._bars: dict[tuple[str, int], npt.NDArray[Any]] = {}

    def take(self, key: object) -> dict[tuple[str, int], npt.NDArray[Any]]:
        """The kept ticks per (symbol, open time) if they are of ``key``, else none; forgotten either way."""
        bars, kept = self._bars, self._key
        self._bars, self._key = {}, None
        return bars if kept is not None and kept == key else {}

    def keep(self, key: object, bars: dict[tuple[str, int], npt.NDArray[Any]]) -> None:
        """Keep ``bars`` (all stored ticks of each, as of ``key``), unless they are too many ticks."""
        if sum(len(ticks) for ticks in bars.values()) <= self.max_ticks:
            self._bars, self._key = bars, key


def _ordered(codes: npt.NDArray[Any], ts: npt.NDArray[np.int64], ids: npt.NDArray[np.int64]) -> bool:
    """Whether the ticks are in (symbol, timestamp, trade_id) order, ties included."""
    if len(ts) < 2:
        return True
    c0, c1, t0, t1 = codes[:-1], codes[1:], ts[:-1], ts[1:]
    return bool(np.all((c0 < c1) | ((c0 == c1) & ((t0 < t1) | ((t0 == t1) & (ids[:-1] <= ids[1:]))))))


def in_time_order(ticks: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``TICK_COLUMNS`` of one symbol in (timestamp, trade_id) order (the same array when they are)."""
    codes = np.zeros(len(ticks), dtype=np.intp)
    if _ordered(codes, ticks["timestamp"], ticks["trade_id"]):
        return ticks
    return ticks[np.lexsort((ticks["trade_id"], ticks["timestamp"]))]


def affected_open_times(ticks: Iterable[Sequence[Any]], interval: str) -> set[tuple[str, int]]:
    """The (symbol, open_time) bars that a batch of new ticks falls into.

    The resampling service re-reads *all* stored ticks of these bars and rebuilds
    them with ``build_bars`` (a late tick re-opens its bar), which makes every
    stored bar equal to ``build_bars`` of all stored ticks.
    """
    interval_ms = parse_interval(interval)
    return {(tick[1], tick[0] - tick[0] % interval_ms) for tick in ticks}


def affected_spans(ticks: Iterable[Sequence[Any]], interval: str) -> dict[str, list[tuple[int, int]]]:
    """``affected_open_times`` as half-open tick-time ranges ``[start, end)`` per symbol.

    Adjacent bars merge into one range, so the service needs one
    ``timestamp__gte=start, timestamp__lt=end`` query per run of bars rather
    than one per bar.
    """
    interval_ms = parse_interval(interval)
    per_symbol: dict[str, list[int]] = {}
    for symbol, open_time in affected_open_times(ticks, interval):
        per_symbol.setdefault(symbol, []).append(open_time)
    spans: dict[str, list[tuple[int, int]]] = {}
    for symbol, open_times in sorted(per_symbol.items()):
        merged: list[tuple[int, int]] = []
        for t in sorted(open_times):
            if merged and merged[-1][1] == t:
                merged[-1] = (merged[-1][0], t + interval_ms)
            else:
                merged.append((t, t + interval_ms))
        spans[symbol] = merged
    return spans


# --------------------------------------------------------------------------- closing


def last_closed_open_time(
    event_time_ms: int | None,
    interval_ms: int,
    *,
    now_ms: int | None = None,
    grace_ms: int = DEFAULT_GRACE_MS,
) -> int | None:
    """Open time of the newest closed bar, or None if no time is known.

    Parameters
    ----------
    event_time_ms : int or None
        The newest tick timestamp seen for *any* symbol of the feed (ms).
    interval_ms : int
        The bar length (ms), e.g. ``parse_interval("1m")``.
    now_ms : int or None
        Wall-clock time (ms) in live operation; None to use event time only
        (replays, tests, backfills).
    grace_ms : int
        How long past ``t + D`` the wall clock waits.

    Returns
    -------
    int or None
        The largest open time ``t`` (a multiple of ``interval_ms``) whose bar is
        closed; every bar with open time <= it is closed too.

    Notes
    -----
    The rule (docs/analytics.md, "Without a statement"): the bar at ``t`` is
    closed once a tick with timestamp >= ``t + D`` has been seen for any symbol,
    or once ``now_ms >= t + D + grace_ms``. Event time lets a quiet symbol's bars
    close on another symbol's ticks; the wall clock closes bars when the whole
    feed is quiet. Closing is not final: a late tick (backfill) re-opens and rebuilds its
    bar (``affected_open_times``).
    """
    candidates = []
    if event_time_ms is not None:
        candidates.append(bar_open_time(event_time_ms, interval_ms) - interval_ms)
    if now_ms is not None:
        candidates.append(bar_open_time(now_ms - grace_ms, interval_ms) - interval_ms)
    return max(candidates) if candidates else None


def bar_is_closed(
    open_time: int,
    interval_ms: int,
    *,
    event_time_ms: int | None,
    now_ms: int | None = None,
    grace_ms: int = DEFAULT_GRACE_MS,
) -> bool:
    """Whether the bar opened at ``open_time`` is closed (the rule of ``last_closed_open_time``)."""
    if event_time_ms is not None and event_time_ms >= open_time + interval_ms:
        return True
    return now_ms is not None and now_ms >= open_time + interval_ms + grace_ms


def feed_event_time(legs: Iterable[str], newest: dict[str, int], feeds: Iterable[Iterable[str]] = ()) -> int | None:
    """The event time that closes the bars of ``legs``: each leg's feed's, the earliest of them.

    Parameters
    ----------
    legs : iterable of str
        The symbols whose bars must all be closed (a pair's two legs).
    newest : dict
        Newest resampled trade time (ms) per symbol.
    feeds : iterable of iterables of str
        The symbols of each running ingestion feed. A symbol no feed lists
        belongs to one feed of every symbol (one process ingests everything).

    Returns
    -------
    int or None
        None while a leg's feed has no trade yet (the wall clock still closes bars).

    Notes
    -----
    "A tick at or after t + D for any symbol *of the feed*": one feed stores its
    ticks in arrival (trade-time) order, so its newest stored trade proves every
    earlier trade of its symbols stored. Another feed proves nothing about them:
    when ingestion is split by symbol over processes, an ETH bar must not close
    on a BTC tick that another process stored first.
    """
    groups = [set(group) for group in feeds]
    times = []
    for leg in legs:
        group = next((g for g in groups if leg in g), newest.keys())
        known = [newest[s] for s in group if s in newest]
        if not known:
            return None
        times.append(max(known))
    return min(times) if times else None


# --------------------------------------------------------------------------- pair alignment


@dataclass(frozen=True, eq=False)
class Aligned:
    """A pair's aligned close series on the window (see ``align_closes``)."""

    times: npt.NDArray[np.int64]  # open times, ms, ascending
    y: npt.NDArray[np.float64]  # closes of A (forward-filled)
    x: npt.NDArray[np.float64]  # closes of B (forward-filled)
    filled_a: int  # trailing window points where A has no bar of its own
    filled_b: int  # the same for B
    last_a: int | None  # open time of A's newest own bar <= as_of
    last_b: int | None

    @property
    def n(self) -> int:
        """Number of points in the window."""
        return len(self.times)


class LegCloses(NamedTuple):
    """One leg's bars as columns: open times (ms) and closes, in any order (``align_closes`` sorts them)."""

    open_time: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]


def _leg(bars: Iterable[Any], as_of: int | None, name: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sorted open times and closes of one leg's bars up to ``as_of``."""
    if isinstance(bars, LegCloses):
        times = np.asarray(bars.open_time, dtype=np.int64)
        closes = np.asarray(bars.close, dtype=np.float64)
    else:
        rows = [(bar.open_time, bar.close) for bar in bars]
        times = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        closes = np.fromiter((r[1] for r in rows), np.float64, len(rows))
    if len(times) > 1 and not bool(np.all(times[1:] > times[:-1])):  # sorted and distinct already: kept as is
        order = np.argsort(times, kind="stable")
        times, closes = times[order], closes[order]
        if (times[1:] == times[:-1]).any():
            raise ValueError(f"bars of leg {name} repeat an open time (mixed symbols or intervals?)")
    if as_of is not None and len(times) and times[-1] > as_of:
        keep = times <= as_of
        times, closes = times[keep], closes[keep]
    return times, closes


def align_closes(
    bars_a: Iterable[Any],
    bars_b: Iterable[Any],
    *,
    as_of: int | None,
    window: int,
) -> Aligned:
    """The pair's aligned close series y (A) and x (B) on the last ``window`` grid points.

    Parameters
    ----------
    bars_a, bars_b : iterables of Bar (or anything with ``open_time`` and ``close``), or LegCloses
        The bars of legs A and B of one interval, in any order.
    as_of : int or None
        Open time of the newest closed bar (ms), e.g. ``last_closed_open_time``;
        bars after it are ignored (not closed yet). None takes every bar given as
        closed.
    window : int
        Most points to return (> 0).

    Returns
    -------
    Aligned
        ``times`` (int64 ms), ``y``, ``x`` (float64) of length
        ``n = min(available, window)``, ending at the newest grid point
        <= ``as_of``; ``filled_a`` / ``filled_b`` count the trailing window points
        where that leg had no bar of its own (0 when its newest grid point is its
        own bar; grows by one per grid point while a leg is silent);
        ``last_a`` / ``last_b`` are the legs' newest own bar times. With no bars
        for a leg, everything is empty and the counts are 0.

    Raises
    ------
    ValueError
        ``window`` < 1, or a leg repeats an open time.

    Notes
    -----
    The grid is the union of the open times of the two legs' closed bars: a
    point exists where at least one leg traded. Where only one leg has a bar, the
    other's previous close is carried forward (no look-ahead: only earlier bars
    are used). Grid points before both legs have a first bar are dropped. Times
    where *neither* leg traded are not grid points: filling both legs there would
    add flat, zero-return points that say nothing about the pair and, on a quiet
    feed, would let the window fill up with copies of old prices. This equals
    pandas ``concat([a, b], axis=1).ffill().dropna().iloc[-window:]`` on the two
    close series.

    The newest ``window`` bars of each leg with open time <= ``as_of`` are all
    this needs: with them the result is the same as with the legs' whole history
    (each leg has at most ``window`` own bars inside the window, and the next
    older one is the bar forward-filled into its first point).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    times_a, closes_a = _leg(bars_a, as_of, "A")
    times_b, closes_b = _leg(bars_b, as_of, "B")
    return align_arrays(times_a, closes_a, times_b, closes_b, window=window)


def align_arrays(
    times_a: npt.NDArray[np.int64],
    closes_a: npt.NDArray[np.float64],
    times_b: npt.NDArray[np.int64],
    closes_b: npt.NDArray[np.float64],
    *,
    window: int,
) -> Aligned:
    """``align_closes`` of two legs given as arrays: open times (sorted, unique) and closes."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    last_a = int(times_a[-1]) if len(times_a) else None
    last_b = int(times_b[-1]) if len(times_b) else None
    if not len(times_a) or not len(times_b):
        empty = np.empty(0, dtype=np.float64)
        return Aligned(np.empty(0, dtype=np.int64), empty, empty.copy(), 0, 0, last_a, last_b)

    if times_a.shape == times_b.shape and bool(np.all(times_a == times_b)):
        # Both legs have a bar at every grid point (the usual case on 1 s bars of liquid symbols).
        grid = times_a[-window:]
        return Aligned(grid.copy(), closes_a[-window:].copy(), closes_b[-window:].copy(), 0, 0, last_a, last_b)
    grid = np.union1d(times_a, times_b)  # sorted, unique
    grid = grid[grid >= max(times_a[0], times_b[0])][-window:]
    # Index of each leg's latest bar at or before each grid point (>= 0 after the drop).
    idx_a = np.searchsorted(times_a, grid, side="right") - 1
    idx_b = np.searchsorted(times_b, grid, side="right") - 1
    return Aligned(
        times=grid,
        y=closes_a[idx_a],
        x=closes_b[idx_b],
        filled_a=_trailing_false(times_a[idx_a] == grid),
        filled_b=_trailing_false(times_b[idx_b] == grid),
        last_a=last_a,
        last_b=last_b,
    )


def _trailing_false(own: npt.NDArray[np.bool_]) -> int:
    """Number of False values at the end of ``own``."""
    hits = np.flatnonzero(own)
    return len(own) - 1 - int(hits[-1]) if len(hits) else len(own)
