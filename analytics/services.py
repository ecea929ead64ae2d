"""Analytics work that touches the database or the cache: bars, snapshots, warm-up."""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import httpx
import numpy as np
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F

from ingestion.binance import KLINES_LIMIT, Kline
from ingestion.client import RateLimited, klines_fetch
from ingestion.journal import Run, stored_ticks
from ingestion.models import Gap, Symbol, Tick
from ingestion.selectors import feeds_state
from pairs_project.common.masking import url_credentials_masked

from . import selectors
from .bars import (
    INTERVALS,
    TICK_COLUMNS,
    LegCloses,
    WidestBarTicks,
    align_closes,
    build_bars_of_symbol,
    feed_event_time,
    in_time_order,
    last_closed_open_time,
)
from .models import Bar, Pair, Snapshot, Watermark
from .replay import statistics_of
from .snapshot import (
    SOURCE_CYCLE,
    SOURCE_HISTORY,
    PairSnapshot,
    Statistics,
    Thresholds,
    snapshot_build,
    snapshot_from_json,
    snapshot_json,
    snapshot_placeholder,
)
from .stats import PairStats, pair_stats, pair_stats_served, spread_model, zscore_series

logger = logging.getLogger(__name__)

TICK_WATERMARK = "resample.tick_id"
EVENT_TIME_WATERMARK = "resample.event_time"
CONTIGUOUS_WATERMARK = "resample.contiguous"
#: Per symbol (ms): every trade stamped before it is in the bars (the feeds' statements, once resampled).
CLOSED_WATERMARK = "resample.closed"
RESAMPLED_AT_WATERMARK = selectors.RESAMPLED_AT_WATERMARK
#: How much newer trade time may be stored behind a hole in a symbol's ids before
#: its bars close without the missing trades (ms): ample for a backfill, and trades
#: the exchange no longer serves cannot hold a pair back for longer.
GAP_HOLD_MS = 15_000
#: Trades per step of the scan for holes in a symbol's ids.
CONTIGUOUS_PAGE = 50_000
_BAR_FIELDS = ["open", "high", "low", "close", "volume", "trades"]


def now_ms() -> int:
    return int(time.time() * 1000)


# -- resampling ---------------------------------------------------------------


#: The ticks of the widest bars the last resampling run of this process rebuilt (see ``WidestBarTicks``).
_widest_bars = WidestBarTicks()


def bars_resample(*, max_ticks: int = 200_000) -> int:
    """Turn the ticks stored since the last run into 1s/1m/5m bars; return how many were read.

    Every bar a new tick falls in is rebuilt from all of its stored ticks and
    upserted, so a late (backfilled) tick re-opens its bar and the rows always
    equal a rebuild from scratch. "Since the last run" is by tick id, which holds
    because ``ticks_store`` makes ids visible in id order, whatever the number of
    ingestion processes. The stored ticks of a bar are those up to the newest id
    read: the ones the last run kept (``WidestBarTicks``) and the new ones, or else
    read again. The ticks move as numpy columns, never as a Python object each.
    """
    started = now_ms()
    # The feeds' statements first, then the ticks: a statement commits with the
    # ticks it speaks of, so every tick it covers is among those read below.
    stated = dict(Symbol.objects.filter(closed_through__isnull=False).values_list("name", "closed_through"))
    watermark, _ = Watermark.objects.get_or_create(name=TICK_WATERMARK)
    kept = _widest_bars.take(_resampled_as_of(watermark))
    new = _ticks_after(watermark.value, max_ticks)
    if not new:
        _widest_bars.keep(_resampled_as_of(watermark), kept)
        _watermark_raise(RESAMPLED_AT_WATERMARK, started)
        _statements_resampled(stated)
        return 0
    read = sum(len(ticks) for ticks in new.values())
    through = max(int(ticks["id"][-1]) for ticks in new.values())
    # Intervals nest (1s in 1m in 5m), so the stored ticks of the widest affected
    # bars hold those of every narrower one: one set serves all three. Each is
    # kept in time order, so a narrower bar's ticks are a slice of it.
    widest = INTERVALS[max(INTERVALS, key=INTERVALS.__getitem__)]
    stored: dict[tuple[str, int], np.ndarray] = {}
    for symbol, ticks in new.items():
        opens = ticks["timestamp"] - ticks["timestamp"] % widest
        unkept = []
        for open_time in np.unique(opens).tolist():
            earlier = kept.get((symbol, open_time))
            if earlier is None:
                unkept.append(open_time)
            else:
                stored[(symbol, open_time)] = in_time_order(np.concatenate([earlier, ticks[opens == open_time]]))
        for start, end in _spans(unkept, widest):
            rows = _ticks_between(symbol, start, end, through_id=through)
            row_opens = rows["timestamp"] - rows["timestamp"] % widest
            for open_time in range(start, end, widest):
                stored[(symbol, open_time)] = in_time_order(rows[row_opens == open_time])
    bars: dict[str, list] = {}
    for interval, length in INTERVALS.items():
        touched = {symbol: np.unique(t["timestamp"] - t["timestamp"] % length) for symbol, t in new.items()}
        bars[interval] = []
        for (symbol, _), ticks in sorted(stored.items()):
            if length < widest:  # the widest bars are those of ``stored``, all touched
                mine = touched[symbol]
                # The touched bars of this one start at or after the first touched open time.
                ticks = ticks[int(np.searchsorted(ticks["timestamp"], mine[0], side="left")) :]
                ticks = ticks[np.isin(ticks["timestamp"] - ticks["timestamp"] % length, mine)]
            bars[interval].extend(build_bars_of_symbol(symbol, ticks, interval))
    # Read before the transaction: on SQLite it holds the one write lock, which
    # the tick writer waits for.
    contiguous = {symbol: _contiguous_through(symbol, ticks, through) for symbol, ticks in new.items()}
    with transaction.atomic():
        for interval in INTERVALS:
            bars_upsert(bars[interval])
        watermark.value = through
        watermark.save(update_fields=["value", "updated_at"])
        for symbol, (last_id, complete) in contiguous.items():
            Watermark.objects.update_or_create(name=f"{CONTIGUOUS_WATERMARK}.{symbol}", defaults={"value": last_id})
            if complete is not None:
                _watermark_raise(f"{EVENT_TIME_WATERMARK}.{symbol}", complete)
        _watermark_raise(EVENT_TIME_WATERMARK, max(int(ticks["timestamp"].max()) for ticks in new.values()))
        if read < max_ticks:  # everything stored before the start is in the bars
            _watermark_raise(RESAMPLED_AT_WATERMARK, started)
            _statements_resampled(stated)
    _widest_bars.keep(_resampled_as_of(watermark), stored)
    return read


