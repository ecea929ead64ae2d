"""The admin in a real headless browser (Debian's chromium driven by Playwright).

A superuser signs in and opens every list of the three apps with records in it: at
1,440 px each fits the screen (no horizontal scroll, not even inside the table's own
box); at 390 px, a phone, the page is no wider than the screen, the table scrolls
inside its own box and a record's link is on screen. Detail pages fit too.
Screenshots are saved under ``artifacts/`` (``admin-<model>-1440.png``,
``admin-<model>-390.png``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth.models import User

from tests.processes import ARTIFACTS, CHROMIUM_ARGS, CLIPPED, chromium_path
from tests.support import desk_records

pytestmark = pytest.mark.slow

APPS = ("ingestion", "analytics", "alerts")
PASSWORD = "admin-desk-pw"

#: How far the page and the result table overflow their boxes sideways (0: they fit).
OVERFLOW = """() => {
    const page = document.documentElement;
    const results = document.querySelector('#changelist .results');
    return {
        page: page.scrollWidth - page.clientWidth,
        table: results ? results.scrollWidth - results.clientWidth : null,
        tableScrolls: results ? getComputedStyle(results).overflowX : null,
    };
}"""


def test_every_admin_list_fits_a_desktop_and_is_usable_on_a_phone(live_server):
    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    desk_records()
    User.objects.create_superuser("desk", "desk@example.com", PASSWORD)
    lists = [
        (model._meta.model_name, f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
        for model in admin.site._registry
        if model._meta.app_label in APPS and model.objects.exists()
    ]
    assert len(lists) >= 11, lists
    errors: list[tuple[str, str]] = []
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on(
            "console",
            lambda m: errors.append((m.text, urlsplit(m.location.get("url", "")).path)) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: errors.append((str(e), "")))
        try:
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "desk")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/")
            for name, path in lists:
                page.set_viewport_size({"width": 1440, "height": 900})
                page.goto(live_server.url + path)
                assert page.locator("#result_list tbody tr").count() > 0, name
                overflow = page.evaluate(OVERFLOW)
                assert overflow["page"] <= 0 and overflow["table"] <= 0, (name, overflow)
                assert page.evaluate(CLIPPED) == [], (name, page.evaluate(CLIPPED))
                page.screenshot(path=str(ARTIFACTS / f"admin-{name}-1440.png"), full_page=True)
                # A phone: nothing wider than the screen but the table, which scrolls in its own box.
                page.set_viewport_size({"width": 390, "height": 844})
                page.wait_for_timeout(100)
                overflow = page.evaluate(OVERFLOW)
                assert overflow["page"] <= 0, (name, overflow)
                assert page.evaluate(CLIPPED) == [], (name, page.evaluate(CLIPPED))
                assert overflow["table"] <= 0 or overflow["tableScrolls"] in ("auto", "scroll"), (name, overflow)
                link = page.locator("#result_list tbody tr:first-child a").first.bounding_box()
                assert link is not None and 0 <= link["x"] and link["x"] + link["width"] <= 390, (name, link)
                page.screenshot(path=str(ARTIFACTS / f"admin-{name}-390.png"), full_page=True)
            # A record's detail page fits as well, its stored JSON scrolling in its own box.
            page.set_viewport_size({"width": 1440, "height": 900})
            for name in ("alert", "paperposition", "snapshot"):
                page.goto(live_server.url + dict(lists)[name])
                page.click("#result_list tbody tr:first-child a")
                page.wait_for_selector("#content-main fieldset")
                assert page.evaluate(OVERFLOW)["page"] <= 0, name
            page.screenshot(path=str(ARTIFACTS / "admin-snapshot-detail-1440.png"), full_page=True)
        finally:
            browser.close()
    # Clean but for the admin's pages asking for a /favicon.ico it has not.
    assert [e for e in errors if e[1] != "/favicon.ico"] == [], errors
