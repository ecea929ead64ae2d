"""The feed client against the offline exchange: reconnects, gap repair, dedupe, faults.

The exchange runs on loopback in the test's own event loop; no other network.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections import Counter

import httpx
import pytest
import websockets

from ingestion.binance import MalformedFrame, Tick
from ingestion.client import Backoff, FeedClient, RateLimited, RestClient, StreamConnection, klines_fetch
from ingestion.models import FeedStatus, Symbol
from ingestion.models import Tick as TickRow
from ingestion.services import Feed
from ingestion.simulator import Simulator
from ingestion.writer import Batch, TickWriter
from tests.support import SYMBOLS, exchange_last_ids, wait_for


class MemoryStore:
    """A store that keeps every batch, so a test can count each trade."""

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.batches: list[Batch] = []

    def __call__(self, batch: Batch) -> int:
        self.ticks.extend(batch.ticks)
        self.batches.append(batch)
        return len(batch.ticks)

    def ids(self, symbol: str) -> list[int]:
        return [t.trade_id for t in self.ticks if t.symbol == symbol]


async def drain(sim: Simulator, client: FeedClient, writer: TickWriter, store: MemoryStore) -> dict[str, int]:
    """Stop the exchange's trading and wait until the client has every trade."""
    sim.pause()
    last = exchange_last_ids(sim)
    await wait_for(lambda: all(client.tracker.high(s) == last[s] for s in SYMBOLS), what="the client to catch up")
    await wait_for(lambda: client.tracker.missing_count() == 0, what="gaps to be filled")
    await writer.flush()
    return last


def assert_each_trade_once(store: MemoryStore, last: dict[str, int]) -> None:
    for symbol in SYMBOLS:
        ids = store.ids(symbol)
        duplicates = [i for i, n in Counter(ids).items() if n > 1]
        assert not duplicates, f"{symbol}: duplicates {duplicates[:5]}"
        first = min(ids)
        assert sorted(ids) == list(range(first, last[symbol] + 1)), f"{symbol}: missing trades"


@pytest.fixture
def memory_feed():
    """Build a client writing to memory; the test runs it."""
    made: list[tuple[FeedClient, TickWriter, MemoryStore]] = []

    def build(sim: Simulator, **options) -> tuple[FeedClient, TickWriter, MemoryStore]:
        store = MemoryStore()
        writer = TickWriter(store, flush_interval=0.05)
        options.setdefault("backoff", Backoff(min_delay=0.2, max_delay=1.0))
        client = FeedClient(symbols=SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url, writer=writer, **options)
        made.append((client, writer, store))
        return client, writer, store

    return build


async def run_client(client: FeedClient, writer: TickWriter):
    return asyncio.gather(client.run(), writer.run())


async def stop_client(client: FeedClient, writer: TickWriter, tasks) -> None:
    client.stop()
    await writer.close()
    tasks.cancel()
    await asyncio.gather(tasks, return_exceptions=True)


async def test_it_streams_both_symbols_over_one_connection(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=300, seed=1) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: all(client.buffers.last(s) for s in SYMBOLS), what="ticks of both symbols")
        last = await drain(sim, client, writer, store)
        assert sim.exchange.stats()["connections"] == 1
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    assert client.state.reconnects == 0
    newest_btc = max((t for t in store.ticks if t.symbol == "BTCUSDT"), key=lambda t: t.trade_id)
    assert client.buffers.last("BTCUSDT") == newest_btc


async def test_an_abrupt_drop_is_reconnected_and_its_gap_filled_from_rest(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=400, seed=2) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 50, what="first ticks")
        sim.fault_drop()
        await wait_for(lambda: client.state.reconnects == 1, what="the reconnect")
        await asyncio.sleep(0.5)
        last = await drain(sim, client, writer, store)
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    assert client.state.trades_backfilled > 0
    assert client.state.gaps_unfilled == 0


async def test_trades_during_a_refusal_window_come_from_rest(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=300, seed=3) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 50, what="first ticks")
        received_before = client.state.ticks_received
        sim.fault_refuse(2.0)
        await wait_for(lambda: client.state.connect_failures >= 1, what="a refused connect")
        await wait_for(lambda: client.state.connected, timeout=10, what="the connection to come back")
        await wait_for(lambda: client.state.ticks_received > received_before, what="live ticks again")
        last = await drain(sim, client, writer, store)
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    # ~2 s of trading at 300/s could only be had over REST.
    assert client.state.trades_backfilled > 300, client.state


