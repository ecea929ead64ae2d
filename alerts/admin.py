from __future__ import annotations

from django.contrib import admin

from pairs_project.common.admin import ReadOnlyAdmin

from .models import Alert, AlertState, PaperPosition


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
        "webhook_status",
    ]
    list_filter = ["pair", "kind", "direction", "reason", "webhook_status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["message"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Alert._meta.fields]


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["pair", "state", "updated_at"]


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdmin):
    """Read-only: each live entry alert, booked as a backtest trade."""

    list_display = ["entry_time", "pair", "direction", "hedge_ratio", "unrealised_pnl", "exit_time", "reason", "pnl"]
    list_filter = ["pair", "direction", "reason"]
    readonly_fields = [f.name for f in PaperPosition._meta.fields]
