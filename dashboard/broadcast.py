"""The one way tasks and the ingestion feed push to browsers: the pair's channel group.

Messages carry ``type`` (the consumer handler: ``snapshot.update``,
``alert.new``, ``prices.update``) and ``payload``. Sync code (tasks, services)
calls ``broadcast``; code on the event loop (the feed) awaits ``abroadcast``.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def pair_group(pair_id: int) -> str:
    return f"pair-{pair_id}"


async def abroadcast(pair_id: int, message_type: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` to every consumer of the pair; a failed push is logged, never raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(pair_group(pair_id), {"type": message_type, "payload": payload})
    except Exception:  # a push must never break the analytics cycle or the feed
        logger.exception("push of %s to pair %s failed", message_type, pair_id)


def broadcast(pair_id: int, message_type: str, payload: dict[str, Any]) -> None:
    async_to_sync(abroadcast)(pair_id, message_type, payload)


def broadcast_snapshot(pair_id: int, snapshot: dict[str, Any], series: dict[str, Any]) -> None:
    """A new snapshot, then the window's chart series it belongs to."""
    broadcast(pair_id, "snapshot.update", snapshot)
    broadcast(pair_id, "series.update", series)
