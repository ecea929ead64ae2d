"""The offline exchange, checked with a plain websockets client and httpx (not the feed client).

Every exchange listens on loopback in the test's own event loop; no database.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import httpx
import numpy as np
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from ingestion.binance import MalformedFrame, Tick, parse_frame, parse_rest_agg_trades
from ingestion.simulator import (
    INTERVALS,
    LISTED_SINCE_MS,
    PREHISTORY_BARS,
    Exchange,
    PairScenario,
    Simulator,
    make_scenario,
    parse_fault_spec,
    symbol_spec,
)

BOTH = "stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"


def connect(url: str) -> websockets.connect:
    # An unbounded queue: a client that stops reading a busy stream cannot
    # complete the closing handshake (the library stops reading the socket).
    return websockets.connect(url, max_queue=None, compression=None, open_timeout=2)


async def read_ticks(ws: websockets.ClientConnection, *, seconds: float = 0.0, count: int = 0) -> list[Tick]:
    """Trades from ``ws`` for ``seconds``, or until ``count`` of them (within 30 s: a busy machine is slow)."""
    ticks: list[Tick] = []
    deadline = time.monotonic() + (seconds or (30.0 if count else 2.5))
    while (not count or len(ticks) < count) and time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        tick = parse_frame(frame)
        if tick is not None:
            ticks.append(tick)
    return ticks


async def read_until(ws: websockets.ClientConnection, last_ids: dict[str, int], seen: list[Tick]) -> list[Tick]:
    """``seen`` plus the trades from ``ws`` until each symbol of ``last_ids`` reached its id."""
    ticks = list(seen)
    high = {t.symbol: t.trade_id for t in seen}
    while any(high.get(s, -1) < i for s, i in last_ids.items()):
        tick = parse_frame(await asyncio.wait_for(ws.recv(), 2))
        if tick is not None:
            ticks.append(tick)
            high[tick.symbol] = tick.trade_id
    return ticks


def by_symbol(ticks: list[Tick]) -> dict[str, list[Tick]]:
    out: dict[str, list[Tick]] = defaultdict(list)
    for tick in ticks:
        out[tick.symbol].append(tick)
    return out


def assert_contiguous(ticks: list[Tick]) -> None:
    for symbol, rows in by_symbol(ticks).items():
        ids = [t.trade_id for t in rows]
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol} ids are not contiguous"
        times = [t.timestamp for t in rows]
        assert times == sorted(times), f"{symbol} trade times go backwards"


def last_ids(sim: Simulator) -> dict[str, int]:
    stats = sim.exchange.stats()
    return {s: stats[s]["last_id"] for s in ("BTCUSDT", "ETHUSDT")}


async def rest_all(http: httpx.AsyncClient, base: str, symbol: str, from_id: int, to_id: int, limit: int) -> list[Tick]:
    """Page ``/fapi/v1/aggTrades`` from ``from_id`` through ``to_id`` like a backfill does."""
    out: list[Tick] = []
    while from_id <= to_id:
        response = await http.get(
            f"{base}/fapi/v1/aggTrades", params={"symbol": symbol, "fromId": from_id, "limit": limit}
        )
        assert response.status_code == 200, response.text
        rows = parse_rest_agg_trades(symbol, response.json())
        assert rows, f"no rows from {from_id}"
        out.extend(t for t in rows if t.trade_id <= to_id)
        from_id = rows[-1].trade_id + 1
    return out


# -- streams ----------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("prefix", ["/market", "", "/public"])
async def test_the_combined_stream_gives_parseable_contiguous_trades_on_every_route(prefix):
    async with Simulator(port=0, rate=600, seed=1) as sim:
        assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/market"
        async with connect(f"ws://127.0.0.1:{sim.port}{prefix}/{BOTH}") as ws:
            raw = await asyncio.wait_for(ws.recv(), 2)
            ticks = await read_ticks(ws, seconds=0.4)
    envelope = orjson.loads(raw)
    assert envelope["stream"] in ("btcusdt@aggTrade", "ethusdt@aggTrade")
    assert envelope["data"]["e"] == "aggTrade" and envelope["data"]["E"] >= envelope["data"]["T"]
    assert {t.symbol for t in ticks} == {"BTCUSDT", "ETHUSDT"}
    assert_contiguous(ticks)
    per_symbol = by_symbol(ticks)
    assert 5_000_000_000 <= per_symbol["BTCUSDT"][0].trade_id < 5_001_000_000
    assert 4_000_000_000 <= per_symbol["ETHUSDT"][0].trade_id < 4_001_000_000
    btc = [t.price for t in per_symbol["BTCUSDT"]]
    eth = [t.price for t in per_symbol["ETHUSDT"]]
    assert 55_000 < min(btc) and max(btc) < 70_000 and 2_500 < min(eth) and max(eth) < 3_500
    # On the tick and lot grids, trade times close to the wall clock.
    assert all(abs(p * 10 - round(p * 10)) < 1e-6 for p in btc)
    assert all(abs(p * 100 - round(p * 100)) < 1e-6 for p in eth)
    assert all(t.quantity >= 0.001 and abs(t.quantity * 1000 - round(t.quantity * 1000)) < 1e-6 for t in ticks)
    assert abs(ticks[-1].timestamp - time.time() * 1000) < 2_000


@pytest.mark.asyncio
async def test_a_raw_stream_sends_bare_events_of_its_symbol_only():
    async with Simulator(port=0, rate=600, seed=2) as sim:
        async with connect(f"{sim.ws_url}/ws/ethusdt@aggTrade") as ws:
            frame = await asyncio.wait_for(ws.recv(), 2)
            ticks = await read_ticks(ws, seconds=0.3)
    assert "stream" not in orjson.loads(frame)
    assert ticks and {t.symbol for t in ticks} == {"ETHUSDT"}
    assert_contiguous(ticks)


@pytest.mark.asyncio
async def test_subscribe_list_and_unsubscribe_on_a_bare_connection():
    async with Simulator(port=0, rate=800, seed=3) as sim:
        async with connect(f"{sim.ws_url}/ws") as ws:
            subscribe = {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 1}
            await ws.send(orjson.dumps(subscribe))
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 2)) == {"result": None, "id": 1}
            ticks = await read_ticks(ws, count=20)
            assert len(ticks) == 20 and {t.symbol for t in ticks} == {"BTCUSDT"}

            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            await ws.send(orjson.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 3}))
            replies = []
            while len(replies) < 2:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 2))
                if "id" in message:
                    replies.append(message)
            assert replies == [
                {"result": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 2},
                {"result": None, "id": 3},
            ]
            # Nothing follows the unsubscribe answer (the unknown stream never sends).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)

            await ws.send(b'{"method": "SUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 4}')
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 2)) == {"result": None, "id": 4}
            assert {t.symbol for t in await read_ticks(ws, count=5)} == {"ETHUSDT"}
            await ws.send("not json")
            while "error" not in (reply := orjson.loads(await asyncio.wait_for(ws.recv(), 2))):
                pass
            assert reply["error"]["code"] == 3


@pytest.mark.asyncio
async def test_unknown_streams_are_accepted_and_stay_silent():
    async with Simulator(port=0, rate=800, seed=4) as sim:
        async with connect(f"{sim.ws_url}/stream?streams=notradeusdt@aggTrade/btcusdt@trade") as ws:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{sim.rest_url}/market/nothing/here")
    assert response.status_code == 404


# -- REST -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rest_pages_return_exactly_what_the_stream_delivered():
    async with Simulator(port=0, rate=1500, seed=5) as sim, httpx.AsyncClient() as http:
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            ticks = await read_ticks(ws, seconds=0.6)
            sim.pause()
            ticks = await read_until(ws, last_ids(sim), ticks)
        for symbol, streamed in by_symbol(ticks).items():
            first, last = streamed[0].trade_id, streamed[-1].trade_id
            assert last - first > 100
            # An odd page size makes page boundaries fall anywhere.
            served = await rest_all(http, sim.rest_url, symbol, first, last, limit=97)
            assert served == streamed
        # Past the newest trade: an empty page.
        response = await http.get(
            f"{sim.rest_url}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": last_ids(sim)["BTCUSDT"] + 1}
        )
        assert response.json() == []
        # Without fromId: the newest trades, ascending, 500 by default.
        response = await http.get(f"{sim.rest_url}/fapi/v1/aggTrades", params={"symbol": "ETHUSDT"})
        newest = parse_rest_agg_trades("ETHUSDT", response.json())
        assert newest[-1].trade_id == last_ids(sim)["ETHUSDT"]
        assert [t.trade_id for t in newest] == list(range(newest[0].trade_id, newest[-1].trade_id + 1))
        # By time: inclusive bounds.
        eth = by_symbol(ticks)["ETHUSDT"]
        start, end = eth[10].timestamp, eth[40].timestamp
        response = await http.get(
            f"{sim.rest_url}/fapi/v1/aggTrades", params={"symbol": "ETHUSDT", "startTime": start, "endTime": end}
        )
        window = parse_rest_agg_trades("ETHUSDT", response.json())
        assert window == [t for t in eth if start <= t.timestamp <= end]


@pytest.mark.asyncio
async def test_a_from_id_older_than_the_history_answers_from_the_oldest_kept_trade():
    async with Simulator(port=0, rate=5000, seed=6, history_limit=50, count=2000) as sim, httpx.AsyncClient() as http:
        await asyncio.wait_for(sim.wait_finished(), 3)
        stats = sim.exchange.stats()["BTCUSDT"]
        assert stats["last_id"] - stats["first_id"] == 49
        assert stats["generated"] > 50
        response = await http.get(
            f"{sim.rest_url}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": 5_000_000_000, "limit": 1000}
        )
    rows = parse_rest_agg_trades("BTCUSDT", response.json())
    assert [t.trade_id for t in rows] == list(range(stats["first_id"], stats["last_id"] + 1))


@pytest.mark.asyncio
async def test_klines_are_the_ohlcv_of_the_trades():
    async with Simulator(port=0, rate=1500, seed=7) as sim, httpx.AsyncClient() as http:
        await asyncio.sleep(1.3)
        sim.pause()
        stats = sim.exchange.stats()["BTCUSDT"]
        trades = await rest_all(http, sim.rest_url, "BTCUSDT", stats["first_id"], stats["last_id"], limit=1000)
        response = await http.get(f"{sim.rest_url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1s"})
        minute = await http.get(f"{sim.rest_url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m"})
        bad = await http.get(f"{sim.rest_url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "7m"})
    rows = response.json()
    expected: dict[int, list[Tick]] = defaultdict(list)
    for tick in trades:
        expected[tick.timestamp // 1000 * 1000].append(tick)
    assert rows[0][0] == min(expected)
    previous_close = None
    for row in rows:
        open_time, o, h, lo, c, volume, close_time, quote, count, taker_base, taker_quote, _ = row
        assert close_time == open_time + 999
        bucket = expected.get(open_time)
        if bucket is None:  # no trade in this second: the previous close, no volume
            assert (float(o), float(h), float(lo), float(c), float(volume), count) == (
                previous_close,
                previous_close,
                previous_close,
                previous_close,
                0.0,
                0,
            )
            continue
        prices = [t.price for t in bucket]
        assert (float(o), float(h), float(lo), float(c)) == (prices[0], max(prices), min(prices), prices[-1])
        assert count == len(bucket)
        assert float(volume) == pytest.approx(sum(t.quantity for t in bucket), abs=1e-9)
        assert float(quote) == pytest.approx(sum(t.price * t.quantity for t in bucket), rel=1e-9)
        assert (taker_base, taker_quote) == (volume, quote)
        previous_close = prices[-1]
    assert sum(row[8] for row in rows) == len(trades)
    # The 1m klines start with the synthetic pre-history; the rest are the trades'.
    live = [row for row in minute.json() if row[0] >= trades[0].timestamp // 60_000 * 60_000]
    assert sum(row[8] for row in live) == len(trades)
    assert bad.status_code == 400 and bad.json() == {"code": -1120, "msg": "Invalid interval."}


@pytest.mark.asyncio
async def test_rest_reference_endpoints_and_errors():
    async with Simulator(port=0, rate=200, seed=8) as sim, httpx.AsyncClient() as http:
        base = sim.rest_url
        info = (await http.get(f"{base}/fapi/v1/exchangeInfo")).json()
        server_time = (await http.get(f"{base}/fapi/v1/time")).json()["serverTime"]
        ping = await http.get(f"{base}/fapi/v1/ping")
        missing = await http.get(f"{base}/fapi/v1/aggTrades")
        unknown = await http.get(f"{base}/fapi/v1/aggTrades", params={"symbol": "NOPEUSDT"})
        bad_id = await http.get(f"{base}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": "-1"})
        too_many = await http.get(f"{base}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "limit": 1001})
        stats = (await http.get(f"{base}/sim/stats")).json()
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert set(symbols) == {"BTCUSDT", "ETHUSDT"}
    btc_filters = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
    assert symbols["BTCUSDT"]["status"] == "TRADING"
    assert btc_filters["PRICE_FILTER"]["tickSize"] == "0.10" and btc_filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert {f["filterType"]: f for f in symbols["ETHUSDT"]["filters"]}["PRICE_FILTER"]["tickSize"] == "0.01"
    assert abs(server_time - time.time() * 1000) < 1000
    assert ping.status_code == 200 and ping.json() == {}
    assert missing.status_code == 400 and missing.json()["code"] == -1102
    assert unknown.status_code == 400 and unknown.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert bad_id.status_code == 400 and bad_id.json()["code"] == -1100
    assert too_many.status_code == 400 and too_many.json()["code"] == -1130
    assert set(stats["BTCUSDT"]) == {"first_id", "last_id", "generated", "first_time", "last_time"}
    assert stats["generated"] == stats["BTCUSDT"]["generated"] + stats["ETHUSDT"]["generated"]


@pytest.mark.asyncio
async def test_exchange_info_can_list_a_delisted_and_a_silent_symbol_that_never_trade():
    async with Simulator(port=0, rate=400, seed=8, delisted=["lunausdt"], silent=["XRPUSDT"]) as sim:
        async with httpx.AsyncClient() as http:
            info = (await http.get(f"{sim.rest_url}/fapi/v1/exchangeInfo")).json()
            url = f"{sim.ws_url}/stream?streams=btcusdt@aggTrade/lunausdt@aggTrade/xrpusdt@aggTrade"
            async with connect(url) as ws:
                ticks = await read_ticks(ws, count=100)
            trades = await http.get(f"{sim.rest_url}/fapi/v1/aggTrades", params={"symbol": "LUNAUSDT"})
            klines = await http.get(f"{sim.rest_url}/fapi/v1/klines", params={"symbol": "XRPUSDT", "interval": "1m"})
    listed = {s["symbol"]: (s["status"], s["contractType"]) for s in info["symbols"]}
    assert listed == {
        "BTCUSDT": ("TRADING", "PERPETUAL"),
        "ETHUSDT": ("TRADING", "PERPETUAL"),
        "LUNAUSDT": ("SETTLING", "PERPETUAL"),
        "XRPUSDT": ("TRADING", "PERPETUAL"),
    }
    assert len(ticks) == 100 and {t.symbol for t in ticks} == {"BTCUSDT"}
    assert (trades.status_code, trades.json(), klines.status_code, klines.json()) == (200, [], 200, [])
    assert set(sim.exchange.stats()) >= {"BTCUSDT", "ETHUSDT"} and "LUNAUSDT" not in sim.exchange.symbols


def test_an_exchange_lists_any_contract_without_trading_it_but_not_a_traded_one_twice():
    exchange = Exchange([symbol_spec("BTCUSDT")], listed={"BTCUSDT_260327": ("TRADING", "CURRENT_QUARTER")})
    (quarterly,) = [s for s in exchange.exchange_info()["symbols"] if s["symbol"] == "BTCUSDT_260327"]
    assert (quarterly["pair"], quarterly["contractType"]) == ("BTCUSDT", "CURRENT_QUARTER")
    with pytest.raises(ValueError, match="BTCUSDT is already listed"):
        Exchange([symbol_spec("BTCUSDT")], listed={"BTCUSDT": ("SETTLING", "PERPETUAL")})
    with pytest.raises(ValueError, match="already listed"):
        exchange.add_symbol(symbol_spec("BTCUSDT_260327"))


@pytest.mark.asyncio
async def test_client_messages_are_counted_by_method():
    async with Simulator(port=0, rate=50, seed=8) as sim:
        async with connect(f"{sim.ws_url}/ws") as ws:
            for method in ("SUBSCRIBE", "SUBSCRIBE", "LIST_SUBSCRIPTIONS"):
                await ws.send(orjson.dumps({"method": method, "params": ["btcusdt@aggTrade"], "id": 1}).decode())
                while "id" not in orjson.loads(await asyncio.wait_for(ws.recv(), 2)):
                    pass
    assert sim.requests == {"SUBSCRIBE": 2, "LIST_SUBSCRIPTIONS": 1}


# -- faults -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_drop_aborts_every_connection_without_a_close_frame():
    async with Simulator(port=0, rate=500, seed=9) as sim, httpx.AsyncClient() as http:
        async with connect(f"{sim.ws_url}/{BOTH}") as ws1, connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws2:
            await read_ticks(ws1, count=5)
            await read_ticks(ws2, count=5)
            assert sim.exchange.stats()["connections"] == 2
            answer = await http.get(f"{sim.rest_url}/sim/fault", params={"kind": "drop"})
            assert answer.json() == {"ok": True, "kind": "drop", "dropped": 2}
            for ws in (ws1, ws2):
                with pytest.raises(ConnectionClosedError) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 2)
                assert closed.value.rcvd is None  # no close frame: an abrupt TCP drop
        await asyncio.sleep(0.05)
        stats = sim.exchange.stats()
        assert stats["connections"] == 0 and stats["faults"] == {"drop": 1}
        # The exchange itself goes on.
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            assert await read_ticks(ws, count=3)


@pytest.mark.asyncio
async def test_refuse_answers_503_for_a_while_and_rest_keeps_the_trades():
    async with Simulator(port=0, rate=1000, seed=10) as sim, httpx.AsyncClient() as http:
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            await read_ticks(ws, count=5)
            sim.fault_refuse(0.6)
            with pytest.raises(ConnectionClosedError):
                while True:
                    await asyncio.wait_for(ws.recv(), 2)
        before = last_ids(sim)["BTCUSDT"]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{sim.ws_url}/{BOTH}"):
                pass
        assert refused.value.response.status_code == 503
        # REST is not refused, and trading goes on.
        await asyncio.sleep(0.2)
        response = await http.get(f"{sim.rest_url}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": before})
        assert len(response.json()) > 50
        await asyncio.sleep(0.5)
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            assert await read_ticks(ws, count=3)


@pytest.mark.asyncio
async def test_malformed_sends_one_invalid_frame_and_the_stream_goes_on():
    async with Simulator(port=0, rate=800, seed=11) as sim:
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            await read_ticks(ws, count=3)
            assert sim.fault_malformed() == 1
            bad = 0
            good: list[Tick] = []
            deadline = time.monotonic() + 2
            while len(good) < 30 and time.monotonic() < deadline:
                frame = await asyncio.wait_for(ws.recv(), 2)
                try:
                    tick = parse_frame(frame)
                except MalformedFrame:
                    bad += 1
                    assert frame.startswith('{"stream":"')
                    continue
                if tick is not None:
                    good.append(tick)
    assert bad == 1 and len(good) == 30
    assert_contiguous(good)


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limit_answers_the_next_rest_requests_with_retry_after(status):
    async with Simulator(port=0, rate=300, seed=12) as sim, httpx.AsyncClient() as http:
        await asyncio.sleep(0.1)
        control = await http.post(
            f"{sim.rest_url}/sim/fault", params={"kind": "rate_limit", "count": 2, "status": status, "retry_after": 3}
        )
        assert control.status_code == 200
        url = f"{sim.rest_url}/fapi/v1/aggTrades"
        answers = [await http.get(url, params={"symbol": "BTCUSDT", "fromId": 0}) for _ in range(3)]
        # The exchange's own control endpoints are not rate limited.
        assert (await http.get(f"{sim.rest_url}/sim/stats")).status_code == 200
    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert answers[0].json()["code"] == -1003
    assert answers[2].json()[0]["a"] == 5_000_000_000


@pytest.mark.asyncio
async def test_faults_can_be_scheduled():
    async with Simulator(port=0, rate=800, seed=13, faults=["malformed@0.3", "drop@0.6"]) as sim:
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            malformed = 0
            started = time.monotonic()
            with pytest.raises(ConnectionClosedError):
                while True:
                    try:
                        parse_frame(await asyncio.wait_for(ws.recv(), 2))
                    except MalformedFrame:
                        malformed += 1
            elapsed = time.monotonic() - started
    assert malformed == 1
    assert 0.4 < elapsed < 1.5
    assert sim.exchange.stats()["faults"] == {"malformed": 1, "drop": 1}


def test_fault_specs_parse_and_bad_ones_are_rejected():
    assert parse_fault_spec("drop@10").params == {}
    spec = parse_fault_spec("refuse@20:5")
    assert (spec.kind, spec.at, spec.params) == ("refuse", 20.0, {"seconds": 5.0})
    assert parse_fault_spec("rate_limit@5:3:418:2").params == {"count": 3, "status": 418, "retry_after": 2}
    for bad in ("drop", "explode@3", "drop@x", "malformed@1:2", "refuse@-1", "rate_limit@1:2:500"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


# -- scenarios ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_seed_makes_the_cointegrated_trades_deterministic():
    async def run(seed: int) -> dict[str, list[tuple[int, float, float]]]:
        async with Simulator(port=0, rate=20_000, seed=seed, count=3000) as sim:
            await asyncio.wait_for(sim.wait_finished(), 3)
            return {
                s: [(t.trade_id, t.price, t.quantity) for t in sim.exchange.agg_trades(s, from_id=0, limit=10_000)]
                for s in sim.exchange.symbols
            }

    first, again, other = await run(42), await run(42), await run(43)
    assert sum(len(rows) for rows in first.values()) == 3000
    assert first == again
    assert first != other


async def test_the_market_opens_on_a_whole_second_once_every_symbol_has_a_subscriber():
    async def run(wait: float) -> list[tuple[str, int, float, float]]:
        async with Simulator(port=0, rate=400, seed=21, start_on_subscribe=True) as sim:
            async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as btc:
                await asyncio.sleep(wait)
                assert sim.exchange.stats()["generated"] == 0  # nobody listens to ETH yet
                async with connect(f"{sim.ws_url}/{BOTH}") as ws:
                    ticks = await read_ticks(ws, seconds=1.6)
                assert await read_ticks(btc, count=1)
        origin = min(t.timestamp for t in ticks) // 1000 * 1000
        return [(t.symbol, t.timestamp - origin, t.price, t.quantity) for t in ticks]

    early, late = await run(0.1), await run(0.7)
    common = min(len(early), len(late)) - 50  # what both runs surely read
    assert common > 100
    assert early[:common] == late[:common]  # same trades at the same offsets into the same seconds


def bars(scenario: PairScenario, seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """Last price of each one-second bar of both legs, straight from the scenario."""
    batch = scenario.take(float(seconds), 10**7)
    last: dict[str, np.ndarray] = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        rows = [(off, p) for s, off, p in zip(batch.symbols, batch.offsets, batch.prices, strict=True) if s == symbol]
        secs = np.array([int(off) for off, _ in rows])
        prices = np.array([p for _, p in rows])
        closes = np.full(seconds, np.nan)
        closes[secs] = prices  # later trades overwrite earlier ones
        last[symbol] = closes
    keep = ~(np.isnan(last["BTCUSDT"]) | np.isnan(last["ETHUSDT"]))
    return last["BTCUSDT"][keep], last["ETHUSDT"][keep]


def spread_half_life(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(hedge ratio, AR(1) half-life in bars) of the OLS residual of y on x."""
    beta, alpha = np.polyfit(x, y, 1)
    resid = y - alpha - beta * x
    phi = np.polyfit(resid[:-1], resid[1:], 1)[0]
    return beta, (np.log(0.5) / np.log(phi) if 0 < phi < 1 else np.inf)


