"""Dashboard benchmark: tick-to-browser latency of live prices, and one snapshot to 100 pages.

Starts the embedded system on the offline exchange (``runpairs --simulate``) in its
own process with a fresh database, then measures with plain websocket clients:
- ``prices`` latency: arrival time minus the trade time of the newest tick it
  carries (same machine clock), p50/p95;
- fan-out: 100 pages connected to one pair; for each new snapshot, the time from
  its computation (``computed_at``) until the last of the 100 has it.

    python bench/bench_dashboard.py [--seconds 20] [--clients 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import orjson
import websockets
from common import ROOT

from tests.processes import free_port


def start_system(workdir: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3", "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runpairs", "--simulate", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/", timeout=1) as r:
                if orjson.loads(r.read())["feed"]["connected"]:
                    return proc, port
        except OSError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the system did not come up")


async def prices_latency(port: int, seconds: float) -> np.ndarray:
    latencies = []
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/pairs/1/", max_size=2**24, origin=f"http://127.0.0.1:{port}"
    ) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            message = orjson.loads(await ws.recv())
            if message["type"] == "prices":
                latencies.append(time.time() * 1000 - message["t"])
    return np.array(latencies)


async def fan_out(port: int, clients: int, snapshots: int) -> np.ndarray:
    arrivals: dict[int, list[float]] = {}
    computed: dict[int, int] = {}

    async def page() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/pairs/1/", max_size=2**24, origin=f"http://127.0.0.1:{port}"
        ) as ws:
            # The snapshot sent on connect is old news: only pushes of new ones count.
            first = orjson.loads(await ws.recv())
            await ready.wait()
            while not done.is_set():
                try:
                    message = orjson.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                if message["type"] == "snapshot" and message["as_of"] != first["as_of"] and started.is_set():
                    arrivals.setdefault(message["as_of"], []).append(time.time() * 1000)
                    computed[message["as_of"]] = message["computed_at"]

    ready, started, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(page()) for _ in range(clients)]
    await asyncio.sleep(2)  # all connected and past their first messages
    ready.set()
    started.set()
    await asyncio.sleep(snapshots + 1.5)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    complete = [max(t) - computed[k] for k, t in arrivals.items() if len(t) == clients]
    return np.array(complete)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pairs-dashboard-") as workdir:
        proc, port = start_system(workdir)
        try:
            latency = asyncio.run(prices_latency(port, args.seconds))
            p50, p95 = np.percentile(latency, [50, 95])
            rate = len(latency) / args.seconds
            print(
                f"prices: {len(latency)} messages in {args.seconds:.0f}s ({rate:.1f}/s); tick -> browser "
                f"p50 {p50:.0f} ms, p95 {p95:.0f} ms (goal: p95 < 250 ms, 2-10 messages a second)"
            )
            spread = asyncio.run(fan_out(port, args.clients, snapshots=30))
            if len(spread):
                print(
                    f"fan-out: {len(spread)} snapshots each pushed to {args.clients} pages: "
                    f"computed -> last page has it p50 {np.median(spread):.0f} ms, "
                    f"p95 {np.percentile(spread, 95):.0f} ms, max {spread.max():.0f} ms "
                    "(goal: within 1,000 ms)"
                )
            else:
                print("fan-out: no snapshot reached every page")
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