def _resampled_as_of(watermark: Watermark) -> tuple[str, int, Any]:
    """What the resampling's tick watermark is as of: database, value, and the save that set it."""
    return (str(connection.settings_dict["NAME"]), watermark.value, watermark.updated_at)


def _spans(open_times: list[int], length: int) -> list[tuple[int, int]]:
    """Sorted open times of bars of ``length`` as ``[start, end)`` ranges, adjacent bars merged."""
    spans: list[tuple[int, int]] = []
    for t in sorted(open_times):
        if spans and spans[-1][1] == t:
            spans[-1] = (spans[-1][0], t + length)
        else:
            spans.append((t, t + length))
    return spans


def _tick_table() -> tuple[str, Callable[[str], str]]:
    return connection.ops.quote_name(Tick._meta.db_table), connection.ops.quote_name


def _ticks_after(after_id: int, limit: int) -> dict[str, np.ndarray]:
    """Up to ``limit`` ticks with an id above ``after_id``, in id order, as ``TICK_COLUMNS`` per symbol.

    Those this process's tick writer has just stored come from its record
    (``ingestion.journal``), as far as it holds every id from ``after_id`` on and
    the table as many rows in them; the rest, and all on PostgreSQL, are read.
    """
    table, qn = _tick_table()
    columns = ", ".join(qn(c) for c in ("id", "timestamp", "symbol", "price", "quantity", "trade_id"))
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX({qn('id')}) FROM {table}")
            (newest,) = cursor.fetchone()
            if newest is None or newest <= after_id:
                return {}
            runs = []
            if newest - after_id <= limit:
                runs = stored_ticks.between(str(connection.settings_dict["NAME"]), after_id, newest)
            if runs:
                recorded = runs[-1].last_id
                cursor.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE {qn('id')} > %s AND {qn('id')} <= %s", [after_id, recorded]
                )
                if cursor.fetchone()[0] == recorded - after_id:
                    # The rest (committed, not recorded yet) is read: the same ids as a read of them all.
                    cursor.execute(
                        f"SELECT {columns} FROM {table} WHERE {qn('id')} > %s AND {qn('id')} <= %s ORDER BY {qn('id')}",
                        [recorded, newest],
                    )
                    return _columns_by_symbol([*_runs_as_columns(runs), *_rows_as_columns(cursor.fetchall())])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {qn('id')} > %s ORDER BY {qn('id')} LIMIT %s", [after_id, limit]
        )
        return _columns_by_symbol(_rows_as_columns(cursor.fetchall()))


_ROW_DTYPE = np.dtype([*((name, TICK_COLUMNS[name]) for name in ("id", "timestamp")), ("symbol", object),
                       *((name, TICK_COLUMNS[name]) for name in ("price", "quantity", "trade_id"))])  # fmt: skip


def _rows_as_columns(rows: list[tuple]) -> list[tuple[str, np.ndarray]]:
    """Rows ``(id, timestamp, symbol, price, quantity, trade_id)`` as ``TICK_COLUMNS`` per symbol."""
    if not rows:
        return []
    both = np.array(rows, dtype=_ROW_DTYPE)
    parts = []
    for symbol in sorted(set(both["symbol"].tolist())):
        mine = both[both["symbol"] == symbol]
        ticks = np.empty(len(mine), dtype=TICK_COLUMNS)
        for name in TICK_COLUMNS.names:
            ticks[name] = mine[name]
        parts.append((symbol, ticks))
    return parts


