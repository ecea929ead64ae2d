"""analytics.stats against independent statsmodels/pandas references, known answers and degenerate input.

No database: the module is pure. Tolerances are explicit on every float comparison;
the reference comparisons use rtol=1e-6 (the implementations agree to ~1e-10).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import orjson
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import adfuller, coint

from analytics.stats import MIN_OBS, PairStats, pair_stats, quality_score, spread_series, zscore_series

RTOL = 1e-6
HALF_LIFE_10 = 2.0 ** (-1.0 / 10.0)  # AR(1) coefficient whose half-life is exactly 10 bars


def make_pair(seed, n, *, alpha=500.0, beta=20.0, phi=HALF_LIFE_10, x0=3000.0, x_step=10.0, noise=10.0):
    """y = alpha + beta * x + s with x a Gaussian random walk and s an AR(1) (phi=1: a random walk)."""
    rng = np.random.default_rng(seed)
    x = x0 + np.cumsum(rng.normal(0.0, x_step, n))
    eps = rng.normal(0.0, noise, n)
    s = np.zeros(n)
    for k in range(1, n):
        s[k] = phi * s[k - 1] + eps[k]
    return alpha + beta * x + s, x


def reference(y, x):
    """Every statistic of docs/analytics.md ("Statistics on the window"), the obvious way: statsmodels, pandas."""
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    alpha, beta = ols.params
    s = pd.Series(y - beta * x)
    adf = adfuller(s.to_numpy(), regression="c", autolag="AIC", result_object=True)
    hl_fit = sm.OLS(s.diff().dropna().to_numpy(), sm.add_constant(s.shift(1).dropna().to_numpy())).fit()
    lam = hl_fit.params[1]
    return {
        "hedge_ratio": beta,
        "intercept": alpha,
        "r_squared": ols.rsquared,
        "spread": s.iloc[-1],
        "spread_mean": s.mean(),
        "spread_std": s.std(),  # pandas default ddof=1
        "zscore": (s.iloc[-1] - s.mean()) / s.std(),
        "correlation": np.log(pd.Series(y)).diff().corr(np.log(pd.Series(x)).diff()),
        "price_correlation": pd.Series(y).corr(pd.Series(x)),
        "adf_stat": adf.statistic,
        "adf_pvalue": adf.pvalue,
        "adf_lag": adf.lags,
        "coint_pvalue": coint(y, x).pvalue,
        "half_life": -math.log(2.0) / lam if lam < 0 else None,
    }


REFERENCE_CASES = {
    "cointegrated_n300": dict(seed=11, n=300),
    "cointegrated_n1000": dict(seed=12, n=1000),
    "random_walk_spread": dict(seed=13, n=300, phi=1.0),
    "negative_hedge_ratio": dict(seed=14, n=300, alpha=9000.0, beta=-1.5, x_step=3.0),
    "sub_dollar_prices": dict(seed=15, n=120, alpha=0.1, beta=2.0, x0=0.5, x_step=0.002, noise=0.001),
}


@pytest.mark.parametrize("case", REFERENCE_CASES.values(), ids=REFERENCE_CASES.keys())
def test_it_matches_statsmodels_and_pandas_on_every_statistic(case):
    y, x = make_pair(**case)
    got = pair_stats(y, x)
    want = reference(y, x)

    for name, expected in want.items():
        actual = getattr(got, name)
        if expected is None:
            assert actual is None, name
        elif name == "adf_lag":
            assert actual == expected
        else:
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=0, err_msg=name)
    assert got.n == len(y)


def test_it_computes_quality_score_from_its_own_fields():
    y, x = make_pair(seed=21, n=300)
    st = pair_stats(y, x)
    score, breakdown = quality_score(
        adf_pvalue=st.adf_pvalue,
        coint_pvalue=st.coint_pvalue,
        correlation=st.correlation,
        half_life=st.half_life,
        r_squared=st.r_squared,
        window=st.n,
    )
    assert st.quality_score == score
    assert st.quality == breakdown


def test_it_recovers_hedge_ratio_and_stationarity_of_a_known_cointegrated_pair():
    # x: random walk around 3000, spread: AR(1) with a 10-bar half-life, y = 500 + 20 x + s.
    # Over 150 seeds the relative error of beta has sd 0.26% (the spread is
    # autocorrelated, which inflates it), so 1% is ~4 sd; ADF p never exceeded 4e-4.
    y, x = make_pair(seed=7, n=1000)
    st = pair_stats(y, x)
    np.testing.assert_allclose(st.hedge_ratio, 20.0, rtol=0.01)
    assert st.adf_pvalue < 0.01
    assert st.coint_pvalue < 0.01
    assert st.correlation > 0.9
    assert st.r_squared > 0.99
    assert st.quality_score > 80


def test_it_recovers_a_ten_bar_half_life():
    # The AR(1) estimate of lambda = phi - 1 = -0.067 has sd ~sqrt((1 - phi^2) / n):
    # 19% of the half-life at n=1000 (a 25% check there would pass or fail by seed),
    # 8% at n=5000 (40 seeds: -13%..+24%), where 25% is ~3 sd.
    y, x = make_pair(seed=7, n=5000)
    st = pair_stats(y, x)
    np.testing.assert_allclose(st.half_life, 10.0, rtol=0.25)


def test_it_scores_a_random_walk_spread_as_non_stationary_and_lower():
    good = pair_stats(*make_pair(seed=7, n=1000))
    bad = pair_stats(*make_pair(seed=7, n=1000, phi=1.0))
    assert bad.adf_pvalue > 0.05
    assert bad.quality["stationarity"]["value"] == 0.0
    assert bad.quality_score < good.quality_score - 20


# --- quality score ---------------------------------------------------------------


def _score(**overrides):
    inputs = dict(adf_pvalue=0.02, coint_pvalue=0.01, correlation=0.7, half_life=12.0, r_squared=0.8, window=300)
    inputs.update(overrides)
    return quality_score(**inputs)[0]


def test_it_keeps_quality_score_in_range_for_random_inputs():
    rng = np.random.default_rng(3)
    for _ in range(2000):
        window = int(rng.integers(1, 2000))
        maybe = lambda v: None if rng.random() < 0.15 else float(v)  # noqa: E731
        score, breakdown = quality_score(
            adf_pvalue=maybe(rng.random()),
            coint_pvalue=maybe(rng.random()),
            correlation=maybe(rng.uniform(-1, 1)),
            half_life=maybe(rng.uniform(-5, 2.5 * window)),
            r_squared=maybe(rng.random()),
            window=window,
        )
        assert 0.0 <= score <= 100.0
        assert all(0.0 <= c["value"] <= 1.0 for c in breakdown.values())
        np.testing.assert_allclose(sum(c["points"] for c in breakdown.values()), score, rtol=1e-12, atol=1e-12)


def test_it_keeps_pair_quality_score_in_range_for_random_pairs():
    rng = np.random.default_rng(4)
    for seed in range(15):
        phi = float(rng.choice([0.0, 0.5, HALF_LIFE_10, 0.99, 1.0]))
        y, x = make_pair(
            seed=seed,
            n=int(rng.integers(MIN_OBS, 400)),
            phi=phi,
            beta=float(rng.uniform(-3, 30)),
            alpha=70000.0,
            noise=float(rng.uniform(0.1, 50)),
        )
        st = pair_stats(y, x)
        assert st.quality_score is not None
        assert 0.0 <= st.quality_score <= 100.0


def test_it_weights_and_bounds_the_score_as_documented():
    score, breakdown = quality_score(
        adf_pvalue=0.0, coint_pvalue=0.0, correlation=0.9, half_life=5.0, r_squared=1.0, window=300
    )
    assert score == 100.0
    assert {k: v["weight"] for k, v in breakdown.items()} == {
        "stationarity": 0.40,
        "correlation": 0.25,
        "mean_reversion": 0.20,
        "fit": 0.15,
    }
    nothing = dict(adf_pvalue=None, coint_pvalue=None, correlation=None, half_life=None, r_squared=None)
    assert quality_score(**nothing, window=300)[0] == 0.0
    # Documented anchor points of each component; stationarity on the larger p-value.
    _, b = quality_score(
        adf_pvalue=0.05, coint_pvalue=0.02, correlation=0.6, half_life=300.0, r_squared=0.25, window=300
    )
    np.testing.assert_allclose([b[k]["value"] for k in b], [0.5, 0.5, 0.0, 0.25], rtol=1e-12)
    _, b = quality_score(
        adf_pvalue=0.01, coint_pvalue=0.05, correlation=0.6, half_life=165.0, r_squared=0.0, window=300
    )
    np.testing.assert_allclose([b[k]["value"] for k in b], [0.5, 0.5, 0.5, 0.0], rtol=1e-12, atol=1e-12)
    _, b = quality_score(
        adf_pvalue=0.01, coint_pvalue=0.01, correlation=-0.9, half_life=0.5, r_squared=None, window=300
    )
    np.testing.assert_allclose([b[k]["value"] for k in b], [0.9, 0.0, 0.5, 0.0], rtol=1e-12)


def test_a_pair_that_fails_its_relationship_tests_never_scores_on_mean_reversion():
    """At p >= 0.10 (either test) the half-life part is 0 whatever the half-life: a random-walk spread
    whose noise happens to give a short half-life does not flatter itself (docs/analytics.md)."""
    for adf_p, coint_p in [(0.10, 0.01), (0.01, 0.10), (0.5, 0.5), (None, 0.01), (0.01, None)]:
        _, b = quality_score(
            adf_pvalue=adf_p, coint_pvalue=coint_p, correlation=0.9, half_life=10.0, r_squared=0.9, window=300
        )
        assert b["mean_reversion"]["value"] == 0.0 and b["stationarity"]["value"] == 0.0
    _, b = quality_score(
        adf_pvalue=0.0999, coint_pvalue=0.01, correlation=0.9, half_life=10.0, r_squared=0.9, window=300
    )
    assert b["mean_reversion"]["value"] == 1.0


def test_a_random_walk_spread_scores_no_points_for_reversion():
    st = pair_stats(*make_pair(seed=7, n=1000, phi=1.0))
    assert max(st.adf_pvalue, st.coint_pvalue) >= 0.10
    assert st.quality["mean_reversion"]["points"] == 0.0 and st.quality["stationarity"]["points"] == 0.0
    assert st.quality_score < 40


def _assert_monotone(scores, *, increasing, strict_slice=slice(None)):
    d = np.diff(scores)
    if increasing:
        assert (d >= -1e-12).all()
        assert (d[strict_slice] > 0).all()
    else:
        assert (d <= 1e-12).all()
        assert (d[strict_slice] < 0).all()


@pytest.mark.parametrize("test", ["adf_pvalue", "coint_pvalue"])
def test_it_scores_lower_pvalues_higher(test):
    ps = np.linspace(0.0, 1.0, 101)  # strictly decreasing from the other test's p (0.02 / 0.01) up to 0.10
    other = {"adf_pvalue": 0.0, "coint_pvalue": 0.0}
    _assert_monotone([_score(**{**other, test: p}) for p in ps], increasing=False, strict_slice=slice(0, 10))


def test_it_scores_higher_correlation_higher():
    cs = np.linspace(-1.0, 1.0, 201)  # strict between 0.3 and 0.9
    _assert_monotone([_score(correlation=c) for c in cs], increasing=True, strict_slice=slice(131, 189))


def test_it_scores_better_fit_higher():
    _assert_monotone([_score(r_squared=r) for r in np.linspace(0, 1, 51)], increasing=True)


def test_it_scores_half_life_best_between_one_bar_and_a_tenth_of_the_window():
    window = 300
    below = np.linspace(0.01, 1.0, 50)
    above = np.linspace(30.0, 300.0, 55)  # strict decay from n/10 to n
    _assert_monotone([_score(half_life=h, window=window) for h in below], increasing=True)
    _assert_monotone([_score(half_life=h, window=window) for h in above], increasing=False)
    best = _score(half_life=1.0, window=window)
    assert _score(half_life=15.0, window=window) == best == _score(half_life=30.0, window=window)
    assert _score(half_life=None, window=window) == _score(half_life=300.0, window=window)
    assert _score(half_life=1e6, window=window) == _score(half_life=None, window=window)


# --- window series and the newest bar --------------------------------------------


def test_it_gives_window_series_consistent_with_the_snapshot():
    y, x = make_pair(seed=31, n=300)
    st = pair_stats(y, x)
    s = spread_series(y, x, st.hedge_ratio)
    z = zscore_series(s, st.spread_mean, st.spread_std)

    assert s.shape == z.shape == (300,)
    np.testing.assert_allclose(s, y - st.hedge_ratio * x, rtol=1e-12)
    np.testing.assert_allclose([s[-1], s.mean(), s.std(ddof=1)], [st.spread, st.spread_mean, st.spread_std], rtol=1e-12)
    np.testing.assert_allclose(z[-1], st.zscore, rtol=1e-12)
    np.testing.assert_allclose([z.mean(), z.std(ddof=1)], [0.0, 1.0], rtol=1e-9, atol=1e-9)
    # Without the intercept (docs/analytics.md, "Statistics on the window") the spread is centred on it.
    np.testing.assert_allclose(st.spread_mean, st.intercept, rtol=1e-9)


def test_it_scores_the_newest_bar_inside_its_own_window():
    y, x = make_pair(seed=32, n=200)
    y[-1] += 300.0  # a shock on the newest bar, so in-window and out-of-window z differ a lot
    st = pair_stats(y, x)
    s = pd.Series(spread_series(y, x, st.hedge_ratio))
    rolling_z = (s - s.rolling(len(s)).mean()) / s.rolling(len(s)).std()
    np.testing.assert_allclose(st.zscore, rolling_z.iloc[-1], rtol=RTOL)
    excluded_z = (s.iloc[-1] - s.iloc[:-1].mean()) / s.iloc[:-1].std()
    assert not math.isclose(st.zscore, excluded_z, rel_tol=0.05)


def test_it_gives_no_zscore_series_for_a_constant_spread():
    assert zscore_series(np.ones(5), 1.0, 0.0) is None
    assert zscore_series(np.ones(5), None, None) is None


# --- API shape ---------------------------------------------------------------------


def test_it_exposes_exactly_the_documented_fields():
    assert [f.name for f in dataclasses.fields(PairStats)] == [
        "n",
        "hedge_ratio",
        "intercept",
        "r_squared",
        "spread",
        "spread_mean",
        "spread_std",
        "zscore",
        "correlation",
        "price_correlation",
        "adf_stat",
        "adf_pvalue",
        "adf_lag",
        "coint_pvalue",
        "half_life",
        "quality_score",
        "quality",
    ]


def test_it_returns_plain_python_numbers():
    st = pair_stats(*make_pair(seed=41, n=300))
    d = st.as_dict()
    assert type(d["n"]) is int and type(d["adf_lag"]) is int
    for name, value in d.items():
        if name not in ("n", "adf_lag", "quality"):
            assert type(value) is float, name
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert orjson.loads(orjson.dumps(d)) == d


def test_it_accepts_pandas_series():
    y, x = make_pair(seed=42, n=150)
    assert pair_stats(pd.Series(y), pd.Series(x)) == pair_stats(y, x)


def test_it_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal length"):
        pair_stats(np.ones(30), np.ones(31))
    with pytest.raises(ValueError, match="1-D"):
        pair_stats(np.ones((30, 2)), np.ones((30, 2)))


def test_it_computes_everything_at_exactly_min_obs():
    st = pair_stats(*make_pair(seed=43, n=MIN_OBS))
    assert None not in (st.hedge_ratio, st.zscore, st.correlation, st.adf_pvalue, st.coint_pvalue, st.quality_score)


# --- degenerate input --------------------------------------------------------------

ALL_STATS = tuple(f.name for f in dataclasses.fields(PairStats) if f.name != "n")
TESTS_AND_SCORE = ("adf_stat", "adf_pvalue", "adf_lag", "coint_pvalue", "half_life")


def _walk(n=60, x0=3000.0, seed=51):
    return x0 + np.cumsum(np.random.default_rng(seed).normal(0.0, 5.0, n))


def _with(a, index, value):
    a = a.copy()
    a[index] = value
    return a


DEGENERATE = {
    # id: (y, x, fields that must be None, fields that must be present)
    "too_short": (2 * _walk(MIN_OBS - 1), _walk(MIN_OBS - 1, seed=52), ALL_STATS, ()),
    "nan_leading": (_with(2 * _walk(), 0, np.nan), _walk(seed=52), ALL_STATS, ()),
    "inf_in_x": (2 * _walk(), _with(_walk(seed=52), 10, np.inf), ALL_STATS, ()),
    "constant_x": (_walk(), np.full(60, 3000.0), ALL_STATS, ()),
    "constant_y": (
        np.full(60, 70000.0),
        _walk(),
        ("r_squared", "zscore", "correlation", "price_correlation", *TESTS_AND_SCORE, "quality_score", "quality"),
        ("hedge_ratio", "intercept", "spread", "spread_mean", "spread_std"),
    ),
    "zero_variance_spread": (
        5.0 + 2.0 * _walk(),
        _walk(),
        ("zscore", *TESTS_AND_SCORE),
        ("hedge_ratio", "r_squared", "spread_std", "correlation", "price_correlation", "quality_score"),
    ),
    "all_equal_returns": (
        100.0 * 1.001 ** np.arange(60),
        50.0 * 1.002 ** np.arange(60),
        ("correlation",),
        ("hedge_ratio", "r_squared", "price_correlation", "spread_std"),
    ),
    "flat_then_moving_x_returns_zero": (
        2 * _walk(),
        np.r_[np.full(30, 100.0), np.full(30, 101.0)],
        (),
        ("hedge_ratio", "correlation", "price_correlation"),
    ),
    "non_positive_price": (
        _walk(x0=20.0),
        _walk(x0=0.0, seed=52),
        ("correlation",),
        ("hedge_ratio", "zscore", "price_correlation", "adf_pvalue", "coint_pvalue", "quality_score"),
    ),
}


@pytest.mark.parametrize(("y", "x", "none_fields", "present_fields"), DEGENERATE.values(), ids=DEGENERATE.keys())
def test_it_maps_degenerate_input_to_none_without_raising_or_warning(y, x, none_fields, present_fields):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = pair_stats(y, x)
    assert caught == []
    assert st.n == len(y)
    for name in none_fields:
        assert getattr(st, name) is None, name
    for name in present_fields:
        assert getattr(st, name) is not None, name
    text = json.dumps(st.as_dict(), allow_nan=False)  # raises on NaN/inf
    assert orjson.loads(orjson.dumps(st.as_dict())) == json.loads(text)


def test_it_reports_exact_values_for_flat_legs_and_spreads():
    const_y = pair_stats(np.full(60, 70000.0), _walk())
    assert (const_y.hedge_ratio, const_y.spread, const_y.spread_std) == (0.0, 70000.0, 0.0)
    linear = pair_stats(5.0 + 2.0 * _walk(), _walk())
    np.testing.assert_allclose([linear.hedge_ratio, linear.intercept, linear.r_squared], [2.0, 5.0, 1.0], rtol=1e-9)
    assert linear.spread_std == 0.0
