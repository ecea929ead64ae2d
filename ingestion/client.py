"""The async Binance USD-M client: one combined-stream connection for all symbols.

No Django here: ticks go to a ``TickWriter`` and a ``RollingBuffers``, state to a
``FeedState`` that a service persists. The loop is split into small steps
(``connect``, ``on_frame``, ``backfill``, ``watchdog``) that tests drive against
the offline exchange.

Behaviour:
- reconnects for ever with jittered exponential backoff (at most one attempt a
  second, capped at ``max_backoff``); the websockets library answers pings;
- rotates the connection before Binance's 24 h cut: opens the new one, then closes
  the old; duplicate trades from the overlap are dropped;
- a watchdog reconnects when no symbol at all has traded for ``silence_timeout``
  seconds: the connection is dead, whatever its TCP says. One symbol silent
  while others flow is not the connection's fault: it is reported (``silent``),
  re-subscribed and checked against the exchange's symbol list with backoff,
  and the others are never dropped for it;
- gaps in aggregate ids, and the time spent disconnected, are filled from REST
  ``/fapi/v1/aggTrades`` through ``RestClient`` (which the klines warm-up
  shares: ``klines_fetch``); what REST no longer has is recorded as unfilled. A gap
  goes to the writer with the tick that revealed it and its repair with the last
  trade the backfill brought, so the database always knows which gaps are open
  (a restart resumes them: ``open_gaps``);
- history for a backtest comes through the same ``RestClient``, a page at a
  time (``klines_pages``, ``funding_rate_pages``), paced by the request weight
  the exchange reports and waiting out 429/418 answers;
- with every batch the feed states, per symbol, the trade time before which it
  has every trade (``closed_through``): what closes the bars, read from the
  stream itself, never from the local clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx
import orjson
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Frame

from pairs_project.common.masking import url_credentials_masked

from .binance import (
    AGG_TRADES_LIMIT,
    EXCHANGE_INFO_WEIGHT,
    FUNDING_RATE_LIMIT,
    KLINES_LIMIT,
    STREAMS,
    TICKER_24HR_WEIGHT_ALL,
    USED_WEIGHT_HEADER,
    WEIGHT_BUDGET_1M,
    FundingRate,
    Kline,
    ListedSymbol,
    MalformedFrame,
    MarkPrice,
    Tick,
    Ticker24h,
    agg_trades_url,
    exchange_info_url,
    funding_rate_url,
    interval_ms,
    klines_range_url,
    klines_url,
    klines_weight,
    parse_exchange_info,
    parse_frame,
    parse_rest_agg_trades,
    parse_rest_funding_rates,
    parse_rest_klines,
    parse_rest_tickers,
    stream_url,
    ticker_24hr_url,
    weight_pause,
)
from .buffers import RollingBuffers
from .errors import closed_text, unreachable_text
from .gaps import GapTracker
from .history import HistoryBeforeListing, HistoryError, utc_text
from .writer import GapEvent, TickWriter

logger = logging.getLogger(__name__)

#: How far (ms) one stream's events may run ahead of another's on the same
#: connection: a trade of one symbol, or the mark-price clock, proves the trades of
#: the other symbols only up to this much earlier. Within one symbol's own stream
#: the order is exact (aggregate ids).
CROSS_STREAM_SKEW_MS = 250


class Backoff:
    """Jittered exponential backoff: ``min_delay * 2**n``, capped, with full jitter above the floor."""

    def __init__(self, *, min_delay: float = 1.0, max_delay: float = 60.0, rng: random.Random | None = None) -> None:
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.max_delay, self.min_delay * 2**self.attempts)
        self.attempts += 1
        # Never below the floor, so at most one connect a second.
        return self.min_delay + self._rng.random() * (ceiling - self.min_delay)

    def reset(self) -> None:
        self.attempts = 0


@dataclasses.dataclass
class FeedState:
    """What the feed reports about itself; persisted about once a second."""

    url: str = ""
    symbols: list[str] = dataclasses.field(default_factory=list)
    connected: bool = False
    connected_since: float | None = None  # wall clock, seconds
    last_tick_at: int | None = None  # exchange trade time, ms
    last_message_at: float | None = None  # wall clock, seconds
    reconnects: int = 0
    connect_failures: int = 0
    ticks_received: int = 0
    duplicates: int = 0
    malformed: int = 0
    gaps_detected: int = 0
    gaps_filled: int = 0
    gaps_unfilled: int = 0
    trades_backfilled: int = 0
    trades_unavailable: int = 0
    rate_limited: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    # Subscribed symbols without a trade for the silence timeout while others
    # trade: symbol -> wall clock (s) of its last trade, or of its subscription.
    silent: dict[str, float] = dataclasses.field(default_factory=dict)
    # Symbols the exchange does not trade (so not followed): symbol -> why.
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)

    def error(self, message: str) -> None:
        self.last_error = url_credentials_masked(message)[:500]
        self.last_error_at = time.time()


class RateLimited(Exception):
    """The exchange answered 429 (too many requests) or 418 (IP banned): ask again after ``retry_after`` s."""

    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(f"HTTP {status}, retry after {retry_after:.0f}s")
        self.status = status
        self.retry_after = retry_after


#: Binance's error code for a symbol it does not know (HTTP 400, "Invalid symbol.").
INVALID_SYMBOL = -1121


class ExchangeError(httpx.HTTPStatusError):
    """An error answer in Binance's shape: an HTTP error status with ``{"code", "msg"}``.

    E.g. HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}``. An
    ``httpx.HTTPStatusError``, so whatever handles those handles it too.
    """

    def __init__(self, response: httpx.Response, code: int, msg: str) -> None:
        super().__init__(
            f"HTTP {response.status_code}: {msg} (code {code})", request=response.request, response=response
        )
        self.code = code
        self.msg = msg


def _exchange_error(response: httpx.Response) -> ExchangeError | None:
    """The ``ExchangeError`` of an error answer with Binance's body, or None for any other body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or type(body.get("code")) is not int or not isinstance(body.get("msg"), str):
        return None
    return ExchangeError(response, body["code"], body["msg"])


