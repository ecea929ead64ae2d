"""analytics.unitroot against statsmodels' ``adfuller`` and ``coint`` themselves, computed here.

The reference wraps statsmodels as ``pair_stats`` wrapped it before this module
existed: any exception, a non-finite statistic or p-value, and for ``coint`` its
CollinearityWarning, mean "not computable" (None). ``coint`` does not return the lag
its residual's ADF used, so the reference takes it from the same step ``coint``
takes (``adfuller`` of the OLS residual, regression "n") and checks that step's
statistic is ``coint``'s.

The property test draws windows of every kind the snapshot cycle meets (random
walks, stationary AR(1..4), trends, prices from 1e-5 to 1e5, a large offset on a
small variation, near-constant and tick-rounded series with long runs of repeated
values), mostly short, some up to 5,000 bars, and requires the statistic and
p-value equal to 1e-9 relative, the lag identical and the same None verdicts; no
warning may escape. The targeted cases below it pin the degenerate windows.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.sm_exceptions import CollinearityWarning
from statsmodels.tools.tools import add_constant
from statsmodels.tsa.adfvalues import mackinnonp
from statsmodels.tsa.stattools import adfuller, coint

from analytics.stats import pair_stats
from analytics.unitroot import _MACKINNON, REGRESSIONS, UnitRootResult, _mackinnonp, adf, engle_granger

RTOL = 1e-9


# -- the reference -------------------------------------------------------------------


def sm_adf(series, regression="c"):
    """``adfuller(series, regression, autolag="AIC")`` as (statistic, pvalue, lag), or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = adfuller(series, regression=regression, autolag="AIC", result_object=True)
        except Exception:  # noqa: BLE001 - statsmodels raises assorted types on degenerate data
            return None
    if not (math.isfinite(res.statistic) and math.isfinite(res.pvalue)):
        return None
    return float(res.statistic), float(res.pvalue), int(res.lags)


def sm_coint(y, x):
    """``coint(y, x)`` as (statistic, pvalue, lag of its residual's ADF), or None (collinearity included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", CollinearityWarning)
        try:
            res = coint(y, x)
        except Exception:  # noqa: BLE001 - see sm_adf
            return None
        # The step coint takes: OLS of y on [x, const], adfuller of the residual without a constant.
        resid = OLS(y, add_constant(x, prepend=False)).fit().resid
        step = adfuller(resid, autolag="AIC", regression="n", result_object=True)
    if not (math.isfinite(res.coint_t) and math.isfinite(res.pvalue)):
        return None
    assert step.statistic == res.coint_t
    return float(res.coint_t), float(res.pvalue), int(step.lags)


def quiet(fn, *args):
    """``fn(*args)`` with every warning an error: the module must never warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def assert_same(got: UnitRootResult | None, want: tuple[float, float, int] | None, what: str) -> None:
    if want is None:
        assert got is None, f"{what}: statsmodels gives None, got {got}"
        return
    assert got is not None, f"{what}: statsmodels gives {want}, got None"
    assert type(got.statistic) is float and type(got.pvalue) is float and type(got.lag) is int
    assert got.lag == want[2], f"{what}: lag {got.lag} != {want[2]}"
    np.testing.assert_allclose([got.statistic, got.pvalue], want[:2], rtol=RTOL, atol=0, err_msg=what)


# -- generated windows ------------------------------------------------------------------

FAMILIES = ("random_walk", "stationary_ar", "trending", "badly_scaled", "offset", "near_constant")


class Window(NamedTuple):
    family: str
    n: int
    seed: int
    scale: float  # 10 ** exponent: the prices' magnitude
    regression: str


def _ar(rng: np.random.Generator, n: int) -> np.ndarray:
    """A stationary AR(p), p = 1..4, from partial autocorrelations in (-0.95, 0.98) (Durbin-Levinson)."""
    p = int(rng.integers(1, 5))
    partial = rng.uniform(-0.95, 0.98, p)
    phi = np.array([partial[0]])
    for k in range(1, p):
        phi = np.append(phi - partial[k] * phi[::-1], partial[k])
    e = rng.normal(size=n + 100)
    s = np.zeros(n + 100)
    for t in range(p, n + 100):
        s[t] = phi @ s[t - p : t][::-1] + e[t]
    return s[100:]


