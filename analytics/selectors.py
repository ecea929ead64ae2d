"""Reads of bars, pairs and snapshots."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from django.core.cache import cache
from django.db.models import QuerySet

from .models import Bar, Pair, Snapshot

logger = logging.getLogger(__name__)

SNAPSHOT_KEY = "pairs:snapshot:{pair_id}"
SERIES_KEY = "pairs:series:{pair_id}"
#: The series rebuilt from a recorded snapshot (``services.pair_current``), per bar.
RECORDED_SERIES_KEY = "pairs:series-recorded:{pair_id}:{as_of}"


class Close(NamedTuple):
    open_time: int
    close: float


def pairs_active() -> list[Pair]:
    return list(Pair.objects.filter(active=True).order_by("id"))


def pair_symbols_active() -> set[str]:
    symbols: set[str] = set()
    for a, b in Pair.objects.filter(active=True).values_list("symbol_a", "symbol_b"):
        symbols.update((a, b))
    return symbols


def bars_for_symbol(
    *, symbol: str, interval: str, start: int | None = None, end: int | None = None, limit: int | None = None
) -> QuerySet[Bar]:
    """Bars oldest first; with only ``limit``, the newest ``limit`` of them."""
    qs = Bar.objects.filter(symbol=symbol, interval=interval)
    if start is not None:
        qs = qs.filter(open_time__gte=start)
    if end is not None:
        qs = qs.filter(open_time__lte=end)
    if limit is not None and start is None:
        newest = list(qs.order_by("-open_time")[:limit])
        newest.reverse()
        return newest  # type: ignore[return-value]
    qs = qs.order_by("open_time")
    return qs[:limit] if limit is not None else qs


def closes_window(*, symbol: str, interval: str, as_of: int, limit: int) -> list[Close]:
    """The newest ``limit`` closes with open time <= ``as_of``, oldest first."""
    rows = (
        Bar.objects.filter(symbol=symbol, interval=interval, open_time__lte=as_of)
        .order_by("-open_time")
        .values_list("open_time", "close")[:limit]
    )
    return [Close(t, c) for t, c in reversed(rows)]


def cached(key: str) -> Any:
    """A cached value, or None when it is absent or the cache does not answer (it is only a cache)."""
    try:
        return cache.get(key)
    except Exception as exc:
        logger.warning("cache read of %s failed (%s); computing instead", key, exc)
        return None


def snapshot_cached(pair_id: int) -> dict[str, Any] | None:
    return cached(SNAPSHOT_KEY.format(pair_id=pair_id))


def series_cached(pair_id: int) -> dict[str, list] | None:
    return cached(SERIES_KEY.format(pair_id=pair_id))


def snapshot_recorded_latest(pair_id: int) -> dict[str, Any] | None:
    """The newest snapshot in the history (where a cycle resumes when the cache was lost)."""
    return Snapshot.objects.filter(pair_id=pair_id).order_by("-as_of").values_list("data", flat=True).first()
