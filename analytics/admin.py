from __future__ import annotations

from django.contrib import admin
from django.db import models

from pairs_project.common.admin import (
    DisplayAdmin,
    ReadOnlyAdmin,
    as_is,
    clipped,
    duration,
    fixed,
    json_entry,
    money,
    ms_time,
    percent,
    price,
    pvalue,
    quantity,
    ratio,
    threshold,
    utc_time,
    zscore,
)

from .models import Backtest, Bar, Pair, ScreenerRun, Snapshot


@admin.register(Pair)
class PairAdmin(DisplayAdmin):
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
    columns = {
        "entry_z": threshold("entry z"),
        "exit_z": threshold("exit z"),
        "min_correlation": threshold("min corr"),
        "max_adf_pvalue": threshold("max ADF p"),
        "max_coint_pvalue": threshold("max EG p"),
    }
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
    columns = {
        "open_time": ms_time("open time"),
        **{name: price("symbol") for name in ("open", "high", "low", "close")},
        "volume": quantity(),
    }


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = [
        "as_of",
        "pair",
        "ready",
        "signal_zscore",
        "zscore",
        json_entry("data", "hedge_ratio", ratio("hedge")),
        json_entry("data", "adf_pvalue", pvalue("ADF p")),
        json_entry("data", "coint_pvalue", pvalue("EG p")),
        json_entry("data", "correlation", fixed(2, "corr")),
        json_entry("data", "quality_score", fixed(0, "quality")),
        "created_at",
    ]
    list_filter = ["pair", "ready"]
    show_full_result_count = False
    columns = {
        "as_of": ms_time("bar"),
        "signal_zscore": zscore("signal z"),
        "zscore": zscore("z"),
        "created_at": utc_time("recorded"),
    }


#: A job's times and failure, as the backtest and screener lists show them.
JOB_COLUMNS = {"created_at": utc_time("asked"), "finished_at": utc_time("finished"), "error": clipped(60)}


@admin.register(Backtest)
class BacktestAdmin(ReadOnlyAdmin):
    """Read-only: backtests are asked for from the pair's backtest page, the API or ``manage.py backtest``."""

    list_display = [
        "id",
        "pair",
        "status",
        "progress",
        json_entry("summary", "trades", as_is("trades")),
        json_entry("summary", "net_pnl", money("net PnL", signed=True)),
        json_entry("summary", "sharpe", fixed(2, "Sharpe")),
        "created_at",
        "error",
    ]
    list_filter = ["pair", "status"]
    exclude = ["result"]  # trades and equity: on the backtest page and in its CSVs
    readonly_fields = [f.name for f in Backtest._meta.fields if f.name != "result"]
    columns = {"progress": percent(decimals=0), **JOB_COLUMNS}


@admin.register(ScreenerRun)
class ScreenerRunAdmin(ReadOnlyAdmin):
    """Read-only: screens are asked for from the screener page or the API, and scheduled."""

    list_display = [
        "id",
        "status",
        "interval",
        "window",
        "fdr",
        "universe",
        "significant",
        "as_of",
        "took_ms",
        "created_at",
    ]
    list_filter = ["status", "interval"]
    exclude = ["pairs"]  # the ranked pairs: on the screener page and in the API
    readonly_fields = [f.name for f in ScreenerRun._meta.fields if f.name != "pairs"]
    columns = {
        "fdr": threshold("FDR"),
        "as_of": ms_time("newest bar"),
        "took_ms": duration("took", unit_ms=True),
        **JOB_COLUMNS,
    }

    @admin.display(description="symbols")
    def universe(self, run: ScreenerRun) -> int:
        return run.universe_size

    @admin.display(description="significant pairs")
    def significant(self, run: ScreenerRun) -> int:
        return run.significant_count
