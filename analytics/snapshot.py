"""A pair's snapshot: the numbers of one window, typed, and its one JSON form.

Pure (no Django, no numpy). ``snapshot_build`` makes a snapshot from a window's
facts and its statistics; ``snapshot_json`` is the one serializer (the API, the
cache, the websocket and the stored history and alerts all carry that JSON), and
``snapshot_from_json`` reads it back, from any version stored since versions began.
The fields and their definitions: docs/analytics.md, "Snapshots".
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

#: The version of the JSON form. A change of fields raises it, and
#: ``snapshot_from_json`` learns to read the older form.
VERSION = 3

#: Where a snapshot comes from: the snapshot cycle (live), the newest history row
#: (the cycle has not published one since the cache was emptied, or the pair is
#: inactive), or nowhere yet (a placeholder: nothing was ever computed).
Source = Literal["cycle", "history", "none"]
SOURCE_CYCLE: Source = "cycle"
SOURCE_HISTORY: Source = "history"
SOURCE_NONE: Source = "none"


@dataclasses.dataclass(frozen=True, slots=True)
class Warmup:
    """Bars in the window (None: not known, nothing computed yet), and how many it needs (``min_bars``)."""

    bars: int | None
    required: int


@dataclasses.dataclass(frozen=True, slots=True)
class Thresholds:
    """The pair's alert thresholds the snapshot was computed under (defaults: a new pair's)."""

    entry_z: float = 2.0
    exit_z: float = 0.5
    min_correlation: float = 0.6
    max_adf_pvalue: float = 0.05
    max_coint_pvalue: float = 0.05
    confirm_bars: int = 30


@dataclasses.dataclass(frozen=True, slots=True)
class Statistics:
    """Every statistic of a ready window (each None when its definition does not apply)."""

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
    half_life_seconds: float | None = None
    quality: dict[str, Any] | None = None


NO_STATISTICS = Statistics()

#: The statistics ``analytics.stats.PairStats`` computes (a field each of both), in order;
#: the snapshot adds ``half_life_seconds`` and the score's parts, ``quality``.
STAT_FIELDS = tuple(f.name for f in dataclasses.fields(Statistics) if f.name not in ("half_life_seconds", "quality"))


@dataclasses.dataclass(frozen=True, slots=True)
class PairSnapshot:
    """The state of a pair on the window ending at its newest closed bar ``as_of`` (ms)."""

    pair: int
    symbol_a: str
    symbol_b: str
    interval: str
    window: int
    thresholds: Thresholds
    as_of: int | None = None
    n: int = 0
    ready: bool = False
    warmup: Warmup = Warmup(0, 0)
    stale: bool = False
    stale_legs: tuple[str, ...] = ()
    price_a: float | None = None
    price_b: float | None = None
    statistics: Statistics = NO_STATISTICS
    #: The newest bar scored with the previous grid point's model (docs/analytics.md, "The signal").
    signal_zscore: float | None = None
    #: The hedge ratio of that model (beta'): what a trade on this signal hedges with.
    signal_hedge_ratio: float | None = None
    #: Whether this window passes every relationship gate, and for how many snapshots in a row.
    related: bool = False
    related_run: int = 0
    computed_at: int | None = None
    source: Source = SOURCE_NONE

    def with_source(self, source: Source) -> PairSnapshot:
        return dataclasses.replace(self, source=source)


def related_of(statistics: Statistics, thresholds: Thresholds) -> bool:
    """Whether a window passes every relationship gate: ADF p, Engle-Granger p, returns correlation.

    A missing value fails its gate (docs/analytics.md, "The signal").
    """
    adf, coint, correlation = statistics.adf_pvalue, statistics.coint_pvalue, statistics.correlation
    return (
        adf is not None
        and coint is not None
        and correlation is not None
        and adf < thresholds.max_adf_pvalue
        and coint < thresholds.max_coint_pvalue
        and correlation >= thresholds.min_correlation
    )


def signal_zscore_of(price_a: float, price_b: float, formation: Statistics | None) -> float | None:
    """``(y_t - beta' x_t - mu') / sigma'``: the newest bar scored with the formation window's model.

    None without a formation model (the previous grid point not ready) or with a
    spread that did not vary on it (sigma' null or 0).
    """
    if formation is None:
        return None
    beta, mean, std = formation.hedge_ratio, formation.spread_mean, formation.spread_std
    if beta is None or mean is None or std is None or not std > 0:
        return None
    z = (price_a - beta * price_b - mean) / std
    return z if math.isfinite(z) else None


def snapshot_build(
    *,
    pair: int,
    symbols: tuple[str, str],
    interval: str,
    window: int,
    min_bars: int,
    thresholds: Thresholds,
    as_of: int | None,
    n: int,
    last_prices: tuple[float, float] | None,
    stale_legs: Sequence[str],
    statistics: Statistics | None,
    computed_at: int,
    formation: Statistics | None = None,
    previous_run: int = 0,
) -> PairSnapshot:
    """The snapshot of a window of ``n`` aligned bars ending at ``as_of``.

    Ready once ``n >= min_bars``; a ready window carries ``statistics`` (computed,
    or taken from a snapshot of this very window), any other none. ``formation``:
    the statistics of the previous grid point's window when it was ready (its
    model scores this bar: ``signal_zscore``); ``previous_run``: that snapshot's
    ``related_run`` (0 when unknown).
    """
    ready = n >= min_bars
    statistics = (statistics or NO_STATISTICS) if ready else NO_STATISTICS
    related = ready and related_of(statistics, thresholds)
    signal_zscore = signal_zscore_of(*last_prices, formation) if ready and last_prices else None
    return PairSnapshot(
        pair=pair,
        symbol_a=symbols[0],
        symbol_b=symbols[1],
        interval=interval,
        window=window,
        thresholds=thresholds,
        as_of=as_of,
        n=n,
        ready=ready,
        warmup=Warmup(n, min_bars),
        stale=bool(stale_legs),
        stale_legs=tuple(stale_legs),
        price_a=last_prices[0] if last_prices else None,
        price_b=last_prices[1] if last_prices else None,
        statistics=statistics,
        signal_zscore=signal_zscore,
        signal_hedge_ratio=formation.hedge_ratio if signal_zscore is not None and formation is not None else None,
        related=related,
        related_run=previous_run + 1 if related else 0,
        computed_at=computed_at,
        source=SOURCE_CYCLE,
    )


def snapshot_placeholder(
    *, pair: int, symbols: tuple[str, str], interval: str, window: int, min_bars: int, thresholds: Thresholds
) -> PairSnapshot:
    """A pair's snapshot before anything was computed: every number null."""
    return PairSnapshot(
        pair=pair,
        symbol_a=symbols[0],
        symbol_b=symbols[1],
        interval=interval,
        window=window,
        thresholds=thresholds,
        warmup=Warmup(None, min_bars),
    )


