"""The WebSocket side of the offline exchange: routes, subscribers and frames on the wire.

Routes are Binance's, with or without the ``/market`` (or ``/public``) prefix:
``/stream?streams=...`` (combined frames), ``/ws/<stream>`` (raw frames), and
bare ``/ws`` or ``/stream`` followed by ``SUBSCRIBE`` / ``UNSUBSCRIBE`` /
``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` / ``GET_PROPERTY`` messages. Unknown
stream names are accepted and get nothing, as on Binance.

Frames are serialised once for every subscriber and written straight to the
transport: going through ``send()`` costs a coroutine and a frame object per
message, which caps the fan-out far below 100k frames/s. Safe because the
server negotiates no extension and never fragments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import SplitResult, parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..binance import MarkPrice, Tick, agg_trade_frame, mark_price_frame
from .faults import malformed_frame
from .funding import FUNDING_INTERVAL_MS, FUNDING_RATE

logger = logging.getLogger(__package__)

# Route prefixes of Binance's split endpoints (fstream.binance.com/market/...).
ROUTE_PREFIXES = ("/market", "/public")

_MARK_PRICE_STREAMS = ("markPrice@1s", "markPrice")

# A paced subscriber whose unsent backlog exceeds this is cut off, as Binance
# does with clients that cannot keep up (no unbounded memory).
_SLOW_CONSUMER_BYTES = 64 * 2**20
# Blast mode waits for a socket whose unsent backlog exceeds this.
_DRAIN_BYTES = 2**20


def strip_prefix(path: str) -> str:
    """``path`` without its route prefix (``/market/stream`` -> ``/stream``)."""
    for prefix in ROUTE_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :] or "/"
    return path


def ws_route(parts: SplitResult) -> tuple[bool, list[str]] | None:
    """(combined, streams) of a WebSocket path, or None if it is not one."""
    path = strip_prefix(parts.path).rstrip("/") or "/"
    if path == "/ws":
        return False, []
    if path.startswith("/ws/"):
        return False, [s for s in path[4:].split("/") if s]
    if path == "/stream":
        streams = parse_qs(parts.query).get("streams", [""])[0]
        return True, [s for s in streams.split("/") if s]
    return None


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def stream_symbol(stream: str, kinds: tuple[str, ...] = ("aggTrade",)) -> str | None:
    """``btcusdt@aggTrade`` -> ``BTCUSDT``; None for a stream not of ``kinds``."""
    name, sep, kind = stream.partition("@")
    if sep and kind in kinds and name:
        return name.upper()
    return None


class Subscriber:
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
        self.symbols = frozenset(s for s in map(stream_symbol, self.streams) if s)
        self.marks = frozenset(s for s in (stream_symbol(x, _MARK_PRICE_STREAMS) for x in self.streams) if s)
        self.key = (self.combined, self.symbols)

    @property
    def open(self) -> bool:
        return self.conn.protocol.state is State.OPEN and not self.conn.transport.is_closing()

    def write(self, data: bytes) -> None:
        """Write pre-built frames straight to the transport (see the module docstring)."""
        if self.open:
            self.conn.transport.write(data)


class Subscribers:
    """Every open connection, and what goes to all of them: trades, mark prices, faults."""

    def __init__(self) -> None:
        self._by_conn: dict[ServerConnection, Subscriber] = {}

    def add(self, conn: ServerConnection, combined: bool, streams: Iterable[str]) -> Subscriber:
        sub = self._by_conn[conn] = Subscriber(conn, combined, streams)
        return sub

    def remove(self, conn: ServerConnection) -> None:
        self._by_conn.pop(conn, None)

    def listened(self) -> set[str]:
        """The symbols some connection follows the trades of."""
        return set().union(*(s.symbols for s in self._by_conn.values()))

    def fan_out(self, ticks: list[Tick], event_time: int, *, cut_slow: bool) -> int:
        """Send ``ticks`` to whoever follows their symbols; return the frames sent.

        With ``cut_slow`` a subscriber that cannot keep up is dropped.
        """
        subs = [s for s in self._by_conn.values() if s.symbols and s.open]
        if not subs:
            return 0
        # Serialise each trade once per format, whatever the number of subscribers.
        frames: dict[bool, list[bytes]] = {}
        for combined in {s.combined for s in subs}:
            frames[combined] = [
                ws_text_frame(agg_trade_frame(t, event_time=event_time, combined=combined)) for t in ticks
            ]
        present = {t.symbol for t in ticks}
        # Subscribers to the same streams in the same format share one buffer.
        joined: dict[tuple[bool, frozenset[str]], tuple[bytes, int]] = {}
        sent = 0
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
                sent += n
            if cut_slow and sub.conn.transport.get_write_buffer_size() > _SLOW_CONSUMER_BYTES:
                logger.warning("dropping a subscriber that cannot keep up")
                sub.conn.transport.abort()
        return sent

    def send_marks(
        self,
        event_time: int,
        traded: Iterable[str],
        last_price: Callable[[str], float | None],
        funding_rate: Callable[[str, int], float] | None = None,
    ) -> int:
        """Send each mark-price subscriber its ``traded`` symbols' mark price; return the frames sent.

        The rate announced is ``funding_rate(symbol, next_funding_time)`` (the one
        REST reports once charged), or a flat ``FUNDING_RATE``.
        """
        traded = set(traded)
        next_funding = (event_time // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        frames: dict[tuple[str, bool], bytes] = {}
        sent = 0
        for sub in [s for s in self._by_conn.values() if s.marks and s.open]:
            for symbol in sorted(sub.marks & traded):
                key = (symbol, sub.combined)
                if key not in frames:
                    price = last_price(symbol)
                    if price is None:
                        continue
                    rate = FUNDING_RATE if funding_rate is None else funding_rate(symbol, next_funding)
                    mark = MarkPrice(event_time, symbol, price, rate, next_funding)
                    frames[key] = ws_text_frame(mark_price_frame(mark, combined=sub.combined))
                sub.write(frames[key])
                sent += 1
        return sent

    def has_mark_listeners(self) -> bool:
        return any(s.marks and s.open for s in self._by_conn.values())

    async def drain(self) -> None:
        """Wait until every subscriber's socket has room again (blast mode)."""
        for sub in list(self._by_conn.values()):
            if sub.open and sub.conn.transport.get_write_buffer_size() > _DRAIN_BYTES:
                # Frames bypass the library, but a ping goes through its send
                # path, whose flow control waits until the transport drains.
                try:
                    await sub.conn.ping()
                except ConnectionClosed:
                    pass

    def abort_all(self) -> int:
        """Abort every connection's TCP stream (no close frame); return how many were open."""
        dropped = 0
        for sub in list(self._by_conn.values()):
            if not sub.conn.transport.is_closing():
                sub.conn.transport.abort()
                dropped += 1
        return dropped

    def send_malformed(self) -> int:
        """Send every open connection one truncated, invalid JSON frame; return how many got it."""
        sent = 0
        for sub in list(self._by_conn.values()):
            symbol = min(sub.symbols) if sub.symbols else "BTCUSDT"
            if sub.open:
                sub.write(ws_text_frame(malformed_frame(symbol, sub.combined)))
                sent += 1
        return sent


