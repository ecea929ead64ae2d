"""The offline exchange's memory: per-symbol trades, ids, klines and the symbol list.

What REST serves is read from here: ``aggTrades`` pages, ``klines`` (built
from the trades, after a synthetic pre-history where the scenario has one that
reaches back to the listing date), ``fundingRate`` and ``exchangeInfo``.
History is bounded per symbol: older trades are forgotten exactly like
Binance's history window, so a client can meet a gap it cannot fill. No I/O
and no event loop: the server (``server.py``) records the scenario's trades
here and answers from it.
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

from ..binance import FundingRate, Tick, format_decimal, funding_rate_payload
from .funding import funding_rate, funding_times
from .klines import (
    INTERVALS,
    Candles,
    FixedPrehistory,
    Prehistory,
    PrehistorySource,
    Run,
    candles_joined,
    choose_runs,
    clip_runs,
    kline_rows,
    trade_candles,
)
from .symbols import SymbolSpec, symbol_spec
from .universe import DAY_MS, MINUTE_MS, UniverseMarket, default_quote_volume, trade_count

#: When the exchange's history begins by default (its symbols' ``onboardDate``):
#: 2019-09-25 08:00 UTC, the month Binance opened its USD-M perpetuals. No kline
#: opens before it, no funding is charged before it.
LISTED_SINCE_MS = 1_569_398_400_000


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
    pre: Prehistory | None
    #: Open time of the candle holding the start: the pre-history ends just before it.
    anchor_open: int
    #: Trades have been forgotten since the start: a hole follows the pre-history.
    forgotten: bool
    #: Open time of the first candle the listing date lets through.
    first_open: int

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
        REST answers their trades, klines and funding rates with empty lists.
    listed_since : int
        When its symbols were listed (ms; ``exchangeInfo``'s ``onboardDate``): no
        kline opens before it, no funding is charged before it, as on Binance.
    seed : int
        Seeds the funding rates (see ``funding.funding_rate``).
    universe : UniverseMarket or None
        More symbols, listed TRADING, that never trade but have klines (any past
        range), funding rates and a 24 h ticker (see ``universe``).
    """

    def __init__(
        self,
        specs: Iterable[SymbolSpec] = (),
        *,
        history_limit: int = 2_000_000,
        listed: Mapping[str, tuple[str, str]] | None = None,
        listed_since: int = LISTED_SINCE_MS,
        seed: int = 0,
        universe: UniverseMarket | None = None,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        if listed_since < 0:
            raise ValueError("listed_since must be a time in ms since 1970")
        self.listed: dict[str, tuple[str, str]] = dict(listed or {})
        self.listed_since = listed_since
        self.seed = seed
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
        self.universe = universe
        #: Symbols whose status ``exchangeInfo`` gives as other than TRADING (``delist``).
        self.statuses: dict[str, str] = {}
        for spec in specs:
            self.add_symbol(spec)
        if universe is not None:
            overlap = sorted(set(universe.specs) & (set(self._books) | set(self.listed)))
            if overlap:
                raise ValueError(f"{', '.join(overlap)} cannot be both in the universe and traded or listed")

    def set_prehistory(self, source: PrehistorySource | None, *, start_ms: int | None = None) -> None:
        """Serve ``source``'s synthetic candles as klines before the start.

        The start is ``start_ms`` (the scenario's time 0) or, if that is None or
        later, the first trade ever recorded. The pre-history's candles end with
        the one before the candle holding the start; that candle and the later
        ones are built from trades. ``source(symbol, interval_ms)`` returns a
        ``Prehistory`` (or plain ``Candles``) or None (no pre-history for that
        symbol or interval); its candles are served back to the listing date.
        """
        self._prehistory = source
        self._prehistory_start = start_ms

    # -- symbols -------------------------------------------------------------

    def add_symbol(self, spec: SymbolSpec) -> None:
        if spec.symbol in self._books or spec.symbol in self.listed or spec.symbol in self._untraded:
            raise ValueError(f"{spec.symbol} is already listed")
        self._books[spec.symbol] = _Book(spec)

    @property
    def symbols(self) -> list[str]:
        """The symbols that trade."""
        return list(self._books)

    @property
    def universe_symbols(self) -> list[str]:
        """The symbols that trade, then those of the universe that do not (klines only)."""
        return [*self._books, *self._untraded]

    @property
    def _untraded(self) -> dict[str, SymbolSpec]:
        return self.universe.specs if self.universe is not None else {}

    def spec(self, symbol: str) -> SymbolSpec:
        untraded = self._untraded.get(symbol)
        return untraded if untraded is not None else self._book(symbol).spec

    def delist(self, symbol: str, status: str = "SETTLING") -> None:
        """List ``symbol`` with ``status`` from now on (a delisting: its klines stay, it is no longer TRADING)."""
        self.spec(symbol)
        self.statuses[symbol] = status

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
        if symbol in self._untraded:
            return []  # listed, never traded
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
        synthetic candles come first, from the first one opening at or after
        ``listed_since`` (or the pre-history's first, if it is shorter), and the
        trade-built ones start at the candle holding the start (unless trades
        have been forgotten since: then from the oldest kept one, leaving a
        hole). ``start_time`` selects candles opening at or after it,
        ``end_time`` candles opening at or before it; of those, the first
        ``limit`` with ``start_time``, else the last.
        """
        try:
            width = INTERVALS[interval]
        except KeyError:
            raise ApiError(-1120, "Invalid interval.") from None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if self.universe is not None and symbol in self.universe.specs:
            return self.universe.klines(
                symbol,
                interval,
                start_time=start_time,
                end_time=end_time,
                limit=limit,
                now_ms=now_ms,
                first_open=self.listed_since,
            )
        book = self._book(symbol)
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
        first_open = -(-self.listed_since // width) * width
        if self._prehistory is not None:
            starts = [t for t in (self._prehistory_start, book.first_time) if t is not None]
            if starts:
                pre = self._prehistory(book.spec.symbol, width)
                if isinstance(pre, Candles):
                    pre = FixedPrehistory(pre)
                anchor_open = min(starts) // width * width
                if first_open >= anchor_open:
                    pre = None  # listed since the start: nothing before it
                return _History(pre, anchor_open, forgotten, first_open)
        return _History(None, 0, forgotten, first_open)

    def _runs(self, book: _Book, width: int, history: _History, now_ms: int) -> list[Run]:
        """The candles on offer: the pre-history's, then the trade-built ones up to the one holding now."""
        times = book.times
        first, n = self._window(book), len(times)
        runs: list[Run] = []
        pre = history.pre
        if pre is not None:
            depth = pre.depth
            oldest = (
                history.first_open if depth is None else max(history.first_open, history.anchor_open - depth * width)
            )
            if oldest < history.anchor_open:
                runs.append(Run(oldest, history.anchor_open - width, True))
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
            return pre.candles((history.anchor_open - run.first) // width, (history.anchor_open - run.last) // width)
        carry = float(pre.candles(1, 1).closes[0]) if pre is not None and history.joined else math.nan
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

    # -- funding ---------------------------------------------------------------

    def funding_rate(self, symbol: str, funding_time: int) -> float:
        """The rate ``symbol`` pays at ``funding_time`` (what the mark-price stream announces, and REST reports)."""
        return funding_rate(self.seed, symbol, funding_time)

    def funding_rates(
        self,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 100,
        now_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """Funding rates as ``GET /fapi/v1/fundingRate`` answers them, ascending by funding time.

        One every 8 hours (00:00, 08:00, 16:00 UTC) from ``listed_since`` to now,
        at ``funding_rate``; ``markPrice`` is the close of the 1m kline that ends
        at the funding time ("" where there is none). ``start_time`` and
        ``end_time`` bound the funding times (inclusive); of those, the first
        ``limit`` with ``start_time``, else the last.
        """
        self.spec(symbol)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        lo = self.listed_since if start_time is None else max(start_time, self.listed_since)
        hi = now_ms if end_time is None else min(end_time, now_ms)
        times = funding_times(lo, hi)
        times = times[:limit] if start_time is not None else times[-limit:]
        return [
            funding_rate_payload(FundingRate(symbol, t, self.funding_rate(symbol, t), self._mark_at(symbol, t, now_ms)))
            for t in times
        ]

    def _mark_at(self, symbol: str, funding_time: int, now_ms: int) -> float | None:
        """The close of ``symbol``'s 1m kline ending at ``funding_time``, None where there is none."""
        opens = funding_time - INTERVALS["1m"]
        rows = self.klines(symbol, "1m", start_time=opens, end_time=opens, limit=1, now_ms=now_ms)
        if not rows:
            return None
        close = float(rows[0][4])
        return close if math.isfinite(close) and close > 0 else None

    # -- the symbol list and the counters ---------------------------------------

    def exchange_info(self, now_ms: int | None = None) -> dict[str, Any]:
        """The ``GET /fapi/v1/exchangeInfo`` body (only what clients look at)."""
        entries = [(book.spec, "TRADING", "PERPETUAL") for book in self._books.values()]
        entries += [(spec, "TRADING", "PERPETUAL") for spec in self._untraded.values()]
        entries = [(spec, self.statuses.get(spec.symbol, status), kind) for spec, status, kind in entries]
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
            "symbols": [
                _symbol_info(spec, status, contract_type, self.listed_since) for spec, status, contract_type in entries
            ],
        }

    def tickers_24hr(self, symbol: str | None = None, now_ms: int | None = None) -> list[dict[str, Any]]:
        """``GET /fapi/v1/ticker/24hr``'s rows: every listed symbol's last 24 hours, or ``symbol``'s.

        Prices are those of its 1m klines over the 24 hours up to now; the
        quote volume is the universe's (seeded: BTC first, ETH second, a fixed
        order for the rest; see ``universe``), the base volume and trade count
        follow from it. Symbols listed that never trade show zeros.
        """
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if symbol is not None:
            if symbol in self.listed:
                return [self._ticker_idle(symbol, now_ms)]
            self.spec(symbol)
            return [self._ticker(symbol, now_ms)]
        rows = [self._ticker(name, now_ms) for name in self.universe_symbols]
        return rows + [self._ticker_idle(name, now_ms) for name in self.listed]

    def _ticker(self, symbol: str, now_ms: int) -> dict[str, Any]:
        spec = self.spec(symbol)
        first = (now_ms - DAY_MS) // MINUTE_MS * MINUTE_MS + MINUTE_MS
        last = now_ms // MINUTE_MS * MINUTE_MS
        first = max(first, -(-self.listed_since // MINUTE_MS) * MINUTE_MS)
        if self.universe is not None and symbol in self.universe.specs:
            count = (last - first) // MINUTE_MS + 1
            candles = self.universe.candles(symbol, first, count) if count > 0 else None
            day = (
                None
                if candles is None
                else (candles.opens[0], candles.highs.max(), candles.lows.min(), candles.closes[-1])
            )
        else:
            rows = self.klines(symbol, "1m", start_time=first, end_time=last, limit=1500, now_ms=now_ms)
            day = None
            if rows:
                day = (
                    float(rows[0][1]),
                    max(float(r[2]) for r in rows),
                    min(float(r[3]) for r in rows),
                    float(rows[-1][4]),
                )
        if day is None:
            return self._ticker_idle(symbol, now_ms)
        open_, high, low, close = (float(v) for v in day)
        quote = self.universe.quote_volume(symbol) if self.universe is not None else default_quote_volume(symbol)
        average = (open_ + high + low + close) / 4.0
        pp, qp = spec.price_precision, spec.quantity_precision
        return {
            "symbol": symbol,
            "priceChange": f"{close - open_:.{pp}f}",
            "priceChangePercent": f"{(close / open_ - 1.0) * 100.0:.3f}",
            "weightedAvgPrice": f"{average:.{pp}f}",
            "lastPrice": f"{close:.{pp}f}",
            "lastQty": format_decimal(spec.step_size),
            "openPrice": f"{open_:.{pp}f}",
            "highPrice": f"{high:.{pp}f}",
            "lowPrice": f"{low:.{pp}f}",
            "volume": f"{quote / average:.{qp}f}",
            "quoteVolume": f"{quote:.2f}",
            "openTime": now_ms - DAY_MS,
            "closeTime": now_ms,
            "firstId": spec.first_id,
            "lastId": spec.first_id + trade_count(quote) - 1,
            "count": trade_count(quote),
        }

    def _ticker_idle(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """The ticker of a symbol without a trade in 24 hours: zeros."""
        zero = {"priceChange", "priceChangePercent", "weightedAvgPrice", "lastPrice", "lastQty", "openPrice"}
        zero |= {"highPrice", "lowPrice", "volume", "quoteVolume"}
        return {
            "symbol": symbol,
            **dict.fromkeys(sorted(zero), "0"),
            "openTime": now_ms - DAY_MS,
            "closeTime": now_ms,
            "firstId": -1,
            "lastId": -1,
            "count": 0,
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


def _symbol_info(spec: SymbolSpec, status: str, contract_type: str, listed_since: int) -> dict[str, Any]:
    """One entry of ``exchangeInfo``'s ``symbols``: the contract, its assets and its price/lot grid."""
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol.split("_", 1)[0],
        "contractType": contract_type,
        "status": status,
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "onboardDate": listed_since,
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
