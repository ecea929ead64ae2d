"""Embedded mode's channel layer: the in-memory layer, cheap per message with many pages."""

from __future__ import annotations

from pairs_project import layers
from pairs_project.layers import InMemoryChannelLayer


async def test_a_group_send_reaches_every_member_once():
    layer = InMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("pair-1", channel)
    await layer.group_send("pair-1", {"type": "prices.update", "text": '{"type":"prices"}'})
    for channel in channels:
        assert await layer.receive(channel) == {"type": "prices.update", "text": '{"type":"prices"}'}
    assert all(not layer.channels.get(c) for c in channels)


async def test_receives_do_not_sweep_every_channel_each_time(monkeypatch):
    """The stock layer scans all channels and groups on every receive: with N pages, N^2 per push."""
    layer = InMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("pair-1", channel)
    sweeps = []
    monkeypatch.setattr(layers.StockInMemoryChannelLayer, "_clean_expired", lambda self: sweeps.append(1))
    for _ in range(4):
        await layer.group_send("pair-1", {"type": "prices.update", "text": "{}"})
        for channel in channels:
            await layer.receive(channel)
    assert len(sweeps) <= 1


async def test_an_expired_message_still_takes_its_channel_out_of_the_groups():
    layer = InMemoryChannelLayer(expiry=0)
    channel = await layer.new_channel()
    await layer.group_add("pair-1", channel)
    await layer.group_send("pair-1", {"type": "prices.update", "text": "{}"})
    layer._swept_at = float("-inf")  # the next sweep is due
    layer._clean_expired()
    assert channel not in layer.groups.get("pair-1", {})
    assert channel not in layer.channels
