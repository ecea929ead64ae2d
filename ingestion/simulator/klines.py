"""Candles of the offline exchange: intervals, which candles a request covers, OHLCV from trades.

Pure (numpy, no I/O, no clock). The exchange (``exchange.py``) offers a
symbol's candles at an interval as runs of consecutive open times (the
synthetic pre-history, then the candles built from its trades); ``clip_runs``
and ``choose_runs`` apply a request's ``startTime``, ``endTime`` and ``limit``
the way Binance does, ``trade_candles`` computes candles from trades, and
``binance.kline_row`` turns each into the row REST sends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..binance import Kline, kline_row
from .symbols import SymbolSpec

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


class Prehistory(Protocol):
    """Synthetic candles before an exchange's start, counted back from it.

    A candle's age is how many candles before the start it opens: age 1 closes
    where the start's candle opens. ``depth`` is how many there are (None: as
    many as asked for; the exchange's listing date then bounds them).
    """

    @property
    def depth(self) -> int | None: ...

    def candles(self, oldest: int, newest: int) -> Candles:
        """The candles of ages ``oldest`` down to ``newest`` (``oldest >= newest >= 1``), oldest first."""
        ...


class FixedPrehistory:
    """A ``Prehistory`` of the given ``Candles`` (the last one of age 1), and no more."""

    def __init__(self, candles: Candles) -> None:
        self._candles = candles

    @property
    def depth(self) -> int:
        return len(self._candles.closes)

    def candles(self, oldest: int, newest: int) -> Candles:
        n = self.depth
        return candles_slice(self._candles, n - oldest, n - newest + 1)


#: ``source(symbol, interval_ms)``: the pre-history of ``symbol`` at that
#: interval, or None when there is none (a plain ``Candles`` reads as a ``FixedPrehistory``).
PrehistorySource = Callable[[str, int], "Prehistory | Candles | None"]


class Run(NamedTuple):
    """Candles on offer with consecutive open times ``first``..``last`` (ms), from the pre-history or not."""

    first: int
    last: int
    pre: bool


def clip_runs(runs: Sequence[Run], width: int, start_time: int | None, end_time: int | None) -> list[Run]:
    """``runs`` cut to the candles opening at or after ``start_time`` and at or before ``end_time``."""
    lo_bound = -(-start_time // width) * width if start_time is not None else -math.inf
    hi_bound = end_time // width * width if end_time is not None else math.inf
    clipped = [(max(run.first, lo_bound), min(run.last, hi_bound), run.pre) for run in runs]
    return [Run(int(lo), int(hi), pre) for lo, hi, pre in clipped if lo <= hi]


def choose_runs(runs: Sequence[Run], width: int, limit: int, *, from_start: bool) -> list[Run]:
    """The first ``limit`` candles of ``runs`` (a request with ``startTime``), else the last ``limit``."""
    chosen: list[Run] = []
    left = limit
    for run in runs if from_start else reversed(runs):
        if left <= 0:
            break
        take = min(left, (run.last - run.first) // width + 1)
        left -= take
        if from_start:
            chosen.append(Run(run.first, run.first + (take - 1) * width, run.pre))
        else:
            chosen.insert(0, Run(run.last - (take - 1) * width, run.last, run.pre))
    return chosen


def trade_candles(
    times: np.ndarray, prices: np.ndarray, qtys: np.ndarray, lo_open: int, count: int, width: int, prev_close: float
) -> Candles:
    """OHLCV of the trades (ascending times) in the ``count`` candles opening from ``lo_open``.

    A candle without trades repeats the previous close: before the first
    trade, ``prev_close`` (the close before the window, or NaN).
    """
    candles = Candles(
        np.full(count, np.nan),
        np.full(count, np.nan),
        np.full(count, np.nan),
        np.full(count, np.nan),
        np.zeros(count),
        np.zeros(count),
        np.zeros(count, dtype=np.int64),
    )
    if len(times):
        _fill_traded(candles, (times - lo_open) // width, prices, qtys)
    return _carry_empty(candles, prev_close)


def _fill_traded(candles: Candles, bucket: np.ndarray, prices: np.ndarray, qtys: np.ndarray) -> None:
    """Write the OHLCV of each candle that has trades (``bucket``: each trade's candle index)."""
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]
    slots = bucket[starts]
    candles.opens[slots] = prices[starts]
    candles.closes[slots] = prices[ends - 1]
    candles.highs[slots] = np.maximum.reduceat(prices, starts)
    candles.lows[slots] = np.minimum.reduceat(prices, starts)
    candles.volume[slots] = np.add.reduceat(qtys, starts)
    candles.quote[slots] = np.add.reduceat(prices * qtys, starts)
    candles.trades[slots] = ends - starts


def _carry_empty(candles: Candles, prev_close: float) -> Candles:
    """Empty candles (no open) repeat the last close before them."""
    opens, highs, lows, closes = candles.opens, candles.highs, candles.lows, candles.closes
    count = len(closes)
    last_idx = np.maximum.accumulate(np.where(np.isnan(closes), -1, np.arange(count)))
    carried = np.where(last_idx >= 0, closes[np.maximum(last_idx, 0)], prev_close)
    empty = np.isnan(opens)
    return candles._replace(
        opens=np.where(empty, carried, opens),
        highs=np.where(empty, carried, highs),
        lows=np.where(empty, carried, lows),
        closes=np.where(empty, carried, closes),
    )


def candles_slice(candles: Candles, k0: int, k1: int) -> Candles:
    """Candles ``k0``..``k1 - 1`` of ``candles``."""
    return Candles(*(column[k0:k1] for column in candles))


def candles_joined(parts: Sequence[Candles]) -> Candles:
    """``parts`` one after the other."""
    return Candles(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def kline_rows(spec: SymbolSpec, open_times: Sequence[int], candles: Candles, width: int) -> list[list[Any]]:
    """The klines REST rows of ``candles`` opening at ``open_times``, on ``spec``'s grid.

    Every simulated trade is a taker buy (``m`` is false), so the taker-buy
    volumes are the volumes.
    """
    rows = []
    for k, open_time in enumerate(open_times):
        volume, quote = float(candles.volume[k]), float(candles.quote[k])
        kline = Kline(
            open_time,
            float(candles.opens[k]),
            float(candles.highs[k]),
            float(candles.lows[k]),
            float(candles.closes[k]),
            volume,
            open_time + width - 1,
            quote,
            int(candles.trades[k]),
            volume,
            quote,
        )
        rows.append(kline_row(kline, price_precision=spec.price_precision, quantity_precision=spec.quantity_precision))
    return rows
