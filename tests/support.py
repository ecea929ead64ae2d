"""Builders and helpers the test modules share.

Test modules import what they share from here (and the process helpers from
``tests/processes.py``, fixtures from ``tests/conftest.py``), never from one
another.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import numpy as np
from django.core.cache import cache
from django.utils import timezone

from alerts.models import Alert
from alerts.services import notifications_create
from analytics import services
from analytics.bars import WidestBarTicks
from analytics.models import Pair
from ingestion.binance import Tick
from ingestion.journal import StoredTicks
from ingestion.services import ticks_store
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime

if TYPE_CHECKING:
    from ingestion.simulator import Simulator

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC

#: The symbols of the feed tests: the default pair's two legs.
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


# -- pairs, ticks, bars, alerts ------------------------------------------------------


def make_pair(**fields) -> Pair:
    """The BTCUSDT/ETHUSDT 1s pair (the default pair exists after migrating) with these settings."""
    pair, _ = Pair.objects.update_or_create(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s", defaults=fields)
    return pair


def cointegrated_ticks(
    seconds: int, *, seed: int = 1, hedge_ratio: float = 20.0, half_life: float = 10.0
) -> list[Tick]:
    """Two ticks a second per symbol: BTC = 500 + hedge_ratio * ETH + OU spread (half-life in seconds)."""
    rng = np.random.default_rng(seed)
    phi = 0.5 ** (1 / half_life)
    x = 3000 + np.cumsum(rng.normal(0, 6.0, seconds))
    s = np.zeros(seconds)
    for k in range(1, seconds):
        s[k] = phi * s[k - 1] + rng.normal(0, 4.0)
    y = 500 + hedge_ratio * x + s
    ticks = []
    for k in range(seconds):
        for j, offset in enumerate((150, 700)):
            ts = T0 + k * 1000 + offset
            ticks.append(Tick(ts, "ETHUSDT", round(float(x[k]) + j * 0.01, 2), 0.5, 4_000_000 + 2 * k + j))
            ticks.append(Tick(ts + 20, "BTCUSDT", round(float(y[k]) + j * 0.1, 1), 0.01, 5_000_000 + 2 * k + j))
    return ticks


def store_and_resample(
    ticks: list[Tick], batch: int = 5000, *, kept: WidestBarTicks | None = None, journal: StoredTicks | None = None
) -> None:
    """Store ``ticks`` in batches, each resampled (with a process's ``kept`` and ``journal`` when given)."""
    for i in range(0, len(ticks), batch):
        ticks_store(ticks[i : i + batch], journal=journal)
        services.bars_resample(kept=kept, journal=journal)


def make_alert(
    pair: Pair,
    *,
    kind: str = "entry",
    direction: str = "short_spread",
    bar_time: int,
    zscore: float | None = 2.4,
    signal_zscore: float | None = None,
    related_run: int | None = None,
):
    """An alert row; ``signal_zscore`` and ``related_run`` None as on alerts recorded before signals."""
    return Alert.objects.create(
        pair=pair,
        kind=kind,
        direction=direction,
        reason="entry" if kind == "entry" else "reverted",
        bar_time=bar_time,
        signal_zscore=signal_zscore,
        zscore=zscore,
        adf_pvalue=0.01,
        coint_pvalue=0.02 if signal_zscore is not None else None,
        correlation=0.8,
        related_run=related_run,
        hedge_ratio=20.0,
        message=f"{kind} {direction} <b>z={zscore}</b>",
        snapshot={},
    )


def desk_records() -> Pair:
    """A record of every kind the admin lists, as the system writes them: the default pair traded live over 300 s
    of a reverting market (ticks, bars, snapshots, alerts, paper positions, the rule's state, the symbols' totals),
    a backtest of it and one that failed, funding rates, a feed's status, a gap it filled and a screen."""
    from analytics.models import Backtest, ScreenerRun
    from ingestion.models import FeedStatus, FundingRate, Gap

    seconds = 300
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(seconds, seed=1, half_life=5), seconds)
    asked = services.backtest_create(pair, services.backtest_params(pair, start=T0, end=T0 + seconds * 1000))
    claimed = services.backtest_claim()
    assert claimed is not None and claimed.pk == asked.pk
    # No exchange answers here: the run says it had no funding.
    done = services.backtest_run(claimed, rules_of=Pipeline.rules_of, rest_url="http://127.0.0.1:9")
    assert done.status == Backtest.Status.DONE, done.error
    # And one that failed, with its reason: a range before the first stored bar.
    asked = services.backtest_create(pair, services.backtest_params(pair, start=T0 - 60_000, end=T0 - 1_000))
    claimed = services.backtest_claim()
    assert claimed is not None and claimed.pk == asked.pk
    failed = services.backtest_run(claimed, rules_of=Pipeline.rules_of, rest_url="http://127.0.0.1:9")
    assert failed.status == Backtest.Status.FAILED and failed.error
    # The alerts told by e-mail (the notifications' list): pending, as the rule leaves them.
    Pair.objects.filter(pk=pair.pk).update(email_recipients="desk@example.com")
    pair.refresh_from_db()
    for alert in Alert.objects.filter(pair=pair):
        notifications_create(alert)
    for k, rate in enumerate((0.0001, -0.0000375)):
        FundingRate.objects.create(
            symbol="BTCUSDT", funding_time=T0 - (2 - k) * 8 * 3_600_000, rate=rate, mark_price=97_123.4 + k
        )
    now = timezone.now()
    FeedStatus.objects.create(
        name="default",
        connected=True,
        connected_since=now,
        last_tick_at=T0 + seconds * 1000,
        ticks_stored=1200,
        started_at=now,
        updated_at=now,
    )
    Gap.objects.create(
        symbol="ETHUSDT",
        first_id=1_000_000,
        last_id=1_000_041,
        status=Gap.Status.FILLED,
        feed="default",
        detected_at=now,
        resolved_at=now,
    )
    ScreenerRun.objects.create(
        requested={"top": 12, "interval": "1m", "window": 200, "fdr": 0.05},
        status=ScreenerRun.Status.DONE,
        progress=1.0,
        as_of=T0,
        interval="1m",
        window=200,
        fdr=0.05,
        symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        pairs=[{"symbol_a": "BTCUSDT", "symbol_b": "ETHUSDT", "qvalue": 0.01, "significant": True}],
        took_ms=84_000,
        finished_at=now,
    )
    return pair


