"""The offline exchange's universe: its symbols, tickers and klines, and the structure planted in them.

No database: the exchange is asked over loopback with httpx, or read from its memory.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
import websockets
from statsmodels.tsa.stattools import coint

from ingestion.binance import (
    USED_WEIGHT_HEADER,
    normalize_symbol,
    parse_exchange_info,
    parse_frame,
    parse_rest_funding_rates,
    parse_rest_klines,
    parse_rest_tickers,
    universe_top,
)
from ingestion.simulator import (
    LISTED_SINCE_MS,
    UNIVERSE_NAMES,
    Exchange,
    PlantedPair,
    Simulator,
    UniverseMarket,
    planted_pairs,
    universe_names,
    universe_plan,
)
from ingestion.simulator.rest import request_weight
from ingestion.simulator.universe import DAY_MS, MINUTE_MS

#: A fixed past moment the windows end at, so what is checked is the same on every run.
END = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() * 1000)
#: The window the screener tests a pair on: 1,000 closed 1m bars.
W = 1000


def market(seed: int, n: int = 30) -> UniverseMarket:
    return UniverseMarket(universe_plan(seed, n), seed=seed, epoch=LISTED_SINCE_MS // DAY_MS * DAY_MS)


def closes(m: UniverseMarket, symbol: str, end: int = END, count: int = W) -> np.ndarray:
    return m.candles(symbol, end - count * MINUTE_MS, count).closes


# -- the plan ----------------------------------------------------------------------


def test_the_universe_names_the_pair_then_real_looking_symbols_then_made_up_ones():
    assert universe_names(5) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
    assert universe_names(30) == list(UNIVERSE_NAMES)
    many = universe_names(500)
    assert many[:30] == list(UNIVERSE_NAMES) and len(set(many)) == 500
    assert all(normalize_symbol(s) == s and s.endswith("USDT") for s in many)
    # Another traded pair comes first, and is not named twice.
    assert universe_names(4, ("SOLUSDT", "AVAXUSDT")) == ["SOLUSDT", "AVAXUSDT", "BTCUSDT", "ETHUSDT"]
    with pytest.raises(ValueError):
        universe_names(1001)


def test_a_seed_plants_a_few_groups_whose_pairs_are_all_cointegrated():
    plan = universe_plan(7, 30)
    assert [len(g) for g in plan.groups] == [3, 2, 2]
    grouped = [s for g in plan.groups for s in g]
    assert len(set(grouped)) == 7 and not {"BTCUSDT", "ETHUSDT"} & set(grouped)
    pairs = plan.planted
    assert [p.key for p in pairs] == [frozenset(c) for g in plan.groups for c in itertools.combinations(g, 2)]
    assert [p.half_life for p in pairs] == [300.0, 300.0, 300.0, 480.0, 720.0]
    assert all(p.hedge_ratio > 0 and p.spread_sigma > 0 for p in pairs)
    # Deterministic per seed; another seed, other groups.
    assert planted_pairs(7, 30) == pairs and planted_pairs(8, 30) != pairs
    assert len(universe_plan(7, 100).groups) == 10 and universe_plan(7, 3).groups == ()


def test_a_member_is_its_hedge_ratio_times_its_leader_and_a_spread():
    """``a - hedge_ratio * b`` stays near a constant, with about the spread's deviation."""
    m = market(7)
    for pair in m.plan.planted:
        spread = closes(m, pair.symbol_a) - pair.hedge_ratio * closes(m, pair.symbol_b)
        assert 0.5 < spread.std() / pair.spread_sigma < 1.6


