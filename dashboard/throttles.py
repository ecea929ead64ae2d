"""API rate limits, counted in their own cache (``CACHES["throttle"]``, see settings)."""

from __future__ import annotations

import logging

from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from rest_framework import throttling

logger = logging.getLogger(__name__)

throttle_cache = ConnectionProxy(caches, "throttle")


class FailOpen:
    """A rate limit the cache cannot count is not enforced: the API stays up while Redis restarts."""

    cache = throttle_cache

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            logger.warning("API rate limit not enforced: the throttle cache did not answer (%s)", exc)
            return True


class AnonRateThrottle(FailOpen, throttling.AnonRateThrottle):
    """Anonymous requests, per client address."""


class UserRateThrottle(FailOpen, throttling.UserRateThrottle):
    """Authenticated requests, per user."""
