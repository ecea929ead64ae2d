"""The dashboard websocket, the tutorial way: WebsocketCommunicator on the real routing."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from dashboard.broadcast import Pushes, pair_group
from dashboard.routing import websocket_urlpatterns
from ingestion.buffers import RollingBuffers
from pairs_project.asgi import application
from tests.support import T0, cointegrated_ticks, make_pair, store_and_resample

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(runtime):
    """The websocket routes of a process whose live ticks are its runtime's."""
    return URLRouter(websocket_urlpatterns(runtime.buffers))


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    cache.clear()


@sync_to_async
def ready_pair(pipeline):
    pair = make_pair(window=120, min_bars=60)
    store_and_resample(cointegrated_ticks(150))
    pipeline.snapshots()
    return pair


async def test_the_first_message_is_the_snapshot_then_the_series(pipeline, app):
    pair = await ready_pair(pipeline)
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    connected, _ = await communicator.connect()
    assert connected
    first = await communicator.receive_json_from()
    assert first["type"] == "snapshot"
    assert first["pair"] == pair.id and first["ready"] is True and first["n"] == 120
    second = await communicator.receive_json_from()
    assert second["type"] == "series"
    assert len(second["t"]) == len(second["zscore"]) == 120
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_a_page_opened_while_ticks_flow_gets_the_live_prices_at_once(pipeline, app):
    from ingestion.binance import Tick

    buffers = pipeline.runtime.buffers
    pair = await ready_pair(pipeline)
    buffers.append(Tick(1_700_000_000_100, pair.symbol_a, 60_000.5, 0.1, 11))
    buffers.append(Tick(1_700_000_000_250, pair.symbol_b, 3_000.25, 2.0, 12))
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    assert [(await communicator.receive_json_from())["type"] for _ in range(2)] == ["snapshot", "series"]
    assert await communicator.receive_json_from() == {
        "type": "prices",
        "t": 1_700_000_000_250,
        "price_a": 60_000.5,
        "price_b": 3_000.25,
    }
    await communicator.disconnect()


async def test_a_page_rejoins_its_group_after_the_layer_forgot_it(monkeypatch, pipeline, app):
    """A restarted Redis keeps no groups: open pages must come back into theirs by themselves."""
    from dashboard import consumers

    monkeypatch.setattr(consumers, "GROUP_REFRESH", 0.05)
    pair = await ready_pair(pipeline)
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    layer = get_channel_layer()
    layer.groups.pop(pair_group(pair.id), None)  # what a Redis restart does to the group
    await asyncio.sleep(0.2)
    await Pushes().asend(pair.id, "prices.update", {"t": 2, "price_a": 1.0, "price_b": 2.0})
    assert (await communicator.receive_json_from())["type"] == "prices"
    await communicator.disconnect()


async def test_group_messages_are_relayed_with_their_type(pipeline, app):
    pair = await ready_pair(pipeline)
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    await Pushes().asend(pair.id, "prices.update", {"t": 1, "price_a": 60000.5, "price_b": 3000.25})
    assert await communicator.receive_json_from() == {"type": "prices", "t": 1, "price_a": 60000.5, "price_b": 3000.25}
    await Pushes().asend(pair.id, "alert.new", {"id": 7, "kind": "entry"})
    assert await communicator.receive_json_from() == {"type": "alert", "id": 7, "kind": "entry"}
    await get_channel_layer().group_send(
        pair_group(pair.id), {"type": "snapshot.update", "payload": {"pair": pair.id, "n": 1}}
    )
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    await Pushes().asend(pair.id + 1, "alert.new", {"id": 8})  # another pair's group
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_a_new_snapshot_reaches_connected_pages(pipeline, app):
    pair = await ready_pair(pipeline)
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    await sync_to_async(pipeline.snapshots)(force=True)
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["pair"] == pair.id
    await communicator.disconnect()


async def closed_after_accepting(path: str) -> int:
    """Connect to ``path``: the handshake must succeed, then the close code is returned.

    A close before the accept reaches the browser as an HTTP 403 (or 500), which a
    page can only take for an outage and retry for ever; a 4404 after the accept tells
    it the page is gone.
    """
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://127.0.0.1:8000")])
    connected, _ = await communicator.connect()
    assert connected, path
    closing = await communicator.receive_output(timeout=2)
    assert closing["type"] == "websocket.close", closing
    await communicator.wait()
    return closing.get("code")


