"""Alert work that touches the database: evaluate the rule, record, deliver webhooks."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import httpx
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import close_old_connections, transaction

from analytics import services as analytics_services
from analytics.backtest import Costs, Position, position_close, position_mark, position_open
from analytics.bars import INTERVALS
from analytics.models import Pair, webhook_target
from analytics.snapshot import PairSnapshot, snapshot_json
from pairs_project.common import egress
from pairs_project.common.egress import Target
from pairs_project.common.masking import url_redacted, urls_redacted

from .models import Alert, AlertState, PaperPosition
from .rules import Event, RuleState, Thresholds, evaluate

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Attempts in all, and exponential backoff between them with full jitter.

    The one definition both modes run: Celery's task options (``celery_options``,
    distributed mode) and the embedded runner's waits (``countdown``, Celery's own
    formula), so a webhook is retried the same way in either.
    """

    attempts: int
    backoff: float  # seconds before the first retry, at most (full jitter; whole seconds, as Celery)
    backoff_max: float

    def countdown(self, retries: int) -> float:
        """Seconds to wait before retry number ``retries + 1``, as Celery's ``retry_backoff`` waits."""
        # Celery's autoretry takes the factor as whole seconds, at least 1, and so does this.
        factor = int(max(1.0, self.backoff))
        return float(get_exponential_backoff_interval(factor, retries, int(self.backoff_max), full_jitter=True))

    def celery_options(self, retry_on: tuple[type[Exception], ...]) -> dict[str, Any]:
        return {
            "autoretry_for": retry_on,
            "retry_backoff": self.backoff,
            "retry_backoff_max": self.backoff_max,
            "retry_jitter": True,
            "max_retries": self.attempts - 1,
        }


#: Webhook delivery.
WEBHOOK_RETRY = RetryPolicy(attempts=5, backoff=2.0, backoff_max=60.0)


class WebhookFailed(Exception):
    pass


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
    as the alerts, so two workers (or a restart that replays a snapshot) cannot
    fire the same entry twice.
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
                    "webhook_status": Alert.WebhookStatus.PENDING if pair.webhook_url else Alert.WebhookStatus.NONE,
                },
            )
            if created:
                alerts.append(alert)
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


def alert_webhook_dispatch(*, alert: Alert, deliveries: Executor | None = None) -> None:
    """Hand the alert's webhook, if it has one to send, to its own worker (never the snapshot cycle).

    ``deliveries``: embedded mode's stand-in for a Celery worker, threads of this
    process that deliver with ``WEBHOOK_RETRY`` as the Celery task does; None sends
    it to the Celery task (distributed mode).
    """
    if alert.webhook_status != Alert.WebhookStatus.PENDING:
        return
    if deliveries is None:
        from .tasks import alert_webhook_task  # the tasks module builds on this one

        alert_webhook_task.delay(alert.id)
    else:
        deliveries.submit(alert_webhook_deliver_with_retries, alert.id)


class WebhookError:
    """What a failed delivery stores on the alert: a class, never the exception's text.

    The text of a connection error tells a closed port from a filtered one and
    carries addresses: shown to whoever can read alerts, it would make webhooks a
    port scanner. The log keeps the detail (with the host only).
    """

    REFUSED = "refused by the egress policy"
    CONNECT = "could not connect"
    TLS = "TLS handshake failed"
    TIMEOUT = "timed out"
    INVALID = "invalid response"


