"""Backtests of stored pairs: the live system's alerts are the backtest's trades; bad input is refused in words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.models import Alert
from analytics import services
from analytics.models import Backtest
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime
from tests.support import T0, cointegrated_ticks, make_pair, run_live

pytestmark = pytest.mark.django_db

SECONDS = 420
NOW = T0 + (SECONDS + 5) * 1000


def run_backtest(pair, **params) -> Backtest:
    params.setdefault("funding", False)  # no exchange here: the funding test has one
    backtest = services.backtest_create(pair, services.backtest_params(pair, now=NOW, **params))
    claimed = services.backtest_claim()
    assert claimed is not None and claimed.pk == backtest.pk
    return services.backtest_run(claimed, rules_of=Pipeline.rules_of)


def test_the_backtest_trades_exactly_the_alerts_the_live_system_fired():
    """Live on the data's clock, then a backtest of the same range from the stored bars: same bars, kinds, ways."""
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(SECONDS, seed=4, half_life=5), SECONDS)
    alerts = list(Alert.objects.filter(pair=pair).order_by("bar_time").values_list("bar_time", "kind", "direction"))
    assert sum(kind == "entry" for _, kind, _ in alerts) >= 2, alerts

    backtest = run_backtest(pair, start=T0, end=T0 + SECONDS * 1000, funding=False)
    assert backtest.status == "done", backtest.error
    traded = []
    for trade in backtest.result["trades"]:
        traded.append((trade["entry_time"], "entry", trade["direction"]))
        if trade["reason"] != "end":
            traded.append((trade["exit_time"], "exit", trade["direction"]))
    assert traded == alerts
    assert backtest.summary["trades"] == len(backtest.result["trades"]) and backtest.progress == 1.0
    assert backtest.summary["net_pnl"] == pytest.approx(sum(t["pnl"] for t in backtest.result["trades"]), abs=1e-9)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": T0 + 10_000, "end": T0 + 10_000}, "the range is empty"),
        ({"start": T0 - 400 * 86_400_000, "end": T0}, "a backtest covers 366 days at most"),
        ({"fee_bps": -1}, "fee_bps must be >= 0"),
        ({"notional": 0}, "notional must be > 0"),
        ({"end": NOW + 60_000}, "the range ends in the future"),
        ({"days": 0}, "days must be > 0"),
    ],
)
def test_impossible_parameters_are_refused_in_words(params, message):
    pair = make_pair()
    with pytest.raises(services.BacktestError, match=message):
        services.backtest_params(pair, now=NOW, **params)
    assert not Backtest.objects.exists()


def test_a_range_without_bars_fails_with_the_reason_and_stores_nothing_else():
    pair = make_pair()
    backtest = run_backtest(pair, start=T0, end=T0 + 60_000)
    assert backtest.status == "failed"
    assert "no 1s bars of BTCUSDT" in backtest.error
    assert backtest.summary is None and backtest.result is None


def test_backtests_are_claimed_oldest_first_once_and_a_lost_one_again():
    pair = make_pair()
    params = services.backtest_params(pair, now=NOW)
    first, second = services.backtest_create(pair, params), services.backtest_create(pair, params)
    assert services.backtest_claim().pk == first.pk
    assert services.backtest_claim().pk == second.pk
    assert services.backtest_claim() is None  # both running
    later = timezone.now() + timedelta(seconds=services.BACKTEST_LOST_SECONDS + 1)
    assert services.backtest_claim(now=later).pk == first.pk  # its worker went silent: claimed again


def test_the_periodic_step_runs_what_was_asked_for():
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(200, seed=4, half_life=5), 200)
    services.backtest_create(pair, services.backtest_params(pair, start=T0, end=T0 + 200_000, funding=False, now=NOW))
    runtime = Runtime.build(stats_process=False)
    try:
        assert Pipeline(runtime).backtests() == 1
    finally:
        runtime.close()
    assert Backtest.objects.get().status == "done"


def test_the_command_prints_the_result_object_or_the_reason(capsys):
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(200, seed=4, half_life=5), 200)
    call_command("backtest", str(pair.id), "--start", str(T0), "--end", str(T0 + 200_000), "--no-funding", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "done" and result["pair"] == pair.id
    assert set(result) >= {"id", "params", "summary", "trades", "equity", "grid"}
    assert len(result["equity"]["t"]) == len(result["equity"]["equity"]) == result["summary"]["bars"]
    start = datetime.fromtimestamp(T0 / 1000, tz=UTC).replace(tzinfo=None).isoformat()  # an ISO time, UTC
    call_command("backtest", str(pair.id), "--start", start, "--end", str(T0 + 200_000), "--no-funding", "--grid")
    out = capsys.readouterr().out
    assert "walk-forward: best in-sample" in out and "filling at the signal bar's close is optimistic" in out
    with pytest.raises(CommandError, match="no pair with id 999"):
        call_command("backtest", "999")
    with pytest.raises(CommandError, match="neither ms since the epoch nor an ISO date"):
        call_command("backtest", str(pair.id), "--start", "yesterday")
