"""The live dashboard's websocket: ``/ws/pairs/<id>/``.

On connect: join the pair's group, accept, send the current snapshot (always the
first message), the chart series and the live prices when ticks are flowing (from
the shared live buffers, so a page opened on any web process shows them at once).
Then relay what the group carries (re-joining it now and then: a restarted Redis
forgets its groups, and channels_redis drops members after a day):
``snapshot`` (followed by its ``series_delta``, or its whole ``series`` when no exact
delta exists), ``prices`` and ``alert`` messages, each encoded once for every page.
Every ``HEALTH_EVERY`` seconds the page is also told the system's health (a
``health`` message: the ``/api/health/`` record), so open pages need not poll it.

An unknown pair, and any path no route matches, is accepted and then closed with
4404: a close before the accept reaches the browser as an HTTP 403 (or 500), which
a page can only take for an outage and retry for ever. The page only listens:
whatever a client sends is dropped unread. A push that meets a socket already
closing is dropped too (``QuietWhenGone``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import orjson
from autobahn.exception import Disconnected
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from analytics.models import Pair
from analytics.services import pair_current
from ingestion.buffers import RollingBuffers
from ingestion.services import prices_payload

from .broadcast import PAGE_TYPES, pair_group
from .health import health_frame

CLOSE_UNKNOWN_PAIR = 4404
#: What a server raises on a send to a socket that is closing or closed: daphne lets
#: autobahn's ``Disconnected`` through; the ASGI spec asks for an ``OSError``.
CLIENT_GONE = (Disconnected, OSError)
#: Seconds between re-joins of the pair's group (cheap and idempotent).
GROUP_REFRESH = 10.0
#: Seconds between health messages, as often as a page without them polls ``/api/health/``.
HEALTH_EVERY = 5.0

logger = logging.getLogger(__name__)


@database_sync_to_async
def current_state(pair_id: int) -> tuple[Pair, dict, dict] | None:
    pair = Pair.objects.filter(pk=pair_id).first()
    if pair is None:
        return None
    return pair, *pair_current(pair=pair)


class ListenOnly:
    """Frames from a client are dropped unread: no decoding, so junk costs nothing and raises nothing."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        logger.debug("ignored a %d-character frame from %s", size, self.scope.get("client"))


class QuietWhenGone(AsyncConsumer):
    """Sends to a client that is gone are dropped, not raised.

    A page's close frame puts the socket in its closing state at once, but the
    server reports the disconnect only once the connection is down: group messages
    arriving in between meet a socket that refuses them. That is the normal end of
    a page, not an error: the message is dropped, nothing more is sent, and the
    consumer waits for the disconnect (which leaves the group). Every message the
    consumer sends (accept, frames, close) passes here, whatever method built it.
    """

    #: Set once a send found the client gone.
    gone = False

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        try:
            await super().send(message)
        except CLIENT_GONE as exc:
            self.gone = True
            logger.debug("%s went away while a message was on its way (%s)", self.scope.get("client"), exc)


class NotFoundConsumer(ListenOnly, AsyncWebsocketConsumer, QuietWhenGone):
    """Any websocket path no route matches: accepted, then closed with 4404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN_PAIR)


class DashboardConsumer(ListenOnly, AsyncJsonWebsocketConsumer, QuietWhenGone):
    """A pair's page: its snapshot, series and live prices (from ``buffers``) at once, then every push."""

    def __init__(self, *args: Any, buffers: RollingBuffers, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffers = buffers

    async def connect(self) -> None:
        self.pair_id = int(self.scope["url_route"]["kwargs"]["pair_id"])
        state = await current_state(self.pair_id)
        if state is None:
            await self.accept()
            await self.close(code=CLOSE_UNKNOWN_PAIR)
            return
        self.group = pair_group(self.pair_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.chores = [asyncio.create_task(self._stay_in_group()), asyncio.create_task(self._tell_health())]
        pair, snapshot, series = state
        await self.send_json({"type": "snapshot", **snapshot})
        await self.send_json({"type": "series", **series})
        last = await self.buffers.alast_many((pair.symbol_a, pair.symbol_b))
        if len(last) == 2:
            await self.send_json({"type": "prices", **prices_payload(last[pair.symbol_a], last[pair.symbol_b])})

    async def disconnect(self, code: int) -> None:
        for chore in getattr(self, "chores", ()):
            chore.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chore
        if hasattr(self, "group"):
            with contextlib.suppress(Exception):  # the layer may be the thing that is down
                await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _stay_in_group(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH)
            try:
                await self.channel_layer.group_add(self.group, self.channel_name)
            except Exception as exc:
                logger.debug("re-joining %s failed (%s); next try in %.0f s", self.group, exc, GROUP_REFRESH)

    async def _tell_health(self) -> None:
        # The page has the health it was rendered with; open pages are spread over
        # the period rather than all told at once.
        await asyncio.sleep(HEALTH_EVERY * random.uniform(0.5, 1.0))
        while True:
            try:
                await self.send(text_data=await health_frame())
            except Exception as exc:  # the page polls /api/health/ instead, which says why
                logger.debug("could not tell a page the health (%s: %s)", exc.__class__.__name__, exc)
            await asyncio.sleep(HEALTH_EVERY)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return orjson.dumps(content).decode()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, through
        # the one thread that all thread-sensitive sync code outside a request shares
        # (every consumer's database reads, the feed's): a hop per push per page,
        # queued behind that work. Relaying a push touches no database.
        if message["type"] in PAGE_TYPES:
            await self.relay(message)
        else:
            await super().dispatch(message)

    async def relay(self, event: dict[str, Any]) -> None:
        """A push of the pair's group, sent as ``broadcast`` encoded it (once for every page)."""
        if "text" in event:
            await self.send(text_data=event["text"])
        else:  # a message built elsewhere, not by ``broadcast``
            await self.send_json({"type": PAGE_TYPES[event["type"]], **(event.get("payload") or {})})
