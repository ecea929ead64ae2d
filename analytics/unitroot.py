"""Augmented Dickey-Fuller and Engle-Granger tests with the AIC lag search, exact and fast (pure: numpy, LAPACK).

The numbers are statsmodels' ``adfuller(x, regression=..., autolag="AIC")`` and
``coint(y, x)`` (trend "c", autolag "aic"), the definitions docs/analytics.md
names; the tests check them equal on generated windows of every kind
(tests/analytics/test_unitroot.py). What differs is the cost. statsmodels fits
every candidate lag's regression from scratch (a pseudo-inverse each, up to 33 of
them at 5,000 bars); here the search takes one QR factorisation of the largest
lag matrix with the regressand as its last column, from which every nested
regression's residual sum of squares follows (the tail sums of that column of
R), and only the chosen lag is refitted.

The algorithm, step for step as statsmodels runs it:

* ``maxlag = min(nobs // 2 - ntrend - 1, ceil(12 * (nobs / 100) ** 0.25))``.
* The lag search compares every lag 0..maxlag on one common sample (the last
  ``nobs - 1 - maxlag`` differences), by ``aic = -2 llf + 2 rank`` with the OLS
  profile log-likelihood, and takes the smallest AIC, the smallest lag on a tie.
* The chosen lag is refitted on all the differences it can use, and the
  statistic is the t-value of the lagged level.
* p-values: MacKinnon's, ``statsmodels.tsa.adfvalues.mackinnonp`` on its own
  tables (evaluated here without scipy.stats' overhead, bit for bit the same),
  N = 1 for ADF, N = 2 with trend "c" for Engle-Granger, whose residual is tested
  without a constant (regression "n").

Exactness. The refit is the same pseudo-inverse fit statsmodels makes (an SVD
with the same cut-off and rank rule), so the statistic equals statsmodels' to
rounding, however badly the window is scaled. The QR search agrees with
statsmodels' separate fits to far better than the gaps between AICs; where two
lags come within the search's own error bound of each other, those lags are
fitted the way statsmodels fits them and compared on exactly its numbers. A lag
matrix too close to singular for that bound (a near-constant window, a column
that repeats another) is searched the way statsmodels searches it, lag by lag,
including its rules for a rank-deficient design and for a constant column
(statsmodels then leaves the constant out).

Degenerate windows give None, where statsmodels raises or gives a non-finite
number: too few points for the regression, a constant series, NaN or infinity;
and for Engle-Granger also y and x (almost) perfectly collinear, where ``coint``
warns and reports p = 0 (its R^2 >= 1 - 100 * sqrt(machine eps)), and a constant
y (where ``coint`` divides by y's zero variance). Nothing here warns.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.linalg.lapack import dgeqrf, dtrcon
from scipy.special import ndtr
from statsmodels.tsa import adfvalues

__all__ = ["REGRESSIONS", "UnitRootResult", "adf", "engle_granger"]

Array = npt.NDArray[np.float64]

#: Deterministic terms of the test regression: none, constant, + linear trend, + quadratic trend.
REGRESSIONS = ("n", "c", "ct", "ctt")
_NTREND = {"n": 0, "c": 1, "ct": 2, "ctt": 3}

_EPS = float(np.finfo(np.float64).eps)
# statsmodels' threshold on R^2 of the cointegrating regression: at or above it, coint
# reports the pair collinear (stat -inf, p = 0) instead of testing the residual.
_COLLINEAR_R2 = 1.0 - 100.0 * math.sqrt(_EPS)
# Largest condition number (1-norm estimate) of the search's lag matrix that the QR
# search handles; at 1e10 the 2-norm condition stays ~100x below where statsmodels'
# rank rule (singular values below rank * eps of the largest) starts to drop columns.
_MAX_COND = 1e10
# Safety factor on the rounding-error bound of the AICs (see ``_aic_lag``).
_TIE_SAFETY = 1e3


class UnitRootResult(NamedTuple):
    """A unit-root test's outcome: the t-statistic, MacKinnon's p-value and the lags used."""

    statistic: float
    pvalue: float
    lag: int


def adf(series: npt.ArrayLike, regression: str = "c") -> UnitRootResult | None:
    """``adfuller(series, regression=regression, autolag="AIC")``: statistic, p-value, lags used.

    Parameters
    ----------
    series : array_like, shape (n,)
        The series tested for a unit root, oldest first.
    regression : {"c", "n", "ct", "ctt"}
        Deterministic terms of the test regression, as statsmodels names them.

    Returns
    -------
    UnitRootResult or None
        None where statsmodels raises or gives a non-finite number (too short,
        constant, NaN/inf).

    Raises
    ------
    ValueError
        ``series`` is not one-dimensional or ``regression`` is not one of ``REGRESSIONS``.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"series must be 1-D, got shape {x.shape}")
    if regression not in _NTREND:
        raise ValueError(f"regression must be one of {', '.join(REGRESSIONS)}, got {regression!r}")
    found = _adf_stat(x, regression)
    if found is None:
        return None
    stat, lag = found
    return _result(stat, _mackinnonp(stat, regression, 1), lag)


