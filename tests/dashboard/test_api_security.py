"""Who may write through the API, CSRF on session writes, and the rate limits."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Pair
from dashboard import throttles
from tests.support import make_pair

pytestmark = pytest.mark.django_db

NEW_PAIR = {"symbol_a": "SOLUSDT", "symbol_b": "ETHUSDT", "interval": "1m", "window": 120, "min_bars": 60}


def writes(pair_id: int) -> list[tuple[str, str, dict | None]]:
    """Every write the pairs endpoint takes: (method, url, body)."""
    detail = f"/api/pairs/{pair_id}/"
    full = {**NEW_PAIR, "symbol_a": "BNBUSDT"}
    return [
        ("post", "/api/pairs/", NEW_PAIR),
        ("put", detail, full),
        ("patch", detail, {"window": 150}),
        ("delete", detail, None),
    ]


def send(client: APIClient, method: str, url: str, body: dict | None, **extra):
    return getattr(client, method)(url, body, format="json", **extra)


@pytest.fixture
def desk_user() -> User:
    return User.objects.create_user("trader", password="pw")


@pytest.fixture
def staff_user() -> User:
    return User.objects.create_user("desk", password="pw", is_staff=True)


def session_client(user: User) -> APIClient:
    """A browser: logged in with a session cookie, CSRF enforced, holding the CSRF cookie of a page."""
    client = APIClient(enforce_csrf_checks=True)
    client.get("/admin/login/")  # a page with a form sets the csrftoken cookie
    client.force_login(user)
    return client


def token_client(user: User) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# -- staff writes ---------------------------------------------------------------


def test_reads_stay_public():
    pair = make_pair()
    api = APIClient()
    for url in ("/api/pairs/", f"/api/pairs/{pair.id}/", f"/api/pairs/{pair.id}/snapshot/", "/api/health/"):
        assert api.get(url).status_code == HTTPStatus.OK, url


@pytest.mark.parametrize("auth", ["anonymous", "session", "token"])
def test_only_staff_write_pairs(auth, desk_user):
    pair = make_pair()
    client = {"anonymous": APIClient(), "session": session_client(desk_user), "token": token_client(desk_user)}[auth]
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value} if auth == "session" else {}
    for method, url, body in writes(pair.id):
        response = send(client, method, url, body, **csrf)
        expected = (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN) if auth == "anonymous" else (HTTPStatus.FORBIDDEN,)
        assert response.status_code in expected, (auth, method, response.status_code)
    assert list(Pair.objects.values_list("symbol_a", "window")) == [("BTCUSDT", pair.window)]


@pytest.mark.parametrize("auth", ["session", "token"])
def test_staff_write_pairs_with_a_session_or_a_token(auth, staff_user):
    pair = make_pair()
    client = session_client(staff_user) if auth == "session" else token_client(staff_user)
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value} if auth == "session" else {}
    codes = [send(client, method, url, body, **csrf).status_code for method, url, body in writes(pair.id)]
    assert codes == [HTTPStatus.CREATED, HTTPStatus.OK, HTTPStatus.OK, HTTPStatus.NO_CONTENT]


def test_writes_anywhere_else_need_staff_too(desk_user):
    """The project default, not just the pairs endpoint: a write to a read-only endpoint is refused first."""
    client = token_client(desk_user)
    for url in ("/api/health/", "/api/symbols/", "/api/alerts/", "/api/bars/", "/api/ticks/"):
        assert client.post(url, {}, format="json").status_code == HTTPStatus.FORBIDDEN, url


# -- CSRF -----------------------------------------------------------------------


def test_a_session_write_without_the_csrf_token_is_refused(staff_user):
    client = session_client(staff_user)
    response = client.post("/api/pairs/", NEW_PAIR, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "CSRF" in response.json()["detail"]
    forged = client.post("/api/pairs/", NEW_PAIR, format="json", HTTP_X_CSRFTOKEN="x" * 32)
    assert forged.status_code == HTTPStatus.FORBIDDEN
    assert not Pair.objects.filter(symbol_a="SOLUSDT").exists()


def test_a_session_write_with_the_token_from_another_site_is_refused(staff_user):
    client = session_client(staff_user)
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    cross_site = send(client, "post", "/api/pairs/", NEW_PAIR, **csrf, HTTP_ORIGIN="http://evil.example")
    assert cross_site.status_code == HTTPStatus.FORBIDDEN
    same_site = send(client, "post", "/api/pairs/", NEW_PAIR, **csrf, HTTP_ORIGIN="http://testserver")
    assert same_site.status_code == HTTPStatus.CREATED


def test_token_writes_need_no_csrf_token(staff_user):
    """A token is not sent by the browser on its own, so it cannot be ridden cross-site."""
    assert token_client(staff_user).post("/api/pairs/", NEW_PAIR, format="json").status_code == HTTPStatus.CREATED


# -- throttling -----------------------------------------------------------------


@pytest.fixture
def tiny_rates(monkeypatch):
    # DRF binds the rates when it is imported, so the test sets them on the classes.
    rates = {"anon": "3/min", "user": "5/min"}
    monkeypatch.setattr(throttles.AnonRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(throttles.UserRateThrottle, "THROTTLE_RATES", rates)


def test_an_anonymous_client_over_the_rate_gets_429_with_retry_after(tiny_rates):
    api = APIClient()
    assert [api.get("/api/health/").status_code for _ in range(3)] == [HTTPStatus.OK] * 3
    response = api.get("/api/pairs/")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()
    # Another address has its own allowance.
    assert api.get("/api/health/", REMOTE_ADDR="192.0.2.7").status_code == HTTPStatus.OK


def test_a_forged_forwarded_for_header_does_not_reset_the_count(tiny_rates):
    api = APIClient()
    for k in range(3):
        api.get("/api/health/", HTTP_X_FORWARDED_FOR=f"198.51.100.{k}")
    assert api.get("/api/health/", HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_users_are_counted_per_user(tiny_rates, staff_user, desk_user):
    staff = token_client(staff_user)
    assert [staff.get("/api/pairs/").status_code for _ in range(5)] == [HTTPStatus.OK] * 5
    assert staff.get("/api/pairs/").status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert token_client(desk_user).get("/api/pairs/").status_code == HTTPStatus.OK


def test_the_default_rates_leave_the_dashboard_room():
    """Ten open pair pages on one address for a minute: health every 5 s, alerts on each (re)connect."""
    rates = (settings.API_THROTTLE_ANON, settings.API_THROTTLE_USER, settings.API_NUM_PROXIES)
    assert rates == ("600/min", "1200/min", 0)
    pair = make_pair()
    api = APIClient()
    polls = [api.get("/api/health/").status_code for _ in range(10 * 12)]
    backfills = [api.get("/api/alerts/", {"pair": pair.id}).status_code for _ in range(10 * 3)]
    assert set(polls + backfills) == {HTTPStatus.OK}


def test_the_counters_do_not_share_the_snapshot_cache():
    from django.core.cache import cache, caches

    api = APIClient()
    cache.set("pairs:probe", 1)
    for k in range(400):  # more clients than the default local-memory cache holds
        api.get("/api/health/", REMOTE_ADDR=f"10.0.{k // 250}.{k % 250}")
    assert cache.get("pairs:probe") == 1
    assert caches["throttle"].get("throttle_anon_10.0.0.1") is not None


def test_with_the_cache_down_the_api_still_answers_unthrottled(settings):
    """Redis restarting must not take the API down: reads compute, limits are not enforced."""
    from django.core.cache import caches

    down = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = {
        "default": down,
        "throttle": {**down, "KEY_PREFIX": "throttle"},
        "process": settings.CACHES["process"],
    }
    caches._settings = None  # rebuild the handlers from the new settings
    for alias in ("default", "throttle"):
        if hasattr(caches._connections, alias):
            delattr(caches._connections, alias)
    try:
        pair = make_pair(window=60, min_bars=30)
        client = APIClient()
        assert client.get(f"/api/pairs/{pair.id}/snapshot/").status_code == HTTPStatus.OK
        assert client.get("/api/health/").status_code == HTTPStatus.OK
    finally:
        caches._settings = None
        for alias in ("default", "throttle"):
            if hasattr(caches._connections, alias):
                delattr(caches._connections, alias)