def test_the_cointegrated_pair_has_its_hedge_ratio_and_half_life():
    scenario = PairScenario(rate=50, seed=1, hedge_ratio=20, half_life=30, spread_sigma=15)
    y, x = bars(scenario, 3600)
    beta, half_life = spread_half_life(y, x)
    assert beta == pytest.approx(20, abs=1)
    # Bar closes of the two legs are up to a second apart, which adds noise to
    # the spread and shortens the measured half-life (about 20 s for 30 s).
    assert 10 < half_life < 45
    assert 10 < np.std(y - scenario.alpha - 20 * x) < 20
    assert np.corrcoef(np.diff(y), np.diff(x))[0, 1] > 0.8

    y, x = bars(PairScenario(rate=50, seed=1, mean_reverting=False, hedge_ratio=20, half_life=30), 3600)
    _, wandering = spread_half_life(y, x)
    assert wandering > 60
    assert np.corrcoef(np.diff(y), np.diff(x))[0, 1] > 0.8


def test_a_shock_jumps_the_spread_and_decays():
    scenario = PairScenario(rate=50, seed=3, shocks=[(100.0, 6.0)], spread_sigma=15, half_life=10)
    batch = scenario.take(200.0, 10**6)
    spread: dict[int, list[float]] = defaultdict(list)
    eth = None
    for symbol, offset, price in zip(batch.symbols, batch.offsets, batch.prices, strict=True):
        if symbol == "ETHUSDT":
            eth = price
        elif eth is not None:
            spread[int(offset)].append(price - 20 * eth - scenario.alpha)
    before = np.mean(spread[99])
    after = np.mean(spread[100] + spread[101])
    later = np.mean([s for sec in range(160, 200) for s in spread[sec]])
    assert after - before > 3 * 15
    assert abs(later) < 3 * 15


