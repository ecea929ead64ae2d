"""The Binance USD-M futures market-data protocol, pure (no Django, no I/O).

Everything here is a function of its arguments: URLs, frame parsing, REST rows
(aggregate trades, klines, the symbol list) and their serialisation. The async
client (``ingestion.client``), the klines warm-up and the offline exchange
(``ingestion.simulator``) all build on it, so what the exchange sends and what
the app reads are written down once.

References:
- aggTrade stream: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Aggregate-Trade-Streams
- aggTrades REST: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Compressed-Aggregate-Trades-List
- klines REST: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data
- fundingRate REST: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Get-Funding-Rate-History
- request weight: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info (limits)
- markPrice stream: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Mark-Price-Stream
- exchangeInfo REST: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information
- 24hr ticker REST: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/24hr-Ticker-Price-Change-Statistics
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import urlencode

import orjson


class Exchange(NamedTuple):
    """Where an exchange answers: the base of its market streams (websocket) and of its REST API."""

    ws_url: str
    rest_url: str


#: Largest page the aggTrades REST endpoint serves.
AGG_TRADES_LIMIT = 1000

#: Largest page the klines REST endpoint serves.
KLINES_LIMIT = 1500

#: Largest page the fundingRate REST endpoint serves.
FUNDING_RATE_LIMIT = 1000

#: Request weight an IP may use a minute (``exchangeInfo``'s REQUEST_WEIGHT limit);
#: every REST answer reports the weight used so far in ``X-MBX-USED-WEIGHT-1M``.
WEIGHT_LIMIT_1M = 2400
#: The used weight a long fetch lets a minute reach before it waits for the next
#: one: a margin under the limit for the app's other requests (the feed's backfill,
#: the warm-up) and anything else on the same IP.
WEIGHT_BUDGET_1M = 2000
#: The header that carries the used weight.
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
#: Request weight of ``exchangeInfo``.
EXCHANGE_INFO_WEIGHT = 1
#: Request weight of ``ticker/24hr``: every symbol at once, or one (``symbol=``).
TICKER_24HR_WEIGHT_ALL = 40
TICKER_24HR_WEIGHT_ONE = 1

#: Largest trade time or id a tick may carry (the Tick table's 64-bit columns).
INT64_MAX = 2**63 - 1

# Letters and digits; delivery contracts add a date (BTCUSDT_260327), so an
# underscore is let through too, and the exchange's list says what it is.
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9_]{1,29}$")


class Tick(NamedTuple):
    """One aggregate trade, normalised.

    ``timestamp`` is the trade time ``T`` in ms since the epoch (exchange clock,
    never the local receive time); ``trade_id`` is the aggregate trade id ``a``,
    contiguous per symbol.
    """

    timestamp: int
    symbol: str
    price: float
    quantity: float
    trade_id: int


class MarkPrice(NamedTuple):
    """One ``markPriceUpdate`` event of the ``<symbol>@markPrice@1s`` stream.

    The feed reads it as the exchange's clock: it comes every second on the same
    connection as the trades, quiet market or not, so ``event_time`` (``E``, the
    exchange's ms) tells how far the stream has got when no trade does.
    """

    event_time: int
    symbol: str
    price: float
    funding_rate: float
    next_funding_time: int


class MalformedFrame(ValueError):
    """A frame that is not valid JSON, or a trade with a field missing or impossible."""


def normalize_symbol(symbol: str) -> str:
    """Upper-case ``symbol`` and check it looks like a Binance symbol.

    Raises ``ValueError`` with a readable message otherwise.
    """
    value = symbol.strip().upper()
    if not _SYMBOL_RE.match(value):
        raise ValueError(f"{symbol!r} is not a symbol (expected letters and digits, e.g. BTCUSDT)")
    return value


#: The streams the feed follows per symbol: its trades, and its mark price every
#: second (the exchange's clock on a quiet market, see ``MarkPrice``).
STREAMS = ("aggTrade", "markPrice@1s")


def stream_url(base: str, symbols: list[str] | tuple[str, ...]) -> str:
    """Combined-stream URL for the aggTrade and 1 s markPrice streams of ``symbols``.

    ``base`` is the route, e.g. ``wss://fstream.binance.com/market`` (which serves
    both); the result is
    ``<base>/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s/ethusdt@aggTrade/...``.
    """
    if not symbols:
        raise ValueError("at least one symbol is needed")
    streams = "/".join(f"{s.lower()}@{kind}" for s in symbols for kind in STREAMS)
    return f"{base.rstrip('/')}/stream?streams={streams}"


def exchange_info_url(base: str) -> str:
    """REST URL of the exchange's symbol list (``GET /fapi/v1/exchangeInfo``)."""
    return f"{base.rstrip('/')}/fapi/v1/exchangeInfo"


