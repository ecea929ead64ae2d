"""Fault injection: what the offline exchange can be told to get wrong, and when.

Kinds: ``drop`` (every WebSocket aborted, no close frame), ``refuse`` (new
handshakes answered 503 for a while), ``malformed`` (one invalid frame to each
connection), ``rate_limit`` (the next REST market-data requests, aggTrades and
klines alike, answered 429 or 418 with ``Retry-After``) and ``slow`` (every
REST answer late for a while). They come on demand (``/sim/fault``, the
server's ``fault_*`` methods) or on a schedule (``--fault drop@10``).
``RestFaults`` is the state the HTTP side consults; the WebSocket faults act
on the connections at once (``streams.Subscribers``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

FAULT_KINDS = ("drop", "refuse", "malformed", "rate_limit", "slow")

# Positional arguments after the time, by fault kind.
_FAULT_ARGS: dict[str, tuple[str, ...]] = {
    "drop": (),
    "malformed": (),
    "refuse": ("seconds",),
    "rate_limit": ("count", "status", "retry_after"),
    "slow": ("seconds", "delay"),
}
#: Every parameter a fault takes (the control endpoint's query parameters).
FAULT_PARAMS = ("seconds", "count", "status", "retry_after", "delay")


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """A scheduled fault: ``kind`` at ``at`` seconds after start, with its parameters."""

    kind: str
    at: float
    params: dict[str, float]


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse ``drop@10``, ``refuse@20:5``, ``malformed@30``, ``rate_limit@5:3[:418[:2]]``, ``slow@5:30:0.5``.

    The number after ``@`` is seconds after start; then, by kind: ``refuse``
    seconds (default 5); ``rate_limit`` count (1), status (429), retry-after
    seconds (1); ``slow`` seconds (30) and the delay of each REST answer (0.5).
    """
    kind, sep, rest = text.strip().partition("@")
    if not sep or kind not in FAULT_KINDS:
        raise ValueError(f"bad fault {text!r}: expected KIND@SECONDS[:ARGS] with KIND in {', '.join(FAULT_KINDS)}")
    try:
        numbers = [float(part) for part in rest.split(":")]
    except ValueError:
        raise ValueError(f"bad fault {text!r}: numbers expected after '@'") from None
    at, args = numbers[0], numbers[1:]
    names = _FAULT_ARGS[kind]
    if len(args) > len(names) or at < 0 or any(a < 0 for a in args):
        raise ValueError(f"bad fault {text!r}: {kind} takes at most {len(names)} non-negative number(s) after the time")
    params = dict(zip(names, args, strict=False))
    if params.get("status", 429) not in (418, 429):
        raise ValueError(f"bad fault {text!r}: the rate-limit status is 429 or 418")
    return FaultSpec(kind, at, params)


def retry_after_value(value: float) -> int | float:
    """A ``Retry-After`` as given: whole seconds as an int (as Binance sends them), else the float."""
    return int(value) if float(value).is_integer() else float(value)


def malformed_frame(symbol: str, combined: bool) -> bytes:
    """A truncated aggTrade frame of ``symbol`` that is not JSON (what ``malformed`` sends)."""
    body = f'"e":"aggTrade","s":"{symbol}","p":"oops"'
    if combined:
        return f'{{"stream":"{symbol.lower()}@aggTrade","data":{{{body}'.encode()
    return f"{{{body}".encode()


class RestFaults:
    """The faults the HTTP side applies: refused handshakes, rate-limit answers, slow answers.

    Windows are on the monotonic clock, so a change of the wall clock neither
    ends nor stretches them.
    """

    def __init__(self) -> None:
        self.refuse_until = 0.0
        self.limited = 0  # REST requests still to answer with a rate-limit error
        self.limit_status = 429
        self.limit_retry_after: float = 1
        self.slow_until = 0.0  # REST answers are delayed until then...
        self.slow_delay = 0.0  # ...by this many seconds each

    def refuse(self, seconds: float) -> None:
        """Refuse WebSocket handshakes for the next ``seconds`` (a longer window already set stays)."""
        self.refuse_until = max(self.refuse_until, time.monotonic() + seconds)

    @property
    def refusing(self) -> bool:
        return time.monotonic() < self.refuse_until

    def rate_limit(self, count: int, status: int, retry_after: float) -> None:
        """Answer the next ``count`` REST market-data requests with ``status`` and ``Retry-After``."""
        if status not in (418, 429):
            raise ValueError("status must be 429 or 418")
        if count < 0 or retry_after < 0:
            raise ValueError("count and retry_after must be >= 0")
        self.limited, self.limit_status, self.limit_retry_after = int(count), status, retry_after

    def take_rate_limit(self) -> tuple[int, dict[str, Any], str] | None:
        """The answer due to this REST market-data request, if rate-limited: (status, body, ``Retry-After``)."""
        if self.limited <= 0:
            return None
        self.limited -= 1
        if self.limit_status == 418:
            msg = "Way too many requests; IP banned (simulated)."
        else:
            msg = "Too many requests; current limit of IP is 2400 requests per minute (simulated)."
        return self.limit_status, {"code": -1003, "msg": msg}, str(retry_after_value(self.limit_retry_after))

    def slow(self, seconds: float, delay: float) -> None:
        """Delay every REST market-data answer by ``delay`` s for the next ``seconds`` s."""
        if seconds < 0 or delay < 0:
            raise ValueError("seconds and delay must be >= 0")
        self.slow_until, self.slow_delay = time.monotonic() + seconds, delay

    @property
    def rest_delay(self) -> float:
        """Seconds a REST market-data answer is held back now (0: none)."""
        return self.slow_delay if self.slow_delay and time.monotonic() < self.slow_until else 0.0
