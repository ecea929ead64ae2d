"""History for a backtest: funding rows, request weights, ranges, and the paged fetches against the offline exchange.

The exchange runs on loopback in the test's own event loop; no database.
"""

from __future__ import annotations

import asyncio
import math
import time

import httpx
import orjson
import pytest
import websockets

from ingestion.binance import (
    FundingRate,
    MalformedFrame,
    MarkPrice,
    funding_rate_payload,
    interval_ms,
    klines_weight,
    parse_frame,
    parse_rest_funding_rates,
    parse_rest_klines,
    weight_pause,
)
from ingestion.client import (
    ExchangeError,
    RateLimited,
    RestClient,
    funding_rate_pages,
    history_error,
    klines_pages,
)
from ingestion.history import (
    DAY_MS,
    FUNDING_INTERVAL_MS,
    HistoryBeforeListing,
    HistoryError,
    funding_slots_uncovered,
    history_range_check,
    missing_spans,
    open_times_range,
)
from ingestion.simulator import Simulator
from ingestion.simulator.funding import FUNDING_RATE, funding_rate
from ingestion.simulator.rest import UsedWeight, request_weight

MINUTE = 60_000
HOUR = 3_600_000

# -- funding rows ----------------------------------------------------------------------


def test_funding_rate_rows_parse_as_binance_sends_them():
    rows = [
        {
            "symbol": "BTCUSDT",
            "fundingTime": 1570608000000,
            "fundingRate": "-0.03750000",
            "markPrice": "34287.54619963",
        },
        {"symbol": "BTCUSDT", "fundingTime": 1570636800000, "fundingRate": "0.00010000", "markPrice": ""},
        {"symbol": "BTCUSDT", "fundingTime": 1570665600000, "fundingRate": "0.00010000"},
    ]
    assert parse_rest_funding_rates(rows) == [
        FundingRate("BTCUSDT", 1570608000000, -0.0375, 34287.54619963),
        FundingRate("BTCUSDT", 1570636800000, 0.0001, None),  # Binance's oldest rows: no mark price
        FundingRate("BTCUSDT", 1570665600000, 0.0001, None),
    ]
    assert parse_rest_funding_rates([]) == []
    # The simulator's rows are Binance's: they read back as written.
    funding = FundingRate("ETHUSDT", 1570608000000, 0.00012345, 3000.5)
    payload = funding_rate_payload(funding)
    assert payload == {
        "symbol": "ETHUSDT",
        "fundingTime": 1570608000000,
        "fundingRate": "0.00012345",
        "markPrice": "3000.50000000",
    }
    assert parse_rest_funding_rates(orjson.loads(orjson.dumps([payload]))) == [funding]


GOOD = {"symbol": "BTCUSDT", "fundingTime": 1570608000000, "fundingRate": "0.0001", "markPrice": "60000.1"}


@pytest.mark.parametrize(
    "body",
    [
        {"code": -1121, "msg": "Invalid symbol."},  # not a list
        ["BTCUSDT"],  # a row that is not an object
        [{k: v for k, v in GOOD.items() if k != "fundingTime"}],
        [{k: v for k, v in GOOD.items() if k != "fundingRate"}],
        [{k: v for k, v in GOOD.items() if k != "symbol"}],
        [{**GOOD, "fundingTime": "1570608000000"}],  # a time as a string
        [{**GOOD, "fundingTime": -1}],
        [{**GOOD, "fundingRate": "nan"}],
        [{**GOOD, "fundingRate": "inf"}],
        [{**GOOD, "fundingRate": "-Infinity"}],
        [{**GOOD, "fundingRate": "0.0001x"}],
        [{**GOOD, "fundingRate": True}],
        [{**GOOD, "fundingRate": None}],
        [{**GOOD, "markPrice": "nan"}],
        [{**GOOD, "markPrice": "inf"}],
        [{**GOOD, "markPrice": "-1"}],
        [{**GOOD, "markPrice": "0"}],
        [{**GOOD, "symbol": "btc usdt"}],
        [{**GOOD, "symbol": ["BTCUSDT"]}],
    ],
)
def test_a_malformed_funding_answer_is_refused(body):
    with pytest.raises(MalformedFrame):
        parse_rest_funding_rates(body)


# -- request weight and ranges ------------------------------------------------------------


@pytest.mark.parametrize(
    "limit,weight", [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10), (1500, 10)]
)
def test_klines_weigh_by_their_limit_as_on_binance(limit, weight):
    assert klines_weight(limit) == weight
    assert request_weight("/fapi/v1/klines", {"limit": str(limit)}) == weight


