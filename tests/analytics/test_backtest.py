"""The backtest's booking against hand-computed trades and an independent computation of its equity and metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alerts import rules
from analytics.backtest import (
    Costs,
    Funding,
    PairSettings,
    Signal,
    backtest,
    book,
    position_mark,
    position_open,
    signals_of,
    snapshots_of,
    walk_forward,
)
from analytics.replay import snapshots_replay
from analytics.snapshot import Thresholds

T0 = 1_700_000_000_000
MINUTE = 60_000


def grid(n: int) -> np.ndarray:
    return T0 + MINUTE * np.arange(n, dtype=np.int64)


def test_a_long_spread_trade_by_hand():
    """Entry long_spread at bar 1, exit at bar 3: buy A, sell beta of B, slippage against, 5 bps fees."""
    y = [100.0, 101.0, 102.0, 103.0, 104.0]
    x = [50.0, 50.5, 51.0, 51.2, 51.0]
    costs = Costs(fee_bps=5, slippage_bps=1, notional=1_000, delay_bars=0)
    signals = [Signal(1, "entry", "long_spread", "entry", 2.0), Signal(3, "exit", "long_spread", "reverted")]
    result = book(grid(5), y, x, signals, interval="1m", costs=costs)

    (trade,) = result.trades
    qty_a = 1_000 / 101.0  # notional / the signal bar's close of A
    qty_b = -2.0 * qty_a  # sold
    entry_a, entry_b = 101.0 * 1.0001, 50.5 * 0.9999  # buy A dearer, sell B cheaper
    exit_a, exit_b = 103.0 * 0.9999, 51.2 * 1.0001  # sell A cheaper, buy back B dearer
    fees = 0.0005 * (abs(qty_a) * entry_a + abs(qty_b) * entry_b + abs(qty_a) * exit_a + abs(qty_b) * exit_b)
    gross = qty_a * (exit_a - entry_a) + qty_b * (exit_b - entry_b)
    assert (trade.qty_a, trade.qty_b) == pytest.approx((qty_a, qty_b), rel=1e-12)
    assert (trade.entry_price_a, trade.entry_price_b) == pytest.approx((entry_a, entry_b), rel=1e-12)
    assert (trade.exit_price_a, trade.exit_price_b) == pytest.approx((exit_a, exit_b), rel=1e-12)
    assert trade.fees == pytest.approx(fees, rel=1e-12)
    assert trade.funding == 0
    assert trade.pnl == pytest.approx(gross - fees, rel=1e-12)
    assert (trade.entry_time, trade.exit_time, trade.reason, trade.bars) == (
        T0 + MINUTE,
        T0 + 3 * MINUTE,
        "reverted",
        2,
    )
    # Equity: nothing before the entry; marked at the closes with the entry's fees; realised at the exit.
    entry_fees = 0.0005 * (abs(qty_a) * entry_a + abs(qty_b) * entry_b)
    mark2 = qty_a * (102.0 - entry_a) + qty_b * (51.0 - entry_b) - entry_fees
    expected = [0.0, qty_a * (101 - entry_a) + qty_b * (50.5 - entry_b) - entry_fees, mark2, trade.pnl, trade.pnl]
    np.testing.assert_allclose(result.equity, expected, rtol=1e-12, atol=1e-12)


def test_a_short_spread_trade_filled_a_bar_late_with_funding_inside():
    """short_spread sells A and buys B; delay_bars 1; a funding time while held is paid by each leg."""
    y = [200.0, 198.0, 199.0, 197.0, 196.0, 195.0]
    x = [10.0, 10.1, 10.0, 9.9, 9.95, 9.9]
    costs = Costs(fee_bps=4, slippage_bps=2, notional=5_000, delay_bars=1)
    signals = [Signal(0, "entry", "short_spread", "entry", 15.0), Signal(3, "exit", "short_spread", "reverted")]
    # Entry fills at bar 1's close (held from T0 + 2 min), exit at bar 4's close (T0 + 5 min).
    funding_a = [Funding(T0 + 2 * MINUTE + 30_000, 0.0001), Funding(T0 + 5 * MINUTE, 0.01)]  # the second: not held
    funding_b = [Funding(T0 + 3 * MINUTE, -0.0002), Funding(T0 + 2 * MINUTE - 1, 0.05)]  # the second: before
    result = book(grid(6), y, x, signals, interval="1m", costs=costs, funding_a=funding_a, funding_b=funding_b)

    (trade,) = result.trades
    qty_a = -5_000 / 200.0  # the signal bar's close
    qty_b = 15.0 * 5_000 / 200.0
    entry_a, entry_b = 198.0 * (1 - 0.0002), 10.1 * (1 + 0.0002)
    exit_a, exit_b = 196.0 * (1 + 0.0002), 9.95 * (1 - 0.0002)
    # A is short: a positive rate is received. Marks: the closes of the grid points at or before each time.
    funding = qty_a * 199.0 * 0.0001 + qty_b * 9.9 * -0.0002  # A at bar 2 (opens 2 min in), B at bar 3
    fees = 0.0004 * (abs(qty_a) * (entry_a + exit_a) + abs(qty_b) * (entry_b + exit_b))
    gross = qty_a * (exit_a - entry_a) + qty_b * (exit_b - entry_b)
    assert trade.funding == pytest.approx(funding, rel=1e-12)
    assert trade.funding < 0  # received on balance
    assert trade.fees == pytest.approx(fees, rel=1e-12)
    assert trade.pnl == pytest.approx(gross - fees - funding, rel=1e-12)
    assert (trade.entry_time, trade.exit_time, trade.bars) == (T0, T0 + 3 * MINUTE, 3)


def test_a_position_open_at_the_end_closes_there_and_an_entry_without_a_fill_is_none():
    y, x = [10.0, 11.0, 12.0, 13.0], [5.0, 5.0, 5.0, 5.0]
    signals = [Signal(1, "entry", "long_spread", "entry", 1.0)]
    (trade,) = book(grid(4), y, x, signals, interval="1m", costs=Costs()).trades
    assert (trade.reason, trade.exit_time, trade.exit_price_a) == ("end", T0 + 3 * MINUTE, pytest.approx(13 * 0.9999))
    late = [Signal(3, "entry", "long_spread", "entry", 1.0)]
    assert book(grid(4), y, x, late, interval="1m", costs=Costs(delay_bars=1)).trades == []


def test_costs_refuse_what_cannot_be_traded():
    with pytest.raises(ValueError, match="fee_bps must be >= 0"):
        Costs(fee_bps=-1)
    with pytest.raises(ValueError, match="notional must be > 0"):
        Costs(notional=0)
    with pytest.raises(ValueError, match="delay_bars must be >= 0"):
        Costs(delay_bars=-1)


def reference_book(times, y, x, signals, costs: Costs, funding_a, funding_b, interval_ms):
    """The booking of docs/analytics.md ("Backtest") written out trade by trade, bar by bar: equity and PnLs."""
    n = len(times)
    slip, fee = costs.slippage_bps / 1e4, costs.fee_bps / 1e4
    # The rule's entries paired with their exits (an entry that cannot fill in range is no trade).
    pairs, entry = [], None
    for s in signals:
        if s.kind == "entry" and entry is None and s.at + costs.delay_bars < n:
            entry = s
        elif s.kind == "exit" and entry is not None:
            pairs.append((entry, s.at))
            entry = None
    if entry is not None:
        pairs.append((entry, None))
    equity, pnls = np.zeros(n), []
    for s, exit_at in pairs:
        fe = s.at + costs.delay_bars
        fx = n - 1 if exit_at is None else max(min(exit_at + costs.delay_bars, n - 1), fe)
        sign = 1 if s.direction == "long_spread" else -1
        qa = sign * costs.notional / y[s.at]
        qb = -sign * s.hedge_ratio * costs.notional / y[s.at]
        ea = y[fe] * (1 + slip) if qa > 0 else y[fe] * (1 - slip)
        eb = x[fe] * (1 + slip) if qb > 0 else x[fe] * (1 - slip)
        entry_fees = fee * (abs(qa) * ea + abs(qb) * eb)
        held_from = times[fe] + interval_ms

        def paid(until, *, inclusive, qa=qa, qb=qb, held_from=held_from):
            total = 0.0
            for rates, q, px in ((funding_a, qa, y), (funding_b, qb, x)):
                for when, rate in rates:
                    if held_from <= when and (when <= until if inclusive else when < until):
                        j = max(i for i in range(n) if times[i] <= when)
                        total += q * px[j] * rate
            return total

        for k in range(fe, fx):
            mark = qa * (y[k] - ea) + qb * (x[k] - eb)
            equity[k] += mark - entry_fees - paid(times[k] + interval_ms, inclusive=True)
        xa = y[fx] * (1 - slip) if qa > 0 else y[fx] * (1 + slip)
        xb = x[fx] * (1 - slip) if qb > 0 else x[fx] * (1 + slip)
        fees = entry_fees + fee * (abs(qa) * xa + abs(qb) * xb)
        pnl = qa * (xa - ea) + qb * (xb - eb) - fees - paid(times[fx] + interval_ms, inclusive=False)
        pnls.append(pnl)
        equity[fx:] += pnl
    return equity, pnls


@pytest.mark.parametrize("seed", range(8))
def test_booking_equals_a_bar_by_bar_reference_and_the_metrics_equal_pandas(seed):
    rng = np.random.default_rng(seed)
    n = 400
    times = grid(n)
    x = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    y = 2 * x + 5 * np.sin(np.arange(n) / 7) + 100
    signals, k = [], 5
    while k < n:
        d = "long_spread" if rng.random() < 0.5 else "short_spread"
        signals.append(Signal(k, "entry", d, "entry", float(rng.uniform(1.5, 2.5))))
        k += int(rng.integers(3, 40))
        if k < n:
            signals.append(Signal(k, "exit", d, "reverted"))
        k += int(rng.integers(1, 20))
    funding_a = [
        Funding(int(T0 + MINUTE * t + rng.integers(0, MINUTE)), float(rng.normal(1e-4, 3e-4))) for t in range(3, n, 47)
    ]
    funding_b = [Funding(int(T0 + MINUTE * t), float(rng.normal(1e-4, 3e-4))) for t in range(10, n, 31)]
    costs = Costs(fee_bps=4.5, slippage_bps=1.5, notional=7_500, delay_bars=int(seed % 3))

    result = book(times, y, x, signals, interval="1m", costs=costs, funding_a=funding_a, funding_b=funding_b)
    equity, pnls = reference_book(times, y, x, signals, costs, funding_a, funding_b, MINUTE)
    np.testing.assert_allclose(result.equity, equity, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([t.pnl for t in result.trades], pnls, rtol=1e-9, atol=1e-9)

    # The metrics, from their definitions, with pandas on the reference equity.
    curve = pd.Series(equity)
    changes = pd.concat([pd.Series([0.0]), curve]).diff().dropna()
    sharpe = changes.mean() / changes.std(ddof=1) * math.sqrt(365 * 86_400 / 60)
    drawdown = (pd.concat([pd.Series([0.0]), curve]).cummax() - pd.concat([pd.Series([0.0]), curve])).max()
    summary = result.summary
    assert summary["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    assert summary["max_drawdown"] == pytest.approx(drawdown, rel=1e-9, abs=1e-9)
    assert summary["max_drawdown_pct"] == pytest.approx(100 * drawdown / 7_500, rel=1e-9, abs=1e-9)
    assert summary["net_pnl"] == pytest.approx(sum(pnls), rel=1e-9, abs=1e-9)
    assert summary["return_pct"] == pytest.approx(100 * sum(pnls) / 7_500, rel=1e-9, abs=1e-9)
    assert summary["trades"] == len(pnls)
    assert summary["wins"] == sum(p > 0 for p in pnls)
    assert summary["net_pnl"] == pytest.approx(summary["gross_pnl"] - summary["fees"] - summary["funding"], abs=1e-9)
    assert summary["bars"] == n and (summary["start"], summary["end"]) == (int(times[0]), int(times[-1]))


def test_a_paper_position_marks_as_the_backtest_books():
    position = position_open(
        direction="long_spread", hedge_ratio=2.0, entry_time=T0, signal_price_a=100, close_a=100, close_b=50,
        costs=Costs(notional=1_000),
    )  # fmt: skip
    qa, qb = 10.0, -20.0
    ea, eb = 100 * 1.0001, 50 * 0.9999
    fees = 0.0005 * (qa * ea + -qb * eb)
    assert position_mark(position, 101, 50.2) == pytest.approx(qa * (101 - ea) + qb * (50.2 - eb) - fees, rel=1e-12)


def cointegrated(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    spread = np.zeros(n)
    for k in range(1, n):
        spread[k] = 0.8 * spread[k - 1] + rng.normal(0, 0.1)
    spread[n // 2] += 4  # a shock
    return grid(n), 1.5 * x + 20 + spread, x


SETTINGS = PairSettings(1, ("AUSDT", "BUSDT"), "1m", 120, 60, Thresholds())


def live_rule(entry_z: float = 2.0, exit_z: float = 0.5):
    thresholds = rules.Thresholds(entry_z=entry_z, exit_z=exit_z)
    return (lambda state, snapshot: rules.evaluate(state, snapshot, thresholds)), rules.RuleState()


def test_the_backtest_trades_what_the_live_rule_fires_on_the_production_snapshots():
    times, y, x = cointegrated(700)
    rule, state = live_rule()
    progress = []
    result = backtest(times, y, x, settings=SETTINGS, rule=rule, state=state, costs=Costs(), progress=progress.append)
    # The live rule stepped over the same snapshots, independently of the booking.
    fired, previous, state = [], None, rules.RuleState()
    thresholds = rules.Thresholds()
    for k, snapshot in enumerate(snapshots_replay(times, y, x, pair=1, symbols=("AUSDT", "BUSDT"), interval="1m",
                                                  window=120, min_bars=60, thresholds=Thresholds())):  # fmt: skip
        state, events = rules.evaluate(state, snapshot, thresholds)
        fired += [
            (k, e.kind, e.direction, previous.statistics.hedge_ratio if e.kind == "entry" else None) for e in events
        ]
        previous = snapshot
    entries = [f for f in fired if f[1] == "entry"]
    assert entries, "the market should fire"
    assert [(int((t.entry_time - T0) // MINUTE), t.direction, t.hedge_ratio) for t in result.trades] == [
        (k, d, beta) for k, _, d, beta in entries
    ]
    exits = [k for k, kind, _, _ in fired if kind == "exit"]
    assert [int((t.exit_time - T0) // MINUTE) for t in result.trades if t.reason != "end"] == exits
    assert progress[0] == 0 and progress[-1] == 1 and progress == sorted(progress)


def test_walk_forward_scores_each_threshold_pair_on_both_parts_and_puts_the_best_in_sample_first():
    times, y, x = cointegrated(600)
    rows = walk_forward(
        times, y, x, settings=SETTINGS, rule_for=live_rule, entry_zs=[1.5, 2.0, 2.5], exit_zs=[0.0, 0.5, 2.0],
        costs=Costs(),
    )  # fmt: skip
    assert len(rows) == 7  # entry_z > exit_z: (2.0, 2.0) and (1.5, 2.0) are no rule
    sharpes = [r["in_sample"]["sharpe"] for r in rows if r["in_sample"]["sharpe"] is not None]
    assert sharpes == sorted(sharpes, reverse=True)
    best = rows[0]
    # Each part is its own backtest: the in-sample one equals a backtest of the first half's signals.
    rule, state = live_rule(best["entry_z"], best["exit_z"])
    snapshots = list(snapshots_replay(times, y, x, pair=1, symbols=("AUSDT", "BUSDT"), interval="1m", window=120,
                                      min_bars=60, thresholds=Thresholds()))  # fmt: skip
    split = 300
    first = book(times[:split], y[:split], x[:split], signals_of(snapshots[:split], rule, state), interval="1m",
                 costs=Costs())  # fmt: skip
    assert best["in_sample"] == first.summary
    assert best["out_of_sample"]["start"] == int(times[split])
    with pytest.raises(ValueError, match="cannot be split"):
        walk_forward(times[:1], y[:1], x[:1], settings=SETTINGS, rule_for=live_rule, entry_zs=[2], exit_zs=[0.5],
                     costs=Costs())  # fmt: skip


def test_the_bars_before_the_range_are_history_only():
    """The rule steps over them (its run carries on) and trades from the range's first grid point."""
    times, y, x = cointegrated(700)
    rule, state = live_rule()
    start = 350
    result = backtest(times, y, x, settings=SETTINGS, rule=rule, state=state, costs=Costs(), trade_from=start)
    stepped, fired = rules.RuleState(), []
    thresholds = rules.Thresholds()
    replay = snapshots_replay(
        times, y, x, pair=1, symbols=("AUSDT", "BUSDT"), interval="1m", window=120, min_bars=60, thresholds=Thresholds()
    )
    for k, snapshot in enumerate(replay):
        stepped, events = rules.evaluate(stepped, snapshot, thresholds)
        fired += [(k, e.kind) for e in events if k >= start]
    first_entry = next(k for k, kind in fired if kind == "entry")
    assert result.trades and result.trades[0].entry_time == int(times[first_entry])
    assert result.summary["start"] == int(times[start]) and result.summary["bars"] == 700 - start
    assert len(result.equity) == 700 - start


def test_snapshots_handed_in_give_the_same_run_and_grid_as_computed_ones():
    """The service computes the snapshots once for a run and its grid: the same results as each on its own."""
    times, y, x = cointegrated(500)
    snapshots = snapshots_of(times, y, x, SETTINGS)
    rule, state = live_rule()
    alone = backtest(times, y, x, settings=SETTINGS, rule=rule, state=state, costs=Costs(), trade_from=150)
    rule, state = live_rule()
    handed = backtest(
        times, y, x, settings=SETTINGS, rule=rule, state=state, costs=Costs(), trade_from=150, snapshots=snapshots
    )
    assert handed.summary == alone.summary and handed.trades == alone.trades
    grid = {"settings": SETTINGS, "rule_for": live_rule, "entry_zs": [1.5, 2.0], "exit_zs": [0.5], "costs": Costs()}
    assert walk_forward(times, y, x, **grid, snapshots=snapshots) == walk_forward(times, y, x, **grid)
