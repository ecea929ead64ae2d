"""Django's HTTP handling under ASGI, each request's middleware and view in one thread.

Django's own ASGI handler runs the middleware chain in async mode. Every
middleware of this site is a sync one (Django's own, WhiteNoise, django-axes; the
views are sync too), so each of their hooks would hop from the event loop to a
thread and back: about eighteen hops a request, each waiting its turn on a loop
that is busy with the pages' websockets and on the GIL (measured: 9 ms of CPU for a
snapshot GET, most of it hopping). This handler loads the chain in sync mode and
runs the whole of it, view included, in one hop, as a WSGI server would: the
request's reading, the disconnect watch and the response's sending stay on the loop.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: Any) -> Any:
        # Thread-sensitive, in the request's own context (``ASGIHandler.__call__``
        # opens one): the signals around the request run in the same thread.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
