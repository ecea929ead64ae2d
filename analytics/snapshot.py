"""A pair's snapshot: the numbers of one window, typed, and its one JSON form.

Pure (no Django, no numpy). ``snapshot_build`` makes a snapshot from a window's
facts and its statistics; ``snapshot_json`` is the one serializer (the API, the
cache, the websocket and the stored history and alerts all carry that JSON), and
``snapshot_from_json`` reads it back, from any version stored since versions began.
The fields and their definitions: docs/analytics.md, "Snapshots".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

#: The version of the JSON form. A change of fields raises it, and
#: ``snapshot_from_json`` learns to read the older form.
VERSION = 1

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
    """The pair's alert thresholds the snapshot was computed under."""

    entry_z: float
    exit_z: float
    min_correlation: float
    max_adf_pvalue: float


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
    computed_at: int | None = None
    source: Source = SOURCE_NONE

    def with_source(self, source: Source) -> PairSnapshot:
        return dataclasses.replace(self, source=source)


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
) -> PairSnapshot:
    """The snapshot of a window of ``n`` aligned bars ending at ``as_of``.

    Ready once ``n >= min_bars``; a ready window carries ``statistics`` (computed,
    or taken from a snapshot of this very window), any other none.
    """
    ready = n >= min_bars
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
        statistics=(statistics or NO_STATISTICS) if ready else NO_STATISTICS,
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
        **dataclasses.asdict(snapshot.statistics),
        "thresholds": dataclasses.asdict(snapshot.thresholds),
        "computed_at": snapshot.computed_at,
        "source": snapshot.source,
    }


def snapshot_from_json(data: Mapping[str, Any]) -> PairSnapshot:
    """A snapshot from its JSON form, of this version or an older one.

    Version 0 is the form stored before versions began: the same fields, without
    ``version``.
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
        computed_at=data.get("computed_at"),
        source=data.get("source", SOURCE_CYCLE),
    )