@pytest.mark.parametrize("path", ["/ws/pairs/9999/", "/ws/pairs/99999999999999999999999/"])
async def test_an_unknown_pair_is_accepted_then_closed_with_4404(path):
    assert await closed_after_accepting(path) == 4404


@pytest.mark.parametrize("path", ["/ws/pairs/abc/", "/ws/pairs/1", "/ws/pairs/-1/", "/ws/", "/ws/other/", "/"])
async def test_a_path_no_route_matches_is_accepted_then_closed_with_4404(path):
    await sync_to_async(make_pair)()
    assert await closed_after_accepting(path) == 4404


JUNK = {
    "text": {"text_data": "hello"},
    "binary": {"bytes_data": b"\x00\xff"},
    "json": {"text_data": '{"type": "subscribe"}'},
    "deep json": {"text_data": "[" * 2000 + "]" * 2000},
    "huge": {"text_data": "x" * 900_000},
}


@pytest.mark.parametrize("frame", JUNK.values(), ids=JUNK.keys())
async def test_frames_from_the_page_are_ignored_and_the_socket_stays_live(frame, caplog, pipeline, app):
    pair = await ready_pair(pipeline)
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    for _ in range(3):
        await communicator.send_to(**frame)
    assert await communicator.receive_nothing()
    await Pushes().asend(pair.id, "prices.update", {"t": 1, "price_a": 60000.5, "price_b": 3000.25})
    assert (await communicator.receive_json_from())["type"] == "prices"  # still relaying
    await communicator.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_pushes_to_a_page_that_is_closing_are_dropped_quietly(caplog, pipeline):
    """daphne refuses a send once the close handshake has begun, before it reports the disconnect.

    What it raises then (autobahn's ``Disconnected``) used to escape the consumer:
    one traceback per push that met a closing socket.
    """
    from autobahn.exception import Disconnected

    from dashboard.consumers import DashboardConsumer

    pair = await ready_pair(pipeline)
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []
    closing = False

    async def send(message: dict) -> None:
        if closing:
            raise Disconnected("Attempt to send on a closed protocol")
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": f"/ws/pairs/{pair.id}/",
        "headers": [],
        "subprotocols": [],
        "url_route": {"args": (), "kwargs": {"pair_id": pair.id}},
    }
    consumer = asyncio.create_task(DashboardConsumer.as_asgi(buffers=RollingBuffers())(scope, inbox.get, send))
    await inbox.put({"type": "websocket.connect"})
    while len(sent) < 3:  # accept, snapshot, series
        await asyncio.sleep(0.01)
    closing = True  # the page's close frame arrived; the disconnect is not reported yet
    for k in range(3):
        await Pushes().asend(pair.id, "prices.update", {"t": k, "price_a": 1.0, "price_b": 2.0})
        await Pushes().asend(pair.id, "alert.new", {"id": k})
    await asyncio.sleep(0.2)
    assert not consumer.done()  # still there, waiting for the disconnect
    await inbox.put({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait_for(consumer, 5)  # and then it ends without an exception
    assert not get_channel_layer().groups.get(pair_group(pair.id))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_origins_are_checked_against_allowed_hosts(pipeline):
    pair = await ready_pair(pipeline)
    good = WebsocketCommunicator(application, f"/ws/pairs/{pair.id}/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await good.connect())[0]
    await good.disconnect()
    evil = WebsocketCommunicator(application, f"/ws/pairs/{pair.id}/", headers=[(b"origin", b"http://evil.example")])
    assert not (await evil.connect())[0]


async def _pages(app, pair_id: int, count: int) -> list[WebsocketCommunicator]:
    pages = []
    for _ in range(count):
        communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair_id}/")
        assert (await communicator.connect())[0]
        await communicator.receive_json_from()
        await communicator.receive_json_from()
        pages.append(communicator)
    return pages


async def test_a_push_is_encoded_once_for_all_pages(monkeypatch, pipeline, app):
    """200 pages must not cost 200 JSON encodings of the same push: every page gets the same frame."""
    from dashboard.consumers import DashboardConsumer

    pair = await ready_pair(pipeline)
    pages = await _pages(app, pair.id, 3)
    encoded = []
    original = DashboardConsumer.encode_json

    async def counting(cls, content):
        encoded.append(content)
        return await original.__func__(cls, content)

    monkeypatch.setattr(DashboardConsumer, "encode_json", classmethod(counting))
    await Pushes().asend(pair.id, "prices.update", {"t": 5, "price_a": 60000.5, "price_b": 3000.25})
    frames = [await page.receive_from() for page in pages]
    assert encoded == []
    assert len(set(frames)) == 1
    assert orjson.loads(frames[0]) == {"type": "prices", "t": 5, "price_a": 60000.5, "price_b": 3000.25}
    for page in pages:
        await page.disconnect()


async def test_relayed_pushes_do_not_wait_for_the_shared_sync_thread(monkeypatch, pipeline, app):
    """A relayed push touches no database: it must not hop to the one thread all thread-sensitive
    sync code outside a request shares (200 pages: 200 hops a push, queued behind that work)."""
    import channels.consumer

    pair = await ready_pair(pipeline)
    pages = await _pages(app, pair.id, 2)
    hops = []

    async def counting() -> None:
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    for t in range(5):
        await Pushes().asend(pair.id, "prices.update", {"t": t, "price_a": 1.0, "price_b": 2.0})
    for page in pages:
        assert [(await page.receive_json_from())["t"] for _ in range(5)] == list(range(5))
    assert hops == []
    for page in pages:
        await page.disconnect()


async def test_after_the_first_series_a_page_gets_deltas_that_give_the_apis_series(pipeline, app):
    """The whole window goes once, on connect; each snapshot then sends its new points and the
    window's model, and the page's series is exactly the one the server computed."""
    from rest_framework.test import APIClient

    from dashboard.deltas import series_delta_apply

    pair = await sync_to_async(make_pair)(window=120, min_bars=60)
    ticks = cointegrated_ticks(160)
    await sync_to_async(store_and_resample)([t for t in ticks if t.timestamp < T0 + 150_000])
    await sync_to_async(pipeline.snapshots)(now=T0 + 150_500)
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    series = await communicator.receive_json_from()
    assert series["type"] == "series" and len(series["t"]) == 120
    for second in (151, 152, 155):
        await sync_to_async(store_and_resample)(
            [t for t in ticks if T0 + (second - 1) * 1000 <= t.timestamp < T0 + second * 1000]
        )
        await sync_to_async(pipeline.snapshots)(now=T0 + second * 1000 + 500)
        assert (await communicator.receive_json_from())["type"] == "snapshot"
        delta = orjson.loads(await communicator.receive_from())
        assert delta["type"] == "series_delta" and delta["base_as_of"] == series["as_of"]
        assert len(delta["t"]) < 5  # the new points only, not the window
        series = series_delta_apply(series, delta)
        api = await sync_to_async(lambda: APIClient().get(f"/api/pairs/{pair.id}/series/").json())()
        assert series == api
    await communicator.disconnect()


async def test_the_same_bar_published_again_sends_the_snapshot_and_no_series(pipeline, app):
    pair = await ready_pair(pipeline)
    pages = await _pages(app, pair.id, 1)
    await sync_to_async(pipeline.snapshots)(force=True)
    assert (await pages[0].receive_json_from())["type"] == "snapshot"
    assert await pages[0].receive_nothing()
    await pages[0].disconnect()


async def test_open_pages_are_told_the_health_made_once_for_all(monkeypatch, settings, pipeline, app):
    """Pages need not poll /api/health/: their socket brings it, one record for every page."""
    from dashboard import consumers, health

    monkeypatch.setattr(consumers, "HEALTH_EVERY", 0.1)
    settings.HEALTH_CACHE_SECONDS = 60
    made = []
    real = health.system_health_now
    monkeypatch.setattr(health, "system_health_now", lambda: made.append(1) or real())
    pair = await ready_pair(pipeline)
    pages = [WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/") for _ in range(5)]
    for communicator in pages:
        await communicator.connect()
        assert [(await communicator.receive_json_from())["type"] for _ in range(2)] == ["snapshot", "series"]
    for communicator in pages:
        for _ in range(2):
            told = await communicator.receive_json_from(timeout=2)
            assert told["type"] == "health"
            assert told["status"] in ("ok", "degraded") and "feed" in told and "pipeline" in told
    assert len(made) == 1
    for communicator in pages:
        await communicator.disconnect()
