"""Backtest benchmark: 30 days of 1m bars at W = 300 for one pair, a single run and a 5 x 4 walk-forward grid.

The engine as the backtest service runs it (``analytics.backtest``: the production
snapshots through ``analytics.replay``, the live alert rule, the booking), on one
core, on a cointegrated pair's aligned 1 m closes (43,200 grid points in the range,
one window of history before it). The same run measures its baseline: the
statistics alone (``pair_stats`` on every window), which the backtest cannot do
without; the backtest's own cost is what it adds. The grid reuses each window's
snapshots for all 20 threshold pairs, so it should cost little more than a single
run (goal: single <= 30 s, grid <= 1.3 x single).

    python bench/bench_backtest.py [--days 30] [--window 300]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from common import ROOT  # noqa: F401 - puts the project on the path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairs_project.settings")

MINUTE = 60_000
T0 = 1_767_225_600_000


def market(n: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cointegrated pair's 1 m closes: B a random walk, A = 1.5 B + 20 + an AR(1) spread with shocks."""
    rng = np.random.default_rng(seed)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    spread = np.zeros(n)
    noise = rng.normal(0, 0.1, n)
    for k in range(1, n):
        spread[k] = 0.8 * spread[k - 1] + noise[k]
    spread[rng.integers(0, n, n // 500)] += rng.choice([-1.0, 1.0], n // 500) * 0.8
    return T0 + MINUTE * np.arange(n, dtype=np.int64), 1.5 * x + 20 + spread, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--window", type=int, default=300)
    args = parser.parse_args()

    import django

    django.setup()
    from alerts import rules
    from analytics.backtest import Costs, PairSettings, backtest, walk_forward
    from analytics.snapshot import Thresholds
    from analytics.stats import pair_stats

    points = int(args.days * 1440)
    window = args.window
    times, y, x = market(points + window)
    settings = PairSettings(1, ("AUSDT", "BUSDT"), "1m", window, min(100, window), Thresholds())

    def rule_for(entry_z: float, exit_z: float):
        thresholds = rules.Thresholds(entry_z=entry_z, exit_z=exit_z)
        return (lambda state, snapshot: rules.evaluate(state, snapshot, thresholds)), rules.RuleState()

    print(f"backtest: {points:,} grid points of 1m bars ({args.days:g} days) at W = {window}, one pair, one core")
    started = time.perf_counter()
    for k in range(window, len(times)):
        pair_stats(y[k + 1 - window : k + 1], x[k + 1 - window : k + 1])
    baseline = time.perf_counter() - started
    print(f"  {'baseline: the statistics alone (pair_stats on each window in range):':<72}{baseline:>8.1f} s")

    rule, state = rule_for(2.0, 0.5)
    started = time.perf_counter()
    result = backtest(times, y, x, settings=settings, rule=rule, state=state, costs=Costs(), trade_from=window)
    single = time.perf_counter() - started
    print(f"  {'single run (snapshots, the live rule, the booking):':<72}{single:>8.1f} s")
    print(f"  {'ratio single / baseline:':<72}{single / baseline:>8.2f}")

    started = time.perf_counter()
    rows = walk_forward(
        times,
        y,
        x,
        settings=settings,
        rule_for=rule_for,
        entry_zs=(1.5, 2.0, 2.5, 3.0, 3.5),
        exit_zs=(0.0, 0.25, 0.5, 1.0),
        costs=Costs(),
        trade_from=window,
    )
    grid = time.perf_counter() - started
    print(f"  {'walk-forward grid, 5 entry_z x 4 exit_z (20 rules on the same snapshots):':<72}{grid:>8.1f} s")
    print(f"  {'ratio grid / single:':<72}{grid / single:>8.2f}")
    s = result.summary
    print(
        f"  the single run: {s['trades']} trades, net {s['net_pnl']:,.2f} on a notional of 10,000, "
        f"Sharpe {s['sharpe'] if s['sharpe'] is None else round(s['sharpe'], 2)}; the grid's choice: entry "
        f"{rows[0]['entry_z']:g} / exit {rows[0]['exit_z']:g}"
    )
    print(
        f"goals: single <= 30 s: {'met' if single <= 30 else 'NOT met'}; "
        f"grid <= 1.3 x single: {'met' if grid <= 1.3 * single else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
