"""API rate limits, counted in their own cache (``CACHES["throttle"]``, see settings)."""

from __future__ import annotations

from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from rest_framework import throttling

throttle_cache = ConnectionProxy(caches, "throttle")


class AnonRateThrottle(throttling.AnonRateThrottle):
    """Anonymous requests, per client address."""

    cache = throttle_cache


class UserRateThrottle(throttling.UserRateThrottle):
    """Authenticated requests, per user."""

    cache = throttle_cache
