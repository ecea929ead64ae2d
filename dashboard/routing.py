"""Websocket routes."""

from __future__ import annotations

from typing import Any

from django.urls import path, re_path

from ingestion.buffers import RollingBuffers

from .consumers import DashboardConsumer, NotFoundConsumer


def websocket_urlpatterns(buffers: RollingBuffers) -> list[Any]:
    """The routes; a pair's page reads the newest prices from ``buffers`` (the process's live ticks)."""
    return [
        path("ws/pairs/<int:pair_id>/", DashboardConsumer.as_asgi(buffers=buffers)),
        # Last: anything else is accepted and closed with 4404, not a 500 from the router.
        re_path(r"", NotFoundConsumer.as_asgi()),
    ]
