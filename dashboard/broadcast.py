"""The one way tasks and the ingestion feed push to browsers: the pair's channel group."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def pair_group(pair_id: int) -> str:
    return f"pair-{pair_id}"


def broadcast(pair_id: int, message_type: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` to every consumer of the pair (``type`` is the consumer handler)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(pair_group(pair_id), {"type": message_type, "payload": payload})
    except Exception:  # a push must never break the analytics cycle
        logger.exception("push of %s to pair %s failed", message_type, pair_id)


def broadcast_snapshot(pair_id: int, snapshot: dict[str, Any]) -> None:
    broadcast(pair_id, "snapshot.update", snapshot)
