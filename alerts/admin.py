from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from pairs_project.common.admin import (
    ReadOnlyAdmin,
    as_is,
    fixed,
    json_entry,
    money,
    ms_time,
    price,
    pvalue,
    quantity,
    ratio,
    utc_time,
    words,
    yes_no,
    zscore,
)
from pairs_project.common.display import datetime_text

from .models import Alert, AlertState, Notification, PaperPosition


class NotificationInline(admin.TabularInline):
    """Each channel the alert was sent through, and how that went."""

    model = Notification
    fields = ["channel", "status", "attempts", "error", "sent", "updated"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="sent")
    def sent(self, notification: Notification) -> str:
        return datetime_text(notification.sent_at)

    @admin.display(description="updated")
    def updated(self, notification: Notification) -> str:
        return datetime_text(notification.updated_at)

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
    columns = {
        "created_at": utc_time("created"),
        "direction": words(),
        "bar_time": ms_time(),
        "signal_zscore": zscore("signal z"),
        "zscore": zscore("z"),
        "adf_pvalue": pvalue("ADF p"),
        "coint_pvalue": pvalue("EG p"),
        "correlation": fixed(2, "corr"),
        "related_run": as_is("run"),
        "hedge_ratio": ratio(),
    }
    inlines = [NotificationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        return super().get_queryset(request).prefetch_related("notifications")

    @admin.display(description="notifications")
    def notifications_shown(self, alert: Alert) -> str:
        """Each channel and its state: "webhook sent, e-mail failed (attempt 5: could not connect)"."""
        return ", ".join(n.state_text for n in alert.notifications.all()) or "none"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only: each alert's delivery through each channel of its pair."""

    list_display = ["id", "alert", "channel", "status", "attempts", "error", "sent_at"]
    list_display_links = ["id"]  # short enough to tap on a phone; the alert's name is long
    list_filter = ["channel", "status"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    columns = {"sent_at": utc_time("sent"), "updated_at": utc_time("updated")}


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = [
        "pair",
        json_entry("state", "armed", yes_no("armed")),
        json_entry("state", "open_direction", words("open entry")),
        json_entry("state", "open_since", ms_time("since")),
        json_entry("state", "related_run", as_is("related run")),
        json_entry("state", "last_as_of", ms_time("last bar")),
        "updated_at",
    ]
    readonly_fields = [f.name for f in AlertState._meta.fields]
    columns = {"updated_at": utc_time("updated")}


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdmin):
    """Read-only: each live entry alert, booked as a backtest trade."""

    list_display = ["entry_time", "pair", "direction", "hedge_ratio", "unrealised_pnl", "exit_time", "reason", "pnl"]
    list_filter = ["pair", "direction", "reason"]
    readonly_fields = [f.name for f in PaperPosition._meta.fields]
    # Fills carry slippage, off the tick: two decimals more, as on the pair page's card.
    columns = {
        "entry_time": ms_time("entry"),
        "exit_time": ms_time("exit"),
        "mark_time": ms_time(),
        "direction": words(),
        "hedge_ratio": ratio("hedge"),
        "qty_a": quantity(signed=True),
        "qty_b": quantity(signed=True),
        **{f"{when}_price_a": price("pair.symbol_a", extra=2) for when in ("entry", "exit")},
        **{f"{when}_price_b": price("pair.symbol_b", extra=2) for when in ("entry", "exit")},
        "mark_price_a": price("pair.symbol_a"),
        "mark_price_b": price("pair.symbol_b"),
        "spread": price("pair.symbol_a", extra=1),
        "unrealised_pnl": money("unrealised", signed=True),
        "entry_fees": money(),
        "fees": money(),
        "funding": money(signed=True),
        "notional": money(),
        "pnl": money("PnL", signed=True),
        "reason": words(detail=True),  # no choices: its words on the detail page too
    }
