"""The alerts page in a real headless browser (Debian's chromium driven by Playwright).

The page is served by a live test server on the test's own database, filled with
two pairs' alerts and their notifications. A visitor (no one signed in) filters
them with the form, the filters land in the address, the CSV downloads exactly
the rows shown, a bad filter is said on the page, and the page reads at 1,440 and
390 px wide without a horizontal page scroll (the table scrolls in its own box).
Screenshots are saved under ``artifacts/``.

Skips with a reason when no chromium is installed; fails instead when
REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.models import Alert, Notification
from analytics.models import Pair
from tests.processes import ARTIFACTS, CHROMIUM_ARGS, at_both_widths, chromium_path
from tests.support import T0, make_pair, pending_alert

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86_400_000

#: The rows of the table as the page shows them.
ROWS = "() => [...document.querySelectorAll('#al-rows > tr')].map(r => +r.dataset.alertId)"


def recorded(pair: Pair, created: int, **fields) -> Alert:
    """An alert recorded at ``created`` (ms), with a notification per channel of its pair."""
    values = {
        "bar_time": created - 1_000,
        "signal_zscore": 2.4137,
        "zscore": 2.05,
        "coint_pvalue": 0.0123,
        "hedge_ratio": 20.4102,
        "message": f"{pair.symbol_a}/{pair.symbol_b}: signal z +2.41 beyond ±2 after 30 related bars "
        "(ADF p 0.004, EG p 0.012, correlation 0.81): short spread (sell A, buy 20.41 B)",
        **fields,
    }
    alert = pending_alert(pair, **values)
    Alert.objects.filter(pk=alert.pk).update(created_at=datetime.fromtimestamp(created / 1000, tz=UTC))
    return alert


@pytest.fixture
def alerts_book() -> Pair:
    """Hourly entries and their exits ten minutes later: BTC/ETH (webhook-less, e-mail and Telegram) on
    2026-01-01, SOL/ETH 1m on 2026-01-02; the pair to filter on (SOL/ETH)."""
    btc = make_pair(email_recipients="desk@example.com", telegram_chat_id="-1001234567890")
    sol = Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", interval="1m", webhook_url="")
    for k in range(6):
        for pair, start in ((btc, T0 + k * 3_600_000), (sol, T0 + DAY + k * 3_600_000)):
            direction = "long_spread" if k % 2 else "short_spread"
            recorded(pair, start, direction=direction)
            recorded(
                pair,
                start + 600_000,
                kind="exit",
                direction=direction,
                reason="relationship_broken" if k == 3 else "reverted",
                signal_zscore=0.31,
                message=f"{pair.symbol_a}/{pair.symbol_b}: signal z +0.31 back inside ±0.5; close the spread",
            )
    notes = Notification.objects.filter(alert__pair=btc)
    notes.filter(channel="email").update(status="sent", attempts=1)
    notes.filter(channel="telegram").update(status="sent", attempts=2)
    newest = list(Alert.objects.filter(pair=btc).order_by("-created_at").values_list("id", flat=True)[:3])
    notes.filter(channel="telegram", alert_id__in=newest).update(
        status="failed", attempts=5, error="attempt 5: HTTP 403 from Telegram (the bot may not write to this chat)"
    )
    return sol


def newest_first(**filters) -> list[int]:
    return list(Alert.objects.filter(**filters).order_by("-created_at", "-id").values_list("id", flat=True))


def test_the_alerts_page_filters_downloads_and_reads_on_a_phone(live_server, alerts_book, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server.url
    sol = alerts_book
    # What each view must list, read first: Django's ORM refuses to run inside Playwright's event loop.
    everything = newest_first()
    sol_exits = newest_first(pair=sol, kind="exit")
    # 02:00 entry, 02:10 exit, 03:00 entry, and its exit at 03:10:00 (a bound covers its second).
    in_range = newest_first(
        pair=sol,
        created_at__gte=datetime(2026, 1, 2, 2, tzinfo=UTC),
        created_at__lte=datetime(2026, 1, 2, 3, 10, tzinfo=UTC),
    )
    assert len(everything) == 24 and len(sol_exits) == 6 and len(in_range) == 4
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            # Anyone opens it from the top bar: every alert, newest first.
            page.goto(f"{base}/")
            page.click(".links a:text-is('Alerts')")
            page.wait_for_url(f"{base}/alerts/")
            assert page.evaluate(ROWS) == everything
            assert page.text_content("#al-list h2").strip() == "24 alerts"
            at_both_widths(page, "alerts")
            # The form: SOL's exits. The empty fields drop out of the address; the choices stay selected.
            page.select_option("select[name=pair]", str(sol.id))
            page.select_option("select[name=kind]", "exit")
            page.click("#al-submit")
            page.wait_for_url(f"{base}/alerts/?pair={sol.id}&kind=exit")
            assert page.evaluate(ROWS) == sol_exits
            assert page.input_value("select[name=pair]") == str(sol.id)
            assert page.input_value("select[name=kind]") == "exit"
            # A time range: the second day from 02:00 UTC to 03:10:00 (inclusive): one entry and its exit.
            page.fill("input[name=from]", "2026-01-02T02:00:00")
            page.fill("input[name=to]", "2026-01-02T03:10:00")
            page.select_option("select[name=kind]", "")
            page.click("#al-submit")
            page.wait_for_url(f"{base}/alerts/?*")
            # (a whole minute comes without its seconds: "to" then covers the minute, 03:10:00 included).
            query = parse_qs(urlsplit(page.url).query)
            assert query == {"pair": [str(sol.id)], "from": ["2026-01-02T02:00"], "to": ["2026-01-02T03:10"]}
            assert page.input_value("input[name=to]") == "2026-01-02T03:10:59"  # the last second it covers
            assert page.evaluate(ROWS) == in_range
            # The CSV: the same rows, with ISO times beside the ms.
            with page.expect_download() as download:
                page.click("#al-csv")
            path = tmp_path / "alerts.csv"
            download.value.save_as(path)
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            assert [int(r["id"]) for r in rows] == in_range
            assert all(
                r["created_at_utc"].startswith("2026-01-02T0") and r["created_at_utc"].endswith("Z") for r in rows
            )
            assert {r["symbol_a"] for r in rows} == {"SOLUSDT"}
            # A bad filter is said on the page, the form kept.
            page.goto(f"{base}/alerts/?kind=enter&pair={sol.id}")
            assert page.text_content("#al-errors").strip() == 'kind: "enter" is not entry or exit'
            assert page.get_attribute("select[name=kind]", "aria-invalid") == "true"
            assert page.evaluate(ROWS) == []
            # On a phone: nothing wider than the screen; the wide table scrolls in its own box.
            page.goto(f"{base}/alerts/")
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            box = page.evaluate(
                "() => { const w = document.querySelector('.al-table-wrap');"
                " return {scroll: w.scrollWidth, client: w.clientWidth, overflow: getComputedStyle(w).overflowX}; }"
            )
            assert box["scroll"] > box["client"] and box["overflow"] == "auto", box
            assert page.is_visible("#al-submit") and page.is_visible("#al-csv")
        finally:
            browser.close()
    # Clean but for the refused filter's own 400.
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"], errors
