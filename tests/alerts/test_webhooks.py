"""Webhooks cannot reach inside: the egress policy at save (admin, ``add_pair``) and at send.

Receivers here are local HTTP(S) servers on 127.0.0.1. Loopback is refused in
production; a test that delivers to one turns on ``ALERT_WEBHOOK_ALLOW_LOOPBACK``
(a setting no environment variable reaches) and, to show that the connection goes
to the checked address, gives the receiver a name only the test's resolver knows.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme
from django.contrib.auth.models import User
from django.urls import reverse

from alerts import services as alert_services
from alerts.models import Alert, Notification
from analytics.models import Pair
from pairs_project.common import egress
from tests.processes import free_port
from tests.support import make_pair, pair_form, pending_alert

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"
SECRET = "s3cr3t-h00k-t0ken"


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver whose answer each test chooses."""

    requests: list[tuple[str, str, bytes]] = []
    answer = "ok"

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.requests.append((self.path, self.headers["Host"], body))
        if Receiver.answer == "hang":
            time.sleep(3)
        if Receiver.answer == "garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            return
        if Receiver.answer == "redirect":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response({"ok": 200, "unavailable": 503, "hang": 200}[Receiver.answer])
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.requests = []
    Receiver.answer = "ok"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


@pytest.fixture
def dns(monkeypatch):
    """The resolver of the policy, answering from ``dns.table`` (a name -> addresses dict)."""
    system = egress.system_resolver

    class Fake:
        table: dict[str, list[str]] = {}
        calls: list[str] = []

        def __call__(self, host: str, port: int) -> list[str]:
            self.calls.append(host)
            if host in self.table:
                return list(self.table[host])
            return system(host, port)  # address literals

    fake = Fake()
    fake.table = {"hooks.example.com": [PUBLIC]}
    fake.calls = []
    monkeypatch.setattr(egress, "system_resolver", fake)
    return fake


@pytest.fixture
def loopback_receivers(settings):
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK = True
    settings.ALERT_WEBHOOK_TIMEOUT = 1.0


def deliver(alert: Alert, *, final: bool = True) -> Notification:
    """One attempt of the alert's webhook; its notification as recorded."""
    notification = alert.notifications.get(channel=Notification.Channel.WEBHOOK)
    try:
        alert_services.notification_deliver(notification_id=notification.id, final=final)
    except alert_services.DeliveryFailed:
        pass
    notification.refresh_from_db()
    return notification


# -- at save --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),  # Redis
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),  # PostgreSQL
        ("http://127.0.0.1:8000/admin/", "127.0.0.1 is a loopback address"),  # this app's admin
        ("http://localhost:8000/admin/", "localhost is this site itself"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        (
            "http://10.0.0.5/hook",
            "10.0.0.5 is a private address: webhooks only go to public receivers; "
            "set ALERT_WEBHOOK_ALLOW_PRIVATE=1 to allow private receivers",
        ),
        ("http://internal.example.com/hook", "internal.example.com resolves to 10.1.2.3, a private address"),
        ("https://user:pass@hooks.example.com/hook", "may not carry a user name or password"),
        ("http://nowhere.example.com/hook", "nowhere.example.com does not resolve"),
    ],
)
def test_the_admin_refuses_a_webhook_that_reaches_inside(client, dns, url, message):
    dns.table["internal.example.com"] = ["10.1.2.3"]
    dns.table["nowhere.example.com"] = []
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    response = client.post(reverse("admin:analytics_pair_add"), pair_form(webhook_url=url))
    assert response.status_code == HTTPStatus.OK  # the form again, with the message
    assert message in response.content.decode()
    assert not Pair.objects.filter(symbol_a="SOLUSDT").exists()


def test_the_admin_saves_a_public_webhook(client, dns):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    url = f"https://hooks.example.com/services/{SECRET}"
    response = client.post(reverse("admin:analytics_pair_add"), pair_form(webhook_url=url))
    assert response.status_code == HTTPStatus.FOUND
    assert Pair.objects.get(symbol_a="SOLUSDT").webhook_url == url


def test_a_private_receiver_is_saved_when_the_setting_allows_it(dns, settings):
    dns.table["internal.example.com"] = ["10.1.2.3"]
    pair = Pair(symbol_a="SOLUSDT", symbol_b="ETHUSDT", webhook_url="http://internal.example.com/hook")
    with pytest.raises(Exception, match="private address"):
        pair.full_clean()
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    pair.full_clean()
    pair.webhook_url = "http://127.0.0.1:6379/"
    with pytest.raises(Exception, match="loopback"):  # never loopback, link-local or metadata
        pair.full_clean()


# -- at send --------------------------------------------------------------------


def test_a_webhook_is_delivered_to_the_checked_address_with_its_own_name(dns, receiver, loopback_receivers):
    """hooks.test resolves only through the policy's resolver: the POST reaches the receiver because
    the connection goes to the address the policy checked, with the name in the Host header."""
    dns.table["hooks.test"] = ["127.0.0.1"]
    sent = deliver(pending_alert(make_pair(webhook_url=f"http://hooks.test:{receiver}/hook/{SECRET}")))
    assert (sent.status, sent.attempts, sent.error) == ("sent", 1, "")
    assert sent.sent_at is not None
    [(path, host, body)] = Receiver.requests
    assert (path, host) == (f"/hook/{SECRET}", f"hooks.test:{receiver}")
    assert dns.calls == ["hooks.test"]  # resolved once, by the policy