def test_the_simulator_counts_the_weight_of_each_minute():
    used = UsedWeight()
    assert request_weight("/fapi/v1/klines", {}) == 5  # limit 500 when absent
    assert request_weight("/fapi/v1/aggTrades", {"fromId": "1"}) == 20
    assert request_weight("/fapi/v1/fundingRate", {}) == 1
    minute = 29_000_000 * 60.0
    assert used.add(10, minute + 1) == 10
    assert used.add(5, minute + 59.9) == 15
    assert used.add(5, minute + 60) == 5  # a new minute starts from nothing


def test_a_request_waits_for_the_next_minute_when_it_would_pass_the_weight_budget():
    minute = 29_000_000 * 60.0
    # Nothing reported yet, or reported in an earlier minute (since reset): go.
    assert weight_pause(None, None, 10, minute + 5) == 0
    assert weight_pause(2390, minute - 1, 10, minute + 5) == 0
    # Within the budget: go.
    assert weight_pause(1990, minute + 2, 10, minute + 5, budget=2000) == 0
    # Past it: wait for the next minute (and a second, the clocks differ).
    assert weight_pause(1991, minute + 2, 10, minute + 5, budget=2000) == pytest.approx(56.0)
    assert weight_pause(2000, minute + 50, 1, minute + 59.5) == pytest.approx(1.5)


def test_kline_intervals_have_their_length():
    assert [interval_ms(i) for i in ("1s", "1m", "5m", "1h", "8h", "1d", "1w")] == [
        1_000,
        MINUTE,
        5 * MINUTE,
        HOUR,
        8 * HOUR,
        DAY_MS,
        7 * DAY_MS,
    ]
    for bad in ("1M", "m", "0m", "5", "1y", ""):
        with pytest.raises(ValueError):
            interval_ms(bad)


def test_a_range_must_be_non_empty_and_at_most_a_year():
    history_range_check(0, 1)
    history_range_check(0, 366 * DAY_MS)
    with pytest.raises(HistoryError, match="empty"):
        history_range_check(5 * DAY_MS, 5 * DAY_MS)
    with pytest.raises(HistoryError, match="empty"):
        history_range_check(6 * DAY_MS, 5 * DAY_MS)
    with pytest.raises(HistoryError, match="3,652 days; at most 366"):
        history_range_check(0, 3652 * DAY_MS)
    with pytest.raises(HistoryError):
        history_range_check(-1, 5)


def test_the_bars_of_a_range_are_those_opening_in_it_and_closed():
    now = 100 * MINUTE + 30_000
    assert open_times_range(10 * MINUTE, 20 * MINUTE, MINUTE, now) == (10 * MINUTE, 20 * MINUTE)
    assert open_times_range(10 * MINUTE + 1, 20 * MINUTE + 1, MINUTE, now) == (11 * MINUTE, 21 * MINUTE)
    assert open_times_range(90 * MINUTE, 200 * MINUTE, MINUTE, now) == (90 * MINUTE, 100 * MINUTE)  # closed only
    first, stop = open_times_range(100 * MINUTE, 200 * MINUTE, MINUTE, now)
    assert first >= stop  # none closed yet


def test_missing_spans_are_the_runs_of_open_times_not_stored():
    w = MINUTE
    assert missing_spans([], 0, 5 * w, w) == [(0, 5 * w)]
    assert missing_spans(range(0, 5 * w, w), 0, 5 * w, w) == []
    assert missing_spans([w, 2 * w, 6 * w], 0, 8 * w, w) == [(0, w), (3 * w, 6 * w), (7 * w, 8 * w)]
    assert missing_spans([-w, 9 * w], 0, 2 * w, w) == [(0, 2 * w)]  # stored outside the range: not counted
    assert missing_spans([], 5, 5, w) == []


def test_funding_slots_are_covered_by_a_row_anywhere_in_them():
    h8 = FUNDING_INTERVAL_MS
    day = [0, h8, 2 * h8]
    assert funding_slots_uncovered([], 0, 3 * h8) == day
    assert funding_slots_uncovered(day, 0, 3 * h8) == []
    assert funding_slots_uncovered([3, h8 + 2], 0, 3 * h8) == [2 * h8]  # a few ms late still counts
    assert funding_slots_uncovered([0, 4 * HOUR, h8, 2 * h8], 0, 3 * h8) == []  # every 4 h: more rows
    assert funding_slots_uncovered([], 1, 3 * h8) == [h8, 2 * h8]  # the range starts after 00:00
    assert funding_slots_uncovered([], 1, h8) == []