@pytest.mark.parametrize("size", [3.0, 15.0, -15.0])
def test_a_shock_of_any_size_jumps_the_spread_by_that_many_sigmas(size):
    """One shock on a slow spread (sigma 5 USD, half-life 60 s): the spread's move at it is the shock."""
    scenario = PairScenario(rate=100, seed=11, shocks=[(60.0, size)], spread_sigma=5, half_life=60)
    y, x = bars(scenario, 90)
    assert (y > 0).all() and (x > 0).all()
    moves = np.diff(y - 20 * x)  # second by second
    assert moves[59] == pytest.approx(size * 5, abs=5)
    assert np.abs(np.delete(moves, 59)).max() < 10


@pytest.mark.parametrize("seed", [0, 1, 2**31, 2**64 - 1, None])
def test_the_random_walk_market_trades_on_any_seed(seed):
    """``random_walk`` on the demo market's options with a 15-sigma shock a minute: trades, shocks, klines."""
    options = {"rate": 100, "half_life": 5, "spread_sigma": 5, "shock_every": 60, "shock_size": 15}
    scenario = make_scenario("random_walk", seed=seed, **options)
    y, x = bars(scenario, 600)
    assert len(y) > 590 and np.isfinite(y).all() and (y > 0).all() and (x > 0).all()
    moves = np.diff(y - 20 * x)
    shocks = np.flatnonzero(np.abs(moves) > 40) + 1  # the seconds the spread jumped
    assert shocks.tolist() == list(range(60, 600, 60))
    assert moves[shocks - 1] == pytest.approx([75.0, -75.0] * 4 + [75.0], abs=10)  # alternating in sign
    calm = np.ones(len(moves), dtype=bool)
    calm[shocks - 1] = False
    assert np.corrcoef(np.diff(np.log(y))[calm], np.diff(np.log(x))[calm])[0, 1] > 0.8
    assert scenario.prehistory("BTCUSDT", INTERVALS["1m"]) is not None
    if seed is not None:
        assert np.array_equal(bars(make_scenario("random_walk", seed=seed, **options), 600)[0], y)


