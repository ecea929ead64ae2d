"""Analytics work that touches the database or the cache: bars, snapshots, warm-up."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import httpx
import numpy as np
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ingestion.binance import KLINES_LIMIT, Kline, MalformedFrame, normalize_symbol
from ingestion.client import HISTORY_MAX_WAIT, RateLimited, RestClient, history_error, klines_fetch, klines_pages
from ingestion.history import HistoryError, history_range_check, missing_spans, open_times_range, utc_text
from ingestion.journal import Run, StoredTicks
from ingestion.models import Gap, Symbol, Tick
from ingestion.selectors import feeds_state
from ingestion.services import funding_rates_ensure, universe_resolve
from ingestion.universe import UNIVERSE_MAX, UniverseError
from pairs_project.common.masking import url_credentials_masked

from . import backtest as backtest_engine
from . import screener, selectors
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
from .models import MAX_WINDOW, Backtest, Bar, Pair, ScreenerRun, Snapshot, Watermark
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
from .stats import MIN_OBS, PairStats, pair_stats, pair_stats_served, spread_model, zscore_series

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


def bars_resample(
    *, max_ticks: int = 200_000, kept: WidestBarTicks | None = None, journal: StoredTicks | None = None
) -> int:
    """Turn the ticks stored since the last run into 1s/1m/5m bars; return how many were read.

    Every bar a new tick falls in is rebuilt from all of its stored ticks and
    upserted, so a late (backfilled) tick re-opens its bar and the rows always
    equal a rebuild from scratch. "Since the last run" is by tick id, which holds
    because ``ticks_store`` makes ids visible in id order, whatever the number of
    ingestion processes. The stored ticks of a bar are those up to the newest id
    read: the ones the last run kept (``WidestBarTicks``) and the new ones, or else
    read again. The ticks move as numpy columns, never as a Python object each.

    ``kept``: what this process's last run kept for the next (none: every bar's
    ticks are read); ``journal``: what this process's tick writer stored lately
    (``_ticks_after``). Both belong to the process's runtime.
    """
    kept_bars = kept if kept is not None else WidestBarTicks()
    started = now_ms()
    # The feeds' statements first, then the ticks: a statement commits with the
    # ticks it speaks of, so every tick it covers is among those read below.
    stated = dict(Symbol.objects.filter(closed_through__isnull=False).values_list("name", "closed_through"))
    watermark, _ = Watermark.objects.get_or_create(name=TICK_WATERMARK)
    kept = kept_bars.take(_resampled_as_of(watermark))
    new = _ticks_after(watermark.value, max_ticks, journal)
    if not new:
        kept_bars.keep(_resampled_as_of(watermark), kept)
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
    kept_bars.keep(_resampled_as_of(watermark), stored)
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


def _ticks_after(after_id: int, limit: int, journal: StoredTicks | None) -> dict[str, np.ndarray]:
    """Up to ``limit`` ticks with an id above ``after_id``, in id order, as ``TICK_COLUMNS`` per symbol.

    Those this process's tick writer has just stored come from its record
    (``journal``, see ``ingestion.journal``), as far as it holds every id from ``after_id`` on and
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
            if journal is not None and newest - after_id <= limit:
                runs = journal.between(str(connection.settings_dict["NAME"]), after_id, newest)
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
    if (closed - after) // interval_ms > CATCH_UP_PER_CYCLE:
        # Where no bar was made (the system down, the market silent) there is no snapshot to
        # miss: the catch-up starts at the first bar after the stretch, else a stretch longer
        # than a cycle's catch-up would be asked for again every cycle, for ever. (Only when
        # behind by more than a cycle: the usual cycle, a bar or two behind, reads nothing more.)
        first = selectors.bar_first_after(symbols=pair.symbols, interval=pair.interval, after=after)
        if first is not None and first <= closed:
            after = max(after, first - interval_ms)
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


# -- history, for a backtest ------------------------------------------------------

#: Intervals whose history is fetched as klines. 1 s bars are only what was built
#: from stored trades (Binance's futures klines have no 1 s interval).
HISTORY_KLINE_INTERVALS = ("1m", "5m")


