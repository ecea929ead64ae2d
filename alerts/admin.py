from __future__ import annotations

from django.contrib import admin

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
        "webhook_status": as_is("webhook"),
    }


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