def control_reply(sub: Subscriber, request: dict[str, Any]) -> dict[str, Any]:
    """Binance's answer to one client request (an object with ``method``, ``params``, ``id``)."""
    req_id = request.get("id")
    method = request.get("method")
    params = request.get("params", [])
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return {"error": {"code": 2, "msg": "Invalid request: params must be a list of streams"}, "id": req_id}
        if method == "SUBSCRIBE":
            sub.subscribe(params)
        else:
            sub.unsubscribe(params)
        return {"result": None, "id": req_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(sub.streams), "id": req_id}
    if method in ("SET_PROPERTY", "GET_PROPERTY"):
        return _property_reply(sub, method, params, req_id)
    return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": req_id}


def _property_reply(sub: Subscriber, method: str, params: Any, req_id: Any) -> dict[str, Any]:
    """``SET_PROPERTY ["combined", bool]`` and ``GET_PROPERTY ["combined"]``, the one property there is."""
    if method == "SET_PROPERTY":
        if isinstance(params, list) and len(params) == 2 and params[0] == "combined" and isinstance(params[1], bool):
            sub.set_combined(params[1])
            return {"result": None, "id": req_id}
    elif params == ["combined"]:
        return {"result": sub.combined, "id": req_id}
    return {"error": {"code": 2, "msg": "Invalid request: unknown property"}, "id": req_id}
