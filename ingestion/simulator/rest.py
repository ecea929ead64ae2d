"""The REST side of the offline exchange: Binance's market-data endpoints and error shape.

``/fapi/v1/aggTrades``, ``/fapi/v1/klines``, ``/fapi/v1/fundingRate``,
``/fapi/v1/exchangeInfo``, ``/fapi/v1/ticker/24hr``, ``/fapi/v1/time`` and ``/fapi/v1/ping``, answered
from the ``Exchange`` with Binance's parameter rules and ``{"code", "msg"}``
errors, each with its request weight (``request_weight``), which the server
counts per minute into ``X-MBX-USED-WEIGHT-1M`` as Binance does. Every answer
is a complete JSON response on a connection that then closes (the server
shares its port with the WebSocket routes).
"""

from __future__ import annotations

import email.utils
import http
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

from ..binance import (
    AGG_TRADES_LIMIT,
    EXCHANGE_INFO_WEIGHT,
    FUNDING_RATE_LIMIT,
    KLINES_LIMIT,
    TICKER_24HR_WEIGHT_ALL,
    TICKER_24HR_WEIGHT_ONE,
    agg_trade_payload,
    klines_weight,
)
from .exchange import ApiError, Exchange
from .faults import FAULT_PARAMS

#: Longest span between ``startTime`` and ``endTime`` of an aggTrades request (ms).
_AGG_TRADES_SPAN_MS = 3_600_000


def json_response(status: int, body: Any, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    """``body`` as a JSON answer with ``status``."""
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


def error_response(exc: ApiError, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    return json_response(exc.status, {"code": exc.code, "msg": exc.msg}, extra_headers)


# -- market data --------------------------------------------------------------------


def rest_agg_trades(exchange: Exchange, params: dict[str, str]) -> list[dict[str, Any]]:
    symbol = _symbol_param(params)
    if symbol in exchange.listed:
        return []  # listed, never traded
    limit = _limit_param(params, AGG_TRADES_LIMIT)
    from_id = _int_param(params, "fromId")
    start = _int_param(params, "startTime")
    end = _int_param(params, "endTime")
    if start is not None and end is not None:
        if end < start:
            raise ApiError(-1128, "startTime should be less than endTime.")
        if end - start > _AGG_TRADES_SPAN_MS:
            raise ApiError(-1127, "More than 1 hours between startTime and endTime.")
    ticks = exchange.agg_trades(symbol, from_id=from_id, start_time=start, end_time=end, limit=limit)
    return [agg_trade_payload(t) for t in ticks]


def rest_klines(exchange: Exchange, params: dict[str, str]) -> list[list[Any]]:
    symbol = _symbol_param(params)
    if symbol in exchange.listed:
        return []  # listed, never traded
    interval = params.get("interval")
    if not interval:
        raise ApiError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
    limit = _limit_param(params, KLINES_LIMIT)
    start = _int_param(params, "startTime")
    end = _int_param(params, "endTime")
    return exchange.klines(symbol, interval, start_time=start, end_time=end, limit=limit)


def rest_funding_rate(exchange: Exchange, params: dict[str, str]) -> list[dict[str, Any]]:
    """``GET /fapi/v1/fundingRate``: ``symbol`` (required here), ``startTime``, ``endTime``, ``limit``.

    ``limit`` is 100 when absent, at most 1000.
    """
    symbol = _symbol_param(params)
    if symbol in exchange.listed:
        return []  # listed, never traded
    limit = _limit_param(params, FUNDING_RATE_LIMIT, default=100)
    start = _int_param(params, "startTime")
    end = _int_param(params, "endTime")
    if start is not None and end is not None and end < start:
        raise ApiError(-1128, "startTime should be less than endTime.")
    return exchange.funding_rates(symbol, start_time=start, end_time=end, limit=limit)


def rest_exchange_info(exchange: Exchange, params: dict[str, str]) -> dict[str, Any]:
    return exchange.exchange_info()


def rest_ticker_24hr(exchange: Exchange, params: dict[str, str]) -> list[dict[str, Any]] | dict[str, Any]:
    """``GET /fapi/v1/ticker/24hr``: every symbol's row as a list, or with ``symbol`` its row alone."""
    if params.get("symbol"):
        (row,) = exchange.tickers_24hr(_symbol_param(params))
        return row
    return exchange.tickers_24hr()


def rest_time(exchange: Exchange, params: dict[str, str]) -> dict[str, Any]:
    return {"serverTime": int(time.time() * 1000)}


def rest_ping(exchange: Exchange, params: dict[str, str]) -> dict[str, Any]:
    return {}


#: Path -> ``handler(exchange, query)``, whose result is the JSON body.
REST_ROUTES: dict[str, Callable[[Exchange, dict[str, str]], Any]] = {
    "/fapi/v1/aggTrades": rest_agg_trades,
    "/fapi/v1/klines": rest_klines,
    "/fapi/v1/fundingRate": rest_funding_rate,
    "/fapi/v1/exchangeInfo": rest_exchange_info,
    "/fapi/v1/ticker/24hr": rest_ticker_24hr,
    "/fapi/v1/time": rest_time,
    "/fapi/v1/ping": rest_ping,
}


#: Binance's request weight of each endpoint (klines: by ``limit``, the 24 h ticker: by
#: ``symbol``; see ``request_weight``).
_WEIGHTS = {
    "/fapi/v1/aggTrades": 20,
    "/fapi/v1/fundingRate": 1,
    "/fapi/v1/exchangeInfo": EXCHANGE_INFO_WEIGHT,
    "/fapi/v1/time": 1,
    "/fapi/v1/ping": 1,
}


def request_weight(path: str, params: dict[str, str]) -> int:
    """The weight Binance counts for a request to ``path``.

    Klines by their ``limit`` (500 when absent or bad), the 24 h ticker 1 for
    one symbol and 40 for all.
    """
    if path == "/fapi/v1/klines":
        limit = params.get("limit", "")
        return klines_weight(int(limit) if limit.isascii() and limit.isdigit() and len(limit) < 10 else 500)
    if path == "/fapi/v1/ticker/24hr":
        return TICKER_24HR_WEIGHT_ONE if params.get("symbol") else TICKER_24HR_WEIGHT_ALL
    return _WEIGHTS.get(path, 1)


class UsedWeight:
    """The request weight used in the current minute (of the wall clock), as ``X-MBX-USED-WEIGHT-1M`` reports it."""

    def __init__(self) -> None:
        self.minute = 0
        self.used = 0

    def add(self, weight: int, now: float | None = None) -> int:
        """Count a request of ``weight``; return the weight used this minute, it included."""
        minute = int((time.time() if now is None else now) // 60)
        if minute != self.minute:
            self.minute, self.used = minute, 0
        self.used += weight
        return self.used


def fault_params(params: dict[str, str]) -> dict[str, float]:
    """The numbers of a ``/sim/fault`` request (``seconds``, ``count``, ...), checked."""
    return {name: _number_param(params, name) for name in FAULT_PARAMS if name in params}


# -- parameters, by Binance's rules ----------------------------------------------------


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


def _limit_param(params: dict[str, str], maximum: int, default: int = 500) -> int:
    """``limit``: ``default`` when absent, else 1..``maximum`` (Binance's rule for its paged endpoints)."""
    limit = _int_param(params, "limit")
    limit = default if limit is None else limit
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
