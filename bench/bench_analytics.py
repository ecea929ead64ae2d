"""Analytics benchmark: snapshot cost against its bare numpy/statsmodels calls, and freshness.

1. Cost: one pair's snapshot (read the window's closes, align, every statistic,
   cache, history row) at W = 300, 1000, 5000, and in the same run the bare calls
   it is made of (OLS by least squares, correlations, half-life regression,
   ``adfuller`` and ``coint``) on the same arrays. Pairs per second per core follow.
2. Freshness: the embedded system (feed + beat) against the offline exchange;
   for each 1 s bar, the delay from its close (t + 1 s) to its snapshot in the cache.

    python bench/bench_analytics.py [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import math

import numpy as np
from common import best_of, django_on_fresh_database, remove

WINDOWS = (300, 1000, 5000)


def seed_bars(n: int) -> None:
    """n seconds of a cointegrated BTC/ETH pair as 1 s bars (hedge ratio 20, half-life 10 bars)."""
    from analytics.models import Bar

    rng = np.random.default_rng(7)
    phi = 0.5 ** (1 / 10)
    x = 3000 + np.cumsum(rng.normal(0, 3.0, n))
    s = np.zeros(n)
    for k in range(1, n):
        s[k] = phi * s[k - 1] + rng.normal(0, 5.0)
    y = 500 + 20 * x + s
    t0 = 1_767_225_600_000
    bars = []
    for k in range(n):
        for symbol, price in (("BTCUSDT", y[k]), ("ETHUSDT", x[k])):
            p = float(price)
            bars.append(
                Bar(
                    symbol=symbol,
                    interval="1s",
                    open_time=t0 + 1000 * k,
                    open=p,
                    high=p,
                    low=p,
                    close=p,
                    volume=1.0,
                    trades=1,
                )
            )
    Bar.objects.bulk_create(bars, batch_size=5000)


def bare_calls(y: np.ndarray, x: np.ndarray) -> None:
    """What a snapshot is made of, with nothing around it."""
    from statsmodels.tsa.stattools import adfuller, coint

    design = np.column_stack([np.ones_like(x), x])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    s = y - beta * x
    s.mean(), s.std(ddof=1)
    np.corrcoef(np.diff(np.log(y)), np.diff(np.log(x)))
    np.corrcoef(y, x)
    np.linalg.lstsq(np.column_stack([np.ones(len(s) - 1), s[:-1]]), np.diff(s), rcond=None)
    adfuller(s, regression="c", autolag="AIC", result_object=True)
    coint(y, x)


def cost() -> None:
    from analytics import services
    from analytics.bars import align_closes
    from analytics.models import Pair
    from analytics.selectors import closes_window

    seed_bars(max(WINDOWS) + 10)
    pair, _ = Pair.objects.update_or_create(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s")
    event = services.event_time() or 1_767_225_600_000 + (max(WINDOWS) + 10) * 1000
    print("snapshot cost per pair (best of 7), against the bare numpy/statsmodels calls on the same window")
    for window in WINDOWS:
        pair.window = pair.min_bars = window
        pair.save()

        def snapshot() -> None:
            snap, series = services.pair_snapshot_build(pair=pair, event_time_ms=event, now=None)
            services.snapshot_cache(snapshot=snap, series=series)
            services.snapshot_record(snapshot=snap)

        legs = [closes_window(symbol=s, interval="1s", as_of=event, limit=window) for s in pair.symbols]
        aligned = align_closes(legs[0], legs[1], as_of=None, window=window)
        full = best_of(snapshot)
        bare = best_of(lambda aligned=aligned: bare_calls(aligned.y, aligned.x))
        print(
            f"  W={window:>5}: snapshot {full * 1e3:7.2f} ms, bare calls {bare * 1e3:7.2f} ms, ratio {full / bare:5.2f}"
        )
        if window == 300:
            print(
                f"  pairs per second per core at W=300: {1 / full:,.0f} "
                f"(a 1 s cadence fits {math.floor(1 / full)} pairs)"
            )


async def freshness(seconds: float) -> list[float]:
    from asgiref.sync import sync_to_async
    from django.db import close_old_connections

    from analytics.models import Pair, Snapshot
    from ingestion.binance import Exchange
    from ingestion.simulator import Simulator
    from pairs_project.beat import EmbeddedBeat
    from pairs_project.pipeline import Pipeline
    from pairs_project.runtime import Runtime

    def prepare() -> int:
        Pair.objects.update_or_create(
            symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s", defaults={"window": 300, "min_bars": 10}
        )
        return Snapshot.objects.count()

    await sync_to_async(prepare)()
    async with Simulator(port=0, scenario="cointegrated", rate=100, seed=3) as sim:
        runtime = Runtime.build(exchange=Exchange(sim.ws_url, sim.rest_url), stats_process=False)
        pipeline = Pipeline(runtime)
        feed = pipeline.feed(symbols=["BTCUSDT", "ETHUSDT"])
        beat = EmbeddedBeat(pipeline)
        tasks = [asyncio.create_task(feed.run()), asyncio.create_task(beat.run())]
        started = sim.exchange.stats()["BTCUSDT"]["first_time"] or 0
        await asyncio.sleep(seconds)
        feed.stop()
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        beat.shutdown()
        runtime.close()

    def delays() -> list[float]:
        close_old_connections()
        rows = Snapshot.objects.filter(as_of__gte=started + 5000).values_list("as_of", "data")
        return [data["computed_at"] - (as_of + 1000) for as_of, data in rows]

    return await sync_to_async(delays)()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the freshness run")
    args = parser.parse_args()
    workdir = django_on_fresh_database("analytics")
    try:
        cost()
        from analytics.models import Bar, Snapshot

        Bar.objects.all().delete()
        Snapshot.objects.all().delete()
        delays = np.array(asyncio.run(freshness(args.seconds)))
        if len(delays):
            p50, p95 = np.percentile(delays, [50, 95])
            print(
                f"freshness: {len(delays)} snapshots of 1 s bars; bar close -> snapshot in the cache: "
                f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {delays.max():.0f} ms (goal: within 1,500 ms)"
            )
        else:
            print("freshness: no snapshot was computed")
    finally:
        remove(workdir)


if __name__ == "__main__":
    main()