def path(family: str, rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """One series of ``family``, of magnitude about ``scale``."""
    walk = np.cumsum(rng.normal(size=n))
    if family == "random_walk":
        return scale * (1.0 + 0.01 * walk)
    if family == "stationary_ar":
        return scale * (1.0 + 0.01 * _ar(rng, n))
    if family == "trending":
        noise = walk if rng.random() < 0.5 else _ar(rng, n)
        return scale * (1.0 + 0.01 * (rng.uniform(-0.5, 0.5) * np.arange(n) + noise))
    if family == "badly_scaled":  # magnitudes from 1e-5 to 1e5, no offset
        return scale * (walk if rng.random() < 0.5 else _ar(rng, n))
    if family == "offset":  # a large level, a small variation: 1e-3 .. 1e-8 of it
        return scale * (1.0 + 10.0 ** rng.uniform(-8, -3) * (walk if rng.random() < 0.5 else _ar(rng, n)))
    # near_constant: ticks far larger than the moves (long runs of one price), a few jumps
    # on a flat line, or a variation of 1e-12 .. 1e-9 of the level.
    kind = int(rng.integers(0, 3))
    if kind == 0:
        tick = 10.0 ** rng.uniform(0, 1.5)
        return scale * (1.0 + 1e-4 * tick * np.round(walk / tick))
    if kind == 1:
        jumps = np.zeros(n)
        jumps[rng.integers(0, n, size=int(rng.integers(1, 4)))] = rng.normal(size=1)
        return scale * (1.0 + 1e-3 * np.cumsum(jumps))
    return scale * (1.0 + 10.0 ** rng.uniform(-12, -9) * walk)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    # Mostly short windows (statsmodels' reference is what costs), some up to 5,000.
    size = draw(st.sampled_from(("short",) * 8 + ("medium",) * 3 + ("long",)))
    low, high = {"short": (20, 300), "medium": (301, 1500), "long": (1501, 5000)}[size]
    return Window(
        family=draw(st.sampled_from(FAMILIES)),
        n=draw(st.integers(low, high)),
        seed=draw(st.integers(0, 2**32 - 1)),
        scale=10.0 ** draw(st.integers(-5, 5)),
        regression=draw(st.sampled_from(REGRESSIONS)),
    )


def pair_of(window: Window) -> tuple[np.ndarray, np.ndarray]:
    """y and x of the window's family: y = alpha + beta x + a spread (stationary, a walk, or tiny: collinear)."""
    rng = np.random.default_rng(window.seed + 1)
    x = path(window.family, rng, window.n, window.scale)
    y_scale = 10.0 ** rng.integers(-5, 6)
    beta = y_scale / window.scale * rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 5.0)
    spread = _ar(rng, window.n) if rng.random() < 0.6 else np.cumsum(rng.normal(size=window.n))
    spread *= y_scale * 10.0 ** rng.uniform(-6.5, 0)
    return rng.uniform(-1, 1) * y_scale + beta * x + spread, x


@settings(max_examples=1000)
@given(windows())
def test_it_equals_statsmodels_on_generated_windows(window):
    series = path(window.family, np.random.default_rng(window.seed), window.n, window.scale)
    want = sm_adf(series, window.regression)
    assert_same(quiet(adf, series, window.regression), want, "adf")
    y, x = pair_of(window)
    want_eg = sm_coint(y, x)
    assert_same(quiet(engle_granger, y, x), want_eg, "engle_granger")
    # What was drawn (pytest --hypothesis-show-statistics).
    event(f"{window.family}, n {'<= 300' if window.n <= 300 else '<= 1500' if window.n <= 1500 else '<= 5000'}")
    event(f"adf: {'None' if want is None else 'lag > 0' if want[2] else 'lag 0'}")
    event(f"engle_granger: {'None' if want_eg is None else 'lag > 0' if want_eg[2] else 'lag 0'}")


