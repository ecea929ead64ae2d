"""Distributed mode end to end: real processes over a real Redis, checked against embedded mode.

The offline exchange feeds two ingestion processes (split by symbol); a Celery
worker with beat turns their ticks into bars, snapshots and an alert; a websocket
client connected to daphne receives it. Embedded mode (``runpairs --simulate``)
runs the same market seed side by side, and both must compute the same numbers.

Skips with a reason when no Redis answers; fails instead when REQUIRE_REDIS=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.processes import PAIR, ROOT, by_second, free_port, market_args, port_open, spawn, stop, wait_until

pytestmark = pytest.mark.slow

#: The numbers a snapshot shows.
NUMBERS = (
    "n", "price_a", "price_b", "hedge_ratio", "intercept", "spread", "spread_mean", "spread_std", "zscore",
    "correlation", "price_correlation", "adf_stat", "adf_pvalue", "adf_lag", "coint_pvalue", "half_life",
    "quality_score",
)  # fmt: skip


@pytest.fixture
def redis_db(redis_url):
    """A Redis database of its own (the tests' number minus one), empty before and after."""
    parts = urlsplit(redis_url)
    url = urlunsplit(parts._replace(path=f"/{int(parts.path.strip('/') or 0) - 1}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def prepared(url: str, env: dict[str, str]) -> dict[str, str]:
    env = {**env, "DATABASE_URL": url}
    for args in (["migrate", "-v0"], PAIR):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    return env


async def messages_until_alert(url: str, origin: str, timeout: float) -> list[dict]:
    import websockets

    received: list[dict] = []
    deadline = time.monotonic() + timeout
    async with websockets.connect(url, origin=origin, max_size=2**24) as ws:
        while not any(m["type"] == "alert" for m in received):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
            except TimeoutError:
                break
    return received


def test_ticks_become_an_alert_on_a_websocket_across_processes_with_embedded_modes_numbers(
    redis_db, databases, tmp_path
):
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    base["PYTHONUNBUFFERED"] = "1"

    embedded_db, distributed_db = databases("embedded"), databases("distributed")
    embedded_env = prepared(embedded_db, base)
    distributed_env = prepared(distributed_db, {**base, "REDIS_URL": redis_db})
    exchange, web, page = free_port(), free_port(), free_port()
    distributed_env |= {
        "BINANCE_WS_URL": f"ws://127.0.0.1:{exchange}/market",
        "BINANCE_REST_URL": f"http://127.0.0.1:{exchange}",
    }
    log = tmp_path.joinpath
    processes = {
        "embedded": spawn(
            ["runpairs", "--simulate", "--port", str(page), *market_args("sim-")],
            embedded_env,
            log("embedded.log"),
        ),
        "exchange": spawn(
            ["simulate_binance", "--port", str(exchange), *market_args()], distributed_env, log("exchange.log")
        ),
        "ingest-btc": spawn(
            ["ingest_binance", "--symbols", "BTCUSDT", "--name", "btc"], distributed_env, log("ingest-btc.log")
        ),
        "ingest-eth": spawn(
            ["ingest_binance", "--symbols", "ETHUSDT", "--name", "eth"], distributed_env, log("ingest-eth.log")
        ),
        "worker": spawn(
            ["-A", "pairs_project", "worker", "-B", "--concurrency=2", "--loglevel=INFO", f"--schedule={log('beat')}"],
            distributed_env,
            log("worker.log"),
            module="celery",
        ),
        "web": spawn(
            ["-b", "127.0.0.1", "-p", str(web), "pairs_project.asgi:application"],
            distributed_env,
            log("web.log"),
            module="daphne",
        ),
    }
    try:
        wait_until(lambda: port_open(web), 30, "daphne")
        received = asyncio.run(
            messages_until_alert(f"ws://127.0.0.1:{web}/ws/pairs/1/", f"http://127.0.0.1:{web}", timeout=150)
        )
        types = [m["type"] for m in received]
        assert types and types[0] == "snapshot", types[:5]
        assert "alert" in types, f"no alert in {len(received)} messages: {sorted(set(types))}"
        prices = [m for m in received if m["type"] == "prices"]
        # Each leg comes from its own ingestion process: the pushes carry both, through the shared buffers.
        assert len(prices) > 20 and all(m["price_a"] > 0 and m["price_b"] > 0 for m in prices)
        alert = next(m for m in received if m["type"] == "alert")
        assert alert["kind"] == "entry" and abs(alert["signal_zscore"]) > 2

        # Both modes run on: let each record the seconds past the alert, then stop them all.
        def both_recorded_past(second: int) -> bool:
            return all(max(by_second(db)[0], default=-1) >= second for db in (embedded_db, distributed_db))

        alert_second = by_second(distributed_db)[1][0][0]
        wait_until(lambda: both_recorded_past(alert_second + 5), 60, "both modes past the alert")
    finally:
        # Ingestion first, as in production (the exchange does not go away), then the rest.
        codes = {}
        for group in (["ingest-btc", "ingest-eth"], ["worker", "web", "embedded", "exchange"]):
            codes |= dict(zip(group, stop([processes[name] for name in group]), strict=True))
    logs = {name: log(f"{name}.log").read_text() for name in processes}
    for name, text in logs.items():
        assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"
    assert all(code == 0 for code in codes.values()), codes

    embedded, embedded_alerts = by_second(embedded_db)
    distributed, distributed_alerts = by_second(distributed_db)
    common = sorted(embedded.keys() & distributed.keys())
    # Every bar from the end of warm-up on has its snapshot, in both modes.
    assert common == list(range(common[0], common[-1] + 1)) and len(common) >= 15, (
        sorted(embedded),
        sorted(distributed),
    )
    for second in common:
        for name in NUMBERS:
            assert distributed[second][name] == pytest.approx(embedded[second][name], rel=1e-9, abs=1e-12), (
                second, name,
            )  # fmt: skip
    last = common[-1]
    assert [a for a in distributed_alerts if a[0] <= last] == [a for a in embedded_alerts if a[0] <= last]
