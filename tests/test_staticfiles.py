"""Static files under ASGI: served by WhiteNoise, and no other request leaves the event loop for it."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_static_file_is_served_under_asgi():
    response = await AsyncClient().get("/static/dashboard/pair.js")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/javascript")


async def test_an_api_request_passes_the_static_files_without_a_thread(monkeypatch):
    import whitenoise.middleware

    def refuse(self, request):
        raise AssertionError("WhiteNoise's sync middleware was called")

    monkeypatch.setattr(whitenoise.middleware.WhiteNoiseMiddleware, "__call__", refuse)
    response = await AsyncClient().get("/api/health/")  # the test client's handler is built per request
    assert response.status_code == HTTPStatus.OK
