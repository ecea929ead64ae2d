"""Which aggregate trade ids have been seen, and which are missing (pure).

Binance numbers aggregate trades contiguously per symbol, so a jump in ids is a
gap and an id at or below the highest one seen is a duplicate unless it fills a
known gap. Live frames and REST backfill both pass through ``observe``, which
makes the two sources interchangeable and the order they arrive in irrelevant.
"""

from __future__ import annotations

from bisect import bisect_right


class GapTracker:
    """Per-symbol high-water mark plus a sorted list of missing id ranges."""

    def __init__(self, high: dict[str, int] | None = None) -> None:
        self._high: dict[str, int] = dict(high or {})
        self._missing: dict[str, list[list[int]]] = {}

    def high(self, symbol: str) -> int | None:
        return self._high.get(symbol)

    def observe(self, symbol: str, trade_id: int) -> tuple[bool, tuple[int, int] | None]:
        """Record ``trade_id``; return (is new, newly opened gap or None)."""
        high = self._high.get(symbol)
        if high is None or trade_id == high + 1:
            self._high[symbol] = trade_id
            return True, None
        if trade_id > high:
            gap = (high + 1, trade_id - 1)
            self._missing.setdefault(symbol, []).append([gap[0], gap[1]])
            self._high[symbol] = trade_id
            return True, gap
        ranges = self._missing.get(symbol)
        if not ranges:
            return False, None
        return self._take(ranges, trade_id), None

    @staticmethod
    def _take(ranges: list[list[int]], trade_id: int) -> bool:
        i = bisect_right(ranges, [trade_id, float("inf")]) - 1
        if i < 0:
            return False
        lo, hi = ranges[i]
        if trade_id > hi:
            return False
        if lo == hi:
            del ranges[i]
        elif trade_id == lo:
            ranges[i][0] = lo + 1
        elif trade_id == hi:
            ranges[i][1] = hi - 1
        else:
            ranges[i][1] = trade_id - 1
            ranges.insert(i + 1, [trade_id + 1, hi])
        return True

    def first_missing(self, symbol: str, lo: int, hi: int) -> int | None:
        """Lowest missing id in [lo, hi], or None when that range is complete."""
        for a, b in self._missing.get(symbol, ()):
            if b >= lo and a <= hi:
                return max(a, lo)
        return None

    def give_up(self, symbol: str, lo: int, hi: int) -> int:
        """Forget missing ids in [lo, hi] (they cannot be had); return how many."""
        ranges = self._missing.get(symbol)
        if not ranges or hi < lo:
            return 0
        lost = 0
        kept: list[list[int]] = []
        for a, b in ranges:
            if b < lo or a > hi:
                kept.append([a, b])
                continue
            lost += min(b, hi) - max(a, lo) + 1
            if a < lo:
                kept.append([a, lo - 1])
            if b > hi:
                kept.append([hi + 1, b])
        self._missing[symbol] = kept
        return lost

    def restore(self, symbol: str, ranges: list[tuple[int, int]]) -> None:
        """Mark the id ranges ``[lo, hi]`` of ``symbol`` missing again (gaps left open by an earlier run)."""
        merged = sorted([list(r) for r in self._missing.get(symbol, [])] + [[lo, hi] for lo, hi in ranges if lo <= hi])
        self._missing[symbol] = merged

    def has_missing(self, symbol: str) -> bool:
        return bool(self._missing.get(symbol))

    def missing_count(self, symbol: str | None = None) -> int:
        symbols = [symbol] if symbol else list(self._missing)
        return sum(b - a + 1 for s in symbols for a, b in self._missing.get(s, ()))
