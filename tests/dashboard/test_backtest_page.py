"""The backtest page: the form for staff, a sign-in note for others, a run in words, its CSVs."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from html import unescape as html_unescape
from http import HTTPStatus

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client

from analytics import services
from analytics.models import Backtest, Pair
from dashboard.formatting import number_text
from dashboard.views.backtest import EQUITY_COLUMNS, TRADES_COLUMNS, chart_points
from pairs_project.pipeline import Pipeline
from tests.support import T0, cointegrated_ticks, make_pair, run_live

pytestmark = pytest.mark.django_db

SECONDS = 300
NOW = T0 + (SECONDS + 5) * 1000


def run_backtest(pair: Pair, **params) -> Backtest:
    """A backtest of ``pair`` asked and run as the periodic step runs it."""
    asked = services.backtest_create(pair, services.backtest_params(pair, now=NOW, **params))
    claimed = services.backtest_claim()
    assert claimed is not None and claimed.pk == asked.pk
    # No exchange answers here: a run with funding on says it had none.
    return services.backtest_run(claimed, rules_of=Pipeline.rules_of, rest_url="http://127.0.0.1:9")


@pytest.fixture
def traded_pair() -> Pair:
    """The default pair live over stored bars of a market whose spread reverts: its rule trades."""
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(SECONDS, seed=1, half_life=5), SECONDS)
    return pair


@pytest.fixture
def done(traded_pair) -> Backtest:
    backtest = run_backtest(traded_pair, start=T0, end=T0 + SECONDS * 1000, grid=True)
    assert backtest.status == "done", backtest.error
    assert backtest.summary["trades"] >= 2, backtest.summary
    return backtest


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("desk", password="pw", is_staff=True))
    return client


def page_url(pair: Pair) -> str:
    return f"/pairs/{pair.id}/backtest/"


def embedded(response, element_id: str):
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))


def assumptions(html: str) -> dict[str, str]:
    """What the page says a run assumed, by key."""
    items = re.findall(r'<div data-key="(\w+)"><dt>.*?</dt><dd>(.*?)</dd></div>', html, re.S)
    return {key: text_of(body) for key, body in items}


def text_of(html: str) -> str:
    """The words of some HTML, its tags dropped and its spaces collapsed."""
    return " ".join(html_unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, element_id: str) -> str:
    """The element with id ``element_id``, from its start tag to its own end tag."""
    start = re.search(rf'<(\w+)[^>]*\bid="{element_id}"', html)
    assert start, f"no #{element_id} in the page"
    depth = 0
    for tag in re.finditer(rf"<(/?){start.group(1)}\b[^>]*>", html[start.start() :]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return html[start.start() : start.start() + tag.end()]
    raise AssertionError(f"#{element_id} is not closed")


def parse_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# -- the page ------------------------------------------------------------------------


def test_the_pair_page_links_to_its_backtests(client):
    pair = make_pair()
    html = client.get(f"/pairs/{pair.id}/").content.decode()
    assert f'href="/pairs/{pair.id}/backtest/" id="backtest-link"' in html


def test_anonymous_visitors_see_the_runs_and_a_note_to_sign_in_but_no_form(client, api, done):
    pair = done.pair
    response = client.get(page_url(pair))
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert 'id="bt-form"' not in html and "csrfmiddlewaretoken" not in html
    note = section(html, "bt-signin")
    assert "Sign in as staff to run a backtest" in text_of(note)
    assert f'href="/admin/login/?next=%2Fpairs%2F{pair.id}%2Fbacktest%2F"' in note
    # The runs are listed as the API lists them; the newest is shown.
    assert embedded(response, "backtest-runs") == api.get(f"/api/pairs/{pair.id}/backtests/").json()
    config = embedded(response, "backtest-config")
    assert config["selected"] == done.id and config["can_run"] is False
    assert config["runs_url"] == f"/api/pairs/{pair.id}/backtests/"
    assert f'data-run-id="{done.id}" data-status="done"' in html
    assert "vendor/chart.umd.min.js" in html and "dashboard/backtest.js" in html


def test_staff_see_the_form_with_every_parameter(staff):
    pair = make_pair()
    response = staff.get(page_url(pair))
    html = response.content.decode()
    form = section(html, "bt-form")
    assert "csrfmiddlewaretoken" in form and "csrftoken" in response.cookies
    assert 'type="datetime-local" name="start"' in form and 'type="datetime-local" name="end"' in form
    for name in ("days", "fee_bps", "slippage_bps", "notional", "delay_bars"):
        assert f'name="{name}"' in form, name
    assert 'type="checkbox" name="funding" checked' in form and 'type="checkbox" name="grid">' in form
    for field in ("start", "end", "days", "fee_bps", "slippage_bps", "notional", "delay_bars"):
        assert f'class="field-error" data-for="{field}"' in form, field
    assert 'id="bt-signin"' not in html
    assert embedded(response, "backtest-config")["can_run"] is True
    assert "No backtest of this pair yet" in text_of(section(html, "bt-none"))


def test_a_user_who_is_not_staff_is_asked_to_sign_in_as_staff():
    pair = make_pair()
    client = Client()
    client.force_login(User.objects.create_user("viewer", password="pw"))
    html = client.get(page_url(pair)).content.decode()
    assert 'id="bt-form"' not in html and 'id="bt-signin"' in html


def test_unknown_pairs_and_runs_are_a_404(client, done):
    other = Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT")
    assert client.get("/pairs/999/backtest/").status_code == HTTPStatus.NOT_FOUND
    for query in ("?run=999", "?run=abc", f"?run={done.id}"):
        assert client.get(f"{page_url(other)}{query}").status_code == HTTPStatus.NOT_FOUND, query
    for tail in ("", "trades.csv", "equity.csv"):
        assert client.get(f"/pairs/{other.id}/backtest/{done.id}/{tail}").status_code == HTTPStatus.NOT_FOUND
        assert client.get(f"/pairs/{done.pair_id}/backtest/999/{tail}").status_code == HTTPStatus.NOT_FOUND


def test_a_done_run_in_words_the_walk_forward_headline_first(client, done):
    pair, summary, result = done.pair, done.summary, done.result
    html = client.get(page_url(pair)).content.decode()
    # The headline: the out-of-sample figures of the row chosen in sample (the grid's first).
    chosen = result["grid"][0]
    headline = text_of(section(html, "bt-headline"))
    assert text_of(section(html, "bt-oos-net")) == number_text(chosen["out_of_sample"]["net_pnl"], 2, signed=True)
    assert f"Sharpe {number_text(chosen['out_of_sample']['sharpe'])}" in headline
    assert f"Entry ±{chosen['entry_z']:.2f} / exit ±{chosen['exit_z']:.2f}" in headline
    assert html.index('id="bt-headline"') < html.index('id="bt-summary"')
    # The summary's tiles.
    net = text_of(section(html, "sum-net_pnl"))
    assert net.startswith(f"Net PnL {number_text(summary['net_pnl'], 2, signed=True)} USDT gross ")
    assert f"fees {number_text(summary['fees'])}" in net
    assert text_of(section(html, "sum-return_pct")).startswith(
        f"Return {number_text(summary['return_pct'], signed=True)} %"
    )
    assert f"{summary['max_drawdown_pct']:.2f} % of the notional" in text_of(section(html, "sum-max_drawdown"))
    trades_tile = text_of(section(html, "sum-trades"))
    assert trades_tile.startswith(f"Trades {summary['trades']} {summary['wins']} won · win rate ")
    holding = text_of(section(html, "sum-mean_holding"))
    assert holding.startswith(f"Mean holding {number_text(summary['mean_holding_bars'], 1)} bars")
    # Every trade, in words and to the second (UTC).
    table = section(html, "bt-trades")
    rows = re.findall(r"<tr data-direction=.*?</tr>", table, re.S)
    assert len(rows) == summary["trades"] == len(result["trades"])
    for row, trade in zip(rows, result["trades"], strict=True):
        words = text_of(row)
        entry = datetime.fromtimestamp(trade["entry_time"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert entry in words
        way = (
            "long spread (buy BTCUSDT, sell ETHUSDT)"
            if trade["direction"] == "long_spread"
            else "short spread (sell BTCUSDT, buy ETHUSDT)"
        )
        assert way in words
        assert words.endswith(number_text(trade["pnl"], 2, signed=True))
        assert ("pos" if trade["pnl"] > 0 else "neg") in re.search(r'class="num mono pnl ([^"]*)"', row).group(1)
    # The walk-forward table: every row, the chosen one marked.
    grid = re.findall(r"<tr(?: class=\"chosen\" data-chosen=\"true\")?>\s*<td>.*?</tr>", section(html, "bt-grid"), re.S)
    assert len(grid) == len(result["grid"]) == 20
    assert grid[0].startswith('<tr class="chosen"') and "chosen" not in "".join(grid[1:])
    assert f"±{chosen['entry_z']:.2f}" in grid[0]
    # The downloads and the chart points.
    assert f'href="/pairs/{pair.id}/backtest/{done.id}/trades.csv"' in html
    chart = embedded(client.get(page_url(pair)), "bt-chart-data")
    assert chart["equity"] == {"t": result["equity"]["t"], "y": result["equity"]["equity"]}
    assert max(-y for y in chart["drawdown"]["y"]) == pytest.approx(summary["max_drawdown"])


def test_the_page_says_what_the_run_assumed(client, traded_pair):
    run_backtest(traded_pair, start=T0, end=T0 + SECONDS * 1000, fee_bps=4, slippage_bps=2.5, delay_bars=2)
    funded = run_backtest(traded_pair, start=T0, end=T0 + SECONDS * 1000, funding=False, notional=2500)
    html = client.get(page_url(traded_pair)).content.decode()
    assumed = assumptions(html)
    assert assumed["range"].startswith("2026-01-01 00:00:00 → 2026-01-01 00:05:00 UTC · ")
    assert "entry ±2.00, exit ±0.50, window 80, related for 5 bars" in assumed["rule"]
    assert assumed["notional"].startswith("2,500.00 quote currency of BTCUSDT")
    assert assumed["fee"].startswith("5 bps") and assumed["slippage"].startswith("1 bps")
    assert assumed["delay"] == "0 bars: filled at the closes of the bar the signal fired on"
    assert assumed["funding"] == "off: none paid or received"
    assert "a one-second fill model is optimistic" in text_of(section(html, "bt-one-second"))
    # An earlier run, selected: its own costs, and funding on that no exchange could give.
    first = Backtest.objects.exclude(pk=funded.pk).get()
    html = client.get(f"{page_url(traded_pair)}?run={first.id}").content.decode()
    assert f'data-run-id="{first.id}"' in html
    assumed = assumptions(html)
    assert assumed["fee"].startswith("4 bps") and assumed["slippage"].startswith("2.5 bps")
    assert assumed["delay"] == "2 bars (2.0 s): filled at the closes 2 bars after the signal's"
    assert assumed["funding"].startswith("on, but none could be had: cannot fetch the history of")
    assert assumed["funding"].endswith("the run is without funding")


def test_a_queued_run_shows_its_progress_and_a_failed_one_its_reason(client):
    pair = make_pair()
    failed = run_backtest(pair, start=T0, end=T0 + 60_000)  # no bars stored
    queued = services.backtest_create(pair, services.backtest_params(pair, now=NOW))
    html = client.get(page_url(pair)).content.decode()
    assert f'data-run-id="{queued.id}" data-status="queued"' in html
    assert 'aria-valuenow="0"' in section(html, "bt-progress")
    assert text_of(section(html, "bt-progress-text")).startswith("queued")
    Backtest.objects.filter(pk=queued.pk).update(status="running", progress=0.42)
    fragment = client.get(f"/pairs/{pair.id}/backtest/{queued.id}/")  # the part the page script swaps in
    assert fragment.status_code == HTTPStatus.OK and "<html" not in fragment.content.decode()
    assert text_of(section(fragment.content.decode(), "bt-progress-text")) == "running: 42 %"
    html = client.get(f"{page_url(pair)}?run={failed.id}").content.decode()
    error = text_of(section(html, "bt-error"))
    assert error == f"This backtest failed: {failed.error}" and "no 1s bars of BTCUSDT" in error
    assert 'id="bt-summary"' not in html and 'id="csv-trades"' not in html


# -- CSV downloads ---------------------------------------------------------------------


def decimals(cell: str) -> int:
    return len(cell.partition(".")[2])


def significant(cell: str) -> int:
    return len(cell.lstrip("-").replace(".", "").lstrip("0"))


def test_the_trades_csv_has_every_trade_with_utc_times_and_no_float_noise(client, done):
    response = client.get(f"/pairs/{done.pair_id}/backtest/{done.id}/trades.csv")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="BTCUSDT-ETHUSDT-1s-backtest-{done.id}-trades.csv"' in response["Content-Disposition"]
    rows = parse_csv(response)
    assert (
        tuple(rows[0])
        == TRADES_COLUMNS
        == (
            "entry_time",
            "entry_time_utc",
            "exit_time",
            "exit_time_utc",
            "direction",
            "reason",
            "hedge_ratio",
            "qty_a",
            "qty_b",
            "entry_price_a",
            "entry_price_b",
            "exit_price_a",
            "exit_price_b",
            "fees",
            "funding",
            "pnl",
        )
    )
    trades = done.result["trades"]
    assert len(rows) - 1 == len(trades) >= 2
    for row, trade in zip(rows[1:], trades, strict=True):
        cells = dict(zip(rows[0], row, strict=True))
        for name in ("entry_time", "exit_time"):
            assert cells[name] == str(trade[name])
            moment = datetime.fromtimestamp(trade[name] / 1000, tz=UTC)
            assert cells[f"{name}_utc"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (cells["direction"], cells["reason"]) == (trade["direction"], trade["reason"])
        for name in ("hedge_ratio", "qty_a", "qty_b"):
            assert significant(cells[name]) <= 8 and "e" not in cells[name]
            assert float(cells[name]) == pytest.approx(trade[name], rel=1e-7)
        for name, most in (("entry_price_a", 5), ("exit_price_a", 5), ("entry_price_b", 6), ("exit_price_b", 6)):
            assert decimals(cells[name]) <= most  # the tick's decimals (1 and 2) and 4 more
            assert float(cells[name]) == pytest.approx(trade[name], abs=1e-9)  # whole bps: exact
        for name in ("fees", "funding", "pnl"):
            assert decimals(cells[name]) == 4
            assert float(cells[name]) == pytest.approx(trade[name], abs=5e-5)
        assert (float(cells["qty_a"]) > 0) == (trade["direction"] == "long_spread")


def test_the_equity_csv_has_every_grid_point_and_its_drawdown(client, done):
    response = client.get(f"/pairs/{done.pair_id}/backtest/{done.id}/equity.csv")
    assert response.status_code == HTTPStatus.OK
    rows = parse_csv(response)
    assert tuple(rows[0]) == EQUITY_COLUMNS == ("t", "time_utc", "equity", "drawdown")
    equity = done.result["equity"]
    assert len(rows) - 1 == len(equity["t"]) == done.summary["bars"]
    assert [int(r[0]) for r in rows[1:]] == equity["t"]
    assert rows[1][1] == "2026-01-01T00:00:00Z" and rows[-1][1] == "2026-01-01T00:04:59Z"
    assert all(decimals(r[2]) == decimals(r[3]) == 4 for r in rows[1:])
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(equity["equity"], abs=5e-5)
    drawdown = [float(r[3]) for r in rows[1:]]
    assert min(drawdown) == 0 and max(drawdown) == pytest.approx(done.summary["max_drawdown"], abs=5e-5)
    assert float(rows[-1][2]) == pytest.approx(done.summary["net_pnl"], abs=5e-5)  # every trade closed by the end


def test_the_csvs_of_a_run_not_done_say_why(client):
    pair = make_pair()
    failed = run_backtest(pair, start=T0, end=T0 + 60_000)
    queued = services.backtest_create(pair, services.backtest_params(pair, now=NOW))
    for what in ("trades", "equity"):
        response = client.get(f"/pairs/{pair.id}/backtest/{queued.id}/{what}.csv")
        assert response.status_code == HTTPStatus.CONFLICT
        assert response["Content-Type"].startswith("text/plain")
        assert response.content.decode() == (
            f"backtest {queued.id} is queued: its trades and equity are here once it has run\n"
        )
        response = client.get(f"/pairs/{pair.id}/backtest/{failed.id}/{what}.csv")
        assert response.status_code == HTTPStatus.CONFLICT
        assert f"backtest {failed.id} failed, so it has no trades or equity: no 1s bars of BTCUSDT" in (
            response.content.decode()
        )


# -- chart points ------------------------------------------------------------------------


def test_a_long_equity_is_thinned_to_its_ends_and_each_stretch_extremes():
    rng = np.random.default_rng(3)
    t = 1_000 * np.arange(100_000, dtype=np.int64)
    y = np.cumsum(rng.normal(0, 1, t.size))
    thinned = chart_points(t, y, limit=1000)
    assert len(thinned["t"]) == len(thinned["y"]) <= 1002
    assert thinned["t"] == sorted(thinned["t"]) and {int(t[0]), int(t[-1])} <= set(thinned["t"])
    assert min(thinned["y"]) == y.min() and max(thinned["y"]) == y.max()  # the drawdown's depth is kept
    kept = dict(zip(thinned["t"], thinned["y"], strict=True))
    assert all(kept[int(k)] == v for k, v in zip(t, y, strict=True) if int(k) in kept)  # points, not averages
    assert chart_points(t[:50], y[:50], limit=1000) == {"t": t[:50].tolist(), "y": y[:50].tolist()}
