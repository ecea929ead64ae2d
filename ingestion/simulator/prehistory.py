"""Synthetic klines before the exchange's start, so an app can warm up a 1m or 5m window at once.

The pair scenario's model at candle resolution, run backward in time from its
starting prices (the last candle closes exactly there). aggTrades have no such
history: only klines reach back before the start.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from .klines import INTERVALS, Candles
from .symbols import SymbolSpec, round_to_grid

#: Candles of synthetic pre-history the pair scenarios serve before their start,
#: per interval (enough for a full 1500-bar window at once). Longer intervals
#: get none: 1500 of them would span months, where the scenario's arithmetic
#: random walk is no longer a sane price model (it can reach zero).
PREHISTORY_BARS = 1500
PREHISTORY_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h")
PREHISTORY_WIDTHS = frozenset(INTERVALS[name] for name in PREHISTORY_INTERVALS)
# Mixed into the pre-history's seed, next to the scenario seed and the interval.
_PREHISTORY_TAG = 0x50524548


class PairModel(Protocol):
    """What the pre-history needs of a pair scenario (``PairScenario`` has it): ``y = alpha + beta x + s``."""

    specs: tuple[SymbolSpec, SymbolSpec]
    rate: float
    split: float
    mean_reverting: bool
    hedge_ratio: float
    alpha: float
    theta: float
    spread_sigma: float
    x_start: float
    y_start: float
    x_volatility: float
    #: Trade sizes are lognormal(log(median), ``qty_sigma``), with a median per leg.
    qty_sigma: float
    y_qty_median: float
    x_qty_median: float


def build_prehistory(model: PairModel, interval_ms: int, entropy: int) -> tuple[Candles, Candles]:
    """``PREHISTORY_BARS`` candles of each leg (``y`` first) ending at the start.

    ``x`` steps by ``x_volatility * sqrt(interval)``, the spread is the exact
    AR(1) of the Ornstein-Uhlenbeck process over one interval (a stationary
    Gaussian AR(1) reads the same backward) or, for ``random_walk``, a walk
    with the same local variance; ``y = alpha + hedge_ratio * x + spread``.
    Shocks are not replayed. Deterministic per ``entropy`` (the scenario's
    seed) and interval, and drawn from a generator of its own, so building it
    never changes the trades.
    """
    n = PREHISTORY_BARS
    dt = interval_ms / 1000.0
    rng = np.random.default_rng(np.random.SeedSequence([entropy, interval_ms, _PREHISTORY_TAG]))
    zx = rng.standard_normal(n)
    zs = rng.standard_normal(n)
    # Points 0..n: candle k opens at point k and closes at point k + 1,
    # point n being the start. Walk back from it.
    step_x = model.x_volatility * math.sqrt(dt)
    x = np.empty(n + 1)
    x[n] = model.x_start
    x[:n] = model.x_start - np.cumsum(step_x * zx)[::-1]
    s, var_s = _spread_backward(model, dt, zs)
    y = model.alpha + model.hedge_ratio * x + s
    y[n] = model.y_start  # exactly, whatever the float error of alpha
    y_spec, x_spec = model.specs
    trades_y = model.rate * model.split * dt
    trades_x = model.rate * (1.0 - model.split) * dt
    var_y = model.hedge_ratio**2 * step_x**2 + var_s
    y_candles = _leg_candles(rng, y_spec, y, var_y, trades_y, (model.y_qty_median, model.qty_sigma))
    x_candles = _leg_candles(rng, x_spec, x, step_x**2, trades_x, (model.x_qty_median, model.qty_sigma))
    return y_candles, x_candles


def _spread_backward(model: PairModel, dt: float, zs: np.ndarray) -> tuple[np.ndarray, float]:
    """The spread at points 0..n (0 at the start, point n), and its variance over one candle."""
    n = len(zs)
    s = np.empty(n + 1)
    if model.mean_reverting:
        a = math.exp(-model.theta * dt)
        var_s = model.spread_sigma**2 * (1.0 - a * a)
        noise = (math.sqrt(var_s) * zs).tolist()
        value = s[n] = 0.0
        for k in range(n - 1, -1, -1):
            value = a * value + noise[k]
            s[k] = value
    else:
        var_s = model.spread_sigma**2 * 2.0 * model.theta * dt
        s[n] = 0.0
        s[:n] = -np.cumsum(math.sqrt(var_s) * zs)[::-1]
    return s, var_s


def _leg_candles(
    rng: np.random.Generator,
    spec: SymbolSpec,
    path: np.ndarray,
    var_bar: float,
    mean_trades: float,
    sizes: tuple[float, float],
) -> Candles:
    """Candles of one leg whose opens and closes follow ``path`` (one more point than candles).

    Highs and lows are drawn as the extremes of a Brownian bridge from the open
    to the close with variance ``var_bar``; trades per candle are Poisson with
    mean ``mean_trades`` (at least one), volumes the sum of that many trade
    sizes, lognormal with ``sizes`` = (median, sigma) (gamma approximation).
    """
    qty_median, qty_sigma = sizes
    n = len(path) - 1
    tick = spec.tick_size
    o, c = path[:-1], path[1:]
    # Extremes of a Brownian bridge from o to c with variance var_bar:
    # P(max > m) = exp(-2 (m - o)(m - c) / var_bar).
    gap2 = (o - c) ** 2
    high = (o + c + np.sqrt(gap2 + 2.0 * var_bar * rng.exponential(1.0, n))) / 2.0
    low = (o + c - np.sqrt(gap2 + 2.0 * var_bar * rng.exponential(1.0, n))) / 2.0
    o, high, low, c = (np.maximum(round_to_grid(v, tick), tick) for v in (o, high, low, c))
    trades = np.maximum(rng.poisson(mean_trades, n), 1)
    # The sum of ``trades`` lognormal sizes has mean trades * mean and a squared
    # CV of (e^(sigma^2) - 1) / trades.
    cv2 = (math.exp(qty_sigma**2) - 1.0) / trades
    mean = qty_median * math.exp(qty_sigma**2 / 2.0)
    volume = rng.gamma(1.0 / cv2, mean * trades * cv2)
    volume = np.maximum(round_to_grid(volume, spec.step_size), spec.step_size)
    quote = volume * (o + high + low + c) / 4.0
    return Candles(o, high, low, c, volume, quote, trades.astype(np.int64))
