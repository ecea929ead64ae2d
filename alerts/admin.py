from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from pairs_project.common.admin import ReadOnlyAdmin

from .models import Alert, AlertState, Notification, PaperPosition


class NotificationInline(admin.TabularInline):
    """Each channel the alert was sent through, and how that went."""

    model = Notification
    fields = ["channel", "status", "attempts", "error", "sent_at", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Read-only: alerts are records of what the rule saw."""

    list_display = [
        "created_at",
        "pair",
        "kind",
        "direction",
        "reason",
        "signal_zscore",
        "zscore",
        "adf_pvalue",
        "coint_pvalue",
        "correlation",
        "related_run",
        "notifications_shown",
    ]
    list_filter = [
        "pair",
        "kind",
        "direction",
        "reason",
        "notifications__channel",
        "notifications__status",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["message"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [NotificationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        return super().get_queryset(request).prefetch_related("notifications")

    @admin.display(description="notifications")
    def notifications_shown(self, alert: Alert) -> str:
        """Each channel and its state: "webhook sent, e-mail failed (attempt 5: could not connect)"."""
        parts = []
        for n in alert.notifications.all():
            failure = f" ({n.error})" if n.error else ""
            parts.append(f"{n.get_channel_display()} {n.status}{failure}")
        return ", ".join(parts) or "none"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only: each alert's delivery through each channel of its pair."""

    list_display = ["alert", "channel", "status", "attempts", "error", "sent_at", "updated_at"]
    list_filter = ["channel", "status"]
    readonly_fields = [f.name for f in Notification._meta.fields]


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["pair", "state", "updated_at"]


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdmin):
    """Read-only: each live entry alert, booked as a backtest trade."""

    list_display = ["entry_time", "pair", "direction", "hedge_ratio", "unrealised_pnl", "exit_time", "reason", "pnl"]
    list_filter = ["pair", "direction", "reason"]
    readonly_fields = [f.name for f in PaperPosition._meta.fields]
