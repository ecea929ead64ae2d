"""Funding of the offline exchange: when it is charged and at what rate, pure.

Every 8 hours (00:00, 08:00 and 16:00 UTC), as on most of Binance's
perpetuals. The rate is Binance's usual 0.01 % with seeded noise: a function
of the exchange's seed, the symbol and the funding time alone, so any past
range answers the same on every run and every page, and the mark-price stream
announces the rate ``/fapi/v1/fundingRate`` later reports.
"""

from __future__ import annotations

import hashlib
import math

from ..history import FUNDING_INTERVAL_MS

#: The rate around which the seeded ones scatter (Binance's interest-rate floor, 0.01 %).
FUNDING_RATE = 0.0001
#: Standard deviation of the seeded scatter around ``FUNDING_RATE``.
FUNDING_RATE_SIGMA = 0.00005
#: The rates are clipped to +-this (Binance caps most perpetuals' rates at 0.3 % or more).
FUNDING_RATE_CAP = 0.003

__all__ = ["FUNDING_INTERVAL_MS", "FUNDING_RATE", "funding_rate", "funding_times"]


def funding_rate(seed: int, symbol: str, funding_time: int) -> float:
    """The rate ``symbol`` pays at ``funding_time`` (ms) on the exchange seeded with ``seed``.

    ``FUNDING_RATE`` plus Gaussian noise of ``FUNDING_RATE_SIGMA`` drawn from a
    hash of the three (Box-Muller), rounded to Binance's 8 decimals.
    """
    digest = hashlib.blake2b(f"{seed}:{symbol}:{funding_time}".encode(), digest_size=16).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / 2.0**64  # in (0, 1]
    u2 = int.from_bytes(digest[8:], "big") / 2.0**64
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    rate = FUNDING_RATE + FUNDING_RATE_SIGMA * z
    return round(max(-FUNDING_RATE_CAP, min(FUNDING_RATE_CAP, rate)), 8)


def funding_times(first: int, last: int) -> range:
    """The funding times in ``[first, last]`` (ms, inclusive)."""
    lo = -(-first // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
    return range(lo, max(lo, last + 1), FUNDING_INTERVAL_MS)
