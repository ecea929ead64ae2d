"""The offline exchange's universe: many USDT perpetuals with klines, some cointegrated by construction.

With a universe of N symbols (``Simulator(universe=N)``), the exchange lists
the scenario's traded pair (BTCUSDT, ETHUSDT) and N - 2 more symbols: real
names first (``UNIVERSE_NAMES``, SOLUSDT, BNBUSDT, XRPUSDT...), made-up ones
beyond. They do not trade: they have klines (1m to 1h, over any past range
from the listing date to now), funding rates and a 24 h ticker, with quote
volumes that rank BTC and ETH first and the rest in a fixed order per seed.

Their prices are seeded and planted with structure (``universe_plan``): a few
groups of 2 or 3 symbols are cointegrated by construction, every other symbol
is an independent random walk. In a group, the first symbol (its leader)
walks; each other member is ``alpha + beta * leader + s``, ``s`` an
Ornstein-Uhlenbeck spread with the group's half-life. So every pair within a
group is cointegrated (two members: ``y1 - (beta1 / beta2) * y2`` is again an
OU process with that half-life) and no pair across groups is: ``planted``
lists them, hedge ratios and half-lives included, for a screener's recall and
false discoveries to be scored.

Prices are functions of absolute time, not of when the exchange started: a
log random walk (pulled back to its level with a half-life of 30 days, so it
never strays to zero over years) and the spreads are drawn on a coarse path,
one point a day from the start of the listing day, and filled in minute by
minute a day at a time (a bridge between the day's two points, from a
generator of its own). A range anywhere in the past costs only its own days,
and an exchange restarted with the same seed serves the same history: bars
stored on one run are topped up on the next without a seam. Longer candles
are the 1m ones aggregated, so the 5m close is the fifth 1m close.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .klines import INTERVALS, Candles, Run, candles_joined, candles_slice, choose_runs, clip_runs, kline_rows
from .prehistory import PREHISTORY_INTERVALS, _bridge, _leg_candles
from .symbols import SymbolSpec, symbol_spec

MINUTE_MS = 60_000
DAY_MINUTES = 1440
DAY_MS = DAY_MINUTES * MINUTE_MS

#: The size of universe ``make demo`` serves (and a screener's default top N).
UNIVERSE_DEFAULT = 30
#: The largest universe the exchange serves.
UNIVERSE_LIMIT = 1000

#: Real-looking names, after the traded pair, roughly in Binance's order of volume.
UNIVERSE_NAMES = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "LINKUSDT",
    "AVAXUSDT",
    "SUIUSDT",
    "LTCUSDT",
    "DOTUSDT",
    "BCHUSDT",
    "TRXUSDT",
    "NEARUSDT",
    "APTUSDT",
    "ARBUSDT",
    "OPUSDT",
    "FILUSDT",
    "ATOMUSDT",
    "UNIUSDT",
    "AAVEUSDT",
    "INJUSDT",
    "ETCUSDT",
    "TIAUSDT",
    "SEIUSDT",
    "WLDUSDT",
    "HBARUSDT",
    "XLMUSDT",
    "ICPUSDT",
)
#: Their price levels (USDT), so the grids and the charts look familiar.
_PRICE_LEVELS = {
    "BTCUSDT": 62000.0,
    "ETHUSDT": 3000.0,
    "SOLUSDT": 150.0,
    "BNBUSDT": 600.0,
    "XRPUSDT": 0.6,
    "DOGEUSDT": 0.15,
    "ADAUSDT": 0.45,
    "LINKUSDT": 15.0,
    "AVAXUSDT": 30.0,
    "SUIUSDT": 1.5,
    "LTCUSDT": 80.0,
    "DOTUSDT": 6.0,
    "BCHUSDT": 400.0,
    "TRXUSDT": 0.12,
    "NEARUSDT": 5.0,
    "APTUSDT": 8.0,
    "ARBUSDT": 0.8,
    "OPUSDT": 1.8,
    "FILUSDT": 4.5,
    "ATOMUSDT": 7.0,
    "UNIUSDT": 8.0,
    "AAVEUSDT": 150.0,
    "INJUSDT": 20.0,
    "ETCUSDT": 22.0,
    "TIAUSDT": 6.0,
    "SEIUSDT": 0.4,
    "WLDUSDT": 2.2,
    "HBARUSDT": 0.08,
    "XLMUSDT": 0.1,
    "ICPUSDT": 9.0,
}
# Made-up names beyond the real ones: two syllables, in an order that looks random.
_CONSONANTS = "BDFGKLMNPRSTVZ"
_VOWELS = "AEIOU"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]
_MADE_UP = len(_SYLLABLES) ** 2

#: 24 h quote volumes (USDT) of the top two; the others fall off as rank^-1.1 below ETH's.
_BTC_VOLUME = 12e9
_ETH_VOLUME = 6e9
#: A trade's mean size in USDT, which makes a ticker's trade count from its volume.
_TRADE_NOTIONAL = 2_500.0

#: Half-lives of the planted groups' spreads, in minutes, by group (cycled): short
#: enough that 1,000 closed 1m bars (about 17 hours) show them, by a wide margin.
GROUP_HALF_LIVES_MIN = (5.0, 8.0, 12.0)
#: Sizes of the planted groups, by group (cycled).
GROUP_SIZES = (3, 2, 2)
#: Extra symbols per planted group beyond the first (30 symbols: 3 groups).
_SYMBOLS_PER_GROUP = 9
#: Half-life of the pull of each log price back to its level (the walks never stray to zero).
LEVEL_HALF_LIFE_MIN = 30 * DAY_MINUTES

_TAG_PLAN = 0x504C414E
_TAG_WALK = 0x57414C4B
_TAG_SPREAD = 0x53505244
_TAG_CANDLES = 0x43414E44
_TAG_COARSE = 0x43525345
_TAG_VOLUME = 0x564F4C55
# Coarse points drawn at a time, each chunk from a generator of its own.
_COARSE_CHUNK = 256
# Days of 1m candles kept built (a page of 1,000 5m candles spans four).
_DAYS_KEPT = 256


class PlantedPair(NamedTuple):
    """A pair cointegrated by construction: ``symbol_a = alpha + hedge_ratio * symbol_b + s``.

    ``s`` is an Ornstein-Uhlenbeck process with ``half_life`` seconds and a
    stationary standard deviation of ``spread_sigma`` (in ``symbol_a``'s
    price units). Read the other way round, the hedge ratio is ``1 / hedge_ratio``.
    """

    symbol_a: str
    symbol_b: str
    hedge_ratio: float
    half_life: float
    spread_sigma: float

    @property
    def key(self) -> frozenset[str]:
        """The unordered pair."""
        return frozenset((self.symbol_a, self.symbol_b))


@dataclasses.dataclass(frozen=True)
class Member:
    """How one non-traded symbol's price is made.

    ``leader`` None: ``level * exp(w)``, ``w`` its own log walk. Otherwise
    ``alpha + beta * price(leader) + s``, ``s`` an OU spread of ``half_life``
    minutes and standard deviation ``spread_sigma``.
    """

    symbol: str
    level: float
    volatility: float  # of the log walk, per square-root minute
    leader: str | None = None
    alpha: float = 0.0
    beta: float = 0.0
    half_life: float = 0.0
    spread_sigma: float = 0.0


@dataclasses.dataclass(frozen=True)
class UniversePlan:
    """The universe of ``universe_plan``: its names (by rank), how each price is made, what is planted."""

    names: tuple[str, ...]
    traded: tuple[str, ...]
    members: dict[str, Member]
    groups: tuple[tuple[str, ...], ...]
    quote_volumes: dict[str, float]

    @property
    def planted(self) -> list[PlantedPair]:
        """Every pair within a group, ``symbol_a`` the later member (a leader is always ``symbol_b``)."""
        pairs = []
        for group in self.groups:
            for i, b in enumerate(group):
                for a in group[i + 1 :]:
                    pairs.append(self._pair(a, b))
        return pairs

    def _pair(self, a: str, b: str) -> PlantedPair:
        ma, mb = self.members[a], self.members[b]
        minutes = ma.half_life
        if mb.leader is None:  # b leads: a = alpha + beta * b + s_a
            return PlantedPair(a, b, ma.beta, minutes * 60.0, ma.spread_sigma)
        ratio = ma.beta / mb.beta  # a - ratio * b = const + s_a - ratio * s_b
        sigma = math.hypot(ma.spread_sigma, ratio * mb.spread_sigma)
        return PlantedPair(a, b, ratio, minutes * 60.0, sigma)


def universe_names(n: int, traded: Sequence[str] = ("BTCUSDT", "ETHUSDT")) -> list[str]:
    """The ``n`` symbols of a universe: ``traded`` first, then ``UNIVERSE_NAMES``, then made-up ones."""
    if not 0 <= n <= UNIVERSE_LIMIT:
        raise ValueError(f"a universe has 0 to {UNIVERSE_LIMIT} symbols, not {n}")
    names = list(dict.fromkeys(traded))[:n]
    for name in UNIVERSE_NAMES:
        if len(names) >= n:
            return names
        if name not in names:
            names.append(name)
    k = 0
    while len(names) < n:
        # A bijection of 0.._MADE_UP - 1 (the multiplier is prime to it): no name twice.
        j = (k * 1_103) % _MADE_UP
        name = _SYLLABLES[j // len(_SYLLABLES)] + _SYLLABLES[j % len(_SYLLABLES)] + "USDT"
        if name not in names:
            names.append(name)
        k += 1
    return names


def universe_plan(seed: int, n: int, traded: Sequence[str] = ("BTCUSDT", "ETHUSDT")) -> UniversePlan:
    """The universe of ``n`` symbols for ``seed``: names, volumes, price models and planted groups.

    The symbols after ``traded`` get ``max(1, extra // 9)`` groups when there
    are at least 2 of them (30 symbols: 3 groups), of ``GROUP_SIZES`` members
    (3, 2, 2, 3...) drawn at random among them; half-lives ``GROUP_HALF_LIVES_MIN``.
    A member's hedge ratio on its leader makes its price its own level when
    the leader is at its own (``alpha`` within 20 % of the level), its
    spread's standard deviation is 0.2 to 0.4 % of its level. Log walks move
    3 to 7 % a day. Deterministic per seed and ``n``.
    """
    names = universe_names(n, traded)
    traded_here = tuple(s for s in traded if s in names)
    extra = [s for s in names if s not in traded_here]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _TAG_PLAN, n]))
    members: dict[str, Member] = {}
    for symbol in extra:
        level = _price_level(symbol)
        daily = rng.uniform(0.03, 0.07)
        members[symbol] = Member(symbol, level, daily / math.sqrt(DAY_MINUTES))
    groups: list[tuple[str, ...]] = []
    if len(extra) >= 2:
        count = max(1, len(extra) // _SYMBOLS_PER_GROUP)
        order = [extra[i] for i in rng.permutation(len(extra))]
        for g in range(count):
            size = min(GROUP_SIZES[g % len(GROUP_SIZES)], len(order))
            if size < 2:
                break
            group, order = tuple(order[:size]), order[size:]
            groups.append(group)
            leader = members[group[0]]
            half_life = GROUP_HALF_LIVES_MIN[g % len(GROUP_HALF_LIVES_MIN)]
            for symbol in group[1:]:
                member = members[symbol]
                c = rng.uniform(-0.2, 0.2)  # alpha as a share of the level
                members[symbol] = dataclasses.replace(
                    member,
                    leader=leader.symbol,
                    alpha=c * member.level,
                    beta=(1.0 - c) * member.level / leader.level,
                    half_life=half_life,
                    spread_sigma=rng.uniform(0.002, 0.004) * member.level,
                )
    volumes = _quote_volumes(seed, names)
    return UniversePlan(tuple(names), traded_here, members, tuple(groups), volumes)


def planted_pairs(seed: int, n: int, traded: Sequence[str] = ("BTCUSDT", "ETHUSDT")) -> list[PlantedPair]:
    """The pairs of a universe of ``n`` symbols cointegrated by construction (``universe_plan(...).planted``).

    The traded pair is not among them: it is cointegrated when the scenario
    is (``cointegrated``, not ``random_walk``), and ``Simulator.planted`` adds it then.
    """
    return universe_plan(seed, n, traded).planted


def default_quote_volume(symbol: str) -> float:
    """The 24 h quote volume of a symbol outside any universe: BTC's and ETH's, else a small one by name."""
    if symbol == "BTCUSDT":
        return _BTC_VOLUME
    if symbol == "ETHUSDT":
        return _ETH_VOLUME
    return 1e7 * (1 + zlib.crc32(symbol.encode()) % 100)


def _quote_volumes(seed: int, names: Sequence[str]) -> dict[str, float]:
    """BTC and ETH first, the others by rank, rank^-1.1 below ETH with a seeded jitter of up to 30 %."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _TAG_VOLUME]))
    jitter = np.exp(np.clip(0.15 * rng.standard_normal(max(len(names), 1)), -0.3, 0.3))
    volumes = {}
    for rank, name in enumerate(names):
        if name in ("BTCUSDT", "ETHUSDT"):
            volumes[name] = default_quote_volume(name)
        else:
            volumes[name] = round(_ETH_VOLUME * 0.6 * max(rank, 2) ** -1.1 * float(jitter[rank]), 2)
    return volumes


def _price_level(symbol: str) -> float:
    """The level a symbol's price is drawn around: a familiar one, else 0.01 to 100 by name."""
    level = _PRICE_LEVELS.get(symbol)
    if level is not None:
        return level
    u = (zlib.crc32(symbol.encode()) % 10_000) / 10_000
    return float(f"{10 ** (-2 + 4 * u):.4g}")


def universe_spec(symbol: str, level: float, *, id_offset: int = 0) -> SymbolSpec:
    """``symbol``'s grid for a price near ``level``: about five significant digits, a lot worth a few USDT."""
    tick_exp = math.floor(math.log10(level)) - 4
    step_exp = min(3, math.floor(math.log10(5.0 / level)))
    spec = symbol_spec(symbol, id_offset=id_offset)
    return dataclasses.replace(
        spec,
        tick_size=float(f"1e{tick_exp}"),
        step_size=float(f"1e{step_exp}"),
        price_precision=max(0, -tick_exp),
        quantity_precision=max(0, -step_exp),
    )


class UniverseMarket:
    """The non-traded symbols of a universe: their specs, klines and 24 h figures (see the module).

    ``epoch`` (ms, a whole day) is where every path starts: the listing day.
    """

    def __init__(self, plan: UniversePlan, *, seed: int, epoch: int) -> None:
        if epoch % DAY_MS:
            raise ValueError("the universe's epoch is a whole day")
        self.plan = plan
        self.seed = seed
        self.epoch = epoch
        self.specs = {s: universe_spec(s, m.level) for s, m in plan.members.items()}
        self._coarse: dict[tuple[str, int], list[float]] = {}
        self._days: OrderedDict[tuple[str, int], Candles] = OrderedDict()
        self._paths: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()

    @property
    def symbols(self) -> list[str]:
        """The symbols it makes the klines of (the universe's, less the traded ones)."""
        return list(self.specs)

    # -- klines --------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_time: int | None,
        end_time: int | None,
        limit: int,
        now_ms: int,
        first_open: int,
    ) -> list[list[Any]]:
        """``symbol``'s klines as ``Exchange.klines`` answers them: from ``first_open`` to the one holding now.

        Intervals of ``prehistory.PREHISTORY_INTERVALS`` (1m to 1h); none at any other.
        """
        if interval not in PREHISTORY_INTERVALS:
            return []
        width = INTERVALS[interval]
        first = max(-(-first_open // width) * width, self.epoch)
        last = now_ms // width * width
        if last < first:
            return []
        runs = clip_runs([Run(first, last, True)], width, start_time, end_time)
        chosen = choose_runs(runs, width, limit, from_start=start_time is not None)
        if not chosen:
            return []
        (run,) = chosen
        count = (run.last - run.first) // width + 1
        candles = self.candles(symbol, run.first, count, width)
        return kline_rows(self.specs[symbol], range(run.first, run.last + 1, width), candles, width)

    def candles(self, symbol: str, first_open: int, count: int, width: int = MINUTE_MS) -> Candles:
        """``count`` candles of ``symbol`` of ``width`` ms from ``first_open`` (a multiple of it, from the epoch on)."""
        per = width // MINUTE_MS
        minute = (first_open - self.epoch) // MINUTE_MS
        minutes = self._minutes(symbol, minute, count * per)
        if per == 1:
            return minutes
        shape = (count, per)
        return Candles(
            minutes.opens.reshape(shape)[:, 0],
            minutes.highs.reshape(shape).max(axis=1),
            minutes.lows.reshape(shape).min(axis=1),
            minutes.closes.reshape(shape)[:, -1],
            minutes.volume.reshape(shape).sum(axis=1),
            minutes.quote.reshape(shape).sum(axis=1),
            minutes.trades.reshape(shape).sum(axis=1),
        )

    def _minutes(self, symbol: str, minute: int, count: int) -> Candles:
        """The 1m candles ``minute`` .. ``minute + count - 1`` (minutes since the epoch)."""
        parts = []
        while count > 0:
            day, k = divmod(minute, DAY_MINUTES)
            take = min(count, DAY_MINUTES - k)
            parts.append(candles_slice(self._day(symbol, day), k, k + take))
            minute += take
            count -= take
        return parts[0] if len(parts) == 1 else candles_joined(parts)

    def _day(self, symbol: str, day: int) -> Candles:
        key = (symbol, day)
        candles = self._days.get(key)
        if candles is not None:
            self._days.move_to_end(key)
            return candles
        candles = self._days[key] = self._build_day(symbol, day)
        if len(self._days) > _DAYS_KEPT:
            self._days.popitem(last=False)
        return candles

    def _build_day(self, symbol: str, day: int) -> Candles:
        """Day ``day``'s 1m candles of ``symbol``: the price at each minute's start and end, candles around it."""
        member = self.plan.members[symbol]
        spec = self.specs[symbol]
        if member.leader is None:
            price = member.level * np.exp(self._path(symbol, _TAG_WALK, day))
            var_bar = (member.volatility * price[:-1]) ** 2
        else:
            leader = self.plan.members[member.leader]
            x = leader.level * np.exp(self._path(leader.symbol, _TAG_WALK, day))
            price = member.alpha + member.beta * x + self._path(symbol, _TAG_SPREAD, day)
            a = 0.5 ** (1.0 / member.half_life)
            var_bar = (member.beta * leader.volatility * x[:-1]) ** 2 + member.spread_sigma**2 * (1.0 - a * a)
        price = np.maximum(price, spec.tick_size)
        volume = self.plan.quote_volumes.get(symbol, 0.0)
        trades_a_day = max(volume / _TRADE_NOTIONAL, DAY_MINUTES)
        qty_sigma = 1.0
        median = _TRADE_NOTIONAL / member.level / math.exp(qty_sigma**2 / 2.0)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _crc(symbol), _TAG_CANDLES, day]))
        return _leg_candles(rng, spec, price, var_bar, trades_a_day / DAY_MINUTES, (median, qty_sigma))

    # -- the latent paths ------------------------------------------------------------

    def _path(self, symbol: str, tag: int, day: int) -> np.ndarray:
        """``symbol``'s walk (``_TAG_WALK``: its log price less its level's) or spread at each minute of ``day``.

        ``DAY_MINUTES + 1`` points: the day's start to the next day's start.
        """
        key = (symbol, tag, day)
        path = self._paths.get(key)
        if path is not None:
            self._paths.move_to_end(key)
            return path
        a, step, _ = self._law(symbol, tag)
        coarse = self._coarse_through(symbol, tag, day + 1)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _crc(symbol), tag, day]))
        noise = step * rng.standard_normal(DAY_MINUTES)
        # The walk's pull is negligible within a day: a random walk's bridge there.
        path = _bridge(coarse[day], coarse[day + 1], noise, 1.0 if tag == _TAG_WALK else a)
        self._paths[key] = path
        if len(self._paths) > 2 * _DAYS_KEPT:
            self._paths.popitem(last=False)
        return path

    def _law(self, symbol: str, tag: int) -> tuple[float, float, float]:
        """The AR(1) a minute of ``symbol``'s walk or spread: coefficient, step, stationary deviation."""
        member = self.plan.members[symbol]
        if tag == _TAG_WALK:
            a = 0.5 ** (1.0 / LEVEL_HALF_LIFE_MIN)
            return a, member.volatility, member.volatility / math.sqrt(1.0 - a * a)
        a = 0.5 ** (1.0 / member.half_life)
        return a, member.spread_sigma * math.sqrt(1.0 - a * a), member.spread_sigma

    def _coarse_through(self, symbol: str, tag: int, day: int) -> list[float]:
        """The path at each day's start, from the epoch's through ``day``'s (drawn a chunk at a time)."""
        key = (symbol, tag)
        points = self._coarse.get(key)
        if points is None:
            a, _, sd = self._law(symbol, tag)
            # The walk starts at its level; a spread anywhere in its stationary law.
            start = 0.0 if tag == _TAG_WALK else sd * float(self._rng(symbol, tag, -1).standard_normal())
            points = self._coarse[key] = [start]
        a, _, sd = self._law(symbol, tag)
        a_day = a**DAY_MINUTES
        sd_day = sd * math.sqrt(1.0 - a_day * a_day)
        while len(points) <= day:
            chunk = (len(points) - 1) // _COARSE_CHUNK
            value = points[-1]
            for z in self._rng(symbol, tag, chunk).standard_normal(_COARSE_CHUNK).tolist():
                value = a_day * value + sd_day * z
                points.append(value)
        return points

    def _rng(self, symbol: str, tag: int, chunk: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, _crc(symbol), tag, _TAG_COARSE, chunk + 1]))

    # -- the 24 h ticker ----------------------------------------------------------------

    def quote_volume(self, symbol: str) -> float:
        return self.plan.quote_volumes.get(symbol, default_quote_volume(symbol))


def trade_count(quote_volume: float) -> int:
    """A ticker's trades in 24 h for ``quote_volume`` (a trade is worth ``_TRADE_NOTIONAL`` on average)."""
    return int(quote_volume / _TRADE_NOTIONAL)


def _crc(symbol: str) -> int:
    return zlib.crc32(symbol.encode())
