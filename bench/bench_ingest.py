"""Ingestion benchmark: end-to-end stored ticks per second against a same-run baseline.

Every run reads the same blast of aggTrades from the offline exchange (a separate
process, on loopback) and stores them in a fresh SQLite file of the same table
shape (same indexes, WAL). The baseline is the bare minimum: a plain
``websockets`` client, ``orjson`` and ``sqlite3.executemany`` in batches of 1,000.

The pairs figure is the system as ``make run`` runs it: ``manage.py runpairs``
(web server, feed and periodic tasks in one process) started on a fresh database
with the default pair BTCUSDT/ETHUSDT active, so the resampling and the snapshot
cycle run during the burst; ``BINANCE_WS_URL``/``BINANCE_REST_URL`` point it at
the offline exchange. Its rate is the ticks stored (the symbols' totals, committed
with the ticks, polled from this process) over the time from the first trade
(its exchange time stamp: the same machine clock) to the last one stored. Once
the resampling has caught up, the bars it stored are checked against a rebuild
from all stored ticks (``analytics.bars.build_bars``), and every trade must be
stored exactly once. The feed alone (``ingestion.services.Feed`` in this process:
client, gap tracker, rolling buffers, batched writer thread, Django connection,
symbol totals; no web server, no periodic tasks) is measured too.

A soak phase then streams at a realistic rate and samples the feed's RSS.

    python bench/bench_ingest.py [--count 200000] [--runs 1] [--soak 60] [--soak-rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import orjson
import websockets
from common import ROOT, django_on_fresh_database, remove

from tests.processes import free_port, get_json, spawn, stop, wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


class Exchange:
    """The offline exchange in its own process."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "simulate_binance", "--port", str(self.port), *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the offline exchange did not start") from None
                time.sleep(0.1)
        self.ws_url = f"ws://127.0.0.1:{self.port}/market"
        self.rest_url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def baseline(ws_url: str, db_path: Path, count: int) -> float:
    """The bare minimum: receive, parse, executemany in batches of 1,000."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    sql = (
        "INSERT INTO ingestion_tick (timestamp, symbol, price, quantity, trade_id) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (symbol, trade_id) DO NOTHING"
    )
    url = f"{ws_url}/stream?streams=" + "/".join(f"{s.lower()}@aggTrade" for s in SYMBOLS)
    batch: list[tuple] = []
    received = 0
    async with websockets.connect(url, max_size=2**22, compression=None) as ws:
        started = time.perf_counter()
        while received < count:
            data = orjson.loads(await ws.recv(decode=False))["data"]
            batch.append((data["T"], data["s"], float(data["p"]), float(data["q"]), data["a"]))
            received += 1
            if len(batch) >= 1000:
                with db:
                    db.executemany(sql, batch)
                batch.clear()
        if batch:
            with db:
                db.executemany(sql, batch)
        elapsed = time.perf_counter() - started
    stored = db.execute("SELECT COUNT(*) FROM ingestion_tick").fetchone()[0]
    db.close()
    assert stored == count, f"baseline stored {stored} of {count}"
    return count / elapsed


class Embedded:
    """``manage.py runpairs`` on ``db_path``, fed by ``exchange``: the system as ``make run`` runs it."""

    def __init__(self, exchange: Exchange, db_path: Path, log: Path) -> None:
        self.db_path = db_path
        self.log = log
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env |= {
            "DATABASE_URL": f"sqlite:///{db_path}",
            "BINANCE_WS_URL": exchange.ws_url,
            "BINANCE_REST_URL": exchange.rest_url,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # No scheduled screen: its klines would add 5m bars the check against the ticks does not expect.
            "SCREENER_SCHEDULED": "0",
        }
        self.port = free_port()
        self.proc = spawn(["runpairs", "--host", "127.0.0.1", "--port", str(self.port)], env, log)
        self._poll: sqlite3.Connection | None = None

    def query(self, sql: str) -> tuple:
        with closing(sqlite3.connect(self.db_path, timeout=30)) as db:
            return db.execute(sql).fetchone()

    def stored(self) -> int:
        """The ticks stored, read on one open connection (cheap: polled every few ms during the burst)."""
        if self._poll is None:
            self._poll = sqlite3.connect(self.db_path, timeout=30)
        return self._poll.execute("SELECT COALESCE(SUM(tick_count), 0) FROM ingestion_symbol").fetchone()[0]

    def resampled_through(self) -> int:
        """The id of the newest tick in the bars."""
        self.alive()
        row = self.query("SELECT value FROM analytics_watermark WHERE name = 'resample.tick_id'")
        return row[0] if row else 0

    def alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text()[-2000:]
            raise RuntimeError(f"runpairs exited ({self.proc.returncode}):\n{tail}")

    def close(self) -> None:
        if self._poll is not None:
            self._poll.close()
        stop([self.proc])


def pairs_embedded(exchange: Exchange, db_path: Path, count: int, log: Path) -> float:
    """Ticks stored per second by ``runpairs`` (web server, feed, periodic tasks, the default pair active)."""
    system = Embedded(exchange, db_path, log)
    try:
        # The blast starts when the feed subscribes; stored ticks are polled from here.
        stored = 0
        deadline = time.monotonic() + 120
        while stored < count:
            # Every 10 ms: a busier poll would take a share of the CPU from the system measured
            # (at most 10 ms late on the end of a burst of seconds, against the system).
            time.sleep(0.01)
            stored = system.stored()
            if not stored:
                system.alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("runpairs stored nothing in 120 s")
        done = time.time()
        (first_trade,) = system.query("SELECT MIN(timestamp) FROM ingestion_tick")
        elapsed = done - first_trade / 1000
        # Every trade once; the bars, once the resampling caught up, as a rebuild from all ticks makes them.
        rows, distinct = system.query("SELECT COUNT(*), COUNT(DISTINCT symbol || ':' || trade_id) FROM ingestion_tick")
        assert rows == distinct == count, f"runpairs stored {rows} rows ({distinct} distinct) of {count}"
        (newest,) = system.query("SELECT MAX(id) FROM ingestion_tick")
        wait_until(lambda: system.resampled_through() >= newest, 60, "the resampling to catch up")
        bars_check(db_path)
        # The web server answered all along (its health as a page reads it).
        get_json(f"http://127.0.0.1:{system.port}/api/health/")
    finally:
        system.close()
    return count / elapsed


def bars_check(db_path: Path) -> None:
    """The stored bars equal ``build_bars`` of all stored ticks, field for field."""
    from analytics.bars import INTERVALS, build_bars

    with closing(sqlite3.connect(db_path)) as db:
        ticks = db.execute("SELECT timestamp, symbol, price, quantity, trade_id FROM ingestion_tick").fetchall()
        for interval in INTERVALS:
            stored = db.execute(
                "SELECT symbol, interval, open_time, open, high, low, close, volume, trades FROM analytics_bar "
                "WHERE interval = ? ORDER BY symbol, open_time",
                [interval],
            ).fetchall()
            rebuilt = [tuple(bar) for bar in build_bars(ticks, interval)]
            assert stored == rebuilt, f"{interval} bars differ from a rebuild from the stored ticks"


async def pairs_feed(ws_url: str, rest_url: str, count: int) -> float:
    from asgiref.sync import sync_to_async
    from django.db import connections

    from ingestion.services import Feed
    from pairs_project.common.collector import collector_settle

    await sync_to_async(connections.close_all)()  # a connection to an earlier run's database

    feed = Feed(symbols=SYMBOLS, ws_url=ws_url, rest_url=rest_url)
    collector_settle()  # as ``ingest_binance`` does
    task = asyncio.create_task(feed.run())
    while not feed.state.connected:
        await asyncio.sleep(0.001)
    started = time.perf_counter()
    while feed.writer.stored < count:
        await asyncio.sleep(0.002)
        if task.done():
            task.result()
    elapsed = time.perf_counter() - started
    feed.stop()
    await task
    return count / elapsed


async def soak(ws_url: str, rest_url: str, seconds: float, warmup: float = 20.0) -> tuple[float, float, float, int]:
    from asgiref.sync import sync_to_async
    from django.db import connections

    from ingestion.services import Feed
    from pairs_project.common.collector import collector_settle

    # asgiref's worker thread still holds a connection to the previous run's
    # database; the soak must read its own (fresh) one.
    await sync_to_async(connections.close_all)()

    feed = Feed(symbols=SYMBOLS, ws_url=ws_url, rest_url=rest_url)
    collector_settle()  # as ``ingest_binance`` does
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(warmup)
    start_rss = peak = rss_mib()
    start_stored = feed.writer.stored
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(5)
        peak = max(peak, rss_mib())
    end_rss = rss_mib()
    stored = feed.writer.stored - start_stored
    feed.stop()
    await task
    return start_rss, end_rss, peak, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000, help="aggTrades per throughput run")
    parser.add_argument("--runs", type=int, default=1, help="throughput runs (each with its own baseline)")
    parser.add_argument("--no-feed-alone", action="store_true", help="skip the feed-alone figure")
    parser.add_argument("--soak", type=float, default=60.0, help="seconds of the RSS soak (0: skip)")
    parser.add_argument("--soak-rate", type=float, default=2000.0, help="trades per second in the soak")
    args = parser.parse_args()

    workdir = django_on_fresh_database("ingest")
    from django.conf import settings
    from django.db import connection

    connection.close()
    template = workdir / "template.sqlite3"

    def fresh(name: str) -> Path:
        path = workdir / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copy(template, path)
        return path

    def blast() -> Exchange:
        return Exchange("--blast", "--count", str(args.count), "--seed", "1")

    print(f"ingestion: {args.count:,} aggTrades over {len(SYMBOLS)} symbols, offline exchange in its own process")
    ratios = []
    try:
        for run in range(1, args.runs + 1):
            if args.runs > 1:
                print(f" run {run} of {args.runs}")
            exchange = blast()
            try:
                base = asyncio.run(baseline(exchange.ws_url, fresh("baseline"), args.count))
            finally:
                exchange.close()
            exchange = blast()
            try:
                ours = pairs_embedded(exchange, fresh("embedded"), args.count, workdir / "runpairs.log")
            finally:
                exchange.close()
            alone = None
            if not args.no_feed_alone:
                connection.close()
                settings.DATABASES["default"]["NAME"] = str(fresh("feed"))
                exchange = blast()
                try:
                    alone = asyncio.run(pairs_feed(exchange.ws_url, exchange.rest_url, args.count))
                finally:
                    exchange.close()
            ratios.append(ours / base)
            print(f"  {'baseline (websockets + orjson + sqlite3 executemany):':<64}{base:>9,.0f} ticks/s")
            print(f"  {'pairs, embedded (runpairs: web server, feed, periodic tasks):':<64}{ours:>9,.0f} ticks/s")
            print(f"  {'ratio pairs / baseline:':<64}{ours / base:>9.2f}")
            if alone is not None:
                print(f"  {'the feed alone (Feed in this process, nothing else):':<64}{alone:>9,.0f} ticks/s")
                print(f"  {'ratio feed alone / baseline:':<64}{alone / base:>9.2f}")
        if args.runs:
            print("  every trade stored once; the bars equal a rebuild from the stored ticks")
        if args.runs > 1:
            ratios.sort()
            print(
                f"  ratio pairs / baseline over {args.runs} runs: min {ratios[0]:.2f}, "
                f"median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f}"
            )
        if args.soak > 0:
            # A database of its own: the blast above ran the exchange's ids far
            # ahead of its clock, and a new exchange would start below them.
            connection.close()
            settings.DATABASES["default"]["NAME"] = str(fresh("soak"))
            exchange = Exchange("--rate", str(args.soak_rate), "--seed", "2")
            try:
                start, end, peak, stored = asyncio.run(soak(exchange.ws_url, exchange.rest_url, args.soak))
            finally:
                exchange.close()
            print(
                f"soak: {args.soak:.0f}s at {args.soak_rate:,.0f} trades/s, {stored:,} stored: "
                f"RSS {start:.1f} MiB after warm-up -> {end:.1f} MiB at the end (peak {peak:.1f} MiB, "
                f"ratio end/start {end / start:.3f})"
            )
    finally:
        remove(workdir)


if __name__ == "__main__":
    main()
