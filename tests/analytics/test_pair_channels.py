"""Where a pair's alerts go besides its webhook: e-mail recipients and a Telegram chat, validated on the pair."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from analytics.models import Pair
from tests.support import pair_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def cleaned(**fields) -> Pair:
    pair = Pair(symbol_a="SOLUSDT", symbol_b="ETHUSDT", **fields)
    pair.full_clean()
    return pair


def test_recipients_are_kept_one_way_each_once():
    pair = cleaned(email_recipients=" desk@example.com;risk@example.com\n  Desk@Example.com ,\n")
    assert pair.email_recipients == "desk@example.com, risk@example.com"
    assert pair.email_recipient_list == ["desk@example.com", "risk@example.com"]
    assert cleaned(email_recipients=" , ").email_recipients == ""


@pytest.mark.parametrize(
    ("recipients", "message"),
    [
        ("desk@example.com, bob@", "'bob@' is not an e-mail address."),
        ("desk, risk@", "'desk', 'risk@' are not e-mail addresses."),
        (", ".join(f"t{k}@example.com" for k in range(21)), "At most 20 recipients, not 21."),
    ],
)
def test_a_bad_recipient_is_refused_by_name(recipients, message):
    with pytest.raises(ValidationError) as refused:
        cleaned(email_recipients=recipients)
    assert refused.value.message_dict == {"email_recipients": [message]}


@pytest.mark.parametrize("chat_id", ["123456789", "-1001234567890", "-42", "@pairs_desk", " 123 "])
def test_a_telegram_chat_is_a_numeric_id_or_a_channels_name(chat_id):
    assert cleaned(telegram_chat_id=chat_id).telegram_chat_id == chat_id.strip()


@pytest.mark.parametrize("chat_id", ["abc", "12a", "0", "-0", "@abc", "@1abcde", "https://t.me/pairs_desk", "--5"])
def test_anything_else_is_refused_as_a_telegram_chat(chat_id):
    with pytest.raises(ValidationError) as refused:
        cleaned(telegram_chat_id=chat_id)
    assert refused.value.message_dict == {
        "telegram_chat_id": [
            f"{chat_id!r} is not a Telegram chat: give its numeric id (e.g. 123456789, or -1001234567890 for a "
            "group or channel) or a public channel's @username."
        ]
    }


def test_the_admin_edits_them_with_the_webhook(staff):
    form = pair_form(email_recipients="desk@example.com\nrisk@example.com", telegram_chat_id="-1001234567890")
    response = staff.post(reverse("admin:analytics_pair_add"), form)
    assert response.status_code == HTTPStatus.FOUND
    pair = Pair.objects.get(symbol_a="SOLUSDT")
    assert (pair.email_recipients, pair.telegram_chat_id) == ("desk@example.com, risk@example.com", "-1001234567890")
    page = staff.get(reverse("admin:analytics_pair_change", args=[pair.id]))
    fieldsets = dict(page.context["adminform"].model_admin.fieldsets)
    assert fieldsets["Delivery"]["fields"] == ["webhook_url", "email_recipients", "telegram_chat_id"]


def test_the_admin_refuses_bad_ones_beside_their_fields(staff):
    response = staff.post(
        reverse("admin:analytics_pair_add"), pair_form(email_recipients="desk@", telegram_chat_id="desk")
    )
    assert response.status_code == HTTPStatus.OK  # the form again
    errors = response.context["adminform"].form.errors
    assert errors["email_recipients"] == ["'desk@' is not an e-mail address."]
    assert errors["telegram_chat_id"][0].startswith("'desk' is not a Telegram chat")
    assert not Pair.objects.filter(symbol_a="SOLUSDT").exists()
