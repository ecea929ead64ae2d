"""Paper positions: each live entry alert booked exactly as the backtest books the same trade, marked each bar."""

from __future__ import annotations

import pytest

from alerts.models import Alert, PaperPosition
from analytics import services
from analytics.backtest import Costs, position_mark, position_open
from pairs_project.pipeline import Pipeline
from tests.support import T0, cointegrated_ticks, make_alert, make_pair, run_live

pytestmark = pytest.mark.django_db

SECONDS = 420
FIELDS = ("direction", "hedge_ratio", "qty_a", "qty_b", "entry_price_a", "entry_price_b", "exit_price_a",
          "exit_price_b", "fees", "pnl")  # fmt: skip


def test_a_paper_position_and_the_backtest_trade_of_the_same_alert_are_identical():
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(SECONDS, seed=4, half_life=5), SECONDS)
    positions = list(PaperPosition.objects.filter(pair=pair).order_by("entry_time"))
    entries = Alert.objects.filter(pair=pair, kind="entry").count()
    assert len(positions) == entries >= 2
    assert all(p.entry_alert.bar_time == p.entry_time for p in positions)

    params = services.backtest_params(pair, start=T0, end=T0 + SECONDS * 1000, funding=False, now=T0 + 10**7)
    services.backtest_create(pair, params)
    backtest = services.backtest_run(services.backtest_claim(), rules_of=Pipeline.rules_of)
    trades = backtest.result["trades"]
    closed = [p for p in positions if not p.is_open]
    assert closed and len(trades) >= len(closed)
    for position, trade in zip(closed, trades, strict=False):
        assert (position.entry_time, position.exit_time) == (trade["entry_time"], trade["exit_time"])
        for name in FIELDS:
            assert getattr(position, name) == trade[name], name  # the same code, the same numbers: exactly


def test_an_open_position_is_marked_at_each_bar_with_its_own_spread(api):
    pair = make_pair(window=80, min_bars=40, confirm_bars=5)
    run_live(cointegrated_ticks(SECONDS, seed=4, half_life=5), SECONDS)
    position = PaperPosition.objects.filter(pair=pair).order_by("entry_time").first()
    # Its marks from the data, by the booking's definition (docs/analytics.md, "Paper positions").
    booked = position_open(
        direction=position.direction, hedge_ratio=position.hedge_ratio, entry_time=position.entry_time,
        signal_price_a=position.entry_alert.snapshot["price_a"], close_a=position.entry_alert.snapshot["price_a"],
        close_b=position.entry_alert.snapshot["price_b"], costs=Costs(),
    )  # fmt: skip
    sign = 1 if position.direction == "long_spread" else -1
    assert position.qty_a == pytest.approx(sign * 10_000 / position.entry_alert.snapshot["price_a"], rel=1e-12)
    assert position.entry_fees == pytest.approx(
        0.0005 * (abs(position.qty_a) * position.entry_price_a + abs(position.qty_b) * position.entry_price_b),
        rel=1e-12,
    )
    assert position.mark_time is not None  # marked while open (the last mark stays once closed)
    if position.mark_time is not None:
        assert position.unrealised_pnl == pytest.approx(
            position_mark(booked, position.mark_price_a, position.mark_price_b), rel=1e-12
        )
        assert position.spread == pytest.approx(position.mark_price_a - position.hedge_ratio * position.mark_price_b)
    listed = api.get(f"/api/positions/?pair={pair.id}").json()
    assert [p["id"] for p in listed] == list(
        PaperPosition.objects.filter(pair=pair).order_by("-entry_time").values_list("id", flat=True)
    )
    open_ones = api.get(f"/api/positions/?pair={pair.id}&open=1").json()
    assert all(p["open"] for p in open_ones)
    assert api.get("/api/positions/?open=maybe").status_code == 400
    assert api.get("/api/positions/?pair=999").status_code == 400


def test_the_positions_listed_are_open_and_closed_unless_asked_for_one_kind(api):
    pair = make_pair()
    for k, closed in enumerate((True, True, False)):
        alert = make_alert(pair, bar_time=T0 + k * 60_000)
        PaperPosition.objects.create(
            pair=pair, entry_alert=alert, direction="short_spread", hedge_ratio=20.0, qty_a=-0.1, qty_b=2.0,
            entry_time=T0 + k * 60_000, entry_price_a=97_000.0, entry_price_b=3_000.0, entry_fees=6.0, fee_bps=5.0,
            slippage_bps=1.0, notional=10_000.0, exit_time=T0 + k * 60_000 + 30_000 if closed else None,
        )  # fmt: skip

    def listed(query: str) -> list[bool]:
        return [p["open"] for p in api.get(f"/api/positions/?pair={pair.id}{query}").json()]

    assert listed("") == [True, False, False]  # newest first
    assert listed("&open=1") == [True] and listed("&open=true") == [True]
    assert listed("&open=0") == [False, False]
