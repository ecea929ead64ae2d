"""A 1m backtest against the offline exchange: its history fetched as klines, funding paid as the rates say."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from asgiref.sync import sync_to_async

from analytics import services
from analytics.models import Bar
from ingestion.models import FundingRate
from ingestion.simulator import Simulator
from pairs_project.pipeline import Pipeline
from tests.support import make_pair

pytestmark = pytest.mark.django_db(transaction=True)

MINUTE = 60_000
DAY = 86_400_000


@sync_to_async
def backtest_of(pair, rest_url: str, **params):
    services.backtest_create(pair, services.backtest_params(pair, **params))
    return services.backtest_run(services.backtest_claim(), rules_of=Pipeline.rules_of, rest_url=rest_url)


@sync_to_async
def new_pair(**fields):
    return make_pair(interval="1m", **fields)


@sync_to_async
def closes(symbol: str) -> pd.Series:
    rows = Bar.objects.filter(symbol=symbol, interval="1m").order_by("open_time").values_list("open_time", "close")
    return pd.Series(dict(rows))


@sync_to_async
def rates(symbol: str) -> list[tuple[int, float]]:
    return list(FundingRate.objects.filter(symbol=symbol).order_by("funding_time").values_list("funding_time", "rate"))


async def test_a_1m_backtest_fetches_its_history_and_pays_the_funding_of_the_times_it_held():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        pair = await new_pair(window=60, min_bars=30, confirm_bars=5, entry_z=1.5, exit_z=0.25)
        end = int(time.time() * 1000) // MINUTE * MINUTE - 10 * MINUTE
        backtest = await backtest_of(pair, sim.rest_url, start=end - 3 * DAY, end=end)
    assert backtest.status == "done", backtest.error
    result = backtest.result
    assert result["funding"]["source"] and result["funding"]["rates"] == 2 * 9  # 3 a day, both legs
    y, x = await closes("BTCUSDT"), await closes("ETHUSDT")
    assert y.index.min() <= end - 3 * DAY - 60 * MINUTE  # one window of history before the range too
    assert backtest.summary["bars"] == len(y[(y.index >= end - 3 * DAY) & (y.index < end)])
    trades = result["trades"]
    assert trades, "the market should trade over three days"
    # Funding: each leg pays qty x its 1m close at or before the funding time x the rate, for each
    # funding time from the entry bar's close to the exit bar's close.
    funding = {"BTCUSDT": await rates("BTCUSDT"), "ETHUSDT": await rates("ETHUSDT")}
    paid_somewhere = False
    for trade in trades:
        held_from, held_to = trade["entry_time"] + MINUTE, trade["exit_time"] + MINUTE
        expected = 0.0
        for symbol, qty, series in (("BTCUSDT", trade["qty_a"], y), ("ETHUSDT", trade["qty_b"], x)):
            for when, rate in funding[symbol]:
                if held_from <= when < held_to:
                    expected += qty * series[series.index <= when].iloc[-1] * rate
                    paid_somewhere = True
        assert trade["funding"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert backtest.summary["funding"] == pytest.approx(sum(t["funding"] for t in trades), abs=1e-9)
    if not paid_somewhere:
        pytest.skip("no trade held over a funding time on this market")


async def test_a_range_before_the_exchange_history_is_refused_in_words():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        pair = await new_pair(window=60, min_bars=30)
        backtest = await backtest_of(pair, sim.rest_url, start=1_500_000_000_000, end=1_500_000_000_000 + DAY)
    assert backtest.status == "failed"
    assert "begins" in backtest.error and backtest.result is None


async def test_without_an_exchange_funding_is_left_out_and_said_so():
    async with Simulator(port=0, rate=50, seed=4) as sim:
        pair = await new_pair(window=60, min_bars=30)
        end = int(time.time() * 1000) // MINUTE * MINUTE - 10 * MINUTE
        first = await backtest_of(pair, sim.rest_url, start=end - DAY, end=end, funding=False)
    assert first.status == "done" and first.result["funding"]["source"] is None
    # The bars are stored now: a second run needs no exchange for them, and says why it has no funding.
    second = await backtest_of(pair, "http://127.0.0.1:9", start=end - DAY, end=end)
    assert second.status == "done", second.error
    assert second.result["funding"]["source"] is None and "127.0.0.1:9" in second.result["funding"]["error"]
