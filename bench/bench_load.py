"""Load benchmark: 200 open pages plus 50 API requests a second, embedded and distributed.

Starts the system in processes of its own on the offline exchange, on a fresh SQLite
database, with the default pair on its 300-bar window (ready after 30 bars), then
loads it from this process (asyncio, websockets and keep-alive HTTP/1.1 connections):

- pages: each a websocket on ``/ws/pairs/1/`` that reads every message (it decodes
  the ``prices`` ones, whose ``t`` is the trade time of the newest tick they carry)
  and, as the page script does, polls ``/api/health/`` every 5 s while its socket
  has not told it the health (a ``health`` message) for 10 s;
- API: requests sent on a fixed schedule (open loop: a slow answer does not slow the
  schedule), round-robin over ``/api/pairs/1/snapshot/``, ``/api/pairs/1/series/``,
  ``/api/alerts/?pair=1``, ``/api/bars/?symbol=BTCUSDT&interval=1s&limit=300`` and
  ``/api/health/``.

Measured: API latency (send -> whole answer read) and the lateness of live ``prices``
(arrival wall time minus ``t``, the same machine clock), p50/p95, over the
measuring window after a warm-up. First with one page and 2 requests a second (the
same clients against an idle system: the baseline), then at full load; the loaded
figures are also given as ratios to the baseline.

Modes: ``embedded`` (``runpairs --simulate``, one process) and ``distributed`` (a
Redis server of its own, ``simulate_binance``, ``ingest_binance``, a Celery worker
with beat and two daphne processes; pages and requests are split over both).
Each page, and each of 50 API clients, connects from an address of its own in
127.0.0.0/8, as browsers on different machines would: the default rate limits apply.

    python bench/bench_load.py [--mode embedded|distributed|both] [--pages 200] [--rate 50] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import websockets
from common import ROOT

from tests.processes import free_port, get_json, port_open, spawn, stop, wait_until

API_PATHS = (
    "/api/pairs/1/snapshot/",
    "/api/pairs/1/series/",
    "/api/alerts/?pair=1",
    "/api/bars/?symbol=BTCUSDT&interval=1s&limit=300",
    "/api/health/",
)
HEALTH_EVERY = 5.0
#: Client addresses the API requests come from (each well under the per-address limit).
API_CLIENTS = 50
#: The demo market, and the default pair on its 300-bar window, ready after 30 bars.
MARKET = [
    "--seed",
    "7",
    "--rate",
    "100",
    "--half-life",
    "5",
    "--spread-sigma",
    "5",
    "--shock-every",
    "60",
    "--shock-size",
    "3",
]
PAIR = ["add_pair", "BTCUSDT", "ETHUSDT", "--window", "300", "--min-bars", "30", "--no-warmup"]
GOALS = {"api_p95": 300.0, "prices_p95": 1000.0}


@dataclass
class Figures:
    api: list[float] = field(default_factory=list)
    api_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    health: list[float] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    received: dict[str, int] = field(default_factory=dict)
    bytes_received: int = 0
    disconnects: int = 0

    def percentiles(self, values: list[float]) -> tuple[float, float]:
        if not values:
            return float("nan"), float("nan")
        p50, p95 = np.percentile(values, [50, 95])
        return float(p50), float(p95)


def message_type(text: str) -> str:
    """The ``type`` of a pushed message, read from its head (the big ones are not decoded)."""
    head = text[:60]
    at = head.find('"type"')
    if at < 0:
        return "?"
    rest = head[at + 6 :].lstrip(" :")
    return rest[1:].split('"', 1)[0] if rest.startswith('"') else "?"


class Http:
    """A keep-alive HTTP/1.1 GET client on one connection (httpx's pool costs more CPU than the server at this rate)."""

    def __init__(self, port: int, address: str) -> None:
        self.port = port
        self.address = address
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()

    async def get(self, path: str, timeout: float = 30.0) -> int:
        """The answer's status (0 when the connection failed); the body is read whole."""
        async with self.lock:
            try:
                return await asyncio.wait_for(self._get(path), timeout)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                await self.close()
                return 0

    async def _get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port, local_addr=(self.address, 0)
            )
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: application/json\r\n\r\n".encode()
        )
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class System:
    """The system under test, in processes of its own."""

    def __init__(self, mode: str, workdir: Path) -> None:
        self.mode = mode
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.ports: list[int] = []
        base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.env = base | {
            "DATABASE_URL": f"sqlite:///{workdir / 'load.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def run(self, args: list[str]) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True)

    def start(self) -> None:
        if self.mode == "distributed":
            redis_port, exchange_port = free_port(), free_port()
            self.procs.append(
                subprocess.Popen(
                    [shutil.which("redis-server"), "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                    stdout=(self.workdir / "redis.log").open("w"), stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            wait_until(lambda: port_open(redis_port), 10, "redis")
            self.env |= {
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "BINANCE_WS_URL": f"ws://127.0.0.1:{exchange_port}/market",
                "BINANCE_REST_URL": f"http://127.0.0.1:{exchange_port}",
            }
        self.run(["migrate", "-v0"])
        self.run(PAIR)
        log = lambda name: self.workdir / f"{name}.log"  # noqa: E731
        if self.mode == "embedded":
            port = free_port()
            sim = [f"--sim-{a.removeprefix('--')}" if a.startswith("--") else a for a in MARKET]
            self.procs.append(spawn(["runpairs", "--simulate", "--port", str(port), *sim], self.env, log("runpairs")))
            self.ports = [port]
        else:
            exchange_port = int(self.env["BINANCE_REST_URL"].rsplit(":", 1)[1])
            self.procs.append(
                spawn(["simulate_binance", "--port", str(exchange_port), *MARKET], self.env, log("exchange"))
            )
            self.procs.append(spawn(["ingest_binance"], self.env, log("ingest")))
            worker = ["-A", "pairs_project", "worker", "-B", "--concurrency=2", "--loglevel=WARNING",
                      f"--schedule={self.workdir / 'beat'}"]  # fmt: skip
            self.procs.append(spawn(worker, self.env, log("worker"), module="celery"))
            self.ports = [free_port(), free_port()]
            for i, port in enumerate(self.ports):
                daphne = ["-b", "127.0.0.1", "-p", str(port), "pairs_project.asgi:application"]
                self.procs.append(spawn(daphne, self.env, log(f"daphne-{i}"), module="daphne"))
        for port in self.ports:
            wait_until(
                lambda port=port: get_json(f"http://127.0.0.1:{port}/api/health/")["feed"]["connected"], 60, "the feed"
            )

    def wait_ready(self) -> None:
        port = self.ports[0]
        wait_until(lambda: get_json(f"http://127.0.0.1:{port}/api/pairs/1/snapshot/")["ready"], 120, "a ready pair")

    def stop(self) -> None:
        stop(list(reversed(self.procs)))


def client_address(group: int, k: int) -> str:
    """The ``k``-th client address of a group, in the loopback range."""
    return f"127.{group}.{k // 250}.{k % 250 + 1}"


async def page(
    k: int, port: int, figures: Figures, measuring: asyncio.Event, done: asyncio.Event, delay: float
) -> None:
    """One open pair page: its websocket, read to the end, and its health polls while the socket is silent on it."""
    await asyncio.sleep(delay)
    url = f"ws://127.0.0.1:{port}/ws/pairs/1/"
    address = client_address(1, k)

    http = Http(port, address)
    told_at = -1e9  # when the socket last told the health (monotonic)

    async def poll_health() -> None:
        await asyncio.sleep(HEALTH_EVERY * (delay % 1))
        while not done.is_set():
            if time.monotonic() - told_at < 2 * HEALTH_EVERY:
                await asyncio.sleep(HEALTH_EVERY)
                continue
            began = time.perf_counter()
            ok = await http.get("/api/health/") == 200
            if measuring.is_set() and ok:
                figures.health.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(HEALTH_EVERY)

    poller = asyncio.create_task(poll_health())
    try:
        while not done.is_set():
            try:
                async with websockets.connect(
                    url, max_size=2**26, origin=f"http://127.0.0.1:{port}", open_timeout=30, local_addr=(address, 0)
                ) as ws:
                    while not done.is_set():
                        try:
                            text = await asyncio.wait_for(ws.recv(), 1.0)
                        except TimeoutError:
                            continue
                        arrived = time.time() * 1000
                        kind = message_type(text)
                        if kind == "health":
                            told_at = time.monotonic()
                        if not measuring.is_set():
                            continue
                        figures.bytes_received += len(text)
                        figures.received[kind] = figures.received.get(kind, 0) + 1
                        if kind == "prices":
                            figures.prices.append(arrived - orjson.loads(text)["t"])
            except (OSError, websockets.WebSocketException, TimeoutError):
                if measuring.is_set():
                    figures.disconnects += 1
                await asyncio.sleep(1)
    finally:
        poller.cancel()
        await http.close()


async def api_load(
    ports: list[int], rate: float, figures: Figures, measuring: asyncio.Event, done: asyncio.Event
) -> None:
    """``rate`` requests a second on a fixed schedule, round-robin over the paths and the web processes.

    Each request takes a free connection of the web process (a new one when all are
    busy), so a slow answer never delays the next request's start.
    """
    if rate <= 0:
        return
    targets = itertools.cycle([(port, path) for path in API_PATHS for port in ports])
    addresses = itertools.cycle([client_address(2, k) for k in range(API_CLIENTS)])
    pending: set[asyncio.Task] = set()
    idle: dict[tuple[int, str], list[Http]] = {}

    async def one(port: int, path: str) -> None:
        key = (port, next(addresses))
        http = idle[key].pop() if idle.get(key) else Http(*key)
        began = time.perf_counter()
        status = await http.get(path)
        idle.setdefault(key, []).append(http)
        if measuring.is_set():
            figures.statuses[status] = figures.statuses.get(status, 0) + 1
            if status == 200:
                figures.api.append((time.perf_counter() - began) * 1000)
            else:
                figures.api_errors += 1

    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not done.is_set():
        port, path = next(targets)
        task = asyncio.create_task(one(port, path))
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    await asyncio.gather(*pending, return_exceptions=True)
    for connections in idle.values():
        for http in connections:
            await http.close()


async def measure(ports: list[int], pages: int, rate: float, warmup: float, seconds: float) -> Figures:
    figures = Figures()
    measuring, done = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(page(i, ports[i % len(ports)], figures, measuring, done, delay=i * 5.0 / max(pages, 1)))
        for i in range(pages)
    ]
    tasks.append(asyncio.create_task(api_load(ports, rate, figures, measuring, done)))
    await asyncio.sleep(warmup)
    measuring.set()
    await asyncio.sleep(seconds)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return figures


def report(mode: str, label: str, figures: Figures, seconds: float, baseline: Figures | None = None) -> dict:
    api50, api95 = figures.percentiles(figures.api)
    pr50, pr95 = figures.percentiles(figures.prices)
    h50, h95 = figures.percentiles(figures.health)
    kinds = ", ".join(f"{k} {v / seconds:.0f}/s" for k, v in sorted(figures.received.items()))
    line = (
        f"{mode} {label}: API {len(figures.api) / seconds:.1f} req/s ({figures.api_errors} failed: "
        f"{ {k: v for k, v in figures.statuses.items() if k != 200} }) p50 {api50:.0f} ms, "
        f"p95 {api95:.0f} ms; prices lateness p50 {pr50:.0f} ms, p95 {pr95:.0f} ms; "
        f"{f'health polls p50 {h50:.0f} ms, p95 {h95:.0f} ms' if figures.health else 'no health polls'}; "
        f"received {kinds} "
        f"({figures.bytes_received / seconds / 1e6:.2f} MB/s); reconnects {figures.disconnects}"
    )
    print(line, flush=True)
    if baseline is not None:
        b_api50, b_api95 = baseline.percentiles(baseline.api)
        b_pr50, b_pr95 = baseline.percentiles(baseline.prices)
        print(
            f"{mode} ratio to the idle baseline: API p50 x{api50 / b_api50:.1f}, p95 x{api95 / b_api95:.1f}; "
            f"prices p50 x{pr50 / b_pr50:.1f}, p95 x{pr95 / b_pr95:.1f}",
            flush=True,
        )
        print(
            f"{mode} goals: API p95 {api95:.0f} ms (goal <= {GOALS['api_p95']:.0f}): "
            f"{'met' if api95 <= GOALS['api_p95'] else 'NOT met'}; prices p95 {pr95:.0f} ms "
            f"(goal <= {GOALS['prices_p95']:.0f}): {'met' if pr95 <= GOALS['prices_p95'] else 'NOT met'}",
            flush=True,
        )
    return {"api_p50": api50, "api_p95": api95, "prices_p50": pr50, "prices_p95": pr95}


def run_mode(mode: str, args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"pairs-load-{mode}-"))
    system = System(mode, workdir)
    try:
        system.start()
        system.wait_ready()
        baseline = asyncio.run(measure(system.ports, 1, 2.0, warmup=3, seconds=args.baseline_seconds))
        report(mode, "baseline (1 page, 2 req/s)", baseline, args.baseline_seconds)
        loaded = asyncio.run(measure(system.ports, args.pages, args.rate, warmup=args.warmup, seconds=args.seconds))
        report(mode, f"{args.pages} pages + {args.rate:g} req/s", loaded, args.seconds, baseline)
    finally:
        system.stop()
        if args.keep:
            print(f"{mode}: logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "distributed", "both"], default="both")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="API requests a second")
    parser.add_argument("--seconds", type=float, default=40.0, help="measuring window under load")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before measuring")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a stopped run still stops the system it started
    modes = ["embedded", "distributed"] if args.mode == "both" else [args.mode]
    if "distributed" in modes and shutil.which("redis-server") is None:
        print("distributed mode skipped: it needs redis-server (apt-get install redis-server)")
        modes.remove("distributed")
    for mode in modes:
        run_mode(mode, args)


if __name__ == "__main__":
    main()
