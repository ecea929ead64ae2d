"""The dashboard in a real headless browser (Debian's chromium driven by Playwright).

The whole system runs as a user runs it (``runpairs --simulate``) with a small
window and a 3-sigma spread shock every minute; the test opens the pair page and watches
it go live: warm-up ends, charts fill (the z chart with the signal), the signal z
moves without a reload, the entry gates and the confirmation ("related n/N") show
the snapshot's numbers, a shock's alert appears in the feed with its marker on the
signal line (where an edit of the thresholds does not move it), and the console
stays clean. Another stops the system for a few seconds and starts it again: the
pair page's charts break at the outage and mark it, name their series, zoom, pan,
reset and take a range together (a zoomed live chart stops following the newest
bar), and draw an open paper position's own spread from its entry until it closes;
screenshots at 1,440 and 390 px. A third signs in as staff, runs a backtest from
the pair's backtest page and watches it through to its charts (zoomed and reset
together) and tables. A fourth runs the offline exchange with a universe of 12
symbols, screens it from the screener page,
sorts and filters the ranked pairs, and watches a planted pair: its live page fills
from the klines. Screenshots are saved under ``artifacts/``.

Skips with a reason when no chromium is installed; fails instead when
REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from urllib.parse import urlsplit

import pytest

from analytics.snapshot import snapshot_json
from tests.dashboard.zones import ZONE_CASES
from tests.processes import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    ROOT,
    at_both_widths,
    chromium_path,
    free_port,
    get_json,
    wait_until,
)
from tests.test_display import DURATIONS

pytestmark = pytest.mark.slow

EDIT_ENTRY_Z = "from analytics.models import Pair; Pair.objects.filter(pk=1).update(entry_z=3.25)"


#: The pair's confirmation: short, so that a shock soon after warm-up can fire an entry.
CONFIRM_BARS = 10


def manage_env(database_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    return env


@contextmanager
def running_system(
    tmp_path, database_url, *args: str, env: dict[str, str] | None = None, window: int = 120
) -> Iterator[str]:
    """``runpairs --simulate`` (with ``args`` and ``env``) on a fresh database, the default pair with a 120-bar
    ``window``; its base URL once the feed is connected."""
    env = {**manage_env(database_url), **(env or {})}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [
            *manage,
            "add_pair",
            "BTCUSDT",
            "ETHUSDT",
            "--window",
            str(window),
            "--min-bars",
            "30",
            "--confirm-bars",
            str(CONFIRM_BARS),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (tmp_path / "runpairs.log").open("w")
    proc = subprocess.Popen(
        [
            *manage,
            "runpairs",
            "--simulate",
            "--port",
            str(port),
            "--sim-rate",
            "100",
            "--sim-half-life",
            "5",
            "--sim-spread-sigma",
            "5",
            "--sim-shock-every",
            "60",
            "--sim-shock-size",
            "3",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get_json(f"{base}/api/health/")["feed"]["connected"], 30, "the feed")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


@pytest.fixture
def system(tmp_path, database_url):
    """``runpairs --simulate`` on a fresh database, the default pair with a 120-bar window."""
    with running_system(tmp_path, database_url) as base:
        yield base


#: The entry checklist as the page writes it: each gate with its value, its threshold and its mark.
GATE_TEXTS = {
    "adf": r"ADF p (\d\.\d{3}|<0\.001) < 0\.05 [✓✗]",
    "coint": r"EG p (\d\.\d{3}|<0\.001) < 0\.05 [✓✗]",
    "corr": r"correlation -?\d\.\d{2} ≥ 0\.60 [✓✗]",
    "run": rf"related \d+/{CONFIRM_BARS} [✓✗]",
    "z": r"\|signal z\| \d+\.\d{2} > 2\.00 [✓✗]",
}

SHOWN = (
    "() => ({snapshot: window.pairsPage.snapshot, gates: [...document.querySelectorAll('#gates > li')].map("
    "li => ({key: li.id.slice(5), ok: li.dataset.ok, text: li.textContent.replace(/\\s+/g, ' ').trim()}))})"
)

#: The z chart's signal line and markers, and its entry line.
Z_CHART = (
    "() => { const d = window.pairsCharts.zscore.data.datasets;"
    " return {entry: d[1].data.map(p => p.y), markers: d[6].data.map(p => ({x: p.x, y: p.y, kind: p.kind}))}; }"
)


#: The paper position card as the page shows it, and the position's own spread on the spread chart.
POSITION_CARD = (
    "() => ({open: document.querySelector('#position-panel').dataset.open,"
    " id: (document.querySelector('#pos-body .pos-open') || {dataset: {}}).dataset.positionId || null,"
    " closed: [...document.querySelectorAll('#pos-closed > li[data-position-id]')].map(li => +li.dataset.positionId),"
    " line: window.pairsCharts.spread.data.datasets[6].data.length})"
)


def words(html: str) -> str:
    """The words of some HTML, its tags dropped and its spaces collapsed."""
    return " ".join(html_unescape(re.sub(r"<[^>]+>", " ", html)).split())


def check_position_card(page, base: str) -> None:
    """The card shows the pair's positions as the API has them, in the words the server writes (a few tries:
    a 1 s pair is marked every second)."""
    for _ in range(20):
        positions = get_json(f"{base}/api/positions/?pair=1")
        html = urllib.request.urlopen(f"{base}/pairs/1/", timeout=5).read().decode()
        card = page.evaluate(POSITION_CARD)
        shown_text = words(page.inner_html("#pos-body"))
        opened = next((p for p in positions if p["open"]), None)
        served_text = words(re.search(r'<div id="pos-body"[^>]*>(.*?)</div>\s*</section>', html, re.S).group(1))
        if (
            card["open"] == ("true" if opened else "false")
            and card["id"] == (str(opened["id"]) if opened else None)
            and card["closed"] == [p["id"] for p in positions if not p["open"]][:5]
            and shown_text == served_text
            and (card["line"] > 0) == (opened is not None)  # its own spread on the chart while it is open
        ):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"the card is not the API's: {card} {shown_text!r} vs {positions} {served_text!r}")
    assert positions, "an alert was fired and no paper position was booked"


def test_the_pair_page_goes_live_and_shows_an_alert(system, database_url):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        health_polls: list[str] = []
        page.on("request", lambda r: health_polls.append(r.url) if "/api/health/" in r.url else None)
        try:
            opened_at = time.monotonic()
            page.goto(f"{system}/pairs/1/")
            page.wait_for_selector("#live-status[data-socket=live]", timeout=15_000)
            page.wait_for_function(
                "document.querySelector('#warmup').textContent.toLowerCase().includes('ready')", timeout=60_000
            )
            # The charts hold the window's points; the z chart the signal recorded as each bar closed
            # (it starts a bar after warm-up).
            for chart in ("chart-prices", "chart-spread", "chart-zscore"):
                page.wait_for_function(
                    f"Number(document.querySelector('#{chart}').dataset.points) > 10", timeout=20_000
                )
            # The signal z moves by itself, without a reload.
            first = page.text_content("#signal-zscore-value")
            page.wait_for_function(
                "(z) => document.querySelector('#signal-zscore-value').textContent !== z", arg=first, timeout=10_000
            )
            # The entry gates: each with the snapshot's value and threshold and whether it passes,
            # and the confirmation (related n/N).
            shown = page.evaluate(SHOWN)
            snapshot, gates = shown["snapshot"], {g["key"]: g for g in shown["gates"]}
            assert list(gates) == list(GATE_TEXTS), gates
            for key, pattern in GATE_TEXTS.items():
                assert re.fullmatch(pattern, gates[key]["text"]), gates[key]
                assert gates[key]["text"].endswith("✓" if gates[key]["ok"] == "true" else "✗"), gates[key]
            run = snapshot["related_run"]
            assert gates["run"]["text"].startswith(f"related {run}/{CONFIRM_BARS} ")
            assert gates["run"]["ok"] == ("true" if run >= CONFIRM_BARS else "false")
            assert gates["adf"]["ok"] == ("true" if snapshot["adf_pvalue"] < 0.05 else "false")
            assert page.text_content("#related-flag") == ("related" if snapshot["related"] else "not related")
            # The z tile's words: the page script's are the server's for every kind of snapshot
            # and rule state.
            for case, rule, previous_run, key, label in ZONE_CASES:
                given = [snapshot_json(case), rule.as_dict() if rule else None, previous_run]
                assert page.evaluate(ZONE_OF, given) == {"key": key, "label": label}, (case, rule, previous_run)
            # Durations (half-life, warm-up) as the server writes them.
            written = page.evaluate("(xs) => xs.map(x => window.Pairs.duration(x))", [s for s, _ in DURATIONS])
            assert written == [words for _, words in DURATIONS]
            # After the whole series on connect, each snapshot's series comes as a delta the page
            # applies: its series is then exactly the server's (the page computes no statistic).
            page.wait_for_function("window.pairsPage.messages.series_delta >= 3", timeout=15_000)
            for _ in range(5):  # between two snapshots, so page and API show the same bar
                shown = page.evaluate(
                    "() => { const s = window.pairsPage.series;"
                    " return {as_of: s.as_of, t: s.t, price_a: s.price_a, price_b: s.price_b,"
                    " spread: s.spread, zscore: s.zscore, signal_zscore: s.signal_zscore}; }"
                )
                served = get_json(f"{system}/api/pairs/1/series/")
                if served["as_of"] == shown["as_of"]:
                    break
                time.sleep(0.2)
            assert {k: served[k] for k in shown} == shown
            # The whole window on connect, and again only when no exact delta exists (the first
            # snapshot after the page opened on an empty cache, a leg turning stale on the same bar).
            counts = page.evaluate("window.pairsPage.messages")
            assert counts["series_delta"] > counts["series"], counts
            # A shock (every minute) or a natural excursion becomes an entry alert in the feed.
            page.wait_for_selector("#alert-feed [data-alert-id]", timeout=180_000)
            seen_at = time.time() * 1000
            alerts = {a["id"]: a for a in get_json(f"{system}/api/alerts/?pair=1")}
            shown = int(page.get_attribute("#alert-feed [data-alert-id]", "data-alert-id"))
            assert shown in alerts
            # Pushed, not polled: on the page within 3 s of its row being saved.
            assert seen_at - alerts[shown]["created_at"] < 3000
            # The alert opened (an entry) or closed (an exit) a paper position: the card says what
            # /api/positions/ says without a reload, in the words and figures the server renders.
            check_position_card(page, system)
            # Its marker sits on the signal line: at its bar, at the signal z it fired on, which is
            # that bar's point of the line.
            chart = page.evaluate(Z_CHART)
            series = page.evaluate("() => window.pairsPage.series")
            line = dict(zip(series["t"], series["signal_zscore"], strict=True))
            fired = {a["bar_time"]: a for a in alerts.values()}
            on_line = [m for m in chart["markers"] if m["x"] in line and m["x"] in fired]
            assert on_line, (chart["markers"], alerts)
            for marker in on_line:
                assert marker["y"] == line[marker["x"]] == fired[marker["x"]]["signal_zscore"], marker
            # A threshold edited now moves the entry lines, not the markers of what fired before.
            assert chart["entry"] == [2.0, 2.0]
            subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", EDIT_ENTRY_Z],
                cwd=ROOT,
                env=manage_env(database_url),
                check=True,
                capture_output=True,
            )
            page.wait_for_function(
                "() => window.pairsCharts.zscore.data.datasets[1].data.every(p => p.y === 3.25)", timeout=10_000
            )
            moved = page.evaluate(Z_CHART)
            assert [m for m in moved["markers"] if m in on_line] == on_line
            # The health comes over the websocket every 5 s: an open page does not poll it.
            page.wait_for_function("window.pairsPage.messages.health >= 2", timeout=15_000)
            assert time.monotonic() - opened_at > 25
            assert len(health_polls) <= 1, health_polls
            # The overview of a pair that has alerted, at a desk's width and a phone's.
            overview = browser.new_page(viewport={"width": 1440, "height": 900})
            overview.goto(f"{system}/")
            overview.wait_for_selector("#pairs-rows tr.pair-row", timeout=15_000)
            at_both_widths(overview, "index")
        finally:
            page.screenshot(path=str(ARTIFACTS / "pair-page.png"), full_page=True)
            browser.close()
    assert errors == [], errors


#: How long the system is down between its two runs in the charts' test: an outage of the pair's series.
OUTAGE_S = 6

#: The charts' time axes, the view, and the page series' oldest and newest bar.
CHART_VIEW = (
    "() => ({x: Object.fromEntries(Object.entries(window.pairsCharts).map("
    "([k, c]) => [k, [c.scales.x.min, c.scales.x.max]])),"
    " follow: document.querySelector('#chart-view').dataset.follow, view: window.pairsPage.chartGroup.view.mode,"
    " text: document.querySelector('#chart-view').textContent,"
    " first: window.pairsPage.series.t[0], newest: window.pairsPage.series.t[window.pairsPage.series.t.length - 1]})"
)

#: A chart's outages as marked, its main line's points, and the page series' times.
CHART_GAPS = (
    "(id) => { const c = window.pairsCharts[id]; return {marked: +c.canvas.dataset.gaps,"
    " gaps: c.$gaps.map(g => [g.from, g.to]), line: c.data.datasets[0].data.map(p => [p.x, p.y]),"
    " t: window.pairsPage.series.t}; }"
)

#: Each legend entry of a chart: its words and its colour (a line's stroke, a marker's colour).
LEGEND = (
    "(id) => [...document.querySelectorAll(`#legend-${id} .legend-item`)].map(e => {"
    " const line = e.querySelector('line'); const glyph = e.querySelector('.legend-glyph');"
    " return [e.textContent, line ? line.getAttribute('stroke') : glyph ? glyph.style.color : null]; })"
)

#: The position's own spread as the spread chart draws it, with the page series it was drawn from.
POSITION_LINE = (
    "() => { const d = window.pairsCharts.spread.data.datasets[6]; const s = window.pairsPage.series;"
    " return {legend: d.legend, data: d.data.map(p => [p.x, p.y]), t: s.t, a: s.price_a, b: s.price_b}; }"
)

#: The page script's zone words for a snapshot under a rule state (the page's own state put back after).
ZONE_OF = (
    "([s, rule, run]) => { const p = window.pairsPage; const kept = [p.openEntry, p.armed, p.previousRun];"
    " p.openEntry = rule && rule.open_direction ? rule : null; p.armed = rule ? rule.armed : true;"
    " p.previousRun = run;"
    " try { return p.zoneOf(s); } finally { [p.openEntry, p.armed, p.previousRun] = kept; } }"
)

SERIES_MESSAGES = "window.pairsPage.messages.series_delta + window.pairsPage.messages.series"
Z_MAX = "window.pairsCharts.zscore.scales.x.max"

#: The range buttons a pair of 1 s bars may have (the longest five shorter than what its charts hold).
RANGES_1S = ((30_000, "30s"), (60_000, "1m"), (300_000, "5m"), (900_000, "15m"), (3_600_000, "1h"))


def outages(times: list[int], interval_ms: int) -> list[list[int]]:
    """The bars more than an interval apart, [before, after]."""
    return [[a, b] for a, b in zip(times, times[1:], strict=False) if b - a > interval_ms]


def gap_words(start_ms: int, end_ms: int) -> str:
    """What the page says of an outage from ``start_ms`` (the end of the bar before) to ``end_ms``."""
    start, end = (datetime.fromtimestamp(ms / 1000, UTC) for ms in (start_ms, end_ms))
    if start.date() == end.date():
        return f"no data {start:%H:%M:%S}–{end:%H:%M:%S} UTC"
    return f"no data {start:%m-%d %H:%M:%S} – {end:%m-%d %H:%M:%S} UTC"


def test_the_charts_zoom_together_break_at_an_outage_and_name_their_series(tmp_path, database_url):
    """The system runs until its pair is ready, is down for a few seconds and runs again on the same database: the
    pair page's charts break at the outage and mark it, name their series, zoom, pan and reset together (a zoomed
    live chart stops following the newest bar), and draw an open paper position's own spread while it is open."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    # A window of 300 bars holds the outage until the screenshots, after a paper position has opened.
    with running_system(tmp_path, database_url, window=300) as first:
        wait_until(lambda: get_json(f"{first}/api/pairs/1/snapshot/")["ready"], 90, "the pair's snapshot ready")
    time.sleep(OUTAGE_S)
    errors: list[str] = []
    with running_system(tmp_path, database_url, window=300) as system, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            wait_until(
                lambda: outages(get_json(f"{system}/api/pairs/1/series/")["t"], 1000), 60, "bars after the outage"
            )
            page.goto(f"{system}/pairs/1/")
            page.wait_for_selector("#live-status[data-socket=live]", timeout=15_000)
            page.wait_for_function(
                "document.querySelector('#warmup').textContent.toLowerCase().includes('ready')", timeout=60_000
            )
            page.wait_for_function("Number(document.querySelector('#chart-zscore').dataset.points) > 10")
            # The outage in the series: each chart marks it, and its line breaks there (no point inside but a
            # null one) rather than drawing a straight line across. Again after the deltas that came since.
            served = outages(get_json(f"{system}/api/pairs/1/series/")["t"], 1000)
            page.wait_for_function(f"{SERIES_MESSAGES} >= 3", timeout=15_000)
            for chart in ("prices", "spread", "zscore"):
                shown = page.evaluate(CHART_GAPS, chart)
                assert shown["gaps"] == outages(shown["t"], 1000) and shown["marked"] == len(shown["gaps"]) >= 1
                assert served[0] in shown["gaps"]
                for before, after in shown["gaps"]:
                    inside = [y for x, y in shown["line"] if before < x < after]
                    # (the signal z has no break to make where the bar before had no signal)
                    assert inside == [None] or (chart == "zscore" and inside == []), (chart, before, after, inside)
            # The pointer in the outage: the tooltip says when there was no data.
            before, after = served[0]
            page.locator("#chart-zscore").scroll_into_view_if_needed()
            box = page.locator("#chart-zscore").bounding_box()
            x = page.evaluate(f"window.pairsCharts.zscore.scales.x.getPixelForValue({(before + after) / 2})")
            page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
            page.wait_for_function("window.pairsCharts.zscore.tooltip.footer.length > 0", timeout=5_000)
            assert page.evaluate("window.pairsCharts.zscore.tooltip.footer") == [gap_words(before + 1000, after)]
            # Each legend names its series in words and units, each in a colour of its own, the palette's.
            colors = page.evaluate("window.Pairs.colors")
            legends = {chart: page.evaluate(LEGEND, chart) for chart in ("prices", "spread", "zscore")}
            assert [w for w, _ in legends["prices"]] == ["BTCUSDT (USDT)", "ETHUSDT (USDT)", "no data"]
            assert legends["prices"][:2] == [["BTCUSDT (USDT)", colors["a"]], ["ETHUSDT (USDT)", colors["b"]]]
            spread_words = [w for w, _ in legends["spread"] if not w.startswith("position spread")]
            assert spread_words == ["spread (USDT)", "mean", "±1σ", "±2σ", "no data"]
            assert legends["spread"][0] == ["spread (USDT)", colors["spread"]]
            z_words = [w for w, _ in legends["zscore"]]
            assert z_words[:3] == ["signal z", "entry ±2.00", "exit ±0.50"] and z_words[-1] == "no data"
            for chart, entries in legends.items():
                drawn = [c for w, c in entries if w != "no data" and not w.endswith("entry") and w != "exit"]
                assert len(set(drawn)) == len(drawn), (chart, entries)  # the alert markers are long/short colours
            # The wheel on the z chart zooms all three into the same span: they stop following the newest bar.
            whole = page.evaluate(CHART_VIEW)
            assert whole["view"] == "all" and whole["follow"] == "true"
            assert whole["x"]["zscore"][0] == whole["first"] and whole["x"]["zscore"][1] >= whole["newest"] + 1000
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(4):
                page.mouse.wheel(0, -240)
                page.wait_for_timeout(50)
            zoomed = page.evaluate(CHART_VIEW)
            span = zoomed["x"]["zscore"]
            assert zoomed["x"]["prices"] == zoomed["x"]["spread"] == span
            assert span[1] - span[0] < 0.8 * (whole["x"]["zscore"][1] - whole["x"]["zscore"][0])
            assert zoomed["follow"] == "false" and "not following the newest bar" in zoomed["text"]
            seen = page.evaluate(SERIES_MESSAGES)
            page.wait_for_function(f"(n) => {SERIES_MESSAGES} >= n + 2", arg=seen, timeout=15_000)
            later = page.evaluate(CHART_VIEW)
            assert later["newest"] > zoomed["newest"] and later["x"]["zscore"] == span  # held still
            # A drag to the right pans all three to earlier bars, the same width.
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2 + 150, box["y"] + box["height"] / 2, steps=10)
            page.mouse.up()
            panned = page.evaluate(CHART_VIEW)
            moved = panned["x"]["zscore"]
            assert panned["x"]["prices"] == panned["x"]["spread"] == moved and moved[0] < span[0]
            assert moved[1] - moved[0] == pytest.approx(span[1] - span[0])
            assert panned["follow"] == "false"
            # Reset zoom: everything again, and following the newest bar.
            page.click("#chart-reset")
            reset = page.evaluate(CHART_VIEW)
            assert reset["view"] == "all" and reset["follow"] == "true" and page.is_disabled("#chart-reset")
            assert reset["x"]["zscore"][0] == reset["first"] and reset["x"]["zscore"][1] >= reset["newest"] + 1000
            page.wait_for_function(f"(x) => {Z_MAX} > x", arg=reset["x"]["zscore"][1], timeout=15_000)
            # The range buttons suit one-second bars (at least 20 of them) and what the charts hold (less than
            # all of it); "30s" shows the newest 30 seconds and keeps following.
            # (Both read at once: the span grows by a bar every second, and the buttons with it.)
            ranges, held = page.evaluate(
                "() => [[...document.querySelectorAll('#chart-ranges button')].map(b => b.textContent),"
                " window.pairsPage.chartGroup.bounds[1] - window.pairsPage.chartGroup.bounds[0]]"
            )
            assert ranges == [label for ms, label in RANGES_1S if ms < held] + ["All"], (ranges, held)
            page.click('#chart-ranges button[data-range="30000"]')
            recent = page.evaluate(CHART_VIEW)
            assert recent["follow"] == "true" and recent["view"] == "range"
            assert page.get_attribute('#chart-ranges [data-range="30000"]', "aria-pressed") == "true"
            assert [b - a for a, b in recent["x"].values()] == [30_000] * 3
            page.wait_for_function(f"(x) => {Z_MAX} > x", arg=recent["x"]["zscore"][1], timeout=15_000)
            followed = page.evaluate(CHART_VIEW)["x"]["zscore"]
            assert followed[1] - followed[0] == 30_000
            page.click('#chart-ranges button[data-range="0"]')
            assert page.evaluate(CHART_VIEW)["view"] == "all"
            # A shock opens a paper position: its own spread, A − β'·B from its entry bar on, named by its β'.
            page.wait_for_selector('#position-panel[data-open="true"]', timeout=180_000)
            opened = next(p for p in get_json(f"{system}/api/positions/?pair=1") if p["open"])
            label = f"position spread (β' {opened['hedge_ratio']:,.4f})"
            page.wait_for_function(
                "(label) => document.querySelector('#legend-spread').textContent.includes(label)", arg=label
            )
            beta = opened["hedge_ratio"]
            for _ in range(20):  # drawn from the page's series as it is (a delta may be on its way to the chart)
                line = page.evaluate(POSITION_LINE)
                expected = [
                    [t, a - beta * b]
                    for t, a, b in zip(line["t"], line["a"], line["b"], strict=True)
                    if t >= opened["opened_at"]
                ]
                if [pt for pt in line["data"] if pt[1] is not None] == expected:
                    break
                page.wait_for_timeout(100)
            else:
                raise AssertionError(f"the position's own spread is not A − β'·B since its entry: {line} {opened}")
            assert line["legend"] == label and line["data"][0][0] == opened["opened_at"]
            assert [label, colors["position"]] in page.evaluate(LEGEND, "spread")
            # The page at its two widths: nothing wider than the screen, no words cut short.
            at_both_widths(page, "pair")
            # Its exit closes it: the line goes, and its name from the legend.
            page.wait_for_selector('#position-panel[data-open="false"]', timeout=180_000)
            page.wait_for_function("window.pairsCharts.spread.data.datasets[6].data.length === 0", timeout=5_000)
            assert "position spread" not in page.text_content("#legend-spread")
        finally:
            browser.close()
    assert errors == [], errors


