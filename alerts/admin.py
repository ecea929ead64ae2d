from __future__ import annotations

from django.contrib import admin

from .models import Alert, AlertState


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are records of what the rule saw."""

    list_display = ["created_at", "pair", "kind", "direction", "reason", "zscore", "adf_pvalue", "correlation", "webhook_status"]
    list_filter = ["pair", "kind", "direction", "reason", "webhook_status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["message"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertState)
class AlertStateAdmin(admin.ModelAdmin):
    list_display = ["pair", "state", "updated_at"]
    readonly_fields = ["pair", "state", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False
