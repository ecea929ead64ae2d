"""Websocket routes (the live dashboard consumers arrive with the dashboard)."""

from __future__ import annotations

websocket_urlpatterns: list = []