def _columns_by_symbol(parts: list[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Parts of ``TICK_COLUMNS`` per symbol, given in id order, joined per symbol."""
    by_symbol: dict[str, list[np.ndarray]] = {}
    for symbol, ticks in parts:
        by_symbol.setdefault(symbol, []).append(ticks)
    return {symbol: np.concatenate(by_symbol[symbol]) for symbol in sorted(by_symbol)}


def _runs_as_columns(runs: list[Run]) -> list[tuple[str, np.ndarray]]:
    """The ticks of ``runs`` (each stored with consecutive ids) as ``TICK_COLUMNS``, a part per run."""
    parts = []
    for run in runs:
        timestamps, _, prices, quantities, trade_ids = zip(*run.ticks, strict=True)
        ticks = np.empty(len(run.ticks), dtype=TICK_COLUMNS)
        ticks["id"] = np.arange(run.first_id, run.first_id + len(run.ticks))
        ticks["timestamp"], ticks["price"], ticks["quantity"] = timestamps, prices, quantities
        ticks["trade_id"] = trade_ids
        parts.append((run.symbol, ticks))
    return parts


def _ticks_between(symbol: str, start: int, end: int, *, through_id: int) -> np.ndarray:
    """The stored ticks of ``symbol`` with ``start <= timestamp < end`` and an id up to ``through_id``."""
    table, qn = _tick_table()
    columns = ", ".join(qn(c) for c in TICK_COLUMNS.names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {qn('symbol')} = %s AND {qn('timestamp')} >= %s "
            f"AND {qn('timestamp')} < %s AND {qn('id')} <= %s",
            [symbol, start, end, through_id],
        )
        return np.array(cursor.fetchall(), dtype=TICK_COLUMNS)


def _statements_resampled(stated: dict[str, int]) -> None:
    """Record the feeds' statements a finished resampling run has built the bars of."""
    for symbol, closed_through in stated.items():
        _watermark_raise(f"{CLOSED_WATERMARK}.{symbol}", closed_through)


def _contiguous_through(symbol: str, new: np.ndarray, through: int) -> tuple[int, int | None]:
    """The trade id up to which every trade of ``symbol`` is stored, and its trade time (ms, None if unknown).

    Aggregate ids are contiguous per symbol, so a hole is a trade not stored yet:
    after a reconnect the live trades are stored before the backfill brings the
    ones in between. Bars must not close on the live trades' time while the hole
    is open, or the snapshot of those bars would be computed without them. A hole
    behind more than ``GAP_HOLD_MS`` of newer trades is given up on (logged).
    The scan starts where the last run's ended (``CONTIGUOUS_WATERMARK``), or at
    the first of the ``new`` ticks (``TICK_COLUMNS``, row ids up to ``through``);
    the caller records where this one ends. When the stored trades past the start
    are all among the new ticks (counted), it scans those, else the table.
    """
    page = CONTIGUOUS_PAGE
    mark = selectors.watermark_value(f"{CONTIGUOUS_WATERMARK}.{symbol}")
    last_id = int(new["trade_id"].min()) - 1 if mark is None else mark
    table, qn = _tick_table()
    ahead = new[new["trade_id"] > last_id]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE {qn('symbol')} = %s AND {qn('trade_id')} > %s AND {qn('id')} <= %s",
            [symbol, last_id, through],
        )
        (stored,) = cursor.fetchone()
    if stored == len(ahead):
        if len(ahead) > 1 and not np.all(ahead["trade_id"][1:] > ahead["trade_id"][:-1]):
            ahead = ahead[np.argsort(ahead["trade_id"], kind="stable")]
        ahead_ids, ahead_times = ahead["trade_id"], ahead["timestamp"]

        def trades_after(after: int) -> tuple[np.ndarray, np.ndarray]:
            first = int(np.searchsorted(ahead_ids, after, side="right"))
            return ahead_ids[first : first + page], ahead_times[first : first + page]
    else:
        sql = (
            f"SELECT {qn('trade_id')}, {qn('timestamp')} FROM {table} WHERE {qn('symbol')} = %s "
            f"AND {qn('trade_id')} > %s ORDER BY {qn('trade_id')} LIMIT %s"
        )

        def trades_after(after: int) -> tuple[np.ndarray, np.ndarray]:
            with connection.cursor() as cursor:
                cursor.execute(sql, [symbol, after, page])
                rows = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
            return rows[:, 0], rows[:, 1]

    complete = None
    while True:
        ids, times = trades_after(last_id)
        # Ids are unique and ascending: the run without a hole is where they count up from last_id + 1.
        holes = np.flatnonzero(ids != np.arange(last_id + 1, last_id + 1 + len(ids)))
        contiguous = int(holes[0]) if len(holes) else len(ids)
        if contiguous:
            last_id, complete = int(ids[contiguous - 1]), int(times[contiguous - 1])
        if not len(holes):
            if len(ids) < page:
                break
            continue
        hole = (int(ids[contiguous]), int(times[contiguous]))
        newest = int(times[-1])
        held_since = complete if complete is not None else hole[1]
        if newest - held_since <= GAP_HOLD_MS:
            break
        logger.warning(
            "%s: trades %d..%d are still missing behind %.0f s of newer trades; bars close without them",
            symbol, last_id + 1, hole[0] - 1, (newest - held_since) / 1000,
        )  # fmt: skip
        last_id = hole[0] - 1
    return last_id, complete


def _watermark_raise(name: str, value: int) -> None:
    Watermark.objects.get_or_create(name=name)
    Watermark.objects.filter(name=name, value__lt=value).update(value=value)


def bars_upsert(bars: list) -> None:
    Bar.objects.bulk_create(
        [Bar(**bar._asdict()) for bar in bars],
        update_conflicts=True,
        unique_fields=["symbol", "interval", "open_time"],
        update_fields=_BAR_FIELDS,
        batch_size=2000,
    )


def event_time() -> int | None:
    """Newest trade time the bars have seen (ms), of any symbol."""
    return selectors.watermark_value(EVENT_TIME_WATERMARK) or None


def _watermarks_by_symbol(prefix: str) -> dict[str, int]:
    rows = Watermark.objects.filter(name__startswith=f"{prefix}.").values_list("name", "value")
    return {name.removeprefix(f"{prefix}."): value for name, value in rows}


def event_times() -> dict[str, int]:
    """Newest trade time the bars have seen (ms), per symbol."""
    return _watermarks_by_symbol(EVENT_TIME_WATERMARK)


def closed_throughs() -> dict[str, int]:
    """Per symbol (ms), the feed's statement the bars are built on: every earlier trade is in them."""
    return _watermarks_by_symbol(CLOSED_WATERMARK)


class EventClock:
    """What closes each pair's bars, read once per cycle.

    A leg's bars close on what its feed states (``closed_through``): with every
    batch of ticks the feed states the trade time before which it has every trade
    of the symbol, from the stream itself (the symbol's own contiguous ids, the
    other trades and the 1 s mark price on the connection as the exchange's
    clock), never while ids are missing or after a reconnect before the catch-up;
    the resampling records the statements it has built the bars of. So no bar
    closes before its trades are stored and in the bars, however busy the machine
    or slow the backfill, and a quiet market still closes its bars every second.

    Ticks no feed states anything of (replays, tests, an older feed) close on the
    rule before statements: event time (``feed_event_time`` over the trades stored
    without a hole, ``_contiguous_through``), or the wall clock while the leg's feed
    is live and the resampling has caught up.
    """

    def __init__(self) -> None:
        self.stated = closed_throughs()
        self.newest = event_times()
        self.feeds = feeds_state()
        self.resampled_at = selectors.watermark_value(RESAMPLED_AT_WATERMARK)

    def closed(self, pair: Pair, now: int | None) -> int | None:
        """Open time of the pair's newest bar closed on both legs, or None."""
        interval_ms = INTERVALS[pair.interval]
        newest = []
        for leg in pair.symbols:
            if leg in self.stated:
                closed = last_closed_open_time(self.stated[leg], interval_ms)
            else:
                event = feed_event_time([leg], self.newest, [feed.symbols for feed in self.feeds])
                closed = last_closed_open_time(event, interval_ms, now_ms=self._wall_clock(leg, now))
            if closed is None:
                return None
            newest.append(closed)
        return min(newest)

    def _wall_clock(self, leg: str, now: int | None) -> int | None:
        feed = next((f for f in self.feeds if leg in f.symbols), None)
        if feed is not None and not feed.live:
            return None
        if now is None or self.resampled_at is None:  # no resampling yet: nothing to wait for
            return now
        return min(now, self.resampled_at)


# -- snapshots ----------------------------------------------------------------


def _floats(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    floats: list[float | None] = values.tolist()
    if not np.isfinite(values).all():
        floats = [v if math.isfinite(v) else None for v in floats]
    return floats


# -- statistics off the web server's GIL ---------------------------------------------

#: What computes a window's statistics: ``analytics.stats.pair_stats`` itself, or a
#: ``StatsProcess``'s (same numbers, another process).
PairStatsOf = Callable[[np.ndarray, np.ndarray], PairStats]


class StatsProcess:
    """``pair_stats`` computed in a child process (embedded mode: ``runpairs``).

    In embedded mode the snapshot cycle runs in a thread of the web server's
    process, and the statistics would hold the GIL against the pages and the API
    (about 0.3 ms a window at 300 bars, 2 ms at 5,000). ``analytics.stats`` is pure
    (no Django), so a spawned child computes it (``pair_stats_served``); the cycle's
    thread hands it each window over a pipe and waits for the answer without the
    GIL, one round trip and no other thread of this process involved. Distributed
    mode needs none: the Celery worker is a process of its own. A child that dies
    is replaced; the window it was computing is computed in this process meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one request at a time on the pipe
        self._process, self._connection = self._spawn()

    @staticmethod
    def _spawn() -> tuple[Any, Connection]:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(target=pair_stats_served, args=(theirs,), name="pairs-statistics", daemon=True)
        process.start()
        theirs.close()
        return process, mine

    def pair_stats(self, y: np.ndarray, x: np.ndarray) -> PairStats:
        with self._lock:
            try:
                self._connection.send((y, x))
                computed, answer = self._connection.recv()
            except (EOFError, OSError):
                logger.warning("the statistics process died; computing in this process and starting a new one")
                self._stop()
                self._process, self._connection = self._spawn()
                computed, answer = None, None
        if computed is None:
            return pair_stats(y, x)
        if not computed:
            raise answer
        return answer

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._connection.send(None)  # the child's loop ends
            self._stop()

    def _stop(self) -> None:
        self._connection.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _statistics(y: np.ndarray, x: np.ndarray, interval_ms: int, stats_of: PairStatsOf | None) -> Statistics:
    """The statistics of an aligned window, half-life also in seconds (``stats_of``: default ``pair_stats``)."""
    return statistics_of((stats_of or pair_stats)(y, x), interval_ms)


class PairWindow(NamedTuple):
    """A pair's window of aligned closes at a moment: what its snapshot is computed on."""

    aligned: Any  # bars.Aligned, or None before any bar closed
    closed: int | None
    n: int
    as_of: int | None
    stale_legs: list[str]


class ClosesRead:
    """A leg's window of closes, read once however many pairs of a cycle have the leg.

    ``selectors.closes_window`` keyed by all its arguments, so each pair gets exactly
    what its own read would give: 200 pairs over 40 symbols read 40 windows a cycle,
    not 400. A snapshot cycle makes one (``snapshots_compute``) and drops it at its end.
    """

    #: Windows kept at most (a catch-up reads one per symbol and bar): then it starts over.
    MAX_WINDOWS = 2_000

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str, int, int], LegCloses] = {}

    def __call__(self, *, symbol: str, interval: str, as_of: int, limit: int) -> LegCloses:
        key = (symbol, interval, as_of, limit)
        closes = self._windows.get(key)
        if closes is None:
            if len(self._windows) >= self.MAX_WINDOWS:
                self._windows.clear()
            closes = self._windows[key] = selectors.closes_window(
                symbol=symbol, interval=interval, as_of=as_of, limit=limit
            )
        return closes


