"""Ingestion work that touches the database: storing ticks, feed status, the feed itself."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from pairs_project.common.masking import url_credentials_masked

from .binance import (
    UNIVERSE_QUOTE,
    Exchange,
    FundingRate,
    MalformedFrame,
    Tick,
    normalize_symbol,
    universe_check,
    universe_passed_over,
    universe_top,
)
from .buffers import RedisBuffers, RollingBuffers
from .client import (
    HISTORY_MAX_WAIT,
    FeedClient,
    FeedState,
    Progress,
    RateLimited,
    RestClient,
    funding_rate_pages,
    history_error,
    market_listing,
)
from .errors import unreachable_text
from .history import HistoryError, funding_slots_uncovered, history_range_check, utc_text
from .journal import Run, StoredTicks
from .listing import symbols_tradable
from .models import FeedStatus, Gap, Symbol
from .models import FundingRate as FundingRateRow
from .models import Tick as TickRow
from .selectors import FEED_STATUS_KEY
from .universe import UNIVERSE_TOP_DEFAULT, Universe, UniverseError, universe_size_check
from .writer import Batch, GapEvent, TickWriter

logger = logging.getLogger(__name__)

#: Seconds between live price pushes to the dashboards: twice a second (the README's
#: "WebSocket"). Each push is a websocket frame to every open page, the bulk of a web
#: server's work with many pages open (4 a second cost 200 open pages a third more).
PRICES_INTERVAL = 0.5
#: Seconds the feed's helper tasks get to finish when it stops.
SHUTDOWN_WAIT = 3.0
#: Cache key of the exchange the feed follows (see ``exchange_followed``).
EXCHANGE_FOLLOWED_KEY = "pairs:exchange-followed"
#: Seconds old the exchange's symbol list may be when a silent symbol is checked against it.
SILENT_CHECK_MAX_AGE = 60.0


def live_buffers() -> RollingBuffers:
    """The live ticks: this process's own, shared through Redis in distributed mode."""
    if not settings.REDIS_URL:
        return RollingBuffers(maxlen=settings.INGEST_BUFFER_TICKS)
    import redis.asyncio

    def client() -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)

    return RedisBuffers(client, maxlen=settings.INGEST_BUFFER_TICKS)


def exchange_configured() -> Exchange:
    """The exchange of the settings (``BINANCE_WS_URL``, ``BINANCE_REST_URL``): Binance's own by default."""
    return Exchange(settings.BINANCE_WS_URL, settings.BINANCE_REST_URL)


def exchange_followed() -> Exchange:
    """The exchange the running feed follows (``runpairs --simulate``: the built-in one), else the configured one.

    What a new pair's symbols are checked against: the market its ticks will come from.
    """
    try:
        followed = cache.get(EXCHANGE_FOLLOWED_KEY)
    except Exception as exc:  # only a pointer: the settings say the rest
        logger.debug("exchange followed not read: %s", exc)
        followed = None
    return Exchange(*followed) if followed else exchange_configured()


def exchange_followed_publish(exchange: Exchange) -> None:
    try:
        cache.set(EXCHANGE_FOLLOWED_KEY, tuple(exchange), timeout=None)
    except Exception as exc:  # the configured exchange is the fallback
        logger.debug("exchange followed not published: %s", exc)


#: Key of the PostgreSQL advisory lock that lets one tick insert run at a time
#: (any constant unique to this project: the bytes of "pairs").
TICK_INSERT_LOCK = 0x7061697273


#: Most ticks one SQLite INSERT statement carries (fewer when its variable limit is lower).
SQLITE_INSERT_ROWS = 500


def _insert_sql(rows: int = 1, placeholder: str = "%s") -> str:
    qn = connection.ops.quote_name
    table = qn(TickRow._meta.db_table)
    # Column order is the field order of ``binance.Tick``, so ticks bind as they are.
    # ON CONFLICT DO NOTHING is understood by both SQLite (>= 3.24) and PostgreSQL.
    values = ", ".join([f"({', '.join([placeholder] * len(Tick._fields))})"] * rows)
    return (
        f"INSERT INTO {table} ({qn('timestamp')}, {qn('symbol')}, {qn('price')}, {qn('quantity')}, {qn('trade_id')}) "
        f"VALUES {values} ON CONFLICT ({qn('symbol')}, {qn('trade_id')}) DO NOTHING"
    )


