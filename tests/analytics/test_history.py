"""A backtest's history: bars and funding rates fetched from the offline exchange once, then read from the database."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async

from analytics import services
from analytics.models import Bar
from ingestion.binance import parse_rest_klines
from ingestion.history import DAY_MS, FUNDING_INTERVAL_MS, HistoryBeforeListing, HistoryError
from ingestion.models import FundingRate
from ingestion.services import funding_rates_ensure
from ingestion.simulator import Simulator
from ingestion.simulator.funding import funding_rate

pytestmark = pytest.mark.django_db(transaction=True)

MINUTE = 60_000
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def counting(sim: Simulator) -> Counter:
    """Count the REST requests ``sim`` answers from its memory, by endpoint."""
    asked: Counter = Counter()
    klines, funding = sim.exchange.klines, sim.exchange.funding_rates

    def count_klines(*args, **kwargs):
        asked["klines"] += 1
        return klines(*args, **kwargs)

    def count_funding(*args, **kwargs):
        asked["fundingRate"] += 1
        return funding(*args, **kwargs)

    sim.exchange.klines = count_klines
    sim.exchange.funding_rates = count_funding
    return asked


@sync_to_async
def ensure(*args, **kwargs) -> dict:
    return services.bars_history_ensure(*args, **kwargs)


@sync_to_async
def stored_bars(symbol: str, interval: str, first: int, stop: int) -> list[tuple]:
    rows = Bar.objects.filter(symbol=symbol, interval=interval, open_time__gte=first, open_time__lt=stop)
    return list(rows.order_by("open_time").values_list("open_time", "open", "high", "low", "close", "volume", "trades"))


@sync_to_async
def forget_bars(symbol: str, interval: str, first: int, stop: int) -> int:
    return Bar.objects.filter(symbol=symbol, interval=interval, open_time__gte=first, open_time__lt=stop).delete()[0]


def served(sim: Simulator, symbol: str, interval: str, first: int, stop: int) -> list[tuple]:
    """The klines ``sim`` serves opening in ``[first, stop)``, as bar rows."""
    rows, cursor = [], first
    while cursor < stop and (page := sim.exchange.klines(symbol, interval, start_time=cursor, end_time=stop - 1)):
        rows += page
        cursor = page[-1][0] + 1
    return [(k.open_time, k.open, k.high, k.low, k.close, k.volume, k.trades) for k in parse_rest_klines(rows)]


async def test_a_range_is_fetched_once_stored_as_the_exchange_serves_it_then_read_from_the_database():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        asked = counting(sim)
        now = int(time.time() * 1000)
        seen: list[float] = []
        report = await ensure(SYMBOLS, "1m", now - 3 * DAY_MS, now, rest_url=sim.rest_url, progress=seen.append)
        requests = asked["klines"]
        again = await ensure(["btcusdt", "ETHUSDT"], "1m", now - 3 * DAY_MS, now, rest_url=sim.rest_url)
        asked_again = asked["klines"] - requests
        first, stop = report["start"], report["end"]
        for symbol in SYMBOLS:
            assert await stored_bars(symbol, "1m", first, stop) == served(sim, symbol, "1m", first, stop)
    assert first == -(-(now - 3 * DAY_MS) // MINUTE) * MINUTE
    assert stop % MINUTE == 0 and now - MINUTE < stop <= now + MINUTE  # the bar in progress is not part of it
    assert report["bars"] == (stop - first) // MINUTE >= 3 * 1440 - 2
    assert report["symbols"] == {
        s: {"stored": report["bars"], "fetched": report["bars"], "missing": 0} for s in SYMBOLS
    }
    assert report["fetched"] == 2 * report["bars"]
    assert requests == report["requests"] == 2 * -(-report["bars"] // 1000)  # pages of 1,000
    assert seen == sorted(seen) and seen[-1] == 1.0
    # Everything is stored: the second call asks the exchange nothing.
    assert asked_again == 0 and again["requests"] == 0 and again["fetched"] == 0
    assert again["symbols"] == {s: {"stored": report["bars"], "fetched": 0, "missing": 0} for s in SYMBOLS}


async def test_a_range_partly_stored_fetches_only_what_is_missing():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        now = int(time.time() * 1000)
        start, end = now - 2 * DAY_MS, now - DAY_MS
        report = await ensure(SYMBOLS, "5m", start, end, rest_url=sim.rest_url)
        first, stop = report["start"], report["end"]
        # A hole in the middle of ETHUSDT's bars, and its last ten.
        w = 5 * MINUTE
        hole = (first + 100 * w, first + 130 * w)
        assert await forget_bars("ETHUSDT", "5m", *hole) == 30
        assert await forget_bars("ETHUSDT", "5m", stop - 10 * w, stop) == 10
        asked = counting(sim)
        # A wider range: a day more before it, missing for both symbols.
        again = await ensure(SYMBOLS, "5m", start - DAY_MS, end, rest_url=sim.rest_url)
        requests = asked["klines"]
        bars = await stored_bars("ETHUSDT", "5m", first - DAY_MS, stop)
        expected = served(sim, "ETHUSDT", "5m", first - DAY_MS, stop)
    assert report["bars"] == 288
    assert again["symbols"] == {
        "BTCUSDT": {"stored": 576, "fetched": 288, "missing": 0},
        "ETHUSDT": {"stored": 576, "fetched": 288 + 30 + 10, "missing": 0},
    }
    assert requests == again["requests"] == 4  # the day before for each, and ETHUSDT's two holes
    assert bars == expected


async def test_a_universes_klines_are_fetched_stored_and_topped_up_the_same_for_the_same_seed():
    """Three symbols of the offline exchange's universe over a day: what a screener stores, and then adds to."""
    symbols = ["SOLUSDT", "XRPUSDT", "ICPUSDT"]
    day = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() * 1000)
    async with Simulator(port=0, rate=50, seed=7, universe=30) as sim:
        asked = counting(sim)
        report = await ensure(symbols, "1m", day, day + DAY_MS, rest_url=sim.rest_url)
        fetched = asked["klines"]
        again = await ensure(symbols, "1m", day, day + DAY_MS, rest_url=sim.rest_url)
        later = await ensure(symbols, "1m", day, day + DAY_MS + 6 * 3_600_000, rest_url=sim.rest_url)
    # Another run of the exchange, started later, with the same seed: the same klines.
    async with Simulator(port=0, rate=50, seed=7, universe=30) as other:
        for symbol in symbols:
            stored = await stored_bars(symbol, "1m", day, day + DAY_MS + 6 * 3_600_000)
            assert stored == served(other, symbol, "1m", day, day + DAY_MS + 6 * 3_600_000)
    assert report["symbols"] == dict.fromkeys(symbols, {"stored": 1440, "fetched": 1440, "missing": 0})
    assert report["requests"] == fetched == 6  # 1,000 and 440 a symbol
    assert again["requests"] == 0 and again["fetched"] == 0
    assert later["symbols"] == dict.fromkeys(symbols, {"stored": 1800, "fetched": 360, "missing": 0})
    assert later["requests"] == 3


