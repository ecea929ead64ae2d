"""Pair statistics on one window of aligned prices (pure numpy, no Django).

Every number here follows the definitions in docs/analytics.md ("Statistics on the
window") exactly, so a reader with pandas and statsmodels can reproduce it from the
same bars. The cheap parts (OLS, correlations, half-life) are closed-form numpy; the
two unit-root tests are statsmodels' ``adfuller`` and ``coint``, computed by
``analytics.unitroot`` (the same numbers, lag search included, at a fraction of the
cost; tests/analytics/test_unitroot.py checks them equal).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .unitroot import adf, engle_granger

__all__ = [
    "MIN_OBS",
    "coint_pvalue",
    "PairStats",
    "pair_stats",
    "pair_stats_served",
    "quality_score",
    "spread_series",
    "zscore_series",
]

#: Smallest window on which anything is computed. Below it every statistic is None.
#: 20 keeps ``adfuller``'s default maxlag (min(n // 2 - 2, 12 * (n / 100) ** 0.25))
#: meaningful; the service's own warm-up gate (``min_bars``, default 100) is stricter.
MIN_OBS = 20

# A derived series (spread, log returns) counts as constant when its range is below
# this fraction of its scale. Rounding in y - beta * x or ln(y[k] / y[k-1]) leaves
# noise around 1e-16 of the scale, which must not be mistaken for variance (it would
# give a z-score or a correlation of pure noise); real spreads and returns of traded
# prices vary by far more than 1e-9 of their scale.
_FLAT_RTOL = 1e-9

# Quality-score weights; they sum to 1 so the score is in [0, 100].
_WEIGHTS = {"stationarity": 0.40, "correlation": 0.25, "mean_reversion": 0.20, "fit": 0.15}

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class PairStats:
    """Statistics of one pair on one window; every value is a plain float/int or None.

    Field meanings are those of docs/analytics.md ("Statistics on the window"). None means
    "not computable on this window" (too short, non-finite input, a constant series,
    a degenerate regression); never NaN or inf, so ``as_dict()`` is strict-JSON safe.
    ``quality`` is the breakdown returned by :func:`quality_score`.
    """

    n: int
    hedge_ratio: float | None = None
    intercept: float | None = None
    r_squared: float | None = None
    spread: float | None = None
    spread_mean: float | None = None
    spread_std: float | None = None
    zscore: float | None = None
    correlation: float | None = None
    price_correlation: float | None = None
    adf_stat: float | None = None
    adf_pvalue: float | None = None
    adf_lag: int | None = None
    coint_pvalue: float | None = None
    half_life: float | None = None
    quality_score: float | None = None
    quality: dict[str, dict[str, float]] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a deep-copied plain dict of the fields (JSON serialisable with allow_nan=False)."""
        return dataclasses.asdict(self)


def _finite(value: Any) -> float | None:
    """Map a numeric value to a Python float, or None when it is NaN/inf."""
    v = float(value)
    return v if math.isfinite(v) else None


def _is_flat(a: npt.NDArray[np.float64], scale: float | None = None) -> bool:
    """True when ``a`` is constant up to rounding (range <= _FLAT_RTOL * scale)."""
    if scale is None:
        scale = float(np.max(np.abs(a)))
    return float(np.ptp(a)) <= _FLAT_RTOL * scale