def bars_history_ensure(
    symbols: Iterable[str],
    interval: str,
    start: int,
    end: int,
    *,
    rest_url: str | None = None,
    progress: Callable[[float], None] | None = None,
    now: int | None = None,
    max_wait: float = HISTORY_MAX_WAIT,
) -> dict[str, Any]:
    """Make the closed bars of ``symbols`` at ``interval`` opening in ``[start, end)`` (ms) stored; return counts.

    For a 1m or 5m interval, the open times with no stored bar are found per
    symbol and only those spans are fetched, as klines from
    ``BINANCE_REST_URL/fapi/v1/klines`` (``ingestion.client.klines_pages``:
    paged, paced by the request weight, 429/418 waited out up to ``max_wait``
    seconds), and stored page by page as bars where none is (a bar built from
    trades is never replaced). Bars still open at ``now`` are not part of the
    range, so what is stored is closed klines only and a second call fetches
    nothing. A fetch that fails half-way keeps the pages it stored (they are
    right) and raises. For ``1s`` nothing is fetched: the answer says what is
    stored. ``progress(fraction)`` follows the fetch.

    Returns ``{"interval", "start", "end", "bars", "fetched", "requests",
    "symbols": {symbol: {"stored", "fetched", "missing"}}}``: ``start`` and
    ``end`` bound the open times of the range's closed bars, ``bars`` is how
    many each symbol should have, ``stored`` how many it has now, ``missing``
    the difference (a hole in the exchange's own history, or 1 s bars never
    built), ``fetched`` the klines stored by this call, ``requests`` the REST
    requests it made.

    Raises ``HistoryError`` with a message a user can act on: an interval
    other than 1s/1m/5m, a range that is empty, longer than
    ``history.HISTORY_MAX_DAYS`` or with no closed bar yet, a symbol the
    exchange does not know, a range that starts before the exchange's first
    kline of a symbol (``HistoryBeforeListing``, saying where it begins), an
    exchange that cannot be reached or limits the requests for longer than
    ``max_wait`` (the raw error is logged).
    """
    if interval not in INTERVALS:
        raise HistoryError(f"{interval!r} is not a bar interval (1s, 1m or 5m)")
    names = _history_symbols(symbols)
    history_range_check(start, end)
    width = INTERVALS[interval]
    now = now_ms() if now is None else now
    first, stop = open_times_range(start, end, width, now)
    if first >= stop:
        raise HistoryError(
            f"no {interval} bar opening from {utc_text(start)} to {utc_text(end)} has closed yet"
            if start < now
            else f"the range starts {utc_text(start)}, in the future"
        )
    plan = {
        symbol: missing_spans(_bar_open_times(symbol, interval, first, stop), first, stop, width) for symbol in names
    }
    fetched = dict.fromkeys(names, 0)
    requests = 0
    if interval in HISTORY_KLINE_INTERVALS and any(plan.values()):
        fetched, requests = async_to_sync(_bars_history_fetch)(
            plan, interval, now, rest_url or settings.BINANCE_REST_URL, progress, max_wait
        )
    elif progress is not None:
        progress(1.0)
    bars = (stop - first) // width
    counts = {
        symbol: Bar.objects.filter(symbol=symbol, interval=interval, open_time__gte=first, open_time__lt=stop).count()
        for symbol in names
    }
    return {
        "interval": interval,
        "start": first,
        "end": stop,
        "bars": bars,
        "fetched": sum(fetched.values()),
        "requests": requests,
        "symbols": {
            symbol: {"stored": counts[symbol], "fetched": fetched[symbol], "missing": bars - counts[symbol]}
            for symbol in names
        },
    }


def _history_symbols(symbols: Iterable[str]) -> list[str]:
    """``symbols`` checked and upper-cased, each once, in order."""
    if isinstance(symbols, str):
        symbols = [symbols]
    try:
        names = list(dict.fromkeys(normalize_symbol(s) for s in symbols))
    except ValueError as exc:
        raise HistoryError(str(exc)) from None
    if not names:
        raise HistoryError("no symbol given")
    return names


