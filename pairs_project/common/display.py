"""How numbers and times are written for people and files: one place, so the pages, the admin and the CSVs
say them alike (pure).

Times are UTC. A number is shown to the precision its reader uses (a price to its
instrument's tick, a p-value to 4 decimals, a z-score to 2), and never with the noise
of binary floats (a volume summed to 1.8559999999999997 is 1.856).
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

#: Price decimals of the instruments we know (Binance USD-M tick sizes); others by magnitude.
PRICE_DECIMALS = {"BTCUSDT": 1, "ETHUSDT": 2, "BNBUSDT": 2, "SOLUSDT": 2, "XRPUSDT": 4, "DOGEUSDT": 5}

#: Significant digits a number keeps when written without float noise: a double's
#: arithmetic errs in the 16th, and a price, a quantity or a sum of them needs fewer than 12.
PLAIN_DIGITS = 12


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


def plain_number(value: float, digits: int = PLAIN_DIGITS) -> str:
    """``value`` without float noise: the shortest text that reads back as ``value`` rounded to ``digits``
    significant digits, never in exponent form (1.8559999999999997 -> "1.856", 3.0 -> "3.0", 1e-05 -> "0.00001")."""
    if not math.isfinite(value):
        return repr(value)
    text = repr(float(f"{value:.{digits}g}"))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.removeprefix("-") if float(text) == 0 else text


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


def qty_text(quantity: float) -> str:
    """A signed quantity as the trades show it: + bought, - sold, 6 significant digits."""
    return ("+" if quantity > 0 else "") + significant_text(quantity, 6)


def direction_text(direction: str, symbols: tuple[str, str]) -> str:
    """A trade's direction in words, with the legs it buys and sells."""
    a, b = symbols
    if direction == "long_spread":
        return f"long spread (buy {a}, sell {b})"
    return f"short spread (sell {a}, buy {b})"


def utc_text(ms: int | None, *, millis: bool = False) -> str:
    """YYYY-MM-DD HH:MM:SS (UTC) of a ms timestamp; ``millis``: with its milliseconds (HH:MM:SS.mmm)."""
    if ms is None:
        return "—"
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))
    return f"{text}.{ms % 1000:03d}" if millis else text


def iso_utc(ms: int) -> str:
    """ISO 8601 (UTC, to the second, or to the ms when it has them) of a ms timestamp: 2026-01-01T00:00:00Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def duration_text(seconds: float | None) -> str:
    """A duration as the page script's ``duration`` writes it: "0.4 s", "12 s", "4m 05s", "2h 03m"."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    # Rounded half up to the smallest unit shown, then split, as the script does ("4m 60s" never).
    seconds = max(0.0, seconds)
    tenths = math.floor(seconds * 10 + 0.5)
    if tenths < 100:
        return f"{tenths / 10:.1f} s"
    whole = math.floor(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    minutes = math.floor(seconds / 60 + 0.5)
    if minutes < 60 * 48:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    hours = math.floor(seconds / 3600 + 0.5)
    return f"{hours // 24}d {hours % 24:02d}h"


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


def ratio_text(value: float, digits: int = 6) -> str:
    """A ratio to ``digits`` significant digits, its zeros kept so that a column lines up: 20.0000, 19.9510."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.{digits - 1}f}"
    return f"{value:.{max(0, digits - 1 - math.floor(math.log10(abs(value))))}f}"


def datetime_text(moment: datetime | None) -> str:
    """YYYY-MM-DD HH:MM:SS of a datetime, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


#: Significant digits of the numbers of JSON shown to be read (the API and the CSVs keep more).
JSON_DIGITS = 8


def json_text(value: Any) -> str:
    """JSON indented for reading, its numbers to 8 significant digits (a stored snapshot, a backtest's summary)."""
    return json.dumps(_rounded(value), indent=2, ensure_ascii=False)


def _rounded(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{JSON_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value
