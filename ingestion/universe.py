"""The universe a screener looks at: which symbols, and the limits on it, pure (no Django, no I/O).

A universe is either symbols named one by one or the top N USDT perpetuals by
24 h quote volume (``binance.universe_top``); ``services.universe_resolve``
asks the exchange and returns a ``Universe``. Every pair of its symbols is
tested, N (N - 1) / 2 of them, which is what bounds N.
"""

from __future__ import annotations

from typing import NamedTuple

#: The top N a universe is by default.
UNIVERSE_TOP_DEFAULT = 30
#: The largest universe: 200 symbols are 19,900 pairs to test (500 would be 124,750).
UNIVERSE_MAX = 200
#: The smallest: one pair.
UNIVERSE_MIN = 2


class UniverseError(ValueError):
    """A universe that cannot be had as asked; the message says why in words a user can act on."""


class Universe(NamedTuple):
    """The symbols of a universe, and why others were left out.

    ``symbols``: in order (by 24 h quote volume, largest first, for a top N; as
    given otherwise). ``skipped``: symbol -> why it is not in (a perpetual
    delisted or paused since, one that fell out of the top N since the
    previous universe...). ``quote_volumes``: the 24 h quote volume of each
    symbol of a top N (empty for symbols given by name: no tickers are asked for).
    """

    symbols: tuple[str, ...]
    skipped: dict[str, str]
    quote_volumes: dict[str, float]


def pairs_count(n: int) -> int:
    """How many pairs ``n`` symbols make."""
    return n * (n - 1) // 2


def universe_size_check(n: int) -> None:
    """Raise ``UniverseError`` unless a top-``n`` universe can be screened (``UNIVERSE_MIN`` to ``UNIVERSE_MAX``)."""
    if n < UNIVERSE_MIN:
        raise UniverseError(
            f"a universe needs at least {UNIVERSE_MIN} symbols to make a pair: ask for the top {UNIVERSE_MIN} or more,"
            f" not {n}"
        )
    if n > UNIVERSE_MAX:
        raise UniverseError(
            f"a universe of {n} symbols is too large: at most {UNIVERSE_MAX} are screened, since every pair of them"
            f" is tested ({UNIVERSE_MAX} symbols make {pairs_count(UNIVERSE_MAX):,} pairs, {n} would make"
            f" {pairs_count(n):,}); ask for {UNIVERSE_MAX} or fewer"
        )
