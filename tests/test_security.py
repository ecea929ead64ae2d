"""Deployment settings and the secret key rule.

The settings are read once per process, so the environment-driven rules run
``manage.py`` in a subprocess with exactly the environment under test.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py args`` with none of the project's variables set but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "API_", "REDIS_URL", "DATABASE_URL"))}
    clean["DATABASE_URL"] = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
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
