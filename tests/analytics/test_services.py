"""Resampling and snapshots through the database, against pandas and statsmodels."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from django.core.cache import cache
from django.db import connection
from statsmodels.tsa.stattools import adfuller, coint

from analytics import selectors, services
from analytics.bars import INTERVALS, WidestBarTicks, affected_open_times, build_bars
from analytics.models import Bar, Pair, Snapshot, Watermark
from analytics.snapshot import STAT_FIELDS, snapshot_json
from ingestion.binance import Tick, parse_frame
from ingestion.journal import StoredTicks
from ingestion.models import Tick as TickRow
from ingestion.services import ticks_store
from ingestion.writer import Batch
from tests.support import T0, cointegrated_ticks, make_pair, store_and_resample

pytestmark = pytest.mark.django_db


def build_snapshot(**kwargs):
    """``pair_snapshot_build``, the snapshot in its JSON form (as the API and the cache have it)."""
    snapshot, series = services.pair_snapshot_build(**kwargs)
    return snapshot_json(snapshot), series


def snapshot_cycle(pipeline, **kwargs):
    """One snapshot cycle of the pipeline; the snapshots it published, in their JSON form."""
    return [snapshot_json(s) for s in pipeline.snapshots(**kwargs)]


def stored_bars(interval: str) -> pd.DataFrame:
    rows = Bar.objects.filter(interval=interval).values(
        "symbol", "open_time", "open", "high", "low", "close", "volume", "trades"
    )
    return pd.DataFrame(list(rows)).sort_values(["symbol", "open_time"]).reset_index(drop=True)


BAR_ROW = ("symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "trades")


def pandas_bars(ticks: list[Tick], interval: str) -> pd.DataFrame:
    """The independent reference: pandas resample of the same ticks."""
    rule = {"1s": "1s", "1m": "1min", "5m": "5min"}[interval]
    df = pd.DataFrame(ticks, columns=["timestamp", "symbol", "price", "quantity", "trade_id"])
    df = df.sort_values(["timestamp", "trade_id"])
    frames = []
    for symbol, g in df.groupby("symbol"):
        g = g.set_index(pd.to_datetime(g["timestamp"], unit="ms"))
        r = g.resample(rule, label="left", closed="left")
        out = r["price"].ohlc()
        out["volume"] = r["quantity"].sum()
        out["trades"] = r["price"].count()
        out = out[out["trades"] > 0].reset_index(names="time")
        out["open_time"] = out["time"].astype("datetime64[ms]").astype("int64")
        out["symbol"] = symbol
        frames.append(out)
    ref = pd.concat(frames)[["symbol", "open_time", "open", "high", "low", "close", "volume", "trades"]]
    return ref.sort_values(["symbol", "open_time"]).reset_index(drop=True)


def assert_bars_equal(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert len(got) == len(ref)
    pd.testing.assert_frame_equal(
        got[["symbol", "open_time", "trades"]], ref[["symbol", "open_time", "trades"]], check_dtype=False
    )
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(got[column].to_numpy(), ref[column].to_numpy())
    np.testing.assert_allclose(got["volume"].to_numpy(), ref["volume"].to_numpy(), rtol=1e-12)


@pytest.fixture(scope="module")
def recorded_ticks(recorded_frames) -> list[Tick]:
    return [parse_frame(f) for f in recorded_frames]


@pytest.mark.parametrize("interval", ["1s", "1m", "5m"])
def test_bars_equal_pandas_resample_on_the_real_recording(recorded_ticks, interval):
    store_and_resample(recorded_ticks, batch=3000)
    assert_bars_equal(stored_bars(interval), pandas_bars(recorded_ticks, interval))


def test_a_late_tick_rebuilds_its_bar_and_a_rebuild_gives_the_same_rows(recorded_ticks):
    held_back = recorded_ticks[5000:5040]  # 40 trades that arrive late (a backfill)
    store_and_resample(recorded_ticks[:5000] + recorded_ticks[5040:], batch=4000)
    store_and_resample(held_back)
    for interval in ("1s", "1m"):
        assert_bars_equal(stored_bars(interval), pandas_bars(recorded_ticks, interval))
    before = stored_bars("1s")
    Bar.objects.all().delete()
    Watermark.objects.all().delete()
    services.bars_resample(max_ticks=10**6)
    pd.testing.assert_frame_equal(stored_bars("1s"), before)


def test_a_run_rebuilds_from_the_ticks_the_last_run_kept_and_the_new_ones(recorded_ticks, monkeypatch):
    """The stored ticks of the bars the last run rebuilt are not read again; the bars are those of a rebuild."""
    reads = []
    read = services._ticks_between
    monkeypatch.setattr(services, "_ticks_between", lambda *a, **k: reads.append(a) or read(*a, **k))
    kept = WidestBarTicks()
    store_and_resample(recorded_ticks[:3000], batch=3000, kept=kept)
    first_reads = len(reads)
    assert first_reads
    # The next ticks of the same bars: nothing read but them.
    bars = affected_open_times(recorded_ticks[:3000], "5m")
    in_the_bars = [t for t in recorded_ticks[3000:6000] if (t.symbol, t.timestamp // 300_000 * 300_000) in bars]
    assert in_the_bars
    store_and_resample(in_the_bars, batch=len(in_the_bars), kept=kept)
    assert len(reads) == first_reads
    store_and_resample(recorded_ticks[3000:], batch=2500, kept=kept)
    for interval in INTERVALS:
        assert_bars_equal(stored_bars(interval), pandas_bars(recorded_ticks, interval))
        assert sorted(Bar.objects.filter(interval=interval).values_list(*BAR_ROW)) == [
            tuple(bar) for bar in build_bars(recorded_ticks, interval)
        ]


def test_ticks_kept_by_a_run_serve_no_run_after_another_process_resampled(recorded_ticks, monkeypatch):
    """Another process moved the watermark (or the run rolled back): the database is read, not what was kept."""
    bar = recorded_ticks[len(recorded_ticks) // 2].timestamp // 300_000
    ticks = [t for t in recorded_ticks if t.timestamp // 300_000 == bar][:6000]
    assert len(ticks) == 6000 and len(affected_open_times(ticks, "5m")) == 2  # one 5 m bar a symbol
    ours, theirs = WidestBarTicks(), WidestBarTicks()
    store_and_resample(ticks[:2000], kept=ours)
    store_and_resample(ticks[2000:4000], kept=theirs)  # another worker's run
    store_and_resample(ticks[4000:], kept=ours)
    for interval in INTERVALS:
        assert sorted(Bar.objects.filter(interval=interval).values_list(*BAR_ROW)) == [
            tuple(bar) for bar in build_bars(ticks, interval)
        ]
    # A rebuild from scratch in the same process (bars and watermarks gone) reads the database.
    Bar.objects.all().delete()
    Watermark.objects.all().delete()
    services.bars_resample(max_ticks=10**6)
    assert sorted(Bar.objects.filter(interval="5m").values_list(*BAR_ROW)) == [
        tuple(bar) for bar in build_bars(ticks, "5m")
    ]


def test_resampling_reads_only_new_ticks():
    ticks = cointegrated_ticks(20)
    store_and_resample(ticks)
    assert services.bars_resample() == 0
    assert services.event_time() == max(t.timestamp for t in ticks)


def independent_snapshot(pair: Pair, as_of: int) -> dict:
    """docs/analytics.md (aligned series, statistics) computed with pandas and statsmodels from the stored bars."""
    rows = pd.DataFrame(list(Bar.objects.filter(interval=pair.interval).values("symbol", "open_time", "close")))
    closes = rows.pivot(index="open_time", columns="symbol", values="close").sort_index()
    closes = closes[closes.index <= as_of].ffill().dropna().iloc[-pair.window :]
    y, x = closes[pair.symbol_a], closes[pair.symbol_b]
    fit = sm.OLS(y.to_numpy(), sm.add_constant(x.to_numpy())).fit()
    alpha, beta = fit.params
    s = y - beta * x
    mean, std = s.mean(), s.std(ddof=1)
    adf = adfuller(s.to_numpy(), regression="c", autolag="AIC", result_object=False)
    ds = s.diff().dropna().to_numpy()
    hl = sm.OLS(ds, sm.add_constant(s.shift(1).dropna().to_numpy())).fit().params[1]
    return {
        "as_of": int(closes.index[-1]),
        "n": len(closes),
        "price_a": y.iloc[-1],
        "price_b": x.iloc[-1],
        "hedge_ratio": beta,
        "intercept": alpha,
        "r_squared": fit.rsquared,
        "spread": s.iloc[-1],
        "spread_mean": mean,
        "spread_std": std,
        "zscore": (s.iloc[-1] - mean) / std,
        "correlation": np.log(y).diff().corr(np.log(x).diff()),
        "price_correlation": y.corr(x),
        "adf_stat": adf[0],
        "adf_pvalue": adf[1],
        "adf_lag": adf[2],
        "coint_pvalue": coint(y.to_numpy(), x.to_numpy())[1],
        "half_life": -math.log(2) / hl,
    }


def test_with_ingestion_split_by_symbol_a_leg_bar_waits_for_its_own_feed(pipeline):
    """A BTC process storing ahead must not close the ETH bar the ETH process is still writing."""
    from ingestion.models import FeedStatus

    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(50)
    eth_until = T0 + 40_000  # the ETH process has stored up to second 40, BTC up to 50
    store_and_resample([t for t in ticks if t.symbol == "BTCUSDT" or t.timestamp < eth_until])

    now = eth_until + 1_000  # the wall clock alone closes nothing after second 37
    snapshot_cycle(pipeline, now=now)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 48_000  # one feed: BTC's ticks close ETH's bars

    FeedStatus.objects.create(name="btc", symbols="BTCUSDT")
    FeedStatus.objects.create(name="eth", symbols="ETHUSDT")
    cache.clear()
    snapshot_cycle(pipeline, now=now)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 38_000  # second 39 is still open for ETH


def test_a_hole_in_the_ids_holds_its_symbols_bars_open_until_the_backfill_fills_it():
    """After a reconnect the live trades are stored before the backfill: bars wait for the hole."""
    ticks = cointegrated_ticks(20)
    hole = [t for t in ticks if t.symbol == "ETHUSDT" and T0 + 10_000 <= t.timestamp < T0 + 12_000]
    store_and_resample([t for t in ticks if t not in hole])
    before_hole = max(t.timestamp for t in ticks if t.symbol == "ETHUSDT" and t.timestamp < T0 + 10_000)
    assert services.event_times() == {
        "ETHUSDT": before_hole,
        "BTCUSDT": max(t.timestamp for t in ticks if t.symbol == "BTCUSDT"),
    }
    store_and_resample(hole)  # the backfill arrives
    assert services.event_times()["ETHUSDT"] == max(t.timestamp for t in ticks if t.symbol == "ETHUSDT")


@pytest.mark.parametrize("page", [1, 7, 50_000])
def test_the_scan_for_holes_reads_every_page(monkeypatch, page):
    """A burst longer than one page of the scan: every page is read, the holes found on any of them."""
    monkeypatch.setattr(services, "CONTIGUOUS_PAGE", page)
    ticks = cointegrated_ticks(30)
    hole = [t for t in ticks if t.symbol == "ETHUSDT" and T0 + 20_000 <= t.timestamp < T0 + 21_000]
    store_and_resample([t for t in ticks if t not in hole])
    assert services.event_times() == {
        "ETHUSDT": max(t.timestamp for t in ticks if t.symbol == "ETHUSDT" and t.timestamp < T0 + 20_000),
        "BTCUSDT": max(t.timestamp for t in ticks if t.symbol == "BTCUSDT"),
    }
    store_and_resample(hole)
    assert services.event_times()["ETHUSDT"] == max(t.timestamp for t in ticks if t.symbol == "ETHUSDT")


def test_a_hole_no_backfill_fills_stops_holding_after_gap_hold_ms_of_newer_trades(caplog):
    ticks = cointegrated_ticks(40)
    lost = [t for t in ticks if t.symbol == "ETHUSDT" and T0 + 10_000 <= t.timestamp < T0 + 11_000]
    kept = [t for t in ticks if t not in lost]
    store_and_resample([t for t in kept if t.timestamp < T0 + 20_000])
    assert services.event_times()["ETHUSDT"] < T0 + 10_000  # 10 s of newer trades: still waiting
    store_and_resample([t for t in kept if t.timestamp >= T0 + 20_000])
    assert services.event_times()["ETHUSDT"] == max(t.timestamp for t in kept if t.symbol == "ETHUSDT")
    assert "still missing" in caplog.text


def test_the_wall_clock_closes_no_bar_while_a_legs_feed_is_down_or_backfilling(pipeline):
    from django.utils import timezone

    from ingestion.models import FeedStatus

    pair = make_pair(window=60, min_bars=30)
    store_and_resample(cointegrated_ticks(40))
    now = T0 + 60_000  # 20 s after the last trade: the wall clock would close everything
    status = FeedStatus.objects.create(
        name="default", symbols="BTCUSDT,ETHUSDT", connected=False, updated_at=timezone.now()
    )
    snapshot_cycle(pipeline, now=now)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 38_000  # event time only
    status.connected, status.gaps_detected, status.gaps_filled = True, 2, 1  # reconnected, one gap still open
    status.save()
    snapshot_cycle(pipeline, now=now)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 38_000
    status.gaps_filled = 2  # caught up: a quiet market closes its bars on the wall clock
    status.save()
    snapshot_cycle(pipeline, now=now)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 39_000  # the last bar closes too


def test_the_wall_clock_does_not_close_bars_whose_ticks_are_not_resampled_yet(pipeline):
    """A restarted worker may run the snapshots before the resampling has caught up."""
    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(40)
    store_and_resample([t for t in ticks if t.timestamp < T0 + 35_000])
    Watermark.objects.filter(name=services.RESAMPLED_AT_WATERMARK).update(value=T0 + 37_000)
    ticks_store([t for t in ticks if t.timestamp >= T0 + 35_000])  # stored, not resampled
    snapshot_cycle(pipeline, now=T0 + 60_000)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 34_000  # not 35..39 with their bars missing
    services.bars_resample()
    snapshot_cycle(pipeline, now=T0 + 60_000)
    assert selectors.snapshot_cached(pair.id)["as_of"] == T0 + 39_000


@pytest.mark.parametrize("cache_lost", [False, True], ids=["cached", "cache-restarted"])
def test_bars_that_close_between_two_cycles_each_get_their_snapshot_in_order(cache_lost, pipeline):
    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(60)
    store_and_resample([t for t in ticks if t.timestamp < T0 + 40_000])
    snapshot_cycle(pipeline, now=T0 + 40_500)
    if cache_lost:  # the cycle resumes from the recorded history
        cache.clear()
    store_and_resample([t for t in ticks if T0 + 40_000 <= t.timestamp < T0 + 50_000])  # a late cycle: 10 bars at once
    snapshot_cycle(pipeline, now=T0 + 50_500)
    rows = Snapshot.objects.filter(pair=pair).order_by("id").values_list("as_of", flat=True)
    assert [(as_of - T0) // 1000 for as_of in rows] == list(range(38, 49))  # each bar, in order, none twice
    # Each caught-up row is the snapshot a cycle on time would have made.
    on_time, _ = build_snapshot(pair=pair, event_time_ms=T0 + 45_000, now=None)
    assert Snapshot.objects.get(pair=pair, as_of=T0 + 44_000).data["zscore"] == pytest.approx(
        on_time["zscore"], rel=1e-12
    )


def test_a_snapshot_equals_an_independent_pandas_statsmodels_computation():
    pair = make_pair(window=300, min_bars=100)
    store_and_resample(cointegrated_ticks(400))
    event = services.event_time()
    snapshot, series = build_snapshot(pair=pair, event_time_ms=event, now=None)
    expected = independent_snapshot(pair, as_of=event // 1000 * 1000 - 1000)
    assert snapshot["ready"] is True
    assert snapshot["n"] == expected["n"] == 300
    assert snapshot["as_of"] == expected["as_of"]
    assert snapshot["adf_lag"] == expected["adf_lag"]
    for name, value in expected.items():
        assert snapshot[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    # The known answers of the data (hedge ratio 20, half-life 10 bars), loosely.
    assert snapshot["hedge_ratio"] == pytest.approx(20, rel=0.02)
    assert 5 < snapshot["half_life"] < 20
    assert 0 <= snapshot["quality_score"] <= 100
    # The chart series: equal lengths, the last point is the snapshot.
    assert {len(series[k]) for k in ("t", "price_a", "price_b", "spread", "zscore")} == {300}
    assert series["zscore"][-1] == pytest.approx(snapshot["zscore"], rel=1e-9)
    assert series["spread"][-1] == pytest.approx(snapshot["spread"], rel=1e-9)
    json.dumps(snapshot, allow_nan=False)


def test_every_statistic_is_null_during_warm_up():
    pair = make_pair(window=300, min_bars=100)
    store_and_resample(cointegrated_ticks(60))
    snapshot, series = build_snapshot(pair=pair, event_time_ms=services.event_time(), now=None)
    assert snapshot["ready"] is False
    assert snapshot["warmup"] == {"bars": 59, "required": 100}  # the newest second is not closed yet
    assert snapshot["price_a"] is not None
    for name in STAT_FIELDS:
        assert snapshot[name] is None, name
    assert series["zscore"] == [None] * 59
    json.dumps(snapshot, allow_nan=False)


def test_a_silent_leg_makes_the_snapshot_stale(settings):
    settings.ANALYTICS_STALE_BARS = 5
    pair = make_pair(window=100, min_bars=50)
    ticks = cointegrated_ticks(120)
    # ETH goes silent for the last 20 seconds while BTC trades on.
    last_eth = T0 + 100 * 1000
    store_and_resample([t for t in ticks if t.symbol == "BTCUSDT" or t.timestamp < last_eth])
    snapshot, _ = build_snapshot(pair=pair, event_time_ms=services.event_time(), now=None)
    assert snapshot["stale"] is True
    assert snapshot["stale_legs"] == ["ETHUSDT"]


def test_snapshots_are_cached_recorded_and_only_recomputed_when_the_window_moves(pipeline):
    pair = make_pair(window=300, min_bars=100)
    store_and_resample(cointegrated_ticks(150))
    now = T0 + 150_000
    published = snapshot_cycle(pipeline, now=now)
    assert [s["pair"] for s in published] == [pair.id]
    assert selectors.snapshot_cached(pair.id) == published[0]
    assert snapshot_cycle(pipeline, now=now) == []  # nothing moved
    pair.entry_z = 3.0
    pair.save()
    assert len(snapshot_cycle(pipeline, now=now)) == 1  # an admin edit applies on the next cycle
    assert Snapshot.objects.filter(pair=pair).count() == 1  # one history row per bar
    assert selectors.snapshot_cached(pair.id)["thresholds"]["entry_z"] == 3.0


def test_an_inactive_pair_is_not_computed(pipeline):
    make_pair(active=False)
    store_and_resample(cointegrated_ticks(30))
    assert snapshot_cycle(pipeline, now=T0 + 30_000) == []


def test_wall_clock_closes_bars_when_the_whole_feed_is_quiet():
    pair = make_pair(window=300, min_bars=10)
    store_and_resample(cointegrated_ticks(30))
    event = services.event_time()
    by_event, _ = build_snapshot(pair=pair, event_time_ms=event, now=None)
    by_clock, _ = build_snapshot(pair=pair, event_time_ms=event, now=event + 10_000)
    assert by_clock["as_of"] == by_event["as_of"] + 1000  # the last second closed by the clock
    assert by_clock["n"] == by_event["n"] + 1


def test_housekeeping_prunes_past_retention_and_keeps_totals_true(settings, pipeline):
    settings.TICK_RETENTION_SECONDS = 60
    settings.BAR_1S_RETENTION_SECONDS = 90
    settings.SNAPSHOT_RETENTION_SECONDS = 100
    make_pair(window=300, min_bars=10)
    store_and_resample(cointegrated_ticks(150))
    for k in range(20, 150, 10):
        snapshot_cycle(pipeline, now=T0 + k * 1000)
    from ingestion.models import Symbol, Tick

    result = services.housekeeping(batch=50, now=T0 + 150_000)
    assert result["ticks_deleted"] == 4 * 90  # 2 ticks a second per symbol before t = 90 s
    assert not Tick.objects.filter(timestamp__lt=T0 + 90_000).exists()
    assert not Bar.objects.filter(interval="1s", open_time__lt=T0 + 60_000).exists()
    assert Bar.objects.filter(interval="1m", open_time=T0).exists()  # minute bars stay
    assert not Snapshot.objects.filter(as_of__lt=T0 + 50_000).exists()
    for symbol in Symbol.objects.all():
        stored = Tick.objects.filter(symbol=symbol.name)
        assert symbol.tick_count == stored.count()
        assert symbol.first_tick_at == min(stored.values_list("timestamp", flat=True))
    assert services.housekeeping(now=T0 + 150_000) == {"ticks_deleted": 0, "bars_deleted": 0, "snapshots_deleted": 0}


def test_housekeeping_forgets_resolved_gaps_with_their_ticks_and_keeps_open_ones(settings):
    from datetime import UTC, datetime, timedelta

    from ingestion.models import Gap

    settings.TICK_RETENTION_SECONDS = 3600
    now = datetime.fromtimestamp(T0 / 1000, tz=UTC)
    old = now - timedelta(hours=2)
    Gap.objects.create(symbol="BTCUSDT", first_id=1, last_id=9, status="filled", detected_at=old, resolved_at=old)
    Gap.objects.create(
        symbol="BTCUSDT", first_id=20, last_id=29, status="unavailable", missing=10, detected_at=old, resolved_at=old
    )
    Gap.objects.create(symbol="BTCUSDT", first_id=40, last_id=49, status="filled", detected_at=now, resolved_at=now)
    Gap.objects.create(symbol="ETHUSDT", first_id=1, last_id=9, detected_at=old)  # still open: never forgotten
    services.housekeeping(now=T0)
    assert sorted(Gap.objects.values_list("symbol", "first_id")) == [("BTCUSDT", 40), ("ETHUSDT", 1)]


def test_a_long_outage_is_caught_up_bar_by_bar_over_several_cycles(monkeypatch, pipeline):
    """A worker down (or a backfill holding the bars) for longer than a cycle catches up on: no bar is skipped."""
    monkeypatch.setattr(services, "CATCH_UP_PER_CYCLE", 50)
    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(200)
    store_and_resample([t for t in ticks if t.timestamp < T0 + 40_000])
    snapshot_cycle(pipeline, now=T0 + 40_500)
    store_and_resample([t for t in ticks if t.timestamp >= T0 + 40_000])  # 160 bars close at once
    as_ofs = [snapshot_cycle(pipeline, now=T0 + 200_500)[0]["as_of"] for _ in range(4)]
    assert [(a - T0) // 1000 for a in as_ofs] == [88, 138, 188, 198]  # 50 bars a cycle, in order
    rows = Snapshot.objects.filter(pair=pair).order_by("id").values_list("as_of", flat=True)
    assert [(as_of - T0) // 1000 for as_of in rows] == list(range(38, 199))  # every bar once, in order


def test_after_an_outage_with_no_bars_longer_than_a_cycle_catches_up_the_snapshots_go_on(monkeypatch, pipeline):
    """The system down (or the market silent) for more bars than a cycle catches up on: no bar was made meanwhile,
    so none is missed, and the first cycle after it reaches the bars that came after (it once stood still for ever,
    asking for the same empty stretch each cycle)."""
    monkeypatch.setattr(services, "CATCH_UP_PER_CYCLE", 50)
    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(300)
    store_and_resample([t for t in ticks if t.timestamp < T0 + 40_000])
    snapshot_cycle(pipeline, now=T0 + 40_500)
    # Down from 40 s to 240 s (200 bars, four cycles' worth): then trading again, each symbol's ids going on
    # from its last stored one (as the exchange's do: no trade was made meanwhile).
    before = [t for t in ticks if t.timestamp < T0 + 40_000]
    after = [t for t in ticks if t.timestamp >= T0 + 240_000]
    next_id = {t.symbol: t.trade_id + 1 for t in before}
    resumed = []
    for t in after:
        resumed.append(t._replace(trade_id=next_id[t.symbol]))
        next_id[t.symbol] += 1
    store_and_resample(resumed)
    for _ in range(4):
        snapshot_cycle(pipeline, now=T0 + 300_500)
    # The newest bar, not the empty stretch asked for again and again.
    assert (selectors.snapshot_cached(pair.id)["as_of"] - T0) // 1000 == 298
    rows = Snapshot.objects.filter(pair=pair).order_by("id").values_list("as_of", flat=True)
    assert [(as_of - T0) // 1000 for as_of in rows] == [*range(38, 40), *range(240, 299)]  # every bar made, once


def test_the_cycle_computes_each_bar_of_a_pair_once(monkeypatch, pipeline):
    """Statistics run once per bar and pair: a cycle on an unmoved window, an admin edit, or a forced
    publish reuses them."""
    pair = make_pair(window=120, min_bars=60)
    store_and_resample(cointegrated_ticks(150))
    calls = []
    real = services.pair_stats
    monkeypatch.setattr(services, "pair_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    now = T0 + 150_500
    first = snapshot_cycle(pipeline, now=now)
    assert len(calls) == 1
    for _ in range(3):
        snapshot_cycle(pipeline, now=now)
    pair.entry_z = 3.0
    pair.save()
    (edited,) = snapshot_cycle(pipeline, now=now)  # the new thresholds are published, on the same numbers
    snapshot_cycle(pipeline, now=now, force=True)
    assert len(calls) == 1
    assert edited["thresholds"]["entry_z"] == 3.0
    assert {k: edited[k] for k in STAT_FIELDS} == {k: first[0][k] for k in STAT_FIELDS}
    assert (
        selectors.series_cached(pair.id)["zscore"]
        == build_snapshot(pair=pair, event_time_ms=services.event_time(), now=now)[1]["zscore"]
    )


def test_pairs_that_share_a_symbol_read_its_bars_once_a_cycle_and_get_their_own_numbers(monkeypatch, pipeline):
    pair = make_pair(window=120, min_bars=60)
    other = Pair.objects.create(symbol_a="ETHUSDT", symbol_b="BTCUSDT", interval="1s", window=120, min_bars=60)
    store_and_resample(cointegrated_ticks(150))
    reads = []
    real = selectors.closes_window
    monkeypatch.setattr(
        selectors, "closes_window", lambda **kw: reads.append((kw["symbol"], kw["as_of"])) or real(**kw)
    )
    now = T0 + 150_500
    published = {s["pair"]: s for s in snapshot_cycle(pipeline, now=now)}
    # Each leg's window once (and the previous bar's, for the signal's model), for both pairs.
    assert len(reads) == len(set(reads)) == 4
    monkeypatch.setattr(selectors, "closes_window", real)
    for p in (pair, other):
        alone, series = build_snapshot(pair=p, event_time_ms=services.event_time(), now=now)
        assert {k: published[p.id][k] for k in (*STAT_FIELDS, "signal_zscore", "as_of", "n")} == {
            k: alone[k] for k in (*STAT_FIELDS, "signal_zscore", "as_of", "n")
        }
        assert selectors.series_cached(p.id) == series
    assert published[other.id]["hedge_ratio"] != published[pair.id]["hedge_ratio"]


def test_statistics_computed_in_the_child_process_are_those_computed_in_place(monkeypatch):
    """Embedded mode's statistics process (off the web server's GIL) gives the very same numbers."""
    pair = make_pair(window=120, min_bars=60)
    store_and_resample(cointegrated_ticks(150))
    in_place, _ = build_snapshot(pair=pair, event_time_ms=services.event_time(), now=None)
    stats = services.StatsProcess()
    try:
        submitted = []
        real_send = stats._connection.send
        monkeypatch.setattr(stats._connection, "send", lambda obj: submitted.append(obj) or real_send(obj))
        in_child, _ = build_snapshot(
            pair=pair, event_time_ms=services.event_time(), now=None, stats_of=stats.pair_stats
        )
        with pytest.raises(ValueError, match="equal length"):  # raised in the child, raised here as in place
            stats.pair_stats(np.ones(30), np.ones(31))
    finally:
        stats.close()
    assert len(submitted) == 3 and submitted[-1] is None  # two windows, then the end of the child's loop
    assert {k: in_child[k] for k in STAT_FIELDS} == {k: in_place[k] for k in STAT_FIELDS}
    assert in_child["quality"] == in_place["quality"]
    assert not stats._process.is_alive()


def test_a_statistics_process_that_dies_is_replaced_and_its_window_computed_in_place(caplog):
    y, x = (np.asarray(v, dtype=float) for v in (np.arange(60.0) ** 1.5 + np.sin(np.arange(60.0)), np.arange(60.0)))
    stats = services.StatsProcess()
    try:
        assert stats.pair_stats(y, x) == services.pair_stats(y, x)
        dead = stats._process
        dead.kill()
        dead.join()
        assert stats.pair_stats(y, x) == services.pair_stats(y, x)  # computed here
        assert "statistics process died" in caplog.text
        assert stats._process is not dead and stats._process.is_alive()
        assert stats.pair_stats(y, x) == services.pair_stats(y, x)  # by the new child
    finally:
        stats.close()


def test_a_bar_cached_but_not_recorded_gets_its_row_and_rule_step_on_the_next_cycle(pipeline):
    """A worker killed between caching a snapshot and recording it: the next cycle resumes from the
    history, not the cache, so that bar still gets its row (and its alert-rule step)."""
    pair = make_pair(window=60, min_bars=30)
    ticks = cointegrated_ticks(60)
    store_and_resample([t for t in ticks if t.timestamp < T0 + 40_000])
    snapshot_cycle(pipeline, now=T0 + 40_500)
    store_and_resample([t for t in ticks if T0 + 40_000 <= t.timestamp < T0 + 41_000])
    (cached,) = snapshot_cycle(pipeline, now=T0 + 41_500)
    Snapshot.objects.filter(pair=pair, as_of=cached["as_of"]).delete()  # killed before the row was written
    store_and_resample([t for t in ticks if T0 + 41_000 <= t.timestamp < T0 + 43_000])
    snapshot_cycle(pipeline, now=T0 + 43_500)
    rows = Snapshot.objects.filter(pair=pair).order_by("as_of").values_list("as_of", flat=True)
    assert [(as_of - T0) // 1000 for as_of in rows] == [38, 39, 40, 41]


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_resamples_what_its_feed_stored_from_the_runtimes_record(pipeline, recorded_ticks, monkeypatch):
    """Embedded mode: the feed's writer and the resampling share the runtime's record, not a module's."""
    if connection.vendor != "sqlite":
        pytest.skip("the record is of SQLite's consecutive ids")
    read = []
    as_rows = services._rows_as_columns
    monkeypatch.setattr(services, "_rows_as_columns", lambda rows: read.append(len(rows)) or as_rows(rows))
    store = pipeline.feed(symbols=["BTCUSDT", "ETHUSDT"]).writer.store
    ticks = recorded_ticks[:4000]
    store(Batch(ticks[:2000], [], {}))
    pipeline.resample()  # the first run reads the table, and asks for a record from then on
    read.clear()
    store(Batch(ticks[2000:], [], {}))
    pipeline.resample()
    assert sum(read) == 0  # all from the record
    for interval in INTERVALS:
        assert sorted(Bar.objects.filter(interval=interval).values_list(*BAR_ROW)) == [
            tuple(bar) for bar in build_bars(ticks, interval)
        ]


