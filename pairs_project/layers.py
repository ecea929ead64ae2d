"""Embedded mode's channel layer: Channels' in-memory layer, made cheap per message.

The stock layer sweeps every channel and every group membership for expired
entries on each ``receive`` and ``group_send``: with 200 open pages each push costs
200 x 200 steps. Here the sweep runs at most once a second, which keeps its
meaning (messages live ``expiry`` seconds, memberships ``group_expiry``) to within
that second. A group send puts one copy of the message in each member's queue
without a task per member; members share the copy's values, so a consumer must not
change a message it receives (the dashboard's only send them on).
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from channels.layers import InMemoryChannelLayer as StockInMemoryChannelLayer

#: Seconds between two sweeps for expired messages and memberships.
SWEEP_EVERY = 1.0


class InMemoryChannelLayer(StockInMemoryChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._swept_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < SWEEP_EVERY:
            return
        self._swept_at = now
        super()._clean_expired()

    async def receive(self, channel: str) -> dict[str, Any]:
        # The stock receive builds a new asyncio.Queue on every call to pass to
        # setdefault, even when the channel has one: 5% of a busy server's loop.
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            _, message = await queue.get()
        finally:
            if queue.empty():
                self.channels.pop(channel, None)
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        members = list(self.groups.get(group, {}))
        if not members:
            return
        shared = copy.deepcopy(message)
        expires = time.time() + self.expiry
        for channel in members:
            queue = self.channels.get(channel)
            if queue is None:
                queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
            try:
                queue.put_nowait((expires, dict(shared)))
            except asyncio.QueueFull:
                pass  # a group send skips a full channel, as the stock layer does (ChannelFull is not raised)
