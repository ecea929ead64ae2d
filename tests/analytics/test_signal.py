"""The signal (docs/analytics.md, "The signal") on stored bars, against pandas and statsmodels.

Each recorded snapshot's ``signal_zscore`` must be the previous grid point's
window model (statsmodels OLS, its spread's mean and sample std) applied to the
newest bar, and ``related``/``related_run`` must follow from statsmodels'
``adfuller``/``coint`` p-values and the returns correlation, whatever restarts
happened in between.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import adfuller, coint

from analytics.models import Bar, Pair, Snapshot
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime
from tests.support import T0, cointegrated_ticks, make_pair, run_live, store_and_resample

pytestmark = pytest.mark.django_db


def closes_of(pair: Pair) -> pd.DataFrame:
    """The pair's aligned closes on the grid of both legs' bars, forward-filled (docs/analytics.md)."""
    rows = pd.DataFrame(list(Bar.objects.filter(interval=pair.interval).values("symbol", "open_time", "close")))
    closes = rows.pivot(index="open_time", columns="symbol", values="close").sort_index()
    return closes[[pair.symbol_a, pair.symbol_b]].ffill().dropna()


def window_ending(closes: pd.DataFrame, pair: Pair, at: int) -> pd.DataFrame:
    return closes[closes.index <= at].iloc[-pair.window :]


def model_of(window: pd.DataFrame, pair: Pair) -> tuple[float, float, float]:
    y, x = window[pair.symbol_a].to_numpy(), window[pair.symbol_b].to_numpy()
    beta = sm.OLS(y, sm.add_constant(x)).fit().params[1]
    spread = y - beta * x
    return beta, spread.mean(), spread.std(ddof=1)


def related_of(window: pd.DataFrame, pair: Pair) -> bool:
    y, x = window[pair.symbol_a], window[pair.symbol_b]
    beta = model_of(window, pair)[0]
    adf_p = adfuller((y - beta * x).to_numpy(), regression="c", autolag="AIC", result_object=False)[1]
    coint_p = coint(y.to_numpy(), x.to_numpy())[1]
    correlation = np.log(y).diff().corr(np.log(x).diff())
    return adf_p < pair.max_adf_pvalue and coint_p < pair.max_coint_pvalue and correlation >= pair.min_correlation


def test_each_bars_signal_is_the_previous_windows_model_applied_to_it_across_a_restart():
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(160), 160, restart_at=95)
    closes = closes_of(pair)
    rows = list(Snapshot.objects.filter(pair=pair).order_by("as_of").values_list("as_of", "signal_zscore", "data"))
    assert [as_of for as_of, _, _ in rows] == list(closes.index[: len(rows)])  # every bar, once, in order
    checked = 0
    for as_of, signal, data in rows:
        assert data["signal_zscore"] == signal  # the column the chart reads is the snapshot's own value
        k = closes.index.get_loc(as_of)
        formation = window_ending(closes, pair, closes.index[k - 1]) if k else closes.iloc[:0]
        if len(formation) < pair.min_bars or not data["ready"]:
            assert signal is None and data["signal_hedge_ratio"] is None, as_of
            continue
        beta, mean, std = model_of(formation, pair)
        y_t, x_t = closes.iloc[k][pair.symbol_a], closes.iloc[k][pair.symbol_b]
        assert signal == pytest.approx((y_t - beta * x_t - mean) / std, rel=1e-9, abs=1e-12), as_of
        assert data["signal_hedge_ratio"] == pytest.approx(beta, rel=1e-9), as_of  # the model a trade hedges with
        checked += 1
    assert checked > 100


def test_related_and_its_run_follow_from_statsmodels_across_a_restart():
    # A relationship that holds, then a stretch where one leg wanders off on its own.
    pair = make_pair(window=60, min_bars=40, confirm_bars=5)
    ticks = cointegrated_ticks(150)
    rng = np.random.default_rng(5)
    drift = np.cumsum(rng.normal(0, 30.0, 150))
    ticks = [
        t._replace(
            price=round(
                t.price
                + (drift[(t.timestamp - T0) // 1000] if t.symbol == "BTCUSDT" and t.timestamp >= T0 + 100_000 else 0),
                1,
            )
        )
        for t in ticks
    ]
    run_live(ticks, 150, restart_at=110)
    closes = closes_of(pair)
    expected_run = 0
    seen = set()
    for as_of, data in Snapshot.objects.filter(pair=pair).order_by("as_of").values_list("as_of", "data"):
        if not data["ready"]:
            assert data["related"] is False and data["related_run"] == 0
            continue
        related = related_of(window_ending(closes, pair, as_of), pair)
        expected_run = expected_run + 1 if related else 0
        assert (data["related"], data["related_run"]) == (related, expected_run), as_of
        seen.add(related)
    assert seen == {True, False}  # both outcomes were exercised


def test_the_first_snapshot_scores_its_bar_with_the_formation_window_computed_from_the_bars():
    """No recorded previous snapshot (a new pair, or history lost): the model comes from the bars themselves."""
    pair = make_pair(window=80, min_bars=40)
    store_and_resample(cointegrated_ticks(120))
    Pipeline(Runtime.build(embedded=False)).snapshots(now=T0 + 121_000)
    ((as_of, signal),) = Snapshot.objects.filter(pair=pair).values_list("as_of", "signal_zscore")
    closes = closes_of(pair)
    k = closes.index.get_loc(as_of)
    beta, mean, std = model_of(window_ending(closes, pair, closes.index[k - 1]), pair)
    y_t, x_t = closes.iloc[k][pair.symbol_a], closes.iloc[k][pair.symbol_b]
    assert signal == pytest.approx((y_t - beta * x_t - mean) / std, rel=1e-9)