# -- the offline exchange's history ------------------------------------------------------------


async def fetch_klines(rest: RestClient, symbol: str, interval: str, start: int, end: int, **kwargs) -> list:
    pages = [page async for page in klines_pages(rest, symbol, interval, start, end, **kwargs)]
    return pages


async def test_klines_over_a_range_come_page_by_page_as_the_exchange_serves_them():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        rest = RestClient(sim.rest_url)
        end = (sim.exchange.klines("BTCUSDT", "1m", limit=1)[0][0]) - 10 * MINUTE
        start = end - 3 * DAY_MS + 17  # not on a minute: the first kline is the next one
        seen: list[float] = []
        pages = await fetch_klines(rest, "BTCUSDT", "1m", start, end, limit=1000, progress=seen.append)
        served = sim.exchange.klines("BTCUSDT", "1m", start_time=start, end_time=end - 1, limit=1500)
        served += sim.exchange.klines("BTCUSDT", "1m", start_time=served[-1][0] + 1, end_time=end - 1, limit=1500)
        served += sim.exchange.klines("BTCUSDT", "1m", start_time=served[-1][0] + 1, end_time=end - 1, limit=1500)
        await rest.close()
    klines = [k for page in pages for k in page]
    assert [len(p) for p in pages] == [1000, 1000, 1000, 1000, 319]
    assert [k.open_time for k in klines] == list(range(start - 17 + MINUTE, end, MINUTE))
    assert klines == parse_rest_klines(served)
    assert rest.requests == 5
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 6
    assert rest.used_weight is not None and rest.used_weight >= 5  # the exchange's count, read from its answers


async def test_a_range_of_a_month_of_1m_klines_is_served_quickly_and_the_same_every_time():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        now = int(time.time() * 1000)
        start, end = now - 30 * DAY_MS, now
        rest = RestClient(sim.rest_url)
        began = time.perf_counter()
        first = await fetch_klines(rest, "ETHUSDT", "1m", start, end, limit=1500)
        took = time.perf_counter() - began
        again = await fetch_klines(rest, "ETHUSDT", "1m", start, end, limit=1500)
        await rest.close()
    klines = [k for page in first for k in page]
    assert len(first) == 29 and len(klines) >= 43_199
    assert again[:-1] == first[:-1]  # the kline in progress aside
    assert took < 10  # about a second on a laptop
    closes = [k.close for k in klines]
    assert all(0.5 * 3000 < c < 1.5 * 3000 for c in closes)


@pytest.mark.parametrize("status", [429, 418])
async def test_a_rate_limit_is_waited_out_for_its_retry_after_then_the_fetch_goes_on(status):
    async with Simulator(port=0, rate=50, seed=4) as sim:
        rest = RestClient(sim.rest_url)
        end = sim.exchange.klines("BTCUSDT", "1m", limit=1)[0][0]
        sim.fault_rate_limit(1, status=status, retry_after=1)
        began = time.monotonic()
        pages = await fetch_klines(rest, "BTCUSDT", "1m", end - 2000 * MINUTE, end, limit=1000)
        elapsed = time.monotonic() - began
        sim.fault_rate_limit(2, status=status, retry_after=1)
        with pytest.raises(RateLimited):  # two waits of 1 s do not fit in 1.5
            await fetch_klines(rest, "BTCUSDT", "1m", end - 2000 * MINUTE, end, limit=1000, max_wait=1.5)
        sim.fault_rate_limit(1, status=status, retry_after=600)
        with pytest.raises(RateLimited) as raised:  # a ban longer than the caller waits: the caller decides
            await fetch_klines(rest, "BTCUSDT", "1m", end - 2000 * MINUTE, end, limit=1000)
        await rest.close()
    assert elapsed >= 1.0
    assert [len(p) for p in pages] == [1000, 1000]
    assert rest.state.rate_limited == 4
    assert "try again later" in str(history_error(raised.value, symbol="BTCUSDT", rest_url=sim.rest_url))


async def test_a_fetch_near_the_weight_budget_waits_for_the_next_minute():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        rest = RestClient(sim.rest_url)
        waits: list[float] = []

        async def record(seconds: float) -> None:
            waits.append(seconds)

        rest.sleep = record
        rest.clock = lambda: 29_000_000 * 60.0 + 30  # half a minute in, for ever
        rest.weight_budget = 12  # pages of 1000 weigh 5: the third would pass it
        end = sim.exchange.klines("BTCUSDT", "1m", limit=1)[0][0]
        pages = await fetch_klines(rest, "BTCUSDT", "1m", end - 4000 * MINUTE, end, limit=1000)
        await rest.close()
    assert [len(p) for p in pages] == [1000] * 4
    # The third request waited for the next minute; so did the fourth, unless the
    # exchange's own minute turned meanwhile (its count starting again from 0).
    assert waits in ([31.0], [31.0, 31.0])


