"""The offline exchange's memory: per-symbol trades, ids, klines and the symbol list.

What REST serves is read from here: ``aggTrades`` pages, ``klines`` (built
from the trades, after a synthetic pre-history where the scenario has one) and
``exchangeInfo``. History is bounded per symbol: older trades are forgotten
exactly like Binance's history window, so a client can meet a gap it cannot
fill. No I/O and no event loop: the server (``server.py``) records the
scenario's trades here and answers from it.
"""

from __future__ import annotations

import bisect
import math
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..binance import Tick
from .klines import (
    INTERVALS,
    Candles,
    PrehistorySource,
    Run,
    candles_joined,
    candles_slice,
    choose_runs,
    clip_runs,
    kline_rows,
    trade_candles,
)
from .symbols import SymbolSpec, symbol_spec


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


class _History(NamedTuple):
    """Where one symbol's candles at one interval come from, besides its kept trades."""

    #: The synthetic pre-history, or None.
    pre: Candles | None
    #: Open time of the candle holding the start: the pre-history ends just before it.
    anchor_open: int
    #: Trades have been forgotten since the start: a hole follows the pre-history.
    forgotten: bool

    @property
    def joined(self) -> bool:
        """Whether the trade-built candles carry on from the pre-history without a hole."""
        return self.pre is not None and not self.forgotten


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

    # -- klines --------------------------------------------------------------

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
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        history = self._history(book, width)
        runs = clip_runs(self._runs(book, width, history, now_ms), width, start_time, end_time)
        chosen = choose_runs(runs, width, limit, from_start=start_time is not None)
        if not chosen:
            return []
        candles = candles_joined([self._run_candles(book, run, width, history) for run in chosen])
        open_times = [t for run in chosen for t in range(run.first, run.last + 1, width)]
        return kline_rows(book.spec, open_times, candles, width)

    def _history(self, book: _Book, width: int) -> _History:
        """The pre-history of ``book`` at ``width``, where it ends, and whether trades were forgotten since."""
        forgotten = book.generated - (len(book.times) - self._window(book)) > 0
        if self._prehistory is not None:
            starts = [t for t in (self._prehistory_start, book.first_time) if t is not None]
            if starts:
                return _History(self._prehistory(book.spec.symbol, width), min(starts) // width * width, forgotten)
        return _History(None, 0, forgotten)

    def _runs(self, book: _Book, width: int, history: _History, now_ms: int) -> list[Run]:
        """The candles on offer: the pre-history's, then the trade-built ones up to the one holding now."""
        times = book.times
        first, n = self._window(book), len(times)
        runs: list[Run] = []
        pre = history.pre
        if pre is not None and len(pre.closes):
            runs.append(Run(history.anchor_open - len(pre.closes) * width, history.anchor_open - width, True))
        if first < n or history.joined:
            live_lo = times[first] // width * width if first < n else history.anchor_open
            if history.joined:
                live_lo = min(live_lo, history.anchor_open)
            newest = max(now_ms, times[n - 1]) if first < n else now_ms
            runs.append(Run(live_lo, newest // width * width, False))
        return runs

    def _run_candles(self, book: _Book, run: Run, width: int, history: _History) -> Candles:
        """The candles of ``run``: a slice of the pre-history, or built from the kept trades."""
        pre = history.pre
        if run.pre:
            assert pre is not None
            k0 = (run.first - (history.anchor_open - len(pre.closes) * width)) // width
            return candles_slice(pre, k0, k0 + (run.last - run.first) // width + 1)
        carry = float(pre.closes[-1]) if pre is not None and history.joined else math.nan
        return self._trade_candles(book, run.first, run.last, width, carry)

    def _trade_candles(self, book: _Book, lo_open: int, hi_open: int, width: int, carry: float) -> Candles:
        """OHLCV of the kept trades in the candles opening ``lo_open``..``hi_open``.

        A candle without trades repeats the previous close; before the oldest
        kept trade that is ``carry`` (the pre-history's last close, or NaN).
        """
        times = book.times
        first = self._window(book)
        n = len(times)
        i0 = bisect.bisect_left(times, lo_open, first, n)
        i1 = bisect.bisect_left(times, hi_open + width, i0, n)
        # The close before the window: what an empty first candle repeats.
        prev_close = book.prices[i0 - 1] if i0 > first else carry
        return trade_candles(
            np.frombuffer(times[i0:i1], dtype=np.int64),
            np.frombuffer(book.prices[i0:i1], dtype=np.float64),
            np.frombuffer(book.qtys[i0:i1], dtype=np.float64),
            lo_open,
            (hi_open - lo_open) // width + 1,
            width,
            prev_close,
        )

    # -- the symbol list and the counters ---------------------------------------

    def exchange_info(self, now_ms: int | None = None) -> dict[str, Any]:
        """The ``GET /fapi/v1/exchangeInfo`` body (only what clients look at)."""
        entries = [(book.spec, "TRADING", "PERPETUAL") for book in self._books.values()]
        entries += [(symbol_spec(name), status, kind) for name, (status, kind) in self.listed.items()]
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000) if now_ms is None else now_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            ],
            "exchangeFilters": [],
            "assets": [],
            "symbols": [_symbol_info(spec, status, contract_type) for spec, status, contract_type in entries],
        }

    def stats(self) -> dict[str, Any]:
        """Per symbol ``{first_id, last_id, generated, first_time, last_time}``, plus totals.

        ``first_id``/``first_time`` are of the oldest trade REST still serves;
        ``generated`` counts every trade ever made, forgotten ones included.
        Top-level extras: ``generated`` (all symbols), ``connections`` (open
        WebSockets), ``connections_total``, ``faults`` (injected, by kind),
        ``history_limit``.
        """
        out: dict[str, Any] = {symbol: self._book_stats(book) for symbol, book in self._books.items()}
        out["generated"] = sum(book.generated for book in self._books.values())
        out["connections"] = self.connections
        out["connections_total"] = self.connections_total
        out["faults"] = dict(self.faults)
        out["history_limit"] = self.history_limit
        return out

    def _book_stats(self, book: _Book) -> dict[str, Any]:
        first = self._window(book)
        has = len(book.times) > first
        return {
            "first_id": book.base_id + first if has else None,
            "last_id": book.next_id - 1 if has else None,
            "generated": book.generated,
            "first_time": book.times[first] if has else None,
            "last_time": book.times[-1] if has else None,
        }


def _symbol_info(spec: SymbolSpec, status: str, contract_type: str) -> dict[str, Any]:
    """One entry of ``exchangeInfo``'s ``symbols``: the contract, its assets and its price/lot grid."""
    return {
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