# -- targeted windows -------------------------------------------------------------------


def _walk(n, seed=1, scale=1.0, level=0.0):
    return level + scale * np.cumsum(np.random.default_rng(seed).normal(size=n))


SERIES = {
    "empty": np.array([]),
    "one_point": np.array([5.0]),
    "three_points": np.array([1.0, 3.0, 2.0]),
    "four_points": np.array([1.0, 3.0, 2.0, 5.0]),
    "constant": np.full(300, 70000.0),
    "constant_zero": np.zeros(300),
    "nan": np.r_[_walk(50), np.nan],
    "inf": np.r_[_walk(50), np.inf],
    "one_jump": np.r_[np.full(150, 100.0), np.full(150, 101.0)],
    "two_jumps": np.r_[np.full(100, 100.0), np.full(100, 101.0), np.full(100, 100.5)],
    "jump_at_the_end": np.r_[np.full(299, 1e5), 1e5 + 1],
    "jump_at_the_start": np.r_[1e5 + 1, np.full(299, 1e5)],
    "linear": 5.0 + 0.25 * np.arange(300.0),
    "alternating": np.tile([1.0, 2.0], 150),
    "tick_rounded": np.round(_walk(1000, scale=0.004, level=100.0), 2),
    "repeated_runs": np.repeat(_walk(60, scale=3.0, level=3000.0), 5),
    "price_1e-5": _walk(300, scale=1e-8, level=1e-5),
    "price_1e5": _walk(300, scale=20.0, level=1e5),
    "offset_1e5_moves_1e-6": _walk(300, scale=1e-6, level=1e5),
    "near_constant_1e-12": 1e4 * (1.0 + 1e-12 * _walk(300)),
    "short_20": _walk(20),
    "short_21": _walk(21),
    "long_5000": _walk(5000, scale=3.0, level=3000.0),
}


@pytest.mark.parametrize("regression", REGRESSIONS)
@pytest.mark.parametrize("series", SERIES.values(), ids=SERIES.keys())
def test_it_equals_statsmodels_on_degenerate_and_awkward_series(series, regression):
    assert_same(quiet(adf, series, regression), sm_adf(series, regression), f"adf {regression}")


def _pairs():
    x = _walk(300, seed=2, scale=3.0, level=3000.0)
    ar = np.zeros(300)
    e = np.random.default_rng(3).normal(size=300)
    for k in range(1, 300):
        ar[k] = 0.9 * ar[k - 1] + e[k]
    return {
        "cointegrated": (500.0 + 20.0 * x + 5.0 * ar, x),
        "independent_walks": (_walk(300, seed=4, scale=30.0, level=70000.0), x),
        "y_1e5_x_1e-5": (1e5 + 1e9 * (x * 1e-8) + 5.0 * ar, x * 1e-8),
        "y_1e-5_x_1e5": (1e-5 + 1e-10 * (x * 30.0) + 1e-8 * ar, x * 30.0),
        "collinear": (5.0 + 2.0 * x, x),
        "nearly_collinear": (5.0 + 2.0 * x + 1e-9 * ar, x),
        "just_not_collinear": (5.0 + 2.0 * x + 1e-2 * ar, x),
        "constant_x": (x, np.full(300, 3000.0)),
        "constant_zero_x": (x, np.zeros(300)),
        "near_constant_x": (x, 3000.0 + 1e-9 * ar),
        "tick_rounded_legs": (np.round(500.0 + 20.0 * x + 5.0 * ar, 1), np.round(x, 2)),
        "repeated_values": (np.repeat(500.0 + 20.0 * x[:60] + 5.0 * ar[:60], 5), np.repeat(x[:60], 5)),
        "nan_in_y": (np.r_[500.0 + 20.0 * x[1:], np.nan], x),
        "too_short": (x[:3] * 2.0 + ar[:3], x[:3]),
        "short_20": (500.0 + 20.0 * x[:20] + 5.0 * ar[:20], x[:20]),
    }


