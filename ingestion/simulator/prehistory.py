"""Synthetic klines before the exchange's start: a 1m or 5m window warms up at once, a backtest has its range.

The pair scenario's model at candle resolution, run backward in time from its
starting prices (the last candle closes exactly there). aggTrades have no such
history: only klines reach back before the start.

The ``PREHISTORY_BARS`` candles nearest the start are drawn in one go
(``build_prehistory``). Beyond them the past is drawn in blocks of
``DEEP_BLOCK`` candles between the points of a coarse path (one a block), each
block from a generator of its own: a range anywhere in the past is served by
drawing its blocks and the coarse path up to them, never the candles between
it and the start. Over days and years ETH's log price and the random-walk
spread are pulled back to their starting levels with a half-life of
``DEEP_HALF_LIFE`` seconds, so prices wander as in the live market and never
reach zero.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Protocol

import numpy as np

from .klines import INTERVALS, Candles, candles_joined, candles_slice
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
#: Candles per block of the pre-history beyond the first ``PREHISTORY_BARS``.
DEEP_BLOCK = 1440
#: Half-life (s) of the pull of ETH's log price back to its start, and of the
#: random-walk spread back to 0, beyond the first ``PREHISTORY_BARS`` candles.
DEEP_HALF_LIFE = 30 * 86_400.0
# Points of the coarse path drawn at a time, each chunk from a generator of its
# own (so the path is the same however far it has been drawn).
_COARSE_CHUNK = 256
# Blocks kept built per pair and interval (a request spans three at most).
_BLOCKS_KEPT = 16
_DEEP_TAG = 0x44454550
_COARSE_TAG = 0x434F4152


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
    var_bar: float | np.ndarray,
    mean_trades: float,
    sizes: tuple[float, float],
) -> Candles:
    """Candles of one leg whose opens and closes follow ``path`` (one more point than candles).

    Highs and lows are drawn as the extremes of a Brownian bridge from the open
    to the close with variance ``var_bar`` (one for all, or one per candle); trades per candle are Poisson with
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


