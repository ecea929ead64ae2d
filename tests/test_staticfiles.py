"""Static files under ASGI: served by WhiteNoise, and no other request leaves the event loop for it."""

from __future__ import annotations

import json
import re
from http import HTTPStatus

import pytest
from django.test import AsyncClient

from tests.processes import ROOT

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


def vendor_files_of_the_makefile() -> dict[str, str]:
    """The vendor files ``make`` copies into static/vendor, each with the npm package it comes from."""
    makefile = (ROOT / "Makefile").read_text()
    sources = re.search(r"^VENDOR_SOURCES := (.+)$", makefile, re.M).group(1).split()
    return {source.rsplit("/", 1)[1]: source.split("/", 1)[0] for source in sources}


def test_every_vendor_file_a_page_loads_is_copied_by_make_from_a_pinned_package():
    loaded = {
        name
        for template in (ROOT / "templates").rglob("*.html")
        for name in re.findall(r"{% static 'vendor/([^']+)' %}", template.read_text())
    }
    copied = vendor_files_of_the_makefile()
    assert loaded == set(copied), (loaded, copied)
    # A fresh clone gets exactly these versions: pinned in package.json and locked.
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for package in set(copied.values()):
        assert re.fullmatch(r"\d+\.\d+\.\d+", pinned[package]), f"{package} is not pinned exactly: {pinned[package]}"
        assert locked[f"node_modules/{package}"]["version"] == pinned[package]


async def test_the_vendor_files_are_served():
    for name in vendor_files_of_the_makefile():
        response = await AsyncClient().get(f"/static/vendor/{name}")
        assert response.status_code == HTTPStatus.OK, name
        assert response["Content-Type"].startswith("text/javascript"), name
