"""Live buffers: bounded per symbol, newest by trade time, shared through Redis across processes."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio

from ingestion.binance import Tick
from ingestion.buffers import RedisBuffers, RollingBuffers


def tick(symbol: str, trade_id: int, price: float = 100.0, timestamp: int | None = None) -> Tick:
    return Tick(timestamp if timestamp is not None else 1_700_000_000_000 + trade_id, symbol, price, 0.5, trade_id)


def test_each_symbol_keeps_only_its_newest_ticks():
    buffers = RollingBuffers(maxlen=3)
    for i in range(10):
        buffers.append(tick("BTCUSDT", i))
    buffers.append(tick("ETHUSDT", 1))
    assert [t.trade_id for t in buffers.recent("BTCUSDT")] == [7, 8, 9]
    assert [t.trade_id for t in buffers.recent("BTCUSDT", 2)] == [8, 9]
    assert buffers.symbols() == ["BTCUSDT", "ETHUSDT"]


def test_a_backfilled_tick_does_not_replace_the_newest_price():
    buffers = RollingBuffers()
    buffers.append(tick("BTCUSDT", 10, price=101.0))
    buffers.append(tick("BTCUSDT", 5, price=99.0))  # arrived later, traded earlier
    assert buffers.last_price("BTCUSDT") == 101.0


@pytest.fixture
def prefix(redis_url):
    """A key prefix of this test's own, deleted afterwards."""
    name = f"test-buffers-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


def shared(redis_url: str, prefix: str, maxlen: int = 5) -> RedisBuffers:
    return RedisBuffers(lambda: redis.asyncio.Redis.from_url(redis_url), maxlen=maxlen, prefix=prefix)


async def test_legs_ingested_by_two_processes_are_read_together_by_a_third(redis_url, prefix):
    btc_feed, eth_feed, web = shared(redis_url, prefix), shared(redis_url, prefix), shared(redis_url, prefix)
    for i in range(1, 8):
        btc_feed.append(tick("BTCUSDT", i, price=60_000.0 + i))
    eth_feed.append(tick("ETHUSDT", 42, price=3_000.5))
    btc_feed.append(tick("BTCUSDT", 3, price=1.0))  # a late backfill: stored, not the last price
    await btc_feed.publish()
    await eth_feed.publish()

    last = await web.alast_many(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    assert last == {"BTCUSDT": tick("BTCUSDT", 7, price=60_007.0), "ETHUSDT": tick("ETHUSDT", 42, price=3_000.5)}
    recent = await web.arecent("BTCUSDT", 10)
    assert [t.trade_id for t in recent] == [4, 5, 6, 7, 3]  # the newest 5 arrivals, as kept locally
    assert recent == btc_feed.recent("BTCUSDT")
    assert await web.arecent("SOLUSDT", 10) == []


async def test_without_redis_ingestion_goes_on_and_catches_up_when_redis_returns(redis_url, prefix):
    up = True

    def client():
        return redis.asyncio.Redis.from_url(redis_url if up else "redis://127.0.0.1:1", socket_connect_timeout=0.2)

    feed = RedisBuffers(client, maxlen=5, prefix=prefix)
    up = False
    for i in range(1, 21):
        feed.append(tick("BTCUSDT", i))
        if i % 4 == 0:
            await feed.publish()  # fails quietly, keeps the newest unpublished ticks
    assert (await feed.alast_many(["BTCUSDT"]))["BTCUSDT"].trade_id == 20  # local answer
    assert [t.trade_id for t in await feed.arecent("BTCUSDT", 3)] == [18, 19, 20]

    up = True
    feed._clients.clear()  # the next call opens a new connection (as a restarted Redis gets)
    await feed.publish()
    reader = shared(redis_url, prefix)
    assert [t.trade_id for t in await reader.arecent("BTCUSDT", 10)] == [16, 17, 18, 19, 20]
    assert (await reader.alast_many(["BTCUSDT"]))["BTCUSDT"].trade_id == 20
