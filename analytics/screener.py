"""The screener: every pair of a universe tested for cointegration, with false-discovery control (pure).

No Django, no I/O. Given each symbol's closed bars (open times and closes) at one
interval, every unordered pair {A, B} is aligned as a live pair is
(``bars.align_arrays``: the union grid, forward-filled, the last ``window``
points) and scored as docs/analytics.md ("Screener") says:

- ``coint_pvalue``: the larger of the Engle-Granger p-values of (A on B) and
  (B on A): the pair must pass in both orders;
- ``hedge_ratio``, ``half_life``, ``correlation`` and ``adf_pvalue``: the pair's
  statistics (``stats.pair_stats``) with y the leg of the order whose p-value is
  the smaller; the pair is reported in that order (``symbol_a`` is y);
- ``qvalue``: Benjamini-Hochberg over the m pairs that have a p-value (a pair
  too short, with a constant leg, or collinear, has none: it is no test);
- ``significant``: q < fdr.

Ranked by q-value, then half-life (nulls last). A degenerate pair gets nulls and
ranks last, never an error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from .bars import align_arrays
from .stats import MIN_OBS, PairStats, coint_pvalue, pair_stats

__all__ = ["Leg", "ScreenedPair", "bh_qvalues", "screen"]

#: A symbol's closed bars: open times (ms, ascending, unique) and closes.
Leg = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


@dataclasses.dataclass(frozen=True)
class ScreenedPair:
    """One pair of a screener run (docs/analytics.md, "Screener"); ``symbol_a`` is y."""

    symbol_a: str
    symbol_b: str
    n: int
    coint_pvalue: float | None = None
    qvalue: float | None = None
    significant: bool = False
    hedge_ratio: float | None = None
    half_life: float | None = None
    correlation: float | None = None
    adf_pvalue: float | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bh_qvalues(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values of ``pvalues`` (None stays None and does not count in m).

    Sorted ascending, ``q_(i) = min over j >= i of m p_(j) / j``, capped at 1.
    """
    tested = [(p, k) for k, p in enumerate(pvalues) if p is not None]
    q: list[float | None] = [None] * len(pvalues)
    m = len(tested)
    if not m:
        return q
    order = sorted(tested)
    running = 1.0
    for rank in range(m, 0, -1):
        p, k = order[rank - 1]
        running = min(running, m * p / rank)
        q[k] = min(running, 1.0)
    return q


def _pair(a: str, b: str, legs: Mapping[str, Leg], window: int, stats_of: Callable[..., PairStats]) -> ScreenedPair:
    """The numbers of one pair, in the order of its smaller Engle-Granger p-value."""
    aligned = align_arrays(*legs[a], *legs[b], window=window)
    n = aligned.n
    if n < MIN_OBS:
        return ScreenedPair(a, b, n)
    ab, ba = coint_pvalue(aligned.y, aligned.x), coint_pvalue(aligned.x, aligned.y)
    if ab is None or ba is None:
        return ScreenedPair(a, b, n)
    y_sym, x_sym, y, x = (a, b, aligned.y, aligned.x) if ab <= ba else (b, a, aligned.x, aligned.y)
    stats = stats_of(y, x)
    return ScreenedPair(
        y_sym,
        x_sym,
        n,
        coint_pvalue=max(ab, ba),
        hedge_ratio=stats.hedge_ratio,
        half_life=stats.half_life,
        correlation=stats.correlation,
        adf_pvalue=stats.adf_pvalue,
    )


def _rank_key(pair: ScreenedPair) -> tuple[float, float, str, str]:
    return (
        math.inf if pair.qvalue is None else pair.qvalue,
        math.inf if pair.half_life is None else pair.half_life,
        pair.symbol_a,
        pair.symbol_b,
    )


def screen(
    legs: Mapping[str, Leg],
    *,
    window: int,
    fdr: float = 0.05,
    stats_of: Callable[..., PairStats] = pair_stats,
    progress: Callable[[float], None] | None = None,
) -> list[ScreenedPair]:
    """Every unordered pair of ``legs``' symbols, scored, q-valued and ranked (docs/analytics.md, "Screener")."""
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be between 0 and 1, not {fdr}")
    if window < MIN_OBS:
        raise ValueError(f"window must be at least {MIN_OBS}, not {window}")
    symbols = sorted(legs)
    pairs = list(combinations(symbols, 2))
    scored = []
    for k, (a, b) in enumerate(pairs):
        scored.append(_pair(a, b, legs, window, stats_of))
        if progress is not None and k % 50 == 0:
            progress(k / len(pairs))
    qvalues = bh_qvalues([pair.coint_pvalue for pair in scored])
    ranked = [
        dataclasses.replace(pair, qvalue=q, significant=q is not None and q < fdr)
        for pair, q in zip(scored, qvalues, strict=True)
    ]
    if progress is not None:
        progress(1.0)
    return sorted(ranked, key=_rank_key)
