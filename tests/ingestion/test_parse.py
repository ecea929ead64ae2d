"""The pure protocol module against real Binance frames."""

from __future__ import annotations

import orjson
import pytest

from ingestion.binance import (
    Kline,
    MalformedFrame,
    MarkPrice,
    Tick,
    agg_trade_frame,
    agg_trade_payload,
    agg_trades_url,
    kline_row,
    klines_url,
    mark_price_frame,
    normalize_symbol,
    parse_frame,
    parse_rest_agg_trades,
    parse_rest_klines,
    stream_url,
)

AGG_TRADE = (
    '{"e":"aggTrade","E":1723161256330,"a":2311428119,"s":"BTCUSDT","p":"61800.30","q":"0.006",'
    '"f":5266583935,"l":5266583935,"T":1723161256322,"m":false}'
)


def test_it_builds_the_combined_stream_url_on_the_market_route():
    """Trades and the 1 s mark price (the exchange's clock) of each symbol, on the /market route that serves both."""
    url = stream_url("wss://fstream.binance.com/market", ["BTCUSDT", "ETHUSDT"])
    assert url == (
        "wss://fstream.binance.com/market/stream?streams="
        "btcusdt@aggTrade/btcusdt@markPrice@1s/ethusdt@aggTrade/ethusdt@markPrice@1s"
    )
    assert stream_url("ws://127.0.0.1:9100/market/", ["ETHUSDT"]).endswith(
        "/market/stream?streams=ethusdt@aggTrade/ethusdt@markPrice@1s"
    )


def test_it_parses_a_mark_price_event():
    frame = (
        '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT",'
        '"p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}'
    )
    assert parse_frame(frame) == MarkPrice(1562305380000, "BTCUSDT", 11794.15, 0.00038167, 1562306400000)
    mark = MarkPrice(1_000, "ETHUSDT", 3_000.25, -0.0001, 28_800_000)
    assert parse_frame(mark_price_frame(mark)) == mark
    assert parse_frame(mark_price_frame(mark, combined=False)) == mark


@pytest.mark.parametrize("data", [
    '{"e":"markPriceUpdate","s":"BTCUSDT","p":"1"}',  # no event time
    '{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"nan"}',
    '{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","r":"inf"}',
    '{"e":"markPriceUpdate","E":"1","s":"BTCUSDT","p":"1"}',
])  # fmt: skip
def test_a_bad_mark_price_event_is_a_malformed_frame(data):
    with pytest.raises(MalformedFrame):
        parse_frame(data)


def test_it_builds_the_agg_trades_rest_url():
    assert agg_trades_url("https://fapi.binance.com", "BTCUSDT", 42) == (
        "https://fapi.binance.com/fapi/v1/aggTrades?symbol=BTCUSDT&fromId=42&limit=1000"
    )


def test_it_parses_a_raw_agg_trade_on_trade_time_and_aggregate_id():
    assert parse_frame(AGG_TRADE) == Tick(1723161256322, "BTCUSDT", 61800.3, 0.006, 2311428119)


def test_it_parses_a_combined_frame_and_bytes():
    frame = ('{"stream":"btcusdt@aggTrade","data":' + AGG_TRADE + "}").encode()
    assert parse_frame(frame) == Tick(1723161256322, "BTCUSDT", 61800.3, 0.006, 2311428119)


def test_it_parses_every_real_recorded_trade_frame(recorded_frames):
    ticks = [parse_frame(f) for f in recorded_frames]
    assert len(ticks) == 21_313 + 14_076
    by_symbol: dict[str, list[Tick]] = {}
    for raw, tick in zip(recorded_frames, ticks, strict=True):
        data = orjson.loads(raw)["data"]
        assert tick == Tick(data["T"], data["s"], float(data["p"]), float(data["q"]), data["t"])
        by_symbol.setdefault(tick.symbol, []).append(tick)
    # The capture has no id gaps: ids are contiguous per symbol.
    for symbol_ticks in by_symbol.values():
        ids = sorted(t.trade_id for t in symbol_ticks)
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_a_frame_round_trips_through_the_simulator_serialiser(recorded_frames):
    for raw in recorded_frames[:500]:
        tick = parse_frame(raw)
        assert parse_frame(agg_trade_frame(tick)) == tick
        assert parse_frame(agg_trade_frame(tick, combined=False)) == tick


@pytest.mark.parametrize(
    "frame",
    [
        '{"result":null,"id":1}',
        '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTCUSDT","b":"1","a":"2"}}',
        '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","p":"1"}}',
        "{}",
    ],
)
def test_it_ignores_what_is_not_a_trade_or_a_mark_price(frame):
    assert parse_frame(frame) is None


