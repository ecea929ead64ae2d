"""A bound on the HTTP requests one web process serves at once.

Django runs a sync view on a thread of its own per request (asgiref's
``ThreadSensitiveContext``), and daphne accepts every connection: a burst of
requests becomes as many threads, all fighting over the GIL with each other and
with the websockets' event loop, and each of them is late. Like a fixed pool of
worker threads (gunicorn's ``--threads``), this lets ``limit`` requests run and
queues the rest in arrival order on the event loop, where waiting costs nothing.
Websockets are not counted: each lives as long as its page.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any


class HttpConcurrencyLimit:
    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        # One per event loop (a server has one; a test suite makes many).
        self._semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        async with semaphore:
            return await self.app(scope, receive, send)
