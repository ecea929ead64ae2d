"""The screener's numbers against statsmodels and a plain Benjamini-Hochberg from its definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.stattools import adfuller, coint

from analytics.screener import bh_qvalues, screen

MINUTE = 60_000
T0 = 1_767_225_600_000


def universe(n: int = 700, seed: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Six symbols: two cointegrated groups, two lone random walks, one flat leg; some bars missing."""
    rng = np.random.default_rng(seed)
    times = T0 + MINUTE * np.arange(n, dtype=np.int64)
    walk = lambda scale: 100 * np.exp(np.cumsum(rng.normal(0, scale, n)))  # noqa: E731

    def ar(phi: float, sd: float) -> np.ndarray:
        s = np.zeros(n)
        for k in range(1, n):
            s[k] = phi * s[k - 1] + rng.normal(0, sd)
        return s

    base1, base2 = walk(0.004), walk(0.004)
    closes = {
        "AAAUSDT": base1,
        "BBBUSDT": 0.5 * base1 + 30 + ar(0.7, 0.2),
        "CCCUSDT": 2.0 * base2 + 5 + ar(0.8, 0.3),
        "DDDUSDT": base2,
        "EEEUSDT": walk(0.004),
        "FFFUSDT": walk(0.004),
        "ZZZUSDT": np.full(n, 42.0),
    }
    legs = {}
    for symbol, series in closes.items():
        keep = rng.random(n) > 0.03  # a few minutes without a trade: forward-filled by the other leg's grid
        legs[symbol] = (times[keep], series[keep])
    return legs


def aligned(legs, a: str, b: str, window: int) -> pd.DataFrame:
    """The pair's aligned closes by their definition: pandas concat, forward fill, drop leading, last W."""
    sa = pd.Series(legs[a][1], index=legs[a][0])
    sb = pd.Series(legs[b][1], index=legs[b][0])
    return pd.concat([sa, sb], axis=1).sort_index().ffill().dropna().iloc[-window:]


def test_bh_q_values_by_their_definition_and_statsmodels():
    rng = np.random.default_rng(1)
    p = list(rng.uniform(0, 0.2, 40)) + [None, 0.0, 1.0, 0.01, 0.01]
    q = bh_qvalues(p)
    tested = [v for v in p if v is not None]
    m = len(tested)
    order = sorted(range(m), key=lambda i: tested[i])
    plain = [0.0] * m
    for rank_i, i in enumerate(order, start=1):
        plain[i] = min(1.0, min(m * tested[order[j - 1]] / j for j in range(rank_i, m + 1)))
    _, reference, _, _ = multipletests(tested, method="fdr_bh")
    ours = [v for v in q if v is not None]
    np.testing.assert_allclose(ours, plain, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-15)
    assert q[40] is None and bh_qvalues([]) == [] and bh_qvalues([None]) == [None]


def test_every_p_and_q_value_and_the_ranking_against_an_independent_computation():
    legs = universe()
    window = 500
    ranked = screen(legs, window=window, fdr=0.05)
    assert len(ranked) == 21  # 7 symbols

    expected = {}
    for a, b in [(p.symbol_a, p.symbol_b) for p in ranked]:
        frame = aligned(legs, a, b, window)
        y, x = frame.iloc[:, 0].to_numpy(), frame.iloc[:, 1].to_numpy()
        if np.ptp(y) == 0 or np.ptp(x) == 0:
            expected[frozenset((a, b))] = None
            continue
        ab, ba = coint(y, x)[1], coint(x, y)[1]
        yy, xx = (y, x) if ab <= ba else (x, y)
        beta = sm.OLS(yy, sm.add_constant(xx)).fit().params[1]
        spread = yy - beta * xx
        lam = sm.OLS(np.diff(spread), sm.add_constant(spread[:-1])).fit().params[1]
        expected[frozenset((a, b))] = {
            "p": max(ab, ba),
            "y": a if ab <= ba else b,
            "beta": beta,
            "adf": adfuller(spread, regression="c", autolag="AIC", result_object=False)[1],
            "half_life": -np.log(2) / lam if lam < 0 else None,
            "n": len(frame),
        }
    tested = [k for k, v in expected.items() if v is not None]
    _, q_ref, _, _ = multipletests([expected[k]["p"] for k in tested], method="fdr_bh")
    q_of = dict(zip(tested, q_ref, strict=True))

    for pair in ranked:
        want = expected[frozenset((pair.symbol_a, pair.symbol_b))]
        if want is None:
            assert pair.coint_pvalue is None and pair.qvalue is None and not pair.significant
            continue
        assert pair.symbol_a == want["y"] and pair.n == want["n"]
        assert pair.coint_pvalue == pytest.approx(want["p"], rel=1e-9, abs=1e-15)
        assert pair.qvalue == pytest.approx(q_of[frozenset((pair.symbol_a, pair.symbol_b))], rel=1e-9, abs=1e-15)
        assert pair.significant == (pair.qvalue < 0.05)
        assert pair.hedge_ratio == pytest.approx(want["beta"], rel=1e-9)
        assert pair.adf_pvalue == pytest.approx(want["adf"], rel=1e-9, abs=1e-15)
        if want["half_life"] is None:
            assert pair.half_life is None
        else:
            assert pair.half_life == pytest.approx(want["half_life"], rel=1e-9)
    # Ranked by q, then half-life, the pairs without a test last.
    keys = [(np.inf if p.qvalue is None else p.qvalue, np.inf if p.half_life is None else p.half_life) for p in ranked]
    assert keys == sorted(keys)
    found = {frozenset((p.symbol_a, p.symbol_b)) for p in ranked if p.significant}
    assert {frozenset(("AAAUSDT", "BBBUSDT")), frozenset(("CCCUSDT", "DDDUSDT"))} <= found
    assert all("ZZZUSDT" not in (p.symbol_a, p.symbol_b) for p in ranked[:-6])  # the flat leg: last


def test_degenerate_universes_give_nulls_not_errors():
    times = T0 + MINUTE * np.arange(10, dtype=np.int64)
    short = {"AAAUSDT": (times, np.linspace(1, 2, 10)), "BBBUSDT": (times, np.linspace(2, 3, 10))}
    (pair,) = screen(short, window=100)
    assert pair.n == 10 and pair.coint_pvalue is None and pair.qvalue is None
    assert screen({"AAAUSDT": short["AAAUSDT"]}, window=100) == []
    with pytest.raises(ValueError, match="fdr must be between 0 and 1"):
        screen(short, window=100, fdr=0)