def _ticks_insert(cursor: Any, ticks: list[Tick], runs: list[Run]) -> int:
    """Insert ``ticks`` (duplicates ignored); return how many were new.

    On SQLite, a few hundred rows a statement: ``executemany`` steps the statement
    once per row and takes the GIL back after each, so the writer thread would
    contend for it with the event loop at every tick; one multi-row statement is
    stepped once, without the GIL, and costs less than half as much in all. It goes
    to the driver's own connection, in the transaction Django opened, with
    Django's error classes: Django's cursor would rewrite its placeholders with a
    regular expression at every statement. A statement that stored all its rows
    gave them consecutive ids ending at its ``lastrowid`` (SQLite's AUTOINCREMENT,
    one writer at a time): it is added to ``runs`` (``ingestion.journal``).
    """
    if connection.vendor != "sqlite":
        cursor.executemany(_insert_sql(), ticks)
        return max(cursor.rowcount, 0)
    driver = connection.connection
    try:
        limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # an older sqlite3 module: SQLite's smallest default
        limit = 999
    per = max(1, min(SQLITE_INSERT_ROWS, limit // len(Tick._fields)))
    database = str(connection.settings_dict["NAME"])
    new = 0
    start = 0
    with connection.wrap_database_errors:
        while start < len(ticks):
            # Full statements, then the rest in powers of two: a few statement sizes
            # only, each prepared once (the driver's cache holds 128).
            rows = min(per, len(ticks) - start)
            if rows < per:
                rows = 1 << (rows.bit_length() - 1)
            part = ticks[start : start + rows]
            start += rows
            statement = driver.execute(_insert_sql(len(part), "?"), list(chain.from_iterable(part)))
            inserted = max(statement.rowcount, 0)
            if inserted == len(part) and statement.lastrowid is not None:
                runs.append(Run(database, statement.lastrowid - inserted + 1, part[0].symbol, part))
            new += inserted
    return new


def ticks_store(
    ticks: Sequence[Tick],
    *,
    gaps: Sequence[GapEvent] = (),
    closed_through: dict[str, int] | None = None,
    feed: str = "",
    journal: StoredTicks | None = None,
) -> int:
    """Store ``ticks`` in one transaction, ignoring duplicates; return how many were new.

    The same transaction records the ``gaps`` the feed found or resolved
    (``Gap`` rows) and raises each symbol's ``closed_through`` to the feed's
    statement: what the ticks are, and what is known of them, commit together.

    Plain SQL rather than ``bulk_create``: building a model instance per tick
    costs more than the insert itself at tens of thousands a second
    (``_ticks_insert``).

    Tick ids must become visible in id order: resampling reads "the ticks above the
    last id it saw". On PostgreSQL an id is drawn at insert but seen at commit, so
    two ingestion processes could commit out of order and a tick would stay below
    the watermark for good. A transaction-scoped advisory lock makes the inserts
    take turns: the next writer draws its ids only after the previous one has
    committed. SQLite has one writer at a time already.

    ``journal``: this process's record of what it stored, for a resampling in the
    same process (``ingestion.journal``); once committed, the new rows go to it.
    """
    by_symbol: dict[str, list[Tick]] = {}
    for tick in ticks:
        by_symbol.setdefault(tick.symbol, []).append(tick)
    new_total = 0
    runs: list[Run] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TICK_INSERT_LOCK])
            for symbol, rows in by_symbol.items():
                new = _ticks_insert(cursor, rows, runs)
                _symbol_totals_add(symbol, rows, new)
                new_total += new
        if gaps:
            _gaps_record(gaps, feed)
        for symbol, stated in (closed_through or {}).items():
            Symbol.objects.filter(Q(closed_through__isnull=True) | Q(closed_through__lt=stated), name=symbol).update(
                closed_through=stated
            )
        if runs and journal is not None and journal.wanted:
            transaction.on_commit(functools.partial(journal.record, runs))
    return new_total


def batch_store(batch: Batch, *, feed: str, journal: StoredTicks | None = None) -> int:
    """The tick writer's store: one batch of ``feed``, in one transaction (``ticks_store``)."""
    return ticks_store(batch.ticks, gaps=batch.gaps, closed_through=batch.closed_through, feed=feed, journal=journal)


