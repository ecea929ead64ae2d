"""Bounded rolling buffers of the latest ticks per symbol.

The live paths (dashboard prices, feed health) read these instead of the
database. Each symbol keeps at most ``maxlen`` ticks, so memory stays flat
however long the process runs.

``RollingBuffers`` lives in one process (embedded mode). ``RedisBuffers`` keeps
the same local buffers and mirrors them to Redis a few times a second, so other
processes - a second ingestion process holding the other leg of a pair, the
web server, a worker on another host - read the same latest ticks. No Django
here: the Redis client is handed in.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from weakref import WeakKeyDictionary

import orjson

from .binance import Tick

logger = logging.getLogger(__name__)


class RollingBuffers:
    def __init__(self, maxlen: int = 5000) -> None:
        self.maxlen = maxlen
        self._ticks: dict[str, deque[Tick]] = {}
        self._last: dict[str, Tick] = {}

    def append(self, tick: Tick) -> None:
        buf = self._ticks.get(tick.symbol)
        if buf is None:
            buf = self._ticks[tick.symbol] = deque(maxlen=self.maxlen)
        buf.append(tick)
        if _newer(tick, self._last.get(tick.symbol)):
            self._last[tick.symbol] = tick

    def last(self, symbol: str) -> Tick | None:
        return self._last.get(symbol)

    def last_price(self, symbol: str) -> float | None:
        tick = self._last.get(symbol)
        return tick.price if tick else None

    def recent(self, symbol: str, n: int | None = None) -> list[Tick]:
        buf = self._ticks.get(symbol, ())
        items = list(buf)
        return items if n is None else items[-n:]

    def symbols(self) -> list[str]:
        return sorted(self._ticks)

    def clear(self) -> None:
        self._ticks.clear()
        self._last.clear()

    # The shared view. In one process it is the local one; ``RedisBuffers``
    # answers with what every ingestion process has published.

    async def publish(self) -> None:
        """Make the ticks appended since the last call visible to other processes."""

    async def alast_many(self, symbols: Iterable[str]) -> dict[str, Tick]:
        """The newest tick of each of ``symbols`` that has one."""
        return {s: tick for s in symbols if (tick := self._last.get(s)) is not None}

    async def arecent(self, symbol: str, n: int) -> list[Tick]:
        """Up to ``n`` newest ticks of ``symbol``, oldest first."""
        return self.recent(symbol, n)


def _newer(tick: Tick, than: Tick | None) -> bool:
    # Backfilled ticks are older than the live ones: the last price is the
    # newest trade, not the newest arrival.
    if than is None or tick.timestamp > than.timestamp:
        return True
    return tick.timestamp == than.timestamp and tick.trade_id >= than.trade_id


def _pack(tick: Tick) -> bytes:
    return orjson.dumps(tuple(tick))


def _unpack(raw: bytes) -> Tick:
    return Tick(*orjson.loads(raw))


class RedisBuffers(RollingBuffers):
    """Rolling buffers shared through Redis.

    Layout: ``<prefix>:ticks:<SYMBOL>`` is a list of the newest ``maxlen`` ticks
    (oldest first) and ``<prefix>:last`` a hash of each symbol's newest tick, as
    JSON arrays in ``Tick`` field order. One symbol has one writer (the
    ingestion process subscribed to it), so the newest tick is decided locally.

    ``client_factory`` returns a ``redis.asyncio.Redis``; it is called once per
    event loop, since an asyncio connection belongs to the loop that opened it.
    If Redis is unreachable, reads fall back to the local ticks and publishing
    keeps at most ``maxlen`` unpublished ticks per symbol: ingestion never waits
    for Redis and never grows without bound.
    """

    def __init__(self, client_factory: Callable[[], object], maxlen: int = 5000, prefix: str = "pairs:buffers") -> None:
        super().__init__(maxlen)
        self._client_factory = client_factory
        self._clients: WeakKeyDictionary[asyncio.AbstractEventLoop, object] = WeakKeyDictionary()
        self.prefix = prefix
        self._pending: dict[str, deque[Tick]] = {}
        self._failing = False

    def _client(self):
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._client_factory()
        return client

    def _ticks_key(self, symbol: str) -> str:
        return f"{self.prefix}:ticks:{symbol}"

    @property
    def _last_key(self) -> str:
        return f"{self.prefix}:last"

    def clear(self) -> None:
        super().clear()
        self._pending.clear()

    def append(self, tick: Tick) -> None:
        super().append(tick)
        pending = self._pending.get(tick.symbol)
        if pending is None:
            pending = self._pending[tick.symbol] = deque(maxlen=self.maxlen)
        pending.append(tick)

    async def publish(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        pipe = self._client().pipeline(transaction=False)
        for symbol, ticks in batch.items():
            key = self._ticks_key(symbol)
            pipe.rpush(key, *map(_pack, ticks))
            pipe.ltrim(key, -self.maxlen, -1)
            pipe.hset(self._last_key, symbol, _pack(self._last[symbol]))
        try:
            await pipe.execute()
        except Exception as exc:  # Redis down or restarting: keep the newest, try again next time
            for symbol, ticks in batch.items():
                newer = self._pending.get(symbol, ())
                self._pending[symbol] = deque([*ticks, *newer], maxlen=self.maxlen)
            if not self._failing:
                logger.warning("live buffers not shared: Redis did not answer (%s); retrying", exc)
            self._failing = True
            return
        if self._failing:
            logger.info("live buffers shared through Redis again")
        self._failing = False

    async def alast_many(self, symbols: Iterable[str]) -> dict[str, Tick]:
        symbols = list(symbols)
        local = await super().alast_many(symbols)
        try:
            raw = await self._client().hmget(self._last_key, symbols) if symbols else []
        except Exception as exc:
            logger.debug("shared last ticks unavailable (%s); using this process's", exc)
            return local
        shared = {s: _unpack(r) for s, r in zip(symbols, raw, strict=True) if r is not None}
        for symbol, tick in local.items():
            if _newer(tick, shared.get(symbol)):
                shared[symbol] = tick
        return shared

    async def arecent(self, symbol: str, n: int) -> list[Tick]:
        if n <= 0:
            return []
        try:
            raw = await self._client().lrange(self._ticks_key(symbol), -n, -1)
        except Exception as exc:
            logger.debug("shared ticks unavailable (%s); using this process's", exc)
            return self.recent(symbol, n)
        return [_unpack(r) for r in raw]
