from __future__ import annotations

from django.db import models

from analytics.models import Pair
from pairs_project.common.display import utc_text


class Alert(models.Model):
    """One alert, carrying the snapshot values that fired it."""

    class Kind(models.TextChoices):
        ENTRY = "entry"
        EXIT = "exit"

    class Direction(models.TextChoices):
        LONG_SPREAD = "long_spread", "long spread (buy A, sell B)"
        SHORT_SPREAD = "short_spread", "short spread (sell A, buy B)"

    class Reason(models.TextChoices):
        ENTRY = "entry"
        REVERTED = "reverted", "spread reverted"
        RELATIONSHIP_BROKEN = "relationship_broken", "relationship broke"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    direction = models.CharField(max_length=12, choices=Direction.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    bar_time = models.BigIntegerField(help_text="as_of of the snapshot that fired it, ms")
    signal_zscore = models.FloatField(null=True, help_text="the signal z that fired it (null on alerts before signals)")
    zscore = models.FloatField(null=True, help_text="the in-sample z of the same bar (descriptive)")
    adf_pvalue = models.FloatField(null=True)
    coint_pvalue = models.FloatField(null=True, help_text="Engle-Granger p-value of the window")
    correlation = models.FloatField(null=True)
    related_run = models.PositiveIntegerField(
        null=True, help_text="related snapshots in a row before this bar (the confirmation an entry had)"
    )
    hedge_ratio = models.FloatField(null=True)
    message = models.TextField()
    snapshot = models.JSONField(help_text="the whole snapshot that fired it")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same bar never fires the same kind twice, whatever replays it.
            models.UniqueConstraint(fields=["pair", "kind", "bar_time"], name="alert_pair_kind_bar_uniq")
        ]
        indexes = [models.Index(fields=["pair", "-created_at"], name="alert_pair_created_idx")]

    def __str__(self) -> str:
        return f"{self.pair} {self.kind} {self.direction} @ {utc_text(self.bar_time)} UTC"


class Notification(models.Model):
    """One alert told through one channel of its pair, and how that went: one row per alert and channel.

    Made with the alert, for each channel the pair has then, and delivered off the
    analytics cycle (``alerts.services.notification_deliver``). ``error`` holds the
    class of the last failure ("attempt 2: timed out"), never the exception's text
    nor anything secret.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email", "e-mail"
        TELEGRAM = "telegram", "Telegram"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, help_text="the class of the last failure, with its attempt")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["alert", "id"]
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="notification_alert_channel_uniq")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} of alert {self.alert_id}: {self.status}"

    @property
    def state_text(self) -> str:
        """How it went, in words: "e-mail sent", "Telegram failed (attempt 5: could not connect)"."""
        return f"{self.get_channel_display()} {self.status}" + (f" ({self.error})" if self.error else "")


class AlertState(models.Model):
    """The alert rule's state per pair (``alerts.rules.RuleState``), so restarts never re-fire."""

    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, related_name="alert_state")
    state = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alert state of {self.pair}"


class PaperPosition(models.Model):
    """A live entry alert booked as a backtest trade is (docs/analytics.md, "Paper positions"), marked each bar.

    Quantities are signed (+ bought, - sold at entry); prices are fills, slippage included.
    """

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="positions")
    entry_alert = models.OneToOneField(Alert, on_delete=models.CASCADE, related_name="position")
    exit_alert = models.OneToOneField(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="closed_position"
    )
    direction = models.CharField(max_length=12, choices=Alert.Direction.choices)
    hedge_ratio = models.FloatField(help_text="beta' of the entry's signal: the position's own hedge")
    qty_a = models.FloatField()
    qty_b = models.FloatField()
    entry_time = models.BigIntegerField(help_text="the entry alert's bar, ms")
    entry_price_a = models.FloatField()
    entry_price_b = models.FloatField()
    entry_fees = models.FloatField()
    fee_bps = models.FloatField()
    slippage_bps = models.FloatField()
    notional = models.FloatField()
    mark_time = models.BigIntegerField(null=True, blank=True, help_text="the newest bar it was marked at, ms")
    mark_price_a = models.FloatField(null=True, blank=True)
    mark_price_b = models.FloatField(null=True, blank=True)
    unrealised_pnl = models.FloatField(null=True, blank=True, help_text="at the mark, net of the entry's fees")
    spread = models.FloatField(null=True, blank=True, help_text="its own spread at the mark: price_a - beta' price_b")
    exit_time = models.BigIntegerField(null=True, blank=True)
    exit_price_a = models.FloatField(null=True, blank=True)
    exit_price_b = models.FloatField(null=True, blank=True)
    fees = models.FloatField(null=True, blank=True, help_text="entry and exit")
    funding = models.FloatField(default=0.0, help_text="not tracked live: 0")
    pnl = models.FloatField(null=True, blank=True, help_text="net, once closed")
    reason = models.CharField(max_length=20, blank=True, help_text="why it closed")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-entry_time", "-id"]
        constraints = [
            # One open position per pair: the rule enters at most once per excursion.
            models.UniqueConstraint(
                fields=["pair"], condition=models.Q(exit_time__isnull=True), name="position_one_open_per_pair"
            )
        ]

    @property
    def is_open(self) -> bool:
        return self.exit_time is None

    def __str__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"{self.pair} {self.direction} @ {utc_text(self.entry_time)} UTC ({state})"