async def test_a_malformed_frame_is_counted_and_the_feed_goes_on(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=300, seed=4) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 20, what="first ticks")
        sim.fault_malformed()
        await wait_for(lambda: client.state.malformed == 1, what="the malformed frame")
        n = client.state.ticks_received
        await wait_for(lambda: client.state.ticks_received > n + 50, what="more ticks after it")
        last = await drain(sim, client, writer, store)
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    assert client.state.reconnects == 0
    assert "malformed frame" in client.state.last_error


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"", b'[{"a": 1, "p": "1"'])
async def test_a_rest_answer_that_is_not_json_is_a_malformed_frame_the_backfill_retries(body):
    """A 200 whose body is not JSON raised orjson's error, which the backfill loop does not catch."""
    rest = RestClient("http://exchange.invalid")
    await rest.close()
    rest._http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)))
    with pytest.raises(MalformedFrame, match="not JSON"):
        await rest.agg_trades("BTCUSDT", 1)
    await rest.close()


@pytest.mark.parametrize("status", [429, 418])  # too many requests; IP banned for Retry-After
async def test_rate_limits_on_backfill_are_honoured(memory_feed, status):
    async with Simulator(port=0, scenario="cointegrated", rate=300, seed=5) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 50, what="first ticks")
        sim.fault_rate_limit(2, status=status, retry_after=1)
        started = time.monotonic()
        sim.fault_drop()
        await wait_for(lambda: client.state.rate_limited == 2, what=f"two {status} answers")
        last = await drain(sim, client, writer, store)
        elapsed = time.monotonic() - started
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    assert elapsed >= 2.0  # waited Retry-After (1 s) twice before asking again


async def test_klines_go_through_the_rest_client_and_their_rate_limits_are_waited_out():
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=5) as sim:
        rest = RestClient(sim.rest_url)
        sim.fault_rate_limit(1, status=429, retry_after=2)
        with pytest.raises(RateLimited) as raised:
            await rest.klines("BTCUSDT", "1m", 10)
        await rest.close()
        assert (raised.value.status, raised.value.retry_after, rest.state.rate_limited) == (429, 2, 1)
        sim.fault_rate_limit(1, status=418, retry_after=1)
        started = time.monotonic()
        klines = await klines_fetch(sim.rest_url, "BTCUSDT", "1m", limit=10, max_wait=5)
        elapsed = time.monotonic() - started
        sim.fault_rate_limit(1, status=418, retry_after=60)
        with pytest.raises(RateLimited):  # longer than the caller waits: the caller decides
            await klines_fetch(sim.rest_url, "BTCUSDT", "1m", limit=10, max_wait=5)
    assert elapsed >= 1.0
    assert len(klines) == 10
    first = klines[0].open_time
    assert [k.open_time for k in klines] == list(range(first, first + 10 * 60_000, 60_000))


async def test_a_gap_older_than_rest_history_is_recorded_not_hidden(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=400, seed=6, history_limit=100) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 50, what="first ticks")
        sim.fault_refuse(2.0)
        await wait_for(lambda: client.state.connect_failures >= 1, what="a refused connect")
        await wait_for(lambda: client.state.connected, timeout=10, what="the connection to come back")
        await wait_for(lambda: client.state.gaps_unfilled >= 1, what="the unfilled gap")
        await stop_client(client, writer, tasks)
    assert client.state.trades_unavailable > 0
    assert "no longer served by REST" in client.state.last_error


async def test_a_stream_where_no_symbol_trades_is_reconnected(memory_feed):
    """Nothing arrives at all: the connection is dead, whatever its TCP says."""
    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=7) as sim:
        client, writer, store = memory_feed(sim, silence_timeout=1.0)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 20, what="first ticks")
        sim.pause()
        await wait_for(lambda: client.state.reconnects >= 1, timeout=10, what="a watchdog reconnect")
        await stop_client(client, writer, tasks)
    assert "no trade for 1s on BTCUSDT,ETHUSDT; reconnecting" in client.state.last_error