def ticker_24hr_url(base: str, symbol: str | None = None) -> str:
    """REST URL of the 24 h statistics of every symbol (``GET /fapi/v1/ticker/24hr``), or of ``symbol`` alone."""
    url = f"{base.rstrip('/')}/fapi/v1/ticker/24hr"
    return url if symbol is None else f"{url}?{urlencode({'symbol': symbol})}"


def agg_trades_url(base: str, symbol: str, from_id: int, limit: int = AGG_TRADES_LIMIT) -> str:
    """REST URL of up to ``limit`` aggregate trades of ``symbol`` from id ``from_id``."""
    query = urlencode({"symbol": symbol, "fromId": from_id, "limit": limit})
    return f"{base.rstrip('/')}/fapi/v1/aggTrades?{query}"


def klines_url(base: str, symbol: str, interval: str, limit: int) -> str:
    """REST URL of the newest ``limit`` klines of ``symbol`` at ``interval`` (the last one in progress)."""
    query = urlencode({"symbol": symbol, "interval": interval, "limit": limit})
    return f"{base.rstrip('/')}/fapi/v1/klines?{query}"


def klines_range_url(base: str, symbol: str, interval: str, start_time: int, end_time: int | None, limit: int) -> str:
    """REST URL of the first ``limit`` klines of ``symbol`` opening in ``[start_time, end_time]`` (ms, inclusive).

    ``end_time`` None: no end (klines from ``start_time`` on).
    """
    params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "startTime": start_time}
    if end_time is not None:
        params["endTime"] = end_time
    params["limit"] = limit
    return f"{base.rstrip('/')}/fapi/v1/klines?{urlencode(params)}"


def funding_rate_url(base: str, symbol: str, start_time: int, end_time: int, limit: int = FUNDING_RATE_LIMIT) -> str:
    """REST URL of the first ``limit`` funding rates of ``symbol`` in ``[start_time, end_time]`` (ms, inclusive)."""
    query = urlencode({"symbol": symbol, "startTime": start_time, "endTime": end_time, "limit": limit})
    return f"{base.rstrip('/')}/fapi/v1/fundingRate?{query}"