def _gaps_record(events: Sequence[GapEvent], feed: str) -> None:
    now = timezone.now()
    for event in events:
        if event.missing is None:
            Gap.objects.get_or_create(
                symbol=event.symbol,
                first_id=event.first_id,
                defaults={"last_id": event.last_id, "feed": feed, "detected_at": now},
            )
            continue
        status = Gap.Status.UNAVAILABLE if event.missing else Gap.Status.FILLED
        Gap.objects.filter(symbol=event.symbol, first_id=event.first_id, status=Gap.Status.OPEN).update(
            status=status, missing=event.missing, resolved_at=now
        )


def gaps_open(*, symbols: Iterable[str], feed: str) -> list[tuple[str, int, int, list[tuple[int, int]]]]:
    """The gaps an earlier run left open, of ``symbols`` or found by ``feed``, with their ids still missing.

    ``(symbol, first_id, last_id, missing)``, ``missing`` the id ranges not
    stored: part of a gap may have been backfilled before the run ended. A gap
    of a symbol the feed no longer follows is still resumed (REST needs no
    subscription), so none stays open for good.
    """
    found = []
    gaps = Gap.objects.filter(Q(symbol__in=list(symbols)) | Q(feed=feed), status=Gap.Status.OPEN)
    for gap in gaps.order_by("symbol", "first_id"):
        stored = TickRow.objects.filter(symbol=gap.symbol, trade_id__range=(gap.first_id, gap.last_id))
        ids = stored.values_list("trade_id", flat=True)
        found.append((gap.symbol, gap.first_id, gap.last_id, id_holes(ids, gap.first_id, gap.last_id)))
    return found


def id_holes(stored: Iterable[int], lo: int, hi: int) -> list[tuple[int, int]]:
    """The ranges of ids in ``[lo, hi]`` that are not in ``stored``."""
    holes = []
    expected = lo
    for trade_id in sorted(stored):
        if trade_id > expected:
            holes.append((expected, trade_id - 1))
        expected = max(expected, trade_id + 1)
    if expected <= hi:
        holes.append((expected, hi))
    return holes


#: One symbol's running totals raised by a batch, in one statement (``{table}``: the symbols' table). Every
#: ``SET`` reads the row as it was: the first and last trade times widen, and the last price is the highest
#: trade id's, whatever the order ticks came in. Plain SQL: the ORM's ``Case``/``When`` took milliseconds to
#: build per batch, on the writer's thread, holding the interpreter from the feed.
_SYMBOL_TOTALS_SQL = """
UPDATE {table} SET
    tick_count = tick_count + %s,
    first_tick_at = CASE WHEN first_tick_at IS NULL OR first_tick_at > %s THEN %s ELSE first_tick_at END,
    last_tick_at = CASE WHEN last_tick_at IS NULL OR last_tick_at < %s THEN %s ELSE last_tick_at END,
    last_price = CASE WHEN last_trade_id IS NULL OR last_trade_id < %s THEN %s ELSE last_price END,
    last_trade_id = CASE WHEN last_trade_id IS NULL OR last_trade_id < %s THEN %s ELSE last_trade_id END,
    updated_at = %s
WHERE name = %s
"""


def _symbol_totals_add(symbol: str, rows: list[Tick], new: int) -> None:
    newest = max(rows, key=itemgetter(4))  # Tick field order: (timestamp, symbol, price, quantity, trade_id)
    first = min(map(itemgetter(0), rows))
    last = max(map(itemgetter(0), rows))
    sql = _SYMBOL_TOTALS_SQL.format(table=connection.ops.quote_name(Symbol._meta.db_table))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [
        new,
        first,
        first,
        last,
        last,
        newest.trade_id,
        newest.price,
        newest.trade_id,
        newest.trade_id,
        now,
        symbol,
    ]

    def update() -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    if update():
        return
    try:
        with transaction.atomic():
            Symbol.objects.create(
                name=symbol,
                tick_count=new,
                first_tick_at=first,
                last_tick_at=last,
                last_price=newest.price,
                last_trade_id=newest.trade_id,
            )
    except IntegrityError:  # another writer created it first
        update()