def pair_window_load(*, pair: Pair, closed: int | None, closes: ClosesRead | None = None) -> PairWindow:
    """The window of bars up to ``closed`` (an open time) the snapshot of ``pair`` is computed on.

    Database reads, no statistics. Follows docs/analytics.md ("The pair's aligned
    series", "Staleness"): aligned closes (forward fill, leading points dropped),
    the last ``window`` grid points ending at the newest closed bar. A leg whose
    newest own bar is more than ``ANALYTICS_STALE_BARS`` intervals behind marks it
    stale. ``closes``: the cycle's reads, shared by its pairs (default: read here).
    """
    interval_ms = INTERVALS[pair.interval]
    aligned = None
    if closed is not None:
        aligned = _aligned(pair=pair, as_of=closed, window=pair.window, closes=closes)
    n = aligned.n if aligned is not None else 0
    stale_legs = []
    if aligned is not None and closed is not None:
        for symbol, last in ((pair.symbol_a, aligned.last_a), (pair.symbol_b, aligned.last_b)):
            if last is None or (closed - last) // interval_ms > settings.ANALYTICS_STALE_BARS:
                stale_legs.append(symbol)
    return PairWindow(aligned, closed, n, int(aligned.times[-1]) if n else None, stale_legs)


def _aligned(*, pair: Pair, as_of: int, window: int, closes: ClosesRead | None = None):
    read = selectors.closes_window if closes is None else closes
    legs = [read(symbol=symbol, interval=pair.interval, as_of=as_of, limit=window) for symbol in pair.symbols]
    return align_closes(legs[0], legs[1], as_of=as_of, window=window)


def thresholds_of(pair: Pair) -> Thresholds:
    """The alert thresholds ``pair``'s snapshots are computed under."""
    return Thresholds(
        entry_z=pair.entry_z,
        exit_z=pair.exit_z,
        min_correlation=pair.min_correlation,
        max_adf_pvalue=pair.max_adf_pvalue,
        max_coint_pvalue=pair.max_coint_pvalue,
        confirm_bars=pair.confirm_bars,
    )


def _settings_of(pair: Pair) -> dict[str, Any]:
    """What a snapshot takes from its pair (the ``snapshot_build``/``snapshot_placeholder`` arguments)."""
    return {
        "pair": pair.id,
        "symbols": (pair.symbol_a, pair.symbol_b),
        "interval": pair.interval,
        "window": pair.window,
        "min_bars": pair.min_bars,
        "thresholds": thresholds_of(pair),
    }


def snapshot_placeholder_of(pair: Pair) -> PairSnapshot:
    """``pair``'s snapshot before anything was computed: every number null."""
    return snapshot_placeholder(**_settings_of(pair))