async def test_a_range_before_the_exchanges_first_kline_says_where_its_history_begins():
    listed = int(time.time() * 1000) // DAY_MS * DAY_MS - 10 * DAY_MS
    async with Simulator(port=0, rate=50, seed=4, listed_since=listed) as sim:
        rest = RestClient(sim.rest_url)
        with pytest.raises(HistoryBeforeListing, match=r"begins .* before it") as partly:
            await fetch_klines(rest, "BTCUSDT", "5m", listed - DAY_MS, listed + DAY_MS)
        with pytest.raises(HistoryBeforeListing) as wholly:
            await fetch_klines(rest, "BTCUSDT", "5m", listed - 3 * DAY_MS, listed - DAY_MS)
        # From the listing on, all is there.
        pages = await fetch_klines(rest, "BTCUSDT", "5m", listed, listed + DAY_MS)
        info = (await get(sim, "/fapi/v1/exchangeInfo")).json()
        await rest.close()
    assert partly.value.begins == wholly.value.begins == listed
    assert "2019" not in str(partly.value)
    assert sum(len(p) for p in pages) == 288
    assert {s["onboardDate"] for s in info["symbols"]} == {listed}


def kline_row(open_time: int) -> list:
    return [open_time, "1.0", "1.0", "1.0", "1.0", "1.0", open_time + MINUTE - 1, "1.0", 1, "1.0", "1.0", "0"]


@pytest.mark.parametrize("before", [True, False])
async def test_a_range_starting_in_a_hole_of_the_exchanges_history_is_no_error(before):
    """Klines that start later than asked are a hole (an outage) when the exchange has earlier ones."""
    hole_end = 1_700_000_040 * 1000 // MINUTE * MINUTE
    asked = []

    def exchange(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        start, end = int(params["startTime"]), int(params.get("endTime", 2**62))
        if start == 0:  # is there any kline before the range?
            return httpx.Response(200, json=[kline_row(start)] if before else [])
        return httpx.Response(200, json=[kline_row(t) for t in range(max(start, hole_end), end + 1, MINUTE)][:1000])

    rest = RestClient("http://exchange.invalid")
    await rest.close()
    rest._http = httpx.AsyncClient(transport=httpx.MockTransport(exchange))
    start = hole_end - 30 * MINUTE
    if before:
        pages = await fetch_klines(rest, "BTCUSDT", "1m", start, hole_end + 10 * MINUTE)
        assert [k.open_time for page in pages for k in page] == list(range(hole_end, hole_end + 10 * MINUTE, MINUTE))
    else:
        with pytest.raises(HistoryBeforeListing) as raised:
            await fetch_klines(rest, "BTCUSDT", "1m", start, hole_end + 10 * MINUTE)
        assert raised.value.begins == hole_end
    await rest.close()
    assert asked[1] == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "startTime": "0",
        "endTime": str(start - 1),
        "limit": "1",
    }


