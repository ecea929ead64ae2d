"""/api/health/ sees the whole pipeline: feeds, gaps, the tick writer, the periodic tasks, snapshots, Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import selectors as analytics_selectors
from analytics.models import Pair, Watermark
from analytics.services import snapshot_cache, snapshot_placeholder_of
from ingestion import selectors as ingestion_selectors
from ingestion.client import FeedState
from ingestion.models import FeedStatus, Gap
from ingestion.services import Feed, feed_status_save
from ingestion.simulator import Simulator
from tests.support import SYMBOLS, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_feed() -> FeedState:
    """A connected feed that reported just now: health has nothing to say of it."""
    state = FeedState(url="ws://x/stream", symbols=["BTCUSDT", "ETHUSDT"], connected=True, last_tick_at=1_000)
    feed_status_save(name="default", state=state, started_at=timezone.now())
    return state


def health() -> dict:
    return APIClient().get("/api/health/").json()


def test_a_live_feed_and_nothing_else_is_ok(live_feed):
    body = health()
    assert (body["status"], body["problems"]) == ("ok", [])


def test_an_open_gap_is_degraded_with_its_symbol_ids_and_age(live_feed):
    detected = timezone.now() - timedelta(seconds=42)
    Gap.objects.create(symbol="ETHUSDT", first_id=101, last_id=12_100, feed="default", detected_at=detected)
    body = health()
    assert body["status"] == "degraded"
    assert body["problems"] == ["ETHUSDT: 12,000 trades (ids 101..12100) missing for 42s, being backfilled"]
    assert body["feed"]["gaps_open"] == 1
    assert body["gaps"]["open"][0] | {"detected_at": None} == {
        "symbol": "ETHUSDT", "first_id": 101, "last_id": 12_100, "trades": 12_000, "status": "open", "missing": 0,
        "feed": "default", "detected_at": None, "resolved_at": None,
    }  # fmt: skip


def test_trades_lost_for_good_are_reported_and_counted_across_restarts(live_feed):
    """The counts come from the stored gaps, not from the running process (which a restart zeroes)."""
    now = timezone.now()
    Gap.objects.create(symbol="BTCUSDT", first_id=1, last_id=10, status="filled", detected_at=now, resolved_at=now)
    Gap.objects.create(
        symbol="BTCUSDT", first_id=50, last_id=99, status="unavailable", missing=30, detected_at=now, resolved_at=now
    )
    body = health()
    assert body["status"] == "degraded"
    assert "BTCUSDT: 30 trades (ids 50..99) are no longer served by the exchange and are missing" in body["problems"][0]
    feed = body["feed"]
    assert (feed["gaps_filled"], feed["gaps_unfilled"], feed["trades_unavailable"]) == (1, 1, 30)
    Gap.objects.filter(status="unavailable").update(resolved_at=now - timedelta(hours=2))
    body = health()
    assert body["status"] == "ok"  # an old loss stays listed and counted, no longer a problem
    assert body["gaps"]["lost"][0]["missing"] == 30
    assert body["feed"]["trades_unavailable"] == 30


def test_late_periodic_tasks_are_degraded_and_name_the_worker_in_distributed_mode(live_feed, settings):
    old = int(time.time() * 1000) - 25_000
    Watermark.objects.create(name=analytics_selectors.RESAMPLED_AT_WATERMARK, value=old)
    Watermark.objects.create(name=analytics_selectors.SNAPSHOTS_RAN_AT_WATERMARK, value=old)
    assert health()["problems"] == ["nothing has run the periodic resampling and snapshots for 25s"]
    settings.RUN_MODE = "distributed"
    settings.REDIS_URL = ""  # the probe of Redis is another test's
    assert health()["problems"] == [
        "no Celery worker with beat has run the periodic resampling and snapshots for 25s "
        "(is `celery -A pairs_project worker -B` running?)"
    ]


def test_a_pair_whose_snapshots_stopped_advancing_is_degraded(live_feed):
    pair = Pair.objects.get(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s")
    as_of = int(time.time() * 1000) // 1000 * 1000 - 60_000
    placeholder = snapshot_placeholder_of(pair)
    snapshot_cache(snapshot=dataclasses.replace(placeholder, as_of=as_of), series={})
    body = health()
    assert body["status"] == "degraded"
    assert len(body["problems"]) == 1
    assert re.fullmatch(
        rf"pair {pair}: no new snapshot for (59|60)s \(its newest bar ended then\)", body["problems"][0]
    )
    assert body["pipeline"]["pairs"] == [{"pair": pair.id, "as_of": as_of, "lag_ms": pytest.approx(59_000, abs=1_000)}]
    snapshot_cache(snapshot=dataclasses.replace(placeholder, as_of=as_of + 59_000), series={})
    assert health()["status"] == "ok"


def test_redis_that_does_not_answer_is_degraded(live_feed, settings):
    settings.REDIS_URL = "redis://:hunter2@127.0.0.1:9/0"  # the discard port: nothing listens
    body = health()
    assert body["status"] == "degraded"
    assert body["redis"]["ok"] is False
    assert body["problems"][0].startswith("Redis at redis://********************@127.0.0.1:9/0 does not answer")
    assert "hunter2" not in str(body)


def test_credentials_in_the_exchange_urls_are_masked_in_health_and_logs(caplog):
    state = FeedState()
    state.url = "wss://user:s3cret@fstream.example/market/stream?streams=btcusdt@aggTrade"
    state.error("cannot connect to wss://user:s3cret@fstream.example/market/stream: gaierror")
    from ingestion.client import FeedClient
    from ingestion.writer import TickWriter

    client = FeedClient(
        symbols=["BTCUSDT"], ws_url="wss://token@fstream.example/market", rest_url="https://k:s3cret@fapi.example",
        writer=TickWriter(lambda batch: 0), state=state,
    )  # fmt: skip
    client._connect_failed(OSError("no route to wss://token@fstream.example/market"))
    feed_status_save(name="default", state=state)
    text = str(health()) + caplog.text
    assert "s3cret" not in text and "token@" not in text
    assert "cannot connect" in text


# -- the tick writer, through a real feed ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["locked", "hanging"])
async def test_a_feed_that_cannot_store_its_ticks_says_why(settings, monkeypatch, how):
    """The database is the thing that is stuck, so the status row cannot say it: the published copy does."""
    settings.INGEST_FLUSH_INTERVAL = 0.05
    monkeypatch.setattr(ingestion_selectors, "WRITER_BLOCKED_AFTER", 1.0)
    release = threading.Event()
    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=41) as sim:
        feed = Feed(symbols=SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url, status_interval=0.2)
        task = asyncio.create_task(feed.run())
        await wait_for(lambda: feed.writer.stored > 50, what="ticks stored")
        store = feed.writer.store

        def stuck(batch):
            if how == "locked":
                raise OperationalError("database is locked")
            release.wait(10)
            return store(batch)

        feed.writer.store = stuck
        with monkeypatch.context() as patched:
            # The status row itself cannot be written either: as with a locked database.
            patched.setattr("ingestion.services.feed_status_save", lambda **kw: release.wait(10))
            await asyncio.sleep(2.0)
            body = await sync_to_async(health)()
            release.set()
        feed.writer.store = store
        feed.stop()
        await task
    problems = " ".join(body["problems"])
    assert body["status"] == "degraded"
    assert "feed default cannot store ticks for" in problems, problems
    assert ("OperationalError: database is locked" if how == "locked" else "the database has not answered") in problems
    assert "has not reported" not in problems
    stored = await sync_to_async(FeedStatus.objects.get)(name="default")
    assert stored.writer_error == "" and stored.pending == 0  # recovered: everything stored at the stop


def test_a_feed_row_that_recorded_no_time_does_not_break_health():
    """The newest error is picked by time; a row with none of its times (made by hand) sorts first, not as an error."""
    FeedStatus.objects.create(name="by-hand", connected=False)
    FeedStatus.objects.create(
        name="other", connected=False, last_error="database is locked", last_error_at=timezone.now()
    )
    assert health()["feed"]["last_error"] == "database is locked"
