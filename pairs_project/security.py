"""Keeping credentials out of logs and error pages.

Connection URLs carry passwords (``DATABASE_URL``, ``REDIS_URL``) and webhook URLs
carry tokens in their path. Django hides settings by name (``SECRET_KEY``,
``PASSWORD``), which misses a password inside a URL, so the reporter filter below
masks it by value too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.debug import SafeExceptionReporterFilter
from rest_framework.throttling import BaseThrottle

MASK = "********************"

# scheme://user:password@ (the user may be empty: redis://:password@host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.IGNORECASE)


def url_password_masked(text: str) -> str:
    """``text`` with the password of every URL in it replaced by stars."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)


# scheme://userinfo@ (a user name alone can be the credential: wss://token@host)
_URL_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://)[^\s/@]+@", re.IGNORECASE)


def url_credentials_masked(text: str) -> str:
    """``text`` with the whole user part (name and password) of every URL in it replaced by stars."""
    return _URL_USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)


def url_redacted(url: str) -> str:
    """Scheme, host and port of ``url`` only: a webhook's path and query are its secret."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme or not parts.hostname:
        return "<unparseable url>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest}"


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def urls_redacted(text: str) -> str:
    """``text`` with every URL in it cut to its scheme, host and port (``url_redacted``)."""
    return _URL.sub(lambda m: url_redacted(m[0]), text)


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


def login_lockout_response(request: HttpRequest, response: HttpResponse | None = None, credentials: dict | None = None) -> HttpResponse:
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
