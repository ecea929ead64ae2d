"""/api/pairs/, its snapshot and series, and /api/bars/."""

from __future__ import annotations

import dataclasses
import itertools
from http import HTTPStatus

import pytest
from django.core.cache import cache

from analytics.models import Pair, Snapshot
from tests.support import T0, cointegrated_ticks, make_alert, make_pair, store_and_resample

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
            "max_coint_pvalue": 0.05,
            "confirm_bars": 30,
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
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "max_coint_pvalue": 0}, "max_coint_pvalue", "(0, 1]"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "max_coint_pvalue": 1.01}, "max_coint_pvalue", "(0, 1]"),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "max_coint_pvalue": "often"},
            "max_coint_pvalue",
            "A valid number is required",
        ),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "confirm_bars": 0},
            "confirm_bars",
            "confirm_bars must be between 1 and the window (300), not 0.",
        ),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "confirm_bars": -5},
            "confirm_bars",
            "confirm_bars must be between 1 and the window (300), not -5.",
        ),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "window": 60, "min_bars": 30, "confirm_bars": 61},
            "confirm_bars",
            "confirm_bars must be between 1 and the window (60), not 61.",
        ),
        (
            {"symbol_a": "BTCUSDT", "symbol_b": "SOLUSDT", "confirm_bars": 2.5},
            "confirm_bars",
            "A valid integer is required",
        ),
        ({"symbol_a": "BTC/USDT", "symbol_b": "SOLUSDT"}, "symbol_a", "is not a symbol"),
        ({"symbol_a": "BTCUSDT", "symbol_b": "ETHUSDT"}, "non_field_errors", "exists already"),
    ],
)
def test_an_impossible_pair_is_a_400_with_a_clear_message(staff_api, payload, field, message):
    make_pair()
    response = staff_api.post("/api/pairs/", payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in " ".join(response.json()[field])


def test_staff_set_the_signal_thresholds_on_create_and_update(staff_api):
    response = staff_api.post(
        "/api/pairs/",
        {"symbol_a": "SOLUSDT", "symbol_b": "ETHUSDT", "max_coint_pvalue": 0.01, "confirm_bars": 60},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert (response.json()["max_coint_pvalue"], response.json()["confirm_bars"]) == (0.01, 60)
    pair = Pair.objects.get(pk=response.json()["id"])
    assert (pair.max_coint_pvalue, pair.confirm_bars) == (0.01, 60)
    response = staff_api.patch(f"/api/pairs/{pair.id}/", {"max_coint_pvalue": 1, "confirm_bars": 1}, format="json")
    assert response.status_code == HTTPStatus.OK, response.json()
    pair.refresh_from_db()
    assert (pair.max_coint_pvalue, pair.confirm_bars) == (1.0, 1)
    assert api_pair(staff_api, pair.id)["confirm_bars"] == 1
    # Unset, a new pair takes the defaults.
    created = staff_api.post("/api/pairs/", {"symbol_a": "BNBUSDT", "symbol_b": "ETHUSDT"}, format="json").json()
    assert (created["max_coint_pvalue"], created["confirm_bars"]) == (0.05, 30)


@pytest.mark.parametrize(
    "payload,field,message",
    [
        ({"confirm_bars": 301}, "confirm_bars", "confirm_bars must be between 1 and the window (300), not 301."),
        ({"confirm_bars": 0}, "confirm_bars", "confirm_bars must be between 1 and the window (300), not 0."),
        # The window shrinks below the confirmation asked for: the confirmation says so.
        (
            {"window": 20, "min_bars": 20, "confirm_bars": 25},
            "confirm_bars",
            "confirm_bars must be between 1 and the window (20), not 25.",
        ),
        ({"max_coint_pvalue": -0.5}, "max_coint_pvalue", "max_coint_pvalue must be in (0, 1]."),
        ({"max_coint_pvalue": None}, "max_coint_pvalue", "This field may not be null."),
    ],
)
def test_an_impossible_update_of_the_signal_thresholds_is_a_400_and_changes_nothing(staff_api, payload, field, message):
    pair = make_pair()
    response = staff_api.patch(f"/api/pairs/{pair.id}/", payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {field: [message]}
    pair.refresh_from_db()
    assert (pair.window, pair.max_coint_pvalue, pair.confirm_bars) == (300, 0.05, 30)


def test_a_short_window_confirms_over_the_whole_window_by_default(staff_api):
    """The default confirmation (30) on a window of 20 would refuse a pair for a setting nobody asked for."""
    created = staff_api.post(
        "/api/pairs/", {"symbol_a": "BNBUSDT", "symbol_b": "ETHUSDT", "window": 20, "min_bars": 20}, format="json"
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    assert created.json()["confirm_bars"] == 20


def api_pair(client, pair_id: int) -> dict:
    return client.get(f"/api/pairs/{pair_id}/").json()


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


def test_the_series_signal_is_each_bars_signal_as_recorded_when_it_closed(api, pipeline):
    pair = make_pair(window=120, min_bars=40, confirm_bars=10)
    ticks = cointegrated_ticks(200)  # two ticks a second per leg
    # The cycle runs as the bars close, a few at a time, then once after a pause (a catch-up of 50 bars).
    stored = 0
    for seconds in [*range(45, 150, 3), 200]:
        store_and_resample(ticks[4 * stored : 4 * seconds])
        stored = seconds
        pipeline.snapshots(now=T0 + 1000 * seconds)  # on the data's clock
    series = api.get(f"/api/pairs/{pair.id}/series/").json()
    rows = list(Snapshot.objects.filter(pair=pair).order_by("as_of"))
    recorded = {row.as_of: row.signal_zscore for row in rows}
    # Read from the history rows directly: each bar's own value, none where no snapshot was recorded.
    assert len(series["t"]) == 120
    assert series["signal_zscore"] == [recorded.get(t) for t in series["t"]]
    assert sum(z is not None for z in series["signal_zscore"]) >= 80
    assert series["signal_zscore"][-1] == api.get(f"/api/pairs/{pair.id}/snapshot/").json()["signal_zscore"]
    # Each recorded value is its bar scored with the previous bar's window model.
    checked = 0
    for previous, row in itertools.pairwise(rows):
        if row.as_of - previous.as_of == 1000 and previous.data["ready"] and previous.data["spread_std"]:
            model = previous.data
            spread = row.data["price_a"] - model["hedge_ratio"] * row.data["price_b"]
            assert row.signal_zscore == pytest.approx((spread - model["spread_mean"]) / model["spread_std"], rel=1e-9)
            checked += 1
    assert checked >= 80
    # The limit takes the newest points; the series rebuilt from the history (no cache) says the same.
    assert (
        api.get(f"/api/pairs/{pair.id}/series/", {"limit": 7}).json()["signal_zscore"] == series["signal_zscore"][-7:]
    )
    cache.clear()
    assert api.get(f"/api/pairs/{pair.id}/series/").json()["signal_zscore"] == series["signal_zscore"]


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


def api_schema(api) -> dict:
    return api.get("/api/schema/", HTTP_ACCEPT="application/json").json()


def test_the_schema_documents_every_field_of_the_snapshot(api):
    from analytics.snapshot import Thresholds, snapshot_json, snapshot_placeholder

    schema = api_schema(api)
    component = schema["components"]["schemas"]["Snapshot"]
    placeholder = snapshot_placeholder(
        pair=1,
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1s",
        window=300,
        min_bars=30,
        thresholds=Thresholds(),
    )
    assert set(component["properties"]) == set(snapshot_json(placeholder))
    assert component["properties"]["zscore"] == {
        "type": "number",
        "format": "double",
        "nullable": True,
        "description": "(spread - spread_mean) / spread_std at as_of: in-sample, descriptive",
    }
    operation = schema["paths"]["/api/pairs/{id}/snapshot/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Snapshot"
    }


def typed(properties: dict, name: str) -> tuple:
    """A property's type, format and nullability as the schema documents them."""
    spec = properties[name]
    return spec.get("type"), spec.get("format"), spec.get("nullable", False)


def test_the_schema_documents_the_signal_of_the_snapshot_with_types(api):
    from analytics.snapshot import Thresholds

    schemas = api_schema(api)["components"]["schemas"]
    snapshot = schemas["Snapshot"]["properties"]
    assert typed(snapshot, "signal_zscore") == ("number", "double", True)
    assert typed(snapshot, "related") == ("boolean", None, False)
    assert typed(snapshot, "related_run") == ("integer", None, False)
    assert "previous grid point" in snapshot["signal_zscore"]["description"]
    assert {"signal_zscore", "related", "related_run"} <= set(schemas["Snapshot"]["required"])
    assert snapshot["thresholds"]["allOf"] == [{"$ref": "#/components/schemas/Thresholds"}]
    thresholds = schemas["Thresholds"]
    assert set(thresholds["properties"]) == {f.name for f in dataclasses.fields(Thresholds)}
    assert typed(thresholds["properties"], "max_coint_pvalue") == ("number", "double", False)
    assert typed(thresholds["properties"], "confirm_bars") == ("integer", None, False)


def test_the_schema_documents_the_series_and_its_signal(api, pipeline):
    schema = api_schema(api)
    operation = schema["paths"]["/api/pairs/{id}/series/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Series"
    }
    series = schema["components"]["schemas"]["Series"]
    assert set(series["properties"]) == {
        "pair",
        "as_of",
        "t",
        "price_a",
        "price_b",
        "spread",
        "zscore",
        "signal_zscore",
    }
    signal = series["properties"]["signal_zscore"]
    assert signal["type"] == "array"
    assert signal["items"] == {"type": "number", "format": "double", "nullable": True}
    assert "recorded when that bar closed" in signal["description"]
    # What the endpoint answers has exactly the documented keys.
    pair = make_pair(window=60, min_bars=30)
    store_and_resample(cointegrated_ticks(70))
    pipeline.snapshots()
    assert set(api.get(f"/api/pairs/{pair.id}/series/").json()) == set(series["properties"])


def test_the_schema_documents_the_alert_with_its_signal_and_gates(api):
    alert = api_schema(api)["components"]["schemas"]["Alert"]["properties"]
    assert typed(alert, "signal_zscore") == ("number", "double", True)
    assert typed(alert, "zscore") == ("number", "double", True)
    assert typed(alert, "coint_pvalue") == ("number", "double", True)
    assert typed(alert, "related_run") == ("integer", None, True)


def test_the_pair_schema_documents_the_signal_thresholds(api):
    pair = api_schema(api)["components"]["schemas"]["Pair"]["properties"]
    assert typed(pair, "max_coint_pvalue") == ("number", "double", False)
    assert typed(pair, "confirm_bars") == ("integer", None, False)


def test_alerts_carry_the_signal_and_gates_that_fired_them_as_documented(api):
    pair = make_pair()
    make_alert(pair, bar_time=5_000, zscore=1.7, signal_zscore=2.35, related_run=41)
    make_alert(pair, kind="exit", bar_time=6_000, zscore=0.2)  # as recorded before signals
    older, fired = api.get("/api/alerts/", {"pair": pair.id}).json()  # newest first
    assert (fired["signal_zscore"], fired["zscore"], fired["coint_pvalue"], fired["related_run"]) == (
        2.35,
        1.7,
        0.02,
        41,
    )
    assert (older["signal_zscore"], older["coint_pvalue"], older["related_run"]) == (None, None, None)
    documented = api_schema(api)["components"]["schemas"]["Alert"]["properties"]
    assert set(fired) == set(documented)
