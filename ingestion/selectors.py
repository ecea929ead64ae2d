"""Reads of ingestion data for the API and the dashboard."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from django.conf import settings
from django.db.models import QuerySet

from .models import FeedStatus, Symbol, Tick

#: A feed that has not written its status for this long is considered gone (seconds).
STATUS_STALE_AFTER = 5.0


def symbols_list() -> QuerySet[Symbol]:
    return Symbol.objects.order_by("name")


def symbol_exists(symbol: str) -> bool:
    return Symbol.objects.filter(name=symbol).exists()


class FeedView(NamedTuple):
    symbols: list[str]
    live: bool  # connected, reporting, and no gap still being backfilled


def _symbols(feed: FeedStatus) -> list[str]:
    return [s for s in feed.symbols.split(",") if s]


def _connected_and_reporting(feed: FeedStatus, now: float) -> bool:
    """Connected, by a status written within ``STATUS_STALE_AFTER`` seconds of ``now``."""
    return feed.connected and feed.updated_at is not None and now - feed.updated_at.timestamp() <= STATUS_STALE_AFTER


def feeds_state() -> list[FeedView]:
    """Each ingestion feed's symbols and whether its stored data is keeping up, newest report first."""
    now = time.time()
    feeds = []
    for feed in FeedStatus.objects.order_by("-updated_at"):
        caught_up = feed.gaps_detected <= feed.gaps_filled + feed.gaps_unfilled
        feeds.append(FeedView(_symbols(feed), _connected_and_reporting(feed, now) and caught_up))
    return feeds


def ticks_recent(*, symbol: str, limit: int, before: int | None = None) -> list[Tick]:
    """The newest ``limit`` ticks of ``symbol`` (with a trade id below ``before``), newest first.

    Aggregate ids grow with trade time, so id order is time order; it walks the
    (symbol, trade_id) unique index.
    """
    ticks = Tick.objects.filter(symbol=symbol)
    if before is not None:
        ticks = ticks.filter(trade_id__lt=before)
    return list(ticks.order_by("-trade_id")[:limit])


def health() -> dict[str, Any]:
    """Feed health as ``/api/health/`` reports it (all feeds of the system, merged)."""
    feeds = list(FeedStatus.objects.order_by("name"))
    now = time.time()
    ticks_total = sum(Symbol.objects.values_list("tick_count", flat=True))
    problems: list[str] = []
    if not feeds:
        problems.append("no ingestion feed has reported yet")
    for feed in feeds:
        age = now - feed.updated_at.timestamp() if feed.updated_at else None
        if age is None or age > STATUS_STALE_AFTER:
            problems.append(f"feed {feed.name} has not reported for {age:.0f}s" if age else f"feed {feed.name} never reported")
        elif not feed.connected:
            problems.append(f"feed {feed.name} is disconnected: {feed.last_error or 'connecting'}")
    problems.extend(symbol_problems(feeds, now))
    live = [f for f in feeds if _connected_and_reporting(f, now)]
    last_ticks = [f.last_tick_at for f in feeds if f.last_tick_at]
    return {
        "status": "degraded" if problems else "ok",
        "mode": settings.RUN_MODE,
        "problems": problems,
        "feed": {
            "connected": bool(feeds) and len(live) == len(feeds),
            "last_tick_at": max(last_ticks) if last_ticks else None,
            "reconnects": sum(f.reconnects for f in feeds),
            "ticks_total": ticks_total,
            "gaps_filled": sum(f.gaps_filled for f in feeds),
            "gaps_unfilled": sum(f.gaps_unfilled for f in feeds),
            "trades_unavailable": sum(f.trades_unavailable for f in feeds),
            "malformed": sum(f.malformed for f in feeds),
            "last_error": max(feeds, key=lambda f: f.last_error_at or f.started_at or f.updated_at).last_error if feeds else "",
        },
        "feeds": [_feed_dict(f) for f in feeds],
    }


def symbol_problems(feeds: list[FeedStatus], now: float) -> list[str]:
    """A line per symbol a reporting feed follows in vain: not traded by the exchange, or silent on a live stream."""
    lines: list[str] = []
    for feed in feeds:
        if feed.updated_at is None or now - feed.updated_at.timestamp() > STATUS_STALE_AFTER:
            continue  # a feed that stopped reporting is a problem of its own
        unavailable = feed.unavailable_symbols if isinstance(feed.unavailable_symbols, dict) else {}
        lines.extend(str(message) for _, message in sorted(unavailable.items()))
        silent = feed.silent_symbols if feed.connected and isinstance(feed.silent_symbols, dict) else {}
        for symbol, since in sorted(silent.items()):
            if symbol not in unavailable and isinstance(since, int | float):
                lines.append(f"{symbol}: no trade for {max(0.0, now - since / 1000):.0f} s while the stream is live")
    return list(dict.fromkeys(lines))


def _ms(value) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def _feed_dict(feed: FeedStatus) -> dict[str, Any]:
    return {
        "name": feed.name,
        "url": feed.url,
        "symbols": _symbols(feed),
        "connected": feed.connected,
        "connected_since": _ms(feed.connected_since),
        "last_tick_at": feed.last_tick_at,
        "reconnects": feed.reconnects,
        "connect_failures": feed.connect_failures,
        "ticks_received": feed.ticks_received,
        "ticks_stored": feed.ticks_stored,
        "pending": feed.pending,
        "duplicates": feed.duplicates,
        "malformed": feed.malformed,
        "gaps_detected": feed.gaps_detected,
        "gaps_filled": feed.gaps_filled,
        "gaps_unfilled": feed.gaps_unfilled,
        "trades_backfilled": feed.trades_backfilled,
        "trades_unavailable": feed.trades_unavailable,
        "rate_limited": feed.rate_limited,
        "last_error": feed.last_error,
        "last_error_at": _ms(feed.last_error_at),
        "silent_symbols": feed.silent_symbols,
        "unavailable_symbols": feed.unavailable_symbols,
        "started_at": _ms(feed.started_at),
        "updated_at": _ms(feed.updated_at),
    }