def last_trade_ids(symbols: Iterable[str]) -> dict[str, int]:
    """The highest stored aggregate id per symbol: where gap repair resumes after a restart."""
    return dict(
        Symbol.objects.filter(name__in=list(symbols), last_trade_id__isnull=False).values_list("name", "last_trade_id")
    )


def simulation_resume_options() -> dict[str, object]:
    """Options that let the built-in exchange carry on where the stored data ends.

    A restarted demo then continues each symbol's id sequence and price instead of
    starting over (which would look like duplicates) or jumping ahead (a gap).
    """
    rows = {s.name: s for s in Symbol.objects.filter(name__in=["BTCUSDT", "ETHUSDT"], last_trade_id__isnull=False)}
    if len(rows) < 2:
        return {}
    return {
        "first_ids": {name: row.last_trade_id + 1 for name, row in rows.items()},
        "y_start": rows["BTCUSDT"].last_price,
        "x_start": rows["ETHUSDT"].last_price,
    }


def default_symbols() -> list[str]:
    """The symbols a feed follows when it is told nothing else (``INGEST_DEFAULT_SYMBOLS``)."""
    return sorted(set(settings.INGEST_DEFAULT_SYMBOLS))


def _as_datetime(epoch_seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC) if epoch_seconds else None


def feed_status_of(
    *, name: str, state: FeedState, writer: TickWriter | None = None, started_at: datetime | None = None
) -> FeedStatus:
    """The feed's status row as it is now (unsaved)."""
    blocked_since = writer.blocked_since() if writer else None
    return FeedStatus(
        name=name,
        url=url_credentials_masked(state.url),
        symbols=",".join(state.symbols),
        connected=state.connected,
        connected_since=_as_datetime(state.connected_since) if state.connected else None,
        last_tick_at=state.last_tick_at,
        reconnects=state.reconnects,
        connect_failures=state.connect_failures,
        ticks_received=state.ticks_received,
        ticks_stored=writer.stored if writer else 0,
        pending=writer.pending if writer else 0,
        writer_error=writer.last_error if writer else "",
        writer_failing_since=_as_datetime(blocked_since),
        duplicates=state.duplicates,
        malformed=state.malformed,
        gaps_detected=state.gaps_detected,
        gaps_filled=state.gaps_filled,
        gaps_unfilled=state.gaps_unfilled,
        trades_backfilled=state.trades_backfilled,
        trades_unavailable=state.trades_unavailable,
        rate_limited=state.rate_limited,
        last_error=state.last_error,
        last_error_at=_as_datetime(state.last_error_at),
        silent_symbols={symbol: int(since * 1000) for symbol, since in state.silent.items()},
        unavailable_symbols=dict(state.unavailable),
        started_at=started_at,
        updated_at=timezone.now(),
    )


def feed_status_save(
    *, name: str, state: FeedState, writer: TickWriter | None = None, started_at: datetime | None = None
) -> None:
    """Persist ``state`` as the feed's status row (read by ``/api/health/``)."""
    status = feed_status_of(name=name, state=state, writer=writer, started_at=started_at)
    values = {f.name: getattr(status, f.name) for f in FeedStatus._meta.concrete_fields if f.name not in ("id", "name")}
    FeedStatus.objects.update_or_create(name=name, defaults=values)


def feed_status_publish(status: FeedStatus) -> None:
    """Put the status where health reads it even while the database cannot be written."""
    try:
        cache.set(FEED_STATUS_KEY.format(name=status.name), status, timeout=60)
    except Exception as exc:  # only a second copy: the row in the database is the record
        logger.debug("feed status not published: %s", exc)


#: Which symbols a feed follows, asked again every few seconds (sync: it may read the database).
Follow = Callable[[], Iterable[str]]
#: Called every ``PRICES_INTERVAL`` once the live ticks are shared, with the feed's own symbols.
OnShared = Callable[[frozenset[str]], Awaitable[None]]


