"""The admin: every page renders, numbers and times read as a trader reads them, and an impossible pair is
refused with a clear message."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from http import HTTPStatus

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from tests.support import T0, cointegrated_ticks, desk_records, make_pair, pair_form, store_and_resample

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def test_every_changelist_renders(staff):
    make_pair()
    store_and_resample(cointegrated_ticks(20))
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert staff.get(url).status_code == HTTPStatus.OK, url


# -- numbers and times as a trader reads them -------------------------------------------

#: The apps whose admin the project writes (the others are Django's, axes' and DRF's).
APPS = ("ingestion", "analytics", "alerts")


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def listed(response) -> list[dict[str, str]]:
    """The changelist's rows, each as {column name: the text shown}."""
    table = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', response.content.decode(), re.S)
    assert table, "no result list"
    return [
        {name: text_of(body) for name, body in re.findall(r'<t[dh] class="field-(\w+)[^"]*"[^>]*>(.*?)</t[dh]>', row)}
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    ]


def detail(response) -> dict[str, str]:
    """The detail page's read-only fields, each as {field name: the text shown}."""
    rows = re.findall(
        r'<div class="form-row[^"]*? field-(\w+)[^"]*">.*?<div class="readonly">(.*?)</div>',
        response.content.decode(),
        re.S,
    )
    return {name.removesuffix("_text"): text_of(body) for name, body in rows}