def test_it_ignores_unknown_keys():
    frame = AGG_TRADE[:-1] + ',"X":"MARKET","zz":[1,2,3]}'
    assert parse_frame(frame).trade_id == 2311428119


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json",
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT","p":"oops"',
        "[1, 2]",
        '{"data": 5}',
        '{"e":"aggTrade","s":"BTCUSDT","p":"1","q":"1","T":1}',  # no id
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"abc","q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"-5","q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"nan","q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1","q":"1","T":"x"}',
        # Found by the property tests: these were ticks that could not be stored or keyed.
        '{"e":"aggTrade","s":["BTCUSDT"],"a":1,"p":"1","q":"1","T":1}',
        '{"e":"aggTrade","s":{},"a":1,"p":"1","q":"1","T":1}',
        '{"e":"aggTrade","s":null,"a":1,"p":"1","q":"1","T":1}',
        '{"e":"aggTrade","s":"btc-usdt","a":1,"p":"1","q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":123456789012345678901234567890,"p":"1","q":"1","T":1}',  # a float to orjson
        '{"e":"aggTrade","s":"BTCUSDT","a":9223372036854775808,"p":"1","q":"1","T":1}',  # 2**63
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1","q":"1","T":1.5}',
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1","q":"1","T":-1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":true,"p":"1","q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":"1","p":"1","q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":true,"q":"1","T":1}',
        '{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1","q":[1],"T":1}',
    ],
)
def test_it_raises_one_specific_error_on_a_malformed_frame(frame):
    with pytest.raises(MalformedFrame):
        parse_frame(frame)


@pytest.mark.parametrize("event", ["[]", "{}", '["aggTrade"]', "1", "null"])
def test_an_event_type_that_is_not_a_string_is_not_a_trade(event):
    """Found by the property tests: an unhashable "e" raised TypeError out of the parser."""
    assert parse_frame(f'{{"e":{event},"s":"BTCUSDT","a":1,"p":"1","q":"1","T":1}}') is None


@pytest.mark.parametrize("price", [1e-13, 1.5e-7, 123456789.123, 1e22, 5e-324])
def test_a_tiny_or_huge_price_round_trips(price):
    """Found by the property tests: rounding to 12 places sent 1e-13 as "0", an impossible price."""
    tick = Tick(1, "BTCUSDT", price, price, 7)
    assert parse_frame(agg_trade_frame(tick)) == tick
    assert "e" not in agg_trade_payload(tick)["p"].lower()


def test_it_parses_rest_agg_trade_rows():
    rows = [{"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781, "T": 1498793709153, "m": True}]
    assert parse_rest_agg_trades("BTCUSDT", rows) == [Tick(1498793709153, "BTCUSDT", 0.01633102, 4.70443515, 26129)]
    with pytest.raises(MalformedFrame):
        parse_rest_agg_trades("BTCUSDT", {"code": -1121, "msg": "Invalid symbol."})
    for bad in ({"a": 1.0}, {"a": 2**63}, {"T": True}, {"p": None}):
        with pytest.raises(MalformedFrame):
            parse_rest_agg_trades("BTCUSDT", [{**rows[0], **bad}])


# The example row of Binance's klines documentation.
KLINE_ROW = [
    1499040000000,
    "0.01634790",
    "0.80000000",
    "0.01575800",
    "0.01577100",
    "148976.11427815",
    1499644799999,
    "2434.19055334",
    308,
    "1756.87402397",
    "28.46694368",
    "17928899.62484339",
]


def test_it_builds_the_klines_url():
    url = klines_url("http://127.0.0.1:9100/", "BTCUSDT", "1m", 301)
    assert url == "http://127.0.0.1:9100/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=301"


def test_it_parses_rest_kline_rows_and_serialises_them_back():
    kline = Kline(
        1499040000000, 0.0163479, 0.8, 0.015758, 0.015771, 148976.11427815, 1499644799999, 2434.19055334, 308,
        1756.87402397, 28.46694368,
    )  # fmt: skip
    assert parse_rest_klines([KLINE_ROW]) == [kline]
    assert parse_rest_klines([]) == []
    # Prices on the symbol's price grid, base volumes on its lot grid, quote volumes on both.
    assert kline_row(kline, price_precision=8, quantity_precision=3) == [
        1499040000000,
        "0.01634790",
        "0.80000000",
        "0.01575800",
        "0.01577100",
        "148976.114",
        1499644799999,
        "2434.19055334000",
        308,
        "1756.874",
        "28.46694368000",
        "0",
    ]
    assert parse_rest_klines([kline_row(kline, price_precision=8, quantity_precision=8)]) == [kline]


@pytest.mark.parametrize(
    "change",
    [
        {0: "1499040000000"},  # times are integers
        {0: 1.5},
        {8: True},
        {8: -1},
        {1: "abc"},
        {1: None},
        {2: "nan"},
        {3: "0"},  # no market trades at a price of zero
        {4: "-1"},
        {5: "-0.5"},
        {7: "inf"},
    ],
)
def test_a_kline_row_no_market_makes_is_malformed(change):
    row = [change.get(i, value) for i, value in enumerate(KLINE_ROW)]
    with pytest.raises(MalformedFrame):
        parse_rest_klines([row])


@pytest.mark.parametrize("body", [{"code": -1121, "msg": "Invalid symbol."}, [KLINE_ROW[:8]], [{"t": 1}], [None]])
def test_a_klines_answer_that_is_not_a_list_of_rows_is_malformed(body):
    with pytest.raises(MalformedFrame):
        parse_rest_klines(body)


@pytest.mark.parametrize(
    "raw,expected", [("btcusdt", "BTCUSDT"), (" ETHUSDT ", "ETHUSDT"), ("1000PEPEUSDT", "1000PEPEUSDT")]
)
def test_it_normalizes_symbols(raw, expected):
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["", "B", "BTC-USDT", "btc usdt", "x" * 40])
def test_it_rejects_what_is_not_a_symbol(raw):
    with pytest.raises(ValueError, match="is not a symbol"):
        normalize_symbol(raw)
