"""Bounded rolling buffers of the latest ticks per symbol (pure).

The live paths (dashboard prices, feed health) read these instead of the
database. Each symbol keeps at most ``maxlen`` ticks, so memory stays flat
however long the process runs.
"""

from __future__ import annotations

from collections import deque

from .binance import Tick


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
        last = self._last.get(tick.symbol)
        # Backfilled ticks are older than the live ones: the last price is the
        # newest trade, not the newest arrival.
        if last is None or (tick.timestamp, tick.trade_id) >= (last.timestamp, last.trade_id):
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