class RestClient:
    """The REST market-data calls of the app, honouring 429/418 and ``Retry-After``.

    The feed's backfill pages aggregate trades through it, the klines warm-up
    fetches candles through it, the history of a backtest comes through it:
    every request goes the same way (``_get_json``), so a rate limit is
    recognised and reported alike for all. It keeps the request weight the
    exchange last reported (``used_weight``, at ``used_weight_at``) for
    ``pace``, and counts its ``requests``.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, state: FeedState | None = None) -> None:
        self.base_url = base_url
        self.state = state or FeedState()
        self.requests = 0
        self.used_weight: int | None = None
        self.used_weight_at: float | None = None
        #: Used weight ``pace`` keeps a minute under (``binance.WEIGHT_BUDGET_1M``).
        self.weight_budget = WEIGHT_BUDGET_1M
        #: How it waits and tells the time (a test may count the waits, or stop the clock).
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.time
        self._http = httpx.AsyncClient(timeout=timeout, headers={"User-Agent": "pairs/1.0"})

    async def close(self) -> None:
        await self._http.aclose()

    async def agg_trades(self, symbol: str, from_id: int, limit: int = AGG_TRADES_LIMIT) -> list[Tick]:
        rows = await self._get_json(agg_trades_url(self.base_url, symbol, from_id, limit), "aggTrades")
        return parse_rest_agg_trades(symbol, rows)

    async def klines(self, symbol: str, interval: str, limit: int = KLINES_LIMIT) -> list[Kline]:
        """The newest ``limit`` klines of ``symbol``, oldest first (the last one still in progress)."""
        return parse_rest_klines(await self._get_json(klines_url(self.base_url, symbol, interval, limit), "klines"))

    async def klines_range(
        self, symbol: str, interval: str, start: int, end: int | None, limit: int = KLINES_LIMIT
    ) -> list[Kline]:
        """The first ``limit`` klines of ``symbol`` opening in ``[start, end)`` (ms; None: no end), oldest first.

        The last one may be in progress, when the range reaches now.
        """
        url = klines_range_url(self.base_url, symbol, interval, start, None if end is None else end - 1, limit)
        return parse_rest_klines(await self._get_json(url, "klines"))

    async def funding_rates(
        self, symbol: str, start: int, end: int, limit: int = FUNDING_RATE_LIMIT
    ) -> list[FundingRate]:
        """The first ``limit`` funding rates of ``symbol`` in ``[start, end)`` (ms), oldest first."""
        url = funding_rate_url(self.base_url, symbol, start, end - 1, limit)
        return parse_rest_funding_rates(await self._get_json(url, "fundingRate"))

    async def exchange_info(self) -> dict[str, ListedSymbol]:
        """The exchange's symbol list, by name (``GET /fapi/v1/exchangeInfo``, weight 1)."""
        return parse_exchange_info(await self._get_json(exchange_info_url(self.base_url), "exchangeInfo"))

    async def tickers_24hr(self) -> list[Ticker24h]:
        """The 24 h statistics of every symbol (``GET /fapi/v1/ticker/24hr``, weight 40)."""
        return parse_rest_tickers(await self._get_json(ticker_24hr_url(self.base_url), "ticker/24hr"))

    async def pace(self, weight: int) -> float:
        """Wait, if need be, until a request of ``weight`` keeps the minute's used weight within ``weight_budget``.

        Returns the seconds waited (see ``binance.weight_pause``).
        """
        delay = weight_pause(self.used_weight, self.used_weight_at, weight, self.clock(), self.weight_budget)
        if delay > 0:
            logger.info("REST weight %s used this minute; waiting %.0fs for the next one", self.used_weight, delay)
            await self.sleep(delay)
        return delay

    async def _get_json(self, url: str, what: str) -> Any:
        """GET ``url`` and decode its JSON.

        Raises ``RateLimited`` on 429/418, ``ExchangeError`` on an error answer
        in Binance's shape, ``httpx.HTTPError`` on other errors.
        """
        response = await self._http.get(url)
        self.requests += 1
        used = response.headers.get(USED_WEIGHT_HEADER)
        if used is not None and used.isascii() and used.isdigit():
            self.used_weight, self.used_weight_at = int(used), self.clock()
        if response.status_code in (418, 429):
            # 429: too many requests; 418: the IP is banned for Retry-After seconds.
            retry_after = float(response.headers.get("Retry-After") or 60)
            self.state.rate_limited += 1
            raise RateLimited(response.status_code, retry_after)
        if response.is_error:
            error = _exchange_error(response)
            if error is not None:
                raise error
        response.raise_for_status()
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:  # e.g. a proxy's HTML error page with a 200
            raise MalformedFrame(f"{what} answer is not JSON: {exc}") from None


