"""Alert work that touches the database: evaluate the rule, record, push, deliver webhooks."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from django.conf import settings
from django.db import close_old_connections, transaction

from analytics.models import Pair
from dashboard.broadcast import broadcast
from pairs_project.security import url_redacted

from .models import Alert, AlertState
from .rules import RuleState, Thresholds, evaluate

logger = logging.getLogger(__name__)

#: Webhook delivery: attempts in all, and the backoff between them (seconds).
WEBHOOK_ATTEMPTS = 5
WEBHOOK_BACKOFF = 2.0
WEBHOOK_BACKOFF_MAX = 60.0


class WebhookFailed(Exception):
    pass


def thresholds_of(pair: Pair) -> Thresholds:
    return Thresholds(
        entry_z=pair.entry_z,
        exit_z=pair.exit_z,
        min_correlation=pair.min_correlation,
        max_adf_pvalue=pair.max_adf_pvalue,
    )


def alert_rule_evaluate(*, pair: Pair, snapshot: dict[str, Any]) -> list[Alert]:
    """Run the pair's rule on ``snapshot``; record, push and deliver what fires.

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
                bar_time=snapshot["as_of"],
                defaults={
                    "direction": event.direction,
                    "reason": event.reason,
                    "zscore": snapshot["zscore"],
                    "adf_pvalue": snapshot.get("adf_pvalue"),
                    "correlation": snapshot.get("correlation"),
                    "hedge_ratio": snapshot.get("hedge_ratio"),
                    "message": event.message,
                    "snapshot": snapshot,
                    "webhook_status": Alert.WebhookStatus.PENDING if pair.webhook_url else Alert.WebhookStatus.NONE,
                },
            )
            if created:
                alerts.append(alert)
                logger.info("alert %s: %s", alert.id, alert.message)
                transaction.on_commit(lambda alert=alert: alert_publish(alert=alert))
    return alerts


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
        "zscore": alert.zscore,
        "adf_pvalue": alert.adf_pvalue,
        "correlation": alert.correlation,
        "hedge_ratio": alert.hedge_ratio,
        "message": alert.message,
    }


def alert_publish(*, alert: Alert) -> None:
    """Push to the pair's dashboards and hand the webhook to its own worker (never this cycle)."""
    broadcast(alert.pair_id, "alert.new", alert_payload(alert))
    if alert.webhook_status != Alert.WebhookStatus.PENDING:
        return
    if settings.RUN_MODE == "distributed":
        from .tasks import alert_webhook_task

        alert_webhook_task.delay(alert.id)
    else:
        _embedded_webhooks().submit(_deliver_with_retries, alert.id)


def alert_webhook_deliver(*, alert_id: int, final: bool = True) -> None:
    """One delivery attempt; raises ``WebhookFailed`` (recorded on the alert) when it fails."""
    alert = Alert.objects.select_related("pair").get(id=alert_id)
    if alert.webhook_status == Alert.WebhookStatus.SENT or not alert.pair.webhook_url:
        return
    alert.webhook_attempts += 1
    try:
        response = httpx.post(
            alert.pair.webhook_url, json=alert_payload(alert), timeout=settings.ALERT_WEBHOOK_TIMEOUT
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        # A webhook URL's path is its credential (Slack, Discord...): name the host only.
        url = alert.pair.webhook_url
        error = str(exc)
        for spelling in {url, str(httpx.URL(url))}:  # as given, and as httpx prints it
            error = error.replace(spelling, url_redacted(url))
        alert.webhook_error = f"attempt {alert.webhook_attempts}: {exc.__class__.__name__}: {error}"[:1000]
        alert.webhook_status = Alert.WebhookStatus.FAILED if final else Alert.WebhookStatus.PENDING
        alert.save(update_fields=["webhook_attempts", "webhook_error", "webhook_status"])
        logger.warning("webhook of alert %s to %s failed: %s", alert.id, url_redacted(url), alert.webhook_error)
        raise WebhookFailed(alert.webhook_error) from exc
    alert.webhook_status = Alert.WebhookStatus.SENT
    alert.webhook_error = ""
    alert.save(update_fields=["webhook_attempts", "webhook_error", "webhook_status"])


def webhook_backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return min(WEBHOOK_BACKOFF_MAX, WEBHOOK_BACKOFF * 2 ** (attempt - 1))


_pool: ThreadPoolExecutor | None = None


def _embedded_webhooks() -> ThreadPoolExecutor:
    """Embedded mode's stand-in for a Celery worker: webhooks wait here, not in the analytics cycle."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")
    return _pool


def _deliver_with_retries(alert_id: int) -> None:
    try:
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                alert_webhook_deliver(alert_id=alert_id, final=attempt == WEBHOOK_ATTEMPTS)
                return
            except WebhookFailed:
                if attempt < WEBHOOK_ATTEMPTS:
                    time.sleep(webhook_backoff(attempt))
    except Exception:
        logger.exception("webhook delivery of alert %s crashed", alert_id)
    finally:
        close_old_connections()