def klines_weight(limit: int) -> int:
    """Request weight of a klines request for ``limit`` rows: 1 below 100, 2 below 500, 5 up to 1000, 10 above."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


#: Seconds past the minute a paced request waits for, so the exchange's count has
#: been reset when it arrives (the two clocks are never exactly together).
WEIGHT_PAUSE_SLACK = 1.0


def weight_pause(
    used: int | None, used_at: float | None, weight: int, now: float, budget: int = WEIGHT_BUDGET_1M
) -> float:
    """Seconds to wait before a request of ``weight``, given the weight used this minute.

    ``used`` is the exchange's last ``X-MBX-USED-WEIGHT-1M``, read at ``used_at``
    (epoch seconds; None: nothing read yet). The count is per minute: read in an
    earlier minute it has been reset. Within the same minute, if ``used`` plus
    ``weight`` would pass ``budget``, the answer is the time to the next minute
    (and ``WEIGHT_PAUSE_SLACK``); otherwise 0.
    """
    if used is None or used_at is None or int(used_at // 60) != int(now // 60):
        return 0.0
    if used + weight <= budget:
        return 0.0
    return 60.0 - now % 60.0 + WEIGHT_PAUSE_SLACK


def interval_ms(interval: str) -> int:
    """Length in ms of a kline interval (``1s``, ``1m``, ``5m``, ``1h``, ``1d``, ``1w``...).

    Raises ``ValueError`` for anything else (``1M``, the calendar month, has no fixed length).
    """
    match = _INTERVAL_RE.match(interval)
    if match is None:
        raise ValueError(f"{interval!r} is not a kline interval (e.g. 1m, 5m, 1h)")
    return int(match.group(1)) * _INTERVAL_UNITS[match.group(2)]


_INTERVAL_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_INTERVAL_RE = re.compile(r"^([1-9][0-9]{0,2})([smhdw])$")


# Event type -> key of its id. The live client subscribes to aggTrade only; the
# plain "trade" event (same shape, id in "t") is accepted so recordings of the
# trade stream replay through the same code.
_ID_KEY = {"aggTrade": "a", "trade": "t"}


def _tick_from_payload(data: dict[str, Any], id_key: str, symbol: str | None = None) -> Tick:
    try:
        tick = Tick(
            _integer(data["T"]),
            symbol or _symbol(data["s"]),
            _number(data["p"]),
            _number(data["q"]),
            _integer(data[id_key]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedFrame(f"bad trade payload ({exc.__class__.__name__}: {exc})") from None
    # "nan"/"inf" parse as floats; a trade has a positive finite price.
    if not (0.0 < tick.price < float("inf")) or not (0.0 <= tick.quantity < float("inf")):
        raise MalformedFrame(f"impossible price/quantity {data.get('p')!r}/{data.get('q')!r}")
    return tick


# The checks below keep what is not a trade out of the tick writer and the id
# tracker: a time or an id past 64 bits cannot be stored (orjson reads such an
# integer as a float, so it is refused as one), and a symbol that is a list or
# an object cannot key the per-symbol state.


def _integer(value: Any) -> int:
    """A trade time or id: a JSON integer (not a boolean, float or string) in the Tick table's range."""
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    if not 0 <= value <= INT64_MAX:
        raise ValueError(f"{value} is outside 0..{INT64_MAX}")
    return value


