"""Thin Celery tasks of the alerts app (distributed mode)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(bind=True, ignore_result=True, max_retries=services.DELIVERY_RETRY.attempts - 1)
def alert_notification_task(self, notification_id: int) -> None:
    """One attempt of one notification; retried by ``DELIVERY_RETRY``, as embedded mode retries it."""
    retries = self.request.retries
    try:
        services.notification_deliver(notification_id=notification_id, final=retries >= self.max_retries)
    except services.DeliveryFailed as exc:
        raise self.retry(exc=exc, countdown=services.DELIVERY_RETRY.wait(retries, exc.retry_after)) from None