def engle_granger(y: npt.ArrayLike, x: npt.ArrayLike) -> UnitRootResult | None:
    """``coint(y, x)`` (trend "c", autolag "aic"): statistic, p-value, and the lags of its residual's ADF.

    Parameters
    ----------
    y, x : array_like, shape (n,)
        The two price series, oldest first (y regressed on x and a constant).

    Returns
    -------
    UnitRootResult or None
        None where ``coint`` raises or gives a non-finite number, and where it
        reports y and x (almost) perfectly collinear (R^2 >= 1 - 100 sqrt(eps),
        about 1 - 1.5e-6: statistic -inf, p-value 0, with a warning).

    Raises
    ------
    ValueError
        y and x are not 1-D arrays of equal length.
    """
    yv = np.asarray(y, dtype=np.float64)
    xv = np.asarray(x, dtype=np.float64)
    if yv.ndim != 1 or xv.shape != yv.shape:
        raise ValueError(f"y and x must be 1-D arrays of equal length, got shapes {yv.shape} and {xv.shape}")
    if yv.size < 2 or not (np.isfinite(yv).all() and np.isfinite(xv).all()):
        return None
    # OLS of y on [x, const] as statsmodels fits it (add_trend appends the constant,
    # and leaves it out when x itself is a non-zero constant).
    design = _add_trend(xv[:, None], "c", prepend=False)
    try:
        params, _, _ = _pinv_fit(design, yv)
    except np.linalg.LinAlgError:  # see _adf_stat
        return None
    resid = yv - np.dot(design, params)
    centred = yv - yv.mean()
    tss = float(np.dot(centred, centred))
    ssr = float(np.dot(resid, resid))
    if not tss > 0 or not 1.0 - ssr / tss < _COLLINEAR_R2:
        return None
    found = _adf_stat(resid, "n")
    if found is None:
        return None
    stat, lag = found
    return _result(stat, _mackinnonp(stat, "c", 2), lag)


class _MacKinnon(NamedTuple):
    """MacKinnon's (1994) p-value surface for one regression and number of series (statsmodels' tables)."""

    maximum: float  # above it p = 1
    minimum: float  # below it p = 0
    star: float  # up to it the small-p polynomial, above it the large-p one
    small: tuple[float, ...]  # coefficients, highest power first
    large: tuple[float, ...]


_MACKINNON = {
    (regression, n_series): _MacKinnon(
        float(maximum[n_series - 1]),
        float(minimum[n_series - 1]),
        float(star[n_series - 1]),
        tuple(float(c) for c in small[n_series - 1][::-1]),
        tuple(float(c) for c in large[n_series - 1][::-1]),
    )
    for regression, (maximum, minimum, star, small, large) in {
        "n": (adfvalues.tau_max_nc, adfvalues.tau_min_nc, adfvalues.tau_star_nc,
              adfvalues.tau_nc_smallp, adfvalues.tau_nc_largep),
        "c": (adfvalues.tau_max_c, adfvalues.tau_min_c, adfvalues.tau_star_c,
              adfvalues.tau_c_smallp, adfvalues.tau_c_largep),
        "ct": (adfvalues.tau_max_ct, adfvalues.tau_min_ct, adfvalues.tau_star_ct,
               adfvalues.tau_ct_smallp, adfvalues.tau_ct_largep),
        "ctt": (adfvalues.tau_max_ctt, adfvalues.tau_min_ctt, adfvalues.tau_star_ctt,
                adfvalues.tau_ctt_smallp, adfvalues.tau_ctt_largep),
    }.items()
    for n_series in (1, 2)
}  # fmt: skip


def _mackinnonp(stat: float, regression: str, n_series: int) -> float:
    """``statsmodels.tsa.adfvalues.mackinnonp(stat, regression, N=n_series)``, the same arithmetic.

    mackinnonp evaluates ``norm.cdf(polyval(coefficients, stat))``; scipy.stats' cdf
    costs some 20 us a call around ``scipy.special.ndtr``, which is what it computes,
    and Horner's rule on floats is polyval's own (tested equal, bit for bit).
    """
    table = _MACKINNON[(regression, n_series)]
    if stat > table.maximum:
        return 1.0
    if stat < table.minimum:
        return 0.0
    value = 0.0
    for c in table.small if stat <= table.star else table.large:
        value = value * stat + c
    return float(ndtr(value))