def _bar_open_times(symbol: str, interval: str, first: int, stop: int) -> list[int]:
    bars = Bar.objects.filter(symbol=symbol, interval=interval, open_time__gte=first, open_time__lt=stop)
    return list(bars.values_list("open_time", flat=True))


async def _bars_history_fetch(
    plan: dict[str, list[tuple[int, int]]],
    interval: str,
    now: int,
    rest_url: str,
    progress: Callable[[float], None] | None,
    max_wait: float,
) -> tuple[dict[str, int], int]:
    """Fetch the ``plan``'s spans (symbol -> ``[start, end)`` spans) as klines, storing each page as it comes.

    Returns the klines stored per symbol and the requests made.
    """
    width = INTERVALS[interval]
    total = sum(b - a for spans in plan.values() for a, b in spans)
    done = 0
    fetched = dict.fromkeys(plan, 0)
    rest = RestClient(rest_url)
    try:
        for symbol, spans in plan.items():
            try:
                for a, b in spans:
                    async for page in klines_pages(rest, symbol, interval, a, b, max_wait=max_wait):
                        fetched[symbol] += await sync_to_async(_bars_store_klines)(symbol, interval, page, now)
                        if progress is not None:
                            await sync_to_async(progress)((done + min(b, page[-1].open_time + width) - a) / total)
                    done += b - a
            except (RateLimited, httpx.HTTPError, MalformedFrame) as exc:
                raise history_error(exc, symbol=symbol, rest_url=rest_url) from exc
            logger.info("%s: %d %s klines fetched for a history", symbol, fetched[symbol], interval)
    finally:
        await rest.close()
    if progress is not None:
        await sync_to_async(progress)(1.0)
    return fetched, rest.requests


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


# -- backtests ----------------------------------------------------------------


class BacktestError(ValueError):
    """A backtest that cannot run as asked; the message says why, in words."""


#: The longest range a backtest takes (days): a year of 1m bars is 525,600 grid points.
BACKTEST_MAX_DAYS = 366
#: The range a backtest covers when none is given (days, by interval).
BACKTEST_DEFAULT_DAYS = {"1s": 1, "1m": 7, "5m": 30}
#: The walk-forward grid (``--grid``): 5 entry thresholds x 4 exit thresholds.
GRID_ENTRY_Z = (1.5, 2.0, 2.5, 3.0, 3.5)
GRID_EXIT_Z = (0.0, 0.25, 0.5, 1.0)
#: Least seconds between two writes of a running backtest's progress.
PROGRESS_WRITE_SECONDS = 0.5
#: A running backtest whose progress has not moved for this long lost its worker
#: (a crash, a restart): the next run claims it again.
BACKTEST_LOST_SECONDS = 300
DAY_MS = 86_400_000

#: ``rules_of(pair)(entry_z, exit_z) -> (rule, initial state)``: the pair's alert rule at
#: those thresholds. Handed down by the caller: the rule is the alerts app's.
RulesOf = Callable[[Pair], backtest_engine.RuleFor]


