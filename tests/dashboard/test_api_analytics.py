"""/api/pairs/, its snapshot and series, and /api/bars/."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core.cache import cache

from analytics.models import Pair
from tests.support import cointegrated_ticks, make_pair, store_and_resample

pytestmark = pytest.mark.django_db


def test_pairs_list_has_the_contract_fields(api):
    pair = make_pair()
    body = api.get("/api/pairs/").json()
    assert body == [
        {
            "id": pair.id,
            "symbol_a": "BTCUSDT",
            "symbol_b": "ETHUSDT",
            "interval": "1s",
            "window": 300,
            "min_bars": 100,
            "entry_z": 2.0,
            "exit_z": 0.5,
            "min_correlation": 0.6,
            "max_adf_pvalue": 0.05,
            "active": True,
        }
    ]


def test_anonymous_users_cannot_write(api):
    response = api.post("/api/pairs/", {"symbol_a": "SOLUSDT", "symbol_b": "ETHUSDT"}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    pair = make_pair()
    assert api.patch(f"/api/pairs/{pair.id}/", {"window": 50}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert api.delete(f"/api/pairs/{pair.id}/").status_code == HTTPStatus.FORBIDDEN


def test_staff_create_update_and_delete_pairs(staff_api):
    response = staff_api.post(
        "/api/pairs/",
        {"symbol_a": "solusdt", "symbol_b": "ETHUSDT", "interval": "1m", "window": 120, "min_bars": 60},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
    pair_id = response.json()["id"]
    assert response.json()["symbol_a"] == "SOLUSDT"
    response = staff_api.patch(f"/api/pairs/{pair_id}/", {"entry_z": 2.5}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert Pair.objects.get(pk=pair_id).entry_z == 2.5
    assert staff_api.delete(f"/api/pairs/{pair_id}/").status_code == HTTPStatus.NO_CONTENT


@pytest.mark.parametrize(
    "payload,field,message",
    [
        ({"symbol_a": "BTCUSDT", "symbol_b": "BTCUSDT"}, "symbol_b", "two different symbols"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "ETHUSDT", "interval": "2m"}, "interval", "not a valid choice"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "window": 5, "min_bars": 5}, "window", "at least 10"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "window": 50}, "min_bars", "cannot exceed the window"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "window": 10**9}, "window", "at most 5000 bars"),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "window": 10**9, "min_bars": 10**9},
            "min_bars",
            "at most 5000",
        ),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "entry_z": 0.4}, "entry_z", "greater than exit_z"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "max_adf_pvalue": 1.5}, "max_adf_pvalue", "(0, 1]"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "min_correlation": 2}, "min_correlation", "between -1 and 1"),
        ({"symbol_a": "BTC/USDT", "symbol_b": "SOLUSDT"}, "symbol_a", "is not a symbol"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "ETHUSDT"}, "non_field_errors", "exists already"),
    ],
)
def test_an_impossible_pair_is_a_400_with_a_clear_message(staff_api, payload, field, message):
    make_pair()
    response = staff_api.post("/api/pairs/", payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in " ".join(response.json()[field])


@pytest.mark.parametrize(
    "payload,field,message",
    [
        (
            {"symbol_a": "FOOUSDT", "symbol_b": "ETHUSDT"},
            "symbol_a",
            "FOOUSDT is not a symbol of Binance USD-M futures",
        ),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "LUNAUSDT"},
            "symbol_b",
            "LUNAUSDT is not trading on the exchange (status SETTLING)",
        ),
        (
            {"symbol_a": "btcusdt_260327", "symbol_b": "ETHUSDT"},
            "symbol_a",
            "BTCUSDT_260327 is not a perpetual (contract type CURRENT_QUARTER)",
        ),
    ],
)
def test_a_symbol_the_exchange_does_not_trade_is_a_400_naming_it(staff_api, payload, field, message):
    before = Pair.objects.count()
    response = staff_api.post("/api/pairs/", payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {field: [message]}
    assert Pair.objects.count() == before


def test_an_edit_to_a_symbol_the_exchange_does_not_trade_is_a_400(staff_api):
    pair = make_pair()
    response = staff_api.patch(f"/api/pairs/{pair.id}/", {"symbol_b": "foousdt"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"symbol_b": ["FOOUSDT is not a symbol of Binance USD-M futures"]}


def test_with_the_exchange_unreachable_known_pairs_are_edited_and_unseen_symbols_refused(staff_api, fake_binance):
    import httpx

    pair = make_pair()
    fake_binance.failure = httpx.ConnectError("Connection refused")
    assert staff_api.patch(f"/api/pairs/{pair.id}/", {"entry_z": 3.0}, format="json").status_code == HTTPStatus.OK
    swapped = staff_api.post("/api/pairs/", {"symbol_a": "ETHUSDT", "symbol_b": "BTCUSDT"}, format="json")
    assert swapped.status_code == HTTPStatus.CREATED
    refused = staff_api.post("/api/pairs/", {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT"}, format="json")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert refused.json() == {
        "symbol_b": ["cannot check SOLUSDT against the exchange (ConnectError: Connection refused): try again"]
    }


def test_snapshot_and_series_of_a_ready_pair(api, pipeline):
    pair = make_pair(window=200, min_bars=100)
    store_and_resample(cointegrated_ticks(250))
    pipeline.snapshots()
    snapshot = api.get(f"/api/pairs/{pair.id}/snapshot/").json()
    assert snapshot["ready"] is True
    assert snapshot["n"] == 200
    for field in (
        "pair",
        "as_of",
        "interval",
        "n",
        "ready",
        "warmup",
        "price_a",
        "price_b",
        "hedge_ratio",
        "intercept",
        "r_squared",
        "spread",
        "spread_mean",
        "spread_std",
        "zscore",
        "correlation",
        "price_correlation",
        "adf_stat",
        "adf_pvalue",
        "adf_lag",
        "coint_pvalue",
        "half_life",
        "quality_score",
    ):
        assert field in snapshot, field
    series = api.get(f"/api/pairs/{pair.id}/series/", {"limit": 50}).json()
    assert {len(series[k]) for k in ("t", "price_a", "price_b", "spread", "zscore")} == {50}
    assert series["t"][-1] == snapshot["as_of"]
    assert series["zscore"][-1] == pytest.approx(snapshot["zscore"])


def test_with_nothing_cached_the_snapshot_says_it_was_not_computed_yet_then_serves_the_recorded_one(api, pipeline):
    pair = make_pair()
    store_and_resample(cointegrated_ticks(20))
    pending = api.get(f"/api/pairs/{pair.id}/snapshot/").json()
    assert (pending["source"], pending["computed_at"], pending["ready"]) == ("none", None, False)
    assert pending["warmup"] == {"bars": None, "required": 100}
    pipeline.snapshots()  # the wall clock has long closed every bar of this old data
    cache.clear()
    snapshot = api.get(f"/api/pairs/{pair.id}/snapshot/").json()
    assert snapshot["source"] == "history"
    assert snapshot["warmup"] == {"bars": 20, "required": 100}
    assert snapshot["zscore"] is None


@pytest.mark.parametrize("params", [{"limit": "x"}, {"limit": 0}])
def test_bad_series_parameters_are_a_400(api, params):
    pair = make_pair()
    assert api.get(f"/api/pairs/{pair.id}/series/", params).status_code == HTTPStatus.BAD_REQUEST


def test_an_unknown_pair_is_a_404(api):
    assert api.get("/api/pairs/999/snapshot/").status_code == HTTPStatus.NOT_FOUND
    assert api.get("/api/pairs/abc/").status_code == HTTPStatus.NOT_FOUND


def test_bars_oldest_first_with_range_and_limit(api):
    store_and_resample(cointegrated_ticks(30))
    bars = api.get("/api/bars/", {"symbol": "ETHUSDT", "interval": "1s", "limit": 3}).json()
    assert [b["t"] for b in bars] == sorted(b["t"] for b in bars)
    assert set(bars[0]) == {"t", "open", "high", "low", "close", "volume", "trades"}
    assert bars[-1]["trades"] == 2
    start = bars[0]["t"]
    ranged = api.get("/api/bars/", {"symbol": "ETHUSDT", "interval": "1s", "start": start, "end": start + 1000}).json()
    assert [b["t"] for b in ranged] == [start, start + 1000]
    newest = api.get("/api/bars/", {"symbol": "ETHUSDT", "interval": "1m", "limit": 1}).json()
    assert len(newest) == 1


@pytest.mark.parametrize(
    "params,field",
    [
        ({"interval": "1s"}, "symbol"),
        ({"symbol": "ETHUSDT"}, "interval"),
        ({"symbol": "ETHUSDT", "interval": "1h"}, "interval"),
        ({"symbol": "DOGEUSDT", "interval": "1s"}, "symbol"),
        ({"symbol": "ETHUSDT", "interval": "1s", "start": "yesterday"}, "start"),
        ({"symbol": "ETHUSDT", "interval": "1s", "start": 10, "end": 5}, "end"),
        ({"symbol": "ETHUSDT", "interval": "1s", "limit": 10**6}, "limit"),
    ],
)
def test_bad_bar_parameters_are_a_400(api, params, field):
    store_and_resample(cointegrated_ticks(5))
    response = api.get("/api/bars/", params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in response.json()


def test_the_schema_documents_every_field_of_the_snapshot(api):
    from analytics.snapshot import Thresholds, snapshot_json, snapshot_placeholder

    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    component = schema["components"]["schemas"]["Snapshot"]
    placeholder = snapshot_placeholder(
        pair=1,
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1s",
        window=300,
        min_bars=30,
        thresholds=Thresholds(entry_z=2.0, exit_z=0.5, min_correlation=0.6, max_adf_pvalue=0.05),
    )
    assert set(component["properties"]) == set(snapshot_json(placeholder))
    assert component["properties"]["zscore"] == {
        "type": "number",
        "format": "double",
        "nullable": True,
        "description": "(spread - spread_mean) / spread_std at as_of",
    }
    operation = schema["paths"]["/api/pairs/{id}/snapshot/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Snapshot"
    }
