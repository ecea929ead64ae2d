"""1m/5m pairs warm up from REST klines, against the offline exchange."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from analytics import services
from analytics.models import Bar, Pair
from ingestion.simulator import Simulator

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def add_and_warm_up(pipeline, rest_url: str, interval: str, window: int) -> tuple[int, dict, int]:
    # A minute that closes between the warm-up and the snapshot is the next warm-up's
    # bar: the window would end on it one bar short. And in the first seconds of a
    # minute the warm-up has stored the minute just ended, which the snapshot takes
    # as closed only after the bar-closing grace. Start well inside a minute.
    second = time.time() % 60
    if not 5 <= second <= 50:
        time.sleep((65 - second) % 60)
    cache.clear()
    pair, _ = services.pair_upsert(
        symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval=interval, window=window, min_bars=window // 2
    )
    stored = services.pair_warmup_from_klines(pair=pair, rest_url=rest_url)
    pipeline.snapshots()  # the next cycle
    snapshot, _ = services.pair_current(pair=pair)
    again = services.pair_warmup_from_klines(pair=pair, rest_url=rest_url)
    return stored, snapshot, again


@pytest.mark.parametrize("interval,window", [("1m", 300), ("5m", 120)])
async def test_a_new_pair_is_ready_as_soon_as_its_klines_are_fetched(interval, window, pipeline):
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=4) as sim:
        stored, snapshot, again = await add_and_warm_up(pipeline, sim.rest_url, interval, window)
    assert stored >= 2 * window  # both legs
    assert snapshot["ready"] is True
    assert snapshot["n"] == window
    assert snapshot["interval"] == interval
    # The simulator's pair has hedge ratio 20 and a stationary spread.
    assert snapshot["hedge_ratio"] == pytest.approx(20, rel=0.05)
    assert snapshot["adf_pvalue"] < 0.05
    assert again == 0  # nothing missing any more: no second fetch


async def test_the_kline_still_in_progress_is_dropped(pipeline):
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=5) as sim:
        await add_and_warm_up(pipeline, sim.rest_url, "1m", 100)
    newest = await sync_to_async(lambda: Bar.objects.filter(interval="1m").order_by("-open_time").first())()
    assert newest.open_time + 60_000 <= time.time() * 1000


async def test_one_second_pairs_are_not_warmed_up_from_klines():
    pair = await sync_to_async(
        lambda: Pair.objects.update_or_create(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s")[0]
    )()
    assert await sync_to_async(services.pair_warmup_from_klines)(pair=pair, rest_url="http://127.0.0.1:9") == 0


@pytest.mark.parametrize("status", [429, 418])  # too many requests; IP banned for Retry-After
async def test_a_warm_up_answered_with_a_rate_limit_waits_retry_after_then_succeeds(status, pipeline):
    """The klines come through the backfill's REST client: a 429/418 is waited out, not a failure."""
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=4) as sim:
        sim.fault_rate_limit(1, status=status, retry_after=1)
        started = time.monotonic()
        stored, snapshot, again = await add_and_warm_up(pipeline, sim.rest_url, "1m", 120)
        elapsed = time.monotonic() - started
        limited = sim.exchange.faults["rate_limit"]
    assert limited == 1
    assert elapsed >= 1.0  # no request before the Retry-After had passed
    assert stored >= 2 * 120
    assert snapshot["ready"] is True
    assert again == 0


@sync_to_async
def warm_up_all(rest_url: str) -> tuple[int, int]:
    """One run of the periodic warm-up: the bars it stored, and the 1m bars there are."""
    stored = services.pairs_warmup(rest_url=rest_url)
    return stored, Bar.objects.filter(interval="1m").count()


async def test_a_retry_after_longer_than_a_warm_up_waits_holds_back_the_later_runs():
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=4) as sim:
        await sync_to_async(cache.clear)()
        await sync_to_async(services.pair_upsert)(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1m", window=120)
        sim.fault_rate_limit(1, status=418, retry_after=120)
        started = time.monotonic()
        banned = await warm_up_all(sim.rest_url)
        elapsed = time.monotonic() - started
        # The one 418 is spent: a request now would succeed, so none is made.
        held_back = await warm_up_all(sim.rest_url)
        await sync_to_async(cache.delete)(services.WARMUP_NOT_BEFORE)  # as if the two minutes had passed
        stored, bars = await warm_up_all(sim.rest_url)
    assert banned == (0, 0)
    assert elapsed < services.WARMUP_MAX_WAIT  # a ban longer than a run waits is not slept through
    assert held_back == (0, 0)
    assert stored == bars >= 2 * 120