async def test_a_symbol_silent_while_the_others_trade_is_reported_and_the_connection_kept(memory_feed):
    """The others' stream is never dropped for one symbol the exchange does not trade."""
    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=7) as sim:
        client, writer, store = memory_feed(sim, silence_timeout=0.5)
        client.set_symbols(["BTCUSDT", "NOTRADEUSDT"])  # the exchange never trades it
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 0, what="first ticks")
        await asyncio.sleep(4 * client.silence_timeout)
        reconnects, connections = client.state.reconnects, sim.exchange.connections_total
        btc_before = client.state.ticks_received
        await wait_for(lambda: client.state.ticks_received > btc_before, what="BTC ticks still flowing")
        await stop_client(client, writer, tasks)
    assert (reconnects, connections) == (0, 1)
    assert list(client.state.silent) == ["NOTRADEUSDT"]
    assert "NOTRADEUSDT: no trade for" in client.state.last_error
    assert "while the stream is live" in client.state.last_error


async def test_a_silent_symbol_is_resubscribed_with_backoff_and_checked_against_the_exchange(memory_feed):
    asked: list[list[str]] = []

    async def check(symbols: list[str]) -> dict[str, str]:
        asked.append(symbols)
        return {s: f"{s} is not a symbol of Binance USD-M futures" for s in symbols}

    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=7) as sim:
        client, writer, store = memory_feed(sim, silence_timeout=0.5, symbol_check=check)
        client.set_symbols(["BTCUSDT", "NOTRADEUSDT"])
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.unavailable, what="the check")
        await wait_for(lambda: sim.requests["SUBSCRIBE"] >= 3, what="three re-subscriptions")
        await asyncio.sleep(1.0)  # the next is due 2 s after the third (they come 0.5, 1, 2 s apart)
        subscribes = sim.requests["SUBSCRIBE"]
        await stop_client(client, writer, tasks)
    assert asked[0] == ["NOTRADEUSDT"]
    assert client.state.unavailable == {"NOTRADEUSDT": "NOTRADEUSDT is not a symbol of Binance USD-M futures"}
    assert 3 <= subscribes <= 4  # with backoff, not one every watchdog round (about 25 in these 3 s)
    assert client.state.reconnects == 0


async def test_a_silent_symbol_that_trades_again_is_no_longer_reported(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=100, seed=7, split=0.97) as sim:
        client, writer, store = memory_feed(sim, silence_timeout=0.3)
        tasks = await run_client(client, writer)
        await wait_for(lambda: "ETHUSDT" in client.state.silent, timeout=30, what="a quiet spell on ETHUSDT")
        await wait_for(lambda: "ETHUSDT" not in client.state.silent, timeout=30, what="ETHUSDT trading again")
        await stop_client(client, writer, tasks)


async def test_rotation_opens_the_new_connection_before_closing_the_old(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=400, seed=8) as sim:
        client, writer, store = memory_feed(sim, rotate_after=0.7)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.reconnects >= 3, what="three rotations")
        last = await drain(sim, client, writer, store)
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    assert client.state.connect_failures == 0


async def test_new_symbols_are_followed_without_a_restart(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=300, seed=9) as sim:
        client, writer, store = memory_feed(sim)
        client.set_symbols(["BTCUSDT"])
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.buffers.last("BTCUSDT") is not None, what="BTC ticks")
        assert client.buffers.last("ETHUSDT") is None
        client.set_symbols(SYMBOLS)
        await wait_for(lambda: client.buffers.last("ETHUSDT") is not None, what="ETH ticks after the change")
        await stop_client(client, writer, tasks)


