"""WhiteNoise's static files, without taking every request off the event loop.

WhiteNoise's middleware is sync-only. Under ASGI, Django adapts the chain around it:
each request hops from the event loop to a thread for WhiteNoise and back to the
loop for the async middleware after it, and every hop waits its turn on a loop
that is busy with the pages' websockets. This async-capable wrapper looks the path
up in WhiteNoise's table on the loop, serves a static file through WhiteNoise (in
a thread), and passes every other request on without a hop.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self.whitenoise(request)

    async def __acall__(self, request: Any) -> Any:
        whitenoise = self.whitenoise
        path = request.path_info
        static_file = whitenoise.find_file(path) if whitenoise.autorefresh else whitenoise.files.get(path)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(whitenoise.serve, thread_sensitive=False)(static_file, request)
