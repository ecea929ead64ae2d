from __future__ import annotations

from django.db import models

from pairs_project.common.display import utc_text


class Tick(models.Model):
    """One aggregate trade, stored exactly once per (symbol, trade_id).

    Times are integer ms since the epoch (exchange trade time ``T``), as the API
    returns them. Prices are doubles: Binance quotes at most 8 significant
    decimals, which a double holds exactly enough for analytics and display.
    """

    symbol = models.CharField(max_length=30)
    trade_id = models.BigIntegerField(help_text="Binance aggregate trade id (a)")
    timestamp = models.BigIntegerField(help_text="trade time, ms since the epoch (UTC)")
    price = models.FloatField()
    quantity = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "trade_id"], name="tick_symbol_trade_id_uniq")]
        indexes = [models.Index(fields=["symbol", "timestamp"], name="tick_symbol_time_idx")]

    def __str__(self) -> str:
        when = utc_text(self.timestamp, millis=True)
        return f"{self.symbol} #{self.trade_id} {self.price} x {self.quantity} @ {when} UTC"


class Symbol(models.Model):
    """Running totals per symbol, kept by the tick writer so reads never scan ticks."""

    name = models.CharField(max_length=30, unique=True)
    tick_count = models.BigIntegerField(default=0)
    first_tick_at = models.BigIntegerField(null=True, blank=True, help_text="ms since the epoch")
    last_tick_at = models.BigIntegerField(null=True, blank=True, help_text="ms since the epoch")
    last_trade_id = models.BigIntegerField(null=True, blank=True)
    last_price = models.FloatField(null=True, blank=True)
    closed_through = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="ms: every trade stamped before this is stored (the feed's statement, written with the ticks)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FeedStatus(models.Model):
    """The health of one ingestion feed, written by it about once a second."""

    name = models.CharField(max_length=50, unique=True, default="default")
    # Text, not a bounded varchar: the stream URL names every symbol, and hundreds
    # of them run past any small limit (which PostgreSQL enforces and SQLite ignores).
    url = models.TextField(blank=True)
    symbols = models.TextField(blank=True)
    connected = models.BooleanField(default=False)
    connected_since = models.DateTimeField(null=True, blank=True)
    last_tick_at = models.BigIntegerField(null=True, blank=True, help_text="newest trade time, ms")
    reconnects = models.IntegerField(default=0)
    connect_failures = models.IntegerField(default=0)
    ticks_received = models.BigIntegerField(default=0)
    ticks_stored = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    malformed = models.IntegerField(default=0)
    gaps_detected = models.IntegerField(default=0)
    gaps_filled = models.IntegerField(default=0)
    gaps_unfilled = models.IntegerField(default=0)
    trades_backfilled = models.BigIntegerField(default=0)
    trades_unavailable = models.BigIntegerField(default=0)
    rate_limited = models.IntegerField(default=0)
    pending = models.IntegerField(default=0, help_text="ticks received but not yet stored")
    writer_error = models.TextField(blank=True, help_text="why storing ticks fails, while it does")
    writer_failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    silent_symbols = models.JSONField(
        default=dict, blank=True, help_text="symbol -> since when (ms) it has had no trade while others trade"
    )
    unavailable_symbols = models.JSONField(
        default=dict, blank=True, help_text="symbol -> why it is not followed (the exchange does not trade it)"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "feed status"

    def __str__(self) -> str:
        return f"feed {self.name}"


class Gap(models.Model):
    """Aggregate ids of a symbol found missing, from detection to repair.

    Written in the same transaction as the tick that revealed the hole, and
    resolved in the same transaction as (or after) the last trade the backfill
    brought, so a crash at any moment leaves the truth on disk: the next start
    of ingestion backfills every gap still open. A gap that REST can no longer
    fill is kept as ``unavailable`` with the number of trades lost.
    """

    class Status(models.TextChoices):
        OPEN = "open", "open: backfilling"
        FILLED = "filled"
        UNAVAILABLE = "unavailable", "unavailable: no longer served by REST"

    symbol = models.CharField(max_length=30)
    first_id = models.BigIntegerField(help_text="first missing aggregate id")
    last_id = models.BigIntegerField(help_text="last missing aggregate id")
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.OPEN)
    missing = models.BigIntegerField(default=0, help_text="trades REST could no longer serve")
    feed = models.CharField(max_length=50, blank=True, help_text="the feed that found it")
    detected_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["symbol", "first_id"], name="gap_symbol_first_id_uniq")]
        indexes = [models.Index(fields=["status", "symbol"], name="gap_status_symbol_idx")]

    def __str__(self) -> str:
        return f"{self.symbol} ids {self.first_id}..{self.last_id} ({self.status})"

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


class FundingRate(models.Model):
    """The funding rate a perpetual paid at one funding time, as ``/fapi/v1/fundingRate`` reports it.

    Fetched for a backtest's range and kept (funding, once charged, never
    changes). ``rate`` is a fraction of the position's notional, paid by longs
    to shorts when positive; ``mark_price`` is the price it was charged on,
    null where the exchange gives none (its oldest records).
    """

    symbol = models.CharField(max_length=30)
    funding_time = models.BigIntegerField(help_text="ms since the epoch (UTC)")
    rate = models.FloatField(help_text="fraction of the notional, e.g. 0.0001 = 0.01 %")
    mark_price = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["symbol", "funding_time"]
        constraints = [models.UniqueConstraint(fields=["symbol", "funding_time"], name="funding_rate_symbol_time_uniq")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.rate:+.6f} @ {utc_text(self.funding_time)} UTC"
