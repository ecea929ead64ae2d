from __future__ import annotations

from django.contrib import admin

from pairs_project.common.admin import ReadOnlyAdmin

from .models import FeedStatus, FundingRate, Symbol, Tick


@admin.register(Tick)
class TickAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "trade_id", "timestamp", "price", "quantity"]
    list_filter = ["symbol"]
    search_fields = ["=trade_id"]
    show_full_result_count = False  # counting millions of ticks is slow


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin):
    list_display = ["name", "tick_count", "last_price", "last_trade_id", "last_tick_at", "updated_at"]
    readonly_fields = [f.name for f in Symbol._meta.fields]


@admin.register(FeedStatus)
class FeedStatusAdmin(admin.ModelAdmin):
    list_display = ["name", "connected", "reconnects", "gaps_filled", "gaps_unfilled", "malformed", "updated_at"]
    readonly_fields = [f.name for f in FeedStatus._meta.fields]


@admin.register(FundingRate)
class FundingRateAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "funding_time", "rate", "mark_price"]
    list_filter = ["symbol"]
