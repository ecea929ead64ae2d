"""Distributed mode's transport: the channel layer and the cache over a real Redis.

Skips with a reason when no Redis answers; fails instead when REQUIRE_REDIS=1 (CI).
"""

from __future__ import annotations

import orjson
import pytest
from channels.layers import channel_layers
from django.core.cache import caches

from dashboard.broadcast import Pushes, pair_group


@pytest.fixture
def redis_layer(settings, redis_url):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}
    }
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


async def test_a_push_crosses_the_redis_channel_layer(redis_layer):
    channel = await redis_layer.new_channel()
    await redis_layer.group_add(pair_group(41), channel)
    await Pushes().asend(41, "alert.new", {"id": 1, "kind": "entry"})
    message = await redis_layer.receive(channel)
    assert message["type"] == "alert.new"
    assert orjson.loads(message["text"]) == {"type": "alert", "id": 1, "kind": "entry"}
    await redis_layer.group_discard(pair_group(41), channel)
    await redis_layer.flush()


def test_a_snapshot_round_trips_through_the_redis_cache(settings, redis_url):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    caches._settings = None  # rebuild the cache handler from the new settings
    try:
        cache = caches.create_connection("default")
        snapshot = {"pair": 1, "zscore": None, "ready": False, "warmup": {"bars": 3, "required": 100}}
        cache.set("pairs:test:snapshot", snapshot, timeout=30)
        assert cache.get("pairs:test:snapshot") == snapshot
        cache.delete("pairs:test:snapshot")
    finally:
        caches._settings = None