class PairPast:
    """Both legs' synthetic past at one interval, as far back as asked (see the module's docstring).

    ``legs`` are the ``Prehistory`` of ``y`` and of ``x``. Ages up to
    ``PREHISTORY_BARS`` are ``build_prehistory``'s candles; older ones come
    from blocks: block ``j`` (1, 2, ...) holds the ``DEEP_BLOCK`` candles of
    ages ``PREHISTORY_BARS + (j - 1) * DEEP_BLOCK + 1`` to ``PREHISTORY_BARS +
    j * DEEP_BLOCK``, drawn between points ``j`` and ``j - 1`` of the coarse
    path (point 0: where the near candles open). Deterministic per ``entropy``
    and interval.
    """

    def __init__(self, model: PairModel, interval_ms: int, entropy: int) -> None:
        self.model = model
        self.width = interval_ms
        self.entropy = entropy
        self.near = build_prehistory(model, interval_ms, entropy)
        self.legs = (PastLeg(self, 0), PastLeg(self, 1))
        dt = interval_ms / 1000.0
        span = DEEP_BLOCK * dt
        slow = math.log(2.0) / DEEP_HALF_LIFE
        # ETH's log price moves by rel_vol * sqrt(seconds) (the live walk's
        # x_volatility, relative to its starting price).
        self._rel_step = model.x_volatility / model.x_start * math.sqrt(dt)
        a_x = math.exp(-slow * span)
        sd_x = model.x_volatility / model.x_start / math.sqrt(2.0 * slow)
        self._coarse_law = [(a_x, sd_x * math.sqrt(1.0 - a_x * a_x), math.log(model.x_start))]
        if model.mean_reverting:
            self._a_s = math.exp(-model.theta * dt)
            self._step_s = model.spread_sigma * math.sqrt(1.0 - self._a_s**2)
            a_s, sd_s = math.exp(-model.theta * span), model.spread_sigma
        else:
            self._a_s = 1.0
            self._step_s = model.spread_sigma * math.sqrt(2.0 * model.theta * dt)
            a_s, sd_s = math.exp(-slow * span), model.spread_sigma * math.sqrt(model.theta / slow)
        self._coarse_law.append((a_s, sd_s * math.sqrt(1.0 - a_s * a_s), 0.0))
        y0, x0 = float(self.near[0].opens[0]), float(self.near[1].opens[0])
        self._near_opens = (y0, x0)
        # The coarse path: ETH's log price and the spread, point j being j blocks back.
        self._coarse: list[list[float]] = [[math.log(x0)], [y0 - model.alpha - model.hedge_ratio * x0]]
        self._blocks: OrderedDict[int, tuple[Candles, Candles]] = OrderedDict()

    def candles(self, leg: int, oldest: int, newest: int) -> Candles:
        """Leg ``leg``'s (0: ``y``, 1: ``x``) candles of ages ``oldest`` down to ``newest``, oldest first."""
        if not oldest >= newest >= 1:
            raise ValueError(f"ages {oldest}..{newest}: expected oldest >= newest >= 1")
        near = PREHISTORY_BARS
        parts = []
        age = oldest
        while age >= newest:
            if age > near:
                j = (age - near - 1) // DEEP_BLOCK + 1
                youngest = near + (j - 1) * DEEP_BLOCK + 1  # the block's last candle
                stop = max(newest, youngest)
                k = near + j * DEEP_BLOCK - age  # position in the block, oldest first
                parts.append(candles_slice(self._block(j)[leg], k, k + age - stop + 1))
                age = stop - 1
            else:
                parts.append(candles_slice(self.near[leg], near - age, near - newest + 1))
                age = newest - 1
        return parts[0] if len(parts) == 1 else candles_joined(parts)

    def _block(self, j: int) -> tuple[Candles, Candles]:
        block = self._blocks.get(j)
        if block is not None:
            self._blocks.move_to_end(j)
            return block
        block = self._blocks[j] = self._build_block(j)
        if len(self._blocks) > _BLOCKS_KEPT:
            self._blocks.popitem(last=False)
        return block

    def _build_block(self, j: int) -> tuple[Candles, Candles]:
        """Block ``j``'s candles of both legs: bridges between coarse points ``j`` and ``j - 1``."""
        model = self.model
        self._coarse_through(j)
        (log_x, spread) = self._coarse
        n = DEEP_BLOCK
        rng = np.random.default_rng(np.random.SeedSequence([self.entropy, self.width, _DEEP_TAG, j]))
        zx = rng.standard_normal(n)
        zs = rng.standard_normal(n)
        x = np.exp(_bridge(log_x[j], log_x[j - 1], self._rel_step * zx, 1.0))
        s = _bridge(spread[j], spread[j - 1], self._step_s * zs, self._a_s)
        y = model.alpha + model.hedge_ratio * x + s
        if j == 1:  # end exactly where the near candles open
            y[-1], x[-1] = self._near_opens
        dt = self.width / 1000.0
        step_x = self._rel_step * x[:-1]  # ETH's move over a candle, in price
        var_s = self._step_s**2
        y_spec, x_spec = model.specs
        sizes_y, sizes_x = (model.y_qty_median, model.qty_sigma), (model.x_qty_median, model.qty_sigma)
        var_y = model.hedge_ratio**2 * step_x**2 + var_s
        y_candles = _leg_candles(rng, y_spec, y, var_y, model.rate * model.split * dt, sizes_y)
        x_candles = _leg_candles(rng, x_spec, x, step_x**2, model.rate * (1.0 - model.split) * dt, sizes_x)
        return y_candles, x_candles

    def _coarse_through(self, j: int) -> None:
        """Draw the coarse path up to point ``j`` (a chunk of ``_COARSE_CHUNK`` points at a time)."""
        while len(self._coarse[0]) <= j:
            chunk = (len(self._coarse[0]) - 1) // _COARSE_CHUNK
            rng = np.random.default_rng(np.random.SeedSequence([self.entropy, self.width, _COARSE_TAG, chunk]))
            draws = rng.standard_normal((2, _COARSE_CHUNK)).tolist()
            for path, (a, sd, mean), z in zip(self._coarse, self._coarse_law, draws, strict=True):
                value = path[-1]
                for e in z:
                    value = mean + a * (value - mean) + sd * e
                    path.append(value)


class PastLeg:
    """One leg's ``Prehistory`` of a ``PairPast``: as deep as asked."""

    def __init__(self, past: PairPast, leg: int) -> None:
        self.past = past
        self.leg = leg

    @property
    def depth(self) -> None:
        return None

    def candles(self, oldest: int, newest: int) -> Candles:
        return self.past.candles(self.leg, oldest, newest)


def _bridge(start: float, end: float, noise: np.ndarray, a: float) -> np.ndarray:
    """``len(noise) + 1`` points from ``start`` to ``end``: an AR(1) pinned at both ends.

    The walk ``p[k] = a * p[k - 1] + noise[k - 1]`` from ``start`` (a random
    walk for ``a = 1``), moved by ``(end - p[n]) * w[k]`` with ``w[k]`` the
    regression of ``p[k]`` on ``p[n]`` given ``p[0]``: the exact Gaussian
    bridge, ``k / n`` for a random walk.
    """
    n = len(noise)
    k = np.arange(n + 1)
    if a >= 1.0:
        path = start + np.r_[0.0, np.cumsum(noise)]
        weights = k / n
    else:
        path = np.empty(n + 1)
        value = path[0] = start
        for i, e in enumerate(noise.tolist(), 1):
            value = a * value + e
            path[i] = value
        if a <= 0.0:
            weights = (k == n).astype(float)
        else:
            lam = -math.log(a)
            weights = np.exp(-lam * (n - k)) * np.expm1(-2.0 * lam * k) / np.expm1(-2.0 * lam * n)
    path = path + (end - path[-1]) * weights
    path[0], path[-1] = start, end
    return path
