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


def test_the_json_form_copies_the_statistics_as_asdict_does_in_field_order():
    snapshot = build(40)
    data = snapshot_json(snapshot)
    expected = dataclasses.asdict(snapshot.statistics)
    assert {name: data[name] for name in expected} == expected
    assert [name for name in data if name in expected] == list(expected)
    assert list(data["thresholds"].items()) == list(dataclasses.asdict(THRESHOLDS).items())
    data["quality"]["stationarity"]["value"] = 0.0  # a copy: the snapshot is not changed through its JSON
    assert snapshot.statistics.quality == STATS.quality and STATS.quality["stationarity"]["value"] == 0.9


def test_every_field_is_present_even_when_nothing_was_computed():
    placeholder = snapshot_placeholder(
        pair=4, symbols=("BTCUSDT", "ETHUSDT"), interval="1m", window=100, min_bars=50, thresholds=THRESHOLDS
    )
    data = snapshot_json(placeholder)
    assert set(data) == set(snapshot_json(build(40)))
    assert all(data[name] is None for name in STAT_FIELDS)
    assert data["warmup"] == {"bars": None, "required": 50} and data["source"] == "none"


@pytest.mark.parametrize("version", [0, 1])
def test_a_snapshot_stored_before_signals_is_read_with_no_signal_and_the_default_gates(version):
    """History rows and alerts of version 0 (before the version field) and 1 (before the signal)."""
    data = snapshot_json(build(40).with_source(SOURCE_HISTORY))
    for name in ("signal_zscore", "related", "related_run"):
        del data[name]
    for name in ("max_coint_pvalue", "confirm_bars"):
        del data["thresholds"][name]
    if version:
        data["version"] = version
    else:
        del data["version"]
    read = snapshot_from_json(data)
    assert read == build(40).with_source(SOURCE_HISTORY)
    assert (read.signal_zscore, read.related, read.related_run) == (None, False, 0)
    assert (read.thresholds.max_coint_pvalue, read.thresholds.confirm_bars) == (0.05, 30)


def test_the_signal_scores_the_newest_bar_with_the_formation_model_and_counts_the_run():
    related = Statistics(
        hedge_ratio=20.0, spread_mean=500.0, spread_std=4.0, adf_pvalue=0.01, coint_pvalue=0.02, correlation=0.8
    )
    formation = Statistics(hedge_ratio=19.5, spread_mean=480.0, spread_std=5.0)
    snapshot = dataclasses.replace(build(40), statistics=related)
    built = snapshot_build(
        **{f: getattr(snapshot, f) for f in ("pair", "interval", "window", "thresholds", "as_of", "n", "stale_legs")},
        symbols=("BTCUSDT", "ETHUSDT"),
        min_bars=30,
        last_prices=(60_000.5, 3_000.25),
        statistics=related,
        computed_at=1,
        formation=formation,
        previous_run=29,
    )
    assert built.signal_zscore == (60_000.5 - 19.5 * 3_000.25 - 480.0) / 5.0
    assert built.related and built.related_run == 30
    unrelated = dataclasses.replace(related, coint_pvalue=0.05)
    kwargs = dict(
        pair=4,
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1s",
        window=300,
        thresholds=THRESHOLDS,
        as_of=1,
        n=40,
        last_prices=(60_000.5, 3_000.25),
        stale_legs=(),
        computed_at=1,
    )
    built = snapshot_build(**kwargs, min_bars=30, statistics=unrelated, formation=formation, previous_run=29)
    assert not built.related and built.related_run == 0
    # No formation model (the previous window was not ready), or one whose spread did not vary: no signal.
    assert snapshot_build(**kwargs, min_bars=30, statistics=related, formation=None).signal_zscore is None
    flat = dataclasses.replace(formation, spread_std=0.0)
    assert snapshot_build(**kwargs, min_bars=30, statistics=related, formation=flat).signal_zscore is None
    # Warming up: neither a signal nor a relationship.
    warming = snapshot_build(**kwargs, min_bars=50, statistics=related, formation=formation, previous_run=29)
    assert (warming.signal_zscore, warming.related, warming.related_run) == (None, False, 0)


def test_a_snapshot_of_a_newer_version_is_refused_not_misread():
    data = snapshot_json(build(40)) | {"version": VERSION + 1}
    with pytest.raises(ValueError, match="newer"):
        snapshot_from_json(data)


def test_the_snapshot_carries_every_statistic_the_statistics_compute():
    from analytics.stats import PairStats

    computed = [f.name for f in dataclasses.fields(PairStats) if f.name not in ("n", "quality")]
    assert list(STAT_FIELDS) == computed
