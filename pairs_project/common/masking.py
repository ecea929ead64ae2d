"""Secrets out of logs, health records and error pages: passwords and tokens inside URLs.

Connection URLs carry passwords (``DATABASE_URL``, ``REDIS_URL``), a feed URL may
carry a token as its user name, and webhook URLs carry tokens in their path.
Pure: no Django.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

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
