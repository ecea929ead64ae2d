"""An alert's notifications: e-mail and Telegram beside the webhook, one retry policy and one path for all.

The receivers are local fakes on 127.0.0.1: a real SMTP server (aiosmtpd) and an
HTTP fake of the Telegram Bot API's ``sendMessage``. Loopback is refused by the
egress policy in production; a test that sends to one turns on
``ALERT_WEBHOOK_ALLOW_LOOPBACK`` (a setting no environment variable reaches), as
the webhook tests do.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from alerts import services as alert_services
from alerts.models import Alert, AlertState, Notification
from alerts.rules import RuleState
from analytics import snapshot as snapshots
from pairs_project.common import egress
from pairs_project.pipeline import Pipeline
from tests.processes import free_port
from tests.support import T0, make_pair, pending_alert

pytestmark = pytest.mark.django_db

TOKEN = "123456789:AAH-fake-t0ken_for-tests"
BAR = T0 + 150_000  # 2026-01-01 00:02:30 UTC
RECIPIENTS = "desk@example.com, risk@example.com"


#: Tests that run ``notification_deliver_with_retries`` here, as a delivery thread does: it ends by
#: closing its connection, so the test's rows must be committed.
RUNNER = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fast_retries(monkeypatch):
    """The policy's backoff shortened to 50 ms (a receiver's own ``retry_after`` still holds)."""
    monkeypatch.setattr(alert_services.RetryPolicy, "countdown", lambda self, retries: 0.05)


def notification(alert: Alert, channel: str) -> Notification:
    return alert.notifications.get(channel=channel)


def attempt(row: Notification, *, final: bool = False) -> Notification:
    """One attempt of ``row``; as recorded afterwards."""
    try:
        alert_services.notification_deliver(notification_id=row.id, final=final)
    except alert_services.DeliveryFailed:
        pass
    row.refresh_from_db()
    return row


def wait_for(row: Notification, status: str, timeout: float = 15) -> Notification:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if row.status == status:
            return row
        time.sleep(0.05)
    raise AssertionError(f"{row.channel} stayed {row.status} ({row.error})")


def fired_alert(pair) -> Alert:
    """A short-spread entry on ``BAR`` with the numbers a message must carry."""
    return pending_alert(
        pair,
        direction="short_spread",
        bar_time=BAR,
        signal_zscore=2.4137,
        zscore=2.0511,
        coint_pvalue=0.01234,
        adf_pvalue=0.004,
        hedge_ratio=20.41023,
        message="BTCUSDT/ETHUSDT: signal z +2.41 beyond ±2 after 30 related bars",
    )


# -- fakes ---------------------------------------------------------------------------


class Mailbox:
    """An SMTP server's handler: defers the first ``defer`` messages (451), refuses every recipient on ``refuse``."""

    def __init__(self) -> None:
        self.defer = 0
        self.refuse = False
        self.delay = 0.0
        self.tries = 0
        self.received: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio

        self.tries += 1
        await asyncio.sleep(self.delay)
        if self.defer > 0:
            self.defer -= 1
            return "451 4.3.0 try again later"
        self.received.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1, and Django's SMTP backend pointed at it."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "pairs <alerts@pairs.example.com>"
    yield mailbox
    controller.stop()


class TelegramApi(BaseHTTPRequestHandler):
    """The Bot API's sendMessage: answers each request with the next of ``answers`` (then ok), after ``delay`` s."""

    answers: list[tuple[int, dict]] = []
    requests: list[tuple[float, str, dict]] = []
    delay = 0.0

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        TelegramApi.requests.append((time.monotonic(), self.path, body))
        time.sleep(TelegramApi.delay)
        status, answer = (
            TelegramApi.answers.pop(0) if TelegramApi.answers else (200, {"ok": True, "result": {"message_id": 7}})
        )
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def telegram(settings):
    """The fake Bot API on 127.0.0.1 as ``TELEGRAM_API_URL``, with the bot's token set."""
    TelegramApi.answers, TelegramApi.requests, TelegramApi.delay = [], [], 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), TelegramApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.TELEGRAM_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK = True
    settings.ALERT_WEBHOOK_TIMEOUT = 5.0
    yield TelegramApi
    server.shutdown()