def _series(
    pair: Pair,
    aligned: Any,
    n: int,
    as_of: int | None,
    model: Statistics | None,
    signal: list[float | None] | None = None,
) -> dict[str, Any]:
    """The chart series of a window: prices, and the spread and z-score under ``model``'s hedge ratio, mean and std.

    The model is the window's own statistics (or a stored snapshot of the same window):
    this is arithmetic on it, never an estimation. ``signal``: each bar's signal z as
    recorded when it closed (``_signals``); null throughout when not given.
    """
    spread = zscores = None
    if model is not None and model.hedge_ratio is not None and n:
        spread = aligned.y - model.hedge_ratio * aligned.x
        zscores = zscore_series(spread, model.spread_mean, model.spread_std)
    return {
        "pair": pair.id,
        "as_of": as_of,
        "t": aligned.times.tolist() if n else [],
        "price_a": aligned.y.tolist() if n else [],
        "price_b": aligned.x.tolist() if n else [],
        "spread": _floats(spread, n),
        "zscore": _floats(zscores, n),
        "signal_zscore": signal if signal is not None else [None] * n,
    }


def _signals(
    *, pair: Pair, times: list[int], newest: PairSnapshot | None, previous_series: dict[str, Any] | None = None
) -> list[float | None]:
    """Each bar's signal z as it was when the bar closed, never scored again (docs/analytics.md, "The signal").

    From the series the pages already have where it covers the bars, else from the
    snapshot history; ``newest``'s own value for its bar (it may not be recorded yet).
    A bar without a recorded snapshot has none.
    """
    values: dict[int, float | None] = {}
    if previous_series and previous_series.get("signal_zscore") is not None:
        values = dict(zip(previous_series["t"], previous_series["signal_zscore"], strict=False))
    if newest is not None and newest.as_of is not None:
        values[newest.as_of] = newest.signal_zscore
    missing = [t for t in times if t not in values]
    if missing:
        values.update(selectors.snapshot_signals(pair.id, missing[0], missing[-1]))
    return [values.get(t) for t in times]


def pair_snapshot_build(
    *,
    pair: Pair,
    event_time_ms: int | None = None,
    now: int | None = None,
    window: PairWindow | None = None,
    statistics_of: PairSnapshot | None = None,
    stats_of: PairStatsOf | None = None,
    previous: PairSnapshot | None = None,
    previous_series: dict[str, Any] | None = None,
    closes: ClosesRead | None = None,
) -> tuple[PairSnapshot, dict]:
    """The snapshot and chart series of ``pair`` on its window of closed bars.

    The window is ``window``, or the bars closed at event time ``event_time_ms`` or
    wall clock ``now`` (``bars.last_closed_open_time``). Statistics only once
    ``n >= min_bars``. ``statistics_of``: a snapshot of this very window (same bar,
    same bars) whose statistics are taken instead of computed again: each bar's
    statistics are computed once. ``stats_of`` computes them (see ``PairStatsOf``;
    default ``pair_stats`` in this process). ``previous``: the snapshot of the
    previous grid point when the caller has it (its model scores the newest bar,
    its run is continued; see ``_formation``); ``previous_series``: the series the
    pages have, whose recorded signal z the new one keeps; ``closes``: the cycle's
    reads of the bars (``ClosesRead``).
    """
    if window is None:
        closed = last_closed_open_time(event_time_ms, INTERVALS[pair.interval], now_ms=now)
        window = pair_window_load(pair=pair, closed=closed, closes=closes)
    aligned, n = window.aligned, window.n
    statistics = None
    if n >= pair.min_bars:
        if statistics_of is not None:
            statistics = statistics_of.statistics
        else:
            statistics = _statistics(aligned.y, aligned.x, INTERVALS[pair.interval], stats_of)
    formation, previous_run = _formation(pair, window, previous, closes) if statistics is not None else (None, 0)
    snapshot = snapshot_build(
        **_settings_of(pair),
        as_of=window.as_of,
        n=n,
        last_prices=(float(aligned.y[-1]), float(aligned.x[-1])) if n else None,
        stale_legs=window.stale_legs,
        statistics=statistics,
        computed_at=now_ms(),
        formation=formation,
        previous_run=previous_run,
    )
    times = aligned.times.tolist() if n else []
    signal = _signals(pair=pair, times=times, newest=snapshot, previous_series=previous_series)
    return snapshot, _series(pair, aligned, n, window.as_of, snapshot.statistics if snapshot.ready else None, signal)


def _formation(
    pair: Pair, window: PairWindow, previous: PairSnapshot | None, closes: ClosesRead | None = None
) -> tuple[Statistics | None, int]:
    """The previous grid point's model and run: its statistics (None unless ready) and ``related_run``.

    From ``previous`` when it is that grid point's snapshot under the pair's
    settings, else from its history row; with neither (the first snapshot, a
    changed window), the formation window's statistics are computed from its bars
    and the run starts over (docs/analytics.md, "The signal"): the hedge ratio, spread
    mean and std that ``pair_stats`` gives, without its tests.
    """
    if window.n < 2:
        return None, 0
    at = int(window.aligned.times[-2])

    def usable(snapshot: PairSnapshot | None) -> bool:
        return (
            snapshot is not None
            and snapshot.as_of == at
            and snapshot.interval == pair.interval
            and snapshot.window == pair.window
        )

    if not usable(previous):
        previous = _typed(selectors.snapshot_recorded_at(pair.id, at))
    if previous is not None and usable(previous):
        return (previous.statistics if previous.ready else None), previous.related_run
    formation = pair_window_load(pair=pair, closed=at, closes=closes)
    if formation.n < pair.min_bars:
        return None, 0
    model = spread_model(formation.aligned.y, formation.aligned.x)  # its model only: no tests are needed
    if model is None:
        return None, 0
    return Statistics(hedge_ratio=model.hedge_ratio, spread_mean=model.spread_mean, spread_std=model.spread_std), 0


def pair_snapshot_at(
    *,
    pair: Pair,
    closed: int | None,
    stats_of: PairStatsOf | None = None,
    previous: PairSnapshot | None = None,
    closes: ClosesRead | None = None,
) -> tuple[PairSnapshot, dict]:
    """``pair_snapshot_build`` on the bars up to ``closed`` (an open time)."""
    window = pair_window_load(pair=pair, closed=closed, closes=closes)
    return pair_snapshot_build(pair=pair, window=window, stats_of=stats_of, previous=previous, closes=closes)


