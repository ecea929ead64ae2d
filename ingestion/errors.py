"""Why the exchange cannot be reached, in the words a trader reads on the page.

``socket.gaierror: [Errno -3] Temporary failure in name resolution`` means "no DNS
or no internet"; a 451 on the handshake means Binance refuses the caller's country.
The health record and the live indicator show these words; the log keeps the raw
exception beside them.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

#: What an HTTP status on the WebSocket handshake or a REST call says about us.
STATUS_WORDS = {
    401: "refuses the request: not authorised",
    403: "refuses the request (HTTP 403 forbidden)",
    404: "has no such endpoint (HTTP 404): check the URL",
    418: "has banned this address for a while (HTTP 418)",
    429: "rate-limits this address (HTTP 429)",
    451: "refuses connections from this location (HTTP 451)",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, outermost first (httpx wraps the socket's error twice)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = parts.hostname or url
    port = parts.port or (443 if parts.scheme in ("wss", "https") else 80)
    return host, f"{host}:{port}"


def unreachable_text(exc: BaseException, url: str) -> str:
    """Why ``url`` could not be reached, in plain words (the exception's class and text when nothing fits)."""
    host, address = _where(url)
    for cause in _chain(exc):
        status = None
        if isinstance(cause, InvalidStatus):
            status = cause.response.status_code
        elif isinstance(cause, httpx.HTTPStatusError):
            status = cause.response.status_code
        if status is not None:
            if status in STATUS_WORDS:
                return f"{host} {STATUS_WORDS[status]}"
            if status >= 500:
                return f"{host} is unavailable (HTTP {status})"
            return f"{host} answered HTTP {status}"
        if isinstance(cause, InvalidURI):
            return f"not a WebSocket URL: {url}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve {host}: no DNS or no internet"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"{host}'s TLS certificate is not trusted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake with {host} failed"
        if isinstance(cause, ConnectionRefusedError):
            return f"{address} refused the connection: nothing listens there"
        if isinstance(cause, ConnectionResetError):
            return f"{host} dropped the connection while it opened"
        if isinstance(cause, TimeoutError | httpx.TimeoutException):
            return f"{host} did not answer in time (no route, or a firewall drops the packets)"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route to {host}: the network is unreachable"
        if isinstance(cause, InvalidHandshake):
            return f"{host} did not open a WebSocket ({cause})"
    return f"{exc.__class__.__name__}: {exc}"


def closed_text(exc: ConnectionClosed, url: str) -> str:
    """Why an open stream ended, in plain words: dropped without a close frame, or closed with a code and reason."""
    host, _ = _where(url)
    if exc.rcvd is None:
        return f"{host} dropped the stream without closing it (the network or the exchange cut it)"
    reason = f": {exc.rcvd.reason}" if exc.rcvd.reason else ""
    return f"{host} closed the stream (code {exc.rcvd.code}{reason})"