class Feed:
    """The ingestion of one process: stream client + batched writer + status, run as one task.

    ``runpairs`` runs it inside daphne's event loop; ``ingest_binance`` alone.
    ``stop`` ends the stream, flushes every pending tick and writes the final status.
    The feed knows nothing of pairs: ``follow`` says which symbols to follow (unless
    ``symbols`` fixes them), and ``on_shared`` hears when the newest ticks are shared
    (the live prices of the pages are pushed from there).
    """

    def __init__(
        self,
        *,
        symbols: Iterable[str] | None = None,
        name: str | None = None,
        ws_url: str | None = None,
        rest_url: str | None = None,
        buffers: RollingBuffers | None = None,
        status_interval: float = 1.0,
        follow: Follow = default_symbols,
        on_shared: OnShared | None = None,
        journal: StoredTicks | None = None,
    ) -> None:
        self.symbols = sorted({s.upper() for s in symbols}) if symbols else None
        self.follow = follow
        self.on_shared = on_shared
        self.name = name or settings.INGEST_FEED_NAME
        self.ws_url = ws_url or settings.BINANCE_WS_URL
        self.rest_url = rest_url or settings.BINANCE_REST_URL
        self.buffers = buffers if buffers is not None else RollingBuffers(maxlen=settings.INGEST_BUFFER_TICKS)
        self.status_interval = status_interval
        self.writer = TickWriter(
            functools.partial(batch_store, feed=self.name, journal=journal),
            flush_interval=settings.INGEST_FLUSH_INTERVAL,
            max_batch=settings.INGEST_BATCH_SIZE,
            statement=self._closed_through,
        )
        self.state = FeedState()
        self.client: FeedClient | None = None
        self.started_at = timezone.now()
        self._stop_requested = False

    async def run(self) -> None:
        """Run until ``stop``; returns after the final flush."""
        await sync_to_async(exchange_followed_publish, thread_sensitive=False)(Exchange(self.ws_url, self.rest_url))
        symbols = await self._tradable(self.symbols or await self._followed())
        open_gaps = await sync_to_async(gaps_open)(symbols=symbols, feed=self.name)
        last_ids = await sync_to_async(last_trade_ids)({*symbols, *(gap[0] for gap in open_gaps)})
        self.client = FeedClient(
            symbols=symbols,
            ws_url=self.ws_url,
            rest_url=self.rest_url,
            writer=self.writer,
            buffers=self.buffers,
            state=self.state,
            last_ids=last_ids,
            open_gaps=open_gaps,
            silence_timeout=settings.INGEST_SILENCE_TIMEOUT,
            rotate_after=settings.INGEST_ROTATE_AFTER,
            symbol_check=self._check_silent,
        )
        logger.info(
            "feed %s (pid %d): %s via %s, resuming after ids %s",
            self.name,
            os.getpid(),
            ",".join(symbols),
            url_credentials_masked(self.ws_url),
            last_ids or "(none stored)",
        )
        if self._stop_requested:  # stopped while starting up
            self.client.stop()
        writer_task = asyncio.create_task(self.writer.run(), name="tick-writer")
        status_task = asyncio.create_task(self._status_loop(), name="feed-status")
        prices_task = asyncio.create_task(self._share_ticks(), name="feed-share")
        try:
            await self.client.run()
        finally:
            status_task.cancel()
            prices_task.cancel()
            # Bounded: a status write or a push stuck on a busy database or Redis
            # must not keep the pending ticks from being flushed.
            _, stuck = await asyncio.wait({status_task, prices_task}, timeout=SHUTDOWN_WAIT)
            if stuck:
                logger.warning("stopping without waiting for %s", ", ".join(t.get_name() for t in stuck))
            await self.writer.close()
            writer_task.cancel()
            await asyncio.gather(writer_task, return_exceptions=True)
            await self.save_status()
            logger.info("feed %s stopped: %d ticks stored this run", self.name, self.writer.stored)

    def _closed_through(self) -> dict[str, int]:
        return self.client.closed_through() if self.client is not None else {}

    def stop(self) -> None:
        self._stop_requested = True
        if self.client is not None:
            self.client.stop()

    async def save_status(self) -> None:
        try:
            # In a thread of its own: a save waiting on a locked database holds nothing else up.
            await sync_to_async(feed_status_save, thread_sensitive=False)(
                name=self.name, state=self.state, writer=self.writer, started_at=self.started_at
            )
        except Exception:
            logger.exception("could not save the feed status")

    async def _status_loop(self) -> None:
        """The status, every ``status_interval``: published at once, saved when the database lets it.

        A save stuck on a locked database does not hold the next publication, so
        health still hears from the feed (and why it cannot store).
        """
        follow_every = 5  # status intervals between looks at the active pairs
        tick = 0
        saving: asyncio.Task | None = None
        try:
            while True:
                status = feed_status_of(
                    name=self.name, state=self.state, writer=self.writer, started_at=self.started_at
                )
                try:
                    await asyncio.wait_for(sync_to_async(feed_status_publish, thread_sensitive=False)(status), 2.0)
                except TimeoutError:
                    pass
                if saving is None or saving.done():
                    saving = asyncio.create_task(self.save_status(), name="feed-status-save")
                if tick % follow_every == 0:
                    await self._follow_pairs()
                tick += 1
                await asyncio.sleep(self.status_interval)
        finally:
            if saving is not None:
                saving.cancel()

    async def _followed(self) -> list[str]:
        return sorted({s.upper() for s in await sync_to_async(self.follow)()})

    async def _follow_pairs(self) -> None:
        """A symbol added to ``follow`` (a pair added or activated in the admin) is subscribed without a restart."""
        try:
            symbols = self.symbols or await self._followed()
        except Exception:
            logger.exception("could not read the symbols to follow")
            return
        symbols = await self._tradable(symbols)
        if self.client is not None:
            self.client.set_symbols(symbols)

    async def _tradable(self, symbols: list[str]) -> list[str]:
        """``symbols`` less those the exchange does not trade, which are recorded (and logged once)."""
        try:
            # Not thread-sensitive: a slow exchange must not hold the thread the
            # web requests of embedded mode share.
            tradable, dropped = await sync_to_async(symbols_tradable, thread_sensitive=False)(
                symbols, rest_url=self.rest_url
            )
        except Exception:
            logger.exception("could not check the symbols against the exchange's list")
            return list(symbols)
        for symbol, problem in dropped.items():
            if self.state.unavailable.get(symbol) != problem:
                logger.warning("%s: not subscribing it", problem)
        self.state.unavailable = dropped
        return tradable

    async def _check_silent(self, symbols: list[str]) -> dict[str, str]:
        """Whether the exchange still trades ``symbols`` (silent on a live stream), on a list at most a minute old."""
        _, dropped = await sync_to_async(symbols_tradable, thread_sensitive=False)(
            symbols, max_age=SILENT_CHECK_MAX_AGE, rest_url=self.rest_url
        )
        return dropped

    async def _share_ticks(self) -> None:
        """Every ``PRICES_INTERVAL``: share the newest ticks (``buffers``), then tell ``on_shared``.

        Shared, every process sees both legs of a pair, whichever feed follows them.
        A failing ``on_shared`` is logged once, until it works again.
        """
        failing = False
        while True:
            await asyncio.sleep(PRICES_INTERVAL)
            await self.buffers.publish()
            if self.on_shared is None:
                continue
            own = frozenset(self.client.symbols) if self.client is not None else frozenset()
            try:
                await self.on_shared(own)
            except Exception:
                if not failing:
                    logger.exception("the live ticks were shared, but what follows them failed")
                failing = True
            else:
                failing = False