def test_dns_rebinding_is_refused_at_send(dns, receiver, caplog):
    """Public when the pair was saved, this machine when the alert fires: nothing is sent, nor retried."""
    dns.table["rebind.example.com"] = [PUBLIC]
    pair = make_pair(webhook_url=f"http://rebind.example.com:{receiver}/hook/{SECRET}")
    pair.full_clean(validate_unique=False, validate_constraints=False)
    dns.table["rebind.example.com"] = ["127.0.0.1"]
    notification = pending_alert(pair).notifications.get()
    with caplog.at_level(logging.WARNING, logger="alerts"):
        alert_services.notification_deliver(notification_id=notification.id, final=False)  # no raise: no retry
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert notification.error == "attempt 1: refused by the egress policy"
    assert Receiver.requests == []
    assert "rebind.example.com resolves to 127.0.0.1, a loopback address" in caplog.text
    assert SECRET not in caplog.text


def test_a_redirect_is_not_followed(dns, receiver, loopback_receivers):
    Receiver.answer = "redirect"
    failed = deliver(pending_alert(make_pair(webhook_url=f"http://127.0.0.1:{receiver}/hook")))
    assert failed.error == "attempt 1: HTTP 302 from the receiver (redirects are not followed)"
    assert [path for path, _, _ in Receiver.requests] == ["/hook"]


@pytest.mark.parametrize(
    "answer,error",
    [
        ("unavailable", "HTTP 503 from the receiver"),
        ("hang", "timed out"),
        ("garbage", "invalid response"),
        ("closed port", "could not connect"),
    ],
)
def test_only_a_generic_error_is_stored_on_the_alert(dns, receiver, loopback_receivers, answer, error, caplog):
    """The stored error never tells a closed port from a filtered one by its text (a port-scan oracle):
    one class per failure; the log keeps the detail, with the host only."""
    Receiver.answer = answer
    port = free_port() if answer == "closed port" else receiver  # free: nothing listens there
    with caplog.at_level(logging.WARNING, logger="alerts"):
        failed = deliver(pending_alert(make_pair(webhook_url=f"http://127.0.0.1:{port}/hook/{SECRET}")))
    assert failed.status == "failed"
    assert failed.error == f"attempt 1: {error}"
    assert f"127.0.0.1:{port}" in caplog.text and SECRET not in caplog.text


def test_a_hanging_receiver_is_cut_off_at_the_timeout(dns, receiver, loopback_receivers, settings):
    settings.ALERT_WEBHOOK_TIMEOUT = 0.5
    Receiver.answer = "hang"
    started = time.monotonic()
    failed = deliver(pending_alert(make_pair(webhook_url=f"http://127.0.0.1:{receiver}/hook")))
    assert failed.error == "attempt 1: timed out"
    assert time.monotonic() - started < 2.5  # the receiver would take 3 s


# -- TLS to a pinned address ----------------------------------------------------


@pytest.fixture
def tls_receiver(receiver):
    """An HTTPS receiver on 127.0.0.1 with a certificate for hooks.test only, and a client context trusting its CA."""
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.test").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    yield server.server_port, client_context
    server.shutdown()


def target(url: str, address: str = "127.0.0.1") -> egress.Target:
    return egress.check_url(url, allow_loopback=True, resolver=lambda host, port: [address])


def test_tls_to_the_pinned_address_verifies_the_certificate_against_the_name(tls_receiver):
    port, trusted = tls_receiver
    status = alert_services.webhook_post(target(f"https://hooks.test:{port}/hook"), {"a": 1}, timeout=5, verify=trusted)
    assert status == HTTPStatus.OK
    assert Receiver.requests[-1][1] == f"hooks.test:{port}"
    # The same address under another name: the certificate does not cover it, so no request is made.
    for url in (f"https://other.test:{port}/hook", f"https://127.0.0.1:{port}/hook"):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            alert_services.webhook_post(target(url), {"a": 1}, timeout=5, verify=trusted)
    assert len(Receiver.requests) == 1


def test_both_modes_retry_every_channel_by_the_one_policy():
    """Celery (distributed) and the embedded runner read the same RetryPolicy, with Celery's backoff formula,
    and wait at least as long as a receiver asked."""
    from alerts import services, tasks

    policy = services.DELIVERY_RETRY
    task = tasks.alert_notification_task
    assert task.max_retries == policy.attempts - 1
    for retries in range(6):
        ceiling = min(policy.backoff_max, int(max(1, policy.backoff)) * 2**retries)
        waits = [policy.wait(retries) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)  # full jitter: anywhere up to the exponential ceiling
        assert all(policy.wait(retries, retry_after=ceiling + 1) == ceiling + 1 for _ in range(20))
