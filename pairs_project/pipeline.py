"""The data path, top to bottom: the one place where the apps meet.

Each app knows only those below it (ingestion < analytics < alerts < dashboard);
what crosses them is wired here and handed down as callbacks::

    the active pairs ---------------------------> the symbols the feed follows
    the feed's ticks, stored (ingestion) -------> 1s/1m/5m bars (analytics, ``resample``)
    the bars closed -----------------------------> each moved pair's snapshot (analytics, ``snapshots``)
        the snapshot, cached --------------------> the pair's pages (dashboard)
        the snapshot, recorded ------------------> the alert rule (alerts)
            an alert, committed -----------------> the pair's pages, its webhook, e-mail, Telegram
    the feed's newest ticks, shared -------------> each moved pair's live prices, to its pages

A ``Pipeline`` runs on the resources of its process's ``Runtime``. Embedded mode
runs it all in one process (``runpairs``); distributed mode runs the feed in
``ingest_binance`` and the periodic steps in Celery (``pairs_project.tasks``), both
as ``schedules.PERIODIC`` declares them.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import sync_to_async

from alerts import services as alerts_services
from alerts.models import Alert
from analytics import selectors as analytics_selectors
from analytics import services as analytics_services
from analytics.models import Pair
from analytics.snapshot import PairSnapshot, snapshot_json
from ingestion import services as ingestion_services
from ingestion.binance import Tick
from ingestion.services import Feed, prices_payload

from .runtime import Runtime

#: Seconds between looks at which pairs are active, for the live prices.
PAIRS_REFRESH = 5.0


class Pipeline:
    """The data path of one process, on the resources of its ``runtime``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # -- the periodic steps (declared in ``schedules.PERIODIC``) ----------------

    def resample(self) -> int:
        """New ticks -> 1s/1m/5m bars; returns the bars written."""
        return analytics_services.bars_resample(kept=self.runtime.resampled, journal=self.runtime.journal)

    def snapshots(self, *, now: int | None = None, force: bool = False) -> list[PairSnapshot]:
        """Each active pair whose window moved -> its snapshot -> the pages, its history and the alert rule."""
        return analytics_services.snapshots_compute(
            now=now,
            force=force,
            publish=self.snapshot_published,
            recorded=self.alert_step,
            stats_of=self.runtime.stats_of,
        )

    def warmup(self) -> int:
        """The klines a 1m/5m pair's window lacks, from the exchange followed -> its bars."""
        return analytics_services.pairs_warmup(rest_url=self.runtime.exchange.rest_url)

    def backtests(self) -> int:
        """Each backtest users asked for -> its bars -> the pair's own rule over them, traded -> stored."""
        ran = 0
        while (backtest := analytics_services.backtest_claim()) is not None:
            analytics_services.backtest_run(
                backtest,
                rules_of=self.rules_of,
                rest_url=self.runtime.exchange.rest_url,
                stats_of=self.runtime.stats_of,
            )
            ran += 1
        return ran

    def screens(self) -> int:
        """Each screen users (or the schedule) asked for -> the universe's bars -> every pair scored -> stored."""
        ran = 0
        while (run := analytics_services.screener_claim()) is not None:
            analytics_services.screener_run(
                run, rest_url=self.runtime.exchange.rest_url, stats_of=self.runtime.stats_of
            )
            ran += 1
        return ran

    def screen_scheduled(self) -> int:
        """A screen of the universe with the settings' defaults, queued (unless one is waiting already)."""
        return analytics_services.screener_schedule()

    #: A pair's alert rule at other thresholds: what a backtest steps (the live rule itself).
    rules_of = staticmethod(alerts_services.rules_of)

    def housekeeping(self) -> dict[str, int]:
        """History past its retention pruned; SQLite's WAL checkpointed."""
        return analytics_services.housekeeping()

    # -- what follows a snapshot -------------------------------------------------

    def snapshot_published(
        self, snapshot: PairSnapshot, series: dict[str, Any], previous_series: dict[str, Any] | None
    ) -> None:
        """A new snapshot, cached -> the pair's pages (its series as a delta from the one they have)."""
        self.runtime.pushes.snapshot(snapshot.pair, snapshot_json(snapshot), series, previous_series)

    def alert_step(self, pair: Pair, snapshot: PairSnapshot) -> None:
        """A bar's recorded snapshot -> the pair's alert rule."""
        alerts_services.alert_rule_evaluate(pair=pair, snapshot=snapshot, on_alert=self.alert_fired)

    def alert_fired(self, alert: Alert) -> None:
        """A committed alert -> the pair's pages, then its notifications (each delivered off the cycle)."""
        self.runtime.pushes.send(alert.pair_id, "alert.new", alerts_services.alert_payload(alert))
        alerts_services.alert_notifications_dispatch(alert=alert, deliveries=self.runtime.deliveries)

    # -- the feed ----------------------------------------------------------------

    def feed(self, **options: Any) -> Feed:
        """The ingestion feed of this process, following the active pairs and pushing their live prices."""
        options.setdefault("ws_url", self.runtime.exchange.ws_url)
        options.setdefault("rest_url", self.runtime.exchange.rest_url)
        return Feed(
            buffers=self.runtime.buffers,
            follow=feed_symbols,
            on_shared=LivePrices(self.runtime),
            journal=self.runtime.journal,
            **options,
        )


def feed_symbols() -> list[str]:
    """The symbols the feed follows: those of the active pairs, else the defaults."""
    return sorted(analytics_selectors.pair_symbols_active()) or ingestion_services.default_symbols()


class LivePrices:
    """The feed's newest ticks -> the live prices of each pair whose leg moved, to its pages.

    A pair is pushed by the feed that saw one of its legs move, with the other leg
    from the shared buffers, so ingestion split by symbol over processes still
    pushes both prices.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.buffers = runtime.buffers
        self.pushes = runtime.pushes
        self.pairs: list[tuple[int, str, str]] = []
        self.pairs_read_at = -PAIRS_REFRESH
        self.sent: dict[int, tuple[Tick | None, ...]] = {}

    async def __call__(self, own: frozenset[str]) -> None:
        if time.monotonic() - self.pairs_read_at >= PAIRS_REFRESH:
            self.pairs_read_at = time.monotonic()
            self.pairs = await sync_to_async(analytics_selectors.pairs_legs_active)()
        moved: list[tuple[int, str, str]] = []
        for pair_id, symbol_a, symbol_b in self.pairs:
            seen = tuple(self.buffers.last(s) for s in (symbol_a, symbol_b) if s in own)
            if any(seen) and self.sent.get(pair_id) != seen:
                self.sent[pair_id] = seen
                moved.append((pair_id, symbol_a, symbol_b))
        if not moved:
            return
        last = await self.buffers.alast_many({s for _, a, b in moved for s in (a, b)})
        for pair_id, symbol_a, symbol_b in moved:
            a, b = last.get(symbol_a), last.get(symbol_b)
            if a is not None and b is not None:
                await self.pushes.asend(pair_id, "prices.update", prices_payload(a, b))