def prices_payload(a: Tick, b: Tick) -> dict:
    """The dashboard's ``prices`` message for legs whose newest ticks are ``a`` and ``b``."""
    return {"t": max(a.timestamp, b.timestamp), "price_a": a.price, "price_b": b.price}


# -- funding rates, for a backtest ------------------------------------------------------


def funding_rates_ensure(
    symbol: str,
    start: int,
    end: int,
    *,
    rest_url: str | None = None,
    progress: Progress | None = None,
    now: int | None = None,
    max_wait: float = HISTORY_MAX_WAIT,
) -> list[FundingRate]:
    """The funding rates of ``symbol`` in ``[start, end)`` (ms), oldest first; fetched first where missing.

    The stored rates answer when every funding time of the range up to now
    has one (every 8 hours, see ``history.funding_slots_uncovered``); else the
    whole range is fetched from ``/fapi/v1/fundingRate`` (public, no key; a
    year is 1,098 rates, two requests) and stored, then read back. Nothing
    is charged before a symbol's listing: such a range returns what there is.
    ``progress(fraction)`` follows the fetch.

    Raises ``HistoryError`` with a message a user can act on: a range that is
    empty or longer than ``history.HISTORY_MAX_DAYS``, a symbol the exchange
    does not know, an exchange that cannot be reached or that limits the
    requests for longer than ``max_wait`` seconds (the raw error is logged).
    """
    try:
        symbol = normalize_symbol(symbol)
    except ValueError as exc:
        raise HistoryError(str(exc)) from None
    history_range_check(start, end)
    rest_url = rest_url or settings.BINANCE_REST_URL
    now = int(time.time() * 1000) if now is None else now
    stop = min(end, now + 1)  # nothing is charged after now
    rows = FundingRateRow.objects.filter(symbol=symbol, funding_time__gte=start, funding_time__lt=stop)
    if start < stop and funding_slots_uncovered(rows.values_list("funding_time", flat=True), start, stop):
        async_to_sync(_funding_rates_fetch)(symbol, start, stop, rest_url, progress, max_wait)
    elif progress is not None:
        progress(1.0)
    rows = FundingRateRow.objects.filter(symbol=symbol, funding_time__gte=start, funding_time__lt=end)
    return [
        FundingRate(*row)
        for row in rows.order_by("funding_time").values_list("symbol", "funding_time", "rate", "mark_price")
    ]


