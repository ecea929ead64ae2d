"""The ASGI entry point: HTTP requests are served a bounded number at a time."""

from __future__ import annotations

import asyncio

import pytest

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


def hops_per_request(handler, path: str) -> tuple[int, int]:
    """The status of a GET of ``path`` through ``handler`` and how many times it hopped to a thread."""
    from unittest import mock

    from asgiref.sync import SyncToAsync
    from channels.testing import HttpCommunicator

    hops = 0
    real = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        nonlocal hops
        hops += 1
        return await real(self, *args, **kwargs)

    async def get() -> int:
        with mock.patch.object(SyncToAsync, "__call__", counted):
            response = await HttpCommunicator(handler, "GET", path).get_response(timeout=10)
        return response["status"]

    return asyncio.run(get()), hops


@pytest.mark.django_db(transaction=True)
def test_a_request_runs_its_middleware_and_view_in_one_hop_to_a_thread(settings):
    """Every middleware of the site is sync: Django's own ASGI handler hops to a thread and back for
    each of their hooks (about eighteen times a request), each hop waiting its turn on a loop busy
    with the pages' websockets. Ours runs the chain and the view in one."""
    from django.core.handlers.asgi import ASGIHandler

    from pairs_project.http import OneHopASGIHandler

    settings.ALLOWED_HOSTS = ["*"]  # the test client comes from "unknown:0"
    status, hops = hops_per_request(OneHopASGIHandler(), "/api/health/")
    assert status == 200
    django_status, django_hops = hops_per_request(ASGIHandler(), "/api/health/")
    assert django_status == 200
    assert hops <= 3 < django_hops, (hops, django_hops)
