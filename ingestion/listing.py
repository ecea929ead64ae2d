"""The exchange's symbol list (``GET /fapi/v1/exchangeInfo``), cached: which symbols can be followed.

A pair's symbols are checked against it where a pair is made or edited, and the
feed subscribes only to what it says trades. It knows nothing of pairs: callers
say which symbols the system already knows.

The list is kept in the Django cache (shared by every process in distributed
mode), per REST base URL (the embedded demo follows an exchange of its own), and
fetched again once it is ``BINANCE_EXCHANGE_INFO_TTL`` seconds old. When a
refresh fails the older copy is used, a stale list being better than none; the
next attempt waits ``RETRY_AFTER_FAILURE`` seconds, or as long as a 429/418
answer's ``Retry-After`` asks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Collection, Iterable
from typing import Any

import httpx
import orjson
from django.conf import settings
from django.core.cache import cache

from .binance import ListedSymbol, MalformedFrame, exchange_info_url, listing_problem, parse_exchange_info
from .client import RateLimited
from .models import Symbol

logger = logging.getLogger(__name__)

#: Seconds before a failed fetch is tried again (unless the exchange asked for longer).
RETRY_AFTER_FAILURE = 30.0
#: Seconds one exchangeInfo request may take (connecting: 5).
FETCH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

_KEY = "pairs:exchange-info:{digest}"
_FAILED_KEY = "pairs:exchange-info-failed:{digest}"


@dataclasses.dataclass(frozen=True)
class Listing:
    """The exchange's symbols as known now.

    ``symbols`` is None when no copy was ever fetched; ``error`` says why the
    latest fetch failed ("" when ``symbols`` is fresh).
    """

    symbols: dict[str, ListedSymbol] | None
    fetched_at: float | None = None  # epoch seconds
    error: str = ""

    @property
    def stale(self) -> bool:
        return bool(self.error) and self.symbols is not None


def exchange_info_fetch(rest_url: str) -> dict[str, ListedSymbol]:
    """Fetch and parse the exchange's symbol list.

    Raises ``RateLimited`` on 429/418, ``httpx.HTTPError`` when the exchange
    cannot be reached or answers an error, ``MalformedFrame`` when the answer is
    not a symbol list.
    """
    with httpx.Client(timeout=FETCH_TIMEOUT, headers={"User-Agent": "pairs/1.0"}) as http:
        response = http.get(exchange_info_url(rest_url))
    if response.status_code in (418, 429):
        # 429: too many requests; 418: the IP is banned for Retry-After seconds.
        try:
            retry_after = float(response.headers.get("Retry-After") or 60)
        except ValueError:
            retry_after = 60.0
        raise RateLimited(response.status_code, retry_after)
    response.raise_for_status()
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:  # e.g. a proxy's HTML error page with a 200
        raise MalformedFrame(f"exchangeInfo answer is not JSON: {exc}") from None
    return parse_exchange_info(body)


def listing_get(*, max_age: float | None = None, rest_url: str | None = None) -> Listing:
    """The exchange's symbols: the cached copy while it is fresh, else fetched (see the module).

    Parameters
    ----------
    max_age : float, optional
        Seconds a cached copy may be old; default and cap ``BINANCE_EXCHANGE_INFO_TTL``.
    rest_url : str, optional
        REST base; default ``settings.BINANCE_REST_URL``.
    """
    url = rest_url or settings.BINANCE_REST_URL
    ttl = settings.BINANCE_EXCHANGE_INFO_TTL if max_age is None else min(max_age, settings.BINANCE_EXCHANGE_INFO_TTL)
    key, failed_key = _keys(url)
    now = time.time()
    copy = _cache_get(key)
    if copy is not None and now - copy[0] < ttl:
        return Listing(_unpack(copy[1]), copy[0])
    failure = _cache_get(failed_key)
    if failure is not None:  # a recent attempt failed: no request before it expires
        return Listing(_unpack(copy[1]) if copy else None, copy[0] if copy else None, failure)
    try:
        symbols = exchange_info_fetch(url)
    except (RateLimited, httpx.HTTPError, MalformedFrame) as exc:
        error = _describe(exc)
        wait = max(exc.retry_after, 1.0) if isinstance(exc, RateLimited) else RETRY_AFTER_FAILURE
        _cache_set(failed_key, error, wait)
        if copy is not None:
            logger.warning(
                "exchangeInfo from %s failed (%s); using the copy of %.0f s ago, next try in %.0f s",
                url,
                error,
                now - copy[0],
                wait,
            )
            return Listing(_unpack(copy[1]), copy[0], error)
        logger.warning(
            "exchangeInfo from %s failed (%s); no copy of the symbol list yet, next try in %.0f s", url, error, wait
        )
        return Listing(None, None, error)
    # Kept past the TTL on purpose: a stale copy is what a failed refresh falls back on.
    _cache_set(key, (now, _pack(symbols)), None)
    return Listing(symbols, now)


def symbols_check(
    symbols: Iterable[str], *, known: Collection[str] = (), rest_url: str | None = None
) -> dict[str, str]:
    """Per symbol that cannot be accepted, a message naming it; symbols that can are left out.

    Against the exchange's list when there is one. When the exchange cannot be
    reached and no copy exists, symbols the system already knows (``known``, or
    with stored ticks) are accepted, so work on existing pairs goes on; any
    other is refused, since it cannot be checked.
    """
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return {}
    listing = listing_get(rest_url=rest_url)
    if listing.symbols is not None:
        problems = {}
        for symbol in wanted:
            problem = listing_problem(symbol, listing.symbols)
            if problem is None:
                continue
            if listing.stale and symbol not in listing.symbols:
                # Perhaps listed since the copy was made: say so rather than deny it.
                age = time.time() - (listing.fetched_at or 0)
                problem = (
                    f"{symbol} is not in the exchange's symbol list of {age / 60:.0f} min ago, and a fresh one "
                    f"cannot be had ({listing.error}): try again"
                )
            problems[symbol] = problem
        return problems
    unknown = set(wanted) - set(known)
    if unknown:
        unknown -= set(Symbol.objects.filter(name__in=unknown).values_list("name", flat=True))
    return {s: f"cannot check {s} against the exchange ({listing.error}): try again" for s in wanted if s in unknown}


def symbols_tradable(
    symbols: Iterable[str], *, max_age: float | None = None, rest_url: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """Split ``symbols`` into those to follow and, with a reason each, those the exchange does not trade.

    Without any copy of the exchange's list nothing is held back (it cannot be
    told), so an unreachable exchange never stops a feed.
    """
    wanted = list(dict.fromkeys(symbols))
    listing = listing_get(max_age=max_age, rest_url=rest_url)
    if listing.symbols is None:
        return wanted, {}
    tradable: list[str] = []
    dropped: dict[str, str] = {}
    for symbol in wanted:
        problem = listing_problem(symbol, listing.symbols)
        if problem is None:
            tradable.append(symbol)
        else:
            dropped[symbol] = problem
    return tradable, dropped


# -- internals ------------------------------------------------------------------


def _keys(rest_url: str) -> tuple[str, str]:
    digest = hashlib.sha1(rest_url.rstrip("/").encode()).hexdigest()[:16]
    return _KEY.format(digest=digest), _FAILED_KEY.format(digest=digest)


def _pack(symbols: dict[str, ListedSymbol]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(entry[1:]) for name, entry in symbols.items()}


def _unpack(packed: dict[str, tuple[str, ...]]) -> dict[str, ListedSymbol]:
    # A copy cached before the quote asset was kept has (status, contract type) only.
    return {name: ListedSymbol(name, *fields) for name, fields in packed.items()}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}"[:200] if text else exc.__class__.__name__


def _cache_get(key: str) -> Any:
    """The cached value, or None when absent or when the cache does not answer (it is only a cache)."""
    try:
        return cache.get(key)
    except Exception as exc:
        logger.warning("cache read of %s failed (%s)", key, exc)
        return None


def _cache_set(key: str, value: Any, timeout: float | None) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception as exc:
        logger.warning("cache write of %s failed (%s)", key, exc)
