"""The typed snapshot and its one JSON form (pure)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from analytics.snapshot import (
    SOURCE_HISTORY,
    STAT_FIELDS,
    VERSION,
    PairSnapshot,
    Statistics,
    Thresholds,
    snapshot_build,
    snapshot_from_json,
    snapshot_json,
    snapshot_placeholder,
)

THRESHOLDS = Thresholds(entry_z=2.0, exit_z=0.5, min_correlation=0.6, max_adf_pvalue=0.05)
STATS = Statistics(
    **{name: 0.25 + k for k, name in enumerate(STAT_FIELDS)} | {"adf_lag": 3},
    half_life_seconds=7.5,
    quality={"stationarity": {"value": 0.9, "weight": 0.4, "points": 36.0}},
)


def build(n: int, min_bars: int = 30, stale_legs: tuple[str, ...] = ()) -> PairSnapshot:
    return snapshot_build(
        pair=4,
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1s",
        window=300,
        min_bars=min_bars,
        thresholds=THRESHOLDS,
        as_of=1_700_000_000_000,
        n=n,
        last_prices=(60_000.5, 3_000.25),
        stale_legs=stale_legs,
        statistics=STATS,
        computed_at=1_700_000_000_400,
    )


def test_a_ready_window_carries_its_statistics_and_a_warming_one_none():
    ready = build(40)
    assert ready.ready and ready.statistics == STATS and ready.warmup.bars == 40
    warming = build(20)
    assert not warming.ready and warming.statistics == Statistics() and warming.warmup.required == 30
    assert build(40, stale_legs=("ETHUSDT",)).stale


def test_the_json_form_is_flat_versioned_and_reads_back_the_same():
    snapshot = build(40, stale_legs=("ETHUSDT",))
    data = orjson.loads(orjson.dumps(snapshot_json(snapshot)))  # through JSON, as the cache and the rows keep it
    assert data["version"] == VERSION
    assert data["zscore"] == STATS.zscore and data["half_life_seconds"] == 7.5
    assert data["warmup"] == {"bars": 40, "required": 30}
    assert data["thresholds"] == dataclasses.asdict(THRESHOLDS)
    assert data["stale_legs"] == ["ETHUSDT"]
    assert snapshot_from_json(data) == snapshot


def test_every_field_is_present_even_when_nothing_was_computed():
    placeholder = snapshot_placeholder(
        pair=4, symbols=("BTCUSDT", "ETHUSDT"), interval="1m", window=100, min_bars=50, thresholds=THRESHOLDS
    )
    data = snapshot_json(placeholder)
    assert set(data) == set(snapshot_json(build(40)))
    assert all(data[name] is None for name in STAT_FIELDS)
    assert data["warmup"] == {"bars": None, "required": 50} and data["source"] == "none"


def test_a_snapshot_stored_before_versions_began_is_read():
    """History rows and alerts written before the version field (version 0): the same fields without it."""
    data = snapshot_json(build(40).with_source(SOURCE_HISTORY))
    del data["version"]
    assert snapshot_from_json(data) == build(40).with_source(SOURCE_HISTORY)


def test_a_snapshot_of_a_newer_version_is_refused_not_misread():
    data = snapshot_json(build(40)) | {"version": VERSION + 1}
    with pytest.raises(ValueError, match="newer"):
        snapshot_from_json(data)


def test_the_snapshot_carries_every_statistic_the_statistics_compute():
    from analytics.stats import PairStats

    computed = [f.name for f in dataclasses.fields(PairStats) if f.name not in ("n", "quality")]
    assert list(STAT_FIELDS) == computed