def _number(value: Any) -> float:
    """A price or quantity: a decimal string, as Binance sends them, or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"expected a decimal string, got {value!r}")
    return float(value)


def _symbol(value: Any) -> str:
    if not isinstance(value, str) or not _SYMBOL_RE.match(value):
        raise ValueError(f"{value!r} is not a symbol")
    if type(value) is str and len(_SYMBOLS_ACCEPTED) < _SYMBOLS_REMEMBERED:
        _SYMBOLS_ACCEPTED.add(value)
    return value


def parse_frame(frame: str | bytes) -> Tick | MarkPrice | None:
    """Parse one WebSocket frame of a raw or combined stream.

    Parameters
    ----------
    frame : str or bytes
        The text of one frame: either a raw event ``{"e": "aggTrade", ...}`` or a
        combined-stream envelope ``{"stream": "...", "data": {...}}``.

    Returns
    -------
    Tick, MarkPrice or None
        The trade, the mark price, or None for anything else (subscription acks,
        other events). Unknown keys are ignored.

    Raises
    ------
    MalformedFrame
        The frame is not JSON, not an object, or a trade or mark-price event lacks
        a field or has one of the wrong type or range (see ``Tick``).
    """
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise MalformedFrame(f"not JSON: {exc}") from None
    tick = _agg_trade_fast(message)
    return tick if tick is not None else _event_from_message(message)


def _event_from_message(message: Any) -> Tick | MarkPrice | None:
    """``parse_frame`` of the decoded frame ``message``, every check spelled out (see ``_agg_trade_fast``)."""
    if not isinstance(message, dict):
        raise MalformedFrame(f"expected a JSON object, got {type(message).__name__}")
    data = message.get("data", message)
    if not isinstance(data, dict):
        raise MalformedFrame("'data' is not an object")
    event = data.get("e")
    if event == "markPriceUpdate":
        return _mark_price_from_payload(data)
    id_key = _ID_KEY.get(event) if isinstance(event, str) else None
    if id_key is None:
        return None
    return _tick_from_payload(data, id_key)


#: Symbols ``_symbol`` has accepted, so the stream's own need no pattern match per frame.
_SYMBOLS_ACCEPTED: set[str] = set()
#: At most this many are remembered (a symbol is a name the exchange lists: few).
_SYMBOLS_REMEMBERED = 4096


def _agg_trade_fast(message: Any) -> Tick | None:
    """The tick of a well-formed aggTrade frame, as ``_tick_from_payload`` makes it; None for anything else.

    Nearly every frame is one: checked here by exact types in one go, anything
    unusual (another event, a field missing or of another type or range, a
    symbol never seen) is left to the general path and its messages.
    """
    if type(message) is not dict:
        return None
    data = message.get("data", message)
    if type(data) is not dict or data.get("e") != "aggTrade":
        return None
    timestamp, symbol, price, quantity, trade_id = (
        data.get("T"),
        data.get("s"),
        data.get("p"),
        data.get("q"),
        data.get("a"),
    )
    if not (
        type(timestamp) is int
        and type(trade_id) is int
        and type(price) is str
        and type(quantity) is str
        and type(symbol) is str
        and symbol in _SYMBOLS_ACCEPTED
        and 0 <= timestamp <= INT64_MAX
        and 0 <= trade_id <= INT64_MAX
    ):
        return None
    try:
        price, quantity = float(price), float(quantity)
    except ValueError:
        return None
    if not (0.0 < price < math.inf and 0.0 <= quantity < math.inf):
        return None
    return _new_tick((timestamp, symbol, price, quantity, trade_id))


#: ``Tick(*fields)`` without the Python-level ``__new__`` of a named tuple (the same object).
_new_tick = functools.partial(tuple.__new__, Tick)


def _mark_price_from_payload(data: dict[str, Any]) -> MarkPrice:
    try:
        mark = MarkPrice(
            _integer(data["E"]),
            _symbol(data["s"]),
            _number(data["p"]),
            _number(data.get("r") or 0),
            _integer(data.get("T") or 0),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedFrame(f"bad mark price payload ({exc.__class__.__name__}: {exc})") from None
    if not (0.0 <= mark.price < float("inf")) or not math.isfinite(mark.funding_rate):
        raise MalformedFrame(f"impossible mark price/funding rate {data.get('p')!r}/{data.get('r')!r}")
    return mark


def parse_rest_agg_trades(symbol: str, rows: Any) -> list[Tick]:
    """Ticks from the JSON body of ``GET /fapi/v1/aggTrades`` (rows carry no symbol)."""
    if not isinstance(rows, list):
        raise MalformedFrame(f"aggTrades answer is not a list: {str(rows)[:200]}")
    ticks = []
    for row in rows:
        if not isinstance(row, dict):
            raise MalformedFrame("aggTrades row is not an object")
        ticks.append(_tick_from_payload(row, "a", symbol))
    return ticks


def agg_trade_frame(tick: Tick, *, event_time: int | None = None, combined: bool = True) -> bytes:
    """Serialise ``tick`` as Binance sends it (used by the simulator and the tests)."""
    payload = agg_trade_payload(tick)
    payload = {"e": "aggTrade", "E": event_time or tick.timestamp, "s": tick.symbol, **payload}
    if combined:
        return orjson.dumps({"stream": f"{tick.symbol.lower()}@aggTrade", "data": payload})
    return orjson.dumps(payload)


def mark_price_frame(mark: MarkPrice, *, combined: bool = True) -> bytes:
    """Serialise ``mark`` as Binance's ``<symbol>@markPrice@1s`` stream sends it."""
    payload = {
        "e": "markPriceUpdate",
        "E": mark.event_time,
        "s": mark.symbol,
        "p": format_decimal(mark.price),
        "i": format_decimal(mark.price),
        "P": format_decimal(mark.price),
        "r": format_decimal(mark.funding_rate),
        "T": mark.next_funding_time,
    }
    if combined:
        return orjson.dumps({"stream": f"{mark.symbol.lower()}@markPrice@1s", "data": payload})
    return orjson.dumps(payload)