@pytest.mark.django_db(transaction=True)
async def test_through_drop_refusal_and_malformed_frame_every_trade_is_stored_exactly_once(settings):
    """The spine's promise, end to end into the database, with the faults of one bad day."""
    settings.INGEST_FLUSH_INTERVAL = 0.05
    async with Simulator(port=0, scenario="cointegrated", rate=400, seed=11) as sim:
        feed = Feed(symbols=SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url, status_interval=0.2)
        task = asyncio.create_task(feed.run())
        await wait_for(lambda: feed.client is not None and feed.state.ticks_received > 100, what="first ticks")
        client = feed.client
        client.backoff = Backoff(min_delay=0.2, max_delay=1.0)
        sim.fault_malformed()
        await wait_for(lambda: feed.state.malformed == 1, what="the malformed frame")
        sim.fault_drop()
        await wait_for(lambda: feed.state.reconnects == 1, what="the reconnect after the drop")
        sim.fault_refuse(2.0)
        await wait_for(lambda: feed.state.connect_failures >= 1, what="a refused connect")
        await wait_for(lambda: feed.state.connected and feed.state.reconnects == 2, timeout=10, what="the reconnect")
        sim.pause()
        last = exchange_last_ids(sim)
        await wait_for(lambda: all(client.tracker.high(s) == last[s] for s in SYMBOLS), what="catch-up")
        await wait_for(lambda: client.tracker.missing_count() == 0, what="gaps filled")
        await asyncio.sleep(0.5)  # a status write after the last gap
        feed.stop()
        await task

    def stored() -> dict[str, tuple[int, int, int, int]]:
        from django.db.models import Count, Max, Min

        rows = TickRow.objects.values("symbol").annotate(n=Count("id"), lo=Min("trade_id"), hi=Max("trade_id"))
        return {r["symbol"]: r for r in rows}

    from asgiref.sync import sync_to_async

    rows = await sync_to_async(stored)()
    for symbol in SYMBOLS:
        row = rows[symbol]
        assert row["hi"] == last[symbol]
        assert row["n"] == last[symbol] - row["lo"] + 1, (
            f"{symbol}: stored {row['n']} of {last[symbol] - row['lo'] + 1}"
        )
        assert row["lo"] <= sim.exchange.stats()[symbol]["first_id"] + 10_000  # sanity: same exchange
    status = await sync_to_async(FeedStatus.objects.get)(name=feed.name)
    assert status.reconnects == 2
    assert status.malformed == 1
    assert status.gaps_unfilled == 0
    assert status.trades_backfilled > 0
    assert status.gaps_filled >= 2  # the drop's gap and the refusal's
    totals = await sync_to_async(lambda: {s.name: s.tick_count for s in Symbol.objects.all()})()
    assert totals == {s: rows[s]["n"] for s in SYMBOLS}


def batch_of(store: MemoryStore) -> dict[tuple[str, int], int]:
    """The index of the batch each trade was stored in."""
    return {(t.symbol, t.trade_id): i for i, batch in enumerate(store.batches) for t in batch.ticks}


async def test_a_gap_is_stored_with_the_trade_that_revealed_it_and_resolved_with_its_last_trade(memory_feed):
    async with Simulator(port=0, scenario="cointegrated", rate=400, seed=21) as sim:
        client, writer, store = memory_feed(sim)
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 100, what="first ticks")
        # Each REST page takes 1.5 s: the catch-up that follows the reconnect is still on its
        # first page when the stream's first trade reveals the hole (on a busy machine, a
        # faster catch-up could fill it before any live trade showed it).
        sim.fault_slow(5.0, 1.5)
        sim.fault_refuse(1.0)
        await wait_for(lambda: client.state.reconnects >= 1 and client.state.connected, timeout=10, what="reconnect")
        # The market goes on until a live trade has shown the hole (drain stops it).
        await wait_for(lambda: client.state.gaps_detected >= 1, timeout=10, what="a trade above the hole")
        last = await drain(sim, client, writer, store)
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    where = batch_of(store)
    found = [(i, g) for i, b in enumerate(store.batches) for g in b.gaps if g.missing is None]
    resolved = {
        (g.symbol, g.first_id): (i, g) for i, b in enumerate(store.batches) for g in b.gaps if g.missing is not None
    }
    assert found, "the outage left no gap behind"
    for i, gap in found:
        assert where[(gap.symbol, gap.last_id + 1)] == i  # the trade above the hole, in the same transaction
        j, resolution = resolved[(gap.symbol, gap.first_id)]
        assert resolution.missing == 0
        assert all(where[(gap.symbol, t)] <= j for t in range(gap.first_id, gap.last_id + 1))


