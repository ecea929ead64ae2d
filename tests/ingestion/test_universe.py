"""A screener's universe, pure: the 24 h tickers, the top N by quote volume, the checks and their messages."""

from __future__ import annotations

import pytest

from ingestion.binance import (
    ListedSymbol,
    MalformedFrame,
    Ticker24h,
    parse_rest_tickers,
    ticker_24hr_url,
    universe_check,
    universe_passed_over,
    universe_top,
)
from ingestion.universe import UNIVERSE_MAX, UniverseError, pairs_count, universe_size_check

#: A row of ``GET /fapi/v1/ticker/24hr`` as Binance sends it.
ROW = {
    "symbol": "BTCUSDT",
    "priceChange": "-94.99",
    "priceChangePercent": "-0.153",
    "weightedAvgPrice": "61812.44",
    "lastPrice": "61800.10",
    "lastQty": "0.002",
    "openPrice": "61895.09",
    "highPrice": "62410.00",
    "lowPrice": "61250.00",
    "volume": "181230.145",
    "quoteVolume": "11205874110.51",
    "openTime": 1699913600000,
    "closeTime": 1700000000000,
    "firstId": 4200000000,
    "lastId": 4203061344,
    "count": 3061345,
}


def ticker(symbol: str, quote_volume: float) -> Ticker24h:
    return Ticker24h(symbol, 1.0, 0.0, quote_volume, quote_volume, 1, 0)


def perpetual(symbol: str, status: str = "TRADING", kind: str = "PERPETUAL", quote: str = "USDT") -> ListedSymbol:
    return ListedSymbol(symbol, status, kind, quote)


INFOS = {
    entry.symbol: entry
    for entry in (
        perpetual("BTCUSDT"),
        perpetual("ETHUSDT"),
        perpetual("SOLUSDT"),
        perpetual("BNBUSDT"),
        perpetual("XRPUSDT"),
        perpetual("LUNAUSDT", status="SETTLING"),
        perpetual("BTCUSDT_260327", kind="CURRENT_QUARTER"),
        perpetual("XAUUSDT", kind="TRADIFI_PERPETUAL"),
        perpetual("BTCUSDC", quote="USDC"),
        perpetual("IDLEUSDT"),
    )
}
TICKERS = [
    ticker("BTCUSDC", 9e9),
    ticker("BTCUSDT", 12e9),
    ticker("BTCUSDT_260327", 8e9),
    ticker("LUNAUSDT", 7e9),
    ticker("ETHUSDT", 6e9),
    ticker("XAUUSDT", 5e9),
    ticker("XRPUSDT", 1e9),
    ticker("SOLUSDT", 2e9),
    ticker("BNBUSDT", 1e9),
    ticker("GONEUSDT", 4e9),  # a ticker the symbol list does not name
    ticker("IDLEUSDT", 0.0),
]


# -- the 24 h tickers ---------------------------------------------------------------


def test_the_ticker_url_asks_for_every_symbol_or_one():
    assert ticker_24hr_url("https://fapi.binance.com/") == "https://fapi.binance.com/fapi/v1/ticker/24hr"
    assert ticker_24hr_url("http://h:1", "BTCUSDT") == "http://h:1/fapi/v1/ticker/24hr?symbol=BTCUSDT"


def test_ticker_rows_are_parsed_as_binance_sends_them():
    eth = {**ROW, "symbol": "ETHUSDT", "lastPrice": "3000.5", "quoteVolume": "6000000000", "count": 10}
    assert parse_rest_tickers([ROW, eth]) == [
        Ticker24h("BTCUSDT", 61800.1, -0.153, 181230.145, 11205874110.51, 3061345, 1700000000000),
        Ticker24h("ETHUSDT", 3000.5, -0.153, 181230.145, 6e9, 10, 1700000000000),
    ]
    # The answer for one symbol is the row alone; a symbol without a trade in 24 h shows zeros.
    idle = {**ROW, "lastPrice": "0", "volume": "0", "quoteVolume": "0", "count": 0}
    assert parse_rest_tickers(idle) == [Ticker24h("BTCUSDT", 0.0, -0.153, 0.0, 0.0, 0, 1700000000000)]


@pytest.mark.parametrize(
    "change",
    [
        {"quoteVolume": None},
        {"quoteVolume": "lots"},
        {"quoteVolume": "-1"},
        {"quoteVolume": "inf"},
        {"volume": "nan"},
        {"lastPrice": "-0.5"},
        {"priceChangePercent": "nan"},
        {"count": "12"},
        {"count": -1},
        {"closeTime": 1.5},
        {"symbol": "btc usdt"},
        {"symbol": 42},
    ],
)
def test_a_ticker_row_that_cannot_be_is_malformed(change):
    with pytest.raises(MalformedFrame, match="ticker/24hr"):
        parse_rest_tickers([ROW, {**ROW, **change}])