@pytest.mark.asyncio
async def test_replay_restamps_times_and_keeps_the_recorded_ids(recorded_frames):
    recorded = [orjson.loads(line)["data"] for line in recorded_frames]
    async with Simulator(port=0, scenario="replay", speed=4.0) as sim:
        started_ms = time.time() * 1000
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            ticks = await read_ticks(ws, seconds=1.0)
    assert ticks
    first_btc = next(d for d in recorded if d["s"] == "BTCUSDT")
    original = {(d["s"], d["t"]): d for d in recorded}
    t0 = recorded[0]["T"]
    anchor = ticks[0]
    anchor_orig = original[(anchor.symbol, anchor.trade_id)]
    for tick in ticks:
        row = original[(tick.symbol, tick.trade_id)]  # an original trade id, as "a"
        assert tick.price == float(row["p"]) and tick.quantity == float(row["q"])
        # Re-stamped to now, the original spacing scaled by the speed.
        expected = anchor.timestamp + (row["T"] - anchor_orig["T"]) / 4.0
        assert abs(tick.timestamp - expected) <= 1.5
        assert tick.timestamp >= started_ms - 100
    assert sim.exchange.stats()["BTCUSDT"]["first_id"] == first_btc["t"]
    assert min(t.timestamp for t in ticks) - started_ms < (anchor_orig["T"] - t0) / 4.0 + 200
    assert_contiguous(ticks)