def agg_trade_payload(tick: Tick) -> dict[str, Any]:
    """The REST aggTrades row of ``tick`` (prices and quantities as strings, as Binance does)."""
    return {
        "a": tick.trade_id,
        "p": format_decimal(tick.price),
        "q": format_decimal(tick.quantity),
        "f": tick.trade_id,
        "l": tick.trade_id,
        "T": tick.timestamp,
        "m": False,
    }


def format_decimal(value: float) -> str:
    """Shortest decimal string of ``value`` without exponent (``61800.3`` -> ``"61800.3"``).

    ``1e-05`` gives ``"0.00001"``. The text parses back to ``value`` exactly,
    however small or large (rounding to 12 places turned ``1e-13`` into ``"0"``).
    """
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


# -- klines ------------------------------------------------------------------------


class Kline(NamedTuple):
    """One candle of ``GET /fapi/v1/klines``, normalised.

    Times are ms since the epoch (``close_time`` is the candle's last ms);
    volumes are in the base asset, ``quote_volume`` in the quote asset; the
    taker-buy share is kept so a row serialises back to what was read.
    """

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote_volume: float


#: Fields of a kline row, in Binance's order (a 12th, ignored, follows).
_KLINE_FIELDS = len(Kline._fields)


def parse_rest_klines(rows: Any) -> list[Kline]:
    """Klines from the JSON body of ``GET /fapi/v1/klines`` (a list of rows, oldest first).

    A row is ``[openTime, "open", "high", "low", "close", "volume", closeTime,
    "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "0"]``. Raises
    ``MalformedFrame`` for anything else, and for a candle no market makes
    (a price that is not positive and finite, a negative volume): such a row
    must not become a bar.
    """
    if not isinstance(rows, list):
        raise MalformedFrame(f"klines answer is not a list: {str(rows)[:200]}")
    return [_kline_from_row(row) for row in rows]


