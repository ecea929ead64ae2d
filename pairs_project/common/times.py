"""Times as users write them: ms since the epoch, or an ISO 8601 date or time (UTC unless it says)."""

from __future__ import annotations

from datetime import UTC, datetime


def time_ms(text: str | int) -> int:
    """``text`` as ms since the epoch; ``ValueError`` with a message a user can act on."""
    if isinstance(text, int):
        return text
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither ms since the epoch nor an ISO date such as 2026-11-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