def _pearson(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float | None:
    """Pearson correlation, None when either side is (numerically) constant."""
    if _is_flat(a) or _is_flat(b):
        return None
    da = a - a.mean()
    db = b - b.mean()
    r = float(da @ db) / math.sqrt(float(da @ da) * float(db @ db))
    return _finite(min(1.0, max(-1.0, r)))


def spread_series(y: npt.ArrayLike, x: npt.ArrayLike, hedge_ratio: float) -> npt.NDArray[np.float64]:
    """Spread of the window, point by point.

    Parameters
    ----------
    y, x : array_like, shape (n,)
        Prices of symbol A and symbol B on the window (quote currency, oldest first).
    hedge_ratio : float
        beta, units of B per unit of A (``PairStats.hedge_ratio``).

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``s[k] = y[k] - hedge_ratio * x[k]`` in quote currency. Per docs/analytics.md the
        intercept is *not* subtracted, so the spread is centred on ``intercept``
        (mathematically ``spread_mean == intercept``). This is the exact array
        :func:`pair_stats` derives ``spread``, ``spread_mean`` and ``spread_std`` from.
    """
    return np.asarray(y, dtype=float) - hedge_ratio * np.asarray(x, dtype=float)


def zscore_series(
    spread: npt.NDArray[np.float64], spread_mean: float | None, spread_std: float | None
) -> npt.NDArray[np.float64] | None:
    """Z-score of every point of the window against the window's own mean and std.

    Parameters
    ----------
    spread : numpy.ndarray, shape (n,)
        The window's spread, from :func:`spread_series`.
    spread_mean, spread_std : float or None
        ``PairStats.spread_mean`` and ``PairStats.spread_std`` of the same window.

    Returns
    -------
    numpy.ndarray, shape (n,), or None
        ``z[k] = (s[k] - spread_mean) / spread_std`` (dimensionless); None when the
        std is None or zero (a constant spread has no z-score).

    Notes
    -----
    Every point is scored against the mean/std of the *whole* window, which includes
    the bars after it: the series is in-sample (look-ahead for all but the last point)
    and is meant for charts of the current window, not for backtests. Its last value
    is exactly ``PairStats.zscore``, the newest bar scored against a window that
    contains it (like the last row of pandas ``rolling(n)``).
    """
    if spread_mean is None or spread_std is None or not spread_std > 0:
        return None
    return (np.asarray(spread, dtype=float) - spread_mean) / spread_std


def quality_score(
    *,
    adf_pvalue: float | None,
    coint_pvalue: float | None,
    correlation: float | None,
    half_life: float | None,
    r_squared: float | None,
    window: int,
) -> tuple[float, dict[str, dict[str, float]]]:
    """Composite tradeability score of a pair, in [0, 100], with its breakdown.

    Parameters
    ----------
    adf_pvalue : float or None
        ADF p-value of the spread, in [0, 1].
    coint_pvalue : float or None
        Engle-Granger p-value of the pair, in [0, 1].
    correlation : float or None
        Pearson correlation of the log returns, in [-1, 1].
    half_life : float or None
        Mean-reversion half-life of the spread, in bars.
    r_squared : float or None
        R^2 of the hedge regression y = alpha + beta * x, in [0, 1].
    window : int
        Number of bars in the window (n); the half-life is judged against it.

    Returns
    -------
    score : float
        ``100 * sum(weight_i * value_i)``, in [0, 100]; higher is better.
    breakdown : dict
        ``{component: {"value": v in [0, 1], "weight": w, "points": 100 * w * v}}`` for
        the components ``stationarity``, ``correlation``, ``mean_reversion``, ``fit``;
        the points add up to ``score``.

    Notes
    -----
    Components (each clipped to [0, 1]) and weights:

    * stationarity (0.40) = ``1 - p / 0.10`` with ``p = max(adf_pvalue, coint_pvalue)``
      (missing when either is): 1 at p = 0, 0.5 at the default alert gates p = 0.05,
      0 for p >= 0.10. Non-increasing in either p-value.
    * correlation (0.25) = ``(correlation - 0.3) / 0.6``: 0 at or below 0.3, 0.5 at the
      default gate 0.6, 1 at or above 0.9. Non-decreasing in the correlation.
    * mean_reversion (0.20), with ``h = half_life``, ``n = window`` and
      ``u = max(1, n / 10)``: ``h`` for ``0 < h < 1`` (reversion within one bar is
      bar-level noise that cannot be traded on a close), 1 for ``1 <= h <= u``, falling
      linearly ``(n - h) / (n - u)`` to 0 at ``h = n``, and 0 for ``h >= n`` or
      None (no mean reversion observed inside the window). Non-decreasing in h below
      1 bar and non-increasing above. It counts only while ``p < 0.10``: a pair that
      fails its relationship tests never scores on the speed of a reversion that is
      not there (0 otherwise).
    * fit (0.15) = ``r_squared``. Non-decreasing.

    A missing (None) or non-finite input scores 0 for its component; the caller
    (:func:`pair_stats`) reports no score at all when every input is missing.
    """
    adf, coint = _num(adf_pvalue), _num(coint_pvalue)
    p = max(adf, coint) if adf is not None and coint is not None else None
    c, h, r2 = _num(correlation), _num(half_life), _num(r_squared)
    n = float(window)
    upper = max(1.0, n / 10.0)
    if p is None or p >= 0.10 or h is None or h <= 0.0 or h >= n:
        mean_reversion = 0.0
    elif h < 1.0:
        mean_reversion = h
    elif h <= upper:
        mean_reversion = 1.0
    else:
        mean_reversion = (n - h) / (n - upper)

    values = {
        "stationarity": 0.0 if p is None else _clip01(1.0 - p / 0.10),
        "correlation": 0.0 if c is None else _clip01((c - 0.3) / 0.6),
        "mean_reversion": _clip01(mean_reversion),
        "fit": 0.0 if r2 is None else _clip01(r2),
    }
    breakdown = {
        name: {"value": v, "weight": _WEIGHTS[name], "points": 100.0 * _WEIGHTS[name] * v} for name, v in values.items()
    }
    # min(): the float sum of 40 + 25 + 20 + 15 may land a rounding step above 100.
    score = min(100.0, sum(comp["points"] for comp in breakdown.values()))
    return score, breakdown


def _num(v: float | None) -> float | None:
    """A finite float, or None for None/NaN/inf."""
    return None if v is None else _finite(v)


def _clip01(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


class SpreadModel(NamedTuple):
    """A window's hedge ratio and its spread's mean and sample std: what scores a bar (docs/analytics.md)."""

    hedge_ratio: float
    spread_mean: float
    spread_std: float


class _Fit(NamedTuple):
    hedge_ratio: float
    intercept: float
    r_squared: float | None
    s: npt.NDArray[np.float64]
    spread_mean: float
    spread_std: float
    flat: bool
    scale: float


def _fit(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> _Fit | None:
    """The hedge regression and its spread (None where ``pair_stats`` gives no statistics at all)."""
    if y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"y and x must be 1-D arrays of equal length, got shapes {y.shape} and {x.shape}")
    if y.size < MIN_OBS or not (np.isfinite(y).all() and np.isfinite(x).all()):
        return None
    # Exact equality is right for raw prices: a forward-filled flat leg repeats one float.
    if x.max() == x.min():
        return None
    # OLS y = alpha + beta x in closed form on centred data: same estimates as
    # sm.OLS(y, add_constant(x)) (tested to 1e-6, in practice ~1e-12), better
    # conditioned than the normal equations on raw prices, and ~100x cheaper.
    xm, ym = x.mean(), y.mean()
    dx, dy = x - xm, y - ym
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    beta = float(dx @ dy) / sxx
    alpha = float(ym - beta * xm)
    resid = dy - beta * dx
    # statsmodels gives NaN (0/0) for a constant y; here that is None.
    r_squared = _clip01(1.0 - float(resid @ resid) / syy) if syy > 0 else None
    s = spread_series(y, x, beta)
    spread_mean = float(s.mean())
    # Sample std (ddof=1) to match pandas Series.std / rolling().std(), not numpy's ddof=0.
    spread_std = float(s.std(ddof=1))
    scale = max(float(np.max(np.abs(y))), float(np.max(np.abs(beta * x))))
    flat = _is_flat(s, scale)
    return _Fit(beta, alpha, r_squared, s, spread_mean, 0.0 if flat else spread_std, flat, scale)


def spread_model(y: npt.ArrayLike, x: npt.ArrayLike) -> SpreadModel | None:
    """``pair_stats``' hedge_ratio, spread_mean and spread_std alone (the same numbers), without the tests.

    None where ``pair_stats`` gives none (too short, non-finite, a constant x).
    """
    fit = _fit(np.asarray(y, dtype=float), np.asarray(x, dtype=float))
    if fit is None:
        return None
    return SpreadModel(fit.hedge_ratio, fit.spread_mean, fit.spread_std)


def pair_stats(y: npt.ArrayLike, x: npt.ArrayLike) -> PairStats:
    """All statistics of docs/analytics.md ("Statistics on the window") for one pair on one window.

    Parameters
    ----------
    y : array_like, shape (n,)
        Close prices of symbol A on the window's grid (quote currency, oldest first).
    x : array_like, shape (n,)
        Close prices of symbol B on the same grid.

    Returns
    -------
    PairStats
        * hedge_ratio, intercept, r_squared: OLS of ``y = alpha + beta * x``, as
          ``statsmodels.api.OLS(y, add_constant(x))`` (computed in closed form on
          centred data; beta in units of B per A, alpha in quote currency).
        * spread = s[-1] with ``s = y - beta * x`` (no intercept, see
          :func:`spread_series`); spread_mean, spread_std: mean and sample std
          (ddof=1, as pandas ``Series.std``) of s, quote currency.
        * zscore = ``(s[-1] - spread_mean) / spread_std``.
        * correlation: Pearson correlation of ``ln(y[k]/y[k-1])`` and
          ``ln(x[k]/x[k-1])`` (n - 1 returns); price_correlation: Pearson of y and x.
        * adf_stat, adf_pvalue, adf_lag: ``adfuller(s, regression="c", autolag="AIC")``.
        * coint_pvalue: ``coint(y, x)`` (Engle-Granger, trend "c", autolag "aic").
          Both tests are statsmodels' numbers, computed by ``analytics.unitroot``.
        * half_life: OLS of ``s[k] - s[k-1] = c + lambda * s[k-1]``;
          ``-ln(2) / lambda`` bars when lambda < 0, else None.
        * quality_score, quality: :func:`quality_score` of (adf_pvalue, coint_pvalue,
          correlation, half_life, r_squared, n).

    Raises
    ------
    ValueError
        If y and x are not 1-D arrays of the same length (a caller bug, not bad data).

    Notes
    -----
    Window: the statistics see exactly the n points passed, newest last; the newest
    bar is inside its own window (it is scored against a mean/std that include it,
    like the last row of pandas ``rolling(n)``). Choosing the points (closed bars up
    to ``as_of``, forward-filled grid) is the caller's job.

    None policy (never an exception, never NaN/inf):

    * ``n < MIN_OBS`` (20) or any NaN/inf in y or x: every statistic is None (no
      dropping or filling here: the aligned series is forward-filled, so a NaN
      means an upstream bug that must not be papered over).
    * constant x: every statistic is None (beta is undefined).
    * constant y: beta = 0 and s = y; r_squared, zscore, both correlations, ADF,
      coint and half-life are None; spread_std is 0.0.
    * constant spread (y exactly a + b * x, up to rounding): spread_std is 0.0 and
      zscore, ADF, half-life and coint are None (statsmodels' ``coint`` would warn
      about collinearity and report p = 0; here that is "not computable").
    * constant log returns of either leg, or a price <= 0: correlation is None.
    * coint_pvalue is None when statsmodels flags y and x as (almost) perfectly
      collinear (its R^2 >= 1 - 100 * sqrt(machine eps), about 1 - 1.5e-6), where
      ``coint`` itself warns and returns p = 0.
    * where statsmodels' ``adfuller``/``coint`` would raise or return a non-finite
      value: that test's fields are None.
    * quality_score/quality are None when all five of their inputs are None;
      otherwise missing inputs score 0 (see :func:`quality_score`).
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    fit = _fit(y, x)
    n = int(y.size)
    if fit is None:
        return PairStats(n=n)
    beta, alpha, r_squared = fit.hedge_ratio, fit.intercept, fit.r_squared
    s, spread_mean, spread_std, spread_flat, scale = fit.s, fit.spread_mean, fit.spread_std, fit.flat, fit.scale

    zscore = None if spread_flat else _finite((s[-1] - spread_mean) / spread_std)

    correlation = None
    if (y > 0).all() and (x > 0).all():
        # ln(p[k] / p[k-1]) as docs/analytics.md writes it (more accurate than diff(log(p))
        # for small returns).
        correlation = _pearson(np.log(y[1:] / y[:-1]), np.log(x[1:] / x[:-1]))
    price_correlation = _pearson(y, x)

    adf_stat = adf_pvalue = None
    adf_lag = None
    half_life = None
    if not spread_flat:
        adf_stat, adf_pvalue, adf_lag = _adf(s)
        half_life = _half_life(s, scale)

    coint_pvalue = None
    if not spread_flat and r_squared is not None:
        coint_pvalue = _coint_pvalue(y, x)

    score: float | None = None
    breakdown: dict[str, dict[str, float]] | None = None
    if any(v is not None for v in (adf_pvalue, coint_pvalue, correlation, half_life, r_squared)):
        score, breakdown = quality_score(
            adf_pvalue=adf_pvalue,
            coint_pvalue=coint_pvalue,
            correlation=correlation,
            half_life=half_life,
            r_squared=r_squared,
            window=n,
        )

    return PairStats(
        n=n,
        hedge_ratio=_finite(beta),
        intercept=_finite(alpha),
        r_squared=r_squared,
        spread=_finite(s[-1]),
        spread_mean=_finite(spread_mean),
        spread_std=_finite(spread_std),
        zscore=zscore,
        correlation=correlation,
        price_correlation=price_correlation,
        adf_stat=adf_stat,
        adf_pvalue=adf_pvalue,
        adf_lag=adf_lag,
        coint_pvalue=coint_pvalue,
        half_life=half_life,
        quality_score=score,
        quality=breakdown,
    )


def pair_stats_served(connection: Connection) -> None:
    """Answer the ``pair_stats`` requests read from ``connection`` until it closes or reads None.

    The loop of a child process that computes statistics for its parent
    (``analytics.services.StatsProcess``; the child imports no Django). A request is
    ``(y, x)``; its answer ``(True, PairStats)``, or ``(False, the exception raised)``.
    """
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            answer: tuple[bool, PairStats | Exception] = (True, pair_stats(*request))
        except Exception as exc:  # noqa: BLE001 - raised again in the parent, as in place
            answer = (False, exc)
        connection.send(answer)


def _adf(s: npt.NDArray[np.float64]) -> tuple[float | None, float | None, int | None]:
    """``adfuller(s, regression="c", autolag="AIC")`` -> (stat, pvalue, usedlag), Nones where it fails."""
    res = adf(s, "c")
    if res is None:
        return None, None, None
    return res.statistic, res.pvalue, res.lag


def _coint_pvalue(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> float | None:
    """``coint(y, x).pvalue``; None where it fails or where statsmodels flags collinearity.

    Near-perfect collinearity makes statsmodels return stat=-inf, p=0 with a warning
    that the test "is not reliable": that is "not computable" here.
    """
    res = engle_granger(y, x)
    return None if res is None else res.pvalue


def _half_life(s: npt.NDArray[np.float64], scale: float) -> float | None:
    """-ln2 / lambda from OLS of diff(s) = c + lambda * s[:-1] (closed form), None unless lambda < 0."""
    lagged = s[:-1]
    if _is_flat(lagged, scale):
        return None
    dl = lagged - lagged.mean()
    ds = np.diff(s)
    lam = float(dl @ (ds - ds.mean())) / float(dl @ dl)
    if not lam < 0:
        return None
    return _finite(-_LN2 / lam)


def coint_pvalue(y: npt.ArrayLike, x: npt.ArrayLike) -> float | None:
    """The Engle-Granger p-value of y on x (``coint(y, x)``), None where it cannot be computed.

    As ``pair_stats`` gives it: None for a window shorter than ``MIN_OBS``, a
    non-finite value, a constant leg or an (almost) perfectly collinear pair.
    """
    ys, xs = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    fit = _fit(ys, xs)
    if fit is None or fit.flat or fit.r_squared is None:
        return None
    return _coint_pvalue(ys, xs)
