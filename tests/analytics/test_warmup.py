"""1m/5m pairs warm up from REST klines, against the offline exchange."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from analytics import services
from analytics.models import Bar, Pair
from ingestion.simulator import Simulator
from pairs_project import pipeline

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def add_and_warm_up(rest_url: str, interval: str, window: int) -> tuple[int, dict, int]:
    cache.clear()
    pair, _ = services.pair_upsert(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval=interval, window=window, min_bars=window // 2)
    stored = services.pair_warmup_from_klines(pair=pair, rest_url=rest_url)
    pipeline.snapshots()  # the next cycle
    snapshot, _ = services.pair_current(pair=pair)
    again = services.pair_warmup_from_klines(pair=pair, rest_url=rest_url)
    return stored, snapshot, again


@pytest.mark.parametrize("interval,window", [("1m", 300), ("5m", 120)])
async def test_a_new_pair_is_ready_as_soon_as_its_klines_are_fetched(interval, window):
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=4) as sim:
        stored, snapshot, again = await add_and_warm_up(sim.rest_url, interval, window)
    assert stored >= 2 * window  # both legs
    assert snapshot["ready"] is True
    assert snapshot["n"] == window
    assert snapshot["interval"] == interval
    # The simulator's pair has hedge ratio 20 and a stationary spread.
    assert snapshot["hedge_ratio"] == pytest.approx(20, rel=0.05)
    assert snapshot["adf_pvalue"] < 0.05
    assert again == 0  # nothing missing any more: no second fetch


async def test_the_kline_still_in_progress_is_dropped():
    async with Simulator(port=0, scenario="cointegrated", rate=50, seed=5) as sim:
        await add_and_warm_up(sim.rest_url, "1m", 100)
    newest = await sync_to_async(lambda: Bar.objects.filter(interval="1m").order_by("-open_time").first())()
    import time

    assert newest.open_time + 60_000 <= time.time() * 1000


async def test_one_second_pairs_are_not_warmed_up_from_klines():
    pair = await sync_to_async(lambda: Pair.objects.update_or_create(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s")[0])()
    assert await sync_to_async(services.pair_warmup_from_klines)(pair=pair, rest_url="http://127.0.0.1:9") == 0
