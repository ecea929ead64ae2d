"""The pairs API edits where a pair's alerts go (webhook, e-mail, Telegram), staff only, validated as in the admin."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from analytics.models import Pair
from tests.support import make_pair

pytestmark = pytest.mark.django_db

CHANNELS = {"webhook_url", "email_recipients", "telegram_chat_id"}

#: A public address, so the egress policy lets it through without a resolver.
PUBLIC_HOOK = "https://93.184.215.14/hooks/desk"


def test_staff_set_recipients_and_a_chat_and_read_them_back(staff_api):
    response = staff_api.post(
        "/api/pairs/",
        {
            "symbol_a": "SOLUSDT",
            "symbol_b": "ETHUSDT",
            "email_recipients": ["desk@example.com", " risk@example.com", "DESK@example.com"],
            "telegram_chat_id": "-1001234567890",
            "webhook_url": PUBLIC_HOOK,
        },
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["email_recipients"] == ["desk@example.com", "risk@example.com"]
    assert body["telegram_chat_id"] == "-1001234567890"
    assert body["webhook_url"] == PUBLIC_HOOK
    pair = Pair.objects.get(pk=body["id"])
    assert pair.email_recipients == "desk@example.com, risk@example.com"
    patched = staff_api.patch(f"/api/pairs/{pair.id}/", {"email_recipients": [], "telegram_chat_id": ""}, format="json")
    assert patched.status_code == HTTPStatus.OK
    assert (patched.json()["email_recipients"], patched.json()["telegram_chat_id"]) == ([], "")
    # A PATCH of something else keeps them.
    staff_api.patch(f"/api/pairs/{pair.id}/", {"telegram_chat_id": "@pairs_desk"}, format="json")
    kept = staff_api.patch(f"/api/pairs/{pair.id}/", {"entry_z": 2.5}, format="json").json()
    assert kept["telegram_chat_id"] == "@pairs_desk"


NOT_A_LIST = ['a list of e-mail addresses, e.g. ["desk@example.com"]']
NOT_A_CHAT = (
    "'desk' is not a Telegram chat: give its numeric id (e.g. 123456789, or -1001234567890 for a group or "
    "channel) or a public channel's @username."
)


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (
            {"email_recipients": ["desk@example.com", "bob@"]},
            {"email_recipients": ["'bob@' is not an e-mail address."]},
        ),
        ({"email_recipients": "desk@example.com"}, {"email_recipients": NOT_A_LIST}),
        ({"email_recipients": [1, 2]}, {"email_recipients": NOT_A_LIST}),
        ({"telegram_chat_id": "desk"}, {"telegram_chat_id": [NOT_A_CHAT]}),
        ({"webhook_url": "hooks"}, {"webhook_url": ["Enter a valid URL."]}),
    ],
)
def test_bad_recipients_or_chat_are_a_400_naming_them(staff_api, payload, errors):
    pair = make_pair()
    response = staff_api.patch(f"/api/pairs/{pair.id}/", payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == errors
    pair.refresh_from_db()
    assert (pair.email_recipients, pair.telegram_chat_id, pair.webhook_url) == ("", "", "")


def test_a_webhook_inside_the_network_is_a_400_in_the_egress_policy_words(staff_api):
    pair = make_pair()
    response = staff_api.patch(f"/api/pairs/{pair.id}/", {"webhook_url": "http://127.0.0.1:6379/"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "loopback" in response.json()["webhook_url"][0]
    pair.refresh_from_db()
    assert pair.webhook_url == ""


def test_only_staff_read_where_alerts_go(api, staff_api):
    pair = make_pair(email_recipients="desk@example.com", telegram_chat_id="123456789", webhook_url=PUBLIC_HOOK)
    for url in ("/api/pairs/", f"/api/pairs/{pair.id}/"):
        body = api.get(url).json()
        shown = body[0] if isinstance(body, list) else body
        assert CHANNELS.isdisjoint(shown), url
        shown = staff_api.get(url).json()
        shown = shown[0] if isinstance(shown, list) else shown
        assert (shown["email_recipients"], shown["telegram_chat_id"], shown["webhook_url"]) == (
            ["desk@example.com"],
            "123456789",
            PUBLIC_HOOK,
        )


def test_the_schema_documents_them_as_optional(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    pair = schema["components"]["schemas"]["Pair"]
    assert pair["properties"]["email_recipients"]["type"] == "array"
    assert pair["properties"]["telegram_chat_id"]["type"] == "string"
    assert CHANNELS.isdisjoint(pair.get("required", []))
