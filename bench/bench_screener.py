"""Screener benchmark: what it finds on the offline exchange's universe, and what a run costs.

1. Discoveries: on the universe the offline exchange serves (``universe_plan``: a few
   groups cointegrated by construction, the rest independent random walks), for
   ``--seeds`` seeds of ``--symbols-found`` symbols at W = 1,000 closed 1m bars,
   the share of planted pairs found significant (recall) and the share of
   significant pairs that were not planted (the false-discovery proportion, to
   compare with the FDR of 0.05).
2. Cost, one core: a run over 50 symbols (1,225 pairs) and 100 symbols (4,950
   pairs) at W = 1,000: the statistics alone (``analytics.screener.screen`` on the
   closes), and end to end with the bars stored (``screener_compute``: the bars
   read from SQLite, nothing left to fetch). The same run measures the baseline,
   the bare statsmodels ``coint`` in both orders, on a sample of the pairs.
   Goals: <= 10 s (50 symbols) and <= 30 s (100 symbols) end to end.

    python bench/bench_screener.py [--seeds 10] [--symbols-found 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import combinations

import numpy as np
from common import django_on_fresh_database, remove

MINUTE = 60_000
DAY = 86_400_000
EPOCH = 1_569_369_600_000  # 2019-09-25, a whole day: where the universe's paths start
WINDOW = 1_000


def universe_legs(seed: int, n: int, first_open: int, count: int = WINDOW) -> tuple[dict, set]:
    """The closes of the universe's untraded symbols over ``count`` 1m bars, and its planted pairs."""
    from ingestion.simulator.universe import UniverseMarket, universe_plan

    plan = universe_plan(seed, n + 2)  # the 2 traded symbols are not part of it
    market = UniverseMarket(plan, seed=seed, epoch=EPOCH)
    times = first_open + MINUTE * np.arange(count, dtype=np.int64)
    legs = {symbol: (times, market.candles(symbol, first_open, count).closes) for symbol in market.symbols}
    return legs, {frozenset((p.symbol_a, p.symbol_b)) for p in plan.planted}


def discoveries(seeds: int, n: int) -> None:
    from analytics.screener import screen

    print(f"screener discoveries: {seeds} seeds x {n} symbols of the offline exchange's universe, W = {WINDOW} 1m bars")
    recalls, fdps, found_total = [], [], 0
    for seed in range(seeds):
        legs, planted = universe_legs(seed, n, EPOCH + 200 * DAY)
        significant = {frozenset((p.symbol_a, p.symbol_b)) for p in screen(legs, window=WINDOW) if p.significant}
        recalls.append(len(planted & significant) / len(planted) if planted else 1.0)
        fdps.append(len(significant - planted) / len(significant) if significant else 0.0)
        found_total += len(significant)
    print(
        f"  recall (planted pairs found at q < 0.05): mean {statistics.fmean(recalls):.3f}, min {min(recalls):.3f}\n"
        f"  false-discovery proportion (significant, not planted): mean {statistics.fmean(fdps):.3f}, "
        f"max {max(fdps):.3f} (FDR chosen: 0.05); {found_total} significant pairs in all"
    )


def store_bars(legs: dict) -> None:
    from analytics.models import Bar

    Bar.objects.all().delete()  # a universe of its own each time
    rows = []
    for symbol, (times, closes) in legs.items():
        for t, c in zip(times.tolist(), closes.tolist(), strict=True):
            rows.append(
                Bar(symbol=symbol, interval="1m", open_time=t, open=c, high=c, low=c, close=c, volume=1, trades=1)
            )
    Bar.objects.bulk_create(rows, batch_size=5000)


def cost(n: int) -> None:
    from statsmodels.tsa.stattools import coint

    from analytics import services
    from analytics.screener import screen

    first_open = EPOCH + 300 * DAY
    legs, _ = universe_legs(1, n, first_open, WINDOW + 1)  # the bars a run reads: the window and one before
    pairs = n * (n - 1) // 2
    sample = list(combinations(sorted(legs), 2))[:100]
    started = time.perf_counter()
    for a, b in sample:
        coint(legs[a][1], legs[b][1])
        coint(legs[b][1], legs[a][1])
    bare = (time.perf_counter() - started) / len(sample) * pairs
    started = time.perf_counter()
    screen(legs, window=WINDOW)
    alone = time.perf_counter() - started
    store_bars(legs)
    now = first_open + (WINDOW + 1) * MINUTE + 30_000  # the bar after the stored ones is in progress
    started = time.perf_counter()
    _, ranked, skipped = services.screener_compute(
        sorted(legs), interval="1m", window=WINDOW, fdr=0.05, rest_url="http://127.0.0.1:9", now=now
    )
    end_to_end = time.perf_counter() - started
    assert len(ranked) == pairs and not skipped, (len(ranked), skipped)
    goal = 10 if n <= 50 else 30
    print(
        f"  {n} symbols ({pairs:,} pairs): statistics alone {alone:.1f} s, end to end with stored bars "
        f"{end_to_end:.1f} s (goal <= {goal} s: {'met' if end_to_end <= goal else 'NOT met'}); the bare statsmodels "
        f"coint both ways, from {len(sample)} pairs: {bare:.0f} s, {bare / alone:.1f}x the statistics"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--symbols-found", type=int, default=30)
    parser.add_argument("--sizes", default="50,100", help="universe sizes to time")
    args = parser.parse_args()
    workdir = django_on_fresh_database("screener")
    try:
        discoveries(args.seeds, args.symbols_found)
        print(f"screener cost at W = {WINDOW}, one core:")
        for n in (int(s) for s in args.sizes.split(",")):
            cost(n)
    finally:
        remove(workdir)


if __name__ == "__main__":
    main()