@pytest.mark.django_db(transaction=True)
def test_the_ticks_this_process_stored_are_resampled_from_its_record_and_give_the_same_bars(
    recorded_ticks, monkeypatch
):
    """Committed batches come from ``ingestion.journal``; the bars are those of a rebuild from the table."""
    if connection.vendor != "sqlite":
        pytest.skip("the record is of SQLite's consecutive ids")
    process = {"journal": StoredTicks(), "kept": WidestBarTicks()}  # what a process's runtime holds
    recorded, read = [], []
    as_columns, as_rows = services._runs_as_columns, services._rows_as_columns
    monkeypatch.setattr(services, "_runs_as_columns", lambda runs: recorded.append(runs) or as_columns(runs))
    monkeypatch.setattr(services, "_rows_as_columns", lambda rows: read.append(len(rows)) or as_rows(rows))
    ticks = recorded_ticks[:9000]
    late = ticks[4000:4050]
    stored = ticks[:4000] + ticks[4050:]
    store_and_resample(stored[:3000], batch=1500, **process)  # the first run asks; the second batch is recorded
    assert recorded and sum(len(r.ticks) for runs in recorded for r in runs) == 1500
    recorded.clear(), read.clear()
    store_and_resample(stored[3000:6000], batch=1000, **process)
    assert sum(len(r.ticks) for runs in recorded for r in runs) == 3000 and sum(read) == 0
    store_and_resample(late + ticks[4040:4060], **process)  # late, with twenty duplicates: their statements are read
    assert 0 < sum(read) <= len(late)  # the new rows of the statements with a duplicate, no more
    read.clear()
    ticks_store(stored[6000:7000], journal=process["journal"])
    TickRow.objects.filter(trade_id=stored[6500].trade_id, symbol=stored[6500].symbol).delete()  # gone since
    services.bars_resample(**process)
    assert sum(read) == 999
    store_and_resample(stored[7000:], **process)
    for interval in INTERVALS:
        assert sorted(Bar.objects.filter(interval=interval).values_list(*BAR_ROW)) == [
            tuple(bar) for bar in build_bars([t for t in ticks if t != stored[6500]], interval)
        ]
