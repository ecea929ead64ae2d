"""Reads of alerts and rule states."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from .models import Alert, AlertState, PaperPosition
from .rules import RuleState


def alerts_newest(*, pair_id: int | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.order_by("-created_at", "-id")
    return alerts.filter(pair_id=pair_id) if pair_id is not None else alerts


def alerts_filtered(
    *,
    pair_id: int | None = None,
    kind: str | None = None,
    direction: str | None = None,
    reason: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Alert]:
    """Alerts newest first, narrowed by each filter given (from inclusive, before exclusive), with their
    pair and notifications."""
    alerts = alerts_newest(pair_id=pair_id).select_related("pair").prefetch_related("notifications")
    if kind is not None:
        alerts = alerts.filter(kind=kind)
    if direction is not None:
        alerts = alerts.filter(direction=direction)
    if reason is not None:
        alerts = alerts.filter(reason=reason)
    if created_from is not None:
        alerts = alerts.filter(created_at__gte=created_from)
    if created_before is not None:
        alerts = alerts.filter(created_at__lt=created_before)
    return alerts


def positions_newest(*, pair_id: int) -> QuerySet[PaperPosition]:
    """A pair's paper positions, the newest entry first (as ``/api/positions/`` lists them)."""
    return PaperPosition.objects.filter(pair_id=pair_id).order_by("-entry_time", "-id")


def open_entries() -> dict[int, RuleState]:
    """The rule state of every pair that has an open entry (the pair is 'alerting')."""
    states = {}
    for pair_id, data in AlertState.objects.values_list("pair_id", "state"):
        state = RuleState.from_dict(data)
        if state.open_direction is not None:
            states[pair_id] = state
    return states


def rule_state(*, pair_id: int) -> RuleState:
    """The alert rule's stored state of one pair (a fresh, armed one before its first snapshot)."""
    data = AlertState.objects.filter(pair_id=pair_id).values_list("state", flat=True).first()
    return RuleState.from_dict(data)


def latest_alerts(pair_ids: list[int]) -> dict[int, Alert]:
    """The newest alert of each pair that has one."""
    latest: dict[int, Alert] = {}
    for pair_id in pair_ids:
        alert = alerts_newest(pair_id=pair_id).first()
        if alert is not None:
            latest[pair_id] = alert
    return latest