def utc(ms: int, *, millis: bool = False) -> str:
    """A ms time as the admin shows it, computed apart from the project's code."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{ms % 1000:03d}" if millis else "") + " UTC"


#: A number shown with more than 8 decimals: float noise (0.11746164947100605).
NOISE = re.compile(r"\d\.\d{9,}")
#: Django's own way of writing a time ("Nov. 30, 2026, 6:15 a.m."), which the admin no longer shows.
DJANGO_TIME = re.compile(r"\b(a\.m\.|p\.m\.|midnight|noon)|\b(Jan|Feb|Aug|Sept|Oct|Nov|Dec)\. \d")


#: What ``desk_records`` fills: every list of the three apps.
LISTED = {
    "tick",
    "symbol",
    "feedstatus",
    "fundingrate",
    "pair",
    "bar",
    "snapshot",
    "backtest",
    "alert",
    "notification",
    "alertstate",
    "paperposition",
}


def test_every_list_and_detail_page_writes_numbers_without_noise_and_times_in_utc(staff):
    desk_records()
    with_rows = set()
    for model in admin.site._registry:
        if model._meta.app_label not in APPS:
            continue
        page = staff.get(changelist_url(model))
        assert page.status_code == HTTPStatus.OK, model
        if not listed(page):
            continue
        with_rows.add(model._meta.model_name)
        pages = [page] + [
            staff.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk]))
            for obj in model.objects.all()[:3]
        ]
        for shown in pages:
            assert shown.status_code == HTTPStatus.OK
            html = shown.content.decode()
            # A stored JSON (a snapshot, a summary) is indented, its numbers to 8 significant digits.
            for block in re.findall(r'<pre class="json">(.*?)</pre>', html, re.S):
                for number in re.findall(r"\d+\.\d+", block):
                    assert len(number.replace(".", "").lstrip("0")) <= 8, (model, number)
            text = text_of(re.sub(r'<pre class="json">.*?</pre>', "", html, flags=re.S))
            assert not NOISE.search(text), (model, NOISE.search(text))
            assert not DJANGO_TIME.search(text), (model, DJANGO_TIME.search(text))
        times = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})? UTC", text_of(page.content.decode()))
        assert times or model._meta.model_name == "pair", model
    assert with_rows >= LISTED


def test_ticks_show_their_time_to_the_ms_price_to_the_tick_and_plain_quantities(staff):
    from ingestion.binance import Tick
    from ingestion.services import ticks_store

    ms = T0 + 61_234
    ticks_store([Tick(ms, "ETHUSDT", 3012.5, 0.1 + 0.2, 7), Tick(ms + 5, "BTCUSDT", 97123.4, 1.8559999999999997, 8)])
    rows = {row["trade_id"]: row for row in listed(staff.get("/admin/ingestion/tick/"))}
    assert rows["7"] == {
        "symbol": "ETHUSDT",
        "trade_id": "7",
        "timestamp": utc(ms, millis=True),
        "price": "3,012.50",
        "quantity": "0.3",
    }
    assert rows["8"]["price"] == "97,123.4" and rows["8"]["quantity"] == "1.856"
    assert rows["8"]["timestamp"] == "2026-01-01 00:01:01.239 UTC"


def test_an_alert_shows_p_values_z_scores_and_its_bar_as_a_trader_reads_them(staff):
    from alerts.models import Alert

    pair = make_pair()
    alert = Alert.objects.create(
        pair=pair,
        kind="entry",
        direction="short_spread",
        reason="entry",
        bar_time=T0 + 907_000,
        signal_zscore=2.714999,
        zscore=-0.0049,
        adf_pvalue=0.000012,
        coint_pvalue=0.03125,
        correlation=0.8234567,
        related_run=31,
        hedge_ratio=20.123456789,
        message="entry",
        snapshot={"hedge_ratio": 20.123456789, "spread": 0.11746164947100605},
    )
    created = datetime(2026, 11, 30, 6, 15, 7, 654_321, tzinfo=UTC)
    Alert.objects.filter(pk=alert.pk).update(created_at=created)
    [row] = listed(staff.get("/admin/alerts/alert/"))
    assert row == {
        "created_at": "2026-11-30 06:15:07 UTC",
        "pair": "BTCUSDT/ETHUSDT 1s",
        "kind": "Entry",
        "direction": "short spread",
        "reason": "Entry",
        "signal_zscore": "+2.71",
        "adf_pvalue": "<0.0001",
        "coint_pvalue": "0.0312",
        "correlation": "0.82",
        "related_run": "31",
        "notifications_shown": "none",
    }
    page = staff.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    fields = detail(page)
    # On the detail page a ms time has its ms too, as the API and the CSVs write it.
    assert fields["bar_time"] == f"{utc(T0 + 907_000)} {T0 + 907_000} ms" == "2026-01-01 00:15:07 UTC 1767226507000 ms"
    assert fields["zscore"] == "0.00"  # the in-sample z: on the detail page only
    assert "BTCUSDT/ETHUSDT 1s entry short_spread @ 2026-01-01 00:15:07 UTC" in text_of(page.content.decode())
    assert fields["hedge_ratio"] == "20.1235"
    assert fields["direction"] == "short spread (sell A, buy B)"  # the detail page has the choice's full label
    assert '"spread": 0.11746165' in fields["snapshot"]  # indented JSON, 8 significant digits
    # The field's help text stays beside its display.
    assert "the signal z that fired it" in page.content.decode()


def test_sorting_by_a_formatted_column_sorts_by_its_field(staff):
    from alerts.models import Alert

    pair = make_pair()
    for k, z in enumerate((0.5, -3.25, 2.25)):
        Alert.objects.create(
            pair=pair,
            kind="entry",
            direction="long_spread",
            reason="entry",
            bar_time=T0 + k * 1000,
            signal_zscore=z,
            message="m",
            snapshot={},
        )
    page = staff.get("/admin/alerts/alert/").content.decode()
    header = re.search(r'<th scope="col" class="sortable column-signal_zscore">.*?<a href="(\?o=[^"]+)"', page, re.S)
    assert header, "the signal z column is not sortable"
    ascending = listed(staff.get("/admin/alerts/alert/" + unescape(header.group(1))))
    assert [row["signal_zscore"] for row in ascending] == ["-3.25", "+0.50", "+2.25"]


def test_a_bar_a_funding_rate_and_a_pair_show_a_traders_precision(staff):
    from analytics.models import Bar
    from ingestion.models import FundingRate

    Bar.objects.create(
        symbol="BTCUSDT",
        interval="1m",
        open_time=T0,
        open=97123.4,
        high=97150.0,
        low=97100.1,
        close=97140.7,
        volume=1.8559999999999997,
        trades=12,
    )
    FundingRate.objects.create(symbol="BTCUSDT", funding_time=T0, rate=0.0001, mark_price=97123.46)
    [bar] = listed(staff.get("/admin/analytics/bar/"))
    assert bar == {
        "symbol": "BTCUSDT",
        "interval": "1 minute",
        "open_time": "2026-01-01 00:00:00 UTC",
        "open": "97,123.4",
        "high": "97,150.0",
        "low": "97,100.1",
        "close": "97,140.7",
        "volume": "1.856",
        "trades": "12",
    }
    [rate] = listed(staff.get("/admin/ingestion/fundingrate/"))
    assert rate == {"symbol": "BTCUSDT", "funding_time": utc(T0), "rate": "0.0100 %", "mark_price": "97,123.5"}
    make_pair(entry_z=2.5, max_coint_pvalue=0.025)
    [pair] = listed(staff.get("/admin/analytics/pair/"))
    assert (pair["entry_z"], pair["exit_z"], pair["max_coint_pvalue"]) == ("2.50", "0.50", "0.025")


def test_a_paper_position_shows_pnl_in_quote_currency_and_fills_past_the_tick(staff):
    from alerts.models import PaperPosition
    from tests.support import make_alert

    pair = make_pair()
    entry = make_alert(pair, bar_time=T0, signal_zscore=2.5)
    exit_ = make_alert(pair, kind="exit", bar_time=T0 + 90_000, signal_zscore=0.3)
    position = PaperPosition.objects.create(
        pair=pair,
        entry_alert=entry,
        exit_alert=exit_,
        direction="short_spread",
        hedge_ratio=19.87654321,
        qty_a=-0.10309278350515463,
        qty_b=2.0489690721649484,
        entry_time=T0,
        entry_price_a=97009.80001,
        entry_price_b=3012.2987654,
        entry_fees=9.9999,
        fee_bps=5.0,
        slippage_bps=1.0,
        notional=10_000.0,
        exit_time=T0 + 90_000,
        exit_price_a=96900.0,
        exit_price_b=3011.7,
        fees=19.9876,
        pnl=1234.5049,
        reason="reverted",
    )
    [row] = listed(staff.get("/admin/alerts/paperposition/"))
    assert row == {
        "entry_time": utc(T0),
        "pair": "BTCUSDT/ETHUSDT 1s",
        "direction": "short spread",
        "hedge_ratio": "19.8765",
        "unrealised_pnl": "—",
        "exit_time": utc(T0 + 90_000),
        "reason": "reverted",
        "pnl": "+1,234.50",
    }
    fields = detail(staff.get(reverse("admin:alerts_paperposition_change", args=[position.pk])))
    assert (fields["qty_a"], fields["qty_b"]) == ("-0.103093", "+2.04897")
    assert (fields["entry_price_a"], fields["entry_price_b"]) == ("97,009.800", "3,012.2988")  # the tick and 2 more
    assert (fields["fees"], fields["notional"], fields["pnl"]) == ("19.99", "10,000.00", "+1,234.50")


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"entry_z": 0.4}, "must be greater than exit_z"),
        ({"window": 5, "min_bars": 5}, "at least 10 bars"),
        ({"min_bars": 400}, "cannot exceed the window"),
        ({"window": 10**9, "min_bars": 100}, "at most 5000 bars"),
        ({"window": 10**9, "min_bars": 10**9}, "at most 5000 bars"),
        ({"max_adf_pvalue": 0}, "must be in (0, 1]"),
        ({"min_correlation": 1.5}, "between -1 and 1"),
        ({"max_coint_pvalue": 0}, "max_coint_pvalue must be in (0, 1]."),
        ({"max_coint_pvalue": 1.2}, "max_coint_pvalue must be in (0, 1]."),
        ({"confirm_bars": 0}, "confirm_bars must be between 1 and the window (300), not 0."),
        ({"confirm_bars": 301}, "confirm_bars must be between 1 and the window (300), not 301."),
        (
            {"window": 20, "min_bars": 20, "confirm_bars": 25},
            "confirm_bars must be between 1 and the window (20), not 25.",
        ),
        ({"symbol_b": "SOLUSDT"}, "two different symbols"),
        ({"entry_z": "nan"}, "Enter a number"),
    ],
)
def test_an_impossible_pair_is_refused_with_a_message(staff, fields, message):
    response = staff.post(reverse("admin:analytics_pair_add"), pair_form(**fields))
    assert response.status_code == HTTPStatus.OK  # the form again, with the error
    assert message in response.content.decode()


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"max_coint_pvalue": 0}, "max_coint_pvalue must be in (0, 1]."),
        ({"confirm_bars": 301}, "confirm_bars must be between 1 and the window (300), not 301."),
    ],
)
def test_a_signal_threshold_is_refused_beside_its_own_field(staff, fields, message):
    response = staff.post(reverse("admin:analytics_pair_add"), pair_form(**fields))
    form = response.context["adminform"].form
    assert form.errors == {next(iter(fields)): [message]}


def test_the_signal_thresholds_are_edited_with_the_other_thresholds(staff):
    from analytics.models import Pair

    pair = make_pair()
    url = reverse("admin:analytics_pair_change", args=[pair.id])
    fieldsets = dict(staff.get(url).context["adminform"].model_admin.fieldsets)
    assert fieldsets["Alert thresholds"]["fields"][-2:] == ["max_coint_pvalue", "confirm_bars"]
    form = pair_form(symbol_a="BTCUSDT", max_coint_pvalue=0.02, confirm_bars=45)
    assert staff.post(url, form).status_code == HTTPStatus.FOUND
    pair.refresh_from_db()
    assert (pair.max_coint_pvalue, pair.confirm_bars) == (0.02, 45)
    assert Pair.objects.count() == 1
    changelist = staff.get(reverse("admin:analytics_pair_changelist")).content.decode()
    assert "column-max_coint_pvalue" in changelist and "column-confirm_bars" in changelist


def test_a_good_pair_is_saved_with_normalised_symbols(staff):
    response = staff.post(reverse("admin:analytics_pair_add"), pair_form(symbol_a="solusdt"))
    assert response.status_code == HTTPStatus.FOUND
    from analytics.models import Pair

    assert Pair.objects.filter(symbol_a="SOLUSDT", symbol_b="ETHUSDT").exists()


# -- login throttling -----------------------------------------------------------------


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "right-password")


def log_in(client, password: str, username: str = "admin", address: str = "127.0.0.1"):
    return client.post(
        reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


def test_admin_login_is_locked_for_the_address_and_user_after_5_wrong_passwords(client, admin_user, settings):
    assert settings.ADMIN_LOGIN_FAILURE_LIMIT == 5
    answers = [log_in(client, f"guess-{k}").status_code for k in range(60)]
    assert answers[:4] == [HTTPStatus.OK] * 4  # the form again, "please enter the correct username and password"
    assert set(answers[5:]) == {HTTPStatus.TOO_MANY_REQUESTS}
    locked = log_in(client, "right-password")  # even the right password, until the cool-off ends
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(locked["Retry-After"]) == settings.ADMIN_LOGIN_COOLOFF_SECONDS == 900
    page = locked.content.decode()
    assert "Too many failed logins" in page and "15 minutes" in page
    assert "_auth_user_id" not in client.session


def test_a_lockout_holds_for_that_user_from_that_address_only(client, admin_user):
    User.objects.create_superuser("other", "other@example.com", "other-password")
    for k in range(5):
        log_in(client, f"guess-{k}")
    assert log_in(client, "right-password").status_code == HTTPStatus.TOO_MANY_REQUESTS
    # The admin from another address, and another user from this one, still log in.
    assert log_in(client, "right-password", address="192.0.2.7").status_code == HTTPStatus.FOUND
    client.logout()
    assert log_in(client, "other-password", username="other").status_code == HTTPStatus.FOUND


def test_a_lockout_ends_after_the_cool_off(client, admin_user):
    from datetime import timedelta

    from axes.models import AccessAttempt

    for k in range(5):
        log_in(client, f"guess-{k}")
    assert log_in(client, "right-password").status_code == HTTPStatus.TOO_MANY_REQUESTS
    for attempt in AccessAttempt.objects.all():  # 15 minutes pass
        attempt.attempt_time -= timedelta(minutes=15, seconds=1)
        attempt.save()
    assert log_in(client, "right-password").status_code == HTTPStatus.FOUND


def test_a_successful_login_resets_the_count(client, admin_user):
    for k in range(4):
        log_in(client, f"guess-{k}")
    assert log_in(client, "right-password").status_code == HTTPStatus.FOUND
    client.logout()
    for k in range(4):
        assert log_in(client, f"guess-{k}").status_code == HTTPStatus.OK
    assert log_in(client, "right-password").status_code == HTTPStatus.FOUND


def test_staff_tokens_and_sessions_still_write_through_the_api_during_a_lockout(client, admin_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    for k in range(6):
        log_in(client, f"guess-{k}")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    body = {"symbol_a": "SOLUSDT", "symbol_b": "ETHUSDT", "interval": "1m", "window": 120, "min_bars": 60}
    assert api.post("/api/pairs/", body, format="json").status_code == HTTPStatus.CREATED


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"symbol_a": "FOOUSDT"}, "FOOUSDT is not a symbol of Binance USD-M futures"),
        ({"symbol_b": "btcusdt_260327"}, "BTCUSDT_260327 is not a perpetual (contract type CURRENT_QUARTER)"),
        ({"symbol_b": "LUNAUSDT"}, "LUNAUSDT is not trading on the exchange (status SETTLING)"),
    ],
)
def test_a_symbol_the_exchange_does_not_trade_is_refused_with_its_name(staff, fields, message):
    from analytics.models import Pair

    response = staff.post(reverse("admin:analytics_pair_add"), pair_form(**fields))
    assert response.status_code == HTTPStatus.OK  # the form again, with the error
    assert message in response.content.decode()
    assert not Pair.objects.filter(symbol_a="SOLUSDT").exists()


def test_while_the_exchange_cannot_be_reached_only_symbols_the_system_knows_are_accepted(staff, fake_binance):
    import httpx

    from analytics.models import Pair

    fake_binance.failure = httpx.ConnectError("Connection refused")
    refused = staff.post(reverse("admin:analytics_pair_add"), pair_form(symbol_a="FOOUSDT"))
    message = "cannot check FOOUSDT against the exchange (ConnectError: Connection refused): try again"
    assert message in refused.content.decode()
    # BTCUSDT and ETHUSDT are in the default pair: known, so the admin keeps working.
    accepted = staff.post(reverse("admin:analytics_pair_add"), pair_form(symbol_a="BTCUSDT", interval="1m"))
    assert accepted.status_code == HTTPStatus.FOUND
    assert Pair.objects.filter(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1m").exists()


def test_a_pair_whose_symbol_was_delisted_can_still_be_edited_and_deactivated(staff, fake_binance):
    from analytics.models import Pair

    pair = Pair.objects.create(symbol_a="BTCUSDT", symbol_b="LUNAUSDT", interval="1m")  # before the delisting
    url = reverse("admin:analytics_pair_change", args=[pair.id])
    form = pair_form(symbol_a="BTCUSDT", symbol_b="LUNAUSDT", interval="1m")
    response = staff.post(url, {**form, "entry_z": 2.5, "active": ""})
    assert response.status_code == HTTPStatus.FOUND
    pair.refresh_from_db()
    assert (pair.entry_z, pair.active) == (2.5, False)
    again = staff.post(url, form)  # active again
    assert "LUNAUSDT is not trading on the exchange (status SETTLING)" in again.content.decode()