async def test_an_unknown_symbol_and_an_unreachable_exchange_say_so():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        rest = RestClient(sim.rest_url)
        end = int(time.time() * 1000)
        with pytest.raises(ExchangeError) as unknown:
            await fetch_klines(rest, "NOPEUSDT", "1m", end - HOUR, end)
        with pytest.raises(ExchangeError):
            [page async for page in funding_rate_pages(rest, "NOPEUSDT", end - DAY_MS, end)]
        await rest.close()
    assert (unknown.value.code, unknown.value.msg, unknown.value.response.status_code) == (
        -1121,
        "Invalid symbol.",
        400,
    )
    error = history_error(unknown.value, symbol="NOPEUSDT", rest_url=sim.rest_url)
    assert str(error) == "NOPEUSDT is not a symbol of the exchange (it answered: Invalid symbol.)"
    rest = RestClient("http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(httpx.HTTPError) as away:
        await fetch_klines(rest, "BTCUSDT", "1m", end - HOUR, end)
    await rest.close()
    error = history_error(away.value, symbol="BTCUSDT", rest_url="http://user:secret@127.0.0.1:9")
    assert str(error) == (
        "cannot fetch the history of BTCUSDT: 127.0.0.1:9 refused the connection: nothing listens there;"
        " check the network and BINANCE_REST_URL"
    )


# -- funding ---------------------------------------------------------------------------------


async def test_funding_rates_come_every_8_hours_page_by_page_with_the_klines_mark_price():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        rest = RestClient(sim.rest_url)
        now = int(time.time() * 1000)
        start, end = now - 10 * DAY_MS, now - DAY_MS
        pages = [page async for page in funding_rate_pages(rest, "ETHUSDT", start, end, limit=7)]
        marks = {
            t: float(sim.exchange.klines("ETHUSDT", "1m", start_time=t - MINUTE, end_time=t - MINUTE)[0][4])
            for t in range(-(-start // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS, end, FUNDING_INTERVAL_MS)
        }
        await rest.close()
    rates = [f for page in pages for f in page]
    assert [len(p) for p in pages] == [7, 7, 7, 6]
    assert [f.funding_time for f in rates] == list(marks)
    assert all(f.funding_time % FUNDING_INTERVAL_MS == 0 for f in rates)
    assert {f.funding_time % DAY_MS // HOUR for f in rates} == {0, 8, 16}  # 00:00, 08:00, 16:00 UTC
    assert [f.mark_price for f in rates] == list(marks.values())
    assert [f.rate for f in rates] == [funding_rate(4, "ETHUSDT", f.funding_time) for f in rates]
    values = [f.rate for f in rates]
    assert len(set(values)) > 20 and abs(sum(values) / len(values) - FUNDING_RATE) < 0.00005


def test_the_seeded_funding_rate_depends_on_the_seed_the_symbol_and_the_time_only():
    t = 1_767_225_600_000
    assert funding_rate(7, "BTCUSDT", t) == funding_rate(7, "BTCUSDT", t)
    assert len({funding_rate(7, "BTCUSDT", t), funding_rate(8, "BTCUSDT", t), funding_rate(7, "ETHUSDT", t)}) == 3
    rates = [funding_rate(7, "BTCUSDT", t + k * FUNDING_INTERVAL_MS) for k in range(3000)]
    mean = sum(rates) / len(rates)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / len(rates))
    assert mean == pytest.approx(0.0001, abs=3e-6) and sd == pytest.approx(0.00005, rel=0.1)
    assert all(r == round(r, 8) for r in rates)


async def get(sim: Simulator, path: str, **params) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{sim.rest_url}{path}", params=params)


async def test_the_funding_rate_endpoint_follows_binances_rules():
    async with Simulator(port=0, rate=50, seed=4, delisted=["LUNAUSDT"]) as sim:
        now = int(time.time() * 1000)
        recent = await get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT")
        first = await get(sim, "/fapi/v1/fundingRate", symbol="btcusdt", startTime=0, limit=2)
        window = await get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT", startTime=now - DAY_MS, endTime=now)
        no_symbol = await get(sim, "/fapi/v1/fundingRate")
        unknown = await get(sim, "/fapi/v1/fundingRate", symbol="NOPEUSDT")
        too_many = await get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=1001)
        inverted = await get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT", startTime=now, endTime=now - 1)
        delisted = await get(sim, "/fapi/v1/fundingRate", symbol="LUNAUSDT")
    rows = recent.json()
    assert recent.status_code == 200 and len(rows) == 100  # the most recent 100 by default
    assert [r["fundingTime"] for r in rows] == sorted(r["fundingTime"] for r in rows)
    assert now - FUNDING_INTERVAL_MS < rows[-1]["fundingTime"] <= now
    assert set(rows[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    assert all(isinstance(r["fundingRate"], str) and isinstance(r["markPrice"], str) for r in rows)
    assert [r["fundingTime"] for r in first.json()] == [1_569_398_400_000, 1_569_427_200_000]  # from the listing on
    assert len(window.json()) == 3
    assert (no_symbol.status_code, no_symbol.json()["code"]) == (400, -1102)
    assert (unknown.status_code, unknown.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert too_many.json()["code"] == -1130
    assert inverted.json()["code"] == -1128
    assert delisted.json() == []
    for response in (recent, unknown, too_many):
        assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 1


async def test_the_mark_price_stream_announces_the_rate_rest_reports():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        url = f"{sim.ws_url}/stream?streams=btcusdt@markPrice@1s"
        async with websockets.connect(url, open_timeout=2) as ws:
            mark = None
            while mark is None:
                event = parse_frame(await asyncio.wait_for(ws.recv(), 5))
                mark = event if isinstance(event, MarkPrice) else None
    assert mark.next_funding_time % FUNDING_INTERVAL_MS == 0
    assert mark.funding_rate == funding_rate(4, "BTCUSDT", mark.next_funding_time)
