"""An offline Binance USD-M futures exchange on loopback (no Django).

It speaks the market-data protocol the feed client uses, on ONE port:

- WebSocket, with or without the ``/market`` (or ``/public``) route prefix:
  ``/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade`` (combined frames),
  ``<symbol>@markPrice@1s`` (each second, after every trade stamped before its
  event time has been sent, as an in-order exchange clock),
  ``/ws/btcusdt@aggTrade`` (raw frames), and bare ``/ws`` or ``/stream`` followed
  by ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY``
  messages. Unknown stream names are accepted and get nothing, as on Binance.
- REST: ``/fapi/v1/aggTrades``, ``/fapi/v1/klines``, ``/fapi/v1/fundingRate``,
  ``/fapi/v1/exchangeInfo``, ``/fapi/v1/ticker/24hr``, ``/fapi/v1/time``,
  ``/fapi/v1/ping``, with Binance's error shape and its used-weight header
  (``X-MBX-USED-WEIGHT-1M``).
- Control: ``/sim/fault?kind=drop|refuse|malformed|rate_limit|slow``, ``/sim/stats``,
  ``/sim/pause``, ``/sim/resume``.

Besides the symbols it trades, ``exchangeInfo`` can list symbols that never
trade (``listed``; the simulator's ``delisted`` and ``silent``): a delisted one
(status SETTLING) and a TRADING one without a single trade, the two ways a
subscribed stream stays silent on Binance while the others flow.

Trades come from a scenario: ``cointegrated`` (BTC = alpha + beta * ETH + an
Ornstein-Uhlenbeck spread), ``random_walk`` (same, but the spread wanders) or
``replay`` (a real recording, re-stamped to now). The exchange keeps a bounded
per-symbol history in flat arrays, which is what REST serves; older trades are
forgotten exactly like Binance's history window, so the client can meet a gap
it cannot fill. Klines of the pair scenarios also reach back before the start,
to the listing date (``listed_since``, by default ``LISTED_SINCE_MS``,
2019-09-25): synthetic candles at each interval of ``PREHISTORY_INTERVALS``
(the scenario's model run backward from its starting prices), so an app can
warm up a 1m or 5m window at once and a backtest has any past range; aggTrades
have no such history. Funding is charged every 8 hours from the listing date
on, at a seeded rate around 0.01 % (``funding``).

With a universe (``universe=N``), N USDT perpetuals are listed: the traded pair
and N - 2 more that never trade but have klines over any past range, funding
and a 24 h ticker, a few groups of them cointegrated by construction, the rest
independent random walks (``universe``; the planted pairs: ``planted_pairs``,
``Simulator.planted``). A screener has something to find.

The package, by concern (the wire format itself is ``ingestion.binance``'s):

- ``symbols``: ids and the price/lot grid of each symbol;
- ``market``, ``replay``, ``scenarios``: the seeded pair market, the recorded
  one, and the scenarios by name;
- ``prehistory``: the synthetic klines before the start;
- ``funding``: the funding times and rates;
- ``universe``: the untraded symbols of a universe, their klines and what is planted in them;
- ``exchange``, ``klines``: the exchange's memory (trades, ids, klines, the
  symbol list) and the candle arithmetic;
- ``faults``: what can be made to go wrong, and when;
- ``streams``, ``rest``, ``server``: the WebSocket side, the REST side, and the
  server that runs a scenario and serves both on one port.

Use it from tests::

    async with Simulator(port=0, scenario="cointegrated", rate=200, seed=7) as sim:
        ...  # sim.ws_url, sim.rest_url, sim.exchange, sim.fault_drop(), ...

or from the command line: ``python manage.py simulate_binance``.
"""

from __future__ import annotations

from ..binance import KLINES_LIMIT
from .exchange import LISTED_SINCE_MS, ApiError, Exchange
from .faults import FAULT_KINDS, FaultSpec, parse_fault_spec
from .klines import INTERVALS, Candles, PrehistorySource
from .market import Batch, PairScenario, Scenario
from .prehistory import PREHISTORY_BARS, PREHISTORY_INTERVALS
from .replay import RECORDING, ReplayScenario
from .scenarios import SCENARIOS, make_scenario
from .server import Simulator
from .symbols import SymbolSpec, clock_id_offset, symbol_spec
from .universe import (
    UNIVERSE_DEFAULT,
    UNIVERSE_LIMIT,
    UNIVERSE_NAMES,
    PlantedPair,
    UniverseMarket,
    UniversePlan,
    planted_pairs,
    universe_names,
    universe_plan,
)

__all__ = [
    "FAULT_KINDS",
    "INTERVALS",
    "KLINES_LIMIT",
    "LISTED_SINCE_MS",
    "PREHISTORY_BARS",
    "PREHISTORY_INTERVALS",
    "RECORDING",
    "SCENARIOS",
    "UNIVERSE_DEFAULT",
    "UNIVERSE_LIMIT",
    "UNIVERSE_NAMES",
    "ApiError",
    "Batch",
    "Candles",
    "Exchange",
    "FaultSpec",
    "PairScenario",
    "PlantedPair",
    "PrehistorySource",
    "ReplayScenario",
    "Scenario",
    "Simulator",
    "SymbolSpec",
    "UniverseMarket",
    "UniversePlan",
    "clock_id_offset",
    "make_scenario",
    "parse_fault_spec",
    "planted_pairs",
    "symbol_spec",
    "universe_names",
    "universe_plan",
]
