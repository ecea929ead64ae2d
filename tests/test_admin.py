"""The admin: every page renders, and an impossible pair is refused with a clear message."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from tests.analytics.test_services import cointegrated_ticks, make_pair, store_and_resample

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


def pair_form(**fields) -> dict:
    data = {"symbol_a": "SOLUSDT", "symbol_b": "ETHUSDT", "interval": "1s", "window": 300, "min_bars": 100,
            "entry_z": 2.0, "exit_z": 0.5, "min_correlation": 0.6, "max_adf_pvalue": 0.05, "active": "on",
            "webhook_url": ""}
    return {**data, **fields}


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
        ({"symbol_b": "SOLUSDT"}, "two different symbols"),
        ({"entry_z": "nan"}, "Enter a number"),
    ],
)
def test_an_impossible_pair_is_refused_with_a_message(staff, fields, message):
    response = staff.post(reverse("admin:analytics_pair_add"), pair_form(**fields))
    assert response.status_code == HTTPStatus.OK  # the form again, with the error
    assert message in response.content.decode()


def test_a_good_pair_is_saved_with_normalised_symbols(staff):
    response = staff.post(reverse("admin:analytics_pair_add"), pair_form(symbol_a="solusdt"))
    assert response.status_code == HTTPStatus.FOUND
    from analytics.models import Pair

    assert Pair.objects.filter(symbol_a="SOLUSDT", symbol_b="ETHUSDT").exists()
