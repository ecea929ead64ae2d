"""The README's field lists name every field the API answers with, and every statistic a snapshot has."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from analytics.snapshot import Statistics
from tests.support import desk_records

pytestmark = pytest.mark.django_db

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def row_of(endpoint: str) -> str:
    """The HTTP API table's row of ``endpoint`` (its first cell, as written)."""
    match = re.search(rf"^\| `{re.escape(endpoint)}` \|(.*)$", README, re.M)
    assert match, f"no row for {endpoint} in the README"
    return match.group(1)


def unnamed(keys, text: str) -> set[str]:
    return {key for key in keys if not re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", text)}


def test_every_field_the_api_answers_with_is_named_in_the_readme():
    from analytics.models import ScreenerRun
    from analytics.screener import ScreenedPair

    pair = desk_records()
    ScreenerRun.objects.create(
        requested={"top": 2},
        status="done",
        interval="1m",
        window=200,
        fdr=0.05,
        symbols=["BTCUSDT", "ETHUSDT"],
        pairs=[ScreenedPair("BTCUSDT", "ETHUSDT", 200).as_json()],
        took_ms=12,
    )
    api = APIClient()
    snapshot = api.get(f"/api/pairs/{pair.id}/snapshot/").json()
    health = api.get("/api/health/").json()
    backtest = next(b for b in api.get(f"/api/pairs/{pair.id}/backtests/").json() if b["status"] == "done")
    full = api.get(f"/api/backtests/{backtest['id']}/").json()
    screener = api.get("/api/screener/").json()
    answers = {
        "GET /api/health/": [
            health,
            health["feed"],
            health["gaps"],
            health["pipeline"],
            health["pipeline"]["tasks"],
            health["pipeline"]["pairs"][0],
            health["feeds"][0],
        ],
        "GET /api/symbols/": api.get("/api/symbols/").json(),
        "GET /api/ticks/?symbol=S[&limit=N][&before=ID]": api.get(
            "/api/ticks/", {"symbol": "BTCUSDT", "limit": 1}
        ).json(),
        "GET /api/pairs/`, `GET /api/pairs/{id}/": api.get("/api/pairs/").json(),
        "GET /api/pairs/{id}/snapshot/": [
            snapshot,
            snapshot["warmup"],
            snapshot["quality"],
            snapshot["quality"]["fit"],
            snapshot["thresholds"],
        ],
        "GET /api/pairs/{id}/series/[?limit=N]": [api.get(f"/api/pairs/{pair.id}/series/").json()],
        "GET /api/bars/?symbol=S&interval=1s\\|1m\\|5m[&start=ms][&end=ms][&limit=N]": api.get(
            "/api/bars/", {"symbol": "BTCUSDT", "interval": "1s", "limit": 1}
        ).json(),
        "GET /api/alerts/[?pair=id][&page=N][&page_size=N]": api.get("/api/alerts/").json()[:1],
        "GET /api/pairs/{id}/backtests/": [backtest],
        "GET /api/backtests/{id}/": [
            full,
            full["params"],
            full["summary"],
            full["trades"][0],
            full["equity"],
            full["funding_source"],
        ],
        "GET /api/positions/[?pair=id][&open=1\\|0]": api.get("/api/positions/").json()[:1],
        "GET /api/screener/": [screener, screener["pairs"][0]],
    }
    for endpoint, objects in answers.items():
        row = row_of(endpoint)
        assert objects, endpoint
        for obj in objects:
            assert not unnamed(obj, row), (endpoint, unnamed(obj, row))


def test_the_analytics_table_defines_every_statistic_of_a_snapshot():
    table = README[README.index("## Analytics") : README.index("## Run modes")]
    defined = {name for cell in re.findall(r"^\| (`[^|]+`) \|", table, re.M) for name in re.findall(r"`(\w+)`", cell)}
    statistics = {f.name for f in dataclasses.fields(Statistics)} - {"quality"}
    assert statistics | {"signal_zscore", "signal_hedge_ratio", "related", "related_run"} <= defined
    assert "`quality` holds the breakdown" in table