def too_many_requests(seconds: int) -> tuple[int, dict]:
    return 429, {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }


# -- which channels -------------------------------------------------------------------


def test_an_alert_gets_a_pending_notification_per_channel_of_its_pair():
    pair = make_pair(webhook_url="", email_recipients="", telegram_chat_id="")
    assert list(pending_alert(pair).notifications.all()) == []
    pair = make_pair(email_recipients=RECIPIENTS, telegram_chat_id="-1001234567890")
    alert = pending_alert(pair, bar_time=2)
    assert [(n.channel, n.status, n.attempts, n.error) for n in alert.notifications.all()] == [
        ("email", "pending", 0, ""),
        ("telegram", "pending", 0, ""),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_each_alerts_webhook_state_to_a_notification():
    executor = MigrationExecutor(connection)
    before = [("alerts", "0003_paper_positions"), ("analytics", "0007_screener_run")]
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    pair = apps.get_model("analytics", "Pair").objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT")
    old = apps.get_model("alerts", "Alert")
    common = {"pair_id": pair.pk, "kind": "entry", "direction": "long_spread", "reason": "entry", "snapshot": {}}
    old.objects.create(bar_time=1, message="none", webhook_status="none", **common)
    sent = old.objects.create(bar_time=2, message="sent", webhook_status="sent", webhook_attempts=2, **common)
    failed = old.objects.create(
        bar_time=3,
        message="failed",
        webhook_status="failed",
        webhook_attempts=5,
        webhook_error="attempt 5: timed out",
        **common,
    )
    MigrationExecutor(connection).migrate(latest)
    rows = Notification.objects.order_by("alert_id")
    assert [(n.alert_id, n.channel, n.status, n.attempts, n.error) for n in rows] == [
        (sent.pk, "webhook", "sent", 2, ""),
        (failed.pk, "webhook", "failed", 5, "attempt 5: timed out"),
    ]
    assert rows[0].sent_at is not None and rows[1].sent_at is None


def test_the_admin_shows_each_channels_state_on_the_alert(client):
    from django.contrib.auth.models import User
    from django.urls import reverse

    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    alert = pending_alert(make_pair(email_recipients=RECIPIENTS, telegram_chat_id="123456789"))
    alert.notifications.filter(channel="email").update(
        status="failed", attempts=5, error="attempt 5: could not connect"
    )
    changelist = client.get(reverse("admin:alerts_alert_changelist")).content.decode()
    assert "e-mail failed (attempt 5: could not connect), Telegram pending" in changelist
    page = client.get(reverse("admin:alerts_alert_change", args=[alert.id])).content.decode()
    assert "attempt 5: could not connect" in page and "Telegram" in page
    failed = client.get(reverse("admin:alerts_alert_changelist"), {"notifications__status": "failed"})
    assert list(failed.context["cl"].result_list) == [alert]


# -- e-mail ---------------------------------------------------------------------------


@RUNNER
def test_an_email_deferred_by_the_server_is_retried_until_it_is_accepted(smtp, settings, fast_retries):
    settings.PUBLIC_BASE_URL = "https://pairs.example.com"
    smtp.defer = 2
    pair = make_pair(email_recipients=RECIPIENTS)
    row = notification(fired_alert(pair), "email")
    # Each attempt is recorded: the class of its failure, and that another one is due.
    assert (attempt(row).status, row.attempts, row.error) == (
        "pending",
        1,
        "attempt 1: deferred by the mail server (SMTP 451)",
    )
    alert_services.notification_deliver_with_retries(row.id)  # the rest, as embedded mode runs it
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("sent", 3, "")
    assert row.sent_at is not None
    assert smtp.tries == 3
    [envelope] = smtp.received
    assert envelope.mail_from == "alerts@pairs.example.com"
    assert envelope.rcpt_tos == ["desk@example.com", "risk@example.com"]
    mail = message_from_bytes(envelope.original_content, policy=policy.default)
    assert mail["Subject"] == "Entry BTCUSDT/ETHUSDT 1s: short spread (sell BTCUSDT, buy ETHUSDT), signal z +2.41"
    assert mail["To"] == "desk@example.com, risk@example.com"
    assert mail.get_content().splitlines() == [
        "Entry on BTCUSDT/ETHUSDT 1s: short spread (sell BTCUSDT, buy ETHUSDT).",
        "",
        "Signal z +2.41",
        "EG p-value 0.0123",
        "Hedge ratio 20.4102",
        "Bar 2026-01-01 00:02:30 UTC (1s)",
        "",
        "BTCUSDT/ETHUSDT: signal z +2.41 beyond ±2 after 30 related bars",
        "",
        f"https://pairs.example.com/pairs/{pair.id}/",
    ]


def test_an_email_refused_for_good_is_not_retried(smtp, caplog):
    smtp.refuse = True
    row = notification(fired_alert(make_pair(email_recipients=RECIPIENTS)), "email")
    with caplog.at_level(logging.WARNING, logger="alerts"):
        assert attempt(row).status == "failed"  # not the final attempt, and still no other
    assert row.error == "attempt 1: recipients refused by the mail server (SMTP 550)"
    assert smtp.tries == 0 and smtp.received == []
    assert "email of alert" in caplog.text and "2 recipient(s)" in caplog.text


def test_an_unreachable_mail_server_is_retried(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    row = notification(fired_alert(make_pair(email_recipients=RECIPIENTS)), "email")
    assert (attempt(row).status, row.error) == ("pending", "attempt 1: could not connect")
    assert (attempt(row, final=True).status, row.error) == ("failed", "attempt 2: could not connect")


def test_an_exit_says_what_to_close_and_why(smtp):
    pair = make_pair(email_recipients="desk@example.com")
    alert = pending_alert(
        pair,
        kind="exit",
        direction="long_spread",
        reason="relationship_broken",
        bar_time=BAR,
        signal_zscore=None,  # recorded before signals: its in-sample z
        zscore=-1.2,
        coint_pvalue=None,
        hedge_ratio=None,
        message="relationship broken",
    )
    subject, body = alert_services.alert_message(alert)
    assert subject == "Exit BTCUSDT/ETHUSDT 1s (relationship broke): close the long spread (buy BTCUSDT, sell ETHUSDT)"
    assert body.splitlines()[:6] == [
        "Exit on BTCUSDT/ETHUSDT 1s (relationship broke): close the long spread (buy BTCUSDT, sell ETHUSDT).",
        "",
        "In-sample z -1.20",
        "EG p-value —",
        "Hedge ratio —",
        "Bar 2026-01-01 00:02:30 UTC (1s)",
    ]
    assert "https://" not in body  # no PUBLIC_BASE_URL: no link


def test_directions_are_written_as_the_pages_write_them():
    from dashboard.formatting import direction_text

    pair = make_pair()
    for k, direction in enumerate(Alert.Direction.values):
        subject, body = alert_services.alert_message(pending_alert(pair, direction=direction, bar_time=BAR + k))
        assert f"Entry on {pair.symbol_a}/{pair.symbol_b} 1s: {direction_text(direction, pair.symbols)}." in body


# -- Telegram -------------------------------------------------------------------------


@RUNNER
def test_a_telegram_message_that_fails_is_retried_until_it_is_sent(telegram, settings, fast_retries, caplog):
    settings.PUBLIC_BASE_URL = "https://pairs.example.com"
    telegram.answers = [(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})]
    pair = make_pair(telegram_chat_id="-1001234567890")
    row = notification(fired_alert(pair), "telegram")
    with caplog.at_level(logging.WARNING, logger="alerts"):
        assert (attempt(row).status, row.error) == ("pending", "attempt 1: HTTP 502 from Telegram")
        alert_services.notification_deliver_with_retries(row.id)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("sent", 2, "")
    [(_, path, body), _] = telegram.requests
    assert path == f"/bot{TOKEN}/sendMessage"
    assert body["chat_id"] == "-1001234567890" and body["link_preview_options"] == {"is_disabled": True}
    assert body["text"].splitlines()[:8] == [
        "Entry BTCUSDT/ETHUSDT 1s: short spread (sell BTCUSDT, buy ETHUSDT), signal z +2.41",
        "",
        "Entry on BTCUSDT/ETHUSDT 1s: short spread (sell BTCUSDT, buy ETHUSDT).",
        "",
        "Signal z +2.41",
        "EG p-value 0.0123",
        "Hedge ratio 20.4102",
        "Bar 2026-01-01 00:02:30 UTC (1s)",
    ]
    assert body["text"].endswith(f"\n\nhttps://pairs.example.com/pairs/{pair.id}/")
    # The bot's token is a secret: in no log line, on no notification.
    assert "telegram of alert" in caplog.text and "chat -1001234567890" in caplog.text
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


@RUNNER
def test_telegrams_retry_after_is_honoured(telegram, fast_retries):
    telegram.answers = [too_many_requests(1)]
    row = notification(fired_alert(make_pair(telegram_chat_id="123456789")), "telegram")
    assert (attempt(row).status, row.error) == (
        "pending",
        "attempt 1: rate limited by Telegram (HTTP 429, retry after 1 s)",
    )
    row.status, row.attempts = "pending", 0
    row.save()
    telegram.answers, telegram.requests = [too_many_requests(1)], []
    alert_services.notification_deliver_with_retries(row.id)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    [(first, _, _), (second, _, _)] = telegram.requests
    assert second - first >= 1.0  # not the policy's 50 ms: Telegram's second


@RUNNER
def test_a_wait_longer_than_the_policy_waits_is_not_retried(telegram, fast_retries):
    telegram.answers = [too_many_requests(3600)]
    row = notification(fired_alert(make_pair(telegram_chat_id="123456789")), "telegram")
    alert_services.notification_deliver_with_retries(row.id)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == (
        "failed",
        1,
        "attempt 1: rate limited by Telegram (HTTP 429, retry after 3600 s)",
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "HTTP 400 from Telegram (check the chat id)"),
        (401, "HTTP 401 from Telegram (check TELEGRAM_BOT_TOKEN)"),
        (403, "HTTP 403 from Telegram (the bot may not write to this chat)"),
    ],
)
def test_a_refusal_by_telegram_is_final(telegram, caplog, status, error):
    telegram.answers = [(status, {"ok": False, "error_code": status, "description": "Bad Request: chat not found"})]
    row = notification(fired_alert(make_pair(telegram_chat_id="@pairs_desk")), "telegram")
    with caplog.at_level(logging.WARNING, logger="alerts"):
        assert (attempt(row).status, row.error) == ("failed", f"attempt 1: {error}")
    assert len(telegram.requests) == 1
    assert "chat not found" in caplog.text  # the detail is in the log
    assert TOKEN not in caplog.text


