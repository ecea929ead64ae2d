"""The offline exchange's server: a scenario trading into an ``Exchange``, served on one port.

One port carries both protocols, as the feed meets them on Binance: the
WebSocket routes (``streams.py``) go on to the handshake, every other request
is REST (``rest.py``) or control (``/sim/stats``, ``/sim/pause``,
``/sim/resume``, ``/sim/fault``). Trading runs as a task of the event loop:
paced by scenario time, or in blast mode as fast as the subscribers read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..binance import USED_WEIGHT_HEADER
from .exchange import LISTED_SINCE_MS, ApiError, Exchange
from .faults import FAULT_KINDS, RestFaults, parse_fault_spec, retry_after_value
from .klines import PrehistorySource
from .market import Batch, PairScenario
from .rest import REST_ROUTES, UsedWeight, error_response, fault_params, json_response, request_weight
from .scenarios import make_scenario
from .streams import Subscriber, Subscribers, control_reply, strip_prefix, ws_route
from .universe import DAY_MS, UNIVERSE_LIMIT, PlantedPair, UniverseMarket, universe_plan

# The package's logger: what ``simulate_binance`` reports under.
logger = logging.getLogger(__package__)

# websockets logs every plain HTTP answer at INFO ("HTTP response sent"); a REST
# backfill makes hundreds of them, so its logger only speaks up for problems.
_ws_logger = logging.getLogger(f"{__package__}.websockets")
if _ws_logger.level == logging.NOTSET:
    _ws_logger.setLevel(logging.WARNING)

# Trades generated per step before yielding to the event loop, so a burst
# (replay at speed 0, a huge rate) never starves the connections.
_PACED_CHUNK = 5_000
# Trades per step in blast mode: large enough to amortise the per-step work,
# small enough to keep the socket buffers busy while the client reads.
_BLAST_CHUNK = 2_000


class Simulator:
    """The offline exchange: a scenario feeding an ``Exchange``, served on one port.

    Parameters
    ----------
    host, port : str, int
        Where to listen (``port=0``: any free port; see ``port`` once started).
    scenario : str
        ``cointegrated``, ``random_walk`` or ``replay``.
    rate : float
        Trades a second, all symbols together (pair scenarios).
    seed : int or None
        Makes the pair scenarios deterministic.
    history_limit : int
        Trades per symbol REST can serve.
    count : int or None
        Stop generating after this many trades in total.
    blast : bool
        Benchmark mode: once a client has subscribed, generate ``count`` trades
        as fast as the subscribers take them, stamped with the current time.
    faults : iterable of str
        Scheduled faults, e.g. ``["drop@10", "refuse@20:5"]`` (see ``parse_fault_spec``).
    step : float
        Seconds between generation steps in paced mode.
    **options
        Scenario options: ``hedge_ratio``, ``half_life``, ``spread_sigma``,
        ``shocks``, ``shock_every``, ``shock_size``, ``x_start``, ``y_start``,
        ``x_volatility``, ``split``, ``symbols``, ``id_offset`` (pair scenarios);
        ``speed``, ``loop``, ``path`` (replay).
    start_on_subscribe : bool
        Paced scenarios: open the market (scenario time 0) on the first whole
        second after every traded symbol has a subscriber (one client, or one
        per symbol when ingestion is split), instead of at ``start``. Two runs
        with the same seed then put the same trades in the same bars, however
        long their clients took to connect.
    delisted, silent : iterable of str
        Symbols ``exchangeInfo`` lists that never trade: ``delisted`` ones with
        status SETTLING, ``silent`` ones TRADING (a subscription to either gets
        nothing, as on Binance).
    listed_since : int
        When the symbols were listed (ms): the first kline and the first funding
        (default ``exchange.LISTED_SINCE_MS``, 2019-09-25 08:00 UTC).
    universe : int
        0 (default): the scenario's symbols only. N: a universe of N USDT
        perpetuals, the scenario's pair first and N - 2 more that do not trade
        but have klines over any past range, funding rates and a 24 h ticker,
        a few groups of them cointegrated by construction (``planted``; see
        ``universe``). Seeded by ``seed``, the same on every run.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str = "cointegrated",
        rate: float = 50.0,
        seed: int | None = None,
        *,
        history_limit: int = 2_000_000,
        count: int | None = None,
        blast: bool = False,
        faults: Iterable[str] = (),
        step: float = 0.02,
        start_on_subscribe: bool = False,
        delisted: Iterable[str] = (),
        silent: Iterable[str] = (),
        listed_since: int = LISTED_SINCE_MS,
        universe: int = 0,
        **options: Any,
    ) -> None:
        if blast and not count:
            raise ValueError("blast mode needs a trade count")
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        self.host = host
        self.port = port
        self.scenario_name = scenario
        self.scenario = make_scenario(scenario, rate=rate, seed=seed, **options)
        listed = {s.upper(): ("SETTLING", "PERPETUAL") for s in delisted}
        listed.update({s.upper(): ("TRADING", "PERPETUAL") for s in silent})
        market = self._universe(universe, seed or 0, listed_since)
        # A universe symbol named delisted is delisted; named silent, it is already (it never trades).
        untraded = set(market.specs) if market is not None else set()
        self.exchange = Exchange(
            self.scenario.specs,
            history_limit=history_limit,
            listed={name: entry for name, entry in listed.items() if name not in untraded},
            listed_since=listed_since,
            seed=seed or 0,
            universe=market,
        )
        for name in untraded & {s.upper() for s in delisted}:
            self.exchange.delist(name)
        # Pair scenarios serve a synthetic pre-history as klines; replay none.
        self._prehistory: PrehistorySource | None = getattr(self.scenario, "prehistory", None)
        self.exchange.set_prehistory(self._prehistory)
        self.count = count
        self.blast = blast
        self.step = step
        self.start_on_subscribe = start_on_subscribe
        self.schedule = sorted((parse_fault_spec(f) for f in faults), key=lambda f: f.at)
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subs = Subscribers()
        self._faults = RestFaults()
        self.used_weight = UsedWeight()
        self._running = asyncio.Event()
        self._running.set()
        self._subscribed = asyncio.Event()  # some symbol has a subscriber
        self._covered = asyncio.Event()  # every traded symbol has one
        self._finished = asyncio.Event()
        self._origin = 0.0  # wall time (s) of scenario time 0
        self._paused_at: float | None = None
        self._started_at = 0.0
        self._generated = 0
        self._sent_through_ms: int | None = None  # every trade stamped at or before it is sent
        self.frames_sent = 0
        #: Client messages answered, by method (``SUBSCRIBE``, ...).
        self.requests: Counter[str] = Counter()

    def _universe(self, size: int, seed: int, listed_since: int) -> UniverseMarket | None:
        if not size:
            return None
        traded = [spec.symbol for spec in self.scenario.specs]
        if not len(traded) <= size <= UNIVERSE_LIMIT:
            raise ValueError(
                f"a universe has {len(traded)} (the traded symbols) to {UNIVERSE_LIMIT} symbols, not {size}"
            )
        plan = universe_plan(seed, size, traded)
        return UniverseMarket(plan, seed=seed, epoch=listed_since // DAY_MS * DAY_MS)

    @property
    def planted(self) -> list[PlantedPair]:
        """The pairs cointegrated by construction: the traded one (scenario ``cointegrated``), the universe's."""
        pairs = []
        scenario = self.scenario
        if isinstance(scenario, PairScenario) and scenario.mean_reverting:
            y, x = scenario.specs
            half_life = math.log(2.0) / scenario.theta
            pairs.append(PlantedPair(y.symbol, x.symbol, scenario.hedge_ratio, half_life, scenario.spread_sigma))
        if self.exchange.universe is not None:
            pairs += self.exchange.universe.plan.planted
        return pairs

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Listen and start trading (and the fault schedule)."""
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,  # raw frame writes rely on no extension
            max_size=2**20,
            # Binance pings every 3 minutes; the clients ping on their own.
            ping_interval=180,
            ping_timeout=600,
            logger=_ws_logger,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._origin = self._started_at = time.time()
        self.exchange.set_prehistory(self._prehistory, start_ms=int(self._origin * 1000))
        self._tasks.append(asyncio.create_task(self._generate(), name="sim-generate"))
        self._tasks.append(asyncio.create_task(self._mark_prices(), name="sim-mark-prices"))
        if self.schedule:
            self._tasks.append(asyncio.create_task(self._run_schedule(), name="sim-faults"))
        logger.info("simulated Binance USD-M on %s (scenario %s)", self.ws_url, self.scenario_name)

    async def stop(self) -> None:
        """Stop trading and close every connection."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_finished(self) -> None:
        """Wait until the trade count is reached (or a non-looping replay ends)."""
        await self._finished.wait()

    @property
    def ws_url(self) -> str:
        """Base WebSocket route, like ``wss://fstream.binance.com/market``."""
        return f"ws://{self._url_host}:{self.port}/market"

    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    # -- control ----------------------------------------------------------------

    def pause(self) -> None:
        """Stop generating trades (immediately: no trade is made until ``resume``)."""
        if self._paused_at is None:
            self._paused_at = time.time()
            self._running.clear()

    def resume(self) -> None:
        """Go on trading; scenario time skips the pause, so no burst of missed trades."""
        if self._paused_at is not None:
            self._origin += time.time() - self._paused_at
            self._paused_at = None
            self._running.set()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    # -- faults -------------------------------------------------------------------

    def fault_drop(self) -> int:
        """Abort every WebSocket's TCP connection (no close frame); return how many."""
        self.exchange.faults["drop"] += 1
        dropped = self._subs.abort_all()
        logger.warning("fault: dropped %d connection(s)", dropped)
        return dropped

    def fault_refuse(self, seconds: float) -> int:
        """Answer new handshakes 503 for ``seconds`` and drop the current connections."""
        self.exchange.faults["refuse"] += 1
        self._faults.refuse(seconds)
        dropped = self._subs.abort_all()
        logger.warning("fault: refusing connections for %.1fs, dropped %d", seconds, dropped)
        return dropped

    def fault_malformed(self) -> int:
        """Send every connection one truncated, invalid JSON frame; return how many got it."""
        self.exchange.faults["malformed"] += 1
        sent = self._subs.send_malformed()
        logger.warning("fault: malformed frame sent to %d connection(s)", sent)
        return sent

    def fault_rate_limit(self, count: int, status: int = 429, retry_after: float = 1) -> None:
        """Answer the next ``count`` REST market-data requests (aggTrades, klines, fundingRate alike) with ``status``.

        Each answer carries ``Retry-After: retry_after`` and Binance's error body.
        """
        self._faults.rate_limit(count, status, retry_after)
        self.exchange.faults["rate_limit"] += 1
        logger.warning("fault: next %d REST request(s) answer %d (Retry-After %s)", count, status, retry_after)

    def fault_slow(self, seconds: float, delay: float = 0.5) -> None:
        """Delay every REST market-data answer by ``delay`` s for the next ``seconds`` s (a slow backfill)."""
        self._faults.slow(seconds, delay)
        self.exchange.faults["slow"] += 1
        logger.warning("fault: REST answers delayed by %.2fs for %.1fs", delay, seconds)

    def inject(self, kind: str, **params: float) -> dict[str, Any]:
        """Inject a fault by name (the control endpoint and the schedule use this)."""
        if kind == "drop":
            return {"kind": kind, "dropped": self.fault_drop()}
        if kind == "refuse":
            seconds = float(params.get("seconds", 5.0))
            return {"kind": kind, "seconds": seconds, "dropped": self.fault_refuse(seconds)}
        if kind == "malformed":
            return {"kind": kind, "sent": self.fault_malformed()}
        if kind == "rate_limit":
            count, status = int(params.get("count", 1)), int(params.get("status", 429))
            retry_after = retry_after_value(params.get("retry_after", 1))
            self.fault_rate_limit(count, status=status, retry_after=retry_after)
            return {"kind": kind, "count": count, "status": status, "retry_after": retry_after}
        if kind == "slow":
            seconds, delay = float(params.get("seconds", 30.0)), float(params.get("delay", 0.5))
            self.fault_slow(seconds, delay)
            return {"kind": kind, "seconds": seconds, "delay": delay}
        raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(FAULT_KINDS)})")

    @property
    def refusing(self) -> bool:
        return self._faults.refusing

    async def _run_schedule(self) -> None:
        for fault in self.schedule:
            delay = self._started_at + fault.at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self.inject(fault.kind, **fault.params)
            except ValueError:
                logger.exception("scheduled fault %s failed", fault)

    # -- trading -------------------------------------------------------------------

    async def _generate(self) -> None:
        """Trade until the count is reached or the scenario is exhausted (or the task is cancelled)."""
        try:
            await self._wait_for_open()
            while not await self._trade_step():
                pass
        finally:
            self._finished.set()
        logger.info("trading finished after %d trades", self._generated)

    async def _wait_for_open(self) -> None:
        """Blast mode waits for a subscriber; with ``start_on_subscribe``, for one to every symbol."""
        if self.blast:
            await self._subscribed.wait()
        elif self.start_on_subscribe and not self.scenario.unpaced:
            await self._covered.wait()
            await self._open_on_whole_second()

    async def _trade_step(self) -> bool:
        """Publish the trades due (a chunk at most), then yield; True once trading is over."""
        if not self._running.is_set():
            await self._running.wait()
            return False
        limit = _BLAST_CHUNK if self.blast else _PACED_CHUNK
        if self.count is not None:
            limit = min(limit, self.count - self._generated)
            if limit <= 0:
                return True
        unpaced = self.blast or self.scenario.unpaced
        now = time.time()
        until = math.inf if unpaced else now - self._origin
        batch = self.scenario.take(until, limit)
        self._publish(batch, now, unpaced)
        caught_up = len(batch.offsets) < limit
        if caught_up:  # everything due is sent
            self._sent_through_ms = int(now * 1000)
        if self.blast:
            await self._subs.drain()
        if self.scenario.exhausted:
            return True
        # Caught up: wait a step. More is due: just let the connections breathe.
        await asyncio.sleep(self.step if caught_up else 0)
        return False

    async def _open_on_whole_second(self) -> None:
        now = time.time()
        await asyncio.sleep(math.ceil(now) - now)
        self._origin = float(math.ceil(now))
        self.exchange.set_prehistory(self._prehistory, start_ms=int(self._origin * 1000))
        logger.info("market open at %d (every symbol has a subscriber)", int(self._origin * 1000))

    def _publish(self, batch: Batch, now: float, unpaced: bool) -> None:
        """Record ``batch`` in the exchange and send it to the subscribers."""
        if not batch.offsets:
            return
        record = self.exchange.record
        now_ms = int(now * 1000)
        ids: list[int] | list[None] = batch.ids or [None] * len(batch.offsets)
        if unpaced:
            ticks = [
                record(sym, now_ms, p, q, tid)
                for sym, p, q, tid in zip(batch.symbols, batch.prices, batch.quantities, ids, strict=True)
            ]
        else:
            origin_ms = self._origin * 1000
            rows = zip(batch.symbols, batch.offsets, batch.prices, batch.quantities, ids, strict=True)
            ticks = [record(sym, min(now_ms, int(origin_ms + off * 1000)), p, q, tid) for sym, off, p, q, tid in rows]
        self._generated += len(ticks)
        self.frames_sent += self._subs.fan_out(ticks, now_ms, cut_slow=not self.blast)

    async def _mark_prices(self) -> None:
        """Each second, every mark-price subscriber gets its symbols' mark price.

        Its event time is one up to which every trade has been sent, so a client
        reading it knows it has every earlier trade of the connection: the
        exchange's clock, in order with the trades, quiet market or not.
        """
        while True:
            now = time.time()
            await asyncio.sleep(math.ceil(now) - now or 1.0)
            if not self._subs.has_mark_listeners():
                continue
            now_ms = int(time.time() * 1000)
            generating = self._running.is_set() and self._origin * 1000 <= now_ms and not self._finished.is_set()
            event_time = min(now_ms, self._sent_through_ms or now_ms) if generating else now_ms
            self.frames_sent += self._subs.send_marks(
                event_time, self.exchange.symbols, self.exchange.last_price, self.exchange.funding_rate
            )

    # -- WebSocket ----------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None  # the handshake is done
        # process_request only lets WebSocket routes through.
        combined, streams = ws_route(urlsplit(conn.request.path)) or (True, [])
        sub = self._subs.add(conn, combined, streams)
        self.exchange.connections += 1
        self.exchange.connections_total += 1
        self._note_subscription(sub)
        try:
            async for message in conn:
                reply = self._control_message(sub, message)
                if reply is not None:
                    await conn.send(orjson.dumps(reply).decode())
        except ConnectionClosed:
            pass
        finally:
            self._subs.remove(conn)
            self.exchange.connections -= 1

    def _note_subscription(self, sub: Subscriber) -> None:
        if sub.symbols:
            self._subscribed.set()
        if self._subs.listened() >= set(self.exchange.symbols):
            self._covered.set()

    def _control_message(self, sub: Subscriber, message: str | bytes) -> dict[str, Any] | None:
        """Answer one client message the way Binance does."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return {"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None}
        if not isinstance(request, dict):
            return {"error": {"code": 2, "msg": "Invalid request: expected an object"}, "id": None}
        self.requests[str(request.get("method"))] += 1
        reply = control_reply(sub, request)
        if request.get("method") == "SUBSCRIBE" and "error" not in reply:
            self._note_subscription(sub)
        return reply

    # -- HTTP -------------------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Route a request: WebSocket routes go on to the handshake, the rest is REST."""
        delay = self._faults.rest_delay
        if delay and strip_prefix(urlsplit(request.path).path).startswith("/fapi/"):
            await asyncio.sleep(delay)
        return self._route(request)

    def _route(self, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = strip_prefix(parts.path)
        if ws_route(parts) is not None:
            if self._faults.refusing:
                return json_response(503, {"code": -1001, "msg": "Service unavailable (simulated refusal)."})
            return None
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/fapi/"):
                return self._rest(request.method, path, params)
            if path.startswith("/sim/"):
                if request.method not in ("GET", "POST"):
                    raise ApiError(-1000, f"Method {request.method} is not allowed.", 405)
                return json_response(200, self._control(path, params))
        except ApiError as exc:
            return error_response(exc)
        return json_response(404, {"code": -5000, "msg": f"Path {path}, Method {request.method} is invalid"})

    def _rest(self, method: str, path: str, params: dict[str, str]) -> Response:
        """A market-data answer, or the rate-limit answer a fault has made due.

        Each carries the weight used this minute (``X-MBX-USED-WEIGHT-1M``), its
        own included, errors too, as on Binance.
        """
        if method != "GET":
            raise ApiError(-1000, f"Method {method} is not allowed.", 405)
        handler = REST_ROUTES.get(path)
        if handler is None:
            raise ApiError(-5000, f"Path {path}, Method GET is invalid", 404)
        weight = [(USED_WEIGHT_HEADER, str(self.used_weight.add(request_weight(path, params))))]
        limited = self._faults.take_rate_limit()
        if limited is not None:
            status, body, retry_after = limited
            return json_response(status, body, [("Retry-After", retry_after), *weight])
        try:
            return json_response(200, handler(self.exchange, params), weight)
        except ApiError as exc:
            return error_response(exc, weight)

    def _control(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path == "/sim/stats":
            return self.exchange.stats()
        if path == "/sim/pause":
            self.pause()
            return {"paused": True}
        if path == "/sim/resume":
            self.resume()
            return {"paused": False}
        if path == "/sim/fault":
            numbers = fault_params(params)
            try:
                return {"ok": True, **self.inject(params.get("kind", ""), **numbers)}
            except ValueError as exc:
                raise ApiError(-1102, str(exc)) from None
        raise ApiError(-5000, f"Path {path} is invalid", 404)
