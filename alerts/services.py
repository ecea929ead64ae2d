"""Alert work that touches the database: evaluate the rule, record, deliver the notifications."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import smtplib
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import close_old_connections, transaction
from django.urls import reverse
from django.utils import timezone

from analytics import services as analytics_services
from analytics.backtest import Costs, Position, position_close, position_mark, position_open
from analytics.bars import INTERVALS
from analytics.models import Pair, webhook_target
from analytics.snapshot import PairSnapshot, snapshot_json
from pairs_project.common import egress
from pairs_project.common.display import direction_text, pvalue_text, utc_text
from pairs_project.common.egress import Target
from pairs_project.common.masking import MASK, url_redacted, urls_redacted

from .models import Alert, AlertState, Notification, PaperPosition
from .rules import Event, RuleState, Thresholds, evaluate

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Attempts in all, and exponential backoff between them with full jitter.

    The one definition every channel and both modes run: the Celery task's retries
    (distributed mode) and the embedded runner's waits both take ``wait`` (Celery's
    own formula), so a notification is retried the same way whatever its channel,
    in either mode.
    """

    attempts: int
    backoff: float  # seconds before the first retry, at most (full jitter; whole seconds, as Celery)
    backoff_max: float

    def countdown(self, retries: int) -> float:
        """Seconds to wait before retry number ``retries + 1``, as Celery's ``retry_backoff`` waits."""
        # Celery's autoretry takes the factor as whole seconds, at least 1, and so does this.
        factor = int(max(1.0, self.backoff))
        return float(get_exponential_backoff_interval(factor, retries, int(self.backoff_max), full_jitter=True))

    def wait(self, retries: int, retry_after: float | None = None) -> float:
        """The countdown, or longer when the receiver asked to be left alone for longer (``retry_after`` s)."""
        countdown = self.countdown(retries)
        return countdown if retry_after is None else max(countdown, retry_after)


#: Every notification's delivery, whatever its channel (webhook, e-mail, Telegram). A receiver
#: asking to wait longer than ``backoff_max`` is not retried: the wait would hold a delivery thread.
DELIVERY_RETRY = RetryPolicy(attempts=5, backoff=2.0, backoff_max=60.0)


