"""``manage.py add_pair``: what it refuses, with the message a user reads."""

from __future__ import annotations

import io

import httpx
import pytest
from django.core.management import CommandError, call_command

from analytics.models import Pair

pytestmark = pytest.mark.django_db


def add_pair(*args: str) -> str:
    out = io.StringIO()
    call_command("add_pair", *args, "--no-warmup", stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.mark.parametrize(
    "symbols,message",
    [
        (("FOOUSDT", "ETHUSDT"), "symbol_a: FOOUSDT is not a symbol of Binance USD-M futures"),
        (("BTCUSDT", "LUNAUSDT"), "symbol_b: LUNAUSDT is not trading on the exchange (status SETTLING)"),
        (("BTCUSDT_260327", "ETHUSDT"), "symbol_a: BTCUSDT_260327 is not a perpetual (contract type CURRENT_QUARTER)"),
    ],
)
def test_a_symbol_the_exchange_does_not_trade_is_refused_with_its_name(symbols, message):
    before = Pair.objects.count()
    with pytest.raises(CommandError) as refused:
        add_pair(*symbols)
    assert str(refused.value) == message
    assert Pair.objects.count() == before


def test_a_tradable_pair_is_created(fake_binance):
    pair_id = add_pair("solusdt", "ETHUSDT", "--interval", "1m")
    assert Pair.objects.get(pk=pair_id).symbols == ("SOLUSDT", "ETHUSDT")
    assert fake_binance.requests == 1  # checked once, the second check read the cached list


def test_with_the_exchange_unreachable_a_known_pair_is_updated_and_an_unseen_symbol_refused(fake_binance):
    fake_binance.failure = httpx.ConnectError("Connection refused")
    default = Pair.objects.get(symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s")
    assert add_pair("BTCUSDT", "ETHUSDT", "--entry-z", "2.5") == str(default.id)
    with pytest.raises(CommandError) as refused:
        add_pair("SOLUSDT", "ETHUSDT")
    assert str(refused.value) == (
        "symbol_a: cannot check SOLUSDT against the exchange (ConnectError: Connection refused): try again"
    )


def test_the_signal_thresholds_are_set_on_create_and_update():
    pair_id = add_pair("SOLUSDT", "ETHUSDT", "--max-coint-pvalue", "0.01", "--confirm-bars", "60")
    pair = Pair.objects.get(pk=pair_id)
    assert (pair.max_coint_pvalue, pair.confirm_bars) == (0.01, 60)
    assert add_pair("SOLUSDT", "ETHUSDT", "--confirm-bars", "5") == pair_id
    pair.refresh_from_db()
    assert (pair.max_coint_pvalue, pair.confirm_bars) == (0.01, 5)  # what is not given stays


@pytest.mark.parametrize(
    "options,message",
    [
        (("--max-coint-pvalue", "0"), "max_coint_pvalue: max_coint_pvalue must be in (0, 1]."),
        (("--max-coint-pvalue", "1.5"), "max_coint_pvalue: max_coint_pvalue must be in (0, 1]."),
        (("--max-coint-pvalue", "nan"), "max_coint_pvalue: max_coint_pvalue must be a finite number."),
        (("--confirm-bars", "0"), "confirm_bars: confirm_bars must be between 1 and the window (300), not 0."),
        (("--confirm-bars", "301"), "confirm_bars: confirm_bars must be between 1 and the window (300), not 301."),
        (
            ("--window", "20", "--min-bars", "20", "--confirm-bars", "25"),
            "confirm_bars: confirm_bars must be between 1 and the window (20), not 25.",
        ),
    ],
)
def test_an_impossible_signal_threshold_is_refused_with_its_message(options, message):
    before = Pair.objects.count()
    with pytest.raises(CommandError) as refused:
        add_pair("SOLUSDT", "ETHUSDT", *options)
    assert message in str(refused.value)
    assert Pair.objects.count() == before