def pending_alert(pair: Pair, **fields) -> Alert:
    """An entry alert whose notifications (one per channel of ``pair``) are still to be delivered."""
    values = {
        "kind": "entry",
        "direction": "long_spread",
        "reason": "entry",
        "bar_time": 1,
        "zscore": -2.5,
        "message": "m",
        "snapshot": {},
        **fields,
    }
    alert = Alert.objects.create(pair=pair, **values)
    notifications_create(alert)
    return alert


def pair_form(**fields) -> dict:
    """The admin's pair form, filled in (SOLUSDT/ETHUSDT, the defaults), with ``fields`` over it."""
    data = {
        "symbol_a": "SOLUSDT",
        "symbol_b": "ETHUSDT",
        "interval": "1s",
        "window": 300,
        "min_bars": 100,
        "entry_z": 2.0,
        "exit_z": 0.5,
        "min_correlation": 0.6,
        "max_adf_pvalue": 0.05,
        "max_coint_pvalue": 0.05,
        "confirm_bars": 30,
        "active": "on",
        "webhook_url": "",
        "email_recipients": "",
        "telegram_chat_id": "",
    }
    return {**data, **fields}


# -- a browser ---------------------------------------------------------------------------

# -- the feed against the offline exchange --------------------------------------------


async def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def exchange_last_ids(sim: Simulator) -> dict[str, int]:
    stats = sim.exchange.stats()
    return {s: stats[s]["last_id"] for s in SYMBOLS}


def run_live(ticks: list[Tick], seconds: int, *, restart_at: int | None = None) -> None:
    """What the beat does every second, on the data's clock: store, resample, snapshot (+ rule).

    At ``restart_at`` the process restarts: a new runtime, the cache lost.
    """
    by_second: dict[int, list[Tick]] = {}
    for tick in ticks:
        by_second.setdefault((tick.timestamp - T0) // 1000, []).append(tick)
    runtime = Runtime.build(stats_process=False)
    try:
        pipeline = Pipeline(runtime)
        for k in range(seconds):
            if k == restart_at:
                cache.clear()
                runtime.close()
                runtime = Runtime.build(stats_process=False)
                pipeline = Pipeline(runtime)
            store_and_resample(by_second.get(k, []))
            pipeline.snapshots(now=T0 + (k + 1) * 1000)
    finally:
        runtime.close()