def backtest_params(
    pair: Pair,
    *,
    start: int | None = None,
    end: int | None = None,
    days: float | None = None,
    fee_bps: float = 5.0,
    slippage_bps: float = 1.0,
    notional: float = 10_000.0,
    delay_bars: int = 0,
    funding: bool = True,
    grid: bool = False,
    now: int | None = None,
) -> dict[str, Any]:
    """The parameters of a backtest of ``pair`` (docs/analytics.md, "Backtest"), checked; ``BacktestError`` if not.

    The range is ``[start, end)`` in ms: ``end`` defaults to now (to the interval),
    ``start`` to ``days`` (default ``BACKTEST_DEFAULT_DAYS``) before ``end``. The
    pair's settings are recorded with the costs, so a later edit of the pair does
    not change what a stored backtest says it ran with.
    """
    interval_ms = INTERVALS[pair.interval]
    now = now_ms() if now is None else now
    problems = []
    try:
        costs = backtest_engine.Costs(
            fee_bps=float(fee_bps),
            slippage_bps=float(slippage_bps),
            notional=float(notional),
            delay_bars=int(delay_bars),
        )
    except ValueError as exc:
        problems.append(str(exc))
        costs = None
    if days is not None and not (math.isfinite(days) and days > 0):
        problems.append(f"days must be > 0, not {days}")
        days = None
    end = now - now % interval_ms if end is None else int(end)
    if start is None:
        span = days if days is not None else BACKTEST_DEFAULT_DAYS[pair.interval]
        start = end - int(span * DAY_MS)
    start = int(start) - int(start) % interval_ms
    if end > now:
        problems.append(f"the range ends in the future ({_iso(end)}); the newest bars end now ({_iso(now)})")
    if start >= end:
        problems.append(f"the range is empty: start {_iso(start)} is not before end {_iso(end)}")
    elif end - start > BACKTEST_MAX_DAYS * DAY_MS:
        problems.append(
            f"the range is {(end - start) / DAY_MS:,.0f} days; a backtest covers {BACKTEST_MAX_DAYS} days at most"
        )
    if problems:
        raise BacktestError("; ".join(problems))
    assert costs is not None
    return {
        "start": start,
        "end": end,
        "interval": pair.interval,
        "window": pair.window,
        "min_bars": pair.min_bars,
        "entry_z": pair.entry_z,
        "exit_z": pair.exit_z,
        "min_correlation": pair.min_correlation,
        "max_adf_pvalue": pair.max_adf_pvalue,
        "max_coint_pvalue": pair.max_coint_pvalue,
        "confirm_bars": pair.confirm_bars,
        **dataclasses.asdict(costs),
        "funding": bool(funding),
        "grid": bool(grid),
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def backtest_create(pair: Pair, params: dict[str, Any]) -> Backtest:
    """A queued backtest of ``pair`` with checked ``params`` (``backtest_params``)."""
    return Backtest.objects.create(pair=pair, params=params)


def backtest_claim(*, now: datetime | None = None) -> Backtest | None:
    """The oldest queued backtest (or one whose worker was lost), now ``running`` for this caller; else None."""
    claimed = _job_claim(Backtest, now=now)
    return Backtest.objects.select_related("pair").get(pk=claimed) if claimed is not None else None


def _job_claim(model: Any, *, now: datetime | None = None) -> int | None:
    """The id of the oldest queued row of ``model`` (a job: backtest, screener run), now ``running``; else None.

    A row still ``running`` whose ``updated_at`` has not moved for
    ``BACKTEST_LOST_SECONDS`` lost its worker (a crash, a restart) and is claimed
    again. A conditional update claims it, so two workers never run the same one.
    """
    now = now or timezone.now()
    lost = now - timedelta(seconds=BACKTEST_LOST_SECONDS)
    waiting = model.objects.filter(
        Q(status=model.Status.QUEUED) | Q(status=model.Status.RUNNING, updated_at__lt=lost)
    ).order_by("created_at")
    for candidate in waiting.values("pk", "status", "updated_at")[:10]:
        claimed = model.objects.filter(
            pk=candidate["pk"], status=candidate["status"], updated_at=candidate["updated_at"]
        ).update(status=model.Status.RUNNING, started_at=now, updated_at=now, progress=0.0)
        if claimed:
            if candidate["status"] == model.Status.RUNNING:
                logger.warning(
                    "%s %s: its worker was lost; running it again", model._meta.verbose_name, candidate["pk"]
                )
            return int(candidate["pk"])
    return None


def backtest_run(
    backtest: Backtest,
    *,
    rules_of: RulesOf,
    rest_url: str | None = None,
    stats_of: PairStatsOf | None = None,
    on_progress: Callable[[Backtest], None] | None = None,
) -> Backtest:
    """Run a claimed ``backtest``: its bars (history fetched where missing), the rule over them, the result stored.

    Status ``running`` with ``progress`` written as it goes (every
    ``PROGRESS_WRITE_SECONDS`` at most, each write also told to ``on_progress``),
    then ``done`` with the summary and the result, or ``failed`` with the reason
    in words (a ``BacktestError``'s message, or the error's, logged in full).
    Nothing of a failed run is stored but the reason.
    """
    pair, params = backtest.pair, backtest.params
    progress = _job_progress(backtest, on_progress)
    try:
        outcome = _backtest_compute(pair, params, rules_of(pair), stats_of or pair_stats, progress, rest_url)
    except BacktestError as exc:
        return _job_finish(backtest, backtest.Status.FAILED, error=str(exc))
    except Exception as exc:  # a bug or an outage: the run fails, the reason is kept, the worker goes on
        logger.exception("backtest %s of %s failed", backtest.pk, pair)
        return _job_finish(backtest, backtest.Status.FAILED, error=f"the backtest failed: {exc}")
    summary, result = outcome
    return _job_finish(backtest, backtest.Status.DONE, summary=summary, result=result)


def _job_progress(row: Any, on_progress: Callable[[Any], None] | None = None) -> Callable[[float], None]:
    """A ``progress(done)`` for a running job ``row``: written (and told to ``on_progress``) every
    ``PROGRESS_WRITE_SECONDS`` at most, its ``updated_at`` with it (the job is alive)."""
    last_write = 0.0

    def progress(done: float) -> None:
        nonlocal last_write
        if time.monotonic() - last_write >= PROGRESS_WRITE_SECONDS:
            last_write = time.monotonic()
            row.progress = round(min(max(done, 0.0), 1.0), 4)
            row.updated_at = timezone.now()
            type(row).objects.filter(pk=row.pk).update(progress=row.progress, updated_at=row.updated_at)
            if on_progress is not None:
                on_progress(row)

    return progress


def _job_finish(row: Any, status: str, **fields: Any) -> Any:
    """A job ``row`` done or failed, with ``fields`` (its result, or its ``error``)."""
    row.status = status
    row.finished_at = row.updated_at = timezone.now()
    if status == row.Status.DONE:
        row.progress = 1.0
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=["status", "finished_at", "updated_at", "progress", *fields])
    return row