@pytest.mark.asyncio
async def test_replay_loops_with_ids_that_keep_counting():
    async with Simulator(port=0, scenario="replay", speed=0, count=40_000) as sim:
        await asyncio.wait_for(sim.wait_finished(), 3)
        stats = sim.exchange.stats()
    # The recording has 21,313 BTC and 14,076 ETH trades; the second pass goes on from there.
    assert stats["generated"] == 40_000
    assert stats["BTCUSDT"]["generated"] > 21_313
    assert stats["BTCUSDT"]["last_id"] - stats["BTCUSDT"]["first_id"] + 1 == stats["BTCUSDT"]["generated"]
    assert stats["ETHUSDT"]["last_id"] - stats["ETHUSDT"]["first_id"] + 1 == stats["ETHUSDT"]["generated"]


# -- modes and the exchange's memory -----------------------------------------------------


@pytest.mark.asyncio
async def test_blast_waits_for_a_subscriber_then_sends_the_whole_count():
    async with Simulator(port=0, rate=100, seed=14, count=20_000, blast=True) as sim:
        await asyncio.sleep(0.2)
        assert sim.exchange.stats()["generated"] == 0
        async with connect(f"{sim.ws_url}/{BOTH}") as ws:
            ticks = await read_ticks(ws, count=20_000)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
    assert len(ticks) == 20_000
    assert_contiguous(ticks)
    assert [t.trade_id for t in ticks if t.symbol == "BTCUSDT"][0] == 5_000_000_000


