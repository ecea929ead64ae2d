"""The backtests' API: staff asks (202), the runner runs it, anyone reads its progress and result."""

from __future__ import annotations

import pytest

from analytics.models import Backtest
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime
from tests.support import T0, cointegrated_ticks, make_pair, run_live

pytestmark = pytest.mark.django_db


def test_staff_asks_the_runner_runs_anyone_reads(api, staff_api):
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(200, seed=4, half_life=5), 200)
    url = f"/api/pairs/{pair.id}/backtests/"
    body = {"start": T0, "end": T0 + 200_000, "fee_bps": 4, "grid": True, "funding": False}
    assert api.post(url, body, format="json").status_code in (401, 403)  # reading is open, asking is staff's

    asked = staff_api.post(url, body, format="json")
    assert asked.status_code == 202
    assert asked.json()["status"] == "queued" and asked.json()["params"]["fee_bps"] == 4
    backtest_id = asked.json()["id"]
    assert api.get(f"/api/backtests/{backtest_id}/").json()["progress"] == 0

    runtime = Runtime.build(stats_process=False)
    try:
        assert Pipeline(runtime).backtests() == 1
    finally:
        runtime.close()
    done = api.get(f"/api/backtests/{backtest_id}/").json()
    assert done["status"] == "done" and done["progress"] == 1
    assert done["summary"]["bars"] == len(done["equity"]["t"]) and done["grid"]
    assert [b["id"] for b in api.get(url).json()] == [backtest_id]
    assert "trades" not in api.get(url).json()[0]  # the list carries summaries


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"fee_bps": -1}, "non_field_errors", "fee_bps must be >= 0"),
        ({"start": "last week"}, "start", "neither ms since the epoch nor an ISO date"),
        ({"start": T0, "end": T0}, "non_field_errors", "the range is empty"),
        ({"days": 3650}, "non_field_errors", "a backtest covers 366 days at most"),
        ({"delay_bars": "soon"}, "delay_bars", "A valid integer is required"),
    ],
)
def test_bad_requests_are_a_400_with_the_reason_and_nothing_is_queued(staff_api, body, field, message):
    pair = make_pair()
    answer = staff_api.post(f"/api/pairs/{pair.id}/backtests/", body, format="json")
    assert answer.status_code == 400
    assert message in " ".join(answer.json()[field])
    assert not Backtest.objects.exists()


def test_unknown_pairs_and_backtests_are_a_404(api, staff_api):
    assert staff_api.post("/api/pairs/999/backtests/", {}, format="json").status_code == 404
    assert api.get("/api/backtests/999/").status_code == 404


def test_the_schema_documents_the_backtest(api):
    schema = api.get("/api/schema/?format=json").json()
    assert "/api/backtests/{backtest_id}/" in schema["paths"]
    fields = schema["components"]["schemas"]["BacktestRequest"]["properties"]
    assert {"start", "end", "days", "fee_bps", "slippage_bps", "notional", "delay_bars", "funding", "grid"} <= set(
        fields
    )
