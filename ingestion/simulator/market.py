"""Seeded trade generation: the scenario interface and the pair scenarios.

A scenario is a deterministic source of trades in scenario time (seconds since
the market opened); the server stamps and publishes them. ``PairScenario`` is
the ``cointegrated`` and ``random_walk`` market: BTC = alpha + beta * ETH + a
spread, drawn from one seeded generator so a seed gives the same trades however
the consumer paces them. The recorded market is ``replay.py``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from .prehistory import PREHISTORY_WIDTHS, PairPast, PastLeg
from .symbols import SymbolSpec, round_to_grid, symbol_spec


class Batch(NamedTuple):
    """Trades a scenario produced, column-wise (cheap to build and to walk).

    ``offsets`` are seconds of scenario time since the start; ``ids`` is None
    when the exchange numbers the trades.
    """

    symbols: list[str]
    offsets: list[float]
    prices: list[float]
    quantities: list[float]
    ids: list[int] | None


class Scenario(Protocol):
    """A deterministic source of trades in scenario time."""

    #: True when trades should be stamped "now" rather than by their offsets.
    unpaced: bool

    @property
    def specs(self) -> tuple[SymbolSpec, ...]:
        """The symbols it trades."""
        ...

    def take(self, until: float, limit: int) -> Batch:
        """The next trades with offset <= ``until`` seconds, at most ``limit`` of them."""
        ...

    @property
    def exhausted(self) -> bool: ...


class PairScenario:
    """Two symbols whose prices are tied: ``y = alpha + hedge_ratio * x + s``.

    ``x`` (ETH-like) is a random walk; the spread ``s`` is an Ornstein-Uhlenbeck
    process with the given half-life (``mean_reverting=True``, the
    ``cointegrated`` scenario) or a random walk with the same local volatility
    (``random_walk``: returns stay correlated, the pair is not cointegrated).
    Trades arrive as a Poisson process of ``rate`` a second, a share ``split``
    of them on ``y``. Everything is drawn from one seeded generator in fixed
    chunks, so a seed gives the same trades however the consumer paces them.

    ``prehistory`` gives the klines before the start: the same model run
    backward from the starting prices at candle resolution (see there).

    Parameters
    ----------
    rate : float
        Trades a second, both symbols together.
    seed : int or None
        Seed of the generator (None: fresh entropy).
    hedge_ratio : float
        Units of ``x`` per unit of ``y`` (beta).
    half_life : float
        Half-life of the spread in seconds.
    spread_sigma : float
        Stationary standard deviation of the spread, in ``y`` price units.
    x_start, y_start : float
        Starting prices; ``alpha`` is ``y_start - hedge_ratio * x_start``.
    x_volatility : float
        Standard deviation of ``x`` moves per square-root second, price units.
    shocks : sequence of (seconds, size)
        Jumps of ``size`` spread sigmas added to the spread at those times.
    shock_every : float or None
        Also a jump of ``shock_size`` sigmas every so many seconds, alternating
        in sign.
    """

    _CHUNK = 2048
    #: Trade sizes are lognormal(log(median), ``qty_sigma``), with a median per leg.
    qty_sigma = 1.2
    y_qty_median = 0.02
    x_qty_median = 0.3

    def __init__(
        self,
        *,
        rate: float = 50.0,
        seed: int | None = None,
        mean_reverting: bool = True,
        hedge_ratio: float = 20.0,
        half_life: float = 30.0,
        spread_sigma: float = 15.0,
        x_start: float = 3000.0,
        y_start: float = 62000.0,
        x_volatility: float = 0.35,
        shocks: Sequence[tuple[float, float]] = (),
        shock_every: float | None = None,
        shock_size: float = 4.0,
        split: float = 0.6,
        symbols: tuple[str, str] = ("BTCUSDT", "ETHUSDT"),
        id_offset: int = 0,
        first_ids: Mapping[str, int] | None = None,
    ) -> None:
        _check_options(rate, half_life, split, shock_every)
        specs = _pair_specs(symbols, id_offset, first_ids)
        self.specs = (specs[0], specs[1])
        self.unpaced = False
        self.rate = float(rate)
        self.mean_reverting = mean_reverting
        self.hedge_ratio = float(hedge_ratio)
        self.theta = math.log(2.0) / half_life
        self.spread_sigma = float(spread_sigma)
        self.alpha = y_start - hedge_ratio * x_start
        self.x_volatility = float(x_volatility)
        self.split = split
        self.x_start = float(x_start)
        self.y_start = float(y_start)
        # The pre-history has its own generators (seeded from this and the
        # interval), so asking for it never changes the trades.
        entropy = np.random.SeedSequence(seed).entropy
        assert isinstance(entropy, int)  # as the seed is (or fresh entropy for None)
        self._entropy = entropy
        self._prehistory: dict[int, PairPast] = {}
        self._rng = np.random.default_rng(seed)
        self._t = 0.0
        self._x = float(x_start)
        self._s = 0.0
        self._shocks = sorted((float(at), float(size)) for at, size in shocks)
        self._shock_every = shock_every
        self._shock_size = shock_size
        self._periodic_n = 0
        self._buf = Batch([], [], [], [], None)
        self._pos = 0

    @property
    def exhausted(self) -> bool:
        return False

    def take(self, until: float, limit: int) -> Batch:
        out = Batch([], [], [], [], None)
        while limit > 0:
            if self._pos >= len(self._buf.offsets):
                self._refill()
            buf, pos = self._buf, self._pos
            end = bisect.bisect_right(buf.offsets, until, pos, min(len(buf.offsets), pos + limit))
            if end == pos:
                break
            out.symbols.extend(buf.symbols[pos:end])
            out.offsets.extend(buf.offsets[pos:end])
            out.prices.extend(buf.prices[pos:end])
            out.quantities.extend(buf.quantities[pos:end])
            limit -= end - pos
            self._pos = end
        return out

    def prehistory(self, symbol: str, interval_ms: int) -> PastLeg | None:
        """The synthetic candles of ``symbol`` before the start, as far back as asked.

        The scenario's model at candle resolution, run backward in time from
        ``x_start`` / ``y_start`` (the last candle closes exactly there): see
        ``prehistory``. Deterministic per seed and interval; the nearest
        ``PREHISTORY_BARS`` are drawn on first use, older ones by blocks as they
        are asked for. None for other symbols and for intervals not in
        ``PREHISTORY_INTERVALS``.
        """
        y_spec, x_spec = self.specs
        if symbol not in (y_spec.symbol, x_spec.symbol) or interval_ms not in PREHISTORY_WIDTHS:
            return None
        past = self._prehistory.get(interval_ms)
        if past is None:
            past = self._prehistory[interval_ms] = PairPast(self, interval_ms, self._entropy)
        return past.legs[0] if symbol == y_spec.symbol else past.legs[1]

    # -- generation ------------------------------------------------------------

    def _refill(self) -> None:
        """Draw the next chunk of trades into the buffer ``take`` reads."""
        rng, n = self._rng, self._CHUNK
        y_spec, x_spec = self.specs
        gaps = rng.exponential(1.0 / self.rate, n)
        on_y = rng.random(n) < self.split
        zx = rng.standard_normal(n)
        zs = rng.standard_normal(n)
        qty_y = rng.lognormal(math.log(self.y_qty_median), self.qty_sigma, n)
        qty_x = rng.lognormal(math.log(self.x_qty_median), self.qty_sigma, n)

        t = self._t + np.cumsum(gaps)
        x = self._x + np.cumsum(self.x_volatility * np.sqrt(gaps) * zx)
        t_list = t.tolist()
        s_path = self._spread_path(gaps, zs, t_list)
        self._t, self._x = float(t[-1]), float(x[-1])

        y = self.alpha + self.hedge_ratio * x + s_path
        price = np.where(on_y, round_to_grid(y, y_spec.tick_size), round_to_grid(x, x_spec.tick_size))
        price = np.where(on_y, np.maximum(price, y_spec.tick_size), np.maximum(price, x_spec.tick_size))
        qty = np.where(on_y, round_to_grid(qty_y, y_spec.step_size), round_to_grid(qty_x, x_spec.step_size))
        qty = np.maximum(qty, np.where(on_y, y_spec.step_size, x_spec.step_size))
        names = [y_spec.symbol if flag else x_spec.symbol for flag in on_y.tolist()]
        self._buf = Batch(names, t_list, price.tolist(), qty.tolist(), None)
        self._pos = 0

    def _spread_path(self, gaps: np.ndarray, zs: np.ndarray, times: list[float]) -> np.ndarray:
        """The spread after each trade (``gaps`` apart, at ``times``), shocks included; advances ``_s``."""
        if self.mean_reverting:
            # Exact OU transition over each gap: s' = a s + sigma sqrt(1 - a^2) z.
            decay = np.exp(-self.theta * gaps)
            noise = self.spread_sigma * np.sqrt(1.0 - decay * decay) * zs
        else:
            decay = np.ones(len(gaps))
            noise = self.spread_sigma * np.sqrt(2.0 * self.theta * gaps) * zs
        # The recursion has a different coefficient per step; a plain loop over
        # Python floats is both exact and fast enough (~0.1 us a trade).
        s_path = np.empty(len(gaps))
        s = self._s
        shock = self._next_shock()
        for i, (a, e) in enumerate(zip(decay.tolist(), noise.tolist(), strict=True)):
            s = s * a + e
            while shock is not None and times[i] >= shock[0]:
                s += shock[1] * self.spread_sigma
                self._pop_shock(shock)
                shock = self._next_shock()
            s_path[i] = s
        self._s = s
        return s_path

    def _next_shock(self) -> tuple[float, float] | None:
        periodic = None
        if self._shock_every is not None:
            k = self._periodic_n + 1
            sign = 1.0 if k % 2 else -1.0
            periodic = (k * self._shock_every, sign * self._shock_size)
        listed = self._shocks[0] if self._shocks else None
        if listed is None or (periodic is not None and periodic[0] < listed[0]):
            return periodic
        return listed

    def _pop_shock(self, shock: tuple[float, float]) -> None:
        if self._shocks and self._shocks[0] is shock:
            self._shocks.pop(0)
        else:
            self._periodic_n += 1


def _check_options(rate: float, half_life: float, split: float, shock_every: float | None) -> None:
    """Refuse a pair scenario that cannot run (a usage error of the command, not a crash later)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    if half_life <= 0:
        raise ValueError("half_life must be positive")
    if not 0.0 < split < 1.0:
        raise ValueError("split must be between 0 and 1")
    if shock_every is not None and shock_every <= 0:
        raise ValueError("shock_every must be positive")


def _pair_specs(symbols: tuple[str, str], id_offset: int, first_ids: Mapping[str, int] | None) -> list[SymbolSpec]:
    """The specs of the pair's symbols, ids moved by ``id_offset`` or set by ``first_ids``.

    ``first_ids`` lets an exchange continue a stored sequence (``runpairs
    --simulate`` after a restart), so nothing looks missing or duplicated.
    """
    specs = [symbol_spec(symbol, id_offset=id_offset) for symbol in symbols]
    if first_ids:
        specs = [dataclasses.replace(sp, first_id=first_ids.get(sp.symbol, sp.first_id)) for sp in specs]
    return specs
