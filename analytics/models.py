from __future__ import annotations

import math
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from ingestion.listing import symbols_check
from ingestion.services import exchange_followed
from pairs_project.common import egress
from pairs_project.common.display import utc_text

#: The most bars a pair's window (and so ``min_bars``) may hold. A snapshot's cost
#: grows with the window (about 10 ms at 5,000 bars, 2 of them the statistics), and
#: one snapshot holds up the whole cycle; a migration clamped larger windows.
MAX_WINDOW = 5000


class Interval(models.TextChoices):
    S1 = "1s", "1 second"
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"


def webhook_target(url: str) -> egress.Target:
    """Where a webhook may go, by this deployment's egress policy; raises ``egress.EgressRefused``."""
    return egress.check_url(
        url,
        allow_private=settings.ALERT_WEBHOOK_ALLOW_PRIVATE,
        allow_loopback=settings.ALERT_WEBHOOK_ALLOW_LOOPBACK,
        own_hosts=settings.ALLOWED_HOSTS,
    )


#: The most e-mail recipients a pair's alerts go to.
MAX_EMAIL_RECIPIENTS = 20

#: A Telegram chat: its numeric id (negative for groups, -100... for supergroups and channels), or a
#: public channel's @username (5 to 32 letters, digits and underscores, starting with a letter).
TELEGRAM_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,19}|@[A-Za-z][A-Za-z0-9_]{4,31}")


def email_recipients_parse(text: str) -> list[str]:
    """The addresses of ``text`` (commas, semicolons, spaces or new lines between them), each once.

    Raises ``ValueError`` naming every address that is not one.
    """
    addresses: dict[str, str] = {}
    bad = []
    for address in re.split(r"[\s,;]+", text.strip()):
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
            continue
        addresses.setdefault(address.lower(), address)
    if bad:
        named = ", ".join(repr(a) for a in bad)
        raise ValueError(f"{named} {'is not an e-mail address' if len(bad) == 1 else 'are not e-mail addresses'}.")
    if len(addresses) > MAX_EMAIL_RECIPIENTS:
        raise ValueError(f"At most {MAX_EMAIL_RECIPIENTS} recipients, not {len(addresses)}.")
    return list(addresses.values())


def telegram_chat_id_problem(chat_id: str) -> str | None:
    """Why ``chat_id`` cannot name a Telegram chat, or None."""
    if TELEGRAM_CHAT_ID.fullmatch(chat_id):
        return None
    return (
        f"{chat_id!r} is not a Telegram chat: give its numeric id (e.g. 123456789, or -1001234567890 "
        "for a group or channel) or a public channel's @username."
    )


#: Related snapshots in a row an entry needs, by default (a window shorter than that: the window).
DEFAULT_CONFIRM_BARS = 30


