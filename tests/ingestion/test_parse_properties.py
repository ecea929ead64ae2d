"""Properties of the frame parser on any input (hypothesis); ``test_parse.py`` has the real frames."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion import binance
from ingestion.binance import (
    MalformedFrame,
    Tick,
    agg_trade_frame,
    agg_trade_payload,
    normalize_symbol,
    parse_frame,
    parse_rest_agg_trades,
)

INT64_MAX = 2**63 - 1  # the Tick table's BigIntegerField columns
TRADE_KEYS = ["e", "E", "s", "a", "t", "p", "q", "f", "l", "T", "m", "data", "stream"]

symbols = st.from_regex(r"[A-Z0-9]{2,30}", fullmatch=True)
ticks = st.builds(
    Tick,
    timestamp=st.integers(0, INT64_MAX),
    symbol=symbols,
    price=st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False),
    quantity=st.floats(min_value=0.0, allow_infinity=False, allow_nan=False),
    trade_id=st.integers(0, INT64_MAX),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(TRADE_KEYS) | st.text(max_size=3), children, max_size=6)
    ),
    max_leaves=16,
)


@st.composite
def trade_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A trade event of either kind with up to three fields dropped or replaced by any JSON value."""
    tick = draw(ticks)
    payload = {"e": "aggTrade", "E": tick.timestamp, "s": tick.symbol, **agg_trade_payload(tick)}
    if draw(st.booleans()):
        payload["e"] = "trade"
        payload["t"] = payload.pop("a")
    for key in draw(st.lists(st.sampled_from(sorted(payload)), unique=True, max_size=3)):
        if draw(st.booleans()):
            del payload[key]
        else:
            payload[key] = draw(json_values)
    return payload


def wrapped(payload: Any, how: str) -> Any:
    """``payload`` raw or in a combined-stream envelope (with the stream name, without it, with other keys)."""
    return {
        "raw": payload,
        "combined": {"stream": "btcusdt@aggTrade", "data": payload},
        "data only": {"data": payload},
        "extra keys": {"id": 7, "data": payload, "stream": None, "x": [1, {"e": "aggTrade"}]},
    }[how]


envelopes = st.sampled_from(["raw", "combined", "data only", "extra keys"])
# json.dumps writes NaN/Infinity and integers of any size, which orjson refuses or turns into floats.
frames = (
    st.binary(max_size=64)
    | st.text(max_size=64)
    | json_values.map(json.dumps)
    | st.builds(wrapped, trade_payloads(), envelopes).map(json.dumps)
)


def assert_storable(tick: Tick) -> None:
    """A tick the writer can store and the client can key on: the types and ranges of the Tick table."""
    assert type(tick.timestamp) is int and 0 <= tick.timestamp <= INT64_MAX, tick
    assert type(tick.trade_id) is int and 0 <= tick.trade_id <= INT64_MAX, tick
    assert type(tick.symbol) is str and normalize_symbol(tick.symbol) == tick.symbol, tick
    assert type(tick.price) is float and 0.0 < tick.price < math.inf, tick
    assert type(tick.quantity) is float and 0.0 <= tick.quantity < math.inf, tick
    hash(tick)


@settings(max_examples=400)
@given(frames)
def test_any_frame_gives_a_storable_tick_nothing_or_malformed_frame(frame):
    try:
        tick = parse_frame(frame)
    except MalformedFrame:
        return
    if tick is not None:
        assert_storable(tick)


@settings(max_examples=200)
@given(st.lists(trade_payloads(), max_size=3) | json_values)
def test_any_rest_answer_gives_storable_ticks_or_malformed_frame(answer):
    try:
        rows = orjson.loads(json.dumps(answer))  # as the client reads the body
    except orjson.JSONDecodeError:
        return  # not JSON to orjson: the client's concern (tests/ingestion/test_client.py)
    try:
        parsed = parse_rest_agg_trades("BTCUSDT", rows)
    except MalformedFrame:
        return
    assert len(parsed) == len(rows)
    for tick in parsed:
        assert_storable(tick)


@settings(max_examples=300)
@given(ticks, st.booleans(), st.none() | st.integers(0, INT64_MAX))
def test_a_serialised_tick_parses_back_to_the_same_tick(tick, combined, event_time):
    frame = agg_trade_frame(tick, event_time=event_time, combined=combined)
    assert parse_frame(frame) == tick
    assert parse_frame(frame.decode()) == tick
    assert parse_rest_agg_trades(tick.symbol, [agg_trade_payload(tick)]) == [tick]


@settings(max_examples=200)
@given(ticks, envelopes)
def test_every_envelope_of_a_trade_gives_the_same_tick(tick, how):
    payload = orjson.loads(agg_trade_frame(tick, combined=False))
    assert parse_frame(orjson.dumps(wrapped(payload, how))) == tick


@settings(max_examples=200)
@given(trade_payloads(), envelopes)
def test_the_envelope_never_changes_the_verdict_on_its_trade(payload, how):
    def verdict(frame: Any) -> Any:
        try:
            return parse_frame(json.dumps(frame))
        except MalformedFrame:
            return MalformedFrame

    assert verdict(wrapped(payload, how)) == verdict(payload)


@settings(max_examples=100)
@given(json_values.filter(lambda v: not isinstance(v, dict)), envelopes.filter(lambda how: how != "raw"))
def test_an_envelope_whose_data_is_no_object_is_malformed(data, how):
    frame = json.dumps(wrapped(data, how))
    try:
        parse_frame(frame)
    except MalformedFrame:
        return
    raise AssertionError(f"accepted {frame}")


@settings(max_examples=400)
@given(trade_payloads(), envelopes)
def test_the_fast_path_of_trades_decides_as_every_check_spelled_out(payload, how):
    """A frame the fast path takes gives the very tick of the general path; any other it leaves to that path."""
    try:
        message = orjson.loads(json.dumps(wrapped(payload, how)))
    except orjson.JSONDecodeError:
        return
    if isinstance(payload.get("s"), str):
        try:
            binance._symbol(payload["s"])  # a symbol seen before: the fast path applies
        except ValueError:
            pass
    fast = binance._agg_trade_fast(message)
    if fast is None:
        return
    assert binance._event_from_message(message) == fast
    assert_storable(fast)