async def test_1s_history_is_what_is_stored_and_never_fetched():
    now = int(time.time() * 1000)
    # Nothing listens there: a fetch would fail.
    report = await ensure(SYMBOLS, "1s", now - 60_000, now, rest_url="http://127.0.0.1:9")
    assert report["requests"] == 0 and report["fetched"] == 0
    assert report["bars"] >= 59
    assert report["symbols"]["BTCUSDT"] == {"stored": 0, "fetched": 0, "missing": report["bars"]}


@pytest.mark.parametrize(
    "symbols,interval,start,end,message",
    [
        (SYMBOLS, "1m", 5 * DAY_MS, 5 * DAY_MS, "the range is empty"),
        (SYMBOLS, "1m", 6 * DAY_MS, 5 * DAY_MS, "the range is empty"),
        (SYMBOLS, "1m", 0, 3650 * DAY_MS, "spans 3,650 days; at most 366 days"),
        (SYMBOLS, "15m", 0, DAY_MS, "not a bar interval"),
        (["BTC USDT"], "1m", 0, DAY_MS, "is not a symbol"),
        ([], "1m", 0, DAY_MS, "no symbol given"),
    ],
)
async def test_a_range_that_cannot_be_had_says_why_before_asking_the_exchange(symbols, interval, start, end, message):
    with pytest.raises(HistoryError, match=message):
        await ensure(symbols, interval, start, end, rest_url="http://127.0.0.1:9")