async def _funding_rates_fetch(
    symbol: str, start: int, end: int, rest_url: str, progress: Progress | None, max_wait: float
) -> int:
    """Fetch and store the funding rates of ``symbol`` in ``[start, end)``, a page at a time; return how many."""
    rest = RestClient(rest_url)
    stored = 0
    try:
        async for page in funding_rate_pages(rest, symbol, start, end, max_wait=max_wait):
            stored += await sync_to_async(_funding_rates_store)(page)
            if progress is not None:
                await sync_to_async(progress)(min(1.0, (page[-1].funding_time + 1 - start) / (end - start)))
    except (RateLimited, httpx.HTTPError, MalformedFrame) as exc:
        raise history_error(exc, symbol=symbol, rest_url=rest_url) from exc
    finally:
        await rest.close()
    if progress is not None:
        await sync_to_async(progress)(1.0)
    logger.info("%s: %d funding rates fetched in %d requests", symbol, stored, rest.requests)
    return stored


def _funding_rates_store(rates: list[FundingRate]) -> int:
    """Store ``rates`` where none is yet (funding, once charged, never changes); return how many were offered."""
    FundingRateRow.objects.bulk_create(
        [
            FundingRateRow(symbol=f.symbol, funding_time=f.funding_time, rate=f.rate, mark_price=f.mark_price)
            for f in rates
        ],
        ignore_conflicts=True,
    )
    return len(rates)


# -- the universe of a screener -------------------------------------------------------


