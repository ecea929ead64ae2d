"""Rate limits of the API, the pages and the CSV downloads, counted in their own cache (``CACHES["throttle"]``).

The pages and downloads are plain Django views; DRF's throttles work on a Django
request as well, so they share the API's counting and its failing open.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
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
            logger.warning("rate limit not enforced: the throttle cache did not answer (%s)", exc)
            return True


class AnonRateThrottle(FailOpen, throttling.AnonRateThrottle):
    """Anonymous requests, per client address."""


class UserRateThrottle(FailOpen, throttling.UserRateThrottle):
    """Authenticated requests, per user."""


class ViewRateThrottle(FailOpen, throttling.SimpleRateThrottle):
    """A rate per user when logged in, else per client address, read from the setting ``rate_setting``."""

    rate_setting = ""

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PageRateThrottle(ViewRateThrottle):
    """The dashboard's pages, and the overview's rows it refreshes every 2 s."""

    scope = "pages"
    rate_setting = "PAGE_THROTTLE"


class CsvRateThrottle(ViewRateThrottle):
    """CSV downloads (each reads up to a window of rows)."""

    scope = "csv"
    rate_setting = "CSV_THROTTLE"


def rate_limited(throttle_class: type[ViewRateThrottle]) -> Callable:
    """Answer 429 with ``Retry-After`` and a plain message past ``throttle_class``'s rate."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            throttle = throttle_class()
            if throttle.allow_request(request, None):
                return view(request, *args, **kwargs)
            wait = throttle.wait()
            retry = max(1, math.ceil(wait)) if wait is not None else 1
            response = HttpResponse(
                f"Too many requests: at most {throttle.rate} here. Try again in {retry} s.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(retry)
            return response

        return wrapper

    return decorator
