"""The site's security hooks: error reports without credentials, the admin lockout.

Django hides settings by name (``SECRET_KEY``, ``PASSWORD``), which misses a
password inside a URL (``DATABASE_URL``, ``REDIS_URL``), so the reporter filter
below masks it by value too (``pairs_project.common.masking``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.debug import SafeExceptionReporterFilter
from rest_framework.throttling import BaseThrottle

from pairs_project.common.masking import url_password_masked


class ReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus passwords inside URL-valued settings and request data."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):  # str() too: a lazy object passes for a str here
            return url_password_masked(str(cleansed))
        return cleansed


def client_address(request: HttpRequest) -> str | None:
    """The client's address as the API's rate limits see it (``API_NUM_PROXIES`` hops from the end)."""
    return BaseThrottle().get_ident(request)


def login_lockout_response(
    request: HttpRequest, response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The page a locked-out admin login gets: 429, and when to come back (``Retry-After``)."""
    seconds = settings.ADMIN_LOGIN_COOLOFF_SECONDS
    minutes = max(1, round(seconds / 60))
    lockout = render(
        request,
        "admin/locked_out.html",
        {"failure_limit": settings.ADMIN_LOGIN_FAILURE_LIMIT, "minutes": minutes, "title": "Too many failed logins"},
        status=429,
    )
    lockout["Retry-After"] = str(seconds)
    return lockout
