"""How the pages write numbers, times and directions: one place, so every page says them alike.

The ways every app writes numbers and times (the admin too) are in ``pairs_project.common.display``;
the pages import them from here with their own.
"""

from __future__ import annotations

import math
import time

from pairs_project.common.display import PRICE_DECIMALS as PRICE_DECIMALS
from pairs_project.common.display import datetime_text as datetime_text
from pairs_project.common.display import direction_text as direction_text
from pairs_project.common.display import duration_text as duration_text
from pairs_project.common.display import iso_utc as iso_utc
from pairs_project.common.display import number_text as number_text
from pairs_project.common.display import plain_number as plain_number
from pairs_project.common.display import price_decimals as price_decimals
from pairs_project.common.display import pvalue_text as pvalue_text
from pairs_project.common.display import qty_text as qty_text
from pairs_project.common.display import signed_text as signed_text
from pairs_project.common.display import significant_text as significant_text
from pairs_project.common.display import threshold_text as threshold_text
from pairs_project.common.display import utc_text as utc_text


def gate_pvalue_text(value: float) -> str:
    """A p-value in a gate: 3 decimals, "<0.001" below that."""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def alert_z_text(signal_zscore: float | None, zscore: float | None) -> str:
    """The z an alert fired on: its signal z, or the in-sample z of alerts recorded before signals."""
    if signal_zscore is not None:
        return f"signal z {signed_text(signal_zscore)}"
    return f"z {signed_text(zscore)} in-sample"


#: The quote currencies of Binance USD-M perpetuals, longest first.
QUOTE_CURRENCIES = ("USDT", "USDC", "BUSD", "USD")


def quote_currency(symbol: str) -> str:
    """The currency ``symbol``'s prices are in (a spread A - beta B is in A's): "USDT" for BTCUSDT."""
    return next((quote for quote in QUOTE_CURRENCIES if symbol.endswith(quote)), "quote")


def bar_span_text(open_ms: int | None, interval_ms: int) -> str:
    """The time span of the bar opening at ``open_ms``: "11-30 06:15:07–06:15:08" (UTC; the date again
    only when the bar ends on another day)."""
    if open_ms is None:
        return "—"
    start, end = stamp_text(open_ms), stamp_text(open_ms + interval_ms)
    return f"{start}–{end[6:] if end[:5] == start[:5] else end}"


def stamp_text(ms: int | None) -> str:
    """MM-DD HH:MM:SS (UTC) of a ms timestamp, as the page script shows times."""
    if ms is None:
        return "—"
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(ms / 1000))


#: Decimals a fill has beyond its instrument's tick: a whole bp of slippage moves a price by exactly 4.
FILL_EXTRA_DECIMALS = 4


def decimal_text(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals``, without trailing zeros: 97009.80001, 3012.5."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if float(text) == 0 else text


def tone(value: float | None, decimals: int = 2) -> str:
    """ "pos", "neg" or "" for a figure as shown with ``decimals`` (a PnL that shows 0.00 is neither)."""
    if value is None or not math.isfinite(value) or round(value, decimals) == 0:
        return ""
    return "pos" if value > 0 else "neg"


def money_csv(value: float) -> str:
    """Money in a CSV: 4 decimals (a fee of a few cents keeps its digits)."""
    text = f"{value:.4f}"
    return "0.0000" if float(text) == 0 else text