async def test_the_feed_never_states_a_symbol_complete_past_a_trade_it_has_not_stored(memory_feed):
    """The statement that closes bars, checked batch by batch through a drop, a refusal and slow backfills."""
    async with Simulator(port=0, scenario="cointegrated", rate=400, seed=22) as sim:
        client, writer, store = memory_feed(sim)
        writer.statement = client.closed_through
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 100, what="first ticks")
        sim.fault_slow(6.0, 0.5)
        sim.fault_drop()
        await wait_for(lambda: client.state.reconnects >= 1 and client.state.connected, timeout=10, what="reconnect")
        await asyncio.sleep(1.0)
        sim.fault_refuse(1.5)
        await wait_for(lambda: client.state.reconnects >= 2 and client.state.connected, timeout=15, what="reconnect")
        last = await drain(sim, client, writer, store)
        await asyncio.sleep(2.5)  # a quiet market: the mark-price clock alone moves the statements on
        await writer.flush()
        await stop_client(client, writer, tasks)
    assert_each_trade_once(store, last)
    where = batch_of(store)
    stamped = {s: sorted((t.timestamp, t.trade_id) for t in store.ticks if t.symbol == s) for s in SYMBOLS}
    statements = 0
    for i, batch in enumerate(store.batches):
        for symbol, closed_through in batch.closed_through.items():
            statements += 1
            late = [tid for ts, tid in stamped[symbol] if ts < closed_through and where[(symbol, tid)] > i]
            assert not late, f"batch {i} states {symbol} complete before {closed_through}, but {late[:3]} came later"
    assert statements > 20
    # The statements kept up: the last one reaches the last trade of each symbol.
    final = {}
    for batch in store.batches:
        final.update(batch.closed_through)
    assert all(final[s] >= stamped[s][-1][0] for s in SYMBOLS), (final, {s: stamped[s][-1] for s in SYMBOLS})


def only_pair(symbol_a: str, symbol_b: str) -> None:
    """Make ``symbol_a``/``symbol_b`` the only pair (the feed follows the pairs' symbols)."""
    from analytics.models import Pair

    Pair.objects.all().delete()
    Pair.objects.create(symbol_a=symbol_a, symbol_b=symbol_b)


async def health_when(predicate, what: str) -> dict:
    """``/api/health/``'s record once ``predicate`` holds for it (the feed writes its status every 0.2 s)."""
    from asgiref.sync import sync_to_async

    from ingestion.selectors import health

    deadline = time.monotonic() + 15
    while not predicate(report := await sync_to_async(health)()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {report['problems']}")
        await asyncio.sleep(0.1)
    return report


@pytest.mark.django_db(transaction=True)
async def test_a_feed_keeps_a_pair_with_a_never_trading_symbol_and_health_names_it(settings, pipeline):
    """The issue: a pair with a symbol that never trades cost every symbol a reconnect every ~31 s."""
    from asgiref.sync import sync_to_async

    settings.INGEST_SILENCE_TIMEOUT = 0.5
    await sync_to_async(only_pair)("BTCUSDT", "XRPUSDT")
    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=12, silent=["XRPUSDT"]) as sim:
        feed = pipeline.feed(ws_url=sim.ws_url, rest_url=sim.rest_url, status_interval=0.2)
        task = asyncio.create_task(feed.run())
        await wait_for(lambda: feed.client is not None and feed.state.ticks_received > 0, what="first ticks")
        await asyncio.sleep(4 * settings.INGEST_SILENCE_TIMEOUT)
        report = await health_when(lambda h: any("XRPUSDT" in p for p in h["problems"]), what="health naming XRPUSDT")
        connections = sim.exchange.connections_total
        feed.stop()
        await task
    assert feed.client.symbols == ["BTCUSDT", "XRPUSDT"]  # TRADING on the exchange: still followed
    assert (feed.state.reconnects, connections) == (0, 1)
    assert report["status"] == "degraded"
    (line,) = [p for p in report["problems"] if "XRPUSDT" in p]
    assert re.fullmatch(r"XRPUSDT: no trade for \d+ s while the stream is live", line), line
    assert list(report["feeds"][0]["silent_symbols"]) == ["XRPUSDT"]