@pytest.mark.parametrize("missing", ["symbol", "lastPrice", "volume", "quoteVolume", "count", "closeTime"])
def test_a_ticker_row_without_a_field_it_needs_is_malformed(missing):
    row = {k: v for k, v in ROW.items() if k != missing}
    with pytest.raises(MalformedFrame, match="bad ticker/24hr row"):
        parse_rest_tickers([row])


@pytest.mark.parametrize("body", [None, "x", 3, [ROW, "x"], [[ROW]], {"code": -1003}])
def test_a_tickers_answer_that_is_not_a_list_of_rows_is_malformed(body):
    with pytest.raises(MalformedFrame):
        parse_rest_tickers(body)


# -- the top N ---------------------------------------------------------------------


def test_the_top_n_are_the_usdt_perpetuals_trading_with_the_largest_quote_volume():
    assert universe_top(INFOS, TICKERS, 30) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
    assert universe_top(INFOS, TICKERS, 3) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert universe_top(INFOS, TICKERS, 0) == []
    # Another quote asset is another universe.
    assert universe_top(INFOS, TICKERS, 5, quote="USDC") == ["BTCUSDC"]


def test_equal_volumes_rank_by_name_and_a_symbol_ticked_twice_counts_once():
    tickers = [ticker("XRPUSDT", 5.0), ticker("BNBUSDT", 5.0), ticker("SOLUSDT", 5.0), ticker("BNBUSDT", 5.0)]
    assert universe_top(INFOS, tickers, 2) == ["BNBUSDT", "SOLUSDT"]
    with pytest.raises(ValueError):
        universe_top(INFOS, tickers, -1)


def test_what_the_top_n_passed_over_is_said_with_its_reason():
    chosen = universe_top(INFOS, TICKERS, 2)
    assert universe_passed_over(INFOS, TICKERS, chosen) == {
        "BTCUSDT_260327": "BTCUSDT_260327 is not a plain perpetual (contract type CURRENT_QUARTER)",
        "LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)",
    }
    # Down to a smaller volume, more was passed over (BTCUSDC is in USDC: no news).
    assert universe_passed_over(INFOS, TICKERS, universe_top(INFOS, TICKERS, 5)) == {
        "BTCUSDT_260327": "BTCUSDT_260327 is not a plain perpetual (contract type CURRENT_QUARTER)",
        "LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)",
        "XAUUSDT": "XAUUSDT is not a plain perpetual (contract type TRADIFI_PERPETUAL)",
        "GONEUSDT": "GONEUSDT has a 24 h ticker but is not in the exchange's symbol list",
    }


# -- symbols given by name -----------------------------------------------------------


def test_each_symbol_that_cannot_be_in_a_universe_is_named_with_why():
    symbols = ["BTCUSDT", "BTCUSD", "FOOUSDT", "LUNAUSDT", "BTCUSDT_260327", "XAUUSDT", "BTCUSDC", "BTCUSD"]
    assert universe_check(symbols, INFOS) == {
        "BTCUSD": "BTCUSD is not a symbol of Binance USD-M futures (did you mean BTCUSDT or BTCUSDC?)",
        "FOOUSDT": "FOOUSDT is not a symbol of Binance USD-M futures",
        "LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)",
        "BTCUSDT_260327": "BTCUSDT_260327 is not a perpetual (contract type CURRENT_QUARTER)",
    }
    assert universe_check(["ETHUSDT", "XAUUSDT", "BTCUSDC"], INFOS) == {}


# -- the size --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 30, UNIVERSE_MAX])
def test_a_universe_of_2_to_200_symbols_can_be_screened(n):
    universe_size_check(n)


def test_a_universe_too_small_or_too_large_says_why_and_what_to_ask_for():
    with pytest.raises(UniverseError, match="at least 2 symbols to make a pair: ask for the top 2 or more, not 1"):
        universe_size_check(1)
    with pytest.raises(UniverseError) as raised:
        universe_size_check(500)
    assert str(raised.value) == (
        "a universe of 500 symbols is too large: at most 200 are screened, since every pair of them is tested"
        " (200 symbols make 19,900 pairs, 500 would make 124,750); ask for 200 or fewer"
    )
    assert pairs_count(30) == 435
