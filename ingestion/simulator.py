"""An offline Binance USD-M futures exchange on loopback (no Django).

It speaks the market-data protocol the feed client uses, on ONE port:

- WebSocket, with or without the ``/market`` (or ``/public``) route prefix:
  ``/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade`` (combined frames),
  ``<symbol>@markPrice@1s`` (each second, after every trade stamped before its
  event time has been sent, as an in-order exchange clock),
  ``/ws/btcusdt@aggTrade`` (raw frames), and bare ``/ws`` or ``/stream`` followed
  by ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY``
  messages. Unknown stream names are accepted and get nothing, as on Binance.
- REST: ``/fapi/v1/aggTrades``, ``/fapi/v1/klines``, ``/fapi/v1/exchangeInfo``,
  ``/fapi/v1/time``, ``/fapi/v1/ping``, with Binance's error shape.
- Control: ``/sim/fault?kind=drop|refuse|malformed|rate_limit|slow``, ``/sim/stats``,
  ``/sim/pause``, ``/sim/resume``.

Besides the symbols it trades, ``exchangeInfo`` can list symbols that never
trade (``listed``; the simulator's ``delisted`` and ``silent``): a delisted one
(status SETTLING) and a TRADING one without a single trade, the two ways a
subscribed stream stays silent on Binance while the others flow.

Trades come from a scenario: ``cointegrated`` (BTC = alpha + beta * ETH + an
Ornstein-Uhlenbeck spread), ``random_walk`` (same, but the spread wanders) or
``replay`` (a real recording, re-stamped to now). The exchange keeps a bounded
per-symbol history in flat arrays, which is what REST serves; older trades are
forgotten exactly like Binance's history window, so the client can meet a gap
it cannot fill. Klines of the pair scenarios also reach back before the start:
``PREHISTORY_BARS`` synthetic candles per interval of ``PREHISTORY_INTERVALS``
(the scenario's model run backward from its starting prices), so an app can warm
up a 1m or 5m window at once; aggTrades have no such history.

Use it from tests::

    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=7) as sim:
        ...  # sim.ws_url, sim.rest_url, sim.exchange, sim.fault_drop(), ...

or from the command line: ``python manage.py simulate_binance``.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import email.utils
import gzip
import http
import logging
import math
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import SplitResult, parse_qs, urlsplit

import numpy as np
import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from .binance import (
    AGG_TRADES_LIMIT,
    MarkPrice,
    Tick,
    agg_trade_frame,
    agg_trade_payload,
    format_decimal,
    mark_price_frame,
)

logger = logging.getLogger(__name__)

# websockets logs every plain HTTP answer at INFO ("HTTP response sent"); a REST
# backfill makes hundreds of them, so its logger only speaks up for problems.
_ws_logger = logging.getLogger(f"{__name__}.websockets")
if _ws_logger.level == logging.NOTSET:
    _ws_logger.setLevel(logging.WARNING)

RECORDING = Path(__file__).resolve().parent / "recordings" / "binance-usdm-trades-20240808.jsonl.gz"

SCENARIOS = ("cointegrated", "random_walk", "replay")
FAULT_KINDS = ("drop", "refuse", "malformed", "rate_limit", "slow")

#: Largest klines page (Binance futures).
KLINES_LIMIT = 1500

#: Kline intervals in ms. ``1s`` is a simulator extra (Binance futures has none).
INTERVALS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}

#: Candles of synthetic pre-history the pair scenarios serve before their start,
#: per interval (enough for a full 1500-bar window at once). Longer intervals
#: get none: 1500 of them would span months, where the scenario's arithmetic
#: random walk is no longer a sane price model (it can reach zero).
PREHISTORY_BARS = 1500
PREHISTORY_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h")
_PREHISTORY_WIDTHS = frozenset(INTERVALS[name] for name in PREHISTORY_INTERVALS)
# Mixed into the pre-history's seed, next to the scenario seed and the interval.
_PREHISTORY_TAG = 0x50524548

# Route prefixes of Binance's split endpoints (fstream.binance.com/market/...).
_ROUTE_PREFIXES = ("/market", "/public")

# Trades generated per step before yielding to the event loop, so a burst
# (replay at speed 0, a huge rate) never starves the connections.
_PACED_CHUNK = 5_000
# Trades per step in blast mode: large enough to amortise the per-step work,
# small enough to keep the socket buffers busy while the client reads.
_BLAST_CHUNK = 2_000
# A paced subscriber whose unsent backlog exceeds this is cut off, as Binance
# does with clients that cannot keep up (no unbounded memory).
_SLOW_CONSUMER_BYTES = 64 * 2**20

# ``clock_id_offset``: ids advance this many per second of wall time since this
# instant, so a restarted simulator never re-issues ids an app has stored.
_ID_CLOCK_ORIGIN = 1_767_225_600  # 2026-01-01T00:00:00Z
_ID_CLOCK_RATE = 100


# -- symbols --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SymbolSpec:
    """What the exchange knows of a symbol: numbering and the price/lot grid."""

    symbol: str
    first_id: int
    tick_size: float
    step_size: float
    price_precision: int
    quantity_precision: int
    base_asset: str
    quote_asset: str = "USDT"


_KNOWN_SPECS = {
    "BTCUSDT": SymbolSpec("BTCUSDT", 5_000_000_000, 0.1, 0.001, 2, 3, "BTC"),
    "ETHUSDT": SymbolSpec("ETHUSDT", 4_000_000_000, 0.01, 0.001, 2, 3, "ETH"),
}


def symbol_spec(symbol: str, *, id_offset: int = 0) -> SymbolSpec:
    """The spec of ``symbol``: BTCUSDT and ETHUSDT as on Binance, others on a fine grid.

    Ids of unknown symbols start at a per-symbol base between 1e9 and 2e9 (a
    hash of the name), so two symbols never look alike.
    """
    spec = _KNOWN_SPECS.get(symbol)
    if spec is None:
        base = 1_000_000_000 + (zlib.crc32(symbol.encode()) % 1000) * 1_000_000
        asset = symbol[:-4] if symbol.endswith("USDT") else symbol
        spec = SymbolSpec(symbol, base, 0.0001, 0.001, 4, 3, asset)
    return dataclasses.replace(spec, first_id=spec.first_id + id_offset)


def clock_id_offset(now: float | None = None) -> int:
    """An id offset that grows with wall time (100 ids a second since 2026-01-01).

    Real aggregate ids only ever grow; with this offset a restarted simulator
    keeps that promise (as long as no symbol traded faster than 100/s on
    average), so an app that persisted its last ids does not take the new
    trades for duplicates.
    """
    now = time.time() if now is None else now
    return max(0, int((now - _ID_CLOCK_ORIGIN) * _ID_CLOCK_RATE))


def _decimals(step: float) -> int:
    text = format_decimal(step)
    return len(text.split(".", 1)[1]) if "." in text else 0


# -- the exchange's memory ---------------------------------------------------------


class _Book:
    """Trades of one symbol as parallel flat arrays (24 bytes a trade).

    Ids are implicit: the trade at index ``i`` has id ``base_id + i``.
    """

    __slots__ = ("spec", "base_id", "times", "prices", "qtys", "generated", "first_time")

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.base_id = spec.first_id
        self.times = array("q")
        self.prices = array("d")
        self.qtys = array("d")
        self.generated = 0
        self.first_time: int | None = None  # of the first trade ever, forgotten or not

    @property
    def next_id(self) -> int:
        return self.base_id + len(self.times)


class Candles(NamedTuple):
    """Consecutive candles of one symbol as parallel arrays, oldest first.

    As a pre-history (synthetic candles before the exchange's start), prices
    are on the symbol's tick grid and the last close is the starting price.
    """

    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    trades: np.ndarray


#: ``source(symbol, interval_ms)``: the pre-history of ``symbol`` at that
#: interval, or None when there is none.
PrehistorySource = Callable[[str, int], "Candles | None"]


class ApiError(Exception):
    """A REST error in Binance's shape: HTTP ``status`` with ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


class Exchange:
    """The exchange's memory: per-symbol trade history and the REST answers built from it.

    Parameters
    ----------
    specs : iterable of SymbolSpec
        Symbols it trades; more can be added with ``add_symbol``.
    history_limit : int
        Trades per symbol REST still serves. Older ones are forgotten: a request
        from an older id answers from the oldest kept trade.
    listed : mapping of str to (str, str)
        Symbols ``exchangeInfo`` lists without ever trading them, with their
        ``(status, contractType)``, e.g. ``{"LUNAUSDT": ("SETTLING", "PERPETUAL")}``.
        REST answers their trades and klines with empty lists.
    """

    def __init__(
        self,
        specs: Iterable[SymbolSpec] = (),
        *,
        history_limit: int = 2_000_000,
        listed: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self.listed: dict[str, tuple[str, str]] = dict(listed or {})
        self.history_limit = history_limit
        # Trim in slabs: deleting the front of an array is a memmove of the
        # rest, cheap once per slab, costly once per trade.
        self._slack = max(1, min(100_000, history_limit // 4))
        self._books: dict[str, _Book] = {}
        self.connections = 0
        self.connections_total = 0
        self.faults: Counter[str] = Counter()
        self._prehistory: PrehistorySource | None = None
        self._prehistory_start: int | None = None
        for spec in specs:
            self.add_symbol(spec)

    def set_prehistory(self, source: PrehistorySource | None, *, start_ms: int | None = None) -> None:
        """Serve ``source``'s synthetic candles as klines before the start.

        The start is ``start_ms`` (the scenario's time 0) or, if that is None or
        later, the first trade ever recorded. The pre-history's candles end with
        the one before the candle holding the start; that candle and the later
        ones are built from trades. ``source(symbol, interval_ms)`` returns a
        ``Candles`` or None (no pre-history for that symbol or interval).
        """
        self._prehistory = source
        self._prehistory_start = start_ms

    # -- symbols -------------------------------------------------------------

    def add_symbol(self, spec: SymbolSpec) -> None:
        if spec.symbol in self._books or spec.symbol in self.listed:
            raise ValueError(f"{spec.symbol} is already listed")
        self._books[spec.symbol] = _Book(spec)

    @property
    def symbols(self) -> list[str]:
        return list(self._books)

    def spec(self, symbol: str) -> SymbolSpec:
        return self._book(symbol).spec

    def _book(self, symbol: str) -> _Book:
        try:
            return self._books[symbol]
        except KeyError:
            raise ApiError(-1121, "Invalid symbol.") from None

    # -- writing -------------------------------------------------------------

    def record(self, symbol: str, timestamp: int, price: float, quantity: float, trade_id: int | None = None) -> Tick:
        """Append one trade; return it as a Tick with its id.

        The id is the next one of ``symbol`` (``trade_id``, if given, must be it,
        except for the very first trade, which may set the numbering). The time
        never goes backwards per symbol: an earlier ``timestamp`` is raised to
        the previous trade's.
        """
        book = self._books[symbol]
        times = book.times
        tid = book.base_id + len(times)
        if trade_id is not None and trade_id != tid:
            if times or book.generated:
                raise ValueError(f"{symbol}: trade id {trade_id} is not the next one ({tid})")
            book.base_id = tid = trade_id
        if times and timestamp < times[-1]:
            timestamp = times[-1]
        if book.first_time is None:
            book.first_time = timestamp
        times.append(timestamp)
        book.prices.append(price)
        book.qtys.append(quantity)
        book.generated += 1
        if len(times) > self.history_limit + self._slack:
            self._trim(book)
        return Tick(timestamp, symbol, price, quantity, tid)

    def _trim(self, book: _Book) -> None:
        excess = len(book.times) - self.history_limit
        del book.times[:excess]
        del book.prices[:excess]
        del book.qtys[:excess]
        book.base_id += excess

    # -- reading -------------------------------------------------------------

    def _window(self, book: _Book) -> int:
        """Index of the oldest trade REST still serves."""
        return max(0, len(book.times) - self.history_limit)

    def first_id(self, symbol: str) -> int | None:
        """Oldest id REST still serves, or None before the first trade."""
        book = self._book(symbol)
        return book.base_id + self._window(book) if book.times else None

    def last_id(self, symbol: str) -> int | None:
        book = self._book(symbol)
        return book.next_id - 1 if book.times else None

    def last_price(self, symbol: str) -> float | None:
        """Price of the newest trade (the simulator's mark price), or None before the first."""
        book = self._book(symbol)
        return book.prices[-1] if book.prices else None

    def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[Tick]:
        """Trades as ``GET /fapi/v1/aggTrades`` answers them, ascending by id.

        ``from_id``: ids >= from_id (from the oldest kept one if it is older).
        ``start_time`` / ``end_time``: trade time bounds, inclusive. With neither
        ``from_id`` nor ``start_time`` the most recent trades (up to ``end_time``)
        are returned.
        """
        book = self._book(symbol)
        times = book.times
        n = len(times)
        lo = self._window(book)
        if from_id is not None:
            lo = max(lo, from_id - book.base_id)
        if start_time is not None:
            lo = bisect.bisect_left(times, start_time, min(lo, n), n)
        hi = n if end_time is None else bisect.bisect_right(times, end_time, min(lo, n), n)
        if from_id is None and start_time is None:
            lo = max(lo, hi - limit)
        hi = min(hi, lo + limit)
        if lo >= hi:
            return []
        base, prices, qtys = book.base_id, book.prices, book.qtys
        return [Tick(times[i], symbol, prices[i], qtys[i], base + i) for i in range(lo, hi)]

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
        now_ms: int | None = None,
    ) -> list[list[Any]]:
        """Klines as ``GET /fapi/v1/klines`` answers them, ascending by open time.

        Rows are ``[openTime, "open", "high", "low", "close", "volume", closeTime,
        "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "0"]``. Candles
        run from the one holding the oldest kept trade to the one holding "now"
        (the last is in progress); a candle without trades repeats the previous
        close with zero volume. With a pre-history (``set_prehistory``) its
        synthetic candles come first and the trade-built ones start at the
        candle holding the start (unless trades have been forgotten since: then
        from the oldest kept one, leaving a hole). ``start_time`` selects candles
        opening at or after it, ``end_time`` candles opening at or before it;
        of those, the first ``limit`` with ``start_time``, else the last.
        """
        try:
            width = INTERVALS[interval]
        except KeyError:
            raise ApiError(-1120, "Invalid interval.") from None
        book = self._book(symbol)
        times = book.times
        first = self._window(book)
        n = len(times)
        forgotten = book.generated - (n - first) > 0
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms

        pre: Candles | None = None
        anchor_open = 0
        if self._prehistory is not None:
            starts = [t for t in (self._prehistory_start, book.first_time) if t is not None]
            if starts:
                anchor_open = min(starts) // width * width
                pre = self._prehistory(symbol, width)

        # Candles on offer, as runs of consecutive open times: (first, last, pre?).
        runs: list[tuple[int, int, bool]] = []
        if pre is not None and len(pre.closes):
            runs.append((anchor_open - len(pre.closes) * width, anchor_open - width, True))
        if first < n or (pre is not None and not forgotten):
            live_lo = times[first] // width * width if first < n else anchor_open
            if pre is not None and not forgotten:
                live_lo = min(live_lo, anchor_open)
            newest = max(now_ms, times[n - 1]) if first < n else now_ms
            runs.append((live_lo, newest // width * width, False))

        lo_bound = -(-start_time // width) * width if start_time is not None else -math.inf
        hi_bound = end_time // width * width if end_time is not None else math.inf
        clipped = [(max(lo, lo_bound), min(hi, hi_bound), is_pre) for lo, hi, is_pre in runs]
        clipped = [(int(lo), int(hi), is_pre) for lo, hi, is_pre in clipped if lo <= hi]
        # Keep ``limit`` candles: the first ones after startTime, else the last ones.
        chosen: list[tuple[int, int, bool]] = []
        left = limit
        for lo, hi, is_pre in clipped if start_time is not None else reversed(clipped):
            if left <= 0:
                break
            take = min(left, (hi - lo) // width + 1)
            left -= take
            if start_time is not None:
                chosen.append((lo, lo + (take - 1) * width, is_pre))
            else:
                chosen.insert(0, (hi - (take - 1) * width, hi, is_pre))
        if not chosen:
            return []

        parts: list[tuple[np.ndarray, ...]] = []
        for lo, hi, is_pre in chosen:
            if is_pre:
                assert pre is not None
                k0 = (lo - (anchor_open - len(pre.closes) * width)) // width
                k1 = k0 + (hi - lo) // width + 1
                parts.append(tuple(column[k0:k1] for column in pre))
            else:
                carry = float(pre.closes[-1]) if pre is not None and not forgotten else math.nan
                parts.append(self._trade_candles(book, lo, hi, width, carry))
        columns = (np.concatenate(column) for column in zip(*parts, strict=True))
        opens, highs, lows, closes, volume, quote, trades = columns
        open_times = [t for lo, hi, _ in chosen for t in range(lo, hi + 1, width)]

        spec = book.spec
        pp, qp = spec.price_precision, spec.quantity_precision
        rows: list[list[Any]] = []
        for k, open_time in enumerate(open_times):
            vol = f"{volume[k]:.{qp}f}"
            quote_vol = f"{quote[k]:.{pp + qp}f}"
            rows.append(
                [
                    open_time,
                    f"{opens[k]:.{pp}f}",
                    f"{highs[k]:.{pp}f}",
                    f"{lows[k]:.{pp}f}",
                    f"{closes[k]:.{pp}f}",
                    vol,
                    open_time + width - 1,
                    quote_vol,
                    int(trades[k]),
                    # Every simulated trade is a taker buy (m is false).
                    vol,
                    quote_vol,
                    "0",
                ]
            )
        return rows

    def _trade_candles(self, book: _Book, lo_open: int, hi_open: int, width: int, carry: float) -> Candles:
        """OHLCV of the kept trades in the candles opening ``lo_open``..``hi_open``.

        A candle without trades repeats the previous close; before the oldest
        kept trade that is ``carry`` (the pre-history's last close, or NaN).
        """
        times = book.times
        first = self._window(book)
        n = len(times)
        count = (hi_open - lo_open) // width + 1
        i0 = bisect.bisect_left(times, lo_open, first, n)
        i1 = bisect.bisect_left(times, hi_open + width, i0, n)
        # The close before the window: what an empty first candle repeats.
        prev_close = book.prices[i0 - 1] if i0 > first else carry

        t = np.frombuffer(times[i0:i1], dtype=np.int64)
        p = np.frombuffer(book.prices[i0:i1], dtype=np.float64)
        q = np.frombuffer(book.qtys[i0:i1], dtype=np.float64)
        opens = np.full(count, np.nan)
        highs = np.full(count, np.nan)
        lows = np.full(count, np.nan)
        closes = np.full(count, np.nan)
        volume = np.zeros(count)
        quote = np.zeros(count)
        trades = np.zeros(count, dtype=np.int64)
        if len(t):
            bucket = (t - lo_open) // width
            starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
            ends = np.r_[starts[1:], len(t)]
            slots = bucket[starts]
            opens[slots] = p[starts]
            closes[slots] = p[ends - 1]
            highs[slots] = np.maximum.reduceat(p, starts)
            lows[slots] = np.minimum.reduceat(p, starts)
            volume[slots] = np.add.reduceat(q, starts)
            quote[slots] = np.add.reduceat(p * q, starts)
            trades[slots] = ends - starts
        # Empty candles repeat the last close before them.
        last_idx = np.maximum.accumulate(np.where(np.isnan(closes), -1, np.arange(count)))
        carried = np.where(last_idx >= 0, closes[np.maximum(last_idx, 0)], prev_close)
        empty = np.isnan(opens)
        closes = np.where(empty, carried, closes)
        opens = np.where(empty, carried, opens)
        highs = np.where(empty, carried, highs)
        lows = np.where(empty, carried, lows)
        return Candles(opens, highs, lows, closes, volume, quote, trades)

    def exchange_info(self, now_ms: int | None = None) -> dict[str, Any]:
        """The ``GET /fapi/v1/exchangeInfo`` body (only what clients look at)."""
        symbols = []
        entries = [(book.spec, "TRADING", "PERPETUAL") for book in self._books.values()]
        entries += [(symbol_spec(name), status, kind) for name, (status, kind) in self.listed.items()]
        for spec, status, contract_type in entries:
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "pair": spec.symbol.split("_", 1)[0],
                    "contractType": contract_type,
                    "status": status,
                    "baseAsset": spec.base_asset,
                    "quoteAsset": spec.quote_asset,
                    "marginAsset": spec.quote_asset,
                    "pricePrecision": spec.price_precision,
                    "quantityPrecision": spec.quantity_precision,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": f"{spec.tick_size:.{spec.price_precision}f}",
                            "maxPrice": "1000000",
                            "tickSize": f"{spec.tick_size:.{spec.price_precision}f}",
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": f"{spec.step_size:.{spec.quantity_precision}f}",
                            "maxQty": "1000",
                            "stepSize": f"{spec.step_size:.{spec.quantity_precision}f}",
                        },
                    ],
                    "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000) if now_ms is None else now_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            ],
            "exchangeFilters": [],
            "assets": [],
            "symbols": symbols,
        }

    def stats(self) -> dict[str, Any]:
        """Per symbol ``{first_id, last_id, generated, first_time, last_time}``, plus totals.

        ``first_id``/``first_time`` are of the oldest trade REST still serves;
        ``generated`` counts every trade ever made, forgotten ones included.
        Top-level extras: ``generated`` (all symbols), ``connections`` (open
        WebSockets), ``connections_total``, ``faults`` (injected, by kind),
        ``history_limit``.
        """
        out: dict[str, Any] = {}
        total = 0
        for symbol, book in self._books.items():
            first = self._window(book)
            has = len(book.times) > first
            out[symbol] = {
                "first_id": book.base_id + first if has else None,
                "last_id": book.next_id - 1 if has else None,
                "generated": book.generated,
                "first_time": book.times[first] if has else None,
                "last_time": book.times[-1] if has else None,
            }
            total += book.generated
        out["generated"] = total
        out["connections"] = self.connections
        out["connections_total"] = self.connections_total
        out["faults"] = dict(self.faults)
        out["history_limit"] = self.history_limit
        return out


# -- scenarios ------------------------------------------------------------------------


class Batch(NamedTuple):
    """Trades a scenario produced, column-wise (cheap to build and to walk).

    ``offsets`` are seconds of scenario time since the start; ``ids`` is None
    when the exchange numbers the trades.
    """

    symbols: list[str]
    offsets: list[float]
    prices: list[float]
    quantities: list[float]
    ids: list[int] | None


class Scenario(Protocol):
    """A deterministic source of trades in scenario time."""

    specs: tuple[SymbolSpec, ...]
    #: True when trades should be stamped "now" rather than by their offsets.
    unpaced: bool

    def take(self, until: float, limit: int) -> Batch:
        """The next trades with offset <= ``until`` seconds, at most ``limit`` of them."""
        ...

    @property
    def exhausted(self) -> bool: ...


class PairScenario:
    """Two symbols whose prices are tied: ``y = alpha + hedge_ratio * x + s``.

    ``x`` (ETH-like) is a random walk; the spread ``s`` is an Ornstein-Uhlenbeck
    process with the given half-life (``mean_reverting=True``, the
    ``cointegrated`` scenario) or a random walk with the same local volatility
    (``random_walk``: returns stay correlated, the pair is not cointegrated).
    Trades arrive as a Poisson process of ``rate`` a second, a share ``split``
    of them on ``y``. Everything is drawn from one seeded generator in fixed
    chunks, so a seed gives the same trades however the consumer paces them.

    ``prehistory`` gives the klines before the start: the same model run
    backward from the starting prices at candle resolution (see there).

    Parameters
    ----------
    rate : float
        Trades a second, both symbols together.
    seed : int or None
        Seed of the generator (None: fresh entropy).
    hedge_ratio : float
        Units of ``x`` per unit of ``y`` (beta).
    half_life : float
        Half-life of the spread in seconds.
    spread_sigma : float
        Stationary standard deviation of the spread, in ``y`` price units.
    x_start, y_start : float
        Starting prices; ``alpha`` is ``y_start - hedge_ratio * x_start``.
    x_volatility : float
        Standard deviation of ``x`` moves per square-root second, price units.
    shocks : sequence of (seconds, size)
        Jumps of ``size`` spread sigmas added to the spread at those times.
    shock_every : float or None
        Also a jump of ``shock_size`` sigmas every so many seconds, alternating
        in sign.
    """

    _CHUNK = 2048

    def __init__(
        self,
        *,
        rate: float = 50.0,
        seed: int | None = None,
        mean_reverting: bool = True,
        hedge_ratio: float = 20.0,
        half_life: float = 30.0,
        spread_sigma: float = 15.0,
        x_start: float = 3000.0,
        y_start: float = 62000.0,
        x_volatility: float = 0.35,
        shocks: Sequence[tuple[float, float]] = (),
        shock_every: float | None = None,
        shock_size: float = 4.0,
        split: float = 0.6,
        symbols: tuple[str, str] = ("BTCUSDT", "ETHUSDT"),
        id_offset: int = 0,
        first_ids: Mapping[str, int] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        if not 0.0 < split < 1.0:
            raise ValueError("split must be between 0 and 1")
        if shock_every is not None and shock_every <= 0:
            raise ValueError("shock_every must be positive")
        # ``first_ids`` lets an exchange continue a stored sequence (``runpairs
        # --simulate`` after a restart), so nothing looks missing or duplicated.
        specs = [symbol_spec(symbol, id_offset=id_offset) for symbol in symbols]
        if first_ids:
            specs = [dataclasses.replace(sp, first_id=first_ids.get(sp.symbol, sp.first_id)) for sp in specs]
        self.specs = (specs[0], specs[1])
        self.unpaced = False
        self.rate = float(rate)
        self.mean_reverting = mean_reverting
        self.hedge_ratio = float(hedge_ratio)
        self.theta = math.log(2.0) / half_life
        self.spread_sigma = float(spread_sigma)
        self.alpha = y_start - hedge_ratio * x_start
        self.x_volatility = float(x_volatility)
        self.split = split
        self.x_start = float(x_start)
        self.y_start = float(y_start)
        # The pre-history has its own generators (seeded from this and the
        # interval), so asking for it never changes the trades.
        self._entropy = np.random.SeedSequence(seed).entropy
        self._prehistory: dict[int, tuple[Candles, Candles]] = {}
        self._rng = np.random.default_rng(seed)
        self._t = 0.0
        self._x = float(x_start)
        self._s = 0.0
        shock_list = sorted((float(at), float(size)) for at, size in shocks)
        self._shocks = shock_list
        self._shock_every = shock_every
        self._shock_size = shock_size
        self._periodic_n = 0
        self._buf = Batch([], [], [], [], None)
        self._pos = 0

    @property
    def exhausted(self) -> bool:
        return False

    def _next_shock(self) -> tuple[float, float] | None:
        periodic = None
        if self._shock_every is not None:
            k = self._periodic_n + 1
            sign = 1.0 if k % 2 else -1.0
            periodic = (k * self._shock_every, sign * self._shock_size)
        listed = self._shocks[0] if self._shocks else None
        if listed is None or (periodic is not None and periodic[0] < listed[0]):
            return periodic
        return listed

    def _pop_shock(self, shock: tuple[float, float]) -> None:
        if self._shocks and self._shocks[0] is shock:
            self._shocks.pop(0)
        else:
            self._periodic_n += 1

    def _refill(self) -> None:
        rng, n = self._rng, self._CHUNK
        y_spec, x_spec = self.specs
        gaps = rng.exponential(1.0 / self.rate, n)
        on_y = rng.random(n) < self.split
        zx = rng.standard_normal(n)
        zs = rng.standard_normal(n)
        qty_y = rng.lognormal(math.log(0.02), 1.2, n)
        qty_x = rng.lognormal(math.log(0.3), 1.2, n)

        t = self._t + np.cumsum(gaps)
        x = self._x + np.cumsum(self.x_volatility * np.sqrt(gaps) * zx)
        if self.mean_reverting:
            # Exact OU transition over each gap: s' = a s + sigma sqrt(1 - a^2) z.
            decay = np.exp(-self.theta * gaps)
            noise = self.spread_sigma * np.sqrt(1.0 - decay * decay) * zs
        else:
            decay = np.ones(n)
            noise = self.spread_sigma * np.sqrt(2.0 * self.theta * gaps) * zs
        # The recursion has a different coefficient per step; a plain loop over
        # Python floats is both exact and fast enough (~0.1 us a trade).
        s_path = np.empty(n)
        s = self._s
        shock = self._next_shock()
        t_list = t.tolist()
        for i, (a, e) in enumerate(zip(decay.tolist(), noise.tolist(), strict=True)):
            s = s * a + e
            while shock is not None and t_list[i] >= shock[0]:
                s += shock[1] * self.spread_sigma
                self._pop_shock(shock)
                shock = self._next_shock()
            s_path[i] = s
        self._t, self._x, self._s = float(t[-1]), float(x[-1]), s

        y = self.alpha + self.hedge_ratio * x + s_path
        price = np.where(on_y, _round_to(y, y_spec.tick_size), _round_to(x, x_spec.tick_size))
        price = np.where(on_y, np.maximum(price, y_spec.tick_size), np.maximum(price, x_spec.tick_size))
        qty = np.where(on_y, _round_to(qty_y, y_spec.step_size), _round_to(qty_x, x_spec.step_size))
        qty = np.maximum(qty, np.where(on_y, y_spec.step_size, x_spec.step_size))
        names = [y_spec.symbol if flag else x_spec.symbol for flag in on_y.tolist()]
        self._buf = Batch(names, t_list, price.tolist(), qty.tolist(), None)
        self._pos = 0

    def take(self, until: float, limit: int) -> Batch:
        out = Batch([], [], [], [], None)
        while limit > 0:
            if self._pos >= len(self._buf.offsets):
                self._refill()
            buf, pos = self._buf, self._pos
            end = bisect.bisect_right(buf.offsets, until, pos, min(len(buf.offsets), pos + limit))
            if end == pos:
                break
            out.symbols.extend(buf.symbols[pos:end])
            out.offsets.extend(buf.offsets[pos:end])
            out.prices.extend(buf.prices[pos:end])
            out.quantities.extend(buf.quantities[pos:end])
            limit -= end - pos
            self._pos = end
        return out


    def prehistory(self, symbol: str, interval_ms: int) -> Candles | None:
        """``PREHISTORY_BARS`` synthetic candles of ``symbol`` ending at the start.

        The scenario's model at candle resolution, run backward in time from
        ``x_start`` / ``y_start`` (the last candle closes exactly there): ``x``
        steps by ``x_volatility * sqrt(interval)``, the spread is the exact
        AR(1) of the Ornstein-Uhlenbeck process over one interval (a stationary
        Gaussian AR(1) reads the same backward) or, for ``random_walk``, a walk
        with the same local variance; ``y = alpha + hedge_ratio * x + spread``.
        Shocks are not replayed. Highs and lows are drawn as the extremes of a
        Brownian bridge from the open to the close; trades per candle are
        Poisson, volumes the sum of that many trade sizes (gamma approximation).
        Deterministic per seed and interval; computed on first use, then cached.
        None for other symbols and for intervals not in ``PREHISTORY_INTERVALS``.
        """
        y_spec, x_spec = self.specs
        if symbol not in (y_spec.symbol, x_spec.symbol) or interval_ms not in _PREHISTORY_WIDTHS:
            return None
        both = self._prehistory.get(interval_ms)
        if both is None:
            both = self._prehistory[interval_ms] = self._build_prehistory(interval_ms)
        return both[0] if symbol == y_spec.symbol else both[1]

    def _build_prehistory(self, interval_ms: int) -> tuple[Candles, Candles]:
        n = PREHISTORY_BARS
        dt = interval_ms / 1000.0
        rng = np.random.default_rng(np.random.SeedSequence([self._entropy, interval_ms, _PREHISTORY_TAG]))
        zx = rng.standard_normal(n)
        zs = rng.standard_normal(n)
        # Points 0..n: candle k opens at point k and closes at point k + 1,
        # point n being the start. Walk back from it.
        step_x = self.x_volatility * math.sqrt(dt)
        x = np.empty(n + 1)
        x[n] = self.x_start
        x[:n] = self.x_start - np.cumsum(step_x * zx)[::-1]
        if self.mean_reverting:
            a = math.exp(-self.theta * dt)
            var_s = self.spread_sigma**2 * (1.0 - a * a)
            noise = (math.sqrt(var_s) * zs).tolist()
            s = np.empty(n + 1)
            value = s[n] = 0.0
            for k in range(n - 1, -1, -1):
                value = a * value + noise[k]
                s[k] = value
        else:
            var_s = self.spread_sigma**2 * 2.0 * self.theta * dt
            s = np.empty(n + 1)
            s[n] = 0.0
            s[:n] = -np.cumsum(math.sqrt(var_s) * zs)[::-1]
        y = self.alpha + self.hedge_ratio * x + s
        y[n] = self.y_start  # exactly, whatever the float error of alpha
        y_spec, x_spec = self.specs
        legs = (
            (y_spec, y, self.hedge_ratio**2 * step_x**2 + var_s, self.split, 0.02),
            (x_spec, x, step_x**2, 1.0 - self.split, 0.3),
        )
        out = []
        for spec, path, var_bar, share, qty_median in legs:
            tick = spec.tick_size
            o, c = path[:-1], path[1:]
            # Extremes of a Brownian bridge from o to c with variance var_bar:
            # P(max > m) = exp(-2 (m - o)(m - c) / var_bar).
            gap2 = (o - c) ** 2
            high = (o + c + np.sqrt(gap2 + 2.0 * var_bar * rng.exponential(1.0, n))) / 2.0
            low = (o + c - np.sqrt(gap2 + 2.0 * var_bar * rng.exponential(1.0, n))) / 2.0
            o, high, low, c = (np.maximum(_round_to(v, tick), tick) for v in (o, high, low, c))
            trades = np.maximum(rng.poisson(self.rate * share * dt, n), 1)
            # Trade sizes are lognormal(log(median), 1.2): the sum of ``trades``
            # of them has mean trades * mean and a squared CV of (e^1.44 - 1) / trades.
            cv2 = (math.exp(1.2**2) - 1.0) / trades
            mean = qty_median * math.exp(1.2**2 / 2.0)
            volume = rng.gamma(1.0 / cv2, mean * trades * cv2)
            volume = np.maximum(_round_to(volume, spec.step_size), spec.step_size)
            quote = volume * (o + high + low + c) / 4.0
            out.append(Candles(o, high, low, c, volume, quote, trades.astype(np.int64)))
        return out[0], out[1]


def _round_to(values: np.ndarray, step: float) -> np.ndarray:
    # Snap to the grid, then round to its decimals so the float prints cleanly.
    return np.round(np.round(values / step) * step, _decimals(step))


class ReplayScenario:
    """Replays the recorded ``@trade`` frames as aggTrades with their original ids.

    Trade times are re-stamped to the simulator's clock: offset = (recorded time
    - first recorded time) / ``speed`` (``speed=0``: as fast as possible, stamped
    "now"). With ``loop`` the recording starts over after a one-second pause
    (recorded time), ids continuing contiguously where the last pass ended.
    """

    def __init__(self, *, speed: float = 1.0, loop: bool = True, path: str | Path | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = float(speed)
        self.loop = loop
        self.unpaced = speed == 0
        symbols: list[str] = []
        times: list[int] = []
        prices: list[float] = []
        qtys: list[float] = []
        ids: list[int] = []
        with gzip.open(Path(path) if path else RECORDING, "rb") as fh:
            for line in fh:
                data = orjson.loads(line)["data"]
                symbols.append(data["s"])
                times.append(int(data["T"]))
                prices.append(float(data["p"]))
                qtys.append(float(data["q"]))
                ids.append(int(data["t"]))
        if not times:
            raise ValueError("the recording is empty")
        t0 = times[0]
        self._symbols = symbols
        self._rec_offsets = [(t - t0) / 1000.0 for t in times]
        self._prices = prices
        self._qtys = qtys
        self._ids = ids
        firsts: dict[str, int] = {}
        lasts: dict[str, int] = {}
        for sym, tid in zip(symbols, ids, strict=True):
            firsts.setdefault(sym, tid)
            lasts[sym] = tid
        self._span = {sym: lasts[sym] - firsts[sym] + 1 for sym in firsts}
        self._cycle = self._rec_offsets[-1] + 1.0
        specs = []
        for sym, first in firsts.items():
            specs.append(dataclasses.replace(symbol_spec(sym), first_id=first))
        self.specs = tuple(specs)
        self._pos = 0
        self._pass = 0

    @property
    def exhausted(self) -> bool:
        return not self.loop and self._pos >= len(self._rec_offsets)

    def take(self, until: float, limit: int) -> Batch:
        ids: list[int] = []
        out = Batch([], [], [], [], ids)
        n = len(self._rec_offsets)
        while limit > 0 and not self.exhausted:
            if self._pos >= n:
                self._pos = 0
                self._pass += 1
            shift = self._pass * self._cycle
            if self.unpaced or math.isinf(until):
                end = min(n, self._pos + limit)
            else:
                recorded_until = until * self.speed - shift
                end = bisect.bisect_right(self._rec_offsets, recorded_until, self._pos, min(n, self._pos + limit))
            if end == self._pos:
                break
            pos, k = self._pos, self._pass
            speed = self.speed or 1.0
            out.symbols.extend(self._symbols[pos:end])
            out.offsets.extend((shift + off) / speed for off in self._rec_offsets[pos:end])
            out.prices.extend(self._prices[pos:end])
            out.quantities.extend(self._qtys[pos:end])
            if k:
                span = self._span
                pairs = zip(self._symbols[pos:end], self._ids[pos:end], strict=True)
                ids.extend(tid + k * span[sym] for sym, tid in pairs)
            else:
                ids.extend(self._ids[pos:end])
            limit -= end - pos
            self._pos = end
        return out


def make_scenario(name: str, *, rate: float = 50.0, seed: int | None = None, **options: Any) -> Scenario:
    """Build the scenario ``name`` (one of ``SCENARIOS``) with its options."""
    if name == "cointegrated":
        return PairScenario(rate=rate, seed=seed, mean_reverting=True, **options)
    if name == "random_walk":
        return PairScenario(rate=rate, seed=seed, mean_reverting=False, **options)
    if name == "replay":
        # Replay keeps the recorded ids and prices.
        for name in ("id_offset", "first_ids", "x_start", "y_start"):
            options.pop(name, None)
        return ReplayScenario(**options)
    raise ValueError(f"unknown scenario {name!r} (expected one of {', '.join(SCENARIOS)})")


# -- faults ---------------------------------------------------------------------------


# Positional arguments after the time, by fault kind.
_FAULT_ARGS: dict[str, tuple[str, ...]] = {
    "drop": (),
    "malformed": (),
    "refuse": ("seconds",),
    "rate_limit": ("count", "status", "retry_after"),
    "slow": ("seconds", "delay"),
}


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """A scheduled fault: ``kind`` at ``at`` seconds after start, with its parameters."""

    kind: str
    at: float
    params: dict[str, float]


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse ``drop@10``, ``refuse@20:5``, ``malformed@30``, ``rate_limit@5:3[:418[:2]]``, ``slow@5:30:0.5``.

    The number after ``@`` is seconds after start; then, by kind: ``refuse``
    seconds (default 5); ``rate_limit`` count (1), status (429), retry-after
    seconds (1); ``slow`` seconds (30) and the delay of each REST answer (0.5).
    """
    kind, sep, rest = text.strip().partition("@")
    if not sep or kind not in FAULT_KINDS:
        raise ValueError(f"bad fault {text!r}: expected KIND@SECONDS[:ARGS] with KIND in {', '.join(FAULT_KINDS)}")
    try:
        numbers = [float(part) for part in rest.split(":")]
    except ValueError:
        raise ValueError(f"bad fault {text!r}: numbers expected after '@'") from None
    at, args = numbers[0], numbers[1:]
    names = _FAULT_ARGS[kind]
    if len(args) > len(names) or at < 0 or any(a < 0 for a in args):
        raise ValueError(f"bad fault {text!r}: {kind} takes at most {len(names)} non-negative number(s) after the time")
    params = dict(zip(names, args, strict=False))
    if params.get("status", 429) not in (418, 429):
        raise ValueError(f"bad fault {text!r}: the rate-limit status is 429 or 418")
    return FaultSpec(kind, at, params)


# -- wire -------------------------------------------------------------------------------


def _ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _stream_symbol(stream: str, kinds: tuple[str, ...] = ("aggTrade",)) -> str | None:
    """``btcusdt@aggTrade`` -> ``BTCUSDT``; None for a stream not of ``kinds``."""
    name, sep, kind = stream.partition("@")
    if sep and kind in kinds and name:
        return name.upper()
    return None


_MARK_PRICE_STREAMS = ("markPrice@1s", "markPrice")
#: Funding every 8 hours (00:00, 08:00, 16:00 UTC), at a flat rate.
_FUNDING_INTERVAL_MS = 8 * 3_600_000
_FUNDING_RATE = 0.0001


class _Subscriber:
    """One WebSocket connection and what it listens to."""

    __slots__ = ("conn", "combined", "streams", "symbols", "marks", "key")

    def __init__(self, conn: ServerConnection, combined: bool, streams: Iterable[str]) -> None:
        self.conn = conn
        self.combined = combined
        self.streams: list[str] = []
        self.symbols: frozenset[str] = frozenset()
        self.marks: frozenset[str] = frozenset()  # symbols of its mark-price streams
        self.key: tuple[bool, frozenset[str]] = (combined, self.symbols)
        self.subscribe(streams)

    def subscribe(self, streams: Iterable[str]) -> None:
        for stream in streams:
            if stream not in self.streams:
                self.streams.append(stream)
        self._refresh()

    def unsubscribe(self, streams: Iterable[str]) -> None:
        drop = set(streams)
        self.streams = [s for s in self.streams if s not in drop]
        self._refresh()

    def set_combined(self, combined: bool) -> None:
        self.combined = combined
        self._refresh()

    def _refresh(self) -> None:
        self.symbols = frozenset(s for s in map(_stream_symbol, self.streams) if s)
        self.marks = frozenset(s for s in (_stream_symbol(x, _MARK_PRICE_STREAMS) for x in self.streams) if s)
        self.key = (self.combined, self.symbols)

    @property
    def open(self) -> bool:
        return self.conn.protocol.state is State.OPEN and not self.conn.transport.is_closing()

    def write(self, data: bytes) -> None:
        # Frames are pre-built once for every subscriber and written straight to
        # the transport: going through ``send()`` costs a coroutine and a frame
        # object per message, which caps the fan-out far below 100k frames/s.
        # Safe because the server negotiates no extension and never fragments.
        if self.open:
            self.conn.transport.write(data)


# -- the server ---------------------------------------------------------------------


class Simulator:
    """The offline exchange: a scenario feeding an ``Exchange``, served on one port.

    Parameters
    ----------
    host, port : str, int
        Where to listen (``port=0``: any free port; see ``port`` once started).
    scenario : str
        ``cointegrated``, ``random_walk`` or ``replay``.
    rate : float
        Trades a second, all symbols together (pair scenarios).
    seed : int or None
        Makes the pair scenarios deterministic.
    history_limit : int
        Trades per symbol REST can serve.
    count : int or None
        Stop generating after this many trades in total.
    blast : bool
        Benchmark mode: once a client has subscribed, generate ``count`` trades
        as fast as the subscribers take them, stamped with the current time.
    faults : iterable of str
        Scheduled faults, e.g. ``["drop@10", "refuse@20:5"]`` (see ``parse_fault_spec``).
    step : float
        Seconds between generation steps in paced mode.
    **options
        Scenario options: ``hedge_ratio``, ``half_life``, ``spread_sigma``,
        ``shocks``, ``shock_every``, ``shock_size``, ``x_start``, ``y_start``,
        ``x_volatility``, ``split``, ``symbols``, ``id_offset`` (pair scenarios);
        ``speed``, ``loop``, ``path`` (replay).
    start_on_subscribe : bool
        Paced scenarios: open the market (scenario time 0) on the first whole
        second after every traded symbol has a subscriber (one client, or one
        per symbol when ingestion is split), instead of at ``start``. Two runs
        with the same seed then put the same trades in the same bars, however
        long their clients took to connect.
    delisted, silent : iterable of str
        Symbols ``exchangeInfo`` lists that never trade: ``delisted`` ones with
        status SETTLING, ``silent`` ones TRADING (a subscription to either gets
        nothing, as on Binance).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str = "cointegrated",
        rate: float = 50.0,
        seed: int | None = None,
        *,
        history_limit: int = 2_000_000,
        count: int | None = None,
        blast: bool = False,
        faults: Iterable[str] = (),
        step: float = 0.02,
        start_on_subscribe: bool = False,
        delisted: Iterable[str] = (),
        silent: Iterable[str] = (),
        **options: Any,
    ) -> None:
        if blast and not count:
            raise ValueError("blast mode needs a trade count")
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        self.host = host
        self.port = port
        self.scenario_name = scenario
        self.scenario = make_scenario(scenario, rate=rate, seed=seed, **options)
        listed = {s.upper(): ("SETTLING", "PERPETUAL") for s in delisted}
        listed.update({s.upper(): ("TRADING", "PERPETUAL") for s in silent})
        self.exchange = Exchange(self.scenario.specs, history_limit=history_limit, listed=listed)
        # Pair scenarios serve a synthetic pre-history as klines; replay none.
        self._prehistory: PrehistorySource | None = getattr(self.scenario, "prehistory", None)
        self.exchange.set_prehistory(self._prehistory)
        self.count = count
        self.blast = blast
        self.step = step
        self.start_on_subscribe = start_on_subscribe
        self.schedule = sorted((parse_fault_spec(f) for f in faults), key=lambda f: f.at)
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: dict[ServerConnection, _Subscriber] = {}
        self._running = asyncio.Event()
        self._running.set()
        self._subscribed = asyncio.Event()  # some symbol has a subscriber
        self._covered = asyncio.Event()  # every traded symbol has one
        self._finished = asyncio.Event()
        self._refuse_until = 0.0
        self._limited = 0  # REST requests still to answer with a rate-limit error
        self._limit_status = 429
        self._limit_retry_after: float = 1
        self._slow_until = 0.0  # REST answers are delayed until then (monotonic)...
        self._slow_delay = 0.0  # ...by this many seconds each
        self._origin = 0.0  # wall time (s) of scenario time 0
        self._paused_at: float | None = None
        self._started_at = 0.0
        self._generated = 0
        self._sent_through_ms: int | None = None  # every trade stamped at or before it is sent
        self.frames_sent = 0
        #: Client messages answered, by method (``SUBSCRIBE``, ...).
        self.requests: Counter[str] = Counter()

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Listen and start trading (and the fault schedule)."""
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,  # raw frame writes rely on no extension
            max_size=2**20,
            # Binance pings every 3 minutes; the clients ping on their own.
            ping_interval=180,
            ping_timeout=600,
            logger=_ws_logger,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._origin = self._started_at = time.time()
        self.exchange.set_prehistory(self._prehistory, start_ms=int(self._origin * 1000))
        self._tasks.append(asyncio.create_task(self._generate(), name="sim-generate"))
        self._tasks.append(asyncio.create_task(self._mark_prices(), name="sim-mark-prices"))
        if self.schedule:
            self._tasks.append(asyncio.create_task(self._run_schedule(), name="sim-faults"))
        logger.info("simulated Binance USD-M on %s (scenario %s)", self.ws_url, self.scenario_name)

    async def stop(self) -> None:
        """Stop trading and close every connection."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_finished(self) -> None:
        """Wait until the trade count is reached (or a non-looping replay ends)."""
        await self._finished.wait()

    @property
    def ws_url(self) -> str:
        """Base WebSocket route, like ``wss://fstream.binance.com/market``."""
        return f"ws://{self._url_host}:{self.port}/market"

    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    # -- control ----------------------------------------------------------------

    def pause(self) -> None:
        """Stop generating trades (immediately: no trade is made until ``resume``)."""
        if self._paused_at is None:
            self._paused_at = time.time()
            self._running.clear()

    def resume(self) -> None:
        """Go on trading; scenario time skips the pause, so no burst of missed trades."""
        if self._paused_at is not None:
            self._origin += time.time() - self._paused_at
            self._paused_at = None
            self._running.set()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def fault_drop(self) -> int:
        """Abort every WebSocket's TCP connection (no close frame); return how many."""
        self.exchange.faults["drop"] += 1
        dropped = self._abort_all()
        logger.warning("fault: dropped %d connection(s)", dropped)
        return dropped

    def fault_refuse(self, seconds: float) -> int:
        """Answer new handshakes 503 for ``seconds`` and drop the current connections."""
        self.exchange.faults["refuse"] += 1
        self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)
        dropped = self._abort_all()
        logger.warning("fault: refusing connections for %.1fs, dropped %d", seconds, dropped)
        return dropped

    def fault_malformed(self) -> int:
        """Send every connection one truncated, invalid JSON frame; return how many got it."""
        self.exchange.faults["malformed"] += 1
        sent = 0
        for sub in list(self._subs.values()):
            symbol = min(sub.symbols) if sub.symbols else "BTCUSDT"
            body = f'"e":"aggTrade","s":"{symbol}","p":"oops"'
            if sub.combined:
                text = f'{{"stream":"{symbol.lower()}@aggTrade","data":{{{body}'
            else:
                text = f"{{{body}"
            if sub.open:
                sub.write(_ws_text_frame(text.encode()))
                sent += 1
        logger.warning("fault: malformed frame sent to %d connection(s)", sent)
        return sent

    def fault_rate_limit(self, count: int, status: int = 429, retry_after: float = 1) -> None:
        """Answer the next ``count`` REST market-data requests with ``status`` and ``Retry-After``."""
        if status not in (418, 429):
            raise ValueError("status must be 429 or 418")
        if count < 0 or retry_after < 0:
            raise ValueError("count and retry_after must be >= 0")
        self.exchange.faults["rate_limit"] += 1
        self._limited, self._limit_status, self._limit_retry_after = int(count), status, retry_after
        logger.warning("fault: next %d REST request(s) answer %d (Retry-After %s)", count, status, retry_after)

    def fault_slow(self, seconds: float, delay: float = 0.5) -> None:
        """Delay every REST market-data answer by ``delay`` s for the next ``seconds`` s (a slow backfill)."""
        if seconds < 0 or delay < 0:
            raise ValueError("seconds and delay must be >= 0")
        self.exchange.faults["slow"] += 1
        self._slow_until, self._slow_delay = time.monotonic() + seconds, delay
        logger.warning("fault: REST answers delayed by %.2fs for %.1fs", delay, seconds)

    def inject(self, kind: str, **params: float) -> dict[str, Any]:
        """Inject a fault by name (the control endpoint and the schedule use this)."""
        if kind == "drop":
            return {"kind": kind, "dropped": self.fault_drop()}
        if kind == "refuse":
            seconds = float(params.get("seconds", 5.0))
            return {"kind": kind, "seconds": seconds, "dropped": self.fault_refuse(seconds)}
        if kind == "malformed":
            return {"kind": kind, "sent": self.fault_malformed()}
        if kind == "rate_limit":
            count = int(params.get("count", 1))
            status = int(params.get("status", 429))
            retry_after = params.get("retry_after", 1)
            retry_after = int(retry_after) if float(retry_after).is_integer() else float(retry_after)
            self.fault_rate_limit(count, status=status, retry_after=retry_after)
            return {"kind": kind, "count": count, "status": status, "retry_after": retry_after}
        if kind == "slow":
            seconds, delay = float(params.get("seconds", 30.0)), float(params.get("delay", 0.5))
            self.fault_slow(seconds, delay)
            return {"kind": kind, "seconds": seconds, "delay": delay}
        raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(FAULT_KINDS)})")

    def _abort_all(self) -> int:
        dropped = 0
        for sub in list(self._subs.values()):
            if not sub.conn.transport.is_closing():
                sub.conn.transport.abort()
                dropped += 1
        return dropped

    @property
    def refusing(self) -> bool:
        return time.monotonic() < self._refuse_until

    async def _run_schedule(self) -> None:
        for fault in self.schedule:
            delay = self._started_at + fault.at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self.inject(fault.kind, **fault.params)
            except ValueError:
                logger.exception("scheduled fault %s failed", fault)

    # -- trading -------------------------------------------------------------------

    async def _generate(self) -> None:
        scenario = self.scenario
        try:
            if self.blast:
                await self._subscribed.wait()
            elif self.start_on_subscribe and not scenario.unpaced:
                await self._covered.wait()
                await self._open_on_whole_second()
            while True:
                if not self._running.is_set():
                    await self._running.wait()
                    continue
                limit = _BLAST_CHUNK if self.blast else _PACED_CHUNK
                if self.count is not None:
                    limit = min(limit, self.count - self._generated)
                    if limit <= 0:
                        break
                unpaced = self.blast or scenario.unpaced
                now = time.time()
                until = math.inf if unpaced else now - self._origin
                batch = scenario.take(until, limit)
                self._publish(batch, now, unpaced)
                if len(batch.offsets) < limit:  # everything due is sent
                    self._sent_through_ms = int(now * 1000)
                if self.blast:
                    await self._drain()
                if scenario.exhausted:
                    break
                if len(batch.offsets) < limit:
                    await asyncio.sleep(self.step)
                else:
                    await asyncio.sleep(0)  # more is due: just let the connections breathe
        finally:
            self._finished.set()
        logger.info("trading finished after %d trades", self._generated)

    async def _open_on_whole_second(self) -> None:
        now = time.time()
        await asyncio.sleep(math.ceil(now) - now)
        self._origin = float(math.ceil(now))
        self.exchange.set_prehistory(self._prehistory, start_ms=int(self._origin * 1000))
        logger.info("market open at %d (every symbol has a subscriber)", int(self._origin * 1000))

    def _publish(self, batch: Batch, now: float, unpaced: bool) -> None:
        """Record ``batch`` in the exchange and send it to the subscribers."""
        if not batch.offsets:
            return
        record = self.exchange.record
        now_ms = int(now * 1000)
        ids = batch.ids or [None] * len(batch.offsets)
        if unpaced:
            ticks = [
                record(sym, now_ms, p, q, tid)
                for sym, p, q, tid in zip(batch.symbols, batch.prices, batch.quantities, ids, strict=True)
            ]
        else:
            origin_ms = self._origin * 1000
            rows = zip(batch.symbols, batch.offsets, batch.prices, batch.quantities, ids, strict=True)
            ticks = [record(sym, min(now_ms, int(origin_ms + off * 1000)), p, q, tid) for sym, off, p, q, tid in rows]
        self._generated += len(ticks)
        self._fan_out(ticks, now_ms)

    def _fan_out(self, ticks: list[Tick], event_time: int) -> None:
        subs = [s for s in self._subs.values() if s.symbols and s.open]
        if not subs:
            return
        # Serialise each trade once per format, whatever the number of subscribers.
        frames: dict[bool, list[bytes]] = {}
        for combined in {s.combined for s in subs}:
            frames[combined] = [
                _ws_text_frame(agg_trade_frame(t, event_time=event_time, combined=combined)) for t in ticks
            ]
        present = {t.symbol for t in ticks}
        # Subscribers to the same streams in the same format share one buffer.
        joined: dict[tuple[bool, frozenset[str]], tuple[bytes, int]] = {}
        for sub in subs:
            cached = joined.get(sub.key)
            if cached is None:
                wire = frames[sub.combined]
                if present <= sub.symbols:
                    picked = wire
                else:
                    picked = [w for t, w in zip(ticks, wire, strict=True) if t.symbol in sub.symbols]
                cached = joined[sub.key] = (b"".join(picked), len(picked))
            data, n = cached
            if n:
                sub.write(data)
                self.frames_sent += n
            if not self.blast and sub.conn.transport.get_write_buffer_size() > _SLOW_CONSUMER_BYTES:
                logger.warning("dropping a subscriber that cannot keep up")
                sub.conn.transport.abort()

    async def _mark_prices(self) -> None:
        """Each second, every mark-price subscriber gets its symbols' mark price.

        Its event time is one up to which every trade has been sent, so a client
        reading it knows it has every earlier trade of the connection: the
        exchange's clock, in order with the trades, quiet market or not.
        """
        while True:
            now = time.time()
            await asyncio.sleep(math.ceil(now) - now or 1.0)
            subs = [s for s in self._subs.values() if s.marks and s.open]
            if not subs:
                continue
            now_ms = int(time.time() * 1000)
            generating = self._running.is_set() and self._origin * 1000 <= now_ms and not self._finished.is_set()
            event_time = min(now_ms, self._sent_through_ms or now_ms) if generating else now_ms
            next_funding = (event_time // _FUNDING_INTERVAL_MS + 1) * _FUNDING_INTERVAL_MS
            frames: dict[tuple[str, bool], bytes] = {}
            for sub in subs:
                for symbol in sorted(sub.marks & set(self.exchange.symbols)):
                    key = (symbol, sub.combined)
                    if key not in frames:
                        price = self.exchange.last_price(symbol)
                        if price is None:
                            continue
                        mark = MarkPrice(event_time, symbol, price, _FUNDING_RATE, next_funding)
                        frames[key] = _ws_text_frame(mark_price_frame(mark, combined=sub.combined))
                    sub.write(frames[key])
                    self.frames_sent += 1

    async def _drain(self) -> None:
        """Blast mode: wait until every subscriber's socket has room again."""
        for sub in list(self._subs.values()):
            if sub.open and sub.conn.transport.get_write_buffer_size() > 2**20:
                # Frames bypass the library, but a ping goes through its send
                # path, whose flow control waits until the transport drains.
                try:
                    await sub.conn.ping()
                except ConnectionClosed:
                    pass

    # -- WebSocket ----------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None  # the handshake is done
        # process_request only lets WebSocket routes through.
        combined, streams = _ws_route(urlsplit(conn.request.path)) or (True, [])
        sub = _Subscriber(conn, combined, streams)
        self._subs[conn] = sub
        self.exchange.connections += 1
        self.exchange.connections_total += 1
        self._note_subscription(sub)
        try:
            async for message in conn:
                reply = self._control_message(sub, message)
                if reply is not None:
                    await conn.send(orjson.dumps(reply).decode())
        except ConnectionClosed:
            pass
        finally:
            self._subs.pop(conn, None)
            self.exchange.connections -= 1

    def _note_subscription(self, sub: _Subscriber) -> None:
        if sub.symbols:
            self._subscribed.set()
        listened = set().union(*(s.symbols for s in self._subs.values()))
        if listened >= set(self.exchange.symbols):
            self._covered.set()

    def _control_message(self, sub: _Subscriber, message: str | bytes) -> dict[str, Any] | None:
        """Answer one client message the way Binance does."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return {"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None}
        if not isinstance(request, dict):
            return {"error": {"code": 2, "msg": "Invalid request: expected an object"}, "id": None}
        req_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        self.requests[str(method)] += 1
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {"error": {"code": 2, "msg": "Invalid request: params must be a list of streams"}, "id": req_id}
            if method == "SUBSCRIBE":
                sub.subscribe(params)
                self._note_subscription(sub)
            else:
                sub.unsubscribe(params)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(sub.streams), "id": req_id}
        if method == "SET_PROPERTY":
            if isinstance(params, list) and len(params) == 2 and params[0] == "combined":
                if isinstance(params[1], bool):
                    sub.set_combined(params[1])
                    return {"result": None, "id": req_id}
            return {"error": {"code": 2, "msg": "Invalid request: unknown property"}, "id": req_id}
        if method == "GET_PROPERTY":
            if params == ["combined"]:
                return {"result": sub.combined, "id": req_id}
            return {"error": {"code": 2, "msg": "Invalid request: unknown property"}, "id": req_id}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": req_id}

    # -- HTTP -------------------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Route a request: WebSocket routes go on to the handshake, the rest is REST."""
        slow = self._slow_delay and time.monotonic() < self._slow_until
        if slow and _strip_prefix(urlsplit(request.path).path).startswith("/fapi/"):
            await asyncio.sleep(self._slow_delay)
        return self._route(request)

    def _route(self, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = _strip_prefix(parts.path)
        if _ws_route(parts) is not None:
            if self.refusing:
                return _json_response(503, {"code": -1001, "msg": "Service unavailable (simulated refusal)."})
            return None
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/fapi/"):
                if request.method != "GET":
                    raise ApiError(-1000, f"Method {request.method} is not allowed.", 405)
                handler = self._rest_routes.get(path)
                if handler is None:
                    raise ApiError(-5000, f"Path {path}, Method GET is invalid", 404)
                limited = self._rate_limited()
                if limited is not None:
                    return limited
                return _json_response(200, handler(self, params))
            if path.startswith("/sim/"):
                if request.method not in ("GET", "POST"):
                    raise ApiError(-1000, f"Method {request.method} is not allowed.", 405)
                return _json_response(200, self._control(path, params))
        except ApiError as exc:
            return _json_response(exc.status, {"code": exc.code, "msg": exc.msg})
        return _json_response(404, {"code": -5000, "msg": f"Path {path}, Method {request.method} is invalid"})

    def _rate_limited(self) -> Response | None:
        if self._limited <= 0:
            return None
        self._limited -= 1
        if self._limit_status == 418:
            msg = "Way too many requests; IP banned (simulated)."
        else:
            msg = "Too many requests; current limit of IP is 2400 requests per minute (simulated)."
        retry_after = self._limit_retry_after
        header = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        return _json_response(self._limit_status, {"code": -1003, "msg": msg}, [("Retry-After", header)])

    def _control(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path == "/sim/stats":
            return self.exchange.stats()
        if path == "/sim/pause":
            self.pause()
            return {"paused": True}
        if path == "/sim/resume":
            self.resume()
            return {"paused": False}
        if path == "/sim/fault":
            kind = params.get("kind", "")
            numbers: dict[str, float] = {}
            for name in ("seconds", "count", "status", "retry_after", "delay"):
                if name in params:
                    numbers[name] = _number_param(params, name)
            try:
                return {"ok": True, **self.inject(kind, **numbers)}
            except ValueError as exc:
                raise ApiError(-1102, str(exc)) from None
        raise ApiError(-5000, f"Path {path} is invalid", 404)

    # REST market data -----------------------------------------------------------

    def _rest_agg_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = _symbol_param(params)
        if symbol in self.exchange.listed:
            return []  # listed, never traded
        limit = _limit_param(params, AGG_TRADES_LIMIT)
        from_id = _int_param(params, "fromId")
        start = _int_param(params, "startTime")
        end = _int_param(params, "endTime")
        if start is not None and end is not None:
            if end < start:
                raise ApiError(-1128, "startTime should be less than endTime.")
            if end - start > 3_600_000:
                raise ApiError(-1127, "More than 1 hours between startTime and endTime.")
        ticks = self.exchange.agg_trades(symbol, from_id=from_id, start_time=start, end_time=end, limit=limit)
        return [agg_trade_payload(t) for t in ticks]

    def _rest_klines(self, params: dict[str, str]) -> list[list[Any]]:
        symbol = _symbol_param(params)
        if symbol in self.exchange.listed:
            return []  # listed, never traded
        interval = params.get("interval")
        if not interval:
            raise ApiError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        limit = _limit_param(params, KLINES_LIMIT)
        start = _int_param(params, "startTime")
        end = _int_param(params, "endTime")
        return self.exchange.klines(symbol, interval, start_time=start, end_time=end, limit=limit)

    def _rest_exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        return self.exchange.exchange_info()

    def _rest_time(self, params: dict[str, str]) -> dict[str, Any]:
        return {"serverTime": int(time.time() * 1000)}

    def _rest_ping(self, params: dict[str, str]) -> dict[str, Any]:
        return {}

    _rest_routes: dict[str, Callable[[Simulator, dict[str, str]], Any]] = {
        "/fapi/v1/aggTrades": _rest_agg_trades,
        "/fapi/v1/klines": _rest_klines,
        "/fapi/v1/exchangeInfo": _rest_exchange_info,
        "/fapi/v1/time": _rest_time,
        "/fapi/v1/ping": _rest_ping,
    }


def _strip_prefix(path: str) -> str:
    for prefix in _ROUTE_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :] or "/"
    return path


def _ws_route(parts: SplitResult) -> tuple[bool, list[str]] | None:
    """(combined, streams) of a WebSocket path, or None if it is not one."""
    path = _strip_prefix(parts.path).rstrip("/") or "/"
    if path == "/ws":
        return False, []
    if path.startswith("/ws/"):
        return False, [s for s in path[4:].split("/") if s]
    if path == "/stream":
        streams = parse_qs(parts.query).get("streams", [""])[0]
        return True, [s for s in streams.split("/") if s]
    return None


def _json_response(status: int, body: Any, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    payload = orjson.dumps(body)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
            *extra_headers,
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)


def _symbol_param(params: dict[str, str]) -> str:
    symbol = params.get("symbol", "")
    if not symbol:
        raise ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    return symbol.upper()


def _int_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(value)


def _limit_param(params: dict[str, str], maximum: int) -> int:
    """``limit``: 500 when absent, else 1..``maximum`` (Binance's rule for both endpoints)."""
    limit = _int_param(params, "limit")
    limit = 500 if limit is None else limit
    if not 1 <= limit <= maximum:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _number_param(params: dict[str, str], name: str) -> float:
    try:
        value = float(params[name])
    except ValueError:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.") from None
    if not math.isfinite(value) or value < 0:
        raise ApiError(-1100, f"Parameter '{name}' must be a non-negative number.")
    return value
