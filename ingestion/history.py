"""History fetched from the exchange (klines, funding rates): its limits and its arithmetic, pure.

What a backtest asks for is a range ``[start, end)`` of ms since the epoch. The
rules on it are written once here: how long a range may be, which bar open
times and funding times it holds, which of them are not stored yet. The
fetching itself is ``ingestion.client`` (``klines_pages``,
``funding_rate_pages``); storing is the services'.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np

#: The longest range fetched at once, in days: a year (a leap one included). A
#: year of 1m klines of two symbols is about 1,050 requests, a few minutes at
#: Binance's weight limit; ten years would be a morning of it and a gigabyte of bars.
HISTORY_MAX_DAYS = 366
DAY_MS = 86_400_000
#: Binance charges funding every 8 hours (00:00, 08:00 and 16:00 UTC) on most
#: perpetuals; some pay every 4 or every hour, which only adds rows.
FUNDING_INTERVAL_MS = 8 * 3_600_000


class HistoryError(ValueError):
    """History that cannot be had as asked; the message says why in words a user can act on."""


class HistoryBeforeListing(HistoryError):
    """A range that starts before the exchange's first kline of the symbol.

    ``begins`` is the open time (ms) of that first kline, or None when the
    exchange serves none at all from the range's start on.
    """

    def __init__(self, message: str, begins: int | None) -> None:
        super().__init__(message)
        self.begins = begins


def utc_text(ms: int) -> str:
    """``ms`` since the epoch as ``2024-03-01 08:00 UTC`` (seconds shown when not zero)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M UTC")


def history_range_check(start: int, end: int, *, max_days: int = HISTORY_MAX_DAYS) -> None:
    """Raise ``HistoryError`` unless ``[start, end)`` is a non-empty range of at most ``max_days`` days."""
    if start < 0 or end < 0:
        raise HistoryError(f"a range is in ms since 1970 (got {start} .. {end})")
    if start >= end:
        raise HistoryError(f"the range is empty: it starts {utc_text(start)} and ends {utc_text(end)}")
    if end - start > max_days * DAY_MS:
        days = (end - start) / DAY_MS
        raise HistoryError(f"the range spans {days:,.0f} days; at most {max_days} days are fetched at once")


def open_times_range(start: int, end: int, width: int, now: int) -> tuple[int, int]:
    """``[first, stop)``: open times of the bars that open in ``[start, end)`` and have closed at ``now``.

    Open times are multiples of ``width``; a bar opening at ``t`` is closed once
    ``t + width <= now``. ``first >= stop`` when there is none.
    """
    first = -(-start // width) * width
    stop = min(-(-end // width) * width, now // width * width)
    return first, stop


def missing_spans(stored: Iterable[int], first: int, stop: int, width: int) -> list[tuple[int, int]]:
    """The open times ``first, first + width, ... < stop`` not in ``stored``, as ``[start, end)`` spans.

    Adjacent missing bars make one span; each span ends where its last missing
    bar closes.
    """
    if first >= stop:
        return []
    expected = np.arange(first, stop, width, dtype=np.int64)
    have = np.fromiter(stored, dtype=np.int64)
    missing = expected[~np.isin(expected, have)] if len(have) else expected
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) != width) + 1
    starts = np.r_[missing[0], missing[breaks]]
    ends = np.r_[missing[breaks - 1], missing[-1]] + width
    return [(int(a), int(b)) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def funding_slots_uncovered(
    stored: Iterable[int], start: int, end: int, *, interval: int = FUNDING_INTERVAL_MS
) -> list[int]:
    """The funding boundaries (multiples of ``interval``) in ``[start, end)`` with no stored funding time.

    A boundary ``b`` is covered by a stored time in ``[b, b + interval)`` (and
    before ``end``): the exchange's own time may be a few ms late, and a symbol
    funded more often than every ``interval`` has several rows in a slot.
    """
    first = -(-start // interval) * interval
    if first >= end:
        return []
    boundaries = np.arange(first, end, interval, dtype=np.int64)
    times = np.sort(np.fromiter(stored, dtype=np.int64))
    times = times[(times >= first) & (times < end)]
    # The slot of each stored time: the boundary at or before it.
    covered = np.unique((times - first) // interval)
    uncovered = np.ones(len(boundaries), dtype=bool)
    uncovered[covered[covered < len(boundaries)]] = False
    return [int(b) for b in boundaries[uncovered].tolist()]