class DeliveryFailed(Exception):
    """An attempt failed, was recorded, and another one is due (after ``retry_after`` s, if the receiver said)."""

    def __init__(self, error: str, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.retry_after = retry_after


def thresholds_of(pair: Pair) -> Thresholds:
    """The rule's thresholds: the pair's, as its snapshots carry them (and the rule's own ``break_after``)."""
    return Thresholds(**dataclasses.asdict(analytics_services.thresholds_of(pair)))


def rules_of(pair: Pair) -> Callable[[float, float], tuple[Callable[..., Any], RuleState]]:
    """The pair's alert rule at other entry/exit thresholds, from a new state: what a backtest steps.

    ``rules_of(pair)(entry_z, exit_z)`` is ``(rule, state)`` with ``rule(state, snapshot)``
    the live ``rules.evaluate`` under the pair's thresholds but those two.
    """

    def rule_for(entry_z: float, exit_z: float) -> tuple[Callable[..., Any], RuleState]:
        thresholds = dataclasses.replace(thresholds_of(pair), entry_z=entry_z, exit_z=exit_z)
        return functools.partial(_evaluate, thresholds=thresholds), RuleState()

    return rule_for


def _evaluate(state: RuleState, snapshot: PairSnapshot, *, thresholds: Thresholds) -> tuple[RuleState, list[Event]]:
    return evaluate(state, snapshot, thresholds)


def alert_rule_evaluate(
    *, pair: Pair, snapshot: PairSnapshot, on_alert: Callable[[Alert], None] | None = None
) -> list[Alert]:
    """Run the pair's rule on ``snapshot``; record what fires, and tell ``on_alert`` once it is committed.

    The rule state is read and written under a row lock in the same transaction
    as the alerts (and their notifications, one per channel of the pair), so two
    workers (or a restart that replays a snapshot) cannot fire the same entry twice.
    """
    with transaction.atomic():
        row, _ = AlertState.objects.select_for_update().get_or_create(pair=pair)
        state = RuleState.from_dict(row.state)
        new_state, events = evaluate(state, snapshot, thresholds_of(pair))
        if new_state == state:
            return []
        row.state = new_state.as_dict()
        row.save(update_fields=["state", "updated_at"])
        alerts = []
        for event in events:
            alert, created = Alert.objects.get_or_create(
                pair=pair,
                kind=event.kind,
                bar_time=snapshot.as_of,
                defaults={
                    "direction": event.direction,
                    "reason": event.reason,
                    "signal_zscore": snapshot.signal_zscore,
                    "zscore": snapshot.statistics.zscore,
                    "adf_pvalue": snapshot.statistics.adf_pvalue,
                    "coint_pvalue": snapshot.statistics.coint_pvalue,
                    "correlation": snapshot.statistics.correlation,
                    "related_run": state.related_run,
                    "hedge_ratio": snapshot.statistics.hedge_ratio,
                    "message": event.message,
                    "snapshot": snapshot_json(snapshot),
                },
            )
            if created:
                alerts.append(alert)
                notifications_create(alert)
                logger.info("alert %s: %s", alert.id, alert.message)
                _position_book(pair, alert, snapshot)
                if on_alert is not None:
                    transaction.on_commit(functools.partial(on_alert, alert))
        _position_mark(pair, snapshot)
    return alerts


# -- paper positions ------------------------------------------------------------

#: What a paper position costs: a backtest's defaults (docs/analytics.md, "Backtest").
PAPER_COSTS = Costs()


def _position_book(pair: Pair, alert: Alert, snapshot: PairSnapshot) -> PaperPosition | None:
    """An entry alert opens the pair's paper position, an exit closes it: booked as a backtest trade.

    Fills at the alert bar's closes (no delay), the hedge of its signal
    (``signal_hedge_ratio``), ``PAPER_COSTS``. An entry without a signal model or
    prices (an alert stored before signals) books nothing.
    """
    price_a, price_b, bar = snapshot.price_a, snapshot.price_b, snapshot.as_of
    if price_a is None or price_b is None or bar is None:
        return None
    open_position = PaperPosition.objects.select_for_update().filter(pair=pair, exit_time__isnull=True).first()
    if alert.kind == Alert.Kind.ENTRY:
        if open_position is not None or snapshot.signal_hedge_ratio is None:
            return None
        booked = position_open(
            direction=alert.direction,
            hedge_ratio=snapshot.signal_hedge_ratio,
            entry_time=bar,
            signal_price_a=price_a,
            close_a=price_a,
            close_b=price_b,
            costs=PAPER_COSTS,
        )
        return PaperPosition.objects.create(
            pair=pair,
            entry_alert=alert,
            **{f.name: getattr(booked, f.name) for f in dataclasses.fields(Position)},
            fee_bps=PAPER_COSTS.fee_bps,
            slippage_bps=PAPER_COSTS.slippage_bps,
            notional=PAPER_COSTS.notional,
        )
    if open_position is None:
        return None
    trade = position_close(
        _booked(open_position),
        exit_time=bar,
        reason=alert.reason,
        close_a=price_a,
        close_b=price_b,
        funding=0.0,
        costs=Costs(
            fee_bps=open_position.fee_bps, slippage_bps=open_position.slippage_bps, notional=open_position.notional
        ),
        bars=(bar - open_position.entry_time) // INTERVALS[pair.interval],
    )
    open_position.exit_alert = alert
    for name in ("exit_time", "exit_price_a", "exit_price_b", "fees", "funding", "pnl", "reason"):
        setattr(open_position, name, getattr(trade, name))
    open_position.save()
    return open_position


def _booked(row: PaperPosition) -> Position:
    return Position(**{f.name: getattr(row, f.name) for f in dataclasses.fields(Position)})


def _position_mark(pair: Pair, snapshot: PairSnapshot) -> None:
    """The pair's open paper position marked at the snapshot bar's closes: unrealised PnL and its own spread."""
    price_a, price_b, bar = snapshot.price_a, snapshot.price_b, snapshot.as_of
    if price_a is None or price_b is None or bar is None:
        return
    row = PaperPosition.objects.filter(pair=pair, exit_time__isnull=True).first()
    if row is None or (row.mark_time is not None and row.mark_time >= bar):
        return
    row.mark_time, row.mark_price_a, row.mark_price_b = bar, price_a, price_b
    row.unrealised_pnl = position_mark(_booked(row), price_a, price_b)
    row.spread = price_a - row.hedge_ratio * price_b
    row.save(update_fields=["mark_time", "mark_price_a", "mark_price_b", "unrealised_pnl", "spread", "updated_at"])


def position_payload(row: PaperPosition) -> dict[str, Any]:
    """A paper position as the API shows it."""
    return {
        "id": row.pk,
        "pair": row.pair_id,
        "direction": row.direction,
        "opened_at": row.entry_time,  # the entry alert's bar (ms)
        "closed_at": row.exit_time,  # the exit alert's bar (ms), null while open
        "open": row.is_open,
        **{
            name: getattr(row, name)
            for name in (
                "hedge_ratio", "qty_a", "qty_b", "entry_price_a", "entry_price_b", "entry_fees", "fee_bps",
                "slippage_bps", "notional", "mark_time", "mark_price_a", "mark_price_b", "unrealised_pnl", "spread",
                "exit_price_a", "exit_price_b", "fees", "funding", "reason",
            )
        },
        "realised_pnl": row.pnl,
        "unrealised_pct": None if row.unrealised_pnl is None else 100 * row.unrealised_pnl / row.notional,
        "entry_alert": row.entry_alert_id,
        "exit_alert": row.exit_alert_id,
    }  # fmt: skip


def alert_payload(alert: Alert) -> dict[str, Any]:
    """An alert as the API, the push and the webhook show it."""
    return {
        "id": alert.id,
        "pair": alert.pair_id,
        "kind": alert.kind,
        "direction": alert.direction,
        "reason": alert.reason,
        "created_at": int(alert.created_at.timestamp() * 1000),
        "bar_time": alert.bar_time,
        "signal_zscore": alert.signal_zscore,
        "zscore": alert.zscore,
        "adf_pvalue": alert.adf_pvalue,
        "coint_pvalue": alert.coint_pvalue,
        "correlation": alert.correlation,
        "related_run": alert.related_run,
        "hedge_ratio": alert.hedge_ratio,
        "message": alert.message,
    }


# -- notifications: webhook, e-mail, Telegram ---------------------------------------
#
# An alert is told through each channel its pair has when it fires: a Notification
# row per channel, made with the alert. Each is then delivered on its own, off the
# analytics cycle, by the one path below: ``notification_deliver`` makes one
# attempt through the channel's sender and records it; the Celery task
# (distributed mode) or ``notification_deliver_with_retries`` (embedded mode)
# repeat it by ``DELIVERY_RETRY``.


def notification_channels(pair: Pair) -> list[str]:
    """The channels ``pair``'s alerts go through, as it is set now."""
    configured = {
        Notification.Channel.WEBHOOK: pair.webhook_url,
        Notification.Channel.EMAIL: pair.email_recipients,
        Notification.Channel.TELEGRAM: pair.telegram_chat_id,
    }
    return [channel for channel, setting in configured.items() if setting]


def notifications_create(alert: Alert) -> list[Notification]:
    """A pending notification of ``alert`` for each channel of its pair."""
    return Notification.objects.bulk_create(
        [Notification(alert=alert, channel=channel) for channel in notification_channels(alert.pair)]
    )


def alert_notifications_dispatch(*, alert: Alert, deliveries: Executor | None = None) -> None:
    """Hand each notification of the alert still to send to a worker of its own (never the snapshot cycle).

    ``deliveries``: embedded mode's stand-in for a Celery worker, threads of this
    process that deliver with ``DELIVERY_RETRY`` as the Celery task does; None sends
    each to the Celery task (distributed mode).
    """
    pending = Notification.objects.filter(alert=alert, status=Notification.Status.PENDING)
    for notification_id in pending.values_list("id", flat=True):
        if deliveries is None:
            from .tasks import alert_notification_task  # the tasks module builds on this one

            alert_notification_task.delay(notification_id)
        else:
            deliveries.submit(notification_deliver_with_retries, notification_id)


class DeliveryError:
    """What a failed attempt stores on its notification: a class, never the exception's text.

    The text of a connection error tells a closed port from a filtered one and
    carries addresses: shown to whoever can read alerts, it would make webhooks a
    port scanner. The log keeps the detail (with the host only, and no token).
    """

    REFUSED = "refused by the egress policy"
    CONNECT = "could not connect"
    TLS = "TLS handshake failed"
    TIMEOUT = "timed out"
    INVALID = "invalid response"
    GONE = "not configured on the pair any more"
    CRASHED = "failed unexpectedly (see the log)"


class SendError(Exception):
    """A channel's attempt failed: ``error`` (a ``DeliveryError`` class or the like) is stored, ``detail`` logged.

    ``retry``: whether another attempt may go through; ``retry_after``: the seconds
    the receiver asked to be left alone, when it said.
    """

    def __init__(self, error: str, detail: str = "", *, retry: bool = True, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail
        self.retry = retry
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a receiver answered a POST: its status and headers, and the start of its body when asked for."""

    status: int
    headers: httpx.Headers
    body: bytes = b""


def pinned_post(
    target: Target,
    payload: dict[str, Any],
    *,
    timeout: float,
    verify: ssl.SSLContext | bool = True,
    agent: str = "pairs-webhook",
    read: int = 0,
) -> Answer:
    """POST ``payload`` as JSON to ``target``'s checked address; the answer, with at most ``read`` bytes of its body.

    The connection goes to the address the policy checked (no second resolution),
    with the URL's name in the Host header and as TLS SNI, and the certificate is
    verified against that name. Redirects are not followed, proxies from the
    environment are not used, and ``timeout`` bounds the whole exchange (a receiver
    trickling its headers or its body cannot hold a worker longer).
    """

    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    context = _tls_context() if verify is True else verify

    async def post() -> Answer:
        async with httpx.AsyncClient(
            timeout=timeout, verify=context, trust_env=False, follow_redirects=False
        ) as client:
            async with (
                asyncio.timeout(timeout),
                client.stream(
                    "POST",
                    target.pinned_url,
                    json=payload,
                    headers={"Host": target.netloc, "User-Agent": agent},
                    extensions=extensions,
                ) as response,
            ):
                body = b""
                if read > 0:
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= read:
                            break
                return Answer(response.status_code, response.headers, body[:read])

    return asyncio.run(post())


def webhook_post(
    target: Target, payload: dict[str, Any], *, timeout: float, verify: ssl.SSLContext | bool = True
) -> int:
    """POST ``payload`` as JSON to ``target``'s checked address (``pinned_post``); the answer's status.

    The answer's body is never read.
    """
    return pinned_post(target, payload, timeout=timeout, verify=verify).status


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once (loading the CA bundle takes ~0.1 s)."""
    return httpx.create_ssl_context()


def _http_error(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return DeliveryError.TIMEOUT
    if isinstance(exc, httpx.ConnectError):
        cause = exc.__cause__ or exc.__context__
        return DeliveryError.TLS if isinstance(cause, ssl.SSLError) else DeliveryError.CONNECT
    return DeliveryError.INVALID


def _egress_error(exc: egress.EgressRefused) -> SendError:
    """A URL the policy refuses is final; a name that does not resolve (now) may resolve at the next attempt."""
    if isinstance(exc, egress.HostUnresolved):
        return SendError(DeliveryError.CONNECT, str(exc))
    return SendError(DeliveryError.REFUSED, str(exc), retry=False)


# -- the webhook --


def _webhook_send(alert: Alert) -> None:
    """The alert's payload POSTed to its pair's webhook; any answer but 2xx is a failure.

    The URL passes the egress policy again first (its name is resolved again: an
    answer that changed since the pair was saved is caught here).
    """
    url = alert.pair.webhook_url
    if not url:
        raise SendError(DeliveryError.GONE, "the pair has no webhook_url", retry=False)
    try:
        status = webhook_post(webhook_target(url), alert_payload(alert), timeout=settings.ALERT_WEBHOOK_TIMEOUT)
    except egress.EgressRefused as exc:
        raise _egress_error(exc) from exc
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        detail = urls_redacted(f"{exc.__class__.__name__}: {exc}")  # in case an error quotes the URL
        raise SendError(_http_error(exc), detail) from exc
    if not 200 <= status < 300:
        error = f"HTTP {status} from the receiver"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
        raise SendError(error, f"answered {status}")


# -- e-mail --


def _email_send(alert: Alert) -> None:
    """The alert in words, e-mailed to its pair's recipients through Django's mail backend.

    An SMTP server's 4xx answer (try again later) is retried, its 5xx (refused for
    good: an unknown mailbox, a failed login) is final.
    """
    recipients = alert.pair.email_recipient_list
    if not recipients:
        raise SendError(DeliveryError.GONE, "the pair has no e-mail recipients", retry=False)
    subject, body = alert_message(alert)
    message = EmailMessage(subject, body, to=recipients)
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise SendError(
            f"recipients refused by the mail server (SMTP {', '.join(map(str, codes))})",
            f"refused: {exc.recipients!r}",
            retry=any(400 <= code < 500 for code in codes),
        ) from exc
    except smtplib.SMTPConnectError as exc:
        raise SendError(DeliveryError.CONNECT, f"{exc.smtp_code} {exc.smtp_error!r}") from exc
    except smtplib.SMTPResponseException as exc:  # sender or message refused, login failed...
        code = exc.smtp_code
        later = 400 <= code < 500
        raise SendError(
            f"{'deferred' if later else 'refused'} by the mail server (SMTP {code})",
            f"{exc.__class__.__name__}: {code} {exc.smtp_error!r}",
            retry=later,
        ) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise SendError(DeliveryError.CONNECT, f"disconnected: {exc}") from exc
    except smtplib.SMTPException as exc:
        raise SendError(DeliveryError.INVALID, f"{exc.__class__.__name__}: {exc}") from exc
    except ssl.SSLError as exc:
        raise SendError(DeliveryError.TLS, f"{exc.__class__.__name__}: {exc}") from exc
    except TimeoutError as exc:
        raise SendError(DeliveryError.TIMEOUT, f"{exc.__class__.__name__}: {exc}") from exc
    except OSError as exc:
        raise SendError(DeliveryError.CONNECT, f"{exc.__class__.__name__}: {exc}") from exc


# -- Telegram --

#: The most of a Telegram answer read: its JSON is a few hundred bytes.
TELEGRAM_ANSWER_MAX = 64 * 1024

#: The longest text ``sendMessage`` takes.
TELEGRAM_TEXT_MAX = 4096

#: Telegram's refusals that another attempt cannot mend, and what to check.
TELEGRAM_REFUSALS = {
    400: "check the chat id",
    401: "check TELEGRAM_BOT_TOKEN",
    403: "the bot may not write to this chat",
    404: "check TELEGRAM_BOT_TOKEN",
}


def telegram_target() -> Target:
    """Where ``sendMessage`` is POSTed, by the webhooks' egress policy; raises ``egress.EgressRefused``.

    The URL holds the bot's token: it is never logged (``_token_masked``).
    """
    token = quote(settings.TELEGRAM_BOT_TOKEN, safe=":")
    return egress.check_url(
        f"{settings.TELEGRAM_API_URL}/bot{token}/sendMessage",
        allow_private=settings.ALERT_WEBHOOK_ALLOW_PRIVATE,
        allow_loopback=settings.ALERT_WEBHOOK_ALLOW_LOOPBACK,
        own_hosts=settings.ALLOWED_HOSTS,
        noun="Telegram API",
        rule="Telegram is only reached at public addresses",
    )


def _token_masked(text: str) -> str:
    token = settings.TELEGRAM_BOT_TOKEN
    return text.replace(token, MASK).replace(quote(token, safe=":"), MASK) if token else text


def _telegram_send(alert: Alert) -> None:
    """The alert in words, sent to its pair's Telegram chat by the bot (``sendMessage``).

    A 429 is retried no sooner than Telegram's ``retry_after``; a 400/401/403/404
    (wrong chat, wrong token, bot not in the chat) is final.
    """
    chat_id = alert.pair.telegram_chat_id
    if not chat_id:
        raise SendError(DeliveryError.GONE, "the pair has no telegram_chat_id", retry=False)
    if not settings.TELEGRAM_BOT_TOKEN:
        raise SendError("not configured: TELEGRAM_BOT_TOKEN is not set", retry=False)
    subject, body = alert_message(alert)
    payload = {
        "chat_id": chat_id,
        "text": f"{subject}\n\n{body}"[:TELEGRAM_TEXT_MAX],
        "link_preview_options": {"is_disabled": True},
    }
    try:
        answer = pinned_post(
            telegram_target(),
            payload,
            timeout=settings.ALERT_WEBHOOK_TIMEOUT,
            agent="pairs-telegram",
            read=TELEGRAM_ANSWER_MAX,
        )
    except egress.EgressRefused as exc:
        raise _egress_error(exc) from exc
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        detail = _token_masked(urls_redacted(f"{exc.__class__.__name__}: {exc}"))
        raise SendError(_http_error(exc), detail) from exc
    try:
        said = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        said = None
    said = said if isinstance(said, dict) else {}
    if answer.status == 200 and said.get("ok") is True:
        return
    detail = _token_masked(f"answered {answer.status}: {said.get('description', '(no description)')}")
    if answer.status == 429:
        retry_after = _telegram_retry_after(said, answer.headers)
        wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
        raise SendError(f"rate limited by Telegram (HTTP 429{wait})", detail, retry_after=retry_after)
    if answer.status in TELEGRAM_REFUSALS:
        raise SendError(f"HTTP {answer.status} from Telegram ({TELEGRAM_REFUSALS[answer.status]})", detail, retry=False)
    if answer.status == 200:
        raise SendError(DeliveryError.INVALID, detail)
    raise SendError(f"HTTP {answer.status} from Telegram", detail)


def _telegram_retry_after(said: dict[str, Any], headers: httpx.Headers) -> float | None:
    """The seconds a 429 asks to wait: ``parameters.retry_after`` of its JSON, else its ``Retry-After``."""
    parameters = said.get("parameters")
    candidates = [parameters.get("retry_after") if isinstance(parameters, dict) else None, headers.get("retry-after")]
    for value in candidates:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


# -- the message --


def alert_message(alert: Alert) -> tuple[str, str]:
    """What an alert says to a trader (the subject of its e-mail and the body; Telegram sends both).

    What happened on which pair, the direction with its legs, the signal z, the
    Engle-Granger p-value, the hedge ratio, the bar's time in UTC, the rule's own
    words, and a link to the pair's page when ``PUBLIC_BASE_URL`` is set.
    """
    pair = alert.pair
    name = f"{pair.symbol_a}/{pair.symbol_b} {pair.interval}"
    legs = direction_text(alert.direction, pair.symbols)
    if alert.signal_zscore is not None:
        z = f"signal z {alert.signal_zscore:+.2f}"
    else:  # an alert recorded before signals
        z = "in-sample z " + ("—" if alert.zscore is None else f"{alert.zscore:+.2f}")
    if alert.kind == Alert.Kind.ENTRY:
        subject = f"Entry {name}: {legs}, {z}"
        headline = f"Entry on {name}: {legs}."
    else:
        reason = Alert.Reason(alert.reason).label
        subject = f"Exit {name} ({reason}): close the {legs}"
        headline = f"Exit on {name} ({reason}): close the {legs}."
    lines = [
        headline,
        "",
        f"{z[0].upper()}{z[1:]}",
        f"EG p-value {pvalue_text(alert.coint_pvalue)}",
        "Hedge ratio " + ("—" if alert.hedge_ratio is None else f"{alert.hedge_ratio:.4f}"),
        f"Bar {utc_text(alert.bar_time)} UTC ({pair.interval})",
        "",
        alert.message,
    ]
    if settings.PUBLIC_BASE_URL:
        lines += ["", f"{settings.PUBLIC_BASE_URL}{reverse('dashboard-pair', args=[pair.id])}"]
    return subject, "\n".join(lines)


# -- one attempt, and its retries --


@dataclasses.dataclass(frozen=True)
class Sender:
    """A channel: what sends an alert through it, and where to, for the log (no secret)."""

    send: Callable[[Alert], None]
    where: Callable[[Pair], str]


SENDERS: dict[str, Sender] = {
    # A webhook URL's path is its credential (Slack, Discord...): the log names the host only.
    Notification.Channel.WEBHOOK: Sender(_webhook_send, lambda pair: url_redacted(pair.webhook_url)),
    Notification.Channel.EMAIL: Sender(_email_send, lambda pair: f"{len(pair.email_recipient_list)} recipient(s)"),
    Notification.Channel.TELEGRAM: Sender(_telegram_send, lambda pair: f"chat {pair.telegram_chat_id}"),
}


def notification_deliver(*, notification_id: int, final: bool = True) -> None:
    """One attempt of one notification, recorded on it; raises ``DeliveryFailed`` when another is due.

    A failure another attempt cannot mend (refused by the egress policy, refused
    for good by the receiver, the channel gone from the pair) is final at once:
    recorded, logged, not retried; so is any failure when ``final``.
    """
    notification = Notification.objects.select_related("alert__pair").get(id=notification_id)
    if notification.status != Notification.Status.PENDING:
        return
    alert, sender = notification.alert, SENDERS[notification.channel]
    notification.attempts += 1
    try:
        sender.send(alert)
    except Exception as exc:
        failure = exc if isinstance(exc, SendError) else SendError(DeliveryError.CRASHED, retry=False)
        if not isinstance(exc, SendError):
            logger.exception("%s of alert %s crashed", notification.channel, alert.id)
        waits_too_long = failure.retry_after is not None and failure.retry_after > DELIVERY_RETRY.backoff_max
        again = failure.retry and not final and not waits_too_long
        notification.error = f"attempt {notification.attempts}: {failure.error}"
        notification.status = Notification.Status.PENDING if again else Notification.Status.FAILED
        notification.save(update_fields=["attempts", "error", "status", "updated_at"])
        logger.warning(
            "%s of alert %s to %s failed: %s (%s)",
            notification.channel,
            alert.id,
            sender.where(alert.pair),
            notification.error,
            failure.detail,
        )
        if again:
            raise DeliveryFailed(notification.error, failure.retry_after) from exc
        return
    notification.status = Notification.Status.SENT
    notification.error = ""
    notification.sent_at = timezone.now()
    notification.save(update_fields=["attempts", "error", "status", "sent_at", "updated_at"])


def notification_deliver_with_retries(notification_id: int) -> None:
    """Embedded mode's delivery worker: ``DELIVERY_RETRY``, as the Celery task runs it."""
    policy = DELIVERY_RETRY
    try:
        for retries in range(policy.attempts):
            try:
                notification_deliver(notification_id=notification_id, final=retries == policy.attempts - 1)
                return
            except DeliveryFailed as exc:
                time.sleep(policy.wait(retries, exc.retry_after))
    except Exception:
        logger.exception("delivery of notification %s crashed", notification_id)
    finally:
        close_old_connections()