def _same_window(previous: PairSnapshot | None, pair: Pair, window: PairWindow) -> bool:
    """Whether ``previous`` was computed on this very window (same bar, length and settings)."""
    return (
        previous is not None
        and previous.as_of == window.as_of
        and previous.n == window.n
        and previous.interval == pair.interval
        and previous.window == pair.window
        and previous.ready == (window.n >= pair.min_bars)
        and previous.source == SOURCE_CYCLE
    )


#: Told each new snapshot once it is cached: (the snapshot, its series, the series cached before).
Publish = Callable[[PairSnapshot, dict[str, Any], dict[str, Any] | None], None]
#: Told each bar's snapshot once it is recorded, in bar order (bars caught up on included).
Recorded = Callable[[Pair, PairSnapshot], None]


def _nothing(*args: Any) -> None:
    return None


def snapshots_compute(
    *,
    now: int | None = None,
    force: bool = False,
    publish: Publish = _nothing,
    recorded: Recorded = _nothing,
    stats_of: PairStatsOf | None = None,
) -> list[PairSnapshot]:
    """Compute, cache, record and publish the snapshot of every active pair whose window moved.

    The only place statistics are computed, and once per bar and pair: a cycle on a
    window that has not moved costs its database reads only, and a new publish of
    the same bar (thresholds edited, a leg turning stale, ``force``) reuses them.
    What follows a snapshot (the pages, the alert rule) is handed in by the
    pipeline: ``publish`` right after the cache (pages first: the history row and
    the rule may wait on the database), ``recorded`` after each history row.
    """
    now = now_ms() if now is None else now
    clock = EventClock()
    closes = ClosesRead()
    published = []
    pairs = selectors.pairs_active()
    # Each pair's newest history row, for all pairs in one read: only the cycle records
    # snapshots, a pair's at its own turn, so this is what each turn would read.
    recorded_latest = selectors.snapshots_recorded_latest([pair.id for pair in pairs])
    for pair in pairs:
        previous = _typed(selectors.snapshot_cached(pair.id))
        # The bars since the newest *recorded* one get their row and rule step: a worker
        # killed between caching a snapshot and recording it left a cached bar without.
        resumed_from = _typed(recorded_latest.get(pair.id)) or previous
        after, closed = _catch_up(pair=pair, previous=resumed_from, closed=clock.closed(pair, now))
        window = pair_window_load(pair=pair, closed=closed, closes=closes)
        unchanged = (
            _same_window(previous, pair, window)
            and previous.thresholds == thresholds_of(pair)
            and previous.stale == bool(window.stale_legs)
        )
        if unchanged and not force:
            continue
        missed = _snapshots_missed(
            pair=pair, after=after, before=window.as_of, previous=resumed_from, stats_of=stats_of, closes=closes
        )
        same = next((s for s in (previous, resumed_from) if _same_window(s, pair, window)), None)
        previous_series = selectors.series_cached(pair.id)  # what open pages have: the base of a delta
        for bar in missed:
            snapshot_record(snapshot=bar)
        snapshot, series = pair_snapshot_build(
            pair=pair,
            window=window,
            statistics_of=same,
            stats_of=stats_of,
            previous=missed[-1] if missed else resumed_from,
            previous_series=previous_series,
            closes=closes,
        )
        for bar in missed:
            recorded(pair, bar)
        snapshot_cache(snapshot=snapshot, series=series)
        publish(snapshot, series, previous_series)
        snapshot_record(snapshot=snapshot)
        recorded(pair, snapshot)
        published.append(snapshot)
    _watermark_raise(selectors.SNAPSHOTS_RAN_AT_WATERMARK, now_ms())  # health: the cycle is alive
    return published


#: Bars one cycle catches up on at most (a statistics computation each); the next cycles go on.
CATCH_UP_PER_CYCLE = 120
#: Bars caught up on after an outage at most; before them, history resumes from a later bar (logged).
CATCH_UP_MAX = 3600


def _typed(data: dict[str, Any] | None) -> PairSnapshot | None:
    """A cached or recorded snapshot's JSON, read back (None when there is none, or it cannot be read)."""
    if data is None:
        return None
    try:
        return snapshot_from_json(data)
    except (KeyError, TypeError, ValueError) as exc:  # computed again, as if there were none
        logger.warning("a stored snapshot of pair %s could not be read (%s); computing it again", data.get("pair"), exc)
        return None


def _catch_up(*, pair: Pair, previous: PairSnapshot | None, closed: int | None) -> tuple[int | None, int | None]:
    """The bars this cycle computes: those after the first value, up to the second (open times).

    After an outage (a worker down, a long backfill holding the bars) every bar
    still gets its snapshot and its alert-rule step, in order, ``CATCH_UP_PER_CYCLE``
    a cycle. An outage longer than ``CATCH_UP_MAX`` bars is caught up on its last
    ``CATCH_UP_MAX`` bars only. ``after`` is None when there is nothing to catch up
    (no previous snapshot, or one of other settings).
    """
    if previous is None or previous.as_of is None or closed is None:
        return None, closed
    if previous.interval != pair.interval or previous.window != pair.window:
        return None, closed
    interval_ms = INTERVALS[pair.interval]
    after = previous.as_of
    behind = (closed - after) // interval_ms
    if behind > CATCH_UP_MAX:
        logger.warning("%s: %d bars without a snapshot; catching up on the last %d only", pair, behind, CATCH_UP_MAX)
        after = closed - CATCH_UP_MAX * interval_ms
        behind = CATCH_UP_MAX
    if behind > CATCH_UP_PER_CYCLE:
        return after, after + CATCH_UP_PER_CYCLE * interval_ms
    return after, closed


def _snapshots_missed(
    *,
    pair: Pair,
    after: int | None,
    before: int | None,
    previous: PairSnapshot | None,
    stats_of: PairStatsOf | None,
    closes: ClosesRead | None = None,
) -> list[PairSnapshot]:
    """Snapshots of the bars that closed after ``after`` and before ``before``, each the next one's ``previous``.

    Cycles are a second apart but not in step with the bars (a busy machine, Celery
    beat's own phase, a worker restarting, a backfill holding bars), so now and then
    several bars close between cycles. Every bar still gets its history row and
    its alert-rule step, in order (``_catch_up`` keeps their number bounded).
    """
    if after is None or before is None:
        return []
    interval_ms = INTERVALS[pair.interval]
    snapshots = []
    for open_time in range(after + interval_ms, before, interval_ms):
        snapshot, _ = pair_snapshot_at(pair=pair, closed=open_time, stats_of=stats_of, previous=previous, closes=closes)
        if snapshot.as_of == open_time:
            snapshots.append(snapshot)
            previous = snapshot
    return snapshots


