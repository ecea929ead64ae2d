"""The alerts page (/alerts/) and its CSV (/alerts.csv): every alert, filtered, paged, and where it was sent."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from html import unescape as html_unescape
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from alerts.models import Alert, Notification
from analytics.models import Pair
from dashboard.views.alerts import ALERTS_PER_PAGE
from tests.support import T0, make_pair, pending_alert

pytestmark = pytest.mark.django_db

DAY = 86_400_000


@pytest.fixture
def client() -> Client:
    """Anyone: no user signed in."""
    return Client()


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def alert(pair: Pair, created: int, **fields) -> Alert:
    """An alert recorded at ``created`` (ms), with a notification per channel of its pair."""
    values = {
        "kind": "entry",
        "direction": "short_spread",
        "reason": "entry",
        "bar_time": created - 1_000,
        "signal_zscore": 2.4137000000000004,
        "zscore": 2.0511,
        "adf_pvalue": 0.004,
        "coint_pvalue": 0.012345678901,
        "correlation": 0.81,
        "related_run": 31,
        "hedge_ratio": 20.410230000000002,
        "message": "BTCUSDT/ETHUSDT: signal z +2.41 beyond ±2",
        **fields,
    }
    row = pending_alert(pair, **values)
    Alert.objects.filter(pk=row.pk).update(created_at=at(created))
    return row


@pytest.fixture
def book():
    """Two pairs' alerts over two days: entries and exits of both directions, one recorded before signals."""
    btc = make_pair(webhook_url="", email_recipients="desk@example.com", telegram_chat_id="123456789")
    sol = Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", interval="1m")
    rows = {
        "btc_entry": alert(btc, T0 + 10_250),  # 2026-01-01 00:00:10.250
        "btc_exit": alert(
            btc,
            T0 + 70_000,
            kind="exit",
            direction="short_spread",
            reason="reverted",
            signal_zscore=0.31,
            message="back inside",
        ),
        "sol_entry": alert(sol, T0 + DAY + 5_000, direction="long_spread", signal_zscore=-2.2, hedge_ratio=0.05),
        "sol_exit": alert(
            sol,
            T0 + DAY + 9_000,
            kind="exit",
            direction="long_spread",
            reason="relationship_broken",
            signal_zscore=None,  # before signals
            coint_pvalue=None,
            zscore=-0.9,
            message="broken",
        ),
    }
    Notification.objects.filter(alert=rows["btc_entry"], channel="email").update(status="sent", attempts=1)
    Notification.objects.filter(alert=rows["btc_entry"], channel="telegram").update(
        status="failed", attempts=5, error="attempt 5: could not connect"
    )
    return btc, sol, rows


def text_of(html: str) -> str:
    return " ".join(html_unescape(re.sub(r"<[^>]+>", " ", html)).split())


def table(html: str) -> list[dict]:
    """The table's rows: their id and each cell's words."""
    rows = []
    for attrs, body in re.findall(r"<tr (data-alert-id=[^>]*)>(.*?)</tr>", html, re.S):
        cells = [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        rows.append({"id": int(re.search(r'data-alert-id="(\d+)"', attrs).group(1)), "cells": cells, "html": body})
    return rows


def ids(response) -> list[int]:
    return [row["id"] for row in table(response.content.decode())]


def errors(response) -> dict[str, str]:
    found = re.findall(r'<li data-for="(\w+)"><b>\w+</b>: (.*?)</li>', response.content.decode())
    return {field: html_unescape(message) for field, message in found}


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# -- the page -----------------------------------------------------------------------


def test_anyone_sees_every_alert_newest_first_in_words_and_figures(client, book):
    btc, sol, rows = book
    response = client.get("/alerts/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    listed = table(html)
    assert [r["id"] for r in listed] == [rows[k].id for k in ("sol_exit", "sol_entry", "btc_exit", "btc_entry")]
    by_id = {r["id"]: r for r in listed}
    entry = by_id[rows["btc_entry"].id]
    # time (UTC, to the second), pair, kind, direction with its legs, signal z, in-sample z, EG p, β, message, sent
    assert entry["cells"] == [
        "2026-01-01 00:00:10",
        "BTCUSDT / ETHUSDT 1s",
        "entry",
        "short spread : sell BTCUSDT, buy ETHUSDT",
        "+2.41",
        "+2.05",
        "0.0123",
        "20.4102",
        "BTCUSDT/ETHUSDT: signal z +2.41 beyond ±2",
        "e-mail sent Telegram failed attempt 5: could not connect",
    ]
    assert f'<a href="/pairs/{btc.id}/">' in entry["html"]
    assert '<span class="al-note" data-status="failed" title="attempt 5: could not connect">' in entry["html"]
    exit_ = by_id[rows["sol_exit"].id]["cells"]
    assert exit_[2:8] == [
        "exit relationship broke",
        "long spread : buy SOLUSDT, sell ETHUSDT",
        "—",
        "-0.90",
        "—",
        "20.4102",
    ]
    assert by_id[rows["btc_exit"].id]["cells"][2] == "exit spread reverted"
    assert text_of(re.search(r"<h2>(.*?)</h2>", html.split('id="al-list"')[1]).group(1)) == "4 alerts"
    assert 'href="/alerts.csv"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=entry", ["sol_entry", "btc_entry"]),
        ("kind=exit", ["sol_exit", "btc_exit"]),
        ("direction=long_spread", ["sol_exit", "sol_entry"]),
        ("reason=reverted", ["btc_exit"]),
        ("reason=relationship_broken", ["sol_exit"]),
        ("from=2026-01-02", ["sol_exit", "sol_entry"]),
        ("to=2026-01-01", ["btc_exit", "btc_entry"]),  # a date covers its day
        ("from=2026-01-01T00:00:10&to=2026-01-01T00:00:10", ["btc_entry"]),  # a time covers its second (.250)
        ("to=2026-01-01T00:00:09", []),
        (f"from={T0 + 10_250}&to={T0 + 10_250}", ["btc_entry"]),  # ms: that ms
        ("from=2026-01-01T01:00:00%2B01:00&to=2026-01-01T00:01:10Z", ["btc_exit", "btc_entry"]),  # offsets say
        ("kind=entry&direction=short_spread&to=2026-01-01", ["btc_entry"]),
    ],
)
def test_each_filter_narrows_the_list(client, book, query, expected):
    _, _, rows = book
    response = client.get(f"/alerts/?{query}")
    assert response.status_code == HTTPStatus.OK
    assert ids(response) == [rows[k].id for k in expected]
    if not expected:
        assert "No alert matches these filters." in text_of(response.content.decode())


