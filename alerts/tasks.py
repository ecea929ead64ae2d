"""Thin Celery tasks of the alerts app (distributed mode)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(bind=True, ignore_result=True, **services.WEBHOOK_RETRY.celery_options((services.WebhookFailed,)))
def alert_webhook_task(self, alert_id: int) -> None:
    services.alert_webhook_deliver(alert_id=alert_id, final=self.request.retries >= self.max_retries)
