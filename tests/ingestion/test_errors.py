"""Why the exchange cannot be reached, in plain words, from real failed connections."""

from __future__ import annotations

import asyncio
import logging
import ssl

import httpx
import pytest
import websockets
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from ingestion.binance import stream_url
from ingestion.client import Backoff, FeedClient
from ingestion.errors import closed_text, unreachable_text
from ingestion.simulator import Simulator
from ingestion.writer import TickWriter
from tests.processes import free_port
from tests.support import SYMBOLS, wait_for


async def failure_of(url: str) -> BaseException:
    try:
        async with asyncio.timeout(20):
            await websockets.connect(url, open_timeout=10)
    except Exception as exc:
        return exc
    raise AssertionError(f"{url} connected")


async def test_a_name_that_does_not_resolve_says_no_dns_or_no_internet():
    url = "wss://no-such-host.invalid/market"
    assert unreachable_text(await failure_of(url), url) == "cannot resolve no-such-host.invalid: no DNS or no internet"
    with pytest.raises(httpx.ConnectError) as caught:
        async with httpx.AsyncClient() as client:
            await client.get("https://no-such-host.invalid/fapi/v1/aggTrades")
    assert unreachable_text(caught.value, "https://no-such-host.invalid") == (
        "cannot resolve no-such-host.invalid: no DNS or no internet"
    )


async def test_a_port_nobody_listens_on_says_so():
    port = free_port()
    url = f"ws://127.0.0.1:{port}/market"
    assert (
        unreachable_text(await failure_of(url), url)
        == f"127.0.0.1:{port} refused the connection: nothing listens there"
    )


async def test_an_exchange_refusing_the_handshake_says_it_is_unavailable():
    async with Simulator(port=0, rate=10, seed=1) as sim:
        sim.fault_refuse(5.0)
        url = stream_url(sim.ws_url, SYMBOLS)
        assert unreachable_text(await failure_of(url), url) == "127.0.0.1 is unavailable (HTTP 503)"


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (451, "fstream.binance.com refuses connections from this location (HTTP 451)"),
        (403, "fstream.binance.com refuses the request (HTTP 403 forbidden)"),
        (429, "fstream.binance.com rate-limits this address (HTTP 429)"),
        (418, "fstream.binance.com has banned this address for a while (HTTP 418)"),
        (502, "fstream.binance.com is unavailable (HTTP 502)"),
        (400, "fstream.binance.com answered HTTP 400"),
    ],
)
def test_a_status_on_the_handshake_is_named(status, text):
    exc = InvalidStatus(Response(status, "", Headers()))
    assert unreachable_text(exc, "wss://fstream.binance.com/market") == text


def test_tls_and_timeouts_and_the_rest():
    url = "wss://fstream.binance.com/market"
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate"
    assert (
        unreachable_text(cert, url) == "fstream.binance.com's TLS certificate is not trusted (self-signed certificate)"
    )
    assert unreachable_text(TimeoutError(), url).startswith("fstream.binance.com did not answer in time")
    wrapped = httpx.ConnectError("boom")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert unreachable_text(wrapped, "https://fapi.binance.com") == (
        "fapi.binance.com:443 refused the connection: nothing listens there"
    )
    assert unreachable_text(ValueError("odd"), url) == "ValueError: odd"


def test_a_closed_stream_says_whether_it_was_cut_or_closed():
    url = "wss://fstream.binance.com/market"
    assert closed_text(ConnectionClosedError(None, None), url) == (
        "fstream.binance.com dropped the stream without closing it (the network or the exchange cut it)"
    )
    going_away = Close(1001, "24h limit")
    assert closed_text(ConnectionClosedOK(going_away, going_away, True), url) == (
        "fstream.binance.com closed the stream (code 1001: 24h limit)"
    )
    assert (
        closed_text(ConnectionClosedError(Close(1011, ""), None), url)
        == "fstream.binance.com closed the stream (code 1011)"
    )


async def feed_until(sim: Simulator, min_delay: float, *conditions) -> FeedClient:
    """Run a feed on ``sim`` until each of ``conditions`` (given the client, or the simulator's fault to make) held."""
    writer = TickWriter(lambda batch: len(batch.ticks), flush_interval=0.05)
    client = FeedClient(
        symbols=SYMBOLS,
        ws_url=sim.ws_url,
        rest_url=sim.rest_url,
        writer=writer,
        backoff=Backoff(min_delay=min_delay, max_delay=max(min_delay, 0.2)),
    )
    tasks = asyncio.gather(client.run(), writer.run())
    try:
        for condition in conditions:
            if isinstance(condition, str):
                assert getattr(sim, condition)() >= 1
            else:
                await wait_for(lambda condition=condition: condition(client), what=condition.__doc__ or "the feed")
    finally:
        client.stop()
        await writer.close()
        tasks.cancel()
        await asyncio.gather(tasks, return_exceptions=True)
    return client


def connected(client: FeedClient) -> bool:
    """the stream"""
    return client.state.connected


def disconnected(client: FeedClient) -> bool:
    """the drop"""
    return not client.state.connected


def refused_twice(client: FeedClient) -> bool:
    """refused connects"""
    return client.state.connect_failures >= 2


async def test_a_dropped_stream_is_reported_in_plain_words():
    async with Simulator(port=0, rate=50, seed=2) as sim:
        client = await feed_until(sim, 5.0, connected, "fault_drop", disconnected)
    assert client.state.last_error == (
        "the stream ended: 127.0.0.1 dropped the stream without closing it (the network or the exchange cut it)"
    )


async def test_the_feed_reports_plain_words_and_logs_the_exception(caplog):
    caplog.set_level(logging.WARNING, logger="ingestion.client")
    async with Simulator(port=0, rate=10, seed=2) as sim:
        sim.fault_refuse(30.0)
        client = await feed_until(sim, 0.1, refused_twice)
    assert client.state.last_error == "cannot connect to the stream: 127.0.0.1 is unavailable (HTTP 503)"
    logged = [r.getMessage() for r in caplog.records if "cannot connect to the stream" in r.getMessage()]
    assert logged and "InvalidStatus" in logged[0] and "HTTP 503" in logged[0], logged
