"""Chart series as deltas: exact, or not sent (the page then gets the whole series)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.stats import zscore_series
from dashboard.deltas import series_delta, series_delta_apply


def recorded_signal(k: int) -> float | None:
    """The signal z recorded when bar ``k`` closed (none for some bars, as for bars without a snapshot)."""
    return None if k % 7 == 0 else round(np.sin(k / 5.0) * 2.5, 6)


def window_series(prices_a: np.ndarray, prices_b: np.ndarray, start: int, n: int, model: dict) -> dict:
    """The series the snapshot cycle makes of the window [start, start + n) under ``model``."""
    y, x = prices_a[start : start + n], prices_b[start : start + n]
    spread = y - model["hedge_ratio"] * x
    z = zscore_series(spread, model["spread_mean"], model["spread_std"])
    return {
        "pair": 1,
        "as_of": 1000 * (start + n - 1),
        "t": [1000 * k for k in range(start, start + n)],
        "price_a": y.tolist(),
        "price_b": x.tolist(),
        "spread": [float(v) for v in spread],
        "zscore": [float(v) for v in z],
        "signal_zscore": [recorded_signal(k) for k in range(start, start + n)],
    }


@pytest.fixture
def market():
    rng = np.random.default_rng(3)
    b = 3000 + np.cumsum(rng.normal(0, 5, 400))
    a = 500 + 20 * b + rng.normal(0, 40, 400)
    return a, b


@pytest.mark.parametrize("moved", [1, 2, 7, 299])
def test_a_delta_applied_gives_exactly_the_new_series(market, moved):
    first = {"ready": True, "hedge_ratio": 19.98, "spread_mean": 512.3, "spread_std": 41.7}
    second = {"ready": True, "hedge_ratio": 20.013, "spread_mean": 498.1, "spread_std": 39.2}
    previous = window_series(*market, 0, 300, first)
    current = window_series(*market, moved, 300, second)
    delta = series_delta(previous, current, second)
    assert delta is not None
    assert delta["drop"] == moved and len(delta["t"]) == moved
    assert delta["signal_zscore"] == current["signal_zscore"][-moved:]  # the new points' recorded signal
    assert series_delta_apply(previous, delta) == current  # bit for bit, every point rescaled


def test_a_delta_while_the_window_fills_drops_nothing(market):
    warm = {"ready": False, "hedge_ratio": None, "spread_mean": None, "spread_std": None}
    previous = window_series(*market, 0, 40, {"hedge_ratio": 1.0, "spread_mean": 0.0, "spread_std": 1.0})
    previous["spread"] = previous["zscore"] = [None] * 40
    current = {**window_series(*market, 0, 41, {"hedge_ratio": 1.0, "spread_mean": 0.0, "spread_std": 1.0})}
    current["spread"] = current["zscore"] = [None] * 41
    delta = series_delta(previous, current, warm)
    assert delta["drop"] == 0 and len(delta["t"]) == 1
    assert series_delta_apply(previous, delta) == current


def test_no_delta_without_an_older_window_of_the_same_pair_or_when_it_would_not_be_exact(market):
    model = {"ready": True, "hedge_ratio": 20.0, "spread_mean": 500.0, "spread_std": 40.0}
    current = window_series(*market, 5, 300, model)
    assert series_delta(None, current, model) is None
    assert series_delta({**current, "pair": 2}, current, model) is None
    assert series_delta(current, current, model) is None  # the same bar: nothing moved
    previous = window_series(*market, 0, 300, model)
    previous["price_a"] = previous["price_a"][:-1] + [previous["price_a"][-1] + 1.0]  # a bar rebuilt since
    assert series_delta(previous, current, model) is None
    too_old = window_series(*market, 0, 300, model)
    far = window_series(*market, 100, 300, model)
    assert series_delta_apply(too_old, series_delta(too_old, far, model)) == far


def test_a_point_keeps_its_recorded_signal_and_a_changed_one_is_sent_whole(market):
    model = {"ready": True, "hedge_ratio": 20.0, "spread_mean": 500.0, "spread_std": 40.0}
    previous = window_series(*market, 0, 300, model)
    current = window_series(*market, 3, 300, model)
    applied = series_delta_apply(previous, series_delta(previous, current, model))
    assert applied["signal_zscore"][:297] == previous["signal_zscore"][3:]  # kept as recorded, never rescored
    # A point whose signal was recorded since the page's series (a bar caught up late): no delta, the whole series.
    late = {**current, "signal_zscore": [*current["signal_zscore"][:-10], 9.9, *current["signal_zscore"][-9:]]}
    assert series_delta(previous, late, model) is None
    # A series cached before signals existed is no base for a delta either.
    older = {k: v for k, v in previous.items() if k != "signal_zscore"}
    assert series_delta(older, current, model) is None


def test_a_delta_across_an_outage_keeps_it_for_the_page_to_mark(market):
    """Bars more than an interval apart (the feed down, or neither leg trading): the window's times jump, and
    the delta after a silence brings its new point at its own time. The page draws each jump as a break."""
    model = {"ready": True, "hedge_ratio": 20.0, "spread_mean": 500.0, "spread_std": 40.0}

    def with_times(series: dict, times: list[int]) -> dict:
        return {**series, "t": times, "as_of": times[-1]}

    outage = [1000 * k for k in range(150)] + [1000 * (k + 90) for k in range(150, 300)]  # 90 s with no bar
    previous = with_times(window_series(*market, 0, 300, model), outage)
    # The next bar comes 45 s after the last one (the exchange was silent): the window moves by one point.
    current = with_times(window_series(*market, 1, 300, model), [*outage[1:], outage[-1] + 45_000])
    delta = series_delta(previous, current, model)
    assert delta is not None
    assert delta["drop"] == 1 and delta["t"] == [outage[-1] + 45_000]
    applied = series_delta_apply(previous, delta)
    assert applied == current
    steps = np.diff(applied["t"])
    assert sorted(set(steps.tolist())) == [1000, 45_000, 91_000]  # both outages are still there