def _kline_from_row(row: Any) -> Kline:
    if not isinstance(row, list) or len(row) < _KLINE_FIELDS:
        raise MalformedFrame(f"klines row is not a list of {_KLINE_FIELDS}+ fields: {str(row)[:200]}")
    try:
        kline = Kline(
            _integer(row[0]),
            _number(row[1]),
            _number(row[2]),
            _number(row[3]),
            _number(row[4]),
            _number(row[5]),
            _integer(row[6]),
            _number(row[7]),
            _integer(row[8]),
            _number(row[9]),
            _number(row[10]),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedFrame(f"bad klines row ({exc.__class__.__name__}: {exc})") from None
    prices = (kline.open, kline.high, kline.low, kline.close)
    volumes = (kline.volume, kline.quote_volume, kline.taker_buy_volume, kline.taker_buy_quote_volume)
    if not all(0.0 < p < float("inf") for p in prices) or not all(0.0 <= v < float("inf") for v in volumes):
        raise MalformedFrame(f"impossible kline prices/volumes: {str(row)[:200]}")
    return kline


def kline_row(kline: Kline, *, price_precision: int, quantity_precision: int) -> list[Any]:
    """Serialise ``kline`` as Binance's klines REST row (used by the simulator and the tests).

    Prices print with the symbol's price precision, base volumes with its
    quantity precision, quote volumes with both (a price times a quantity).
    """
    pp, qp = price_precision, quantity_precision
    return [
        kline.open_time,
        f"{kline.open:.{pp}f}",
        f"{kline.high:.{pp}f}",
        f"{kline.low:.{pp}f}",
        f"{kline.close:.{pp}f}",
        f"{kline.volume:.{qp}f}",
        kline.close_time,
        f"{kline.quote_volume:.{pp + qp}f}",
        kline.trades,
        f"{kline.taker_buy_volume:.{qp}f}",
        f"{kline.taker_buy_quote_volume:.{pp + qp}f}",
        "0",
    ]


# -- the exchange's symbol list ----------------------------------------------------

#: The status of a symbol that trades; others are e.g. PENDING_TRADING, SETTLING, CLOSE.
TRADING = "TRADING"
#: Contract types that never expire. TRADIFI_PERPETUAL is Binance's name for the
#: perpetuals on stocks and metals (XAUUSDT): perpetuals all the same, with the
#: same aggTrade stream. Delivery contracts (CURRENT_QUARTER, ...) are not.
PERPETUALS = frozenset({"PERPETUAL", "TRADIFI_PERPETUAL"})


class ListedSymbol(NamedTuple):
    """What ``exchangeInfo`` says of one symbol (only what pairs looks at).

    ``quote_asset`` is what its price is in (USDT, USDC...; "" when not said).
    """

    symbol: str
    status: str
    contract_type: str
    quote_asset: str = ""

    @property
    def tradable(self) -> bool:
        return self.status == TRADING and self.contract_type in PERPETUALS


def parse_exchange_info(body: Any) -> dict[str, ListedSymbol]:
    """The symbols of the JSON body of ``GET /fapi/v1/exchangeInfo``, by name.

    Raises ``MalformedFrame`` when the body is not an object with a ``symbols``
    list; an entry without a symbol name is skipped, a missing status, contract
    type or quote asset reads as empty (so such a symbol is not tradable).
    """
    if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
        raise MalformedFrame(f"exchangeInfo answer has no symbol list: {str(body)[:200]}")
    listed: dict[str, ListedSymbol] = {}
    for row in body["symbols"]:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            continue
        status, contract_type, quote = row.get("status"), row.get("contractType"), row.get("quoteAsset")
        listed[row["symbol"]] = ListedSymbol(
            row["symbol"],
            status if isinstance(status, str) else "",
            contract_type if isinstance(contract_type, str) else "",
            quote if isinstance(quote, str) else "",
        )
    return listed


def listing_problem(symbol: str, listed: dict[str, ListedSymbol]) -> str | None:
    """Why ``symbol`` cannot be followed according to the exchange's list, or None if it can.

    The message names the symbol and reads on its own (a form error, a health line).
    """
    entry = listed.get(symbol)
    if entry is None:
        return f"{symbol} is not a symbol of Binance USD-M futures"
    if entry.status != TRADING:
        return f"{symbol} is not trading on the exchange (status {entry.status or 'none'})"
    if entry.contract_type not in PERPETUALS:
        return f"{symbol} is not a perpetual (contract type {entry.contract_type or 'none'})"
    return None


# -- 24 h tickers and the universe of a screener --------------------------------------


class Ticker24h(NamedTuple):
    """One row of ``GET /fapi/v1/ticker/24hr``: a symbol's last 24 hours (only what pairs looks at).

    ``volume`` is in the base asset, ``quote_volume`` in the quote asset (what
    symbols are ranked by); ``trades`` is its ``count``, the number of trades;
    ``close_time`` (ms) is when the 24 h end.
    """

    symbol: str
    last_price: float
    price_change_percent: float
    volume: float
    quote_volume: float
    trades: int
    close_time: int


def parse_rest_tickers(rows: Any) -> list[Ticker24h]:
    """The tickers of the JSON body of ``GET /fapi/v1/ticker/24hr`` (every symbol: a list of objects).

    A row is ``{"symbol": "BTCUSDT", "lastPrice": "61800.10", "priceChangePercent":
    "-1.250", "volume": "181230.145", "quoteVolume": "11205874110.51", "count":
    3061345, "closeTime": 1700000000000, ...}`` (numbers as strings, as Binance
    sends them). The answer for one symbol, a single object, reads as a list of
    one. Raises ``MalformedFrame`` for anything else: a field missing or of the
    wrong type, a volume or price that is negative or not finite.
    """
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list):
        raise MalformedFrame(f"ticker/24hr answer is not a list: {str(rows)[:200]}")
    return [_ticker_from_row(row) for row in rows]