@pytest.mark.asyncio
async def test_pause_stops_trading_at_once_and_resume_goes_on():
    async with Simulator(port=0, rate=2000, seed=15) as sim, httpx.AsyncClient() as http:
        await asyncio.sleep(0.1)
        (await http.post(f"{sim.rest_url}/sim/pause")).raise_for_status()
        frozen = sim.exchange.stats()["generated"]
        await asyncio.sleep(0.2)
        assert sim.exchange.stats()["generated"] == frozen
        sim.resume()
        await asyncio.sleep(0.2)
        resumed = sim.exchange.stats()["generated"] - frozen
    # No burst for the paused time: ~0.2 s worth of trades, not ~0.4 s.
    assert 100 < resumed < 650


def test_the_exchange_keeps_a_bounded_compact_history():
    exchange = Exchange([symbol_spec("BTCUSDT")], history_limit=100_000)
    for i in range(250_000):
        exchange.record("BTCUSDT", 1_700_000_000_000 + i, 60_000.0 + (i % 7) / 10, 0.001)
    stats = exchange.stats()["BTCUSDT"]
    assert stats["generated"] == 250_000
    assert (stats["first_id"], stats["last_id"]) == (5_000_150_000, 5_000_249_999)
    rows = exchange.agg_trades("BTCUSDT", from_id=5_000_000_000, limit=3)
    assert [t.trade_id for t in rows] == [5_000_150_000, 5_000_150_001, 5_000_150_002]
    book = exchange._books["BTCUSDT"]
    assert len(book.times) <= 100_000 + 25_000  # trimmed in slabs
    assert book.times.itemsize + book.prices.itemsize + book.qtys.itemsize == 24  # bytes a trade
    # Time never goes backwards per symbol.
    late = exchange.record("BTCUSDT", 1, 60_000.0, 0.001)
    assert late.timestamp == 1_700_000_000_000 + 249_999


def test_klines_windows_carry_empty_candles_and_end_with_the_one_in_progress():
    exchange = Exchange([symbol_spec("ETHUSDT")])
    base = 1_800_000_000_000  # a whole minute
    for offset, price, qty in [(1_000, 3000.0, 1.0), (59_000, 3001.5, 2.0), (125_000, 2999.0, 0.5)]:
        exchange.record("ETHUSDT", base + offset, price, qty)
    now = base + 190_000  # the fourth minute is in progress
    rows = exchange.klines("ETHUSDT", "1m", now_ms=now)
    assert [r[0] for r in rows] == [base, base + 60_000, base + 120_000, base + 180_000]
    assert rows[0][1:9] == ["3000.00", "3001.50", "3000.00", "3001.50", "3.000", base + 59_999, "9003.00000", 2]
    assert rows[1][1:6] == ["3001.50", "3001.50", "3001.50", "3001.50", "0.000"] and rows[1][8] == 0
    assert rows[3][4] == "2999.00" and rows[3][8] == 0
    # startTime selects candles opening at or after it, endTime at or before it.
    window = exchange.klines("ETHUSDT", "1m", start_time=base + 1, end_time=base + 120_000, now_ms=now)
    assert [r[0] for r in window] == [base + 60_000, base + 120_000]
    assert [r[0] for r in exchange.klines("ETHUSDT", "1m", start_time=base, limit=2, now_ms=now)] == [
        base,
        base + 60_000,
    ]
    assert [r[0] for r in exchange.klines("ETHUSDT", "1m", limit=1, now_ms=now)] == [base + 180_000]


