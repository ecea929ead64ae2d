"""The dashboard websocket, the tutorial way: WebsocketCommunicator on the real routing."""

from __future__ import annotations

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from analytics import services
from dashboard.broadcast import abroadcast, pair_group
from dashboard.routing import websocket_urlpatterns
from pairs_project.asgi import application
from tests.analytics.test_services import cointegrated_ticks, make_pair, store_and_resample

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    cache.clear()


@sync_to_async
def ready_pair():
    pair = make_pair(window=120, min_bars=60)
    store_and_resample(cointegrated_ticks(150))
    services.snapshots_compute()
    return pair


async def test_the_first_message_is_the_snapshot_then_the_series():
    pair = await ready_pair()
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


async def test_a_page_opened_while_ticks_flow_gets_the_live_prices_at_once():
    from ingestion.binance import Tick
    from ingestion.services import buffers

    pair = await ready_pair()
    buffers.append(Tick(1_700_000_000_100, pair.symbol_a, 60_000.5, 0.1, 11))
    buffers.append(Tick(1_700_000_000_250, pair.symbol_b, 3_000.25, 2.0, 12))
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    assert [(await communicator.receive_json_from())["type"] for _ in range(2)] == ["snapshot", "series"]
    assert await communicator.receive_json_from() == {
        "type": "prices", "t": 1_700_000_000_250, "price_a": 60_000.5, "price_b": 3_000.25,
    }
    await communicator.disconnect()


async def test_a_page_rejoins_its_group_after_the_layer_forgot_it(monkeypatch):
    """A restarted Redis keeps no groups: open pages must come back into theirs by themselves."""
    from dashboard import consumers

    monkeypatch.setattr(consumers, "GROUP_REFRESH", 0.05)
    pair = await ready_pair()
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    layer = get_channel_layer()
    layer.groups.pop(pair_group(pair.id), None)  # what a Redis restart does to the group
    await asyncio.sleep(0.2)
    await abroadcast(pair.id, "prices.update", {"t": 2, "price_a": 1.0, "price_b": 2.0})
    assert (await communicator.receive_json_from())["type"] == "prices"
    await communicator.disconnect()


async def test_group_messages_are_relayed_with_their_type():
    pair = await ready_pair()
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    await abroadcast(pair.id, "prices.update", {"t": 1, "price_a": 60000.5, "price_b": 3000.25})
    assert await communicator.receive_json_from() == {"type": "prices", "t": 1, "price_a": 60000.5, "price_b": 3000.25}
    await abroadcast(pair.id, "alert.new", {"id": 7, "kind": "entry"})
    assert await communicator.receive_json_from() == {"type": "alert", "id": 7, "kind": "entry"}
    await get_channel_layer().group_send(pair_group(pair.id), {"type": "snapshot.update", "payload": {"pair": pair.id, "n": 1}})
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    await abroadcast(pair.id + 1, "alert.new", {"id": 8})  # another pair's group
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_a_new_snapshot_reaches_connected_pages():
    pair = await ready_pair()
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    await sync_to_async(services.snapshots_compute)(force=True)
    snapshot = await communicator.receive_json_from()
    series = await communicator.receive_json_from()
    assert (snapshot["type"], series["type"]) == ("snapshot", "series")
    assert series["as_of"] == snapshot["as_of"]
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
async def test_frames_from_the_page_are_ignored_and_the_socket_stays_live(frame, caplog):
    pair = await ready_pair()
    communicator = WebsocketCommunicator(app, f"/ws/pairs/{pair.id}/")
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.receive_json_from()
    for _ in range(3):
        await communicator.send_to(**frame)
    assert await communicator.receive_nothing()
    await abroadcast(pair.id, "prices.update", {"t": 1, "price_a": 60000.5, "price_b": 3000.25})
    assert (await communicator.receive_json_from())["type"] == "prices"  # still relaying
    await communicator.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_pushes_to_a_page_that_is_closing_are_dropped_quietly(caplog):
    """daphne refuses a send once the close handshake has begun, before it reports the disconnect.

    What it raises then (autobahn's ``Disconnected``) used to escape the consumer:
    one traceback per push that met a closing socket.
    """
    from autobahn.exception import Disconnected

    from dashboard.consumers import DashboardConsumer

    pair = await ready_pair()
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []
    closing = False

    async def send(message: dict) -> None:
        if closing:
            raise Disconnected("Attempt to send on a closed protocol")
        sent.append(message)

    scope = {
        "type": "websocket", "path": f"/ws/pairs/{pair.id}/", "headers": [], "subprotocols": [],
        "url_route": {"args": (), "kwargs": {"pair_id": pair.id}},
    }
    consumer = asyncio.create_task(DashboardConsumer.as_asgi()(scope, inbox.get, send))
    await inbox.put({"type": "websocket.connect"})
    while len(sent) < 3:  # accept, snapshot, series
        await asyncio.sleep(0.01)
    closing = True  # the page's close frame arrived; the disconnect is not reported yet
    for k in range(3):
        await abroadcast(pair.id, "prices.update", {"t": k, "price_a": 1.0, "price_b": 2.0})
        await abroadcast(pair.id, "alert.new", {"id": k})
    await asyncio.sleep(0.2)
    assert not consumer.done()  # still there, waiting for the disconnect
    await inbox.put({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait_for(consumer, 5)  # and then it ends without an exception
    assert not get_channel_layer().groups.get(pair_group(pair.id))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_origins_are_checked_against_allowed_hosts():
    pair = await ready_pair()
    good = WebsocketCommunicator(application, f"/ws/pairs/{pair.id}/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert (await good.connect())[0]
    await good.disconnect()
    evil = WebsocketCommunicator(application, f"/ws/pairs/{pair.id}/", headers=[(b"origin", b"http://evil.example")])
    assert not (await evil.connect())[0]