def test_without_a_bot_token_telegram_is_not_configured(telegram, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    row = notification(fired_alert(make_pair(telegram_chat_id="123456789")), "telegram")
    assert (attempt(row).status, row.error) == ("failed", "attempt 1: not configured: TELEGRAM_BOT_TOKEN is not set")
    assert telegram.requests == []


def test_an_unreachable_telegram_is_retried_and_its_token_never_logged(settings, caplog):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_API_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK = True
    row = notification(fired_alert(make_pair(telegram_chat_id="123456789")), "telegram")
    with caplog.at_level(logging.WARNING, logger="alerts"):
        assert (attempt(row).status, row.error) == ("pending", "attempt 1: could not connect")
    assert TOKEN not in caplog.text and TOKEN not in row.error


def test_telegram_is_reached_under_the_egress_policy(telegram, settings, monkeypatch, caplog):
    """A name that resolves to a private address is refused: nothing sent, nothing retried."""
    monkeypatch.setattr(egress, "system_resolver", lambda host, port: ["10.0.0.7"])
    settings.TELEGRAM_API_URL = "https://telegram.internal"
    row = notification(fired_alert(make_pair(telegram_chat_id="123456789")), "telegram")
    with caplog.at_level(logging.WARNING, logger="alerts"):
        assert (attempt(row).status, row.error) == ("failed", "attempt 1: refused by the egress policy")
    assert "Telegram API host telegram.internal resolves to 10.0.0.7, a private address" in caplog.text
    assert TOKEN not in caplog.text


def test_telegram_on_loopback_is_refused_without_the_tests_switch(telegram, settings):
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK = False
    row = notification(fired_alert(make_pair(telegram_chat_id="123456789")), "telegram")
    assert (attempt(row).status, row.error) == ("failed", "attempt 1: refused by the egress policy")
    assert telegram.requests == []


# -- off the analytics cycle -------------------------------------------------------------------


def firing_snapshot(pair) -> snapshots.PairSnapshot:
    """A ready snapshot of ``pair`` whose signal fires an entry, its relationship confirmed before."""
    AlertState.objects.update_or_create(
        pair=pair, defaults={"state": RuleState(related_run=30, last_as_of=BAR - 1000).as_dict()}
    )
    return snapshots.PairSnapshot(
        pair=pair.id,
        symbol_a="BTCUSDT",
        symbol_b="ETHUSDT",
        interval="1s",
        window=300,
        thresholds=snapshots.Thresholds(),
        as_of=BAR,
        ready=True,
        stale=False,
        statistics=snapshots.Statistics(zscore=2.0, adf_pvalue=0.01, coint_pvalue=0.02, correlation=0.9),
        signal_zscore=2.5,
        related=True,
        related_run=31,
    )


@pytest.fixture
def slow_receivers(smtp, telegram):
    """Both receivers answer only after 2 s."""
    smtp.delay = telegram.delay = 2.0
    return smtp, telegram


def fire(pipeline: Pipeline, pair) -> tuple[Alert, float]:
    """The cycle's alert step on a firing snapshot; the alert and how long the step took."""
    started = time.monotonic()
    pipeline.alert_step(pair, firing_snapshot(pair))
    return Alert.objects.get(pair=pair), time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_delivers_off_the_cycle(slow_receivers, pipeline):
    smtp, telegram = slow_receivers
    pair = make_pair(email_recipients=RECIPIENTS, telegram_chat_id="123456789")
    alert, took = fire(pipeline, pair)
    assert took < 1.0  # the receivers take 2 s each
    assert smtp.received == [] and all(n.status == "pending" for n in alert.notifications.all())
    for row in alert.notifications.all():
        assert wait_for(row, "sent").attempts == 1
    assert len(smtp.received) == 1 and len(telegram.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_distributed_mode_delivers_through_the_celery_task(slow_receivers, runtime, fast_retries):
    """No delivery thread in this process: the cycle queues one task per notification, and a worker
    (here a Celery worker on the in-memory broker) delivers them, retrying by the same policy."""
    from celery.contrib.testing.worker import start_worker

    from alerts import tasks
    from pairs_project.celery import app

    smtp, telegram = slow_receivers
    smtp.defer = 1  # the e-mail is retried by the task
    telegram.answers = [too_many_requests(1)]  # and Telegram's wait honoured
    pipeline = Pipeline(dataclasses.replace(runtime, deliveries=None))
    pair = make_pair(email_recipients=RECIPIENTS, telegram_chat_id="123456789")
    queued = []
    delay = tasks.alert_notification_task.delay

    def counted(notification_id: int):
        queued.append(notification_id)
        return delay(notification_id)

    tasks.alert_notification_task.delay = counted
    try:
        alert, took = fire(pipeline, pair)
    finally:
        del tasks.alert_notification_task.delay
    assert took < 1.0
    assert sorted(queued) == sorted(n.id for n in alert.notifications.all())
    assert smtp.tries == 0 and telegram.requests == []  # nothing sent by the cycle
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
        rows = {n.channel: wait_for(n, "sent", timeout=30) for n in alert.notifications.all()}
    assert rows["email"].attempts == 2 and rows["telegram"].attempts == 2
    [(first, _, _), (second, _, _)] = telegram.requests
    assert second - first >= 1.0
    assert len(smtp.received) == 1