# -- klines pre-history ------------------------------------------------------------------

START = 1_800_000_012_345  # scenario time 0 of the pre-history tests (not on a candle edge)


def prehistory_exchange(
    scenario: PairScenario, *trades: tuple[str, int, float, float], listed_since: int = LISTED_SINCE_MS
) -> Exchange:
    """An exchange serving ``scenario``'s pre-history from START, with some trades after it."""
    exchange = Exchange(scenario.specs, listed_since=listed_since)
    exchange.set_prehistory(scenario.prehistory, start_ms=START)
    for symbol, offset, price, qty in trades:
        exchange.record(symbol, START + offset, price, qty)
    return exchange


def page_back(exchange: Exchange, symbol: str, interval: str, now: int, limit: int) -> list[list]:
    """Every kline, fetched newest first with ``endTime`` like a backward backfill."""
    rows: list[list] = []
    end = None
    while True:
        page = exchange.klines(symbol, interval, end_time=end, limit=limit, now_ms=now)
        if not page:
            return rows
        rows[:0] = page
        end = page[0][0] - 1


def closes(rows: list[list]) -> np.ndarray:
    return np.array([float(r[4]) for r in rows])


@pytest.mark.parametrize("interval", ["1m", "5m"])
def test_pair_klines_serve_a_prehistory_that_pages_like_binance(interval):
    width = INTERVALS[interval]
    scenario = PairScenario(seed=3)
    # Listed 6 days before the start: 8,640 1m candles (the first 1,500 drawn at
    # once, then blocks) and 1,728 5m ones.
    listed_since = START - 6 * 86_400_000 + 1
    trades = ("ETHUSDT", 70_000, 3000.5, 0.1), ("BTCUSDT", 71_000, 62001.0, 0.01)
    exchange = prehistory_exchange(scenario, *trades, listed_since=listed_since)
    now = START + 3 * width + 5
    start_open = START // width * width
    first_open = -(-listed_since // width) * width  # the first candle opening at or after the listing
    for symbol, start_price in [("BTCUSDT", "62000.00"), ("ETHUSDT", "3000.00")]:
        everything = page_back(exchange, symbol, interval, now, limit=700)
        opens = [r[0] for r in everything]
        assert opens == list(range(first_open, now // width * width + 1, width))  # contiguous up to "now"
        pre = [r for r in everything if r[0] < start_open]
        assert len(pre) == (start_open - first_open) // width > PREHISTORY_BARS
        assert pre[-1][0] == start_open - width and pre[-1][4] == start_price  # ends at the start price
        # Paging forward with startTime gives the same candles.
        forward, start = [], 0
        while page := exchange.klines(symbol, interval, start_time=start, limit=600, now_ms=now):
            forward.extend(page)
            start = page[-1][0] + 1
        assert forward == everything
        # limit alone: the newest candles, the in-progress one last.
        newest = exchange.klines(symbol, interval, limit=1500, now_ms=now)
        assert newest == everything[-1500:]
        # startTime + endTime: candles opening in [start, end], at most limit of them.
        lo, hi = pre[100][0] - 1, pre[199][0]
        window = exchange.klines(symbol, interval, start_time=lo, end_time=hi, now_ms=now, limit=1000)
        assert [r[0] for r in window] == [r[0] for r in pre[100:200]]
        assert exchange.klines(symbol, interval, start_time=lo, end_time=hi, now_ms=now, limit=30) == pre[100:130]
        assert exchange.klines(symbol, interval, end_time=pre[9][0], limit=1000, now_ms=now) == pre[:10]
        assert exchange.klines(symbol, interval, end_time=pre[0][0] - 1, now_ms=now) == []
        # The same shape as live klines, and consistent OHLC.
        for row in pre:
            open_time, o, h, lo_, c, volume, close_time, quote, count, taker_base, taker_quote, ignore = row
            assert close_time == open_time + width - 1
            assert all(isinstance(v, str) for v in (o, h, lo_, c, volume, quote, taker_base, taker_quote, ignore))
            assert len(c.split(".")[1]) == 2 and len(volume.split(".")[1]) == 3 and len(quote.split(".")[1]) == 5
            assert float(lo_) <= min(float(o), float(c)) and max(float(o), float(c)) <= float(h)
            assert float(volume) > 0 and float(quote) > 0 and isinstance(count, int) and count > 0
            assert (taker_base, taker_quote, ignore) == (volume, quote, "0")
        # Candles open where the previous one closed: no jumps.
        assert [r[1] for r in pre[1:]] == [r[4] for r in pre[:-1]]
    # aggTrades know nothing of it.
    assert exchange.agg_trades("ETHUSDT", start_time=0, end_time=START - 1) == []
    assert [t.price for t in exchange.agg_trades("ETHUSDT", start_time=0)] == [3000.5]


def test_the_prehistory_is_cheap_lazy_cached_and_absent_where_it_does_not_apply():
    scenario = PairScenario(seed=4)
    for interval in ("1m", "5m"):
        began = time.perf_counter()
        built = scenario.prehistory("BTCUSDT", INTERVALS[interval])
        assert time.perf_counter() - began < 0.05
        assert scenario.prehistory("BTCUSDT", INTERVALS[interval]) is built  # cached
    assert set(scenario._prehistory) == {INTERVALS["1m"], INTERVALS["5m"]}  # only what was asked for
    assert scenario.prehistory("BTCUSDT", INTERVALS["1s"]) is None
    assert scenario.prehistory("BTCUSDT", INTERVALS["1d"]) is None
    assert scenario.prehistory("SOLUSDT", INTERVALS["1m"]) is None
    exchange = prehistory_exchange(scenario, ("BTCUSDT", 2_500, 62000.5, 0.01))
    assert exchange.klines("BTCUSDT", "1s", now_ms=START + 3_000)[0][0] == (START + 2_500) // 1000 * 1000  # trades only
    # Replay has no pre-history: its klines start with its trades.
    replay = Simulator(port=0, scenario="replay")
    symbol = replay.exchange.symbols[0]
    replay.exchange.record(symbol, START, 100.0, 1.0)
    assert [r[0] for r in replay.exchange.klines(symbol, "1m", now_ms=START)] == [START // 60_000 * 60_000]


def test_forgotten_trades_leave_a_hole_between_the_prehistory_and_the_kept_ones():
    scenario = PairScenario(seed=5)
    exchange = Exchange(scenario.specs, history_limit=2)
    exchange.set_prehistory(scenario.prehistory, start_ms=START)
    for minute in range(4):  # the fourth trade trims the first two away (in slabs)
        exchange.record("ETHUSDT", START + minute * 60_000, 3000.0 + minute, 0.1)
    start_open = START // 60_000 * 60_000
    rows = exchange.klines("ETHUSDT", "1m", limit=1500, now_ms=START + 200_000)
    opens = [r[0] for r in rows]
    assert opens[-2:] == [start_open + 120_000, start_open + 180_000]
    assert opens[-3] == start_open - 60_000  # the pre-history, then the hole of the forgotten minutes
    assert len(rows) == 1500 and opens == sorted(opens)
    assert rows[-2][1] == "3002.00"  # from the kept trade, not carried from the pre-history


@pytest.mark.asyncio
async def test_rest_klines_join_the_prehistory_to_the_live_candles():
    async with Simulator(port=0, rate=400, seed=9) as sim, httpx.AsyncClient() as http:
        await asyncio.sleep(0.3)
        sim.pause()
        stats = sim.exchange.stats()
        got = {}
        for symbol in ("BTCUSDT", "ETHUSDT"):
            for interval in ("1m", "5m"):
                response = await http.get(
                    f"{sim.rest_url}/fapi/v1/klines", params={"symbol": symbol, "interval": interval, "limit": 1500}
                )
                assert response.status_code == 200, response.text
                got[symbol, interval] = response.json()
            first_time = stats[symbol]["first_time"]
            before = await http.get(
                f"{sim.rest_url}/fapi/v1/aggTrades",
                params={"symbol": symbol, "startTime": first_time - 3_600_000, "endTime": first_time - 1},
            )
            assert before.json() == []  # aggTrades have no pre-history
    for (symbol, interval), rows in got.items():
        width = INTERVALS[interval]
        first_trade = sim.exchange.agg_trades(symbol, from_id=0, limit=1)[0]
        live = first_trade.timestamp // width * width
        assert len(rows) == 1500
        k = [r[0] for r in rows].index(live)
        assert k >= 1490  # all but the newest few are pre-history
        start = {"BTCUSDT": 62000.0, "ETHUSDT": 3000.0}[symbol]
        assert float(rows[k - 1][4]) == start  # the pre-history ends at the starting price...
        assert float(rows[k][1]) == first_trade.price == pytest.approx(start, rel=5e-4)  # ...where trading begins
        assert rows[k][8] > 0


def test_the_cointegrated_prehistory_is_cointegrated_and_the_random_walk_one_is_not():
    from statsmodels.tsa.stattools import adfuller

    now = START + 1
    for mean_reverting in (True, False):
        exchange = prehistory_exchange(PairScenario(seed=1, mean_reverting=mean_reverting, hedge_ratio=20))
        # The last 300 closed 1m candles before the start, as an app warming up gets them.
        y = closes(exchange.klines("BTCUSDT", "1m", limit=301, now_ms=now)[:-1])
        x = closes(exchange.klines("ETHUSDT", "1m", limit=301, now_ms=now)[:-1])
        assert len(y) == len(x) == 300
        p_value = adfuller(y - 20 * x, result_object=False)[1]
        beta = np.polyfit(x, y, 1)[0]
        if mean_reverting:
            assert p_value < 0.001 and beta == pytest.approx(20, abs=0.5)
        else:
            assert p_value > 0.05


def test_a_seed_makes_the_prehistory_deterministic_without_changing_the_trades():
    def rows(seed: int, interval: str) -> list[list]:
        return prehistory_exchange(PairScenario(seed=seed)).klines("BTCUSDT", interval, limit=1500, now_ms=START)

    assert rows(11, "1m") == rows(11, "1m")
    assert rows(11, "1m") != rows(12, "1m")
    # Each interval has its own draws, not a rescaled copy of another's.
    one, five = np.diff(closes(rows(11, "1m"))), np.diff(closes(rows(11, "5m")))
    assert abs(np.corrcoef(one[-500:], five[-500:])[0, 1]) < 0.2
    # Building the pre-history leaves the live trades as they were.
    plain, asked = PairScenario(seed=11), PairScenario(seed=11)
    asked.prehistory("BTCUSDT", INTERVALS["1m"])
    assert plain.take(30.0, 10_000) == asked.take(30.0, 10_000)