def _ticker_from_row(row: Any) -> Ticker24h:
    if not isinstance(row, dict):
        raise MalformedFrame(f"ticker/24hr row is not an object: {str(row)[:200]}")
    try:
        symbol = row["symbol"]
        if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
            raise ValueError(f"{symbol!r} is not a symbol")
        ticker = Ticker24h(
            symbol,
            _number(row["lastPrice"]),
            _number(row.get("priceChangePercent", "0")),
            _number(row["volume"]),
            _number(row["quoteVolume"]),
            _integer(row["count"]),
            _integer(row["closeTime"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedFrame(f"bad ticker/24hr row ({exc.__class__.__name__}: {exc})") from None
    # A symbol without trades in 24 h (or settled) shows 0; nothing is negative or endless.
    amounts = (ticker.last_price, ticker.volume, ticker.quote_volume)
    if not all(0.0 <= v < math.inf for v in amounts) or not math.isfinite(ticker.price_change_percent):
        raise MalformedFrame(f"impossible ticker/24hr price/volumes: {str(row)[:200]}")
    return ticker


#: The quote asset of the universe a screener ranks by default.
UNIVERSE_QUOTE = "USDT"
#: Contract types a universe is made of: the plain perpetuals (not the TradFi ones,
#: stocks and metals, nor the delivery contracts).
UNIVERSE_CONTRACT_TYPES = frozenset({"PERPETUAL"})


def universe_top(
    infos: Mapping[str, ListedSymbol], tickers: Iterable[Ticker24h], n: int, quote: str = UNIVERSE_QUOTE
) -> list[str]:
    """The ``n`` symbols with the largest 24 h quote volume among the perpetuals trading in ``quote``.

    A symbol is a candidate when ``infos`` (``parse_exchange_info``) lists it
    with status TRADING, contract type PERPETUAL and quote asset ``quote``, and
    ``tickers`` (``parse_rest_tickers``) gives it a volume (none in 24 hours:
    nothing to screen); ties go by name. Fewer than ``n`` when there are fewer
    candidates.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    candidates = [t for t in tickers if t.quote_volume > 0 and _universe_problem(t.symbol, infos, quote) is None]
    ranked = sorted({t.symbol: t for t in candidates}.values(), key=lambda t: (-t.quote_volume, t.symbol))
    return [t.symbol for t in ranked[:n]]


def universe_passed_over(
    infos: Mapping[str, ListedSymbol], tickers: Iterable[Ticker24h], chosen: list[str], quote: str = UNIVERSE_QUOTE
) -> dict[str, str]:
    """Why each symbol quoted in ``quote`` with a 24 h volume above the last of ``chosen``'s was left out.

    What a user would miss from a top N: a perpetual delisted (or paused) since
    the last look, one the exchange's list does not name. Symbols in other quote
    assets, or below the cut, are no news and are left out of the answer.
    """
    volumes = {t.symbol: t.quote_volume for t in tickers}
    cut = min((volumes.get(s, 0.0) for s in chosen), default=0.0)
    passed = {}
    for symbol, volume in sorted(volumes.items(), key=lambda item: (-item[1], item[0])):
        if volume < cut or symbol in chosen:
            continue
        entry = infos.get(symbol)
        if entry is not None and entry.quote_asset and entry.quote_asset != quote:
            continue
        if entry is None and not symbol.endswith(quote):
            continue
        problem = _universe_problem(symbol, infos, quote)
        if problem is not None:
            passed[symbol] = problem
    return passed


def universe_check(symbols: Iterable[str], infos: Mapping[str, ListedSymbol]) -> dict[str, str]:
    """Per symbol of ``symbols`` that cannot be in a universe, a message naming it (the others are left out).

    A symbol the exchange does not list (with the nearest names it does, when
    some are close: ``BTCUSD`` -> ``BTCUSDT``), one that is not trading (its
    status), one that is not a perpetual. Any quote asset is accepted: the
    symbols were chosen by name.
    """
    problems = {}
    for symbol in dict.fromkeys(symbols):
        entry = infos.get(symbol)
        if entry is None:
            close = difflib.get_close_matches(symbol, [s for s, e in infos.items() if e.tradable], n=3, cutoff=0.75)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems[symbol] = f"{symbol} is not a symbol of Binance USD-M futures{hint}"
        elif entry.status != TRADING:
            problems[symbol] = f"{symbol} is not trading on the exchange (status {entry.status or 'none'})"
        elif entry.contract_type not in PERPETUALS:
            problems[symbol] = f"{symbol} is not a perpetual (contract type {entry.contract_type or 'none'})"
    return problems


def _universe_problem(symbol: str, infos: Mapping[str, ListedSymbol], quote: str) -> str | None:
    """Why ``symbol`` is no candidate of a top-N universe in ``quote``, or None when it is."""
    entry = infos.get(symbol)
    if entry is None:
        return f"{symbol} has a 24 h ticker but is not in the exchange's symbol list"
    if entry.status != TRADING:
        return f"{symbol} is not trading on the exchange (status {entry.status or 'none'})"
    if entry.contract_type not in UNIVERSE_CONTRACT_TYPES:
        return f"{symbol} is not a plain perpetual (contract type {entry.contract_type or 'none'})"
    if entry.quote_asset != quote:
        return f"{symbol} is quoted in {entry.quote_asset or 'an unknown asset'}, not {quote}"
    return None


# -- funding rates ------------------------------------------------------------------


class FundingRate(NamedTuple):
    """One row of ``GET /fapi/v1/fundingRate``: the rate ``symbol`` paid at ``funding_time``.

    ``funding_time`` is ms since the epoch; ``rate`` is a fraction of the
    position's notional (0.0001: 0.01 %), paid by longs to shorts when positive;
    ``mark_price`` is the mark price the payment was computed on, None where the
    exchange gives none (it sends an empty string for its oldest records).
    """

    symbol: str
    funding_time: int
    rate: float
    mark_price: float | None


def parse_rest_funding_rates(rows: Any) -> list[FundingRate]:
    """Funding rates from the JSON body of ``GET /fapi/v1/fundingRate`` (a list of objects, oldest first).

    A row is ``{"symbol": "BTCUSDT", "fundingTime": 1570608000000, "fundingRate":
    "-0.03750000", "markPrice": "34287.54619963"}``. Raises ``MalformedFrame``
    for anything else: a field missing or of the wrong type, a rate that is not
    finite, a mark price that is not positive and finite.
    """
    if not isinstance(rows, list):
        raise MalformedFrame(f"fundingRate answer is not a list: {str(rows)[:200]}")
    return [_funding_rate_from_row(row) for row in rows]


def _funding_rate_from_row(row: Any) -> FundingRate:
    if not isinstance(row, dict):
        raise MalformedFrame(f"fundingRate row is not an object: {str(row)[:200]}")
    try:
        symbol = row["symbol"]
        if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
            raise ValueError(f"{symbol!r} is not a symbol")
        mark = row.get("markPrice")
        funding = FundingRate(
            symbol,
            _integer(row["fundingTime"]),
            _number(row["fundingRate"]),
            None if mark is None or mark == "" else _number(mark),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedFrame(f"bad fundingRate row ({exc.__class__.__name__}: {exc})") from None
    if not math.isfinite(funding.rate):
        raise MalformedFrame(f"impossible funding rate {row.get('fundingRate')!r}")
    if funding.mark_price is not None and not 0.0 < funding.mark_price < math.inf:
        raise MalformedFrame(f"impossible mark price {row.get('markPrice')!r}")
    return funding


def funding_rate_payload(funding: FundingRate) -> dict[str, Any]:
    """Serialise ``funding`` as Binance's fundingRate row (used by the simulator and the tests)."""
    mark = "" if funding.mark_price is None else f"{funding.mark_price:.8f}"
    return {
        "symbol": funding.symbol,
        "fundingTime": funding.funding_time,
        "fundingRate": f"{funding.rate:.8f}",
        "markPrice": mark,
    }