def test_the_pair_filter_and_the_values_are_kept_in_the_form_and_the_links(client, book):
    btc, sol, rows = book
    response = client.get(f"/alerts/?pair={sol.id}&kind=exit&from=2026-01-02")
    html = response.content.decode()
    assert ids(response) == [rows["sol_exit"].id]
    assert f'<option value="{sol.id}" selected>SOLUSDT/ETHUSDT 1m</option>' in html
    assert '<option value="exit" selected>Exit</option>' in html
    assert 'name="from" step="1" value="2026-01-02T00:00:00"' in html
    assert 'name="to" step="1" value=""' in html
    csv_link = re.search(r'id="al-csv" href="([^"]+)"', html).group(1)
    assert parse_qs(urlsplit(html_unescape(csv_link)).query) == {
        "pair": [str(sol.id)],
        "kind": ["exit"],
        "from": ["2026-01-02"],
    }
    assert 'id="al-clear"' in html
    # A "to" date covers its day: the input shows its last second, so the form sent again filters the same.
    html = client.get("/alerts/?to=2026-01-01").content.decode()
    assert 'name="to" step="1" value="2026-01-01T23:59:59"' in html


def test_a_form_sent_with_empty_fields_lands_on_a_clean_address(client, book):
    response = client.get("/alerts/?pair=&kind=entry&direction=&reason=&from=&to=")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/alerts/?kind=entry"
    assert client.get("/alerts/?pair=&from=")["Location"] == "/alerts/"


def test_alerts_are_paged_newest_first_with_the_filters_in_the_page_links(client):
    pair = make_pair()
    made = [alert(pair, T0 + k * 1000, kind="entry" if k % 2 else "exit", reason="entry" if k % 2 else "reverted")
            for k in range(2 * ALERTS_PER_PAGE + 41)]  # fmt: skip
    entries = [a.id for a in reversed(made) if a.kind == "entry"]  # 70: two pages
    first = client.get("/alerts/?kind=entry")
    html = first.content.decode()
    assert ids(first) == entries[:ALERTS_PER_PAGE]
    assert "70 alerts" in html and "page 1 of 2, newest first" in html
    older = html_unescape(re.search(r'href="([^"]+)" rel="next"', html).group(1))
    assert older == "/alerts/?kind=entry&page=2"
    assert 'rel="prev"' not in html
    second = client.get(older)
    assert ids(second) == entries[ALERTS_PER_PAGE:]
    assert html_unescape(re.search(r'href="([^"]+)" rel="prev"', second.content.decode()).group(1)) == (
        "/alerts/?kind=entry"
    )
    everything = client.get("/alerts/?page=3")
    assert len(ids(everything)) == len(made) - 2 * ALERTS_PER_PAGE