PAIRS = _pairs()


@pytest.mark.parametrize(("y", "x"), PAIRS.values(), ids=PAIRS.keys())
def test_engle_granger_equals_statsmodels_on_degenerate_and_awkward_pairs(y, x):
    assert_same(quiet(engle_granger, y, x), sm_coint(y, x), "engle_granger")


def test_engle_granger_gives_none_for_a_constant_y():
    """statsmodels divides by y's zero total sum of squares there (and tests the fit's rounding); here: None."""
    assert quiet(engle_granger, np.full(300, 7.0), _walk(300)) is None


def test_collinear_pairs_are_none_exactly_where_statsmodels_warns():
    x = _walk(300, seed=2, scale=3.0, level=3000.0)
    noise = np.random.default_rng(5).normal(size=300)
    verdicts = []
    for size in 10.0 ** np.arange(-9.0, 0.0, 0.25):
        y = 5.0 + 2.0 * x + size * noise
        got, want = quiet(engle_granger, y, x), sm_coint(y, x)
        assert_same(got, want, f"noise {size:g}")
        verdicts.append(got is None)
    assert verdicts[0] and not verdicts[-1]  # both verdicts occur


@pytest.mark.parametrize("n_series", [1, 2])
@pytest.mark.parametrize("regression", REGRESSIONS)
def test_its_p_values_are_statsmodels_mackinnonp_bit_for_bit(regression, n_series):
    table = _MACKINNON[(regression, n_series)]
    edges = [e for e in (table.minimum, table.star, table.maximum) if math.isfinite(e)]
    near_edges = [np.nextafter(e, direction) for e in edges for direction in (-np.inf, np.inf)]
    for stat in [*np.linspace(-30.0, 5.0, 3501).tolist(), *edges, *near_edges, -1e300, 1e300]:
        with np.errstate(over="ignore"):  # statsmodels' polyval at 1e300
            want = mackinnonp(float(stat), regression, N=n_series)
        got = quiet(_mackinnonp, float(stat), regression, n_series)
        assert got == want or (math.isnan(got) and math.isnan(want))


def test_it_rejects_bad_arguments():
    with pytest.raises(ValueError, match="1-D"):
        adf(np.ones((30, 2)))
    with pytest.raises(ValueError, match="regression"):
        adf(_walk(30), "t")
    with pytest.raises(ValueError, match="equal length"):
        engle_granger(np.ones(30), np.ones(31))


@pytest.mark.parametrize(("y", "x"), PAIRS.values(), ids=PAIRS.keys())
def test_pair_stats_gives_statsmodels_tests_with_its_none_policy(y, x):
    """pair_stats' ADF of its spread and its Engle-Granger p-value are statsmodels', wrapped as documented."""
    st_ = quiet(pair_stats, y, x)
    tested = st_.hedge_ratio is not None and st_.spread_std != 0.0  # a constant spread is not tested
    want_adf = sm_adf(y - st_.hedge_ratio * x, "c") if tested else None
    want_eg = sm_coint(y, x) if tested and st_.r_squared is not None else None
    got_adf = None if st_.adf_stat is None else UnitRootResult(st_.adf_stat, st_.adf_pvalue, st_.adf_lag)
    assert_same(got_adf, want_adf, "pair_stats ADF")
    if want_eg is None:
        assert st_.coint_pvalue is None
    else:
        np.testing.assert_allclose(st_.coint_pvalue, want_eg[1], rtol=RTOL, atol=0)


def test_pair_stats_reports_the_tests_of_this_module():
    y, x = PAIRS["cointegrated"]
    st_ = pair_stats(y, x)
    s = y - st_.hedge_ratio * x
    assert (st_.adf_stat, st_.adf_pvalue, st_.adf_lag) == tuple(adf(s, "c"))
    assert st_.coint_pvalue == engle_granger(y, x).pvalue