#: How long a series derived from a recorded snapshot is kept (s); it is keyed by
#: the snapshot's bar, so it never goes out of date, only out of use.
RECORDED_SERIES_TTL = 600


def pair_snapshot_current(*, pair: Pair) -> dict[str, Any]:
    """The latest snapshot of ``pair``, computing no statistics (only the snapshot cycle does).

    From the cache when the cycle has published one; otherwise (a cache emptied by a
    restart, an inactive pair, before the first cycle) the newest recorded snapshot,
    marked ``source: "history"``; with nothing recorded, a snapshot with every
    statistic null, ``computed_at`` null and ``source: "none"``.
    """
    snapshot = selectors.snapshot_cached(pair.id)
    if snapshot is not None:
        return snapshot
    recorded = _typed(selectors.snapshot_recorded_latest(pair.id))
    if recorded is None:
        return snapshot_json(snapshot_placeholder_of(pair))
    return snapshot_json(recorded.with_source(SOURCE_HISTORY))


def pair_current(*, pair: Pair) -> tuple[dict[str, Any], dict[str, Any]]:
    """The latest snapshot and chart series, for pages, the API, CSV and new websockets.

    ``pair_snapshot_current``'s snapshot, with the series the cycle cached with it;
    for a recorded snapshot, its series rebuilt from the bars under the snapshot's own
    hedge ratio, mean and std (no statistics), cached per bar, so that many requests
    cost one rebuild.
    """
    snapshot, series = selectors.snapshot_cached(pair.id), selectors.series_cached(pair.id)
    if snapshot is not None and series is not None:
        return snapshot, series
    if snapshot is None:
        snapshot = pair_snapshot_current(pair=pair)
    if snapshot.get("as_of") is None:
        empty = {name: [] for name in ("t", "price_a", "price_b", "spread", "zscore", "signal_zscore")}
        return snapshot, {"pair": pair.id, "as_of": None, **empty}
    key = selectors.RECORDED_SERIES_KEY.format(pair_id=pair.id, as_of=snapshot["as_of"])
    series = selectors.cached(key)
    if series is None:
        series = _series_of_recorded(pair=pair, snapshot=snapshot_from_json(snapshot))
        try:
            cache.set(key, series, timeout=RECORDED_SERIES_TTL)
        except Exception as exc:  # served all the same
            logger.warning("series of pair %s not cached: the cache did not answer (%s)", pair.id, exc)
    return snapshot, series


def _series_of_recorded(*, pair: Pair, snapshot: PairSnapshot) -> dict[str, Any]:
    """The chart series of a recorded snapshot: its window of bars under its own model (no statistics)."""
    as_of = snapshot.as_of
    assert as_of is not None, "only a snapshot of a bar has a series"
    window = snapshot.window or pair.window
    aligned = _aligned(pair=pair, as_of=as_of, window=window)
    n = aligned.n
    signal = _signals(pair=pair, times=aligned.times.tolist() if n else [], newest=snapshot)
    if n != snapshot.n or (n and int(aligned.times[-1]) != as_of):
        # The bars of that window are gone (retention) or changed: the prices and the recorded
        # signal z, but no spread or in-sample z under a model of other bars.
        logger.info("pair %s: the bars of the snapshot at %s are no longer all stored", pair.id, as_of)
        return _series(pair, aligned, n, as_of, None, signal)
    return _series(pair, aligned, n, as_of, snapshot.statistics if snapshot.ready else None, signal)


def snapshot_cache(*, snapshot: PairSnapshot, series: dict) -> None:
    """The latest snapshot and series, where the API and new pages read them."""
    pair_id = snapshot.pair
    try:
        cache.set(selectors.SNAPSHOT_KEY.format(pair_id=pair_id), snapshot_json(snapshot), timeout=None)
        cache.set(selectors.SERIES_KEY.format(pair_id=pair_id), series, timeout=None)
    except Exception as exc:  # the history row, the alert rule and the pushes go on without it
        logger.warning("snapshot of pair %s not cached: the cache did not answer (%s)", pair_id, exc)


def snapshot_record(*, snapshot: PairSnapshot) -> None:
    """The snapshot's history row (one per pair and bar)."""
    if snapshot.as_of is None:
        return
    Snapshot.objects.bulk_create(
        [
            Snapshot(
                pair_id=snapshot.pair,
                as_of=snapshot.as_of,
                ready=snapshot.ready,
                zscore=snapshot.statistics.zscore,
                signal_zscore=snapshot.signal_zscore,
                data=snapshot_json(snapshot),
            )
        ],
        ignore_conflicts=True,  # another worker already recorded this bar
    )


# -- pairs ------------------------------------------------------------------


def pair_upsert(*, symbol_a: str, symbol_b: str, interval: str = "1s", **fields: Any) -> tuple[Pair, bool]:
    """Create the pair (or update its settings and activate it), validated like the admin form."""
    pair = Pair(symbol_a=symbol_a, symbol_b=symbol_b, interval=interval, **fields)
    pair.full_clean(validate_unique=False, validate_constraints=False)  # also normalises the symbols
    existing = Pair.objects.filter(symbol_a=pair.symbol_a, symbol_b=pair.symbol_b, interval=pair.interval).first()
    if existing is None:
        pair.save()
        return pair, True
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.active = True
    existing.full_clean(validate_unique=False, validate_constraints=False)
    existing.save()
    return existing, False


# -- warm-up from REST klines ---------------------------------------------------


#: Longest a warm-up waits out 429/418 answers (their ``Retry-After``, summed)
#: before leaving the fetch to a later run: well inside the task's time limit.
WARMUP_MAX_WAIT = 30.0
#: Cache key: until when (epoch s) the exchange asked for no more requests, after
#: a ``Retry-After`` longer than a warm-up waits; the periodic warm-up skips until then.
WARMUP_NOT_BEFORE = "pairs:warmup:not_before"


