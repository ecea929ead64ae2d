from __future__ import annotations

from django.contrib import admin
from django.db import models

from pairs_project.common.admin import ReadOnlyAdmin

from .models import Backtest, Bar, Pair, Snapshot


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    """Thresholds are validated by ``Pair.clean`` and apply on the next cycle."""

    list_display = [
        "__str__",
        "window",
        "min_bars",
        "entry_z",
        "exit_z",
        "min_correlation",
        "max_adf_pvalue",
        "max_coint_pvalue",
        "confirm_bars",
        "active",
    ]
    list_editable = ["active"]
    list_filter = ["active", "interval"]
    # A webhook typed without a scheme is https (Django 6's default, adopted now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["symbol_a", "symbol_b", "interval", "active"]}),
        ("Window", {"fields": ["window", "min_bars"]}),
        (
            "Alert thresholds",
            {
                "fields": [
                    "entry_z",
                    "exit_z",
                    "min_correlation",
                    "max_adf_pvalue",
                    "max_coint_pvalue",
                    "confirm_bars",
                ],
            },
        ),
        ("Delivery", {"fields": ["webhook_url", "email_recipients", "telegram_chat_id"]}),
    ]


@admin.register(Bar)
class BarAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "trades"]
    list_filter = ["interval", "symbol"]
    show_full_result_count = False


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ["pair", "as_of", "ready", "signal_zscore", "zscore", "created_at"]
    list_filter = ["pair", "ready"]
    show_full_result_count = False


@admin.register(Backtest)
class BacktestAdmin(ReadOnlyAdmin):
    """Read-only: backtests are asked for from the pair's backtest page, the API or ``manage.py backtest``."""

    list_display = ["id", "pair", "status", "progress", "created_at", "finished_at", "error"]
    list_filter = ["pair", "status"]
    exclude = ["result"]  # trades and equity: on the backtest page and in its CSVs
    readonly_fields = [f.name for f in Backtest._meta.fields if f.name != "result"]
