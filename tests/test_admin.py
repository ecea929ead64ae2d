"""The admin: every page renders, and an impossible pair is refused with a clear message."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from tests.support import cointegrated_ticks, make_pair, pair_form, store_and_resample

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