async def test_a_range_with_no_closed_bar_yet_says_so():
    now = int(time.time() * 1000)
    with pytest.raises(HistoryError, match="in the future"):
        await ensure(SYMBOLS, "1m", now + DAY_MS, now + 2 * DAY_MS, rest_url="http://127.0.0.1:9")
    with pytest.raises(HistoryError, match="has closed yet"):
        await ensure(SYMBOLS, "5m", now // 300_000 * 300_000 + 1, now + DAY_MS, rest_url="http://127.0.0.1:9")


async def test_an_unknown_symbol_an_unreachable_exchange_and_a_long_ban_say_so():
    now = int(time.time() * 1000)
    async with Simulator(port=0, rate=50, seed=4) as sim:
        with pytest.raises(HistoryError) as unknown:
            await ensure(["BTCUSDT", "NOPEUSDT"], "1m", now - DAY_MS, now, rest_url=sim.rest_url)
        sim.fault_rate_limit(1, status=418, retry_after=3600)
        with pytest.raises(HistoryError) as banned:
            await ensure(["ETHUSDT"], "1m", now - DAY_MS, now, rest_url=sim.rest_url)
    assert str(unknown.value) == "NOPEUSDT is not a symbol of the exchange (it answered: Invalid symbol.)"
    assert "HTTP 418" in str(banned.value) and "3600 s" in str(banned.value) and "try again later" in str(banned.value)
    with pytest.raises(
        HistoryError, match=r"^cannot fetch the history of \w+: 127\.0\.0\.1:9 refused the connection.*BINANCE_REST_URL"
    ):
        await ensure(["ETHUSDT"], "1m", now - DAY_MS, now, rest_url="http://127.0.0.1:9")


async def test_a_range_before_the_exchanges_history_says_where_it_begins_and_stores_nothing():
    listed = int(time.time() * 1000) // DAY_MS * DAY_MS - 5 * DAY_MS
    async with Simulator(port=0, rate=50, seed=4, listed_since=listed) as sim:
        with pytest.raises(HistoryBeforeListing) as raised:
            await ensure(SYMBOLS, "1m", listed - 2 * DAY_MS, listed + DAY_MS, rest_url=sim.rest_url)
        report = await ensure(SYMBOLS, "1m", listed, listed + DAY_MS, rest_url=sim.rest_url)
    assert raised.value.begins == listed
    assert "BTCUSDT" in str(raised.value) and "start at" in str(raised.value)
    assert report["fetched"] == 2 * 1440  # nothing was stored by the refused range


# -- funding -------------------------------------------------------------------------------


@sync_to_async
def ensure_funding(*args, **kwargs):
    return funding_rates_ensure(*args, **kwargs)


@sync_to_async
def forget_funding(symbol: str, funding_time: int) -> int:
    return FundingRate.objects.filter(symbol=symbol, funding_time=funding_time).delete()[0]


async def test_funding_rates_every_8_hours_are_fetched_once_then_reused():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        asked = counting(sim)
        now = int(time.time() * 1000)
        start = now - 10 * DAY_MS
        seen: list[float] = []
        rates = await ensure_funding("ETHUSDT", start, now, rest_url=sim.rest_url, progress=seen.append)
        first_asked = asked["fundingRate"]
        again = await ensure_funding("ethusdt", start, now, rest_url=sim.rest_url)
        reused = asked["fundingRate"] - first_asked
        # One missing: the range is fetched again, and whole.
        assert await forget_funding("ETHUSDT", rates[10].funding_time) == 1
        refilled = await ensure_funding("ETHUSDT", start, now, rest_url=sim.rest_url)
        refetched = asked["fundingRate"] - first_asked
    times = [f.funding_time for f in rates]
    expected = list(range(-(-start // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS, now, FUNDING_INTERVAL_MS))
    assert times == expected and len(times) == 30
    assert [f.rate for f in rates] == [funding_rate(4, "ETHUSDT", t) for t in times]
    assert all(f.symbol == "ETHUSDT" and f.mark_price > 0 for f in rates)
    assert first_asked == 1 and seen[-1] == 1.0
    assert reused == 0 and again == rates
    assert refetched == 1 and refilled == rates


async def test_funding_rates_that_cannot_be_had_say_why():
    now = int(time.time() * 1000)
    async with Simulator(port=0, rate=50, seed=4) as sim:
        with pytest.raises(HistoryError, match="NOPEUSDT is not a symbol of the exchange"):
            await ensure_funding("NOPEUSDT", now - DAY_MS, now, rest_url=sim.rest_url)
    with pytest.raises(HistoryError, match="at most 366 days"):
        await ensure_funding("BTCUSDT", now - 3650 * DAY_MS, now, rest_url="http://127.0.0.1:9")
    with pytest.raises(HistoryError, match="the range is empty"):
        await ensure_funding("BTCUSDT", now, now, rest_url="http://127.0.0.1:9")
    with pytest.raises(HistoryError, match="cannot fetch the history of BTCUSDT: 127.0.0.1:9 refused the connection"):
        await ensure_funding("BTCUSDT", now - DAY_MS, now, rest_url="http://127.0.0.1:9")
