"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairs_project.settings")
# Initialise Django (apps, settings) before anything imports models, as
# ``django.core.asgi.get_asgi_application`` does.
django.setup(set_prefix=False)

from pairs_project.http import OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from typing import Any  # noqa: E402

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from dashboard.routing import websocket_urlpatterns  # noqa: E402
from ingestion.buffers import RollingBuffers  # noqa: E402
from ingestion.services import live_buffers  # noqa: E402
from pairs_project.concurrency import HttpConcurrencyLimit  # noqa: E402


def application_for(buffers: RollingBuffers) -> Any:
    """The ASGI app of a process whose live ticks are ``buffers`` (``runpairs`` passes its runtime's)."""
    websocket = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns(buffers))))
    return HttpConcurrencyLimit(
        ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket}),
        limit=settings.WEB_CONCURRENT_REQUESTS,
    )


#: The web server of distributed mode (``daphne pairs_project.asgi:application``): the live ticks through Redis.
application = application_for(live_buffers())