@pytest.mark.django_db(transaction=True)
async def test_a_feed_does_not_subscribe_a_delisted_symbol_and_health_says_why(settings, pipeline):
    from asgiref.sync import sync_to_async

    settings.INGEST_SILENCE_TIMEOUT = 0.5
    await sync_to_async(only_pair)("BTCUSDT", "LUNAUSDT")
    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=13, delisted=["LUNAUSDT"]) as sim:
        feed = pipeline.feed(ws_url=sim.ws_url, rest_url=sim.rest_url, status_interval=0.2)
        task = asyncio.create_task(feed.run())
        await wait_for(lambda: feed.client is not None and feed.state.ticks_received > 0, what="first ticks")
        await asyncio.sleep(4 * settings.INGEST_SILENCE_TIMEOUT)
        report = await health_when(lambda h: any("LUNAUSDT" in p for p in h["problems"]), what="health naming LUNAUSDT")
        connections = sim.exchange.connections_total
        feed.stop()
        await task
    assert feed.client.symbols == ["BTCUSDT"]
    assert "lunausdt" not in feed.state.url
    assert (feed.state.reconnects, connections) == (0, 1)
    assert report["status"] == "degraded"
    assert "LUNAUSDT is not trading on the exchange (status SETTLING)" in report["problems"]


async def test_messages_go_to_the_handler_in_order_and_fragmented_ones_joined():
    """``StreamConnection`` hands each message over as it is parsed, without the library's queue: whole
    messages and fragmented ones (joined, a control frame between fragments allowed) in the order sent."""
    sent = ['{"n": 1}', ['{"n"', ": ", "2}"], b'{"n": 3}', '{"n": 4}']  # the second in three frames
    received: list[bytes] = []
    async with stream_connection(sent, lambda data: received.append(bytes(data))) as ws:
        await wait_for(lambda: len(received) == 4, what="four messages")
        assert ws.messages == 4 and ws.failure is None
    assert received == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}', b'{"n": 4}']


async def test_a_handler_that_fails_closes_the_connection_and_the_feed_says_why(caplog, memory_feed):
    """A bug in the handler (not a malformed frame, which is counted and skipped) ends the connection
    as a failed read would: logged with the message, closed with 1011, nothing after it handed over."""
    received: list[bytes] = []

    def on_message(data: bytes) -> None:
        if data == b"boom":
            raise ValueError("a bug")
        received.append(bytes(data))

    async with stream_connection(['{"n": 1}', "boom", '{"n": 2}'], on_message) as ws:
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.protocol.close_exc.sent.code == 1011
    assert received == [b'{"n": 1}']
    failed = [r for r in caplog.records if r.getMessage().startswith("a stream message could not be handled")]
    assert len(failed) == 1 and "b'boom'" in failed[0].getMessage() and failed[0].exc_info

    async with Simulator(port=0, rate=50, seed=3) as sim:
        client, writer, _ = memory_feed(sim)
        accept = client.accept
        calls = 0

        def accept_failing_once(tick):
            nonlocal calls
            calls += 1
            if calls == 5:
                raise RuntimeError("a bug")
            return accept(tick)

        client.accept = accept_failing_once
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.reconnects >= 1 and client.state.connected, what="the reconnect")
        assert client.state.last_error == "a message could not be handled (RuntimeError: a bug); reconnecting"
        await stop_client(client, writer, tasks)


@contextlib.asynccontextmanager
async def stream_connection(messages, on_message):
    """A ``StreamConnection`` to a server that sends ``messages`` (a list: fragments), a ping between."""

    async def serve(ws):
        for message in messages:
            await ws.send(message)
            await ws.ping()
        await ws.wait_closed()

    async with websockets.serve(serve, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        factory = functools.partial(StreamConnection, on_message=on_message)
        async with websockets.connect(f"ws://127.0.0.1:{port}", create_connection=factory) as ws:
            yield ws


async def test_a_connection_that_delivered_for_a_while_resets_the_backoff(memory_feed):
    async with Simulator(port=0, rate=50, seed=3) as sim:
        client, writer, _ = memory_feed(sim, backoff=Backoff(min_delay=0.2, max_delay=1.0))
        client.backoff.attempts = 4  # as after four failed connects
        tasks = await run_client(client, writer)
        await wait_for(lambda: client.state.ticks_received > 0, what="ticks")
        assert client.backoff.attempts == 4  # not on connecting: a connection that drops at once would hammer
        await wait_for(lambda: client.backoff.attempts == 0, timeout=8, what="the backoff reset")
        await stop_client(client, writer, tasks)