def _result(stat: float, pvalue: float, lag: int) -> UnitRootResult | None:
    if not (math.isfinite(stat) and math.isfinite(pvalue)):
        return None
    return UnitRootResult(stat, pvalue, lag)


# -- the test ---------------------------------------------------------------------


def _adf_stat(x: Array, regression: str) -> tuple[float, int] | None:
    """The ADF t-statistic and the lag chosen by AIC, or None where statsmodels fails."""
    try:
        return _adf_stat_of(x, regression)
    except np.linalg.LinAlgError:  # an SVD that does not converge, where statsmodels' own raises
        return None


def _adf_stat_of(x: Array, regression: str) -> tuple[float, int] | None:
    n = x.size
    if n < 2:
        return None
    low, high = float(x.min()), float(x.max())  # NaN and infinities reach them
    if not (math.isfinite(low) and math.isfinite(high)) or low == high:
        return None
    ntrend = _NTREND[regression]
    maxlag = min(n // 2 - ntrend - 1, _schwert(n))
    if maxlag < 0:
        return None
    d = np.diff(x)
    lag = _aic_lag(x, d, maxlag, regression)
    with np.errstate(all="ignore"):
        stat = _level_tvalue(_refit_design(x, d, lag, regression), d[lag:])
    return (stat, lag) if math.isfinite(stat) else None


_SCHWERT: dict[int, int] = {}


def _schwert(n: int) -> int:
    """statsmodels' default maxlag, ``ceil(12 * (n / 100) ** 0.25)``, to its very floating-point expression."""
    maxlag = _SCHWERT.get(n)
    if maxlag is None:
        maxlag = _SCHWERT[n] = int(np.ceil(12.0 * np.power(n / 100.0, 1 / 4.0)))
    return maxlag


def _aic_lag(x: Array, d: Array, maxlag: int, regression: str) -> int:
    """The lag (0..maxlag) with the smallest AIC on the common sample, as statsmodels' ``_autolag`` picks it."""
    ntrend = _NTREND[regression]
    n = x.size
    nobs = n - 1 - maxlag
    k = ntrend + 1 + maxlag  # columns of the largest model
    if nobs <= k:  # the largest model fits exactly (a short window, no constant): no residual to compare
        return _aic_lag_exact(x, d, maxlag, regression)
    endog = d[maxlag:]
    m = np.empty((nobs, k + 1), order="F")  # [trend, level, lags 1..maxlag, endog], as LAPACK takes it
    m[:, :ntrend] = _trend(nobs, regression)
    m[:, ntrend] = x[maxlag : n - 1]
    m[:, ntrend + 1 : k] = _lagged(d[:-1], maxlag)
    m[:, k] = endog
    qr, _, _, info = dgeqrf(m, overwrite_a=1)
    if info != 0:
        return _aic_lag_exact(x, d, maxlag, regression)
    r = qr[: k + 1, : k + 1]  # R in the upper triangle (what is below it is not R's)
    rcond = float(dtrcon(r[:k, :k])[0])
    if not rcond > 1.0 / _MAX_COND:
        return _aic_lag_exact(x, d, maxlag, regression)
    # The residual sum of squares of the model of the first p columns is the sum of
    # the squares of R's last column from row p on.
    tail = r[ntrend + 1 :, k] ** 2
    rss = np.cumsum(tail[::-1])[::-1]
    if not rss[-1] > 0:  # an exact fit: statsmodels' AICs are -inf, decided by its own rounding
        return _aic_lag_exact(x, d, maxlag, regression)
    aic = _aic(rss, nobs, np.arange(ntrend + 1, k + 1, dtype=np.float64))  # ranks: the lag matrix is of full rank
    best = int(np.argmin(aic))  # the first minimum: the smallest lag on a tie, as min((aic, lag)) takes it
    # Both statsmodels' fits and this search carry rounding errors of the residual sums
    # of squares up to about eps * cond * |y| / |residual|, relative: lags whose AIC is
    # within that of the best are compared on statsmodels' own numbers.
    relative = _TIE_SAFETY * _EPS * (1.0 / rcond) * math.sqrt(float(np.dot(endog, endog)) / float(rss[-1]))
    near = np.flatnonzero(aic <= aic[best] + nobs * relative + 1e-9 * abs(float(aic[best])))
    if near.size > 1:
        design = _search_design(x, d, maxlag, regression)
        exact = [(_aic_exact(design[:, : ntrend + 1 + int(j)], endog), int(j)) for j in near]
        return min(exact)[1]
    return best


def _lagged(d: Array, lags: int) -> Array:
    """Rows t = lags .. len(d): ``d[t - 1], d[t - 2], .., d[t - lags]`` (a strided view, no copy)."""
    if not lags:
        return np.empty((d.size + 1, 0))
    step = d.strides[0]
    # Row i starts at d[i + lags - 1] and walks back one element a column.
    return np.lib.stride_tricks.as_strided(d[lags - 1 :], shape=(d.size - lags + 1, lags), strides=(step, -step))


def _aic(rss: Array, nobs: int, rank: Array) -> Array:
    """statsmodels' OLS AIC from residual sums of squares: ``-2 llf + 2 rank``."""
    nobs2 = nobs / 2.0
    with np.errstate(divide="ignore"):
        llf = -nobs2 * np.log(2 * np.pi) - nobs2 * np.log(rss / float(nobs)) - nobs2
    aic: Array = -2 * llf + 2 * rank
    return aic


# -- statsmodels' own arithmetic, for the refit and for what the QR search leaves to it ----


def _trend(nobs: int, regression: str) -> Array:
    """The deterministic columns [1, t, t^2] (t = 1..nobs) of ``regression``, as add_trend makes them."""
    ntrend = _NTREND[regression]
    if not ntrend:
        return np.empty((nobs, 0))
    return np.fliplr(np.vander(np.arange(1, nobs + 1, dtype=np.float64), ntrend))


def _add_trend(x: Array, regression: str, *, prepend: bool) -> Array:
    """statsmodels' ``add_trend(x, regression, prepend)``: with a non-zero constant column, no constant is added."""
    if regression == "n":
        return x
    trend = _trend(x.shape[0], regression)
    if np.any((np.ptp(x, axis=0) == 0) & (x[0] != 0)):
        trend = trend[:, 1:]
    return np.column_stack([trend, x] if prepend else [x, trend])


def _lag_matrix(x: Array, d: Array, lags: int) -> Array:
    """``xdall`` of adfuller: the lagged level, then the differences lagged 1..lags, for t = lags .. n - 2."""
    n = x.size
    out = np.empty((n - 1 - lags, lags + 1))
    out[:, 0] = x[lags : n - 1]
    out[:, 1:] = _lagged(d[:-1], lags)
    return out


def _search_design(x: Array, d: Array, maxlag: int, regression: str) -> Array:
    """The lag search's full design as adfuller builds it: trend columns first, then ``xdall``."""
    return _add_trend(_lag_matrix(x, d, maxlag), regression, prepend=True)


def _refit_design(x: Array, d: Array, lag: int, regression: str) -> Array:
    """The refit's design as adfuller builds it: ``xdall`` of the chosen lag, then the trend columns."""
    return _add_trend(_lag_matrix(x, d, lag), regression, prepend=False)


def _pinv_fit(design: Array, endog: Array) -> tuple[Array, Array, int]:
    """statsmodels' OLS fit (``method="pinv"``): parameters, pseudo-inverse and rank of ``design``."""
    u, s, vt = np.linalg.svd(design, full_matrices=False)
    cutoff = 1e-15 * s.max()
    inv = np.zeros_like(s)
    keep = s > cutoff
    inv[keep] = 1.0 / s[keep]
    pinv = np.dot(vt.T, inv[:, None] * u.T)
    # np.linalg.matrix_rank(np.diag(s)), statsmodels' rank rule.
    rank = int(np.count_nonzero(s > s.max() * s.size * _EPS))
    return np.dot(pinv, endog), pinv, rank


def _level_tvalue(design: Array, endog: Array) -> float:
    """The t-value of the first column's coefficient in statsmodels' OLS of ``endog`` on ``design``."""
    params, pinv, rank = _pinv_fit(design, endog)
    resid = endog - np.dot(design, params)
    scale = np.dot(resid, resid) / (endog.size - rank)
    return float(params[0] / np.sqrt(np.dot(pinv[0], pinv[0]) * scale))


def _aic_exact(design: Array, endog: Array) -> float:
    """statsmodels' ``OLS(endog, design).fit().aic``."""
    params, _, rank = _pinv_fit(design, endog)
    nobs = endog.size
    resid = endog - np.dot(design, params)
    return float(_aic(np.array([np.sum(resid**2)]), nobs, np.array([float(rank)]))[0])


def _aic_lag_exact(x: Array, d: Array, maxlag: int, regression: str) -> int:
    """statsmodels' lag search itself: every lag's regression fitted on its own."""
    design = _search_design(x, d, maxlag, regression)
    start = design.shape[1] - maxlag  # trend columns (those add_trend kept) and the level
    endog = d[maxlag:]
    with np.errstate(all="ignore"):
        aics = [(_aic_exact(design[:, : start + j], endog), j) for j in range(maxlag + 1)]
    return min(aics)[1]
