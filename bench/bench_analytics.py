"""Analytics benchmark: the unit-root tests, a snapshot's cost, the snapshot cycle, freshness.

1. The tests: ``analytics.unitroot``'s ``adf`` and ``engle_granger`` against the
   statsmodels calls whose numbers they are (``adfuller(s, regression="c",
   autolag="AIC")``, ``coint(y, x)``) on the same windows at W = 300, 1,000 and
   5,000 (best of 7, the same run), as ratios; the numbers are checked equal.
2. Cost: one pair's snapshot (read the window's closes, align, every statistic,
   cache, history row) at each W, against the same snapshot with the statistics
   as before (``pair_stats`` with statsmodels' ``adfuller`` and ``coint``, kept
   here as ``pair_stats_statsmodels``) and against the bare numpy/statsmodels
   calls it used to be made of. Pairs per second per core follow.
3. The snapshot cycle: 200 active 1 s pairs over 40 symbols at W = 300, a new bar
   of every symbol each cycle, run as embedded mode runs it (on the beat's thread,
   pushes through the event loop, statistics in the child process): each cycle's
   time against its one-second cadence; then the same cycle with the statistics
   in the cycle's own process (as a Celery worker computes them), and with the
   statistics as before.
4. Freshness: the embedded system (feed + beat) against the offline exchange;
   for each 1 s bar, the delay from its close (t + 1 s) to its snapshot in the cache.

BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set): the figures are per core.

    python bench/bench_analytics.py [--seconds 40] [--cycles 8]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS: per-core figures

import argparse
import asyncio
import contextlib
import itertools
import math
import statistics
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import numpy as np
from common import best_of, django_on_fresh_database, remove

WINDOWS = (300, 1000, 5000)
CYCLE_PAIRS = 200
CYCLE_SYMBOLS = 40
CYCLE_WINDOW = 300
T0 = 1_767_225_600_000


def pair_prices(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """n seconds of a cointegrated BTC/ETH pair (hedge ratio 20, half-life 10 bars): y, x."""
    rng = np.random.default_rng(seed)
    phi = 0.5 ** (1 / 10)
    x = 3000 + np.cumsum(rng.normal(0, 3.0, n))
    s = np.zeros(n)
    for k in range(1, n):
        s[k] = phi * s[k - 1] + rng.normal(0, 5.0)
    return 500 + 20 * x + s, x


def seed_bars(n: int) -> None:
    """``pair_prices(n)`` as 1 s bars of BTCUSDT and ETHUSDT."""
    from analytics.models import Bar

    y, x = pair_prices(n)
    bars = []
    for k in range(n):
        for symbol, price in (("BTCUSDT", y[k]), ("ETHUSDT", x[k])):
            p = float(price)
            bars.append(
                Bar(
                    symbol=symbol,
                    interval="1s",
                    open_time=T0 + 1000 * k,
                    open=p,
                    high=p,
                    low=p,
                    close=p,
                    volume=1.0,
                    trades=1,
                )
            )
    Bar.objects.bulk_create(bars, batch_size=5000)


# -- the statistics as they were: pair_stats with statsmodels' adfuller and coint -------------


def _adf_statsmodels(s: np.ndarray) -> tuple[float | None, float | None, int | None]:
    from statsmodels.tsa.stattools import adfuller

    from analytics.stats import _finite

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = adfuller(s, regression="c", autolag="AIC", result_object=True)
        except Exception:  # noqa: BLE001 - as pair_stats had it: None
            return None, None, None
    stat, pvalue = _finite(res.statistic), _finite(res.pvalue)
    if stat is None or pvalue is None:
        return None, None, None
    return stat, pvalue, int(res.lags)


def _coint_pvalue_statsmodels(y: np.ndarray, x: np.ndarray) -> float | None:
    from statsmodels.tools.sm_exceptions import CollinearityWarning
    from statsmodels.tsa.stattools import coint

    from analytics.stats import _finite

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", CollinearityWarning)
        try:
            return _finite(coint(y, x).pvalue)
        except Exception:  # noqa: BLE001 - as pair_stats had it: None
            return None


@contextlib.contextmanager
def statsmodels_tests():
    """``pair_stats`` computes its two unit-root tests through statsmodels, as before ``analytics.unitroot``."""
    from analytics import stats

    with (
        mock.patch.object(stats, "_adf", _adf_statsmodels),
        mock.patch.object(stats, "_coint_pvalue", _coint_pvalue_statsmodels),
    ):
        yield


def pair_stats_statsmodels(y: np.ndarray, x: np.ndarray):
    from analytics.stats import pair_stats

    with statsmodels_tests():
        return pair_stats(y, x)


def bare_calls(y: np.ndarray, x: np.ndarray) -> None:
    """What a snapshot was made of, with nothing around it."""
    from statsmodels.tsa.stattools import adfuller, coint

    design = np.column_stack([np.ones_like(x), x])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    s = y - beta * x
    s.mean(), s.std(ddof=1)
    np.corrcoef(np.diff(np.log(y)), np.diff(np.log(x)))
    np.corrcoef(y, x)
    np.linalg.lstsq(np.column_stack([np.ones(len(s) - 1), s[:-1]]), np.diff(s), rcond=None)
    adfuller(s, regression="c", autolag="AIC", result_object=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coint(y, x)


# -- 1. the tests ------------------------------------------------------------------------------


def tests() -> None:
    from statsmodels.tsa.stattools import adfuller, coint

    from analytics.unitroot import adf, engle_granger

    print("unit-root tests (best of 7): analytics.unitroot against the statsmodels calls, same windows")
    for window in WINDOWS:
        y, x = pair_prices(window)
        s = y - 20.0 * x
        number = 1 if window == 5000 else 5

        def sm_coint(y=y, x=x):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return coint(y, x)

        sm_adf = best_of(lambda s=s: adfuller(s, regression="c", autolag="AIC", result_object=True), number=number)
        new_adf = best_of(lambda s=s: adf(s, "c"), number=20)
        sm_eg = best_of(sm_coint, number=number)
        new_eg = best_of(lambda y=y, x=x: engle_granger(y, x), number=20)
        a, r = adf(s, "c"), adfuller(s, regression="c", autolag="AIC", result_object=True)
        e, c = engle_granger(y, x), sm_coint()
        pairs = [(a.statistic, r.statistic), (a.pvalue, r.pvalue), (e.statistic, c.coint_t), (e.pvalue, c.pvalue)]
        same = a.lag == r.lags and all(math.isclose(u, v, rel_tol=1e-9) for u, v in pairs)
        print(
            f"  W={window:>5}: ADF {new_adf * 1e3:6.3f} ms, adfuller {sm_adf * 1e3:7.2f} ms (x{sm_adf / new_adf:4.1f});"
            " "
            f"Engle-Granger {new_eg * 1e3:6.3f} ms, coint {sm_eg * 1e3:7.2f} ms (x{sm_eg / new_eg:4.1f}); "
            f"lag {a.lag}, {'equal' if same else 'NOT EQUAL'}"
        )


# -- 2. one pair's snapshot ---------------------------------------------------------------------


def cost() -> None:
    from analytics import services
    from analytics.bars import align_closes
    from analytics.models import Pair
    from analytics.selectors import closes_window

    seed_bars(max(WINDOWS) + 10)
    pair, _ = Pair.objects.update_or_create(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s")
    newest = T0 + (max(WINDOWS) + 9) * 1000
    print(
        "snapshot of one pair (best of 7), as the cycle makes it on each new bar: the window read and aligned,"
        " every statistic, the snapshot on the previous bar's, cached and recorded;\n"
        "  against the same with the statistics as before (statsmodels' tests), and the bare calls"
    )
    for window in WINDOWS:
        pair.window = pair.min_bars = window
        pair.save()
        previous, previous_series = services.pair_snapshot_at(pair=pair, closed=newest - 1000)

        def snapshot(stats_of=None, previous=previous, previous_series=previous_series) -> None:
            window_ = services.pair_window_load(pair=pair, closed=newest)
            snap, series = services.pair_snapshot_build(
                pair=pair, window=window_, stats_of=stats_of, previous=previous, previous_series=previous_series
            )
            services.snapshot_cache(snapshot=snap, series=series)
            services.snapshot_record(snapshot=snap)

        legs = [closes_window(symbol=s, interval="1s", as_of=newest, limit=window) for s in pair.symbols]
        aligned = align_closes(legs[0], legs[1], as_of=None, window=window)
        full = best_of(snapshot, number=10 if window < 5000 else 2)
        before = best_of(lambda: snapshot(pair_stats_statsmodels), number=1)
        bare = best_of(lambda aligned=aligned: bare_calls(aligned.y, aligned.x))
        print(
            f"  W={window:>5}: snapshot {full * 1e3:6.2f} ms, as before {before * 1e3:7.2f} ms (x{before / full:4.1f});"
            f" bare calls {bare * 1e3:7.2f} ms, snapshot / bare calls {full / bare:5.2f}"
        )
        if window == 300:
            print(f"  pairs per second per core at W=300: {1 / full:,.0f}, as before {1 / before:,.0f}")


# -- 3. the snapshot cycle ----------------------------------------------------------------------


def cycle(cycles: int) -> None:
    from asgiref.sync import sync_to_async

    from analytics import services
    from analytics.models import Bar, Pair
    from ingestion.binance import Exchange
    from pairs_project.pipeline import Pipeline
    from pairs_project.runtime import Runtime

    window = CYCLE_WINDOW
    symbols = [f"S{i:02d}USDT" for i in range(CYCLE_SYMBOLS)]
    rng = np.random.default_rng(11)
    length = window + 10 + 3 * cycles + 2
    market = np.cumsum(rng.normal(0, 2e-4, length))
    prices = {}
    for symbol in symbols:  # a common factor, each symbol's own noise, prices from 0.01 to 100,000
        own = np.cumsum(rng.normal(0, 1e-4, length))
        prices[symbol] = 10 ** rng.uniform(-2, 5) * np.exp(rng.uniform(0.5, 1.5) * market + own)

    def bars(k: int) -> list[Bar]:
        return [
            Bar(symbol=s, interval="1s", open_time=T0 + 1000 * k, open=p[k], high=p[k], low=p[k], close=p[k],
                volume=1.0, trades=1)
            for s, p in ((s, prices[s].tolist()) for s in symbols)
        ]  # fmt: skip

    Bar.objects.bulk_create([bar for k in range(window + 10) for bar in bars(k)], batch_size=5000)
    Pair.objects.update(active=False)
    for a, b in itertools.islice(itertools.combinations(symbols, 2), CYCLE_PAIRS):
        Pair.objects.create(symbol_a=a, symbol_b=b, interval="1s", window=window)
    newest = window + 9

    def close(k: int) -> None:
        """Bar k of every symbol closes: the feeds state every trade before its end stored and resampled."""
        for symbol in symbols:
            services._watermark_raise(f"{services.CLOSED_WATERMARK}.{symbol}", T0 + 1000 * (k + 1))

    def run(pipeline: Pipeline, label: str, count: int) -> list[float]:
        nonlocal newest
        executor = ThreadPoolExecutor(1, thread_name_prefix="beat-1s")

        def one() -> tuple[int, float]:
            nonlocal newest
            newest += 1
            Bar.objects.bulk_create(bars(newest))
            close(newest)
            start = time.perf_counter()
            published = pipeline.snapshots()
            return len(published), time.perf_counter() - start

        async def cycles_on_the_loop() -> list[tuple[int, float]]:
            return [await sync_to_async(one, thread_sensitive=False, executor=executor)() for _ in range(count)]

        results = asyncio.run(cycles_on_the_loop())
        executor.shutdown()
        assert all(n == CYCLE_PAIRS for n, _ in results), results
        times = [t for _, t in results[1:]]  # the first cycle also warms up (formation models, caches)
        print(
            f"  {label}: median {statistics.median(times):.3f} s, best {min(times):.3f} s, "
            f"worst {max(times):.3f} s over {len(times)} cycles "
            f"({statistics.median(times) / CYCLE_PAIRS * 1e3:.2f} ms a pair; "
            f"{'fits' if statistics.median(times) < 1.0 else 'DOES NOT FIT'} its 1 s cadence)"
        )
        return times

    print(f"snapshot cycle: {CYCLE_PAIRS} active 1 s pairs over {CYCLE_SYMBOLS} symbols, W = {window}, a bar a cycle")
    exchange = Exchange("ws://127.0.0.1:9/market", "http://127.0.0.1:9")
    runtime = Runtime.build(exchange=exchange, embedded=True, stats_process=True)
    try:
        run(Pipeline(runtime), "embedded mode (statistics in the child process)", cycles)
    finally:
        runtime.close()
    runtime = Runtime.build(exchange=exchange, embedded=True, stats_process=False)
    try:
        run(Pipeline(runtime), "statistics in the cycle's process", cycles)
        with statsmodels_tests():
            run(Pipeline(runtime), "statistics in the cycle's process, as before (statsmodels)", 3)
    finally:
        runtime.close()


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
    parser.add_argument("--cycles", type=int, default=8, help="snapshot cycles of 200 pairs to time")
    args = parser.parse_args()
    workdir = django_on_fresh_database("analytics")
    try:
        tests()
        cost()
        cycle(args.cycles)
        from analytics.models import Bar, Pair, Snapshot

        Bar.objects.all().delete()
        Snapshot.objects.all().delete()
        Pair.objects.exclude(symbol_a="BTCUSDT", symbol_b="ETHUSDT").delete()
        Pair.objects.update(active=True)
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