def _backtest_compute(
    pair: Pair,
    params: dict[str, Any],
    rule_for: backtest_engine.RuleFor,
    stats_of: PairStatsOf,
    progress: Callable[[float], None],
    rest_url: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary and the result (trades, equity, grid, funding) of a backtest of ``pair`` with ``params``.

    A 1m/5m range (and one window before it) missing locally is fetched as klines
    first (``bars_history_ensure``); funding rates are fetched for the range when
    asked for, and a backtest whose exchange cannot give them runs without, saying so.
    """
    interval, window = params["interval"], params["window"]
    interval_ms = INTERVALS[interval]
    start, end = params["start"], params["end"]
    history_from = start - window * interval_ms  # one window before the range: ready at its start
    fetching = 0.15 if interval != "1s" else 0.0  # the progress bar's share of the history fetch
    if interval != "1s":
        try:
            bars_history_ensure(
                pair.symbols, interval, history_from, end, rest_url=rest_url, progress=lambda d: progress(fetching * d)
            )
        except HistoryError as exc:
            raise BacktestError(str(exc)) from None
    funding_note: dict[str, Any] = {"source": None, "rates": 0, "error": None}
    funding_a: list[backtest_engine.Funding] = []
    funding_b: list[backtest_engine.Funding] = []
    if params["funding"]:
        try:
            funding_a, funding_b = (
                [
                    backtest_engine.Funding(r.funding_time, r.rate)
                    for r in funding_rates_ensure(s, start, end, rest_url=rest_url)
                ]
                for s in pair.symbols
            )
            funding_note |= {"source": "exchange fundingRate", "rates": len(funding_a) + len(funding_b)}
        except HistoryError as exc:
            logger.warning("backtest of %s runs without funding: %s", pair, exc)
            funding_note["error"] = str(exc)
    legs = [
        selectors.closes_between(symbol=symbol, interval=interval, start=history_from, end=end)
        for symbol in pair.symbols
    ]
    for symbol, closes in zip(pair.symbols, legs, strict=True):
        if not (closes.open_time >= start).any():
            raise BacktestError(
                f"no {interval} bars of {symbol} from {_iso(start)} to {_iso(end)}"
                + (": a 1s pair's history is the bars stored from its trades" if interval == "1s" else "")
            )
    aligned = align_closes(legs[0], legs[1], as_of=None, window=max(1, len(legs[0].open_time) + len(legs[1].open_time)))
    times = aligned.times
    trade_from = int(np.searchsorted(times, start, side="left"))
    if times.size - trade_from < 2:
        raise BacktestError(f"the range from {_iso(start)} to {_iso(end)} holds fewer than 2 {interval} grid points")
    settings_ = backtest_engine.PairSettings(
        pair=pair.id,
        symbols=(pair.symbol_a, pair.symbol_b),
        interval=interval,
        window=window,
        min_bars=params["min_bars"],
        thresholds=Thresholds(
            entry_z=params["entry_z"],
            exit_z=params["exit_z"],
            min_correlation=params["min_correlation"],
            max_adf_pvalue=params["max_adf_pvalue"],
            max_coint_pvalue=params["max_coint_pvalue"],
            confirm_bars=params["confirm_bars"],
        ),
    )
    costs = backtest_engine.Costs(
        fee_bps=params["fee_bps"],
        slippage_bps=params["slippage_bps"],
        notional=params["notional"],
        delay_bars=params["delay_bars"],
    )
    # The snapshots (nearly all of the cost) once, for the run and its grid alike.
    snapshots = backtest_engine.snapshots_of(
        times,
        aligned.y,
        aligned.x,
        settings_,
        stats_of=stats_of,
        progress=progress,
        share=(fetching, 1.0 - fetching),
    )
    rule, state = rule_for(params["entry_z"], params["exit_z"])
    result = backtest_engine.backtest(
        times,
        aligned.y,
        aligned.x,
        settings=settings_,
        rule=rule,
        state=state,
        costs=costs,
        funding_a=funding_a,
        funding_b=funding_b,
        stats_of=stats_of,
        trade_from=trade_from,
        snapshots=snapshots,
    )
    grid = None
    if params["grid"]:
        grid = backtest_engine.walk_forward(
            times,
            aligned.y,
            aligned.x,
            settings=settings_,
            rule_for=rule_for,
            entry_zs=GRID_ENTRY_Z,
            exit_zs=GRID_EXIT_Z,
            costs=costs,
            funding_a=funding_a,
            funding_b=funding_b,
            stats_of=stats_of,
            trade_from=trade_from,
            snapshots=snapshots,
        )
    return result.summary, {**result.as_json(), "grid": grid, "funding": funding_note}


def backtest_json(backtest: Backtest, *, full: bool = True) -> dict[str, Any]:
    """A backtest as the API and ``manage.py backtest --json`` give it (CONTRACT: "Backtest").

    ``full``: with the trades, the equity and the grid (else the summary alone).
    """
    result = backtest.result or {}
    data = {
        "id": backtest.pk,
        "pair": backtest.pair_id,
        "status": backtest.status,
        "progress": backtest.progress,
        "error": backtest.error or None,
        "created_at": backtest.created_at.isoformat() if backtest.created_at else None,
        "finished_at": backtest.finished_at.isoformat() if backtest.finished_at else None,
        "params": backtest.params,
        "summary": backtest.summary,
    }
    if full:
        data |= {
            "trades": result.get("trades", []),
            "equity": result.get("equity"),
            "grid": result.get("grid"),
            # Where the funding came from: {source, rates, error} (error: why there was none).
            "funding_source": result.get("funding"),
        }
    return data


# -- the screener ---------------------------------------------------------------


class ScreenerError(ValueError):
    """A screener run that cannot run as asked; the message says why, in words."""


#: The universe's default size, and the largest (200 symbols: 19,900 pairs).
SCREENER_TOP = 30
SCREENER_MAX_TOP = UNIVERSE_MAX
SCREENER_INTERVALS = ("1m", "5m")
#: The shortest window screened: fewer bars test too little to be worth a q-value.
MIN_SCREEN_WINDOW = 100


def screener_request(
    *,
    symbols: list[str] | None = None,
    top: int | None = None,
    interval: str = "5m",
    window: int = 1_000,
    fdr: float = 0.05,
) -> dict[str, Any]:
    """What a screener run is asked for, checked (``ScreenerError`` names each problem)."""
    problems = []
    if symbols is not None:
        named = set()
        for given in symbols:
            if not given.strip():
                continue
            try:
                named.add(normalize_symbol(given))
            except ValueError as exc:
                problems.append(str(exc))
        symbols = sorted(named)
        if not problems and len(symbols) < 2:
            problems.append(f"a universe needs 2 symbols at least, not {len(symbols)}")
        if top is not None:
            problems.append("give the symbols or top N, not both")
    top = SCREENER_TOP if symbols is None and top is None else top
    if top is not None and not 2 <= top <= SCREENER_MAX_TOP:
        problems.append(
            f"top must be 2 to {SCREENER_MAX_TOP} symbols, not {top} "
            f"({SCREENER_MAX_TOP} symbols are {SCREENER_MAX_TOP * (SCREENER_MAX_TOP - 1) // 2:,} pairs)"
        )
    if interval not in SCREENER_INTERVALS:
        problems.append(f"interval must be 1m or 5m, not {interval!r}")
    if not MIN_SCREEN_WINDOW <= window <= MAX_WINDOW:
        problems.append(f"window must be {MIN_SCREEN_WINDOW} to {MAX_WINDOW} bars, not {window}")
    if not (math.isfinite(fdr) and 0 < fdr < 1):
        problems.append(f"fdr must be between 0 and 1, not {fdr}")
    if problems:
        raise ScreenerError("; ".join(problems))
    return {"symbols": symbols, "top": top, "interval": interval, "window": window, "fdr": fdr}


def screener_compute(
    symbols: list[str],
    *,
    interval: str,
    window: int,
    fdr: float,
    rest_url: str | None = None,
    now: int | None = None,
    progress: Callable[[float], None] | None = None,
    stats_of: PairStatsOf | None = None,
) -> tuple[int | None, list[screener.ScreenedPair], dict[str, str]]:
    """Every pair of ``symbols`` on its newest ``window`` closed bars: the bars' newest open time, ranked pairs, skips.

    The bars come from the database, topped up from the exchange's klines first
    (``bars_history_ensure``: only what is missing). A symbol with no bar in the
    window is skipped (and said so); a degenerate pair gets nulls.
    """
    interval_ms = INTERVALS[interval]
    now = now_ms() if now is None else now
    end = now - now % interval_ms  # the open time of the bar in progress: closed bars end before it
    start = end - (window + 1) * interval_ms
    report = progress or (lambda done: None)
    try:
        bars_history_ensure(
            symbols, interval, start, end, rest_url=rest_url, now=now, progress=lambda d: report(0.3 * d)
        )
    except HistoryError as exc:
        raise ScreenerError(str(exc)) from None
    legs: dict[str, screener.Leg] = {}
    skipped: dict[str, str] = {}
    for symbol in symbols:
        closes = selectors.closes_between(symbol=symbol, interval=interval, start=start, end=end)
        if len(closes.open_time) < MIN_OBS:
            skipped[symbol] = f"{len(closes.open_time)} closed {interval} bars in the window, {MIN_OBS} needed"
            continue
        legs[symbol] = (closes.open_time, closes.close)
    if len(legs) < 2:
        raise ScreenerError(f"fewer than 2 symbols have {interval} bars to screen: {skipped}")
    ranked = screener.screen(
        legs, window=window, fdr=fdr, stats_of=stats_of or pair_stats, progress=lambda d: report(0.3 + 0.7 * d)
    )
    as_of = max(int(times[-1]) for times, _ in legs.values())
    return as_of, ranked, skipped


def screener_create(requested: dict[str, Any]) -> ScreenerRun:
    """A queued screener run of a checked request (``screener_request``)."""
    return ScreenerRun.objects.create(
        requested=requested, interval=requested["interval"], window=requested["window"], fdr=requested["fdr"]
    )


def screener_claim(*, now: datetime | None = None) -> ScreenerRun | None:
    """The oldest queued screener run (or one whose worker was lost), now ``running``; else None."""
    claimed = _job_claim(ScreenerRun, now=now)
    return ScreenerRun.objects.get(pk=claimed) if claimed is not None else None


def screener_run(
    run: ScreenerRun,
    *,
    rest_url: str | None = None,
    stats_of: PairStatsOf | None = None,
    on_progress: Callable[[ScreenerRun], None] | None = None,
) -> ScreenerRun:
    """Run a claimed screener ``run``: its universe, their klines topped up, every pair scored, stored.

    ``failed`` with the reason in words when the universe or its bars cannot be
    had (the last good run stays the one the page and the API show).
    """
    requested = run.requested
    progress = _job_progress(run, on_progress)
    started = time.monotonic()
    try:
        latest = screener_latest()
        universe = universe_resolve(
            symbols=requested["symbols"],
            top=requested["top"] or SCREENER_TOP,
            rest_url=rest_url,
            previous=latest.symbols if latest is not None else (),
        )
        as_of, ranked, skipped = screener_compute(
            list(universe.symbols),
            interval=requested["interval"],
            window=requested["window"],
            fdr=requested["fdr"],
            rest_url=rest_url,
            progress=progress,
            stats_of=stats_of,
        )
    except (ScreenerError, UniverseError) as exc:
        logger.warning("screener run %s failed: %s", run.pk, exc)
        return _job_finish(run, run.Status.FAILED, error=str(exc))
    except Exception as exc:  # a bug or an outage: the run fails, the reason is kept, the worker goes on
        logger.exception("screener run %s failed", run.pk)
        return _job_finish(run, run.Status.FAILED, error=f"the screener failed: {exc}")
    for symbol, why in skipped.items():
        logger.info("screener run %s: %s left out: %s", run.pk, symbol, why)
    return _job_finish(
        run,
        run.Status.DONE,
        as_of=as_of,
        symbols=[s for s in universe.symbols if s not in skipped],
        skipped={**dict(universe.skipped), **skipped},
        pairs=[pair.as_json() for pair in ranked],
        took_ms=int((time.monotonic() - started) * 1000),
    )


def screener_latest() -> ScreenerRun | None:
    """The newest screener run that finished: what the page and ``GET /api/screener/`` show."""
    return ScreenerRun.objects.filter(status=ScreenerRun.Status.DONE).order_by("-finished_at", "-pk").first()


def screener_json(run: ScreenerRun) -> dict[str, Any]:
    """A screener run as the API and ``manage.py screen --json`` give it (CONTRACT: "Screener run")."""
    return {
        "id": run.pk,
        "status": run.status,
        "progress": run.progress,
        "error": run.error or None,
        "as_of": run.as_of,
        "interval": run.interval,
        "window": run.window,
        "fdr": run.fdr,
        "symbols": run.symbols,
        "skipped": run.skipped,
        "took_ms": run.took_ms,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "pairs": run.pairs,
    }


def screener_schedule() -> int:
    """Queue a screen with the settings' defaults (``SCREENER_*``) unless one is queued or running; 1 if queued."""
    if not settings.SCREENER_SCHEDULED:
        return 0
    if ScreenerRun.objects.filter(status__in=[ScreenerRun.Status.QUEUED, ScreenerRun.Status.RUNNING]).exists():
        return 0
    screener_create(
        screener_request(
            top=settings.SCREENER_TOP,
            interval=settings.SCREENER_INTERVAL,
            window=settings.SCREENER_WINDOW,
            fdr=settings.SCREENER_FDR,
        )
    )
    return 1
