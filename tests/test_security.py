"""Deployment settings, the secret key rule, and no secret on error pages, pages or logs.

The settings are read once per process, so the environment-driven rules run
``manage.py`` in a subprocess with exactly the environment under test.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from django.test import Client

from alerts import services as alert_services
from pairs_project.common.masking import MASK, url_password_masked, url_redacted
from pairs_project.settings import env_rate
from tests.support import make_pair, pending_alert

ROOT = Path(__file__).resolve().parent.parent
DB_PASSWORD = "db-pw-7f3a9c"
REDIS_PASSWORD = "redis-pw-2b8e41"
SMTP_PASSWORD = "smtp-pw-5d1c77"
TELEGRAM_TOKEN = "123456789:tg-t0ken-9e4f0a"


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py args`` with none of the project's variables set but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "API_", "REDIS_URL", "DATABASE_URL"))}
    clean["DATABASE_URL"] = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(**extra: str) -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "pairs.example.com",
        **extra,
    }


# -- check --deploy -------------------------------------------------------------


@pytest.mark.parametrize(
    "tls",
    [{"DJANGO_SECURE_SSL": "1"}, {"DJANGO_SECURE_SSL": "1", "DJANGO_SECURE_PROXY_SSL_HEADER": "1"}],
    ids=["https", "https-behind-a-proxy"],
)
def test_check_deploy_is_clean_for_an_https_deployment(tmp_path, tls):
    result = manage(tmp_path, "check", "--deploy", **production(**tls))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


def test_check_deploy_says_what_plain_http_lacks(tmp_path):
    result = manage(tmp_path, "check", "--deploy", **production())
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr, code
    assert "(0 silenced)" in result.stderr


def test_check_deploy_flags_the_built_in_key(tmp_path):
    result = manage(tmp_path, "check", "--deploy", DJANGO_DEBUG="0")  # no key, the default (local) hosts
    assert result.returncode == 0, result.stderr
    assert "security.W009" in result.stderr


# -- the secret key rule --------------------------------------------------------


@pytest.mark.parametrize("hosts", ["pairs.example.com", "*", "127.0.0.1,10.0.0.5", "0.0.0.0"])
def test_without_a_secret_key_a_site_with_a_public_name_refuses_to_start(tmp_path, hosts):
    result = manage(tmp_path, "check", DJANGO_ALLOWED_HOSTS=hosts)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "token_urlsafe" in result.stderr  # it says how to make one


def test_the_built_in_key_serves_local_names(tmp_path):
    # The default hosts are local too: test_check_deploy_flags_the_built_in_key starts with them.
    result = manage(tmp_path, "check", DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1,[::1],.localhost,testserver")
    assert result.returncode == 0, result.stderr


# -- https in practice ------------------------------------------------------------


@pytest.mark.django_db
def test_https_redirects_everything_but_the_health_probe_and_sends_hsts(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    page = client.get("/")
    assert page.status_code == HTTPStatus.MOVED_PERMANENTLY and page["Location"].startswith("https://")
    assert client.get("/api/pairs/").status_code == HTTPStatus.MOVED_PERMANENTLY
    assert client.get("/api/health/").status_code == HTTPStatus.OK  # load balancers probe over http
    proxied = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == HTTPStatus.OK
    assert proxied["Strict-Transport-Security"].startswith("max-age=3600")


# -- throttle rates from the environment -----------------------------------------


@pytest.mark.parametrize("value", ["600/min", "10/s", "1000/hour", "5/day", " 30/minute "])
def test_a_throttle_rate_is_read_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("API_THROTTLE_ANON", value)
    assert env_rate("API_THROTTLE_ANON", "600/min") == value.strip()


@pytest.mark.parametrize("value", ["lots", "600", "0/min", "600/fortnight", "-5/min", "600 / min"])
def test_a_bad_throttle_rate_is_refused(monkeypatch, value):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("API_THROTTLE_ANON", value)
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_ANON"):
        env_rate("API_THROTTLE_ANON", "600/min")


# -- no secret on pages, error pages or in logs ----------------------------------


@pytest.fixture
def secret_settings(settings):
    """Settings as production has them: a real key, passwords in the connection URLs."""
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    settings.DATABASE_URL = f"postgres://pairs:{DB_PASSWORD}@db.internal:5432/pairs"
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.EMAIL_HOST_PASSWORD = SMTP_PASSWORD
    settings.TELEGRAM_BOT_TOKEN = TELEGRAM_TOKEN
    return settings


def assert_no_secret(text: str, settings) -> None:
    for secret in (settings.SECRET_KEY, DB_PASSWORD, REDIS_PASSWORD, SMTP_PASSWORD, TELEGRAM_TOKEN):
        assert secret not in text


@pytest.mark.django_db
def test_health_the_pages_and_the_api_docs_show_no_secret(secret_settings):
    pair = make_pair()
    client = Client()
    for url in ("/api/health/", "/", f"/pairs/{pair.id}/", "/api/pairs/", "/api/schema/", "/api/docs/"):
        response = client.get(url)
        assert response.status_code == HTTPStatus.OK, url
        assert_no_secret(response.content.decode(), secret_settings)


@pytest.fixture
def failing_health(monkeypatch, secret_settings):
    def explode():
        raise RuntimeError("the feed table is gone")

    monkeypatch.setattr("dashboard.api.system_health", explode)
    return secret_settings


@pytest.mark.django_db
def test_a_500_shows_neither_a_traceback_nor_settings(failing_health):
    response = Client(raise_request_exception=False).get("/api/health/")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    body = response.content.decode()
    assert "Server Error (500)" in body  # Django's plain page
    for leak in ("Traceback", "the feed table is gone", "SECRET_KEY", "DATABASE", "explode"):
        assert leak not in body
    assert_no_secret(body, failing_health)


@pytest.mark.django_db
def test_a_404_lists_no_routes():
    body = Client().get("/no/such/page/").content.decode()
    assert "api/health" not in body and "urlpatterns" not in body.lower()


@pytest.mark.django_db
def test_even_debug_error_pages_mask_the_passwords_in_urls(failing_health):
    failing_health.DEBUG = True
    body = Client(raise_request_exception=False).get("/api/health/").content.decode()
    assert "DATABASE_URL" in body and "REDIS_URL" in body and "TELEGRAM_BOT_TOKEN" in body  # the settings table...
    assert f"redis://:{MASK}@redis.internal" in body
    assert DB_PASSWORD not in body and REDIS_PASSWORD not in body  # ...without the passwords
    assert SMTP_PASSWORD not in body and TELEGRAM_TOKEN not in body  # nor the mail password and the bot's token
    assert failing_health.SECRET_KEY not in body


@pytest.mark.django_db
def test_a_failing_webhook_is_logged_without_its_secret_path(monkeypatch, caplog):
    from pairs_project.common import egress

    url = "https://hooks.example.com/services/T000/B000/s3cr3t-h00k-t0ken"
    pair = make_pair(webhook_url=url)
    notification = pending_alert(pair).notifications.get()
    monkeypatch.setattr(egress, "system_resolver", lambda host, port: ["93.184.216.34"])
    monkeypatch.setattr(alert_services, "webhook_post", lambda target, payload, **kwargs: 404)
    with caplog.at_level(logging.WARNING, logger="alerts"), pytest.raises(alert_services.DeliveryFailed):
        alert_services.notification_deliver(notification_id=notification.id, final=False)
    notification.refresh_from_db()
    assert notification.error == "attempt 1: HTTP 404 from the receiver"
    assert "https://hooks.example.com/…" in caplog.text
    assert "s3cr3t-h00k-t0ken" not in caplog.text + notification.error


@pytest.mark.parametrize(
    "text,masked",
    [
        ("postgres://pairs:pw@db:5432/pairs", f"postgres://pairs:{MASK}@db:5432/pairs"),
        ("redis://:pw@redis:6379/0", f"redis://:{MASK}@redis:6379/0"),
        ("rediss://default:p%40ss@r.example:6380", f"rediss://default:{MASK}@r.example:6380"),
        ("broker redis://:a@h/0 and amqp://u:b@h//", f"broker redis://:{MASK}@h/0 and amqp://u:{MASK}@h//"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),  # no password, nothing to hide
        ("sqlite:////srv/pairs/db.sqlite3", "sqlite:////srv/pairs/db.sqlite3"),
        ("wss://fstream.binance.com/market", "wss://fstream.binance.com/market"),
        ("a plain message: 10:30@desk", "a plain message: 10:30@desk"),
    ],
)
def test_url_passwords_are_masked(text, masked):
    assert url_password_masked(text) == masked


@pytest.mark.parametrize(
    "url,redacted",
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/…"),
        ("https://user:pw@hooks.example.com:8443/x?token=1", "https://hooks.example.com:8443/…"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("http://[::1]:9000/hook", "http://[::1]:9000/…"),
        ("not a url", "<unparseable url>"),
    ],
)
def test_webhook_urls_are_redacted_to_their_host(url, redacted):
    assert url_redacted(url) == redacted


def test_every_url_in_a_message_is_redacted_to_its_host():
    from pairs_project.common.masking import urls_redacted

    text = "POST 'https://93.184.216.34:8443/services/T0/B0/XYZ?k=1' failed; see http://[::1]:9000/hook/abc"
    assert urls_redacted(text) == "POST 'https://93.184.216.34:8443/…' failed; see http://[::1]:9000/…"