OUT_OF_RANGE = "is out of range: a time is before the year 10000"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pair=abc", {"pair": "a pair is given by its id, a whole number"}),
        ("pair=999", {"pair": "there is no pair 999"}),
        ("kind=enter", {"kind": '"enter" is not entry or exit'}),
        ("direction=long", {"direction": '"long" is not long_spread or short_spread'}),
        ("reason=because", {"reason": '"because" is not entry, reverted or relationship_broken'}),
        ("from=yesterday", {"from": "'yesterday' is neither ms since the epoch nor an ISO date such as 2026-11-01"}),
        ("from=2026-13-01", {"from": "'2026-13-01' is neither ms since the epoch nor an ISO date such as 2026-11-01"}),
        ("from=2026-01-02&to=2026-01-01", {"to": "must be after from"}),
        ("from=99999999999999999999", {"from": f"'99999999999999999999' {OUT_OF_RANGE}"}),
        ("to=9999-12-31", {"to": f"'9999-12-31' {OUT_OF_RANGE}"}),
        ("page=0", {"page": "Ensure this value is greater than or equal to 1."}),
        ("page=x", {"page": "A valid integer is required."}),
        ("page=9", {"page": "there is only 1 page of alerts"}),
        ("kind=enter&pair=abc", {"pair": "a pair is given by its id, a whole number",
                                 "kind": '"enter" is not entry or exit'}),
    ],
)  # fmt: skip
def test_a_bad_filter_is_said_on_the_page_not_a_server_error(client, book, query, expected):
    response = client.get(f"/alerts/?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert errors(response) == expected
    html = response.content.decode()
    assert ids(response) == [] and "Nothing is listed until the filters above are fixed." in html
    for field in expected:
        if field != "page":
            assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', html), field


def test_the_pages_link_to_the_alerts_page(client, book):
    btc, _, _ = book
    overview = client.get("/").content.decode()
    assert '<a class="btn btn-ghost" href="/alerts/" id="alerts-link">All alerts</a>' in overview
    assert '<a href="/alerts/">Alerts</a>' in overview  # the top bar, on every page
    pair_page = client.get(f"/pairs/{btc.id}/").content.decode()
    assert f'id="all-alerts" href="/alerts/?pair={btc.id}">All alerts</a>' in pair_page
    assert "/admin/alerts/" not in overview + pair_page


# -- the CSV ------------------------------------------------------------------------


def test_the_csv_has_the_filtered_alerts_with_iso_times_and_clean_numbers(client, book):
    btc, sol, rows = book
    response = client.get("/alerts.csv?kind=entry")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="alerts.csv"'
    got = csv_rows(response)
    assert [int(r["id"]) for r in got] == [rows["sol_entry"].id, rows["btc_entry"].id]
    entry = got[1]
    assert entry == {
        "id": str(rows["btc_entry"].id),
        "pair": str(btc.id),
        "symbol_a": "BTCUSDT",
        "symbol_b": "ETHUSDT",
        "interval": "1s",
        "kind": "entry",
        "direction": "short_spread",
        "reason": "entry",
        "created_at": str(T0 + 10_250),
        "created_at_utc": "2026-01-01T00:00:10.250Z",
        "bar_time": str(T0 + 9_250),
        "bar_time_utc": "2026-01-01T00:00:09.250Z",
        "signal_zscore": "2.4137",  # 2.4137000000000004 stored
        "zscore": "2.0511",
        "adf_pvalue": "0.004",
        "coint_pvalue": "0.012345679",  # 8 significant digits
        "correlation": "0.81",
        "related_run": "31",
        "hedge_ratio": "20.41023",  # 20.410230000000002 stored
        "message": "BTCUSDT/ETHUSDT: signal z +2.41 beyond ±2",
        "notifications": "e-mail sent; Telegram failed (attempt 5: could not connect)",
    }
    assert got[0]["hedge_ratio"] == "0.05" and got[0]["signal_zscore"] == "-2.2"


def test_the_csv_takes_the_pages_query_and_has_every_page(client, book):
    btc, sol, rows = book
    got = csv_rows(client.get(f"/alerts.csv?pair={sol.id}&to=2026-01-02T00:00:05"))
    assert [int(r["id"]) for r in got] == [rows["sol_entry"].id]
    before_signals = csv_rows(client.get("/alerts.csv?reason=relationship_broken"))[0]
    assert (before_signals["signal_zscore"], before_signals["coint_pvalue"], before_signals["zscore"]) == (
        "",
        "",
        "-0.9",
    )
    pair = make_pair()
    for k in range(ALERTS_PER_PAGE + 5):
        alert(pair, T0 + 2 * DAY + k)
    assert len(csv_rows(client.get(f"/alerts.csv?pair={btc.id}"))) == ALERTS_PER_PAGE + 5 + 2


def test_a_bad_csv_query_is_a_400_naming_the_field(client, book):
    response = client.get("/alerts.csv?kind=enter&from=yesterday")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    body = response.content.decode()
    assert 'kind: "enter" is not entry or exit' in body
    assert "from: 'yesterday' is neither ms since the epoch nor an ISO date" in body
