"""No snapshot before its window's trades are stored: the feed, the resampling and the snapshots together.

The feed runs against the offline exchange into the test database while the
periodic tasks run beside it, as in embedded mode; the exchange drops the feed and
answers its backfills slowly. Every snapshot recorded along the way must equal the
one computed afterwards, on the final bars: a snapshot computed on a bar whose
trades were still coming would differ.
"""

from __future__ import annotations

import asyncio
import math
import time
from functools import partial

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from analytics import services
from analytics.models import Snapshot
from analytics.snapshot import snapshot_json
from ingestion.models import FeedStatus, Symbol
from ingestion.services import Feed, ticks_store
from ingestion.simulator import Simulator
from tests.support import SYMBOLS, T0, cointegrated_ticks, exchange_last_ids, make_pair, store_and_resample, wait_for

NUMBERS = ("price_a", "price_b", "hedge_ratio", "spread", "zscore", "correlation", "adf_pvalue", "coint_pvalue", "n")


def reconnected(feed: Feed, reconnects: int) -> bool:
    return feed.state.reconnects > reconnects and feed.state.connected


async def run_cycles(pipeline, stop: asyncio.Event) -> int:
    """The periodic tasks of embedded mode, a little faster than once a second."""
    cycles = 0
    while not stop.is_set():
        await sync_to_async(services.bars_resample, thread_sensitive=False)()
        await sync_to_async(pipeline.snapshots, thread_sensitive=False)()
        cycles += 1
        await asyncio.sleep(0.2)
    return cycles


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_no_snapshot_is_computed_on_bars_a_slow_backfill_is_still_filling(settings, pipeline):
    settings.INGEST_FLUSH_INTERVAL = 0.05
    await sync_to_async(cache.clear)()
    pair = await sync_to_async(make_pair)(window=40, min_bars=10)
    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=31) as sim:
        feed = Feed(symbols=SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url, status_interval=0.2)
        task = asyncio.create_task(feed.run())
        stop = asyncio.Event()
        cycles = asyncio.create_task(run_cycles(pipeline, stop))
        ready = sync_to_async(lambda: Snapshot.objects.filter(pair=pair, ready=True).count())
        began = time.monotonic()
        while await ready() < 3:
            assert time.monotonic() - began < 60, "the pair never got ready"
            await asyncio.sleep(0.2)
        for _ in range(2):  # two outages, each backfilled slowly, a page at a time
            sim.fault_slow(4.0, 0.8)
            reconnects = feed.state.reconnects
            sim.fault_drop()
            await wait_for(partial(reconnected, feed, reconnects), timeout=20, what="reconnect")
            await wait_for(lambda: feed.client.tracker.missing_count() == 0, timeout=30, what="the backfill")
            await asyncio.sleep(2.0)
        sim.pause()
        last = exchange_last_ids(sim)
        await wait_for(lambda: all(feed.client.tracker.high(s) == last[s] for s in SYMBOLS), what="catch-up")
        await asyncio.sleep(1.0)
        stop.set()
        assert await cycles > 20
        feed.stop()
        await task

    def compare() -> tuple[int, list[str]]:
        services.bars_resample()
        wrong = []
        rows = list(Snapshot.objects.filter(pair=pair, ready=True).order_by("as_of"))
        for row in rows:
            built, _ = services.pair_snapshot_build(pair=pair, event_time_ms=row.as_of + 1000, now=None)
            again = snapshot_json(built)
            for name in NUMBERS:
                a, b = row.data[name], again[name]
                same = a == b if a is None or b is None else math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                if not same:
                    wrong.append(f"{(row.as_of - rows[0].as_of) // 1000}s {name}: {a} then, {b} on the final bars")
        return len(rows), wrong

    recorded, wrong = await sync_to_async(compare)()
    assert recorded > 8
    assert not wrong, f"{len(wrong)} numbers differ, e.g. {wrong[:4]}"


# -- the rule, on stored statements --------------------------------------------------------


@pytest.mark.django_db
def test_bars_close_on_what_the_feed_states_not_on_the_wall_clock(pipeline):
    """Connected, reporting, no gap counted open: the wall clock would close every bar; the statement holds them.

    The feed states which trades it has with the ticks (``Symbol.closed_through``);
    here the backfill of ETHUSDT's last seconds is still in the writer.
    """
    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(40)
    FeedStatus.objects.create(name="default", symbols="BTCUSDT,ETHUSDT", connected=True, updated_at=timezone.now())
    in_flight = [t for t in ticks if t.symbol == "ETHUSDT" and t.timestamp >= T0 + 33_000]
    store_and_resample([t for t in ticks if t not in in_flight])
    ticks_store([], closed_through={"BTCUSDT": T0 + 40_000, "ETHUSDT": T0 + 33_000})
    services.bars_resample()
    pipeline.snapshots(now=T0 + 60_000)
    assert services.selectors.snapshot_cached(pair.id)["as_of"] == T0 + 32_000
    ticks_store(in_flight, closed_through={"ETHUSDT": T0 + 39_500})
    pipeline.snapshots(now=T0 + 60_000)  # stated and stored, but not resampled yet
    assert services.selectors.snapshot_cached(pair.id)["as_of"] == T0 + 32_000
    services.bars_resample()
    pipeline.snapshots(now=T0 + 60_000)
    assert services.selectors.snapshot_cached(pair.id)["as_of"] == T0 + 38_000


@pytest.mark.django_db
def test_a_statement_never_goes_back():
    ticks_store(cointegrated_ticks(2), closed_through={"BTCUSDT": T0 + 1_500})
    ticks_store([], closed_through={"BTCUSDT": T0 + 1_000})
    assert Symbol.objects.get(name="BTCUSDT").closed_through == T0 + 1_500