def snapshot_json(snapshot: PairSnapshot) -> dict[str, Any]:
    """The JSON form: flat, every field always present (null when unknown), with its ``version``."""
    return {
        "version": VERSION,
        "pair": snapshot.pair,
        "symbol_a": snapshot.symbol_a,
        "symbol_b": snapshot.symbol_b,
        "as_of": snapshot.as_of,
        "interval": snapshot.interval,
        "n": snapshot.n,
        "window": snapshot.window,
        "ready": snapshot.ready,
        "warmup": {"bars": snapshot.warmup.bars, "required": snapshot.warmup.required},
        "stale": snapshot.stale,
        "stale_legs": list(snapshot.stale_legs),
        "price_a": snapshot.price_a,
        "price_b": snapshot.price_b,
        **{name: _plain(getattr(snapshot.statistics, name)) for name in _STATISTICS_FIELDS},
        "signal_zscore": snapshot.signal_zscore,
        "signal_hedge_ratio": snapshot.signal_hedge_ratio,
        "related": snapshot.related,
        "related_run": snapshot.related_run,
        "thresholds": {name: getattr(snapshot.thresholds, name) for name in _THRESHOLDS_FIELDS},
        "computed_at": snapshot.computed_at,
        "source": snapshot.source,
    }


_STATISTICS_FIELDS = tuple(f.name for f in dataclasses.fields(Statistics))
_THRESHOLDS_FIELDS = tuple(f.name for f in dataclasses.fields(Thresholds))
_ATOMS = (float, int, bool, str, type(None))


def _plain(value: Any) -> Any:
    """``value`` copied as ``dataclasses.asdict`` copies a field's value (dicts and lists anew, all the way down)."""
    if type(value) in _ATOMS:
        return value
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return copy.deepcopy(value)


def snapshot_from_json(data: Mapping[str, Any]) -> PairSnapshot:
    """A snapshot from its JSON form, of this version or an older one.

    Version 0 is the form stored before versions began: the same fields, without
    ``version``. Versions 0 and 1 carry no signal (``signal_zscore`` null, not
    related) and no ``max_coint_pvalue``/``confirm_bars`` (a new pair's defaults);
    versions before 3 no ``signal_hedge_ratio`` (null).
    """
    version = data.get("version", 0)
    if version > VERSION:
        raise ValueError(f"a snapshot of version {version} is newer than this code reads ({VERSION})")
    warmup = data.get("warmup") or {}
    return PairSnapshot(
        pair=data["pair"],
        symbol_a=data["symbol_a"],
        symbol_b=data["symbol_b"],
        interval=data["interval"],
        window=data["window"],
        thresholds=Thresholds(**data["thresholds"]),
        as_of=data.get("as_of"),
        n=data.get("n", 0),
        ready=data.get("ready", False),
        warmup=Warmup(warmup.get("bars"), warmup.get("required", 0)),
        stale=data.get("stale", False),
        stale_legs=tuple(data.get("stale_legs") or ()),
        price_a=data.get("price_a"),
        price_b=data.get("price_b"),
        statistics=Statistics(**{f.name: data.get(f.name) for f in dataclasses.fields(Statistics)}),
        signal_zscore=data.get("signal_zscore"),
        signal_hedge_ratio=data.get("signal_hedge_ratio"),
        related=data.get("related", False),
        related_run=data.get("related_run", 0),
        computed_at=data.get("computed_at"),
        source=data.get("source", SOURCE_CYCLE),
    )