def test_the_planted_pairs_are_detected_and_the_independent_walks_are_not():
    """For 1,000 closed 1m bars, Engle-Granger finds a planted pair of each group both ways; independent ones, not.

    Two seeds and a handful of pairs, so it stays quick. Over 8 seeds and
    every pair, the planted ones all came out under 0.001 both ways, and the
    independent ones about uniform (a median near 0.5, 1 % of them under 0.01).
    """
    planted, independent = [], []
    for seed in (3, 11):
        m = market(seed)
        one_a_group = {p.half_life: p for p in m.plan.planted}.values()
        for pair in one_a_group:
            a, b = closes(m, pair.symbol_a), closes(m, pair.symbol_b)
            planted.append(max(coint(a, b)[1], coint(b, a)[1]))
        grouped = {s for g in m.plan.groups for s in g}
        free = [s for s in m.symbols if s not in grouped][:4]
        independent += [coint(closes(m, x), closes(m, y))[1] for x, y in itertools.combinations(free, 2)]
    assert len(planted) == 6 and max(planted) < 0.01
    assert len(independent) == 12 and min(independent) > 0.01 and np.median(independent) > 0.2, independent


def test_prices_are_a_function_of_time_not_of_when_the_exchange_started():
    """A restarted exchange serves the same history: bars stored on one run carry on on the next."""
    a, b = market(5), market(5)
    first = END - 3 * DAY_MS + 17 * MINUTE_MS
    b.candles("SOLUSDT", END - 400 * DAY_MS, 10)  # b has drawn other days first
    for symbol in ("SOLUSDT", "XRPUSDT", universe_plan(5, 30).groups[0][1]):
        left, right = a.candles(symbol, first, 3000), b.candles(symbol, first, 3000)
        assert all(np.array_equal(x, y) for x, y in zip(left, right, strict=True))
    assert not np.array_equal(market(6).candles("SOLUSDT", first, 10).closes, a.candles("SOLUSDT", first, 10).closes)


def test_5m_candles_are_the_1m_ones_aggregated():
    m = market(4)
    first = END - DAY_MS - 5 * MINUTE_MS  # across a day's end
    one, five = m.candles("LINKUSDT", first, 20), m.candles("LINKUSDT", first, 4, 5 * MINUTE_MS)
    assert np.array_equal(five.closes, one.closes[4::5]) and np.array_equal(five.opens, one.opens[::5])
    assert np.array_equal(five.highs, one.highs.reshape(4, 5).max(axis=1))
    assert np.array_equal(five.trades, one.trades.reshape(4, 5).sum(axis=1))
    prices = np.concatenate([one.opens, one.highs, one.lows, one.closes])
    assert (one.lows <= np.minimum(one.opens, one.closes)).all() and (one.highs >= one.lows).all()
    assert np.isfinite(prices).all() and (prices > 0).all()


# -- over REST ---------------------------------------------------------------------


async def test_the_exchange_lists_and_ranks_a_universe_and_serves_its_klines_and_funding():
    async with Simulator(port=0, rate=50, seed=7, universe=30) as sim:
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            info = (await http.get("/fapi/v1/exchangeInfo")).json()
            everything = await http.get("/fapi/v1/ticker/24hr")
            again = parse_rest_tickers((await http.get("/fapi/v1/ticker/24hr")).json())
            one = await http.get("/fapi/v1/ticker/24hr", params={"symbol": "SOLUSDT"})
            unknown = await http.get("/fapi/v1/ticker/24hr", params={"symbol": "FOOUSDT"})
            params = {"symbol": "SOLUSDT", "interval": "5m", "startTime": END, "limit": 12}
            klines = parse_rest_klines((await http.get("/fapi/v1/klines", params=params)).json())
            params = {"symbol": "SOLUSDT", "startTime": END, "endTime": END + DAY_MS - 1}
            funding = parse_rest_funding_rates((await http.get("/fapi/v1/fundingRate", params=params)).json())
            trades = await http.get("/fapi/v1/aggTrades", params={"symbol": "SOLUSDT"})
            second = await http.get("/fapi/v1/klines", params={"symbol": "SOLUSDT", "interval": "1s"})
        assert sim.exchange.symbols == ["BTCUSDT", "ETHUSDT"]  # only the pair trades
    entries = {s["symbol"]: s for s in info["symbols"]}
    assert list(entries) == list(UNIVERSE_NAMES)
    assert {(s["status"], s["contractType"], s["quoteAsset"]) for s in entries.values()} == {
        ("TRADING", "PERPETUAL", "USDT")
    }
    assert [f["filterType"] for f in entries["XRPUSDT"]["filters"]] == ["PRICE_FILTER", "LOT_SIZE"]
    assert entries["XRPUSDT"]["filters"][0]["tickSize"] == "0.00001"
    tickers = parse_rest_tickers(everything.json())
    assert tickers == [t._replace(close_time=tickers[0].close_time) for t in tickers]  # all at the same time
    infos = parse_exchange_info(info)
    top = universe_top(infos, tickers, 30)
    assert top[:2] == ["BTCUSDT", "ETHUSDT"] and sorted(top) == sorted(UNIVERSE_NAMES)
    assert universe_top(infos, again, 30) == top  # the order holds
    assert int(everything.headers[USED_WEIGHT_HEADER]) >= 40 and USED_WEIGHT_HEADER in one.headers
    assert (request_weight("/fapi/v1/ticker/24hr", {}), request_weight("/fapi/v1/ticker/24hr", {"symbol": "X"})) == (
        40,
        1,
    )
    (sol,) = parse_rest_tickers(one.json())
    assert sol.symbol == "SOLUSDT" and sol.quote_volume == sim.exchange.universe.quote_volume("SOLUSDT")
    assert (unknown.status_code, unknown.json()["code"]) == (400, -1121)
    assert [k.open_time for k in klines] == list(range(END, END + 12 * 5 * MINUTE_MS, 5 * MINUTE_MS))
    assert [f.funding_time for f in funding] == [END, END + 8 * 3_600_000, END + 16 * 3_600_000]
    assert all(f.mark_price is not None and 0 < f.mark_price for f in funding)
    assert (trades.json(), second.json()) == ([], [])


