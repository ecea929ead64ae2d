"""A screener's universe from the exchange (``universe_resolve``), against the offline exchange's universe."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ingestion.services import universe_resolve
from ingestion.simulator import Simulator
from ingestion.universe import Universe, UniverseError

TOP_5 = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


async def resolve(**kwargs) -> Universe:
    return await asyncio.to_thread(universe_resolve, **kwargs)


async def test_the_top_n_are_the_usdt_perpetuals_with_the_largest_volume_and_symbols_can_be_named():
    async with Simulator(port=0, rate=50, seed=7, universe=30) as sim:
        top = await resolve(top=5, rest_url=sim.rest_url)
        every = await resolve(rest_url=sim.rest_url)
        named = await resolve(symbols=["solusdt", "BTCUSDT", " SOLUSDT", "ICPUSDT"], rest_url=sim.rest_url)
        tickers = sim.exchange.tickers_24hr()
    assert top.symbols == TOP_5 and top.skipped == {}
    volumes = {row["symbol"]: float(row["quoteVolume"]) for row in tickers}
    assert top.quote_volumes == {s: volumes[s] for s in TOP_5}
    assert len(every.symbols) == 30 and every.symbols[:5] == TOP_5
    assert list(every.quote_volumes.values()) == sorted(every.quote_volumes.values(), reverse=True)
    assert named == Universe(("SOLUSDT", "BTCUSDT", "ICPUSDT"), {}, {})


async def test_what_is_not_a_tradable_symbol_is_refused_by_name():
    async with Simulator(port=0, rate=50, seed=7, universe=10, delisted=["LUNAUSDT"]) as sim:
        with pytest.raises(UniverseError) as raised:
            await resolve(symbols=["BTCUSDT", "FOOUSDT", "XRPUSD", "LUNAUSDT"], rest_url=sim.rest_url)
        with pytest.raises(UniverseError, match="BTC-USDT' is not a symbol"):
            await resolve(symbols=["BTCUSDT", "BTC-USDT"], rest_url=sim.rest_url)
    assert str(raised.value) == (
        "these symbols cannot be screened: FOOUSDT is not a symbol of Binance USD-M futures;"
        " XRPUSD is not a symbol of Binance USD-M futures (did you mean XRPUSDT?);"
        " LUNAUSDT is not trading on the exchange (status SETTLING)"
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"top": 500}, "a universe of 500 symbols is too large: at most 200 are screened"),
        ({"top": 1}, "at least 2 symbols to make a pair: ask for the top 2 or more, not 1"),
        ({"symbols": ["BTCUSDT", "btcusdt"]}, "at least 2 symbols to make a pair; only BTCUSDT was given"),
        ({"symbols": []}, "at least 2 symbols to make a pair; none was given"),
        ({"symbols": [f"S{i}USDT" for i in range(201)]}, "201 symbols is too large.* 201 would make 20,100"),
    ],
)
def test_a_universe_too_small_or_too_large_is_refused_before_asking_the_exchange(kwargs, message):
    with pytest.raises(UniverseError, match=message):
        universe_resolve(rest_url="http://127.0.0.1:9", **kwargs)


def test_an_exchange_that_cannot_be_reached_says_where_and_what_to_check():
    with pytest.raises(
        UniverseError,
        match=r"cannot list the exchange's symbols: 127\.0\.0\.1:9 refused the connection: nothing listens there",
    ):
        universe_resolve(top=5, rest_url="http://127.0.0.1:9")


@pytest.mark.parametrize("status", [429, 418])
async def test_a_rate_limited_exchange_says_when_to_try_again_and_a_short_limit_is_waited_out(status):
    async with Simulator(port=0, rate=50, seed=7, universe=10) as sim:
        sim.fault_rate_limit(1, status=status, retry_after=1)
        waited = await resolve(top=5, rest_url=sim.rest_url)
        sim.fault_rate_limit(5, status=status, retry_after=600)
        with pytest.raises(UniverseError) as raised:
            await resolve(top=5, rest_url=sim.rest_url)
        sim.fault_rate_limit(5, status=status, retry_after=600)
        with pytest.raises(UniverseError, match=f"HTTP {status}"):
            await resolve(symbols=["BTCUSDT", "ETHUSDT"], rest_url=sim.rest_url)
    assert waited.symbols == TOP_5
    message = str(raised.value)
    assert message.startswith(
        f"the exchange is limiting this address's requests (HTTP {status}) and asks for none for 600 s: try again after"
    )
    assert message.endswith(" UTC")


async def test_a_symbol_delisted_between_runs_drops_out_of_the_top_with_a_word_but_is_refused_by_name(caplog):
    async with Simulator(port=0, rate=50, seed=7, universe=30) as sim:
        before = await resolve(top=5, rest_url=sim.rest_url)
        sim.exchange.delist("XRPUSDT")
        with caplog.at_level(logging.INFO, logger="ingestion.services"):
            after = await resolve(top=5, rest_url=sim.rest_url, previous=before.symbols)
            smaller = await resolve(top=3, rest_url=sim.rest_url, previous=before.symbols)
        with pytest.raises(UniverseError, match=r"this symbol cannot be screened: XRPUSDT is not trading .*SETTLING"):
            await resolve(symbols=before.symbols, rest_url=sim.rest_url)
    assert "XRPUSDT" in before.symbols and "XRPUSDT" not in after.symbols and len(after.symbols) == 5
    assert after.skipped == {"XRPUSDT": "XRPUSDT is not trading on the exchange (status SETTLING)"}
    # Below the cut of a top 3, a symbol of the previous universe is still accounted for.
    assert smaller.skipped == {
        "BNBUSDT": "BNBUSDT is no longer among the top 3 by 24 h quote volume",
        "XRPUSDT": "XRPUSDT is no longer trading on the exchange (status SETTLING)",
    }
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "universe: XRPUSDT is not trading on the exchange (status SETTLING); left out",
        "universe: XRPUSDT is no longer trading on the exchange (status SETTLING); left out",
    ]


async def test_a_universe_of_fewer_than_two_symbols_the_exchange_trades_is_refused():
    async with Simulator(port=0, rate=50, seed=7) as sim:
        sim.exchange.delist("ETHUSDT")
        with pytest.raises(UniverseError, match="the exchange trades 1 USDT perpetual with a 24 h volume"):
            await resolve(top=30, rest_url=sim.rest_url)
