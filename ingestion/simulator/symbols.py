"""What the offline exchange knows of a symbol: its trade ids and its price/lot grid.

Ids start where Binance's do for BTCUSDT and ETHUSDT, and at a per-symbol base
for any other symbol; ``clock_id_offset`` moves them on with the wall clock so
a restarted exchange never re-issues an id an app has stored.
"""

from __future__ import annotations

import dataclasses
import time
import zlib

import numpy as np

from ..binance import format_decimal

# ``clock_id_offset``: ids advance this many per second of wall time since this
# instant, so a restarted simulator never re-issues ids an app has stored.
_ID_CLOCK_ORIGIN = 1_767_225_600  # 2026-01-01T00:00:00Z
_ID_CLOCK_RATE = 100


@dataclasses.dataclass(frozen=True)
class SymbolSpec:
    """What the exchange knows of a symbol: numbering and the price/lot grid."""

    symbol: str
    first_id: int
    tick_size: float
    step_size: float
    price_precision: int
    quantity_precision: int
    base_asset: str
    quote_asset: str = "USDT"


_KNOWN_SPECS = {
    "BTCUSDT": SymbolSpec("BTCUSDT", 5_000_000_000, 0.1, 0.001, 2, 3, "BTC"),
    "ETHUSDT": SymbolSpec("ETHUSDT", 4_000_000_000, 0.01, 0.001, 2, 3, "ETH"),
}


def symbol_spec(symbol: str, *, id_offset: int = 0) -> SymbolSpec:
    """The spec of ``symbol``: BTCUSDT and ETHUSDT as on Binance, others on a fine grid.

    Ids of unknown symbols start at a per-symbol base between 1e9 and 2e9 (a
    hash of the name), so two symbols never look alike.
    """
    spec = _KNOWN_SPECS.get(symbol)
    if spec is None:
        base = 1_000_000_000 + (zlib.crc32(symbol.encode()) % 1000) * 1_000_000
        asset = symbol[:-4] if symbol.endswith("USDT") else symbol
        spec = SymbolSpec(symbol, base, 0.0001, 0.001, 4, 3, asset)
    return dataclasses.replace(spec, first_id=spec.first_id + id_offset)


def clock_id_offset(now: float | None = None) -> int:
    """An id offset that grows with wall time (100 ids a second since 2026-01-01).

    Real aggregate ids only ever grow; with this offset a restarted simulator
    keeps that promise (as long as no symbol traded faster than 100/s on
    average), so an app that persisted its last ids does not take the new
    trades for duplicates.
    """
    now = time.time() if now is None else now
    return max(0, int((now - _ID_CLOCK_ORIGIN) * _ID_CLOCK_RATE))


def round_to_grid(values: np.ndarray, step: float) -> np.ndarray:
    """``values`` on the grid of ``step`` (a tick or lot size)."""
    # Snap to the grid, then round to its decimals so the float prints cleanly.
    return np.round(np.round(values / step) * step, _decimals(step))


def _decimals(step: float) -> int:
    text = format_decimal(step)
    return len(text.split(".", 1)[1]) if "." in text else 0