def webhook_post(
    target: Target, payload: dict[str, Any], *, timeout: float, verify: ssl.SSLContext | bool = True
) -> int:
    """POST ``payload`` as JSON to ``target``'s checked address; return the answer's status.

    The connection goes to the address the policy checked (no second resolution),
    with the URL's name in the Host header and as TLS SNI, and the certificate is
    verified against that name. Redirects are not followed, proxies from the
    environment are not used, the answer's body is never read, and ``timeout``
    bounds the whole exchange (a receiver trickling its headers cannot hold a
    worker longer).
    """

    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    context = _tls_context() if verify is True else verify

    async def post() -> int:
        async with httpx.AsyncClient(
            timeout=timeout, verify=context, trust_env=False, follow_redirects=False
        ) as client:
            async with (
                asyncio.timeout(timeout),
                client.stream(
                    "POST",
                    target.pinned_url,
                    json=payload,
                    headers={"Host": target.netloc, "User-Agent": "pairs-webhook"},
                    extensions=extensions,
                ) as response,
            ):
                return response.status_code

    return asyncio.run(post())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once (loading the CA bundle takes ~0.1 s)."""
    return httpx.create_ssl_context()


def _webhook_error(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return WebhookError.TIMEOUT
    if isinstance(exc, httpx.ConnectError):
        cause = exc.__cause__ or exc.__context__
        return WebhookError.TLS if isinstance(cause, ssl.SSLError) else WebhookError.CONNECT
    return WebhookError.INVALID


def alert_webhook_deliver(*, alert_id: int, final: bool = True) -> None:
    """One delivery attempt; raises ``WebhookFailed`` (recorded on the alert) when it may be retried.

    The URL passes the egress policy again first (its name is resolved again: an
    answer that changed since the pair was saved is caught here), and a refusal is
    final: recorded, logged, not retried.
    """
    alert = Alert.objects.select_related("pair").get(id=alert_id)
    if alert.webhook_status == Alert.WebhookStatus.SENT or not alert.pair.webhook_url:
        return
    alert.webhook_attempts += 1
    url = alert.pair.webhook_url
    # A webhook URL's path is its credential (Slack, Discord...): the log names the host only.
    where = url_redacted(url)

    def failed(error: str, detail: str, *, retry: bool) -> None:
        alert.webhook_error = f"attempt {alert.webhook_attempts}: {error}"
        alert.webhook_status = Alert.WebhookStatus.PENDING if retry and not final else Alert.WebhookStatus.FAILED
        alert.save(update_fields=["webhook_attempts", "webhook_error", "webhook_status"])
        logger.warning("webhook of alert %s to %s failed: %s (%s)", alert.id, where, alert.webhook_error, detail)

    try:
        target = webhook_target(url)
        status = webhook_post(target, alert_payload(alert), timeout=settings.ALERT_WEBHOOK_TIMEOUT)
    except egress.EgressRefused as exc:
        if not isinstance(exc, egress.HostUnresolved):
            failed(WebhookError.REFUSED, str(exc), retry=False)
            return
        failed(WebhookError.CONNECT, str(exc), retry=True)
        raise WebhookFailed(alert.webhook_error) from exc
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        detail = urls_redacted(f"{exc.__class__.__name__}: {exc}")  # in case an error quotes the URL
        failed(_webhook_error(exc), detail, retry=True)
        raise WebhookFailed(alert.webhook_error) from exc
    if not 200 <= status < 300:
        error = f"HTTP {status} from the receiver"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
        failed(error, f"answered {status}", retry=True)
        raise WebhookFailed(alert.webhook_error)
    alert.webhook_status = Alert.WebhookStatus.SENT
    alert.webhook_error = ""
    alert.save(update_fields=["webhook_attempts", "webhook_error", "webhook_status"])


def alert_webhook_deliver_with_retries(alert_id: int) -> None:
    """Embedded mode's webhook worker: ``WEBHOOK_RETRY``, as the Celery task runs it."""
    policy = WEBHOOK_RETRY
    try:
        for retries in range(policy.attempts):
            try:
                alert_webhook_deliver(alert_id=alert_id, final=retries == policy.attempts - 1)
                return
            except WebhookFailed:
                if retries < policy.attempts - 1:
                    time.sleep(policy.countdown(retries))
    except Exception:
        logger.exception("webhook delivery of alert %s crashed", alert_id)
    finally:
        close_old_connections()
