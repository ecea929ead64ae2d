"""The ingestion endpoints of the JSON API: /api/health/, /api/symbols/, /api/ticks/."""

from __future__ import annotations

import re
import time
from http import HTTPStatus

import pytest
from django.utils import timezone

from ingestion.binance import Tick, stream_url
from ingestion.client import FeedState
from ingestion.services import feed_status_save, ticks_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_ticks() -> None:
    ticks_store([Tick(1_000 + i, "BTCUSDT", 60_000.0 + i, 0.01, 500 + i) for i in range(5)])
    ticks_store([Tick(1_002, "ETHUSDT", 3_000.5, 1.5, 90)])


def test_symbols_lists_counts_times_and_last_price(api, stored_ticks):
    response = api.get("/api/symbols/", format="json")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == [
        {
            "symbol": "BTCUSDT",
            "ticks": 5,
            "first_tick_at": 1_000,
            "last_tick_at": 1_004,
            "last_price": 60_004.0,
            "last_trade_id": 504,
        },
        {
            "symbol": "ETHUSDT",
            "ticks": 1,
            "first_tick_at": 1_002,
            "last_tick_at": 1_002,
            "last_price": 3_000.5,
            "last_trade_id": 90,
        },
    ]


def test_ticks_are_newest_first_and_limited(api, stored_ticks):
    response = api.get("/api/ticks/", {"symbol": "btcusdt", "limit": 2})
    assert response.status_code == HTTPStatus.OK
    assert response.json() == [
        {"timestamp": 1_004, "symbol": "BTCUSDT", "price": 60_004.0, "quantity": 0.01, "trade_id": 504},
        {"timestamp": 1_003, "symbol": "BTCUSDT", "price": 60_003.0, "quantity": 0.01, "trade_id": 503},
    ]


@pytest.mark.parametrize(
    "params,field,message",
    [
        ({}, "symbol", "required"),
        ({"symbol": "XRPUSDT"}, "symbol", "unknown symbol 'XRPUSDT'"),
        ({"symbol": "BTC-USDT"}, "symbol", "is not a symbol"),
        ({"symbol": "BTCUSDT", "limit": "ten"}, "limit", "valid integer"),
        ({"symbol": "BTCUSDT", "limit": "0"}, "limit", "greater than or equal to 1"),
        ({"symbol": "BTCUSDT", "limit": "100000"}, "limit", "less than or equal to 1000"),
    ],
)
def test_bad_tick_parameters_are_a_400_with_a_message(api, stored_ticks, params, field, message):
    response = api.get("/api/ticks/", params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in " ".join(response.json()[field])


def test_health_is_degraded_before_any_feed_reports(api):
    body = api.get("/api/health/").json()
    assert body["status"] == "degraded"
    assert body["mode"] == "embedded"
    assert body["feed"]["connected"] is False
    assert body["problems"] == ["no ingestion feed has reported yet"]


def test_health_reports_a_connected_feed(api, stored_ticks):
    state = FeedState(
        url="ws://x/stream", symbols=["BTCUSDT", "ETHUSDT"], connected=True, last_tick_at=1_004, reconnects=2
    )
    feed_status_save(name="default", state=state, started_at=timezone.now())
    body = api.get("/api/health/").json()
    assert body["status"] == "ok"
    feed = body["feed"]
    assert (feed["connected"], feed["last_tick_at"], feed["reconnects"], feed["ticks_total"]) == (True, 1_004, 2, 6)


def test_health_says_why_a_disconnected_feed_is_degraded(api):
    state = FeedState(connected=False)
    state.error("cannot connect to wss://fstream.binance.com/market/stream?...: gaierror")
    feed_status_save(name="default", state=state)
    body = api.get("/api/health/").json()
    assert body["status"] == "degraded"
    assert body["feed"]["connected"] is False
    assert "cannot connect" in body["problems"][0]


def test_the_status_of_a_feed_following_hundreds_of_symbols_is_saved_whole(api):
    """Its stream URL runs to kilobytes (PostgreSQL enforces a varchar's length, SQLite does not)."""
    symbols = [f"COIN{i}USDT" for i in range(300)]
    state = FeedState(url=stream_url("wss://fstream.binance.com/market", symbols), symbols=symbols, connected=True)
    feed_status_save(name="default", state=state)
    feed = api.get("/api/health/").json()["feeds"][0]
    assert feed["symbols"] == symbols
    assert feed["url"] == state.url


def test_health_is_degraded_naming_a_symbol_silent_on_a_live_stream_and_one_the_exchange_does_not_trade(api):
    state = FeedState(url="ws://x/stream", symbols=["BTCUSDT", "ETHUSDT"], connected=True)
    state.silent = {"ETHUSDT": time.time() - 95}
    state.unavailable = {"LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)"}
    feed_status_save(name="default", state=state, started_at=timezone.now())
    body = api.get("/api/health/").json()
    assert body["status"] == "degraded"
    unavailable, silent = body["problems"]
    assert unavailable == "LUNAUSDT is not trading on the exchange (status SETTLING)"
    assert re.fullmatch(r"ETHUSDT: no trade for 9[5-9] s while the stream is live", silent), silent
    feed = body["feeds"][0]
    assert list(feed["silent_symbols"]) == ["ETHUSDT"]
    assert feed["unavailable_symbols"] == {"LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)"}


def test_health_is_ok_again_once_no_symbol_is_silent(api):
    state = FeedState(url="ws://x/stream", symbols=["BTCUSDT", "ETHUSDT"], connected=True, silent={"ETHUSDT": 1.0})
    feed_status_save(name="default", state=state)
    assert api.get("/api/health/").json()["status"] == "degraded"
    state.silent.clear()
    feed_status_save(name="default", state=state)
    assert api.get("/api/health/").json()["status"] == "ok"
