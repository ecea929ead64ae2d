"""Websocket routes."""

from __future__ import annotations

from django.urls import path, re_path

from .consumers import DashboardConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/pairs/<int:pair_id>/", DashboardConsumer.as_asgi()),
    # Last: anything else is accepted and closed with 4404, not a 500 from the router.
    re_path(r"", NotFoundConsumer.as_asgi()),
]
