"""The overview's longest words in a real headless browser (Debian's chromium driven by Playwright).

A pair warming up with both legs silent has the longest state the overview writes
("warming up 0/100 · stale: 1000SHIBUSDT, 1000FLOKIUSDT"); beside the default pair
(warming up too) and an inactive one, the page reads at 1,440 and 390 px wide with no sideways scroll and
no words cut short. Screenshots are saved under ``artifacts/`` (``overview-states-*``).

Skips with a reason when no chromium is installed; fails instead when
REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import pytest

from analytics.models import Pair
from tests.processes import ARTIFACTS, CHROMIUM_ARGS, at_both_widths, chromium_path

pytestmark = pytest.mark.django_db(transaction=True)

LONGEST = "warming up 0/100 · stale: 1000SHIBUSDT, 1000FLOKIUSDT"


def test_the_overview_keeps_its_longest_state_inside_a_phone_and_a_desk(live_server, pipeline):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    Pair.objects.create(symbol_a="1000SHIBUSDT", symbol_b="1000FLOKIUSDT", interval="1m")
    Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", interval="5m", active=False)
    pipeline.snapshots()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        try:
            page.goto(f"{live_server.url}/")
            page.wait_for_selector("#pairs-rows tr.pair-row")
            states = page.eval_on_selector_all("#pairs-rows .badge", "bs => bs.map(b => b.textContent.trim())")
            assert LONGEST in states, states
            at_both_widths(page, "overview-states")
        finally:
            browser.close()