def pair_warmup_from_klines(
    *, pair: Pair, rest_url: str | None = None, now: int | None = None, max_wait: float = WARMUP_MAX_WAIT
) -> int:
    """Fetch the closed klines a 1m/5m pair's window still lacks; return the bars stored.

    Binance serves history as klines, so a 1m or 5m pair is ready at once
    instead of after hours. The in-progress kline is dropped. Kline bars never
    replace bars built from stored ticks (those are the truth once we have them).
    The klines come through the feed's REST client (``ingestion.client``), so a
    429/418 is honoured as for the backfill: its ``Retry-After`` is waited out,
    up to ``max_wait`` seconds in all, beyond which ``RateLimited`` is raised.
    """
    if pair.interval == "1s":
        return 0
    rest_url = rest_url or settings.BINANCE_REST_URL
    now = now_ms() if now is None else now
    deadline = time.monotonic() + max_wait
    stored = 0
    for symbol in pair.symbols:
        if _bars_recent(symbol, pair, now) >= pair.window:
            continue
        wait = max(0.0, deadline - time.monotonic())
        limit = min(pair.window + 1, KLINES_LIMIT)
        klines = async_to_sync(klines_fetch)(rest_url, symbol, pair.interval, limit=limit, max_wait=wait)
        closed = _bars_store_klines(symbol, pair.interval, klines, now)
        stored += closed
        logger.info("%s: warmed up %s %s with %d klines", pair, symbol, pair.interval, closed)
    return stored


def _bars_recent(symbol: str, pair: Pair, now: int) -> int:
    """How many bars of ``symbol`` at the pair's interval the window's span (and one more) holds."""
    since = now - INTERVALS[pair.interval] * (pair.window + 1)
    return Bar.objects.filter(symbol=symbol, interval=pair.interval, open_time__gte=since).count()


def _bars_store_klines(symbol: str, interval: str, klines: list[Kline], now: int) -> int:
    """Store the closed ``klines`` as bars where none is yet; return how many were offered."""
    interval_ms = INTERVALS[interval]
    bars = [
        Bar(
            symbol=symbol,
            interval=interval,
            open_time=k.open_time,
            open=k.open,
            high=k.high,
            low=k.low,
            close=k.close,
            volume=k.volume,
            trades=k.trades,
        )
        for k in klines
        if k.open_time + interval_ms <= now  # drop the kline still in progress
    ]
    Bar.objects.bulk_create(bars, ignore_conflicts=True, batch_size=2000)
    return len(bars)


def pairs_warmup(*, rest_url: str | None = None) -> int:
    """Warm up every active 1m/5m pair from klines (idempotent; cheap when nothing is missing).

    After a 429/418 whose ``Retry-After`` is longer than a warm-up waits, no run
    asks the exchange again before it has passed (``WARMUP_NOT_BEFORE``).
    """
    if time.time() < _warmup_not_before():
        return 0
    total = 0
    for pair in selectors.pairs_active():
        try:
            total += pair_warmup_from_klines(pair=pair, rest_url=rest_url)
        except RateLimited as exc:
            _warmup_hold_back(exc.retry_after)
            logger.warning("klines warm-up rate limited (%s); not asking again for %.0fs", exc, exc.retry_after)
            break
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("%s: klines warm-up failed (%s); will retry", pair, url_credentials_masked(str(exc)))
    return total


def _warmup_not_before() -> float:
    """Epoch seconds before which the exchange wants no klines request (0: ask now)."""
    try:
        return float(cache.get(WARMUP_NOT_BEFORE) or 0.0)
    except Exception as exc:  # the cache away: ask, the exchange's answer says the rest
        logger.warning("warm-up hold-back unknown (%s)", exc)
        return 0.0


def _warmup_hold_back(seconds: float) -> None:
    """Let no warm-up run (in any process) ask the exchange for ``seconds``."""
    try:
        cache.set(WARMUP_NOT_BEFORE, time.time() + seconds, timeout=math.ceil(seconds) + 1)
    except Exception as exc:
        logger.warning("warm-up hold-back not recorded (%s)", exc)


# -- housekeeping -------------------------------------------------------------


def _delete_in_batches(queryset, batch: int) -> int:
    """Delete the rows of ``queryset`` a batch at a time, so no transaction holds the database long."""
    deleted = 0
    while ids := list(queryset.values_list("id", flat=True)[:batch]):
        deleted += queryset.model.objects.filter(id__in=ids).delete()[0]
    return deleted


def housekeeping(*, batch: int = 5000, now: int | None = None) -> dict[str, int]:
    """Prune what is past its retention, in small batches; checkpoint SQLite's WAL.

    Ticks older than ``TICK_RETENTION_SECONDS`` (48 h) go, with the per-symbol
    totals kept true, and the resolved gaps among them; 1 s bars and snapshot history older than
    ``BAR_1S_RETENTION_SECONDS`` / ``SNAPSHOT_RETENTION_SECONDS`` (7 days) go.
    1m and 5m bars are kept.
    """
    now = now_ms() if now is None else now
    tick_cutoff = now - settings.TICK_RETENTION_SECONDS * 1000
    ticks_deleted = 0
    for symbol in Symbol.objects.filter(first_tick_at__lt=tick_cutoff):
        gone = _delete_in_batches(Tick.objects.filter(symbol=symbol.name, timestamp__lt=tick_cutoff), batch)
        oldest = (
            Tick.objects.filter(symbol=symbol.name).order_by("timestamp").values_list("timestamp", flat=True).first()
        )
        Symbol.objects.filter(pk=symbol.pk).update(tick_count=F("tick_count") - gone, first_tick_at=oldest)
        ticks_deleted += gone
    # Gaps are kept while the ticks around them are: a resolved one past that says nothing.
    Gap.objects.filter(resolved_at__lt=datetime.fromtimestamp(tick_cutoff / 1000, tz=UTC)).exclude(
        status=Gap.Status.OPEN
    ).delete()
    bars_deleted = _delete_in_batches(
        Bar.objects.filter(interval="1s", open_time__lt=now - settings.BAR_1S_RETENTION_SECONDS * 1000), batch
    )
    snapshots_deleted = _delete_in_batches(
        Snapshot.objects.filter(as_of__lt=now - settings.SNAPSHOT_RETENTION_SECONDS * 1000), batch
    )
    if connection.vendor == "sqlite" and not connection.in_atomic_block:  # a checkpoint needs autocommit
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    result = {"ticks_deleted": ticks_deleted, "bars_deleted": bars_deleted, "snapshots_deleted": snapshots_deleted}
    if any(result.values()):
        logger.info("housekeeping: %s", result)
    return result
