"""The ASGI entry point: HTTP requests are served a bounded number at a time."""

from __future__ import annotations

import asyncio

from pairs_project.concurrency import HttpConcurrencyLimit


async def test_at_most_the_limit_of_http_requests_run_at_once_and_the_rest_wait_their_turn():
    """Django serves each sync request on a thread of its own: unbounded, a burst becomes hundreds of
    threads fighting over the GIL, and every request of it is late."""
    running = peak = 0
    finished: list[int] = []

    async def app(scope, receive, send):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        finished.append(scope["n"])

    limited = HttpConcurrencyLimit(app, limit=3)
    await asyncio.gather(*(limited({"type": "http", "n": n}, None, None) for n in range(20)))
    assert peak == 3
    assert finished == list(range(20))  # first come, first served


async def test_websockets_are_not_counted():
    held = asyncio.Event()

    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            await held.wait()  # a websocket lives for as long as its page

    limited = HttpConcurrencyLimit(app, limit=1)
    sockets = [asyncio.create_task(limited({"type": "websocket"}, None, None)) for _ in range(3)]
    await asyncio.wait_for(limited({"type": "http"}, None, None), 1)
    held.set()
    await asyncio.gather(*sockets)


def test_the_application_is_limited(settings):
    from pairs_project.asgi import application

    assert isinstance(application, HttpConcurrencyLimit)
    assert application.limit == settings.WEB_CONCURRENT_REQUESTS