async def klines_fetch(rest_url: str, symbol: str, interval: str, *, limit: int, max_wait: float) -> list[Kline]:
    """The newest ``limit`` klines of ``symbol`` at ``interval``, through ``RestClient``.

    A 429/418 is honoured as the backfill honours it: no request before its
    ``Retry-After`` has passed, then the same request again. A wait that would
    take the total past ``max_wait`` seconds is not made: ``RateLimited`` goes
    to the caller, which leaves the fetch to a later run (a periodic task must
    not sleep through a ban of hours). Other errors propagate at once.
    """
    rest = RestClient(rest_url)
    waited = 0.0
    try:
        while True:
            try:
                return await rest.klines(symbol, interval, limit)
            except RateLimited as exc:
                if waited + exc.retry_after > max_wait:
                    raise
                logger.warning("REST klines of %s: %s; waiting %.0fs", symbol, exc, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
                waited += exc.retry_after
    finally:
        await rest.close()


# -- history, a page at a time -------------------------------------------------------

#: Klines a history request asks for: 1,000 weigh 5 where 1,500 weigh 10, so a long
#: range costs a third less of the minute's weight (in half as many requests again).
HISTORY_KLINES_PAGE = 1000
#: Longest a history fetch waits out 429/418 answers (their ``Retry-After``, summed)
#: before giving up: a ban longer than that goes to the caller as ``RateLimited``.
HISTORY_MAX_WAIT = 120.0
#: The weight a fundingRate request is paced as (Binance counts those against a
#: limit of their own, 500 requests in 5 minutes an IP, far from what a range needs).
FUNDING_RATE_WEIGHT = 1

#: ``progress(fraction)``: how much of a fetch is done, 0 to 1.
Progress = Callable[[float], None]


class _Patience:
    """What a fetch has waited out of 429/418 answers, against its ``max_wait``."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self.waited = 0.0

    async def ask(self, rest: RestClient, weight: int, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()`` once the weight allows it, again after each 429/418 while the waits fit ``max_wait``."""
        while True:
            await rest.pace(weight)
            try:
                return await call()
            except RateLimited as exc:
                if self.waited + exc.retry_after > self.max_wait:
                    raise
                logger.warning("REST %s: %s; waiting %.0fs", what, exc, exc.retry_after)
                await rest.sleep(exc.retry_after)
                self.waited += exc.retry_after


async def klines_pages(
    rest: RestClient,
    symbol: str,
    interval: str,
    start: int,
    end: int,
    *,
    limit: int = HISTORY_KLINES_PAGE,
    max_wait: float = HISTORY_MAX_WAIT,
    progress: Progress | None = None,
) -> AsyncIterator[list[Kline]]:
    """The klines of ``symbol`` at ``interval`` opening in ``[start, end)`` (ms), a page at a time, oldest first.

    Each request asks for ``limit`` from the open time after the last one
    received; the fetch ends with the range's last kline, or a short (or
    empty) page. A kline still in progress comes as the exchange sends it: the
    caller keeps the closed ones. Before each request the used weight is
    checked (``RestClient.pace``); a 429/418 is waited out for its
    ``Retry-After``, up to ``max_wait`` seconds in all, beyond which
    ``RateLimited`` is raised. ``progress(fraction)`` follows the range's time
    covered.

    When the first kline comes later than the range's first open time (or none
    comes), the exchange is asked whether it has any before: if not, the range
    starts before its history of the symbol and ``HistoryBeforeListing`` says
    where that history begins (a hole later in its history is no error: the
    klines there are simply missing). Other errors propagate: ``ExchangeError``
    (e.g. code -1121, an unknown symbol), ``httpx.HTTPError``, ``MalformedFrame``.
    """
    patience = _Patience(max_wait)
    weight = klines_weight(limit)
    what = f"klines of {symbol}"
    width = interval_ms(interval)
    first_open = -(-start // width) * width
    cursor = start
    while cursor < end:
        call = functools.partial(rest.klines_range, symbol, interval, cursor, end, limit)
        page = [k for k in await patience.ask(rest, weight, what, call) if cursor <= k.open_time < end]
        if cursor == start and (not page or page[0].open_time > first_open):
            await _history_start_check(rest, patience, symbol, interval, (start, end), page)
        if not page:
            break
        yield page
        cursor = page[-1].open_time + 1
        if progress is not None:
            progress(min(1.0, (cursor - start) / (end - start)))
        if len(page) < limit or page[-1].open_time + width >= end:
            break  # the range is done: no kline opens in it after this one
    if progress is not None:
        progress(1.0)


async def _history_start_check(
    rest: RestClient, patience: _Patience, symbol: str, interval: str, span: tuple[int, int], page: list[Kline]
) -> None:
    """Raise ``HistoryBeforeListing`` when the exchange has no kline of ``symbol`` before ``span``'s start."""
    start, end = span
    what = f"klines of {symbol}"
    earliest = functools.partial(rest.klines_range, symbol, interval, 0, start, 1)
    if await patience.ask(rest, klines_weight(1), what, earliest):
        return  # history before the range: this is a hole in it, not its beginning
    if page:
        begins: int | None = page[0].open_time
    else:
        after = functools.partial(rest.klines_range, symbol, interval, end, None, 1)
        later = await patience.ask(rest, klines_weight(1), what, after)
        begins = later[0].open_time if later else None
    if begins is None:
        message = f"the exchange has no {interval} klines of {symbol} from {utc_text(start)} on"
    else:
        message = (
            f"the exchange's {interval} history of {symbol} begins {utc_text(begins)}; the range starts"
            f" {utc_text(start)}, before it: start at {utc_text(begins)} or later"
        )
    raise HistoryBeforeListing(message, begins)


async def funding_rate_pages(
    rest: RestClient,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int = FUNDING_RATE_LIMIT,
    max_wait: float = HISTORY_MAX_WAIT,
    progress: Progress | None = None,
) -> AsyncIterator[list[FundingRate]]:
    """The funding rates of ``symbol`` in ``[start, end)`` (ms), a page at a time, oldest first.

    Paged like ``klines_pages`` (from the funding time after the last one
    received, until the end of the range or a short page), paced and patient
    the same way. Nothing before the symbol's listing is an error here: there
    was no funding then.
    """
    patience = _Patience(max_wait)
    cursor = start
    while cursor < end:
        call = functools.partial(rest.funding_rates, symbol, cursor, end, limit)
        rows = await patience.ask(rest, FUNDING_RATE_WEIGHT, f"funding rates of {symbol}", call)
        page = [f for f in rows if cursor <= f.funding_time < end]
        if not page:
            break
        yield page
        cursor = page[-1].funding_time + 1
        if progress is not None:
            progress(min(1.0, (cursor - start) / (end - start)))
        if len(page) < limit:
            break
    if progress is not None:
        progress(1.0)


async def market_listing(
    rest: RestClient, *, tickers: bool = True, max_wait: float = HISTORY_MAX_WAIT
) -> tuple[dict[str, ListedSymbol], list[Ticker24h]]:
    """The exchange's symbol list and, with ``tickers``, every symbol's 24 h ticker (else an empty list).

    Two requests (weights 1 and 40), paced and patient as ``klines_pages``
    is: a 429/418 is waited out for its ``Retry-After``, up to ``max_wait``
    seconds in all, beyond which ``RateLimited`` is raised. Other errors
    propagate: ``httpx.HTTPError``, ``MalformedFrame``.
    """
    patience = _Patience(max_wait)
    infos = await patience.ask(rest, EXCHANGE_INFO_WEIGHT, "exchangeInfo", rest.exchange_info)
    rows = await patience.ask(rest, TICKER_24HR_WEIGHT_ALL, "ticker/24hr", rest.tickers_24hr) if tickers else []
    return infos, rows


def history_error(exc: Exception, *, symbol: str, rest_url: str) -> HistoryError:
    """What to tell a user when fetching ``symbol``'s history from ``rest_url`` failed with ``exc``.

    The raw error goes to the log (the message a user reads says what to do).
    """
    if isinstance(exc, HistoryError):
        return exc
    where = url_credentials_masked(rest_url)
    logger.warning("history of %s from %s failed: %s", symbol, where, url_credentials_masked(repr(exc)))
    if isinstance(exc, RateLimited):
        return HistoryError(
            f"the exchange is limiting this address's requests (HTTP {exc.status}) and asks for none for"
            f" {exc.retry_after:.0f} s, longer than a history fetch waits; try again later"
        )
    if isinstance(exc, ExchangeError):
        if exc.code == INVALID_SYMBOL:
            return HistoryError(f"{symbol} is not a symbol of the exchange (it answered: {exc.msg})")
        return HistoryError(f"the exchange refused the history of {symbol}: {exc.msg} (code {exc.code})")
    if isinstance(exc, httpx.HTTPStatusError):
        return HistoryError(
            f"the exchange answered HTTP {exc.response.status_code} to a history request for {symbol}; try again later"
        )
    if isinstance(exc, httpx.HTTPError):
        return HistoryError(
            f"cannot fetch the history of {symbol}: {unreachable_text(exc, rest_url)}; check the network and"
            " BINANCE_REST_URL"
        )
    if isinstance(exc, MalformedFrame):
        return HistoryError(f"the exchange's answer for the history of {symbol} could not be read: {exc}")
    raise TypeError(f"not a history fetch error: {exc!r}") from exc


#: ``check(symbols)``: for those the exchange does not trade, why (a message naming each).
SymbolCheck = Callable[[list[str]], Awaitable[dict[str, str]]]

#: Longest wait between two re-subscriptions of a silent symbol (seconds).
SILENT_RETRY_MAX = 600.0


class StreamConnection(websockets.ClientConnection):
    """A client connection that hands each data message to ``on_message`` as soon as it is parsed.

    The library's ``recv()`` queues every message and hands it over through a
    lock and a future, one event-loop step per message; at the tens of
    thousands of messages a second of a busy stream that costs as much as the
    frames' parsing. Here a message goes from the parsed frame straight to the
    feed, in the same step as the bytes that carried it. Everything else (the
    handshake, pings, closing) is the library's. Fragmented messages, which
    Binance does not send, are joined first.

    A handler that raises is a bug, not bad data (the feed counts and skips a
    malformed frame itself): the connection is closed (1011), as a failed read
    would end it, with the exception in ``failure``; the feed reconnects and
    backfills.
    """

    def __init__(self, *args: Any, on_message: Callable[[bytes], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_message = on_message
        self._fragments: list[bytes] = []
        self.messages = 0
        self.failure: Exception | None = None

    def process_event(self, event: Any) -> None:
        if self.response is None or type(event) is not Frame:
            super().process_event(event)  # the handshake's response
            return
        if event.opcode in DATA_OPCODES:
            if self.failure is not None:
                return  # closing: nothing more is handed over
            if not event.fin or self._fragments:
                self._fragments.append(bytes(event.data))
                if not event.fin:
                    return
                data, self._fragments = b"".join(self._fragments), []
            else:
                data = event.data
            self.messages += 1
            try:
                self.on_message(data)
            except Exception as exc:
                logger.exception("a stream message could not be handled: %.200r", data)
                self.failure = exc
                self.loop.create_task(self.close(1011, "the client could not handle a message"))
            return
        super().process_event(event)


class FeedClient:
    """Streams aggTrades of ``symbols`` into ``writer`` for ever (until ``stop``).

    ``symbol_check``, when given, is asked about symbols that stay silent while
    others trade; what it says is kept in ``state.unavailable``.
    """

    def __init__(
        self,
        *,
        symbols: Iterable[str],
        ws_url: str,
        rest_url: str,
        writer: TickWriter,
        buffers: RollingBuffers | None = None,
        state: FeedState | None = None,
        last_ids: dict[str, int] | None = None,
        open_gaps: Iterable[tuple[str, int, int, list[tuple[int, int]]]] = (),
        silence_timeout: float = 30.0,
        rotate_after: float = 23.5 * 3600,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        symbol_check: SymbolCheck | None = None,
    ) -> None:
        self.symbols = sorted({s.upper() for s in symbols})
        self.ws_url = ws_url
        self.writer = writer
        self.buffers = buffers or RollingBuffers()
        self.state = state or FeedState()
        self.state.symbols = list(self.symbols)
        self.tracker = GapTracker(last_ids)
        # Gaps an earlier run left open: still missing, backfilled first.
        self._resume: list[tuple[str, int, int]] = []
        for symbol, lo, hi, missing in open_gaps:
            self.tracker.restore(symbol, missing)
            self._resume.append((symbol, lo, hi))
        self._resumed = {(symbol, lo) for symbol, lo, _ in self._resume}
        self.silence_timeout = silence_timeout
        self.rotate_after = rotate_after
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.rest = RestClient(rest_url, state=self.state)
        self._backfills: asyncio.Queue[tuple[str, int, int | None]] = asyncio.Queue()
        # What ``closed_through`` states: each symbol's newest trade time among its
        # contiguous ids, the exchange's clock as the stream shows it (trade and
        # mark-price times), and the catch-ups after a connect not done yet.
        self._newest_time: dict[str, int] = {}
        self._stream_clock: int | None = None
        self._catching_up: dict[str, int] = {}
        self.symbol_check = symbol_check
        self._last_seen: dict[str, float] = {}  # monotonic time of each symbol's newest trade
        self._following_since: dict[str, float] = {}  # wall clock of each symbol's first subscription
        self._silent_retry: dict[str, tuple[float, float, float | None]] = {}  # next try, delay, _last_seen then
        self._checking: asyncio.Task[None] | None = None
        self._request_id = 0
        self._stopping = asyncio.Event()
        self._rotate = asyncio.Event()
        self._connections = 0

    # -- public -------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Follow a new set of symbols: the connection is rotated onto the new stream."""
        wanted = sorted({s.upper() for s in symbols})
        if wanted != self.symbols:
            logger.info("symbols change %s -> %s", ",".join(self.symbols), ",".join(wanted))
            self.symbols = wanted
            self.state.symbols = list(wanted)
            self._rotate.set()

    async def run(self) -> None:
        """Connect, read, reconnect with backoff; returns once ``stop`` was called."""
        for symbol, lo, hi in self._resume:
            logger.info("%s: resuming the backfill of ids %d..%d left open by the last run", symbol, lo, hi)
            self.state.gaps_detected += 1
            self._backfills.put_nowait((symbol, lo, hi))
        backfiller = asyncio.create_task(self._backfill_loop(), name="feed-backfill")
        try:
            while not self._stopping.is_set():
                if not self.symbols:  # nothing to follow (yet): wait for symbols
                    await self._wait_for_symbols()
                    continue
                try:
                    ws = await self.connect()
                except Exception as exc:
                    delay = self.backoff.next_delay()
                    self._connect_failed(exc, delay)
                    await self._sleep(delay)
                    continue
                await self._serve(ws)
                self.state.connected = False
                if not self._stopping.is_set():
                    await self._sleep(self.backoff.next_delay())
        finally:
            self.state.connected = False
            backfiller.cancel()
            await asyncio.gather(backfiller, return_exceptions=True)
            await self.rest.close()

    # -- steps --------------------------------------------------------------

    async def connect(self) -> StreamConnection:
        self._rotate.clear()  # this connection follows the current symbols
        url = stream_url(self.ws_url, self.symbols)
        self.state.url = url_credentials_masked(url)
        ws: StreamConnection = await websockets.connect(  # type: ignore[assignment]
            url,
            open_timeout=self.open_timeout,
            # On stop, a peer that does not answer the closing handshake holds the
            # shutdown for no longer than this.
            close_timeout=2,
            max_size=2**22,
            # Binance pings every few minutes and closes silent clients; the
            # library answers its pings, and ours detect a dead TCP path.
            ping_interval=20,
            ping_timeout=20,
            compression=None,
            create_connection=functools.partial(StreamConnection, on_message=self.on_frame),  # type: ignore[arg-type]
        )
        self._connections += 1
        if self._connections > 1:
            self.state.reconnects += 1
        now = time.time()
        for symbol in self.symbols:
            self._following_since.setdefault(symbol, now)
        self.state.connected = True
        self.state.connected_since = time.time()
        logger.info("connected to %s", self.state.url)
        # Whatever happened while we were away is fetched from REST; until then
        # nothing is stated of the symbol.
        for symbol in self.symbols:
            high = self.tracker.high(symbol)
            if high is not None:
                self._catching_up[symbol] = self._catching_up.get(symbol, 0) + 1
                self._backfills.put_nowait((symbol, high + 1, None))
        return ws

    def on_frame(self, frame: str | bytes) -> None:
        """Parse one frame and hand its trade on; a bad frame is logged and counted."""
        try:
            event = parse_frame(frame)
        except MalformedFrame as exc:
            self.state.malformed += 1
            self.state.error(f"malformed frame: {exc}")
            logger.warning("malformed frame skipped: %s: %.200r", exc, frame)
            return
        if type(event) is Tick:  # nearly every frame: no more calls than needed
            self._last_seen[event.symbol] = time.monotonic()
            self.state.ticks_received += 1
            self.accept(event)
            if self._stream_clock is None or event.timestamp > self._stream_clock:
                self._stream_clock = event.timestamp
            return
        if isinstance(event, MarkPrice):
            self._clock_advance(event.event_time)

    def accept(self, tick: Tick) -> bool:
        """Store ``tick`` unless it was seen before; open a backfill on an id jump."""
        symbol = tick.symbol
        high = self.tracker.high(symbol)
        new, gap = self.tracker.observe(symbol, tick.trade_id)
        if not new:
            self.state.duplicates += 1
            return False
        if gap is not None:
            self.state.gaps_detected += 1
            logger.info("%s: ids %d..%d missing (%d trades), backfilling", symbol, gap[0], gap[1], gap[1] - gap[0] + 1)
            self.writer.put_gap(GapEvent(symbol, gap[0], gap[1]))  # stored with this tick
            self._backfills.put_nowait((symbol, gap[0], gap[1]))
        if high is None or tick.trade_id > high:
            self._newest_time[symbol] = max(tick.timestamp, self._newest_time.get(symbol, tick.timestamp))
        self.writer.put(tick)
        self.buffers.append(tick)
        state = self.state
        if state.last_tick_at is None or tick.timestamp > state.last_tick_at:
            state.last_tick_at = tick.timestamp
        return True

    async def backfill(self, symbol: str, lo: int, hi: int | None) -> None:
        """Fetch ids from ``lo`` (to ``hi``, or until caught up) from REST.

        Rows go through ``accept`` like live frames, so overlap with the stream is
        harmless. A gap (``hi`` given) is resolved through the writer once its
        trades are, so the database marks it repaired only with (or after) them;
        ids REST no longer serves (older than its history window) are given up and
        recorded as unavailable, never silently. A catch-up (``hi`` None) gives up
        nothing itself: a trade it cannot have is a gap, which its own backfill
        resolves. Stopped half-way, nothing is resolved: the next start resumes.
        """
        start = lo
        lost = 0
        recovered = 0
        empty_tries = 0
        rest_backoff = Backoff(min_delay=0.5, max_delay=30.0)
        while not self._stopping.is_set():
            if hi is not None:
                nxt = self.tracker.first_missing(symbol, start, hi)
                if nxt is None:
                    break
                start = nxt
            elif self._reached_live(symbol, start):
                break  # the rest came live (a gap it revealed has a backfill of its own)
            try:
                rows = await self.rest.agg_trades(symbol, start)
            except RateLimited as exc:
                logger.warning("REST %s: backing off %.0fs", exc, exc.retry_after)
                self.state.error(f"REST rate limited: {exc}")
                await self._sleep(exc.retry_after)
                continue
            except (httpx.HTTPError, MalformedFrame) as exc:
                delay = rest_backoff.next_delay()
                self.state.error(f"REST aggTrades failed: {unreachable_text(exc, self.rest.base_url)}")
                logger.warning(
                    "%s (%s from %d; %s: %s); retry in %.1fs",
                    self.state.last_error,
                    symbol,
                    start,
                    exc.__class__.__name__,
                    url_credentials_masked(str(exc)),
                    delay,
                )
                await self._sleep(delay)
                continue
            rest_backoff.reset()
            if not rows:
                if hi is None:
                    break  # nothing newer: caught up
                # The stream can run slightly ahead of REST; give it a moment.
                empty_tries += 1
                if empty_tries < 3:
                    await self._sleep(1.0)
                    continue
                lost += self.tracker.give_up(symbol, start, hi)
                break
            empty_tries = 0
            for tick in rows:
                if self.accept(tick):
                    recovered += 1
                    self.state.trades_backfilled += 1
            if hi is not None and rows[0].trade_id > start:
                # REST starts later than asked: those trades are beyond its history.
                lost += self.tracker.give_up(symbol, start, min(rows[0].trade_id - 1, hi))
            start = rows[-1].trade_id + 1
            if hi is None and len(rows) < AGG_TRADES_LIMIT:
                break
            if hi is not None and start > hi:
                start = lo  # re-check the whole range for anything still missing
        if self._stopping.is_set():
            return
        resumed = (symbol, lo) in self._resumed
        if hi is not None:
            self.writer.put_gap(GapEvent(symbol, lo, hi, lost))
        if lost:
            self.state.gaps_unfilled += 1
            self.state.trades_unavailable += lost
            message = f"{symbol}: {lost} trades in ids {lo}..{hi} are no longer served by REST and are missing"
            self.state.error(message)
            logger.error(message)
        elif hi is not None and not recovered and not resumed:
            # Filled meanwhile by the catch-up that follows a reconnect: the same
            # outage seen from both ends, counted once.
            self.state.gaps_detected -= 1
        elif recovered or resumed:
            # A catch-up after a reconnect that found trades closed a gap too.
            if hi is None:
                self.state.gaps_detected += 1
            self.state.gaps_filled += 1
            logger.info("%s: gap from id %d filled with %d trades from REST", symbol, lo, recovered)

    def closed_through(self) -> dict[str, int]:
        """Per symbol, a trade time (ms) before which every trade of it has been received.

        The feed's statement, stored with each batch (``TickWriter.statement``), so
        whatever reads the ticks knows which bars are complete. A symbol's own
        newest trade among contiguous ids proves its earlier ones; the stream's
        clock (the newest trade or mark-price time of any symbol on the connection)
        proves them up to ``CROSS_STREAM_SKEW_MS`` before it, quiet market or not.
        Nothing is stated of a symbol while it has ids missing or its catch-up
        after a connect is still running, nor while disconnected (the trades being
        made are not coming). Times are the exchange's own: the local clock is
        never used, so neither its error nor a slow reader can close a bar early.
        """
        if not self.state.connected:
            return {}
        clock = self._stream_clock - CROSS_STREAM_SKEW_MS if self._stream_clock is not None else None
        stated = {}
        for symbol in self.symbols:
            if self._catching_up.get(symbol) or self.tracker.has_missing(symbol):
                continue
            own = self._newest_time.get(symbol)
            candidates = [t for t in (own, clock) if t is not None]
            if candidates:
                stated[symbol] = max(candidates)
        return stated

    # -- internals ----------------------------------------------------------

    def _connect_failed(self, exc: BaseException, retry_in: float | None = None) -> None:
        self.state.connected = False
        self.state.connect_failures += 1
        # The health record and the pages get plain words; the log keeps the exception too.
        self.state.error(f"cannot connect to the stream: {unreachable_text(exc, self.ws_url)}")
        retry = f", retrying in {retry_in:.1f}s" if retry_in is not None else ""
        raw = url_credentials_masked(f"{exc.__class__.__name__}: {exc}")
        logger.warning("%s (attempt %d%s; %s)", self.state.last_error, self.state.connect_failures, retry, raw)

    async def _serve(self, ws: StreamConnection) -> None:
        """Read ``ws`` until it dies; rotate it on schedule or when the symbols change."""
        while True:
            reader = asyncio.create_task(self._read(ws), name="feed-reader")
            watchdog = asyncio.create_task(self._watchdog(ws), name="feed-watchdog")
            rotate_wait = asyncio.create_task(self._rotate.wait())
            stop_wait = asyncio.create_task(self._stopping.wait())
            done, _ = await asyncio.wait(
                {reader, rotate_wait, stop_wait}, timeout=self.rotate_after, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (rotate_wait, stop_wait):
                task.cancel()
            if reader in done or stop_wait in done:
                watchdog.cancel()
                await ws.close()
                await asyncio.gather(reader, watchdog, return_exceptions=True)
                return
            # Rotation: open the new connection first, then drop the old one.
            try:
                new_ws = await self.connect()
            except Exception as exc:
                self._connect_failed(exc)
                watchdog.cancel()
                reader.cancel()
                await ws.close()
                await asyncio.gather(reader, watchdog, return_exceptions=True)
                return
            logger.info("rotated the stream connection")
            watchdog.cancel()
            await ws.close()
            await asyncio.gather(reader, watchdog, return_exceptions=True)
            ws = new_ws

    async def _read(self, ws: StreamConnection) -> None:
        """Wait for ``ws`` to close (its messages go to ``on_frame`` as they arrive); say why it closed."""
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            # The connection proved itself once it delivered for a few seconds: reset the backoff.
            await asyncio.wait_for(asyncio.shield(closed), 5.0)
        except TimeoutError:
            if ws.messages:
                self.backoff.reset()
            await closed
        exc = ws.protocol.close_exc
        failure = ws.failure
        # A close we started (watchdog, rotation, stop) already said why.
        closed_by_us = exc.sent is not None and not exc.rcvd_then_sent
        if failure is not None:
            self.state.error(f"a message could not be handled ({failure.__class__.__name__}: {failure}); reconnecting")
        elif not self._stopping.is_set() and not closed_by_us:
            self.state.error(f"the stream ended: {closed_text(exc, self.ws_url)}")
            logger.warning("stream connection closed: %s", exc)

    async def _watchdog(self, ws: websockets.ClientConnection) -> None:
        """Reconnect a dead stream; report, re-subscribe and check a symbol silent on a live one.

        Silence is counted from a symbol's newest trade, or from this
        connection's opening if later. When every symbol is silent nothing
        arrives at all and the connection is dead (Binance's bare host, for
        one, acknowledges subscriptions and sends nothing): reconnect. When
        only some are, the connection works and a reconnect would only cost
        the others a gap and a backfill: the silent ones are handled on their
        own (``_silent_symbols``).
        """
        interval = min(1.0, self.silence_timeout / 4)
        opened = time.monotonic()
        try:
            while True:
                await asyncio.sleep(interval)
                now = time.monotonic()
                symbols = self.symbols
                last_seen = self._last_seen
                silent = [s for s in symbols if now - max(last_seen.get(s, opened), opened) > self.silence_timeout]
                if silent and len(silent) == len(symbols):
                    message = f"no trade for {self.silence_timeout:.0f}s on {','.join(silent)}; reconnecting"
                    self.state.error(message)
                    logger.warning(message)
                    await ws.close(code=1000, reason="silent stream")
                    return
                await self._silent_symbols(ws, silent, now)
        finally:
            if self._checking is not None:
                self._checking.cancel()

    async def _silent_symbols(self, ws: websockets.ClientConnection, silent: list[str], now: float) -> None:
        """Keep ``state.silent`` true; re-subscribe and check each silent symbol, with backoff."""
        state = self.state
        wall = time.time()
        for symbol in list(state.silent):
            retry = self._silent_retry.get(symbol)
            if symbol not in self.symbols:
                del state.silent[symbol]
                self._silent_retry.pop(symbol, None)
            elif retry is not None and self._last_seen.get(symbol) != retry[2]:
                logger.info("%s trades again after %.0f s without a trade", symbol, wall - state.silent.pop(symbol))
                del self._silent_retry[symbol]
        due: list[str] = []
        for symbol in silent:
            last = self._last_seen.get(symbol)
            if symbol not in state.silent:
                since = wall - (now - last) if last is not None else self._following_since.get(symbol, wall)
                state.silent[symbol] = since
                message = f"{symbol}: no trade for {wall - since:.0f} s while the stream is live"
                state.error(message)
                logger.warning(
                    "%s (other symbols trade): not reconnecting; re-subscribing it and checking the exchange's list",
                    message,
                )
                self._silent_retry[symbol] = (now, self.silence_timeout, last)
            next_try, delay, seen = self._silent_retry[symbol]
            if now >= next_try:
                due.append(symbol)
                self._silent_retry[symbol] = (now + delay, min(delay * 2, SILENT_RETRY_MAX), seen)
        if not due:
            return
        # A SUBSCRIBE for a stream already subscribed is a harmless no-op on
        # Binance, and brings back one the server dropped on its own.
        self._request_id += 1
        streams = [f"{s.lower()}@{kind}" for s in due for kind in STREAMS]
        request = {"method": "SUBSCRIBE", "params": streams, "id": self._request_id}
        try:
            await ws.send(orjson.dumps(request).decode())
        except ConnectionClosed:
            return  # the reader saw it too, and reconnects
        if self.symbol_check is not None and (self._checking is None or self._checking.done()):
            self._checking = asyncio.create_task(self._check_symbols(due), name="feed-symbol-check")

    async def _check_symbols(self, symbols: list[str]) -> None:
        """Ask the exchange's list about ``symbols``; what it does not trade goes to ``state.unavailable``."""
        try:
            problems = await self.symbol_check(symbols)  # type: ignore[misc]
        except Exception as exc:
            logger.warning("could not check %s against the exchange's list: %s", ",".join(symbols), exc)
            return
        for symbol in symbols:
            if symbol not in problems:
                self.state.unavailable.pop(symbol, None)
        for symbol, problem in problems.items():
            if self.state.unavailable.get(symbol) != problem:
                logger.warning("%s; it will not be followed", problem)
                self.state.error(problem)
            self.state.unavailable[symbol] = problem

    async def _wait_for_symbols(self) -> None:
        rotate = asyncio.create_task(self._rotate.wait())
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({rotate, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (rotate, stop):
            task.cancel()
        self._rotate.clear()

    def _reached_live(self, symbol: str, start: int) -> bool:
        """Whether a catch-up from ``start`` has met the stream: every id from it to the newest is here."""
        high = self.tracker.high(symbol)
        return high is not None and high >= start and self.tracker.first_missing(symbol, start, high) is None

    def _clock_advance(self, exchange_time: int) -> None:
        if self._stream_clock is None or exchange_time > self._stream_clock:
            self._stream_clock = exchange_time

    async def _backfill_loop(self) -> None:
        while True:
            symbol, lo, hi = await self._backfills.get()
            try:
                await self.backfill(symbol, lo, hi)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("backfill of %s from %d failed", symbol, lo)
            finally:
                if hi is None and not self._stopping.is_set():
                    self._catching_up[symbol] -= 1

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early on ``stop``."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
