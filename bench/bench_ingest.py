"""Ingestion benchmark: end-to-end stored ticks per second against a same-run baseline.

Both runs read the same blast of aggTrades from the offline exchange (a separate
process, on loopback) and store them in a fresh SQLite file of the same table
shape (same indexes, WAL). The baseline is the bare minimum: a plain
``websockets`` client, ``orjson`` and ``sqlite3.executemany`` in batches of 1,000.
The pairs run is the real feed: client, gap tracker, rolling buffers, batched
writer thread, Django connection, symbol totals.

A soak phase then streams at a realistic rate and samples the process RSS.

    python bench/bench_ingest.py [--count 200000] [--soak 60] [--soak-rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import websockets
from common import ROOT, django_on_fresh_database, remove

from tests.processes import free_port

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


async def pairs_feed(ws_url: str, rest_url: str, count: int) -> float:
    from ingestion.services import Feed

    feed = Feed(symbols=SYMBOLS, ws_url=ws_url, rest_url=rest_url)
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

    # asgiref's worker thread still holds a connection to the previous run's
    # database; the soak must read its own (fresh) one.
    await sync_to_async(connections.close_all)()

    feed = Feed(symbols=SYMBOLS, ws_url=ws_url, rest_url=rest_url)
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
    parser.add_argument("--soak", type=float, default=60.0, help="seconds of the RSS soak (0: skip)")
    parser.add_argument("--soak-rate", type=float, default=2000.0, help="trades per second in the soak")
    args = parser.parse_args()

    workdir = django_on_fresh_database("ingest")
    from django.conf import settings
    from django.db import connection

    connection.close()
    template = workdir / "template.sqlite3"
    shutil.copy(template, workdir / "baseline.sqlite3")
    shutil.copy(template, workdir / "pairs.sqlite3")
    settings.DATABASES["default"]["NAME"] = str(workdir / "pairs.sqlite3")

    print(f"ingestion: {args.count:,} aggTrades over {len(SYMBOLS)} symbols, offline exchange in its own process")
    try:
        exchange = Exchange("--blast", "--count", str(args.count), "--seed", "1")
        try:
            base = asyncio.run(baseline(exchange.ws_url, workdir / "baseline.sqlite3", args.count))
        finally:
            exchange.close()
        exchange = Exchange("--blast", "--count", str(args.count), "--seed", "1")
        try:
            ours = asyncio.run(pairs_feed(exchange.ws_url, exchange.rest_url, args.count))
        finally:
            exchange.close()
        print(f"  baseline (websockets + orjson + sqlite3 executemany): {base:>9,.0f} ticks/s")
        print(f"  pairs feed (end to end, stored):                      {ours:>9,.0f} ticks/s")
        print(f"  ratio pairs / baseline:                               {ours / base:>9.2f}")
        if args.soak > 0:
            # A database of its own: the blast above ran the exchange's ids far
            # ahead of its clock, and a new exchange would start below them.
            shutil.copy(template, workdir / "soak.sqlite3")
            connection.close()
            settings.DATABASES["default"]["NAME"] = str(workdir / "soak.sqlite3")
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
