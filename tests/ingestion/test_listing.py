"""The exchange's symbol list: parsing, the messages, the cache, and an exchange that cannot be reached.

The exchange is the ``fake_binance`` fixture (``tests/conftest.py``), or the
offline exchange on loopback where the HTTP exchange itself is under test.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from ingestion import listing
from ingestion.binance import ListedSymbol, MalformedFrame, Tick, listing_problem, normalize_symbol, parse_exchange_info
from ingestion.client import RateLimited
from ingestion.listing import listing_get, symbols_check, symbols_tradable
from ingestion.services import ticks_store
from ingestion.simulator import Exchange, Simulator, symbol_spec

LISTED = parse_exchange_info(
    Exchange(
        [symbol_spec("BTCUSDT"), symbol_spec("XAUUSDT")],
        listed={"LUNAUSDT": ("SETTLING", "PERPETUAL"), "BTCUSDT_260327": ("TRADING", "CURRENT_QUARTER")},
    ).exchange_info()
)


# -- pure -------------------------------------------------------------------------


def test_exchange_info_is_parsed_to_each_symbols_status_and_contract_type():
    assert LISTED["BTCUSDT"] == ListedSymbol("BTCUSDT", "TRADING", "PERPETUAL", "USDT")
    assert LISTED["LUNAUSDT"] == ListedSymbol("LUNAUSDT", "SETTLING", "PERPETUAL", "USDT")
    assert LISTED["BTCUSDT_260327"] == ListedSymbol("BTCUSDT_260327", "TRADING", "CURRENT_QUARTER", "USDT")
    assert [s for s, entry in LISTED.items() if entry.tradable] == ["BTCUSDT", "XAUUSDT"]


def test_odd_entries_are_skipped_and_a_body_without_symbols_is_malformed():
    rows = [{"symbol": "AUSDT"}, {"status": "TRADING"}, "x", {"symbol": 5}, {"symbol": "BUSDT", "status": None}]
    body = {"symbols": rows}
    assert parse_exchange_info(body) == {"AUSDT": ListedSymbol("AUSDT", "", ""), "BUSDT": ListedSymbol("BUSDT", "", "")}
    for bad in ({"code": -1003, "msg": "Too many requests"}, [], None, {"symbols": {}}):
        with pytest.raises(MalformedFrame, match="no symbol list"):
            parse_exchange_info(bad)


@pytest.mark.parametrize(
    "symbol,problem",
    [
        ("BTCUSDT", None),
        ("XAUUSDT", None),
        ("FOOUSDT", "FOOUSDT is not a symbol of Binance USD-M futures"),
        ("LUNAUSDT", "LUNAUSDT is not trading on the exchange (status SETTLING)"),
        ("BTCUSDT_260327", "BTCUSDT_260327 is not a perpetual (contract type CURRENT_QUARTER)"),
    ],
)
def test_each_reason_not_to_follow_a_symbol_names_it(symbol, problem):
    assert listing_problem(symbol, LISTED) == problem


def test_a_tradifi_perpetual_is_a_perpetual():
    listed = {"XAUUSDT": ListedSymbol("XAUUSDT", "TRADING", "TRADIFI_PERPETUAL")}
    assert listed["XAUUSDT"].tradable and listing_problem("XAUUSDT", listed) is None


def test_a_delivery_contract_has_the_form_of_a_symbol():
    """So the form check lets it through to the exchange's list, which says what it is."""
    assert normalize_symbol("btcusdt_260327") == "BTCUSDT_260327"


# -- the cache --------------------------------------------------------------------


def test_the_list_is_fetched_once_and_served_from_the_cache_while_fresh(fake_binance):
    first = listing_get()
    second = listing_get()
    assert fake_binance.requests == 1
    assert first.symbols == second.symbols and "SOLUSDT" in first.symbols
    assert (first.error, second.error) == ("", "")


def test_the_list_is_fetched_again_once_it_is_older_than_its_ttl(fake_binance, settings, monkeypatch):
    settings.BINANCE_EXCHANGE_INFO_TTL = 600
    listing_get()
    fake_binance.traded.append("NEWUSDT")
    assert "NEWUSDT" not in listing_get().symbols
    later = time.time() + 601
    monkeypatch.setattr(listing.time, "time", lambda: later)
    assert "NEWUSDT" in listing_get().symbols
    assert fake_binance.requests == 2


def test_a_caller_may_ask_for_a_younger_list_than_the_ttl(fake_binance, monkeypatch):
    listing_get()
    later = time.time() + 61
    monkeypatch.setattr(listing.time, "time", lambda: later)
    listing_get(max_age=600)
    assert fake_binance.requests == 1
    listing_get(max_age=60)
    assert fake_binance.requests == 2


def test_when_a_refresh_fails_the_stale_copy_is_used_and_retried_later(fake_binance, monkeypatch, caplog):
    fetched = listing_get()
    fake_binance.failure = httpx.ConnectError("Connection refused")
    now = time.time() + 700
    monkeypatch.setattr(listing.time, "time", lambda: now)
    stale = listing_get()
    assert stale.symbols == fetched.symbols and stale.stale
    assert stale.error == "ConnectError: Connection refused"
    assert "using the copy of 700 s ago" in caplog.text
    listing_get()
    assert fake_binance.requests == 2  # no new request while the failure is recent
    fake_binance.failure = None
    listing.cache.delete(listing._keys(listing.settings.BINANCE_REST_URL)[1])  # the wait is over
    assert not listing_get().stale
    assert fake_binance.requests == 3