class Pair(models.Model):
    """Two symbols watched together; y = symbol_a, x = symbol_b (docs/analytics.md).

    Thresholds are read on every analytics cycle, so an edit in the admin applies
    within a second, without a restart.
    """

    symbol_a = models.CharField(max_length=30, help_text="y: the leg regressed on the other, e.g. BTCUSDT")
    symbol_b = models.CharField(max_length=30, help_text="x: the hedge leg, e.g. ETHUSDT")
    interval = models.CharField(max_length=2, choices=Interval.choices, default=Interval.S1)
    window = models.PositiveIntegerField(default=300, help_text=f"bars in the statistics window (10 to {MAX_WINDOW})")
    min_bars = models.PositiveIntegerField(default=100, help_text="bars needed before any statistic is shown")
    entry_z = models.FloatField(
        default=2.0, help_text="|signal z| above this, on a confirmed relationship, is an entry"
    )
    exit_z = models.FloatField(default=0.5, help_text="|signal z| below this re-arms the rule and closes an entry")
    min_correlation = models.FloatField(default=0.6, help_text="returns correlation needed to alert")
    max_adf_pvalue = models.FloatField(default=0.05, help_text="ADF p-value of the spread must be below this")
    max_coint_pvalue = models.FloatField(default=0.05, help_text="Engle-Granger p-value of the pair must be below this")
    confirm_bars = models.PositiveIntegerField(
        default=DEFAULT_CONFIRM_BARS,
        help_text=f"related snapshots in a row an entry needs before its bar (1 to the window; "
        f"{DEFAULT_CONFIRM_BARS}, or the window when it is shorter)",
    )
    active = models.BooleanField(default=True)
    webhook_url = models.URLField(
        blank=True, max_length=500, help_text="alerts of this pair are POSTed here as JSON (optional)"
    )
    email_recipients = models.TextField(
        blank=True,
        help_text=f"alerts of this pair are e-mailed to these addresses, commas or new lines between them "
        f"(at most {MAX_EMAIL_RECIPIENTS}; optional)",
    )
    telegram_chat_id = models.CharField(
        max_length=40,
        blank=True,
        help_text="alerts of this pair are sent to this Telegram chat by the bot of TELEGRAM_BOT_TOKEN: its "
        "numeric id (-100... for a group or channel) or a public channel's @username (optional)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["symbol_a", "symbol_b", "interval"], name="pair_symbols_interval_uniq"),
            models.CheckConstraint(condition=~models.Q(symbol_a=models.F("symbol_b")), name="pair_two_symbols"),
            models.CheckConstraint(condition=models.Q(window__gte=10), name="pair_window_gte_10"),
            models.CheckConstraint(condition=models.Q(window__lte=MAX_WINDOW), name="pair_window_lte_max"),
            models.CheckConstraint(
                condition=models.Q(min_bars__lte=models.F("window")), name="pair_min_bars_lte_window"
            ),
            models.CheckConstraint(
                condition=models.Q(exit_z__gte=0, entry_z__gt=models.F("exit_z")), name="pair_entry_gt_exit_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(max_adf_pvalue__gt=0, max_adf_pvalue__lte=1), name="pair_adf_pvalue_in_0_1"
            ),
            models.CheckConstraint(
                condition=models.Q(min_correlation__gte=-1, min_correlation__lte=1), name="pair_correlation_in_range"
            ),
            models.CheckConstraint(
                condition=models.Q(max_coint_pvalue__gt=0, max_coint_pvalue__lte=1), name="pair_coint_pvalue_in_0_1"
            ),
            models.CheckConstraint(
                condition=models.Q(confirm_bars__gte=1, confirm_bars__lte=models.F("window")),
                name="pair_confirm_bars_in_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol_a}/{self.symbol_b} {self.interval}"

    @property
    def symbols(self) -> tuple[str, str]:
        return (self.symbol_a, self.symbol_b)

    @property
    def email_recipient_list(self) -> list[str]:
        """The addresses of ``email_recipients`` (stored as ``clean`` writes them: comma-separated)."""
        return [a for a in re.split(r"[\s,;]+", self.email_recipients or "") if a]

    def clean(self) -> None:
        """One clear message per impossible setting (the admin and the API show them)."""
        from ingestion.binance import normalize_symbol

        errors: dict[str, str] = {}
        for field in ("entry_z", "exit_z", "min_correlation", "max_adf_pvalue", "max_coint_pvalue"):
            value = getattr(self, field)
            if value is not None and not math.isfinite(value):
                errors[field] = f"{field} must be a finite number."
        for field in ("symbol_a", "symbol_b"):
            try:
                setattr(self, field, normalize_symbol(getattr(self, field) or ""))
            except ValueError as exc:
                errors[field] = str(exc)
        if self.webhook_url:
            try:
                webhook_target(self.webhook_url)  # resolved now; again at every send
            except egress.EgressRefused as exc:
                errors["webhook_url"] = str(exc)
        if self.email_recipients:
            try:
                self.email_recipients = ", ".join(email_recipients_parse(self.email_recipients))
            except ValueError as exc:
                errors["email_recipients"] = str(exc)
        if self.telegram_chat_id:
            self.telegram_chat_id = self.telegram_chat_id.strip()
            if (problem := telegram_chat_id_problem(self.telegram_chat_id)) is not None:
                errors["telegram_chat_id"] = problem
        if "symbol_a" not in errors and "symbol_b" not in errors and self.symbol_a == self.symbol_b:
            errors["symbol_b"] = "A pair needs two different symbols."
        if not errors:
            errors.update(self._symbol_errors())
        if self.window is not None and self.window < 10:
            errors["window"] = "The window must hold at least 10 bars."
        if self.window is not None and self.window > MAX_WINDOW:
            errors["window"] = (
                f"The window can hold at most {MAX_WINDOW} bars: the statistics of a longer one "
                "would hold up every pair's snapshots."
            )
        if self.min_bars is not None and self.min_bars > MAX_WINDOW:
            errors["min_bars"] = f"min_bars can be at most {MAX_WINDOW}, the largest window."
        elif self.min_bars is not None and self.window is not None and self.min_bars > self.window:
            errors["min_bars"] = f"min_bars ({self.min_bars}) cannot exceed the window ({self.window})."
        if self.min_bars is not None and self.min_bars < 3:
            errors["min_bars"] = "min_bars must be at least 3."
        if errors:  # the comparisons below need finite numbers
            raise ValidationError(errors)
        if self.exit_z is not None and self.exit_z < 0:
            errors["exit_z"] = "exit_z cannot be negative."
        if self.entry_z is not None and self.exit_z is not None and self.entry_z <= self.exit_z:
            errors["entry_z"] = f"entry_z ({self.entry_z}) must be greater than exit_z ({self.exit_z})."
        if self.max_adf_pvalue is not None and not 0 < self.max_adf_pvalue <= 1:
            errors["max_adf_pvalue"] = "max_adf_pvalue must be in (0, 1]."
        if self.max_coint_pvalue is not None and not 0 < self.max_coint_pvalue <= 1:
            errors["max_coint_pvalue"] = "max_coint_pvalue must be in (0, 1]."
        if (
            self.confirm_bars == DEFAULT_CONFIRM_BARS
            and self.window is not None
            and 10 <= self.window < self.confirm_bars
        ):
            self.confirm_bars = self.window  # the default on a short window: confirmed over the whole window
        if self.confirm_bars is not None and self.window is not None and not 1 <= self.confirm_bars <= self.window:
            errors["confirm_bars"] = (
                f"confirm_bars must be between 1 and the window ({self.window}), not {self.confirm_bars}."
            )
        if self.min_correlation is not None and not -1 <= self.min_correlation <= 1:
            errors["min_correlation"] = "min_correlation must be between -1 and 1."
        if errors:
            raise ValidationError(errors)

    def _symbol_errors(self) -> dict[str, str]:
        """The exchange's word on the symbols, when the pair is new, changes a symbol or is activated.

        An edit that leaves the symbols as they are and the pair no more active
        is not checked: the thresholds of a pair whose symbol has since been
        delisted can still be changed, and the pair deactivated or deleted.
        """

        stored = Pair.objects.filter(pk=self.pk).values("symbol_a", "symbol_b", "active").first() if self.pk else None
        if stored is not None and (stored["symbol_a"], stored["symbol_b"]) == self.symbols:
            if stored["active"] or not self.active:
                return {}
        # Symbols of existing pairs are known: accepted while the exchange cannot be reached.
        legs = Pair.objects.filter(models.Q(symbol_a__in=self.symbols) | models.Q(symbol_b__in=self.symbols))
        known = {s for pair in legs.values_list("symbol_a", "symbol_b") for s in pair}
        problems = symbols_check(self.symbols, known=known, rest_url=exchange_followed().rest_url)
        fields = zip(("symbol_a", "symbol_b"), self.symbols, strict=True)
        return {field: problems[symbol] for field, symbol in fields if symbol in problems}


class Bar(models.Model):
    """One OHLC bar, built from stored ticks only (so a rebuild gives the same row)."""

    symbol = models.CharField(max_length=30)
    interval = models.CharField(max_length=2, choices=Interval.choices)
    open_time = models.BigIntegerField(help_text="ms since the epoch, a multiple of the interval")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()
    trades = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "interval", "open_time"], name="bar_symbol_interval_time_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} @ {utc_text(self.open_time)} UTC"


class Snapshot(models.Model):
    """The history of computed snapshots (the latest also lives in the cache)."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="snapshots")
    as_of = models.BigIntegerField(help_text="open time of the newest bar in the window, ms")
    ready = models.BooleanField(default=False)
    zscore = models.FloatField(null=True, blank=True)
    signal_zscore = models.FloatField(
        null=True, blank=True, help_text="the bar's signal z as it was when the bar closed (the chart's line)"
    )
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "as_of"], name="snapshot_pair_as_of_uniq")]
        indexes = [models.Index(fields=["created_at"], name="snapshot_created_idx")]

    def __str__(self) -> str:
        return f"{self.pair} @ {utc_text(self.as_of)} UTC"


class Watermark(models.Model):
    """How far a periodic job has read (e.g. the last tick id resampled)."""

    name = models.CharField(max_length=50, unique=True)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class Job(models.Model):
    """Work a user (or the schedule) asks for and a worker runs: queued, running (with progress), done or failed.

    Claimed with a conditional update, its progress and ``updated_at`` written as it
    runs (a running job silent for long lost its worker and is claimed again), its
    reason kept when it fails (``analytics.services``: ``_job_claim``, ``_job_progress``,
    ``_job_finish``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1 while it runs")
    error = models.TextField(blank=True, help_text="why it failed, in words")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    #: Written with the progress: a running job silent for long lost its worker.
    updated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class Backtest(Job):
    """A backtest of a pair's own rule over a range (docs/analytics.md, "Backtest"): its parameters and result."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="backtests")
    params = models.JSONField(help_text="the range, the pair's settings and the costs it ran with")
    summary = models.JSONField(null=True, blank=True, help_text="the metrics over the range")
    result = models.JSONField(null=True, blank=True, help_text="trades, equity and the walk-forward grid")

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["pair", "-created_at"], name="backtest_pair_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="backtest_progress_in_0_1"
            )
        ]

    def __str__(self) -> str:
        return f"backtest {self.pk} of {self.pair} ({self.status})"


class ScreenerRun(Job):
    """One screener run over a universe (docs/analytics.md, "Screener"): its settings and ranked pairs."""

    requested = models.JSONField(help_text="what was asked: symbols or top N, interval, window, fdr")
    as_of = models.BigIntegerField(null=True, blank=True, help_text="open time of the newest closed bar screened, ms")
    interval = models.CharField(max_length=2, choices=[(i.value, i.label) for i in (Interval.M1, Interval.M5)])
    window = models.PositiveIntegerField()
    fdr = models.FloatField()
    symbols = models.JSONField(default=list, help_text="the universe screened")
    skipped = models.JSONField(default=dict, blank=True, help_text="symbol -> why it was left out")
    pairs = models.JSONField(default=list, blank=True, help_text="every pair, ranked by q-value then half-life")
    took_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["status", "-created_at"], name="screener_status_created_idx")]

    def __str__(self) -> str:
        return f"screener run {self.pk} ({self.status})"

    @property
    def universe_size(self) -> int:
        """How many symbols were screened."""
        return len(self.symbols or [])

    @property
    def significant_count(self) -> int:
        """How many of its pairs are significant (q < fdr)."""
        return sum(1 for row in self.pairs or [] if row.get("significant"))
