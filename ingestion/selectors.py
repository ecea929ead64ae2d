"""Reads of ingestion data for the API and the dashboard."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, QuerySet, Sum

from .models import FeedStatus, Gap, Symbol, Tick

#: Where a feed also publishes its status (the database may be the thing that is stuck).
FEED_STATUS_KEY = "pairs:feed-status:{name}"
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


#: Storing ticks blocked (failing, or one batch taking) this long is a problem (seconds).
WRITER_BLOCKED_AFTER = 5.0
#: Trades given up as lost keep health degraded this long after (seconds); they stay listed after.
LOST_TRADES_REPORTED_FOR = 3600
#: Gaps listed in the health record, newest first.
GAPS_LISTED = 20


def feeds_reported() -> list[FeedStatus]:
    """Each feed's status: its row, or the copy it published since if that is newer.

    A feed publishes its status to the cache as well as saving it, so health
    hears from a feed whose database writes are stuck (and why).
    """
    feeds = {feed.name: feed for feed in FeedStatus.objects.order_by("name")}
    try:
        published = cache.get_many([FEED_STATUS_KEY.format(name=name) for name in feeds])
    except Exception:  # only a second copy: the rows are the record
        published = {}
    for status in published.values():
        row = feeds.get(status.name)
        if row is not None and status.updated_at and (row.updated_at is None or status.updated_at > row.updated_at):
            status.pk = row.pk
            feeds[status.name] = status
    return [feeds[name] for name in sorted(feeds)]


#: What a feed row that has recorded no time at all sorts as (a row made by hand).
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _error_time(feed: FeedStatus) -> datetime:
    """When a feed's last error was, or failing that when it last started or reported."""
    return feed.last_error_at or feed.started_at or feed.updated_at or _NEVER


def health() -> dict[str, Any]:
    """Feed health as ``/api/health/`` reports it (all feeds of the system, merged, and the gaps)."""
    feeds = feeds_reported()
    now = time.time()
    ticks_total = sum(Symbol.objects.values_list("tick_count", flat=True))
    problems: list[str] = []
    if not feeds:
        problems.append("no ingestion feed has reported yet")
    for feed in feeds:
        age = now - feed.updated_at.timestamp() if feed.updated_at else None
        if age is None or age > STATUS_STALE_AFTER:
            problems.append(
                f"feed {feed.name} has not reported for {age:.0f}s" if age else f"feed {feed.name} never reported"
            )
            continue
        if not feed.connected:
            problems.append(f"feed {feed.name} is disconnected: {feed.last_error or 'connecting'}")
        blocked = now - feed.writer_failing_since.timestamp() if feed.writer_failing_since else 0.0
        if blocked > WRITER_BLOCKED_AFTER:
            why = feed.writer_error or "the database has not answered"
            problems.append(
                f"feed {feed.name} cannot store ticks for {blocked:.0f}s ({why}); {feed.pending:,} ticks waiting"
            )
    gaps = _gaps(now)
    problems.extend(gaps.pop("problems"))
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
            # Attempts that never connected: "0 reconnects" alone reads well while every attempt fails.
            "connect_failures": sum(f.connect_failures for f in feeds),
            "ticks_total": ticks_total,
            "gaps_open": len(gaps["open"]),
            "gaps_filled": gaps.pop("filled"),
            "gaps_unfilled": gaps.pop("unfilled"),
            "trades_unavailable": gaps.pop("trades_unavailable"),
            "malformed": sum(f.malformed for f in feeds),
            "last_error": max(feeds, key=_error_time).last_error if feeds else "",
        },
        "gaps": gaps,
        "feeds": [_feed_dict(f) for f in feeds],
        "exchange": exchange_of(feeds),
    }


def exchange_of(feeds: list[FeedStatus]) -> dict[str, Any]:
    """The exchange the feeds follow: its host, and whether it is the offline one.

    Binance is never on this machine, and the offline exchange always is (``runpairs
    --simulate`` starts it on loopback, ``make demo-distributed`` points the URLs at
    it): a feed on a loopback address follows the offline demo market.
    """
    hosts = [urlsplit(f.url).hostname or "" for f in feeds if f.url]
    offline = bool(hosts) and all(host == "localhost" or _loopback(host) for host in hosts)
    return {"host": hosts[0] if hosts else None, "offline": offline}


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _gap_dict(gap: Gap) -> dict[str, Any]:
    return {
        "symbol": gap.symbol,
        "first_id": gap.first_id,
        "last_id": gap.last_id,
        "trades": gap.size,
        "status": gap.status,
        "missing": gap.missing,
        "feed": gap.feed,
        "detected_at": _ms(gap.detected_at),
        "resolved_at": _ms(gap.resolved_at),
    }


def _gaps(now: float) -> dict[str, Any]:
    """Open gaps (a problem while they last) and trades lost for good (a problem for an hour, listed after)."""
    counts = dict(Gap.objects.values_list("status").annotate(n=Count("id")))
    lost = Gap.objects.filter(status=Gap.Status.UNAVAILABLE)
    problems = []
    open_gaps = list(Gap.objects.filter(status=Gap.Status.OPEN).order_by("detected_at")[:GAPS_LISTED])
    for gap in open_gaps:
        problems.append(
            f"{gap.symbol}: {gap.size:,} trades (ids {gap.first_id}..{gap.last_id}) missing for "
            f"{now - gap.detected_at.timestamp():.0f}s, being backfilled"
        )
    recent = list(lost.order_by("-resolved_at")[:GAPS_LISTED])
    for gap in recent:
        if gap.resolved_at and now - gap.resolved_at.timestamp() <= LOST_TRADES_REPORTED_FOR:
            problems.append(
                f"{gap.symbol}: {gap.missing:,} trades (ids {gap.first_id}..{gap.last_id}) are no longer served "
                f"by the exchange and are missing ({(now - gap.resolved_at.timestamp()) / 60:.0f} min ago)"
            )
    return {
        "problems": problems,
        "filled": counts.get(Gap.Status.FILLED, 0),
        "unfilled": counts.get(Gap.Status.UNAVAILABLE, 0),
        "trades_unavailable": lost.aggregate(n=Sum("missing"))["n"] or 0,
        "open": [_gap_dict(g) for g in open_gaps],
        "lost": [_gap_dict(g) for g in recent],
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
        "writer_error": feed.writer_error,
        "writer_blocked_since": _ms(feed.writer_failing_since),
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
