"""The one way tasks and the ingestion feed push to browsers: the pair's channel group.

A push is encoded to JSON once, here, whatever the number of open pages: the
group message carries ``type`` (the consumer handler: ``snapshot.update``,
``series.update``, ``series.delta``, ``alert.new``, ``prices.update``) and ``text``, the websocket
frame every page of the pair is sent as is. Sync code (tasks, services) calls
``Pushes.send``; code on the event loop (the feed) awaits ``Pushes.asend``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .deltas import series_delta

logger = logging.getLogger(__name__)

#: The ``type`` of the websocket message each group message becomes (the names of the README's "WebSocket").
PAGE_TYPES = {
    "snapshot.update": "snapshot",
    "series.update": "series",
    "series.delta": "series_delta",
    "alert.new": "alert",
    "prices.update": "prices",
}


def pair_group(pair_id: int) -> str:
    return f"pair-{pair_id}"


def page_text(message_type: str, payload: dict[str, Any]) -> str:
    """The websocket frame of a push: ``{"type": ..., **payload}`` as JSON text."""
    return orjson.dumps({"type": PAGE_TYPES.get(message_type, message_type), **payload}).decode()


class Pushes:
    """The pushes of a process to the pages: a message to every consumer of the pair's group.

    A failed push is logged, never raised (a push must never break the analytics
    cycle or the feed), and an outage of the channel layer is logged once, not per
    push, until a push goes through again.
    """

    def __init__(self) -> None:
        self.failing = False

    async def asend(self, pair_id: int, message_type: str, payload: dict[str, Any]) -> None:
        """Send ``payload`` to every consumer of the pair (code on the event loop: the feed)."""
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            text = page_text(message_type, payload)
            await layer.group_send(pair_group(pair_id), {"type": message_type, "text": text})
        except Exception as exc:
            if not self.failing:
                logger.warning(
                    "pushes to the pages failed (%s: %s); going on without them", exc.__class__.__name__, exc
                )
            self.failing = True
            return
        if self.failing:
            logger.info("pushes to the pages resumed")
        self.failing = False

    def send(self, pair_id: int, message_type: str, payload: dict[str, Any]) -> None:
        """``asend`` from sync code (tasks, services)."""
        async_to_sync(self.asend)(pair_id, message_type, payload)

    def snapshot(
        self,
        pair_id: int,
        snapshot: dict[str, Any],
        series: dict[str, Any],
        previous_series: dict[str, Any] | None = None,
    ) -> None:
        """A new snapshot, then the window's chart series it belongs to: as a delta from
        ``previous_series`` (the one pages have) when there is an exact one, else whole;
        nothing when it is that very series (the same bar published again: thresholds
        edited, a leg turning stale). Both in one hop to the event loop."""
        messages = [("snapshot.update", snapshot)]
        if previous_series != series:
            delta = series_delta(previous_series, series, snapshot)
            messages.append(("series.delta", delta) if delta is not None else ("series.update", series))
        async_to_sync(self._asend_all)(pair_id, messages)

    async def _asend_all(self, pair_id: int, messages: list[tuple[str, dict[str, Any]]]) -> None:
        for message_type, payload in messages:
            await self.asend(pair_id, message_type, payload)