def universe_resolve(
    *,
    symbols: Iterable[str] | None = None,
    top: int = UNIVERSE_TOP_DEFAULT,
    rest_url: str | None = None,
    previous: Iterable[str] = (),
    quote: str = UNIVERSE_QUOTE,
    max_wait: float = HISTORY_MAX_WAIT,
) -> Universe:
    """The symbols a screener looks at: ``symbols`` checked against the exchange, else its top ``top``.

    With ``symbols``, each must be a perpetual the exchange trades: one that
    is not (unknown, delisted or paused since the last run, a delivery
    contract) is refused by name, all of them in one message. Without, the
    ``top`` symbols in status TRADING, contract type PERPETUAL and quote asset
    ``quote`` with the largest 24 h quote volume (``/fapi/v1/exchangeInfo``,
    weight 1, and ``/fapi/v1/ticker/24hr``, weight 40: ``binance.universe_top``).
    A perpetual that would rank but no longer trades (delisted since) drops
    out, logged, and so does a symbol of ``previous`` (the last universe) no
    longer in it: ``Universe.skipped`` says why of each.

    A 429/418 is waited out up to ``max_wait`` seconds in all (see
    ``client.market_listing``).

    Raises ``UniverseError`` with a message a user can act on: a symbol that
    is not one, fewer than 2 symbols or ``top`` out of 2..200 (200 symbols are
    19,900 pairs), symbols the exchange does not trade (named), an exchange
    that cannot be reached, answers an error, or limits the requests for
    longer than ``max_wait`` (saying when to try again; the raw error is logged).
    """
    rest_url = rest_url or settings.BINANCE_REST_URL
    wanted: list[str] | None = None
    if symbols is not None:
        wanted = _universe_symbols(symbols)
    else:
        universe_size_check(top)
    try:
        infos, tickers = async_to_sync(_universe_listing)(rest_url, wanted is None, max_wait)
    except (RateLimited, httpx.HTTPError, MalformedFrame) as exc:
        raise _universe_error(exc, rest_url) from exc
    if wanted is not None:
        problems = universe_check(wanted, infos)
        if problems:
            listed = "; ".join(problems.values())
            raise UniverseError(
                f"{'this symbol' if len(problems) == 1 else 'these symbols'} cannot be screened: {listed}"
            )
        return Universe(tuple(wanted), {}, {})
    chosen = universe_top(infos, tickers, top, quote)
    skipped = universe_passed_over(infos, tickers, chosen, quote)
    volumes = {t.symbol: t.quote_volume for t in tickers}
    for symbol in dict.fromkeys(s.upper() for s in previous):
        if symbol in chosen or symbol in skipped:
            continue
        entry = infos.get(symbol)
        if entry is None:
            skipped[symbol] = f"{symbol} is no longer in the exchange's symbol list"
        elif not entry.tradable:
            skipped[symbol] = f"{symbol} is no longer trading on the exchange (status {entry.status or 'none'})"
        elif symbol not in volumes:
            skipped[symbol] = f"{symbol} has no 24 h ticker"
        else:
            skipped[symbol] = f"{symbol} is no longer among the top {top} by 24 h quote volume"
    for symbol, why in skipped.items():
        trading = (entry := infos.get(symbol)) is not None and entry.status == "TRADING"
        logger.log(logging.INFO if trading else logging.WARNING, "universe: %s; left out", why)
    if len(chosen) < 2:
        raise UniverseError(
            f"the exchange trades {len(chosen)} {quote} perpetual{'' if len(chosen) == 1 else 's'} with a 24 h"
            " volume: a universe needs at least 2"
        )
    if len(chosen) < top:
        logger.info("universe: the exchange trades %d %s perpetuals, fewer than the top %d", len(chosen), quote, top)
    return Universe(tuple(chosen), skipped, {symbol: volumes[symbol] for symbol in chosen})


def _universe_symbols(symbols: Iterable[str]) -> list[str]:
    """``symbols`` upper-cased, each once, in order; refused unless they are 2 to ``UNIVERSE_MAX`` symbols."""
    if isinstance(symbols, str):
        symbols = symbols.split(",")
    names: list[str] = []
    bad: list[str] = []
    for raw in symbols:
        if not raw.strip():
            continue
        try:
            names.append(normalize_symbol(raw))
        except ValueError as exc:
            bad.append(str(exc))
    if bad:
        raise UniverseError("; ".join(bad))
    names = list(dict.fromkeys(names))
    if len(names) < 2:
        given = f"only {names[0]} was given" if names else "none was given"
        raise UniverseError(f"a universe needs at least 2 symbols to make a pair; {given}")
    universe_size_check(len(names))
    return names


async def _universe_listing(rest_url: str, tickers: bool, max_wait: float) -> tuple[dict, list]:
    rest = RestClient(rest_url)
    try:
        return await market_listing(rest, tickers=tickers, max_wait=max_wait)
    finally:
        await rest.close()


def _universe_error(exc: Exception, rest_url: str) -> UniverseError:
    """What to tell a user when the exchange's list or tickers could not be had from ``rest_url``."""
    where = url_credentials_masked(rest_url)
    logger.warning("universe from %s failed: %s", where, url_credentials_masked(repr(exc)))
    if isinstance(exc, RateLimited):
        after = utc_text(int((time.time() + exc.retry_after) * 1000))
        return UniverseError(
            f"the exchange is limiting this address's requests (HTTP {exc.status}) and asks for none for"
            f" {exc.retry_after:.0f} s: try again after {after}"
        )
    if isinstance(exc, httpx.HTTPStatusError):
        return UniverseError(
            f"the exchange answered HTTP {exc.response.status_code} when asked for its symbols; try again later"
        )
    if isinstance(exc, httpx.HTTPError):
        return UniverseError(
            f"cannot list the exchange's symbols: {unreachable_text(exc, rest_url)}; check the network and"
            " BINANCE_REST_URL, then try again"
        )
    return UniverseError(f"the exchange's symbol list could not be read ({exc}); try again later")