STAFF = ("desk", "backtest-desk-pw")

#: The x axes of a backtest's two charts.
BACKTEST_X = "() => Object.values(window.backtestPage.charts).map(c => [c.scales.x.min, c.scales.x.max])"

#: A console error the backtest test causes on purpose: the 400 of a refused backtest.
REFUSED = (
    "Failed to load resource: the server responded with a status of 400 (Bad Request)",
    "/api/pairs/1/backtests/",
)


def test_a_backtest_runs_from_the_page_to_its_charts(system, database_url):
    """Staff signs in, asks for an impossible backtest (told why beside the field), then a real one."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", STAFF[0], "--email", "d@x.test"],
        cwd=ROOT,
        env={**manage_env(database_url), "DJANGO_SUPERUSER_PASSWORD": STAFF[1]},
        check=True,
        capture_output=True,
    )
    # The pair's bars: ready once min_bars have closed, then until the rule has fired (a shock comes every
    # minute), so that the backtest of the same bars has a trade to show.
    wait_until(lambda: get_json(f"{system}/api/pairs/1/snapshot/")["ready"], 90, "the pair's snapshot ready")
    wait_until(lambda: get_json(f"{system}/api/alerts/?pair=1"), 180, "an alert")
    start = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")  # before the first bar
    errors: list[tuple[str, str]] = []  # (message, the resource's path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on(
            "console",
            lambda m: errors.append((m.text, urlsplit(m.location.get("url", "")).path)) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: errors.append((str(e), "")))
        try:
            # Anyone sees the page; the form is staff's.
            page.goto(f"{system}/pairs/1/backtest/")
            assert page.locator("#bt-form").count() == 0
            page.click("#bt-signin a")
            page.fill("#id_username", STAFF[0])
            page.fill("#id_password", STAFF[1])
            page.click("input[type=submit]")
            page.wait_for_url(f"{system}/pairs/1/backtest/")
            assert page.text_content("#bt-none").strip().startswith("No backtest of this pair yet.")
            # A refused request: the reason beside its field, nothing queued.
            page.fill("input[name=start]", start)
            page.fill("input[name=fee_bps]", "-1")
            page.click("#bt-submit")
            page.wait_for_selector('.field-error[data-for="fee_bps"]:not([hidden])', timeout=10_000)
            assert "fee_bps must be >= 0" in page.text_content('.field-error[data-for="fee_bps"]')
            assert page.get_attribute("input[name=fee_bps]", "aria-invalid") == "true"
            assert get_json(f"{system}/api/pairs/1/backtests/") == []
            # The real one, with the walk-forward grid: queued, then running, then done.
            page.fill("input[name=fee_bps]", "5")
            page.check("input[name=grid]")
            page.click("#bt-submit")
            page.wait_for_selector("#bt-run[data-run-id]", timeout=10_000)
            run_id = int(page.get_attribute("#bt-run", "data-run-id"))
            assert page.url.endswith(f"/pairs/1/backtest/?run={run_id}")
            assert page.is_hidden('.field-error[data-for="fee_bps"]')
            page.wait_for_selector(f'#bt-run[data-run-id="{run_id}"][data-status="done"]', timeout=60_000)
            assert page.text_content("#bt-form-status") == f"backtest #{run_id} done"
            seen = page.evaluate("window.backtestPage.seen")
            assert seen[0] in ("queued", "running") and seen[-1] == "done", seen  # its progress, then its end
            # The summary, the charts drawn, the trades or the reason there are none, the grid.
            run = get_json(f"{system}/api/backtests/{run_id}/")
            assert run["status"] == "done" and run["params"]["grid"] is True
            assert page.locator("#bt-summary .tile").count() == 6
            for canvas in ("chart-equity", "chart-drawdown"):
                assert int(page.get_attribute(f"#{canvas}", "data-points")) == run["summary"]["bars"] > 0
            drawn = page.evaluate(
                "() => Object.values(window.backtestPage.charts).map(c => [c.chartArea.width, c.chartArea.height])"
            )
            assert len(drawn) == 2 and all(w > 100 and h > 50 for w, h in drawn), drawn
            if run["trades"]:
                assert page.locator("#bt-trades tbody tr").count() == len(run["trades"])
            else:
                assert page.text_content("#bt-no-trades").startswith("No trades")
            assert page.locator("#bt-grid tbody tr").count() == len(run["grid"])
            assert page.locator("#bt-grid tr.chosen").count() == 1
            assert page.is_visible("#bt-headline") and page.is_visible("#bt-one-second")
            assert "Funding" in page.text_content("#bt-assumed")
            # Listed as the newest run, selected; its CSVs download.
            assert page.get_attribute("#bt-runs > li:first-child", "data-run-id") == str(run_id)
            assert page.get_attribute("#bt-runs > li:first-child", "aria-current") == "true"
            trades_csv = page.request.get(system + page.get_attribute("#csv-trades", "href"))
            assert trades_csv.ok and trades_csv.text().startswith("entry_time,entry_time_utc,exit_time,")
            equity_csv = page.request.get(system + page.get_attribute("#csv-equity", "href"))
            assert len(equity_csv.text().splitlines()) == run["summary"]["bars"] + 1
            # The two charts name their series, and zoom, pan and reset together over the run's range.
            assert page.evaluate(LEGEND, "equity") == [["equity (USDT)", page.evaluate("window.Pairs.colors.equity")]]
            assert page.evaluate(LEGEND, "drawdown") == [
                ["drawdown (USDT)", page.evaluate("window.Pairs.colors.drawdown")]
            ]
            whole = page.evaluate(BACKTEST_X)
            assert whole[0] == whole[1] and page.text_content("#chart-view") == "the whole range"
            page.locator("#chart-equity").scroll_into_view_if_needed()
            box = page.locator("#chart-equity").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(3):
                page.mouse.wheel(0, -240)
                page.wait_for_timeout(50)
            zoomed = page.evaluate(BACKTEST_X)
            assert zoomed[0] == zoomed[1] and zoomed[0][1] - zoomed[0][0] < 0.8 * (whole[0][1] - whole[0][0])
            assert page.text_content("#chart-view").startswith("zoomed to ")
            page.click("#chart-reset")
            assert page.evaluate(BACKTEST_X) == whole
            # On a phone: one column, nothing wider than the screen but the tables' own scroll.
            at_both_widths(page, "backtest")
        finally:
            browser.close()
    # Clean but for the refused request, and the admin's login page asking for a /favicon.ico it has not.
    assert [e for e in errors if e[1] != "/favicon.ico"] == [REFUSED], errors


#: The offline exchange's universe for the screener's test, and the group planted in it (seed 7, 12 symbols:
#: ``ingestion.simulator.planted_pairs(7, 12)``). The scheduled screen is the one the test asks for too.
UNIVERSE = 12
PLANTED = {frozenset(("DOTUSDT", "SUIUSDT")), frozenset(("LTCUSDT", "SUIUSDT")), frozenset(("DOTUSDT", "LTCUSDT"))}
SCREEN_ENV = {"SCREENER_TOP": str(UNIVERSE), "SCREENER_INTERVAL": "1m", "SCREENER_WINDOW": "1000"}


@pytest.fixture
def universe_system(tmp_path, database_url):
    """``runpairs --simulate --sim-universe 12``: the pair trades, ten more symbols have klines only."""
    with running_system(tmp_path, database_url, "--sim-universe", str(UNIVERSE), env=SCREEN_ENV) as base:
        yield base


#: The table's rows as the page shows them: pair, data-* and visibility.
SCREEN_ROWS = (
    "() => [...document.querySelectorAll('#sc-rows > tr')].map(r => ({pair: r.dataset.pair, rank: +r.dataset.rank,"
    " sig: r.dataset.sig === 'true', hl: r.dataset.hl === '' ? null : +r.dataset.hl, visible: !r.hidden}))"
)


#: A screen queued as the schedule queues one (not from the page); prints its id.
QUEUE_SCREEN = (
    "from analytics import services as s; "
    f"print(s.screener_create(s.screener_request(top={UNIVERSE}, interval='1m', window=1000)).pk)"
)


def test_the_screener_finds_the_planted_pairs_and_a_watched_one_goes_live(universe_system, database_url):
    """Staff signs in, a refused screen says why beside its field, a real one runs to its table and heatmap;
    the table sorts and filters; "watch" adds the pair and its live page fills from the klines."""
    from playwright.sync_api import sync_playwright

    system = universe_system
    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", STAFF[0], "--email", "d@x.test"],
        cwd=ROOT,
        env={**manage_env(database_url), "DJANGO_SUPERUSER_PASSWORD": STAFF[1]},
        check=True,
        capture_output=True,
    )
    errors: list[tuple[str, str]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)

        session = browser.new_context(viewport={"width": 1440, "height": 900})

        def opened():
            """A tab of the session."""
            tab = session.new_page()
            tab.on(
                "console",
                lambda m: (
                    errors.append((m.text, urlsplit(m.location.get("url", "")).path)) if m.type == "error" else None
                ),
            )
            tab.on("pageerror", lambda e: errors.append((str(e), "")))
            return tab

        page = opened()
        try:
            # Anyone sees the page; the form and the watch buttons are staff's.
            page.goto(f"{system}/screener/")
            assert page.locator("#sc-form").count() == 0
            page.click("#sc-signin a")
            page.fill("#id_username", STAFF[0])
            page.fill("#id_password", STAFF[1])
            page.click("input[type=submit]")
            page.wait_for_url(f"{system}/screener/")
            # A refused request: the reason beside its field, nothing queued.
            page.fill("input[name=window]", "50")
            page.click("#sc-submit")
            page.wait_for_selector('.field-error[data-for="window"]:not([hidden])', timeout=10_000)
            assert page.text_content('.field-error[data-for="window"]') == "window must be 100 to 5000 bars, not 50"
            assert page.get_attribute("input[name=window]", "aria-invalid") == "true"
            # The real one: the universe's top 12 on 1m bars, window 1,000 (the default: with fewer, which planted
            # pairs pass depends on the hour the test runs at); queued or running, then done and shown.
            page.fill("input[name=top]", str(UNIVERSE))
            page.select_option("select[name=interval]", "1m")
            page.fill("input[name=window]", "1000")
            page.click("#sc-submit")
            page.wait_for_function(
                "/^screen #\\d+ /.test(document.querySelector('#sc-form-status').textContent)", timeout=10_000
            )
            run_id = int(re.match(r"screen #(\d+) ", page.text_content("#sc-form-status")).group(1))
            assert page.is_hidden('.field-error[data-for="window"]')
            page.wait_for_selector(f'#sc-run[data-run-id="{run_id}"]', timeout=300_000)
            assert page.text_content("#sc-form-status") == f"screen #{run_id} done"
            seen = page.evaluate("window.screenerPage.seen")
            assert seen[0] in ("queued", "running") and seen[-1] == "done", seen
            assert page.is_hidden("#sc-active") and page.url.endswith(f"/screener/?run={run_id}")
            # Every run listed is followed to its end (the scheduled one too), the one shown marked.
            page.wait_for_function(
                "[...document.querySelectorAll('#sc-runs > li')].every(li => li.dataset.status === 'done')",
                timeout=10_000,
            )
            assert page.get_attribute("#sc-runs > li:first-child", "data-run-id") == str(run_id)
            assert page.get_attribute("#sc-runs > li:first-child", "aria-current") == "true"
            run = get_json(f"{system}/api/screener/runs/{run_id}/")
            assert run["status"] == "done" and run["interval"] == "1m" and run["window"] == 1000
            assert len(run["symbols"]) == UNIVERSE and run["skipped"] == {}
            # The table in rank order, as the API has it; the planted pairs significant; the heatmap drawn.
            rows = page.evaluate(SCREEN_ROWS)
            assert [r["pair"] for r in rows] == [f"{q['symbol_a']}/{q['symbol_b']}" for q in run["pairs"]]
            assert len(rows) == UNIVERSE * (UNIVERSE - 1) // 2
            significant = {frozenset(r["pair"].split("/")) for r in rows if r["sig"]}
            assert PLANTED <= significant, significant
            assert page.text_content("#sc-significant .tile-value").strip() == str(len(significant))
            assert int(page.get_attribute("#sc-heat", "data-cells")) == len(rows)
            size = page.evaluate("() => { const c = document.querySelector('#sc-heat'); return [c.width, c.height]; }")
            assert size[0] > 200 and size[0] == size[1], size
            # Hovering a cell names its pair: the first one's.
            heat = page.evaluate("() => ({m: screenerPage.heat.margin, c: screenerPage.heat.cell})")
            page.locator("#sc-heat").scroll_into_view_if_needed()
            box = page.locator("#sc-heat").bounding_box()
            first = run["pairs"][0]
            i, j = run["symbols"].index(first["symbol_a"]), run["symbols"].index(first["symbol_b"])
            page.mouse.move(box["x"] + heat["m"] + (j + 0.5) * heat["c"], box["y"] + heat["m"] + (i + 0.5) * heat["c"])
            assert page.get_attribute("#sc-heat-info", "data-pair") == f"{first['symbol_a']}/{first['symbol_b']}"
            assert page.text_content("#sc-heat-info").startswith(f"{first['symbol_a']} / {first['symbol_b']} · #1 · q ")
            # Sorted by half-life (shortest first, none last), then the other way; the rank order by "#".
            page.click('th[data-key="hl"]:not([data-as]) button')
            by_half_life = page.evaluate(SCREEN_ROWS)
            known = [r["hl"] for r in by_half_life if r["hl"] is not None]
            assert known == sorted(known)
            assert all(r["hl"] is None for r in by_half_life[len(known) :])  # none last
            assert page.get_attribute('th[data-key="hl"]:not([data-as])', "aria-sort") == "ascending"
            page.click('th[data-key="hl"]:not([data-as]) button')
            by_half_life = page.evaluate(SCREEN_ROWS)
            known = [r["hl"] for r in by_half_life if r["hl"] is not None]
            assert known == sorted(known, reverse=True)
            assert [r["pair"] for r in by_half_life] != [r["pair"] for r in rows]
            assert page.get_attribute('th[data-key="hl"]:not([data-as])', "aria-sort") == "descending"
            page.click('th[data-key="rank"] button')
            assert [r["pair"] for r in page.evaluate(SCREEN_ROWS)] == [r["pair"] for r in rows]
            # Significant only.
            page.check("#sc-significant-only")
            assert [r["pair"] for r in page.evaluate(SCREEN_ROWS) if r["visible"]] == [
                r["pair"] for r in rows if r["sig"]
            ]
            page.uncheck("#sc-significant-only")
            # A run the page did not start (the schedule's, another desk's) is found, followed and shown
            # on a page opened before it was queued, with no reload.
            watcher = opened()
            watcher.goto(f"{system}/screener/")
            queued = subprocess.run(
                [sys.executable, "manage.py", "shell", "-v0", "-c", QUEUE_SCREEN],
                cwd=ROOT,
                env=manage_env(database_url),
                check=True,
                capture_output=True,
                text=True,
            )
            other = int(queued.stdout.split()[-1])
            watcher.wait_for_selector(f'#sc-run[data-run-id="{other}"]', timeout=180_000)
            assert watcher.get_attribute("#sc-runs > li:first-child", "data-run-id") == str(other)
            watcher.close()
            at_both_widths(page, "screener")
            # Watch a planted pair: added at the screen's interval and window, its live page opens and fills from
            # the klines (the universe's symbols have no trades: each new 1m bar comes with the warm-up's klines).
            target = next(r for r in rows if r["sig"] and frozenset(r["pair"].split("/")) in PLANTED)
            symbol_a, symbol_b = target["pair"].split("/")
            stale = opened()  # signed in too, opened before the pair exists
            stale.goto(f"{system}/screener/?run={run_id}")
            page.click(f'#sc-rows > tr[data-pair="{target["pair"]}"] button.sc-watch')
            page.wait_for_url(re.compile(r".*/pairs/\d+/$"), timeout=15_000)
            pair_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
            pair = get_json(f"{system}/api/pairs/{pair_id}/")
            assert (pair["symbol_a"], pair["symbol_b"], pair["interval"], pair["window"]) == (
                symbol_a,
                symbol_b,
                "1m",
                1000,
            )
            assert page.text_content(".pair-title h1").split() == [f"{symbol_a}/{symbol_b}", "1m"]
            page.wait_for_selector("#live-status[data-socket=live]", timeout=15_000)
            page.wait_for_function(
                "document.querySelector('#warmup').textContent.toLowerCase().includes('ready')", timeout=60_000
            )
            page.wait_for_function("Number(document.querySelector('#chart-spread').dataset.points) >= 100")
            snapshot = get_json(f"{system}/api/pairs/{pair_id}/snapshot/")
            assert snapshot["ready"] and snapshot["n"] == 1000, snapshot
            assert page.text_content("#window-info") == "1000/1000 bars"
            assert page.text_content("#m-hedge_ratio") != "—" and page.text_content("#m-coint_pvalue") != "—"
            page.screenshot(path=str(ARTIFACTS / "screener-watched-pair.png"), full_page=True)
            # A page opened before: its "watch" finds the pair there already and opens it.
            stale.click(f'#sc-rows > tr[data-pair="{target["pair"]}"] button.sc-watch')
            stale.wait_for_url(f"{system}/pairs/{pair_id}/", timeout=15_000)
            stale.close()
            # The screener links the watched pair to its page.
            page.goto(f"{system}/screener/?run={run_id}")
            assert page.get_attribute(f'#sc-rows > tr[data-pair="{target["pair"]}"] a.sc-open', "href") == (
                f"/pairs/{pair_id}/"
            )
        finally:
            browser.close()
    # Clean but for the refused screen, the pair that exists already, and the admin's login page asking for a
    # /favicon.ico it has not.
    refused = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert sorted(e for e in errors if e[1] != "/favicon.ico") == [
        (refused, "/api/pairs/"),
        (refused, "/api/screener/runs/"),
    ], errors


#: The live indicator as the page shows it: its state, the feed's, the page socket's, its words and why.
LIVE_STATUS = (
    "() => { const el = document.querySelector('#live-status');"
    " return {state: el.dataset.state, feed: el.dataset.feed, socket: el.dataset.socket,"
    " text: document.querySelector('#live-status-text').textContent, why: el.title}; }"
)


def test_the_live_indicator_goes_red_when_the_feed_drops_while_the_page_stays_connected(tmp_path, database_url):
    """The offline exchange refuses every connection from 35 s to 60 s after it opens: the page's socket stays up,
    the one indicator turns red and says the feed is down (and why), then green again once the feed is back."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with running_system(tmp_path, database_url, "--sim-fault", "refuse@35:25") as base:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 390, "height": 844})
            try:
                page.goto(f"{base}/pairs/1/")
                page.wait_for_function(
                    "() => document.querySelector('#live-status').dataset.state === 'ok'", timeout=30_000
                )
                assert page.evaluate(LIVE_STATUS)["socket"] == "live"
                # First the dropped connection ("the stream ended: ..."), then the refused reconnects.
                page.wait_for_function(
                    "() => { const el = document.querySelector('#live-status');"
                    " return el.dataset.feed === 'down' && el.title.includes('HTTP 503'); }",
                    timeout=60_000,
                )
                down = page.evaluate(LIVE_STATUS)
                assert down["state"] == "down" and down["socket"] == "live", down
                assert down["text"] == "feed down"
                assert "cannot connect to the stream: 127.0.0.1 is unavailable (HTTP 503)" in down["why"], down
                page.screenshot(path=str(ARTIFACTS / "live-indicator-feed-down-390.png"))
                failed = int(page.inner_text("#health-reconnects").split("·")[1].split()[0])
                assert failed >= 1  # the failed connects are counted beside the reconnects
                page.wait_for_function(
                    "() => document.querySelector('#live-status').dataset.state === 'ok'", timeout=90_000
                )
                assert page.evaluate(LIVE_STATUS)["text"] == "live"
            finally:
                browser.close()