async def test_the_pair_trades_live_as_without_a_universe():
    """The market opens once both legs are subscribed, the universe's symbols (which never trade) unheard of."""
    streams = "stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"
    seen = {}
    for universe in (0, 30):
        async with Simulator(port=0, rate=400, seed=9, universe=universe, start_on_subscribe=True) as sim:
            async with websockets.connect(f"{sim.ws_url}/{streams}", open_timeout=2) as ws:
                ticks = []
                while len(ticks) < 50:
                    tick = parse_frame(await ws.recv())
                    if tick is not None:
                        ticks.append(tick)
        seen[universe] = [(t.symbol, t.price, t.quantity) for t in ticks]
    assert seen[30] == seen[0]


def test_the_pair_of_the_cointegrated_scenario_is_planted_too():
    sim = Simulator(port=0, seed=7, universe=30, half_life=5, spread_sigma=5)
    btc_eth = PlantedPair("BTCUSDT", "ETHUSDT", 20.0, pytest.approx(5.0), 5.0)
    assert sim.planted == [btc_eth, *planted_pairs(7, 30)]
    assert Simulator(port=0, seed=7, scenario="random_walk", universe=30).planted == planted_pairs(7, 30)
    assert Simulator(port=0, seed=7).planted == [btc_eth._replace(half_life=pytest.approx(30.0), spread_sigma=15.0)]


def test_a_universe_symbol_can_be_delisted_and_the_size_is_bounded():
    sim = Simulator(port=0, seed=7, universe=10, delisted=["XRPUSDT", "LUNAUSDT"])
    listed = parse_exchange_info(sim.exchange.exchange_info())
    assert (listed["XRPUSDT"].status, listed["LUNAUSDT"].status, listed["SOLUSDT"].status) == (
        "SETTLING",
        "SETTLING",
        "TRADING",
    )
    sim.exchange.delist("SOLUSDT")
    assert parse_exchange_info(sim.exchange.exchange_info())["SOLUSDT"].status == "SETTLING"
    assert sim.exchange.klines("SOLUSDT", "1m", end_time=END, limit=3)  # its history stays
    for size in (1, 1001):
        with pytest.raises(ValueError, match="a universe has 2"):
            Simulator(port=0, seed=7, universe=size)
    with pytest.raises(ValueError, match="SOLUSDT cannot be both"):
        Exchange(sim.scenario.specs, universe=sim.exchange.universe, listed={"SOLUSDT": ("TRADING", "PERPETUAL")})
    assert math.isclose(sim.exchange.universe.quote_volume("BTCUSDT"), 12e9)
