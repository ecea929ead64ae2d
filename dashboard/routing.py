"""Websocket routes."""

from __future__ import annotations

from django.urls import path

from .consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/pairs/<int:pair_id>/", DashboardConsumer.as_asgi()),
]
