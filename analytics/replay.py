"""A pair's snapshots over a series of aligned closes, stepped as the snapshot cycle steps them (pure).

No Django, no I/O: numpy and ``analytics.stats``. Given a pair's aligned closes
(its grid times and the two legs' forward-filled closes, oldest first, as
``bars.align_closes`` gives them), ``snapshots_replay`` yields the snapshot of
every grid point in order, built the way the snapshot cycle builds it: the window
of the last ``window`` points ending there, its statistics (``pair_stats``, then
``statistics_of``), the previous grid point's statistics as the formation model
that scores the newest bar, and that snapshot's ``related_run`` carried on
(docs/analytics.md, "Snapshots" and "The signal"). So a benchmark or a backtest
of the alert rule reads the production snapshots, not a copy of their arithmetic.

What a replay does not know: the legs' own bar times, so no snapshot is stale,
and the wall clock, so ``computed_at`` is the close of the snapshot's bar
(``as_of`` + the interval), which keeps a replay deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from .bars import parse_interval
from .snapshot import STAT_FIELDS, PairSnapshot, Statistics, Thresholds, snapshot_build
from .stats import PairStats, pair_stats

__all__ = ["snapshots_replay", "statistics_of"]

#: What computes a window's statistics from its ``y`` and ``x`` (default ``pair_stats``).
StatsOf = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], PairStats]


def statistics_of(stats: PairStats, interval_ms: int) -> Statistics:
    """A window's ``PairStats`` as a snapshot's ``Statistics``: the same values, the half-life also in seconds."""
    half_life_seconds = stats.half_life * interval_ms / 1000 if stats.half_life is not None else None
    return Statistics(
        **{name: getattr(stats, name) for name in STAT_FIELDS},
        half_life_seconds=half_life_seconds,
        quality=stats.quality,
    )


def snapshots_replay(
    times: npt.ArrayLike,
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    pair: int,
    symbols: tuple[str, str],
    interval: str,
    window: int,
    min_bars: int,
    thresholds: Thresholds,
    stats_of: StatsOf = pair_stats,
) -> Iterator[PairSnapshot]:
    """The snapshot of each grid point of ``times``, oldest first.

    Parameters
    ----------
    times : array_like of int, shape (N,)
        The pair's grid: bar open times (ms), increasing.
    y, x : array_like of float, shape (N,)
        The aligned closes of symbol A and symbol B at those times.
    pair, symbols, interval, window, min_bars, thresholds
        The pair's settings, as ``snapshot_build`` takes them.
    stats_of
        What computes a window's statistics (default ``pair_stats``; the same
        numbers from elsewhere, e.g. a cache of them, may stand in).

    Yields
    ------
    PairSnapshot
        For grid point k: the window ``max(0, k + 1 - window) .. k`` (``n`` points),
        ready once ``n >= min_bars``, with that window's statistics; its
        ``signal_zscore`` scores ``(y[k], x[k])`` with the statistics of the
        snapshot of point k - 1 when that one was ready, and its ``related_run``
        continues that snapshot's. Statistics are computed once per ready point.

    Raises
    ------
    ValueError
        The three series differ in length or are not one-dimensional, ``times``
        does not increase, or ``window`` < 1.
    """
    t = np.asarray(times, dtype=np.int64)
    ys = np.asarray(y, dtype=np.float64)
    xs = np.asarray(x, dtype=np.float64)
    if t.ndim != 1 or ys.shape != t.shape or xs.shape != t.shape:
        raise ValueError(f"times, y and x must be 1-D of one length, got {t.shape}, {ys.shape} and {xs.shape}")
    if t.size > 1 and not bool(np.all(np.diff(t) > 0)):
        raise ValueError("times must increase")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    interval_ms = parse_interval(interval)
    previous: PairSnapshot | None = None
    for k in range(t.size):
        start = max(0, k + 1 - window)
        n = k + 1 - start
        statistics = None
        if n >= min_bars:
            statistics = statistics_of(stats_of(ys[start : k + 1], xs[start : k + 1]), interval_ms)
        formation = previous.statistics if previous is not None and previous.ready else None
        as_of = int(t[k])
        snapshot = snapshot_build(
            pair=pair,
            symbols=symbols,
            interval=interval,
            window=window,
            min_bars=min_bars,
            thresholds=thresholds,
            as_of=as_of,
            n=n,
            last_prices=(float(ys[k]), float(xs[k])),
            stale_legs=(),
            statistics=statistics,
            computed_at=as_of + interval_ms,
            formation=formation,
            previous_run=previous.related_run if previous is not None else 0,
        )
        yield snapshot
        previous = snapshot
