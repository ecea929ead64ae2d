"""Thin Celery tasks of the alerts app (distributed mode)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(
    bind=True,
    ignore_result=True,
    autoretry_for=(services.WebhookFailed,),
    retry_backoff=services.WEBHOOK_BACKOFF,
    retry_backoff_max=services.WEBHOOK_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=services.WEBHOOK_ATTEMPTS - 1,
)
def alert_webhook_task(self, alert_id: int) -> None:
    services.alert_webhook_deliver(alert_id=alert_id, final=self.request.retries >= self.max_retries)
