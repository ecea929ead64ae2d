from __future__ import annotations

from django.contrib import admin

from pairs_project.common.admin import (
    DisplayAdmin,
    ReadOnlyAdmin,
    fixed,
    ms_time,
    percent,
    price,
    quantity,
    utc_time,
)

from .models import FeedStatus, FundingRate, Gap, Symbol, Tick


@admin.register(Tick)
class TickAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "trade_id", "timestamp", "price", "quantity"]
    list_filter = ["symbol"]
    search_fields = ["=trade_id"]
    show_full_result_count = False  # counting millions of ticks is slow
    # Trades of a symbol come many to the second: their times to the ms.
    columns = {"timestamp": ms_time("time", millis=True), "price": price("symbol"), "quantity": quantity("qty")}


@admin.register(Symbol)
class SymbolAdmin(DisplayAdmin):
    list_display = ["name", "tick_count", "last_price", "last_trade_id", "last_tick_at", "updated_at"]
    readonly_fields = [f.name for f in Symbol._meta.fields]
    columns = {
        "tick_count": fixed(0, "ticks"),
        "first_tick_at": ms_time(),
        "last_tick_at": ms_time("last tick"),
        "last_price": price("name", "last price"),
        "closed_through": ms_time(),
        "updated_at": utc_time("updated"),
    }


@admin.register(FeedStatus)
class FeedStatusAdmin(DisplayAdmin):
    list_display = ["name", "connected", "reconnects", "gaps_filled", "gaps_unfilled", "malformed", "updated_at"]
    readonly_fields = [f.name for f in FeedStatus._meta.fields]
    columns = {"last_tick_at": ms_time(), "updated_at": utc_time("updated")}


@admin.register(FundingRate)
class FundingRateAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "funding_time", "rate", "mark_price"]
    list_filter = ["symbol"]
    columns = {"funding_time": ms_time("funding time"), "rate": percent(), "mark_price": price("symbol")}


@admin.register(Gap)
class GapAdmin(ReadOnlyAdmin):
    """Holes in a symbol's trade ids, from detection to repair: what the backfill did, or could not."""

    list_display = [
        "symbol",
        "first_id",
        "last_id",
        "trades",
        "status",
        "missing",
        "feed",
        "detected_at",
        "resolved_at",
    ]
    list_filter = ["status", "symbol"]
    columns = {
        "missing": fixed(0, "lost"),
        "detected_at": utc_time("detected"),
        "resolved_at": utc_time("resolved"),
    }

    @admin.display(description="trades")
    def trades(self, gap: Gap) -> str:
        return f"{gap.size:,}"
