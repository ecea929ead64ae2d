"""The Binance USD-M futures market-data protocol, pure (no Django, no I/O).

Everything here is a function of its arguments: URLs, frame parsing, REST rows.
The async client (``ingestion.client``) and the offline exchange
(``ingestion.simulator``) both build on it.

References:
- aggTrade stream: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Aggregate-Trade-Streams
- aggTrades REST: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Compressed-Aggregate-Trades-List
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import urlencode

import orjson

#: Largest page the aggTrades REST endpoint serves.
AGG_TRADES_LIMIT = 1000

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")


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


class MalformedFrame(ValueError):
    """A frame that is not valid JSON or lacks a field a known event needs."""


def normalize_symbol(symbol: str) -> str:
    """Upper-case ``symbol`` and check it looks like a Binance symbol.

    Raises ``ValueError`` with a readable message otherwise.
    """
    value = symbol.strip().upper()
    if not _SYMBOL_RE.match(value):
        raise ValueError(f"{symbol!r} is not a symbol (expected letters and digits, e.g. BTCUSDT)")
    return value


def stream_url(base: str, symbols: list[str] | tuple[str, ...]) -> str:
    """Combined-stream URL for the aggTrade streams of ``symbols``.

    ``base`` is the route, e.g. ``wss://fstream.binance.com/market``; the result
    is ``<base>/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade``.
    """
    if not symbols:
        raise ValueError("at least one symbol is needed")
    streams = "/".join(f"{s.lower()}@aggTrade" for s in symbols)
    return f"{base.rstrip('/')}/stream?streams={streams}"


def agg_trades_url(base: str, symbol: str, from_id: int, limit: int = AGG_TRADES_LIMIT) -> str:
    """REST URL of up to ``limit`` aggregate trades of ``symbol`` from id ``from_id``."""
    query = urlencode({"symbol": symbol, "fromId": from_id, "limit": limit})
    return f"{base.rstrip('/')}/fapi/v1/aggTrades?{query}"


# Event type -> key of its id. The live client subscribes to aggTrade only; the
# plain "trade" event (same shape, id in "t") is accepted so recordings of the
# trade stream replay through the same code.
_ID_KEY = {"aggTrade": "a", "trade": "t"}


def _tick_from_payload(data: dict[str, Any], id_key: str, symbol: str | None = None) -> Tick:
    try:
        tick = Tick(
            int(data["T"]),
            symbol or data["s"],
            float(data["p"]),
            float(data["q"]),
            int(data[id_key]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedFrame(f"bad trade payload ({exc.__class__.__name__}: {exc})") from None
    # "nan"/"inf" parse as floats; a trade has a positive finite price.
    if not (0.0 < tick.price < float("inf")) or not (0.0 <= tick.quantity < float("inf")):
        raise MalformedFrame(f"impossible price/quantity {data.get('p')!r}/{data.get('q')!r}")
    return tick


def parse_frame(frame: str | bytes) -> Tick | None:
    """Parse one WebSocket frame of a raw or combined stream.

    Parameters
    ----------
    frame : str or bytes
        The text of one frame: either a raw event ``{"e": "aggTrade", ...}`` or a
        combined-stream envelope ``{"stream": "...", "data": {...}}``.

    Returns
    -------
    Tick or None
        The trade, or None for anything that is not a trade (subscription acks,
        other events). Unknown keys are ignored.

    Raises
    ------
    MalformedFrame
        The frame is not JSON, not an object, or a trade event lacks a field.
    """
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise MalformedFrame(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedFrame(f"expected a JSON object, got {type(message).__name__}")
    data = message.get("data", message)
    if not isinstance(data, dict):
        raise MalformedFrame("'data' is not an object")
    id_key = _ID_KEY.get(data.get("e"))  # type: ignore[arg-type]
    if id_key is None:
        return None
    return _tick_from_payload(data, id_key)


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
    """Shortest decimal string of ``value`` without exponent (``61800.3`` -> ``"61800.3"``)."""
    text = repr(value)
    if "e" in text or "E" in text:
        text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text