def test_without_any_copy_an_unreachable_exchange_gives_no_list(fake_binance):
    fake_binance.failure = httpx.ConnectTimeout("timed out")
    got = listing_get()
    assert got.symbols is None and got.error == "ConnectTimeout: timed out"


def test_the_list_is_cached_per_rest_url(fake_binance, settings):
    listing_get()
    settings.BINANCE_REST_URL = "https://testnet.binancefuture.com"
    listing_get()
    assert fake_binance.requests == 2


def test_a_cache_that_does_not_answer_means_fetching_not_failing(fake_binance, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache is away")

    monkeypatch.setattr(listing.cache, "get", broken)
    monkeypatch.setattr(listing.cache, "set", broken)
    assert "BTCUSDT" in listing_get().symbols


# -- the real request, against the offline exchange -------------------------------


@pytest.mark.parametrize("status", [429, 418])
async def test_a_rate_limited_fetch_waits_as_long_as_the_exchange_asks(status):
    async with Simulator(port=0, rate=50, seed=1) as sim:
        sim.fault_rate_limit(1, status=status, retry_after=120)
        with pytest.raises(RateLimited) as raised:
            await asyncio.to_thread(listing.exchange_info_fetch, sim.rest_url)
        got = await asyncio.to_thread(listing_get, rest_url=sim.rest_url)
        assert got.symbols is not None and set(got.symbols) == {"BTCUSDT", "ETHUSDT"}
        sim.fault_rate_limit(1, status=status, retry_after=120)
        listing.cache.delete(listing._keys(sim.rest_url)[0])
        limited = await asyncio.to_thread(listing_get, rest_url=sim.rest_url)
        again = await asyncio.to_thread(listing_get, rest_url=sim.rest_url)
    assert (raised.value.status, raised.value.retry_after) == (status, 120)
    assert limited.symbols is None and f"HTTP {status}, retry after 120s" in limited.error
    assert again.symbols is None and again.error == limited.error  # not asked again before Retry-After


async def test_the_offline_exchange_lists_what_never_trades():
    async with Simulator(port=0, rate=50, seed=1, delisted=["LUNAUSDT"], silent=["XRPUSDT"]) as sim:
        symbols = await asyncio.to_thread(listing.exchange_info_fetch, sim.rest_url)
    assert symbols["LUNAUSDT"] == ListedSymbol("LUNAUSDT", "SETTLING", "PERPETUAL", "USDT")
    assert symbols["XRPUSDT"] == ListedSymbol("XRPUSDT", "TRADING", "PERPETUAL", "USDT")
    assert [s for s, entry in symbols.items() if entry.tradable] == ["BTCUSDT", "ETHUSDT", "XRPUSDT"]


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"symbols": 3}'])
def test_an_answer_that_is_not_a_symbol_list_is_a_failed_fetch(monkeypatch, body):
    real = httpx.Client

    def client(**kwargs):
        return real(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)), **kwargs)

    monkeypatch.setattr(listing.httpx, "Client", client)
    with pytest.raises(MalformedFrame):
        listing.exchange_info_fetch("http://127.0.0.1:9")


# -- the checks the rest of the system uses -----------------------------------------


@pytest.mark.django_db
def test_symbols_check_names_each_symbol_the_exchange_does_not_trade():
    assert symbols_check(["BTCUSDT", "FOOUSDT", "LUNAUSDT"]) == {
        "FOOUSDT": "FOOUSDT is not a symbol of Binance USD-M futures",
        "LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)",
    }


@pytest.mark.django_db
def test_an_unreachable_exchange_refuses_unseen_symbols_and_accepts_known_ones(fake_binance):
    fake_binance.failure = httpx.ConnectError("Connection refused")
    ticks_store([Tick(1_000, "DOGEUSDT", 0.1, 10.0, 1)])
    problems = symbols_check(["FOOUSDT", "DOGEUSDT", "SOLUSDT"], known={"SOLUSDT"})
    assert problems == {
        "FOOUSDT": "cannot check FOOUSDT against the exchange (ConnectError: Connection refused): try again"
    }


@pytest.mark.django_db
def test_a_symbol_missing_from_a_stale_list_is_not_called_unlisted(fake_binance, monkeypatch):
    listing_get()
    fake_binance.failure = httpx.ConnectError("Connection refused")
    later = time.time() + 1200
    monkeypatch.setattr(listing.time, "time", lambda: later)
    problems = symbols_check(["NEWUSDT", "LUNAUSDT"])
    assert problems["NEWUSDT"].startswith("NEWUSDT is not in the exchange's symbol list of 20 min ago")
    assert problems["NEWUSDT"].endswith("(ConnectError: Connection refused): try again")
    assert problems["LUNAUSDT"] == "LUNAUSDT is not trading on the exchange (status SETTLING)"


def test_the_feed_follows_what_trades_and_everything_when_it_cannot_tell(fake_binance):
    assert symbols_tradable(["BTCUSDT", "LUNAUSDT", "FOOUSDT", "BTCUSDT"]) == (
        ["BTCUSDT"],
        {
            "LUNAUSDT": "LUNAUSDT is not trading on the exchange (status SETTLING)",
            "FOOUSDT": "FOOUSDT is not a symbol of Binance USD-M futures",
        },
    )
    fake_binance.forget()
    fake_binance.failure = httpx.ConnectError("Connection refused")
    assert symbols_tradable(["BTCUSDT", "FOOUSDT"]) == (["BTCUSDT", "FOOUSDT"], {})
