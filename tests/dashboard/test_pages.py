"""The server-rendered pages: overview, pair page, CSV downloads."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from http import HTTPStatus

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import AlertState, PaperPosition
from analytics import services
from analytics.models import Pair, Snapshot
from analytics.snapshot import STAT_FIELDS, PairSnapshot, Thresholds, Warmup, snapshot_json
from dashboard.formatting import bar_span_text, price_decimals, quote_currency, signed_text, threshold_text
from dashboard.views.pairs import warmup_text, zone_of
from ingestion.models import FeedStatus
from tests.dashboard.zones import ZONE_CASES
from tests.support import T0, cointegrated_ticks, make_alert, make_pair, store_and_resample

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def ready_pair(pipeline) -> Pair:
    pair = make_pair(window=200, min_bars=100)
    store_and_resample(cointegrated_ticks(250))
    pipeline.snapshots(now=T0 + 250_500)  # on the data's clock: live, not stale
    return pair


def embedded(response, element_id: str):
    """The JSON a page embedded with ``json_script``."""
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))


def element_text(response, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)<', response.content.decode(), re.S)
    assert match, f"no #{element_id} in the page"
    return match.group(1).strip()


def parse_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def writes(text: str, value) -> bool:
    """Whether a CSV cell writes a value of the API's JSON: null empty, an integer as it is, a float as the float
    rounded to 12 significant digits with no float noise (at most 12 significant digits, no exponent)."""
    if value is None or isinstance(value, int):
        return text == ("" if value is None else str(value))
    digits = text.lstrip("-").replace(".", "").strip("0")
    return "e" not in text.lower() and len(digits) <= 12 and float(text) == float(f"{value:.12g}")


def iso(ms: int) -> str:
    """ISO 8601 UTC of a ms time, with its ms when it has them (computed apart from the project's code)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


# -- overview ------------------------------------------------------------------


def test_the_overview_lists_the_default_pair_with_links(client):
    pair = make_pair()
    response = client.get("/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert f'href="/pairs/{pair.id}/"' in html
    assert "BTCUSDT" in html and "ETHUSDT" in html
    assert 'href="/admin/"' in html
    assert f'data-pair-id="{pair.id}"' in html
    assert "not computed yet" in html  # no cycle has run yet
    assert embedded(response, "initial-health")["status"] in ("ok", "degraded")


def test_the_overview_shows_the_live_state_of_a_ready_pair(client, ready_pair):
    snapshot = api_snapshot(ready_pair)
    html = client.get("/").content.decode()
    row = re.search(rf'<tr[^>]*data-pair-id="{ready_pair.id}".*?</tr>', html, re.S).group(0)
    assert 'data-state="ready"' in row
    assert snapshot["signal_zscore"] is not None
    assert f'data-field="signal_zscore">{snapshot["signal_zscore"]:+.2f}<' in row  # the signal, not the in-sample z
    assert f"{snapshot['quality_score']:.0f}" in row
    assert "none yet" in row


def test_the_overview_says_alerting_while_an_entry_is_open_and_shows_the_latest_alert(client, ready_pair):
    snapshot = api_snapshot(ready_pair)
    make_alert(ready_pair, bar_time=snapshot["as_of"], zscore=1.93, signal_zscore=2.71)
    AlertState.objects.update_or_create(
        pair=ready_pair, defaults={"state": {"armed": False, "open_direction": "short_spread", "open_since": 1}}
    )
    rows = client.get("/pairs/overview/")
    assert rows.status_code == HTTPStatus.OK
    row = rows.content.decode()
    assert 'data-state="alerting"' in row
    assert "alerting: short spread" in row
    assert "signal z +2.71" in row and "kind-entry" in row


def test_the_overview_says_stale_and_inactive(client, ready_pair):
    other = Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", interval="1m", active=False)
    cache.set(f"pairs:snapshot:{ready_pair.id}", {**api_snapshot(ready_pair), "stale": True, "stale_legs": ["ETHUSDT"]})
    html = client.get("/pairs/overview/").content.decode()
    assert re.search(rf'data-pair-id="{ready_pair.id}" data-state="stale"', html)
    assert "stale: ETHUSDT" in html
    assert re.search(rf'data-pair-id="{other.id}" data-state="inactive"', html)


def test_a_pair_without_data_is_warming_up_and_says_which_legs_are_silent(client, pipeline):
    pair = make_pair()
    pipeline.snapshots()
    html = client.get("/pairs/overview/").content.decode()
    assert re.search(rf'data-pair-id="{pair.id}" data-state="warming"', html)
    assert "warming up 0/100 · stale: BTCUSDT, ETHUSDT" in html


def test_the_overview_without_pairs_says_how_to_add_one(client):
    Pair.objects.all().delete()
    html = client.get("/").content.decode()
    assert "No pairs yet" in html and "add_pair" in html


# -- the pair page ---------------------------------------------------------------


def test_the_pair_page_embeds_the_current_state(client, api, ready_pair):
    response = client.get(f"/pairs/{ready_pair.id}/")
    assert response.status_code == HTTPStatus.OK
    snapshot = embedded(response, "initial-snapshot")
    series = embedded(response, "initial-series")
    assert snapshot == api.get(f"/api/pairs/{ready_pair.id}/snapshot/").json()
    assert series == api.get(f"/api/pairs/{ready_pair.id}/series/").json()
    config = embedded(response, "pair-config")
    assert config["ws_path"] == f"/ws/pairs/{ready_pair.id}/"
    assert (config["decimals_a"], config["decimals_b"]) == (1, 2)
    assert config["interval_ms"] == 1000
    assert embedded(response, "initial-alerts") == []
    assert embedded(response, "initial-health")["mode"] == "embedded"
    # Rendered on the server too, so the page is useful before the websocket connects.
    assert element_text(response, "signal-zscore-value") == f"{snapshot['signal_zscore']:+.2f}"
    assert element_text(response, "m-zscore") == f"{snapshot['zscore']:+.2f}"  # in-sample, among the metrics
    assert element_text(response, "warmup") == "ready"
    assert element_text(response, "m-hedge_ratio") == f"{snapshot['hedge_ratio']:.4f}"
    assert element_text(response, "live-status-text") == "feed down"  # no feed has reported in this test
    html = response.content.decode()
    for hook in ('id="chart-prices"', 'id="chart-spread"', 'id="chart-zscore"', 'id="alert-feed"', 'data-points="0"'):
        assert hook in html
    for component in ("stationarity", "correlation", "mean_reversion", "fit"):
        assert f'data-component="{component}"' in html
    assert "vendor/chart.umd.min.js" in html
    assert "cdn" not in html.lower()


def gate_items(response) -> dict[str, tuple[str, str]]:
    """The entry checklist as rendered: gate -> (data-ok, its text with the mark)."""
    html = response.content.decode()
    items = re.findall(r'<li id="gate-(\w+)" data-ok="(\w+)">(.*?)</li>', html, re.S)
    return {key: (ok, " ".join(html_unescape(re.sub(r"<[^>]+>", " ", body)).split())) for key, ok, body in items}


def expected_p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def test_the_pair_page_shows_the_entry_gates_as_a_checklist(client, api, pipeline):
    pair = make_pair(window=200, min_bars=100, max_adf_pvalue=0.05, max_coint_pvalue=0.04, confirm_bars=40)
    store_and_resample(cointegrated_ticks(250))
    pipeline.snapshots(now=T0 + 250_500)
    snapshot = api.get(f"/api/pairs/{pair.id}/snapshot/").json()
    adf, coint, corr = snapshot["adf_pvalue"], snapshot["coint_pvalue"], snapshot["correlation"]
    run, z = snapshot["related_run"], snapshot["signal_zscore"]
    response = client.get(f"/pairs/{pair.id}/")

    def mark(ok: bool) -> tuple[str, str]:
        return ("true", "✓") if ok else ("false", "✗")

    gates = gate_items(response)
    assert list(gates) == ["adf", "coint", "corr", "run", "z"]
    assert gates["adf"] == (mark(adf < 0.05)[0], f"ADF p {expected_p(adf)} < 0.05 {mark(adf < 0.05)[1]}")
    assert gates["coint"] == (mark(coint < 0.04)[0], f"EG p {expected_p(coint)} < 0.04 {mark(coint < 0.04)[1]}")
    assert gates["corr"] == (mark(corr >= 0.6)[0], f"correlation {corr:.2f} ≥ 0.60 {mark(corr >= 0.6)[1]}")
    assert gates["run"] == (mark(run >= 40)[0], f"related {run}/40 {mark(run >= 40)[1]}")
    assert gates["z"] == (mark(abs(z) > 2)[0], f"|signal z| {abs(z):.2f} > 2.00 {mark(abs(z) > 2)[1]}")
    assert element_text(response, "related-flag") == ("related" if snapshot["related"] else "not related")
    assert element_text(response, "confirm-bars") == "40"


def test_the_confirmation_counts_the_related_snapshots_in_a_row(client, pipeline):
    pair = make_pair(window=120, min_bars=40, confirm_bars=25, max_adf_pvalue=1, max_coint_pvalue=1, min_correlation=-1)
    ticks = cointegrated_ticks(200)
    stored = 0
    for seconds in range(60, 200, 10):  # every window passes gates this wide: the run grows bar by bar
        store_and_resample(ticks[4 * stored : 4 * seconds])
        stored = seconds
        pipeline.snapshots(now=T0 + 1000 * seconds)
    run = Snapshot.objects.filter(pair=pair).order_by("-as_of").first().data["related_run"]
    assert run > 25
    gates = gate_items(client.get(f"/pairs/{pair.id}/"))
    assert gates["run"] == ("true", f"related {run}/25 ✓")


def test_during_warm_up_no_gate_is_judged(client, pipeline):
    pair = make_pair()
    store_and_resample(cointegrated_ticks(42))
    pipeline.snapshots()
    response = client.get(f"/pairs/{pair.id}/")
    gates = gate_items(response)
    assert {ok for ok, _ in gates.values()} == {"unknown"}
    assert gates["adf"][1] == "ADF p — < 0.05 ·"
    assert gates["run"][1] == "related 0/30 ·"
    assert element_text(response, "related-flag") == "—"
    assert element_text(response, "m-zscore") == "—"


@pytest.mark.parametrize(
    "value,text", [(0.05, "0.05"), (0.6, "0.60"), (2.0, "2.00"), (0.0125, "0.0125"), (-0.5, "-0.50"), (1, "1.00")]
)
def test_thresholds_are_shown_with_at_least_two_decimals(value, text):
    assert threshold_text(value) == text


@pytest.mark.parametrize(
    "value,text", [(1.234, "+1.23"), (-1.236, "-1.24"), (0.0, "0.00"), (-0.001, "0.00"), (None, "—")]
)
def test_signed_numbers_are_written_as_the_page_script_writes_them(value, text):
    assert signed_text(value) == text


def test_the_pair_page_during_warm_up(client, pipeline):
    pair = make_pair()
    store_and_resample(cointegrated_ticks(42))
    pipeline.snapshots()
    response = client.get(f"/pairs/{pair.id}/")
    assert response.status_code == HTTPStatus.OK
    assert element_text(response, "warmup") == "42/100 bars"
    assert element_text(response, "signal-zscore-value") == "—"
    assert embedded(response, "initial-snapshot")["ready"] is False
    assert "warming up 42/100" in response.content.decode()


def test_the_pair_page_with_no_data_at_all(client, pipeline):
    pair = make_pair()
    response = client.get(f"/pairs/{pair.id}/")
    assert response.status_code == HTTPStatus.OK
    assert element_text(response, "warmup") == "not computed yet"
    pipeline.snapshots()
    response = client.get(f"/pairs/{pair.id}/")
    assert element_text(response, "warmup") == "0/100 bars"
    assert embedded(response, "initial-series")["t"] == []


def test_the_pair_page_lists_its_alerts_newest_first_escaped(client, ready_pair):
    older = make_alert(ready_pair, bar_time=1_000)  # as recorded before signals: its in-sample z, said so
    newer = make_alert(ready_pair, kind="exit", bar_time=2_000, zscore=0.3, signal_zscore=-0.41)
    other = Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT")
    make_alert(other, bar_time=3_000)
    response = client.get(f"/pairs/{ready_pair.id}/")
    html = response.content.decode()
    ids = [int(i) for i in re.findall(r'data-alert-id="(\d+)"', html)]
    assert ids == [newer.id, older.id]
    assert [a["id"] for a in embedded(response, "initial-alerts")] == [newer.id, older.id]
    assert "<b>z=" not in html and "&lt;b&gt;z=" in html
    assert re.findall(r'class="mono alert-z">([^<]*)<', html) == ["signal z -0.41", "z +2.40 in-sample"]


def test_an_unknown_pair_is_a_404(client):
    assert client.get("/pairs/999/").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/pairs/999/series.csv").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/pairs/999/bars.csv").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/pairs/abc/").status_code == HTTPStatus.NOT_FOUND


def test_the_static_assets_are_served_locally(client):
    # Chart.js comes from npm through the Makefile; the dashboard's own files are in the repository.
    from django.contrib.staticfiles import finders

    for path in (
        "dashboard/dashboard.css",
        "dashboard/common.js",
        "dashboard/pair.js",
        "dashboard/index.js",
        "dashboard/backtest.js",
        "dashboard/screener.js",
    ):
        assert finders.find(path), path


# -- CSV downloads ---------------------------------------------------------------


def test_the_series_csv_equals_the_api_series_with_utc_times_and_the_hedge_ratio(client, api, ready_pair):
    response = client.get(f"/pairs/{ready_pair.id}/series.csv")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"] and ".csv" in response["Content-Disposition"]
    rows = parse_csv(response)
    series = api.get(f"/api/pairs/{ready_pair.id}/series/").json()
    snapshot = api_snapshot(ready_pair)
    assert rows[0] == [
        "t",
        "time_utc",
        "price_a",
        "price_b",
        "spread",
        "zscore",
        "signal_zscore",
        "hedge_ratio",
    ]
    assert len(rows) - 1 == len(series["t"]) == 200
    for i, row in enumerate(rows[1:]):
        cells = dict(zip(rows[0], row, strict=True))
        assert cells["t"] == str(series["t"][i]) and cells["time_utc"] == iso(series["t"][i])
        for name in ("price_a", "price_b", "spread", "zscore", "signal_zscore"):
            assert writes(cells[name], series[name][i]), (i, name, cells[name], series[name][i])
        assert writes(cells["hedge_ratio"], snapshot["hedge_ratio"])
        # The spread of every row is the window's model at work.
        spread = float(cells["price_a"]) - float(cells["hedge_ratio"]) * float(cells["price_b"])
        assert float(cells["spread"]) == pytest.approx(spread, abs=1e-6)
    recorded = Snapshot.objects.get(pair=ready_pair, as_of=series["as_of"])
    assert writes(rows[-1][6], recorded.signal_zscore) and rows[-1][6] != ""
    # Read by pandas: the ISO times are the ms times, the numbers the API's.
    frame = pd.read_csv(io.StringIO(response.content.decode()))
    assert (pd.to_datetime(frame["time_utc"]) == pd.to_datetime(frame["t"], unit="ms", utc=True)).all()
    assert frame["spread"].to_numpy() == pytest.approx(series["spread"], rel=1e-11)
    assert (frame["hedge_ratio"] == float(rows[1][7])).all()


def test_the_series_csv_writes_known_rows_exactly(client, ready_pair):
    """A series as the cycle caches it, with float noise and a time off the whole second: the exact CSV."""
    from analytics.selectors import SERIES_KEY, SNAPSHOT_KEY

    as_of = T0 + 1_500
    snapshot = {**api_snapshot(ready_pair), "as_of": as_of, "hedge_ratio": 32.12345678901234}
    series = {
        "pair": ready_pair.id,
        "as_of": as_of,
        "t": [T0, as_of],
        "price_a": [97123.4, 97123.5],
        "price_b": [3012.55, 3012.6],
        "spread": [None, 0.1 + 0.2],
        "zscore": [None, -1.2345678901234567],
        "signal_zscore": [None, 1.8559999999999997],
    }
    cache.set(SNAPSHOT_KEY.format(pair_id=ready_pair.id), snapshot)
    cache.set(SERIES_KEY.format(pair_id=ready_pair.id), series)
    assert client.get(f"/pairs/{ready_pair.id}/series.csv").content.decode() == (
        "t,time_utc,price_a,price_b,spread,zscore,signal_zscore,hedge_ratio\n"
        "1767225600000,2026-01-01T00:00:00Z,97123.4,3012.55,,,,\n"
        "1767225601500,2026-01-01T00:00:01.500Z,97123.5,3012.6,0.3,-1.23456789012,1.856,32.123456789\n"
    )


def test_the_series_csv_takes_a_limit_like_the_api(client, api, ready_pair):
    everything = parse_csv(client.get(f"/pairs/{ready_pair.id}/series.csv"))
    rows = parse_csv(client.get(f"/pairs/{ready_pair.id}/series.csv", {"limit": 5}))
    series = api.get(f"/api/pairs/{ready_pair.id}/series/", {"limit": 5}).json()
    assert rows[1:] == everything[-5:] and [int(row[0]) for row in rows[1:]] == series["t"]
    response = client.get(f"/pairs/{ready_pair.id}/series.csv", {"limit": 0})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "limit" in response.content.decode()


def test_the_series_csv_during_warm_up_has_empty_statistics(client, pipeline):
    pair = make_pair()
    store_and_resample(cointegrated_ticks(10))
    pipeline.snapshots()
    rows = parse_csv(client.get(f"/pairs/{pair.id}/series.csv"))
    assert len(rows) == 11
    assert all(row[2] and row[3] and row[4] == row[5] == row[6] == row[7] == "" for row in rows[1:])


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_the_bars_csv_equals_the_api_bars(client, api, ready_pair, symbol):
    response = client.get(f"/pairs/{ready_pair.id}/bars.csv", {"symbol": symbol, "interval": "1s", "limit": 120})
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    assert symbol in response["Content-Disposition"]
    rows = parse_csv(response)
    bars = api.get("/api/bars/", {"symbol": symbol, "interval": "1s", "limit": 120}).json()
    assert rows[0] == ["t", "time_utc", "open", "high", "low", "close", "volume", "trades"]
    assert len(rows) - 1 == len(bars) == 120
    for row, bar in zip(rows[1:], bars, strict=True):
        cells = dict(zip(rows[0], row, strict=True))
        assert cells["time_utc"] == iso(bar["t"])
        assert all(writes(cells[c], bar[c]) for c in ("t", "open", "high", "low", "close", "volume", "trades"))


def test_the_bars_csv_writes_known_rows_exactly(client, ready_pair):
    from analytics.models import Bar

    Bar.objects.filter(symbol="ETHUSDT", interval="1m").delete()
    for k, volume in enumerate((1.8559999999999997, 12.0)):
        Bar.objects.create(
            symbol="ETHUSDT",
            interval="1m",
            open_time=T0 + k * 60_000,
            open=3012.55,
            high=3013.1 + k,
            low=3011.0,
            close=3012.6,
            volume=volume,
            trades=7 + k,
        )
    response = client.get(f"/pairs/{ready_pair.id}/bars.csv", {"symbol": "ETHUSDT", "interval": "1m", "start": T0})
    assert response.content.decode() == (
        "t,time_utc,open,high,low,close,volume,trades\n"
        "1767225600000,2026-01-01T00:00:00Z,3012.55,3013.1,3011.0,3012.6,1.856,7\n"
        "1767225660000,2026-01-01T00:01:00Z,3012.55,3014.1,3011.0,3012.6,12.0,8\n"
    )


def test_the_bars_csv_defaults_to_leg_a_over_the_window_and_takes_a_range(client, api, ready_pair):
    rows = parse_csv(client.get(f"/pairs/{ready_pair.id}/bars.csv"))
    bars = api.get("/api/bars/", {"symbol": "BTCUSDT", "interval": "1s", "limit": ready_pair.window}).json()
    assert [int(row[0]) for row in rows[1:]] == [bar["t"] for bar in bars]
    assert all(writes(row[5], bar["close"]) for row, bar in zip(rows[1:], bars, strict=True))
    start = bars[10]["t"]
    ranged = parse_csv(
        client.get(f"/pairs/{ready_pair.id}/bars.csv", {"symbol": "ethusdt", "interval": "1m", "start": start})
    )
    assert rows[0] == ranged[0]
    api_ranged = api.get("/api/bars/", {"symbol": "ETHUSDT", "interval": "1m", "start": start}).json()
    assert [int(row[0]) for row in ranged[1:]] == [bar["t"] for bar in api_ranged]
    assert all(writes(row[6], bar["volume"]) for row, bar in zip(ranged[1:], api_ranged, strict=True))


@pytest.mark.parametrize(
    "params,message",
    [
        ({"symbol": "SOLUSDT"}, "symbol"),
        ({"interval": "1h"}, "interval"),
        ({"limit": "x"}, "limit"),
        ({"limit": 10**6}, "limit"),
        ({"start": 10, "end": 5}, "end"),
    ],
)
def test_bad_bars_csv_parameters_are_a_400_with_a_message(client, ready_pair, params, message):
    response = client.get(f"/pairs/{ready_pair.id}/bars.csv", params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.content.decode()


# -- formatting ------------------------------------------------------------------


@pytest.mark.parametrize(
    "symbol,price,decimals",
    [
        ("BTCUSDT", 97123.4, 1),
        ("ETHUSDT", 3012.55, 2),
        ("LINKUSDT", 14.123, 3),
        ("ADAUSDT", 0.4512, 5),
        ("NEWUSDT", None, 2),
    ],
)
def test_price_decimals(symbol, price, decimals):
    assert price_decimals(symbol, price) == decimals


def api_snapshot(pair: Pair) -> dict:
    return APIClient().get(f"/api/pairs/{pair.id}/snapshot/").json()


# -- bounded work per request -----------------------------------------------------


@pytest.fixture
def no_statistics(monkeypatch):
    """Fails the test if anything runs the statistics (only the snapshot cycle may)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise AssertionError("statistics computed outside the snapshot cycle")

    monkeypatch.setattr(services, "pair_stats", refuse)
    return calls


def every_get(client: Client, api: APIClient, pair: Pair) -> list[int]:
    return [
        client.get("/").status_code,
        client.get("/pairs/overview/").status_code,
        client.get(f"/pairs/{pair.id}/").status_code,
        client.get(f"/pairs/{pair.id}/series.csv").status_code,
        api.get(f"/api/pairs/{pair.id}/snapshot/").status_code,
        api.get(f"/api/pairs/{pair.id}/series/").status_code,
    ]


def test_gets_on_a_cache_miss_serve_the_recorded_snapshot_and_compute_nothing(
    client, api, ready_pair, no_statistics, pipeline
):
    recorded = snapshot_json(pipeline.snapshots(now=T0 + 250_500, force=True)[0])
    series = api.get(f"/api/pairs/{ready_pair.id}/series/").json()
    cache.clear()  # a restarted cache, or a pair the cycle no longer computes
    for _ in range(3):
        assert every_get(client, api, ready_pair) == [HTTPStatus.OK] * 6
    assert no_statistics == []
    served = api.get(f"/api/pairs/{ready_pair.id}/snapshot/").json()
    assert {k: served[k] for k in STAT_FIELDS} == {k: recorded[k] for k in STAT_FIELDS}
    assert served["as_of"] == recorded["as_of"] and served["source"] == "history"
    assert api.get(f"/api/pairs/{ready_pair.id}/series/").json() == series  # the same numbers, from the bars
    page = client.get(f"/pairs/{ready_pair.id}/")
    assert "last recorded snapshot" in page.content.decode()


def test_an_inactive_pair_shows_its_last_recorded_snapshot(client, api, ready_pair, no_statistics):
    recorded = Snapshot.objects.filter(pair=ready_pair).order_by("-as_of").first()
    Pair.objects.filter(pk=ready_pair.pk).update(active=False)
    cache.clear()
    served = api.get(f"/api/pairs/{ready_pair.id}/snapshot/").json()
    assert served["as_of"] == recorded.as_of and served["zscore"] == recorded.zscore
    html = client.get("/").content.decode()
    assert f"{recorded.signal_zscore:+.2f}" in html
    assert no_statistics == []


def test_a_pair_never_computed_says_so_and_computes_nothing(client, api, no_statistics):
    pair = make_pair()
    store_and_resample(cointegrated_ticks(120))
    assert every_get(client, api, pair) == [HTTPStatus.OK] * 6
    snapshot = api.get(f"/api/pairs/{pair.id}/snapshot/").json()
    assert snapshot["computed_at"] is None and snapshot["ready"] is False and snapshot["source"] == "none"
    assert api.get(f"/api/pairs/{pair.id}/series/").json()["t"] == []
    assert "not computed yet" in client.get(f"/pairs/{pair.id}/").content.decode()
    assert no_statistics == []


def test_a_recorded_series_is_derived_once_for_many_gets(client, api, ready_pair, monkeypatch):
    cache.clear()
    loads = []
    real = services.selectors.closes_window
    monkeypatch.setattr(services.selectors, "closes_window", lambda **kw: loads.append(1) or real(**kw))
    for _ in range(5):
        api.get(f"/api/pairs/{ready_pair.id}/series/")
        client.get(f"/pairs/{ready_pair.id}/series.csv")
    assert len(loads) == 2  # one window per leg, once


@pytest.mark.parametrize("path", ["/", "/pairs/overview/", "/pairs/{id}/", "/screener/"])
def test_pages_answer_429_with_retry_after_over_their_limit(client, settings, path):
    settings.PAGE_THROTTLE = "3/min"
    settings.CSV_THROTTLE = "1/min"
    url = path.format(id=make_pair().id)
    assert [client.get(url).status_code for _ in range(3)] == [HTTPStatus.OK] * 3
    response = client.get(url)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/plain")
    assert "Too many requests" in response.content.decode()


@pytest.mark.parametrize("path", ["/pairs/{id}/series.csv", "/pairs/{id}/bars.csv"])
def test_csv_downloads_have_a_tighter_limit_than_pages(client, settings, path):
    settings.PAGE_THROTTLE = "100/min"
    settings.CSV_THROTTLE = "2/min"
    pair = make_pair()
    url = path.format(id=pair.id)
    assert [client.get(url).status_code for _ in range(3)] == [
        HTTPStatus.OK,
        HTTPStatus.OK,
        HTTPStatus.TOO_MANY_REQUESTS,
    ]
    assert client.get(f"/pairs/{pair.id}/").status_code == HTTPStatus.OK  # pages have their own allowance


# -- paper positions ---------------------------------------------------------------


def book_position(pair: Pair, *, entry: int, direction: str = "long_spread", **fields) -> PaperPosition:
    """A paper position of ``pair`` with its entry alert (an exit alert too when ``exit_time`` is given)."""
    entry_alert = make_alert(pair, kind="entry", direction=direction, bar_time=entry, signal_zscore=-2.4)
    values = {
        "direction": direction,
        "hedge_ratio": 20.5,
        "qty_a": 0.10309278,
        "qty_b": -2.1134021,
        "entry_time": entry,
        "entry_price_a": 97009.7,
        "entry_price_b": 3012.3,
        "entry_fees": 9.99,
        "fee_bps": 5.0,
        "slippage_bps": 1.0,
        "notional": 10_000.0,
        **fields,
    }
    if values.get("exit_time") is not None:
        values["exit_alert"] = make_alert(pair, kind="exit", direction=direction, bar_time=values["exit_time"])
    return PaperPosition.objects.create(pair=pair, entry_alert=entry_alert, **values)


def test_the_pair_page_shows_its_open_paper_position_and_the_last_closed_ones(client, api):
    pair = make_pair()
    closed = [
        book_position(
            pair,
            entry=T0 + k * 600_000,
            direction="short_spread" if k % 2 else "long_spread",
            exit_time=T0 + k * 600_000 + 125_000,
            exit_price_a=97000.0,
            exit_price_b=3011.0,
            fees=19.98,
            pnl=-4.5 + k,
            reason="relationship_broken" if k == 5 else "reverted",
        )
        for k in range(7)
    ]
    opened = book_position(
        pair,
        entry=T0 + 7 * 600_000,
        mark_time=T0 + 7 * 600_000 + 60_000,
        mark_price_a=97130.0,
        mark_price_b=3013.1,
        unrealised_pnl=12.3456,
        spread=35_360.45,
    )
    response = client.get(f"/pairs/{pair.id}/")
    html = response.content.decode()
    card = html[html.index('id="position-panel"') : html.index('id="metrics-panel"')]
    assert 'data-open="true"' in card and f'data-position-id="{opened.id}"' in card
    texts = {key: element_text(response, key) for key in (
        "pos-unrealised", "pos-unrealised-pct", "pos-since", "pos-spread", "pos-mark", "pos-beta", "pos-qty-a",
        "pos-qty-b", "pos-entry-a", "pos-entry-b", "pos-notional", "pos-fees",
    )}  # fmt: skip
    assert texts == {
        "pos-unrealised": "+12.35",
        "pos-unrealised-pct": "+0.12 %",
        "pos-since": "01-01 01:10:00 UTC",
        "pos-spread": "35,360.45",  # the spread's decimals: one more than BTCUSDT's tick
        "pos-mark": "01-01 01:11:00 UTC",
        "pos-beta": "20.5000",
        "pos-qty-a": "+0.103093",
        "pos-qty-b": "-2.1134",
        "pos-entry-a": "97,009.700",  # fills: two decimals more than the tick
        "pos-entry-b": "3,012.3000",
        "pos-notional": "10,000.00",
        "pos-fees": "9.99",
    }
    assert 'class="pos-pnl-value mono pos" id="pos-unrealised"' in card
    assert "long spread" in card and "(buy BTCUSDT, sell ETHUSDT)" in card
    # The last five closed, newest first: direction, entry → exit, realised PnL, why and how long.
    items = re.findall(r'<li data-position-id="(\d+)">(.*?)</li>', card, re.S)
    assert [int(pk) for pk, _ in items] == [p.id for p in reversed(closed)][:5]
    words = [" ".join(html_unescape(re.sub(r"<[^>]+>", " ", body)).split()) for _, body in items]
    assert words[0] == "long 01-01 01:00:00 → 01:02:05 +1.50 spread reverted · held 2m 05s"
    assert words[1] == "short 01-01 00:50:00 → 00:52:05 +0.50 relationship broke · held 2m 05s"
    assert '<span class="mono pnl pos">+1.50</span>' in items[0][1]
    assert '<span class="mono pnl neg">-0.50</span>' in items[2][1]
    # The page script is handed the API's positions and where to read them again.
    positions = api.get(f"/api/positions/?pair={pair.id}").json()
    assert embedded(response, "initial-positions") == positions
    config = embedded(response, "pair-config")
    assert config["positions_url"] == f"/api/positions/?pair={pair.id}" and config["positions_closed_shown"] == 5


def test_without_a_paper_position_the_card_says_so(client):
    pair = make_pair()
    response = client.get(f"/pairs/{pair.id}/")
    html = response.content.decode()
    card = html[html.index('id="position-panel"') : html.index('id="metrics-panel"')]
    assert 'data-open="false"' in card
    assert element_text(response, "pos-none").startswith("No open position. An entry alert opens one")
    assert "None closed yet." in card


@pytest.mark.parametrize(
    ("url", "offline"),
    [
        ("ws://127.0.0.1:9100/market/stream?streams=btcusdt@aggTrade", True),
        ("ws://localhost:9100/market", True),
        ("ws://[::1]:9100/market", True),
        ("wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade", False),
        ("wss://10.0.0.5/market", False),  # a proxy in the network is not the offline exchange
    ],
)
def test_every_page_says_when_it_shows_the_offline_demo_market(client, url, offline):
    FeedStatus.objects.create(name="default", url=url, connected=True, updated_at=timezone.now())
    for path in ("/", "/pairs/1/", "/screener/", "/pairs/1/backtest/", "/alerts/"):
        html = client.get(path).content.decode()
        assert ('id="demo-banner"' in html) is offline, path
        assert ("Offline demo exchange (simulated)" in html) is offline, path
    client.force_login(User.objects.create_superuser("desk", password="x"))
    for path in ("/admin/", "/admin/analytics/pair/", "/admin/alerts/alert/"):
        html = client.get(path).content.decode()
        assert ('id="demo-banner"' in html) is offline, path
    assert client.get("/api/health/").json()["exchange"]["offline"] is offline


@pytest.mark.parametrize(
    ("connected", "blocked", "word"),
    [(True, False, "ok"), (True, True, "degraded"), (False, False, "down")],
)
def test_the_overview_names_the_feed_as_its_colour_does(client, connected, blocked, word):
    """Connected but unable to store ticks is degraded, not 'live'."""
    FeedStatus.objects.create(
        name="default",
        url="wss://fstream.binance.com/market",
        connected=connected,
        last_error="" if connected else "cannot resolve fstream.binance.com: no DNS or no internet",
        writer_failing_since=timezone.now() - timedelta(minutes=5) if blocked else None,
        writer_error="database is locked" if blocked else "",
        last_tick_at=int(time.time() * 1000),
        updated_at=timezone.now(),
    )
    response = client.get("/")
    assert element_text(response, "fl-status") == word
    assert f'id="fl-status" data-status="{word}"' in response.content.decode()


def test_the_live_indicator_and_reconnects_count_failed_connects(client):
    FeedStatus.objects.create(
        name="default",
        url="wss://fstream.binance.com/market",
        connected=False,
        reconnects=0,
        connect_failures=6,
        last_error="cannot resolve fstream.binance.com: no DNS or no internet",
        updated_at=timezone.now(),
    )
    response = client.get("/pairs/1/")
    assert element_text(response, "live-status-text") == "feed down"
    assert element_text(response, "health-reconnects") == "0 · 6 failed"
    assert "cannot resolve fstream.binance.com" in html_unescape(response.content.decode())
    assert client.get("/api/health/").json()["feed"]["connect_failures"] == 6


@pytest.mark.parametrize(("snapshot", "rule", "previous_run", "key", "label"), ZONE_CASES)
def test_the_z_zone_speaks_as_a_trader_and_names_a_trade_only_when_the_rule_would_take_it(
    snapshot, rule, previous_run, key, label
):
    assert zone_of(snapshot, rule, previous_run) == {"key": key, "label": label}


def test_the_page_carries_the_run_before_its_snapshot_which_an_entry_needs(client, pipeline):
    pair = make_pair(window=200, min_bars=100)
    ticks = cointegrated_ticks(250)
    store_and_resample([t for t in ticks if t.timestamp < T0 + 240_000])
    pipeline.snapshots(now=T0 + 240_500)
    store_and_resample([t for t in ticks if t.timestamp >= T0 + 240_000])
    pipeline.snapshots(now=T0 + 250_500)  # the bars since, each its snapshot
    response = client.get(f"/pairs/{pair.id}/")
    as_of = embedded(response, "initial-snapshot")["as_of"]
    recorded = sorted(Snapshot.objects.filter(pair=pair), key=lambda row: row.as_of)
    before = [row.data["related_run"] for row in recorded if row.as_of < as_of]
    assert len(before) >= 9 and max(before) > 0
    assert embedded(response, "pair-config")["previous_run"] == before[-1]


def test_the_warm_up_promises_no_time_while_a_leg_is_silent():
    base = dict(pair=1, symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1m", window=100, thresholds=Thresholds())
    warming = PairSnapshot(**base, warmup=Warmup(40, 100))
    assert warmup_text(warming, 60_000) == "60 bars to go · ~1h 00m if both legs keep trading"
    silent = PairSnapshot(**base, warmup=Warmup(40, 100), stale=True, stale_legs=("ETHUSDT",))
    assert warmup_text(silent, 60_000) == "60 bars to go · waiting for ETHUSDT to trade"
    assert warmup_text(PairSnapshot(**base, ready=True, n=100), 60_000) == "100/100 bars in the window"


def test_as_of_is_the_bar_span_and_money_has_its_currency(client, ready_pair):
    response = client.get(f"/pairs/{ready_pair.id}/")
    snapshot = embedded(response, "initial-snapshot")
    start = datetime.fromtimestamp(snapshot["as_of"] / 1000, UTC)
    end = start + timedelta(seconds=1)
    assert element_text(response, "as-of") == f"{start:%m-%d %H:%M:%S}–{end:%H:%M:%S}"
    assert bar_span_text(86_399_000, 60_000) == "01-01 23:59:59–01-02 00:00:59"  # ends on another day
    assert quote_currency("BTCUSDT") == "USDT" and quote_currency("ETHUSDC") == "USDC"
    assert embedded(response, "pair-config")["quote"] == "USDT"
    assert re.search(r'id="spread-value">[^<]*</span><span class="unit">USDT</span>', response.content.decode())
