"""How the pages write numbers, times and directions: one place, so every page says them alike."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from decimal import Decimal

#: Price decimals of the instruments we know (Binance USD-M tick sizes); others by magnitude.
PRICE_DECIMALS = {"BTCUSDT": 1, "ETHUSDT": 2, "BNBUSDT": 2, "SOLUSDT": 2, "XRPUSDT": 4, "DOGEUSDT": 5}


def price_decimals(symbol: str, price: float | None) -> int:
    """Decimals to show a price of ``symbol`` with: its tick size when known, else by magnitude."""
    if symbol in PRICE_DECIMALS:
        return PRICE_DECIMALS[symbol]
    if not price or not math.isfinite(price):
        return 2
    magnitude = math.floor(math.log10(abs(price)))
    if magnitude >= 4:  # 10,000 and up: 0.1
        return 1
    if magnitude >= 2:  # 100 to 9,999: 0.01
        return 2
    return min(8, 4 - magnitude)  # 14.123 -> 3, 2.5 -> 4, 0.45 -> 5


def pvalue_text(value: float | None) -> str:
    """A p-value as the pages show it: 4 decimals, "<0.0001" below that."""
    if value is None:
        return "—"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def signed_text(value: float | None, decimals: int = 2) -> str:
    """A signed number as the page script's ``fmtSigned`` writes it: "+1.23", "-1.23", "0.00"."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{abs(value):.{decimals}f}"
    if float(text) == 0:
        return text
    return ("+" if value > 0 else "-") + text


def threshold_text(value: float) -> str:
    """A threshold as the gates show it: at least 2 decimals, up to 4 ("0.05", "0.60", "2.00", "0.0125")."""
    text = f"{value:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def gate_pvalue_text(value: float) -> str:
    """A p-value in a gate: 3 decimals, "<0.001" below that."""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def alert_z_text(signal_zscore: float | None, zscore: float | None) -> str:
    """The z an alert fired on: its signal z, or the in-sample z of alerts recorded before signals."""
    if signal_zscore is not None:
        return f"signal z {signed_text(signal_zscore)}"
    return f"z {signed_text(zscore)} in-sample"


def qty_text(quantity: float) -> str:
    """A signed quantity as the trades show it: + bought, - sold, 6 significant digits."""
    return ("+" if quantity > 0 else "") + significant_text(quantity, 6)


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


def utc_text(ms: int | None) -> str:
    """YYYY-MM-DD HH:MM:SS (UTC) of a ms timestamp."""
    if ms is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def iso_utc(ms: int) -> str:
    """ISO 8601 (UTC, to the second, or to the ms when it has them) of a ms timestamp: 2026-01-01T00:00:00Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def duration_text(seconds: float | None) -> str:
    """A duration as the page script's ``duration`` writes it: "0.4 s", "12 s", "4m 05s", "2h 03m"."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {round(seconds % 60):02d}s"
    if seconds < 86_400 * 2:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86_400)}d {int(seconds % 86_400 // 3600):02d}h"


def number_text(value: float | None, decimals: int = 2, *, signed: bool = False) -> str:
    """A number with thousands separators and fixed decimals ("—" for none); ``signed``: "+1,234.50", "-0.25"."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{abs(value):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    if value < 0:
        return "-" + text
    return "+" + text if signed else text


def significant_text(value: float, digits: int = 8) -> str:
    """``value`` to ``digits`` significant digits, written out (never 1e-05): 0.10309278, -2061.8557."""
    text = f"{value:.{digits}g}"
    if "e" in text:
        text = format(Decimal(text), "f")
    return "0" if float(text) == 0 else text


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


def direction_text(direction: str, symbols: tuple[str, str]) -> str:
    """A trade's direction in words, with the legs it buys and sells."""
    a, b = symbols
    if direction == "long_spread":
        return f"long spread (buy {a}, sell {b})"
    return f"short spread (sell {a}, buy {b})"


def datetime_text(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def money_csv(value: float) -> str:
    """Money in a CSV: 4 decimals (a fee of a few cents keeps its digits)."""
    text = f"{value:.4f}"
    return "0.0000" if float(text) == 0 else text
