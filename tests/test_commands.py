"""The long-running commands as a user runs them: real processes, loopback only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.processes import ROOT, fetch_one, free_port, get_json, port_open, spawn, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def env(database_url) -> dict[str, str]:
    """A fresh database of its own (on the suite's backend), migrated."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def test_runpairs_simulate_serves_a_connected_feed_and_stops_cleanly(env, tmp_path):
    """What `make demo` starts: health connected, symbol counts rising, clean SIGTERM."""
    port = free_port()
    proc = spawn(["runpairs", "--simulate", "--port", str(port), "--sim-rate", "200"], env, tmp_path / "runpairs.log")
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_until(
            lambda: (h := get_json(f"{base}/api/health/"))["feed"]["connected"] and h, 30, "a connected feed"
        )
        assert health["mode"] == "embedded"
        first = wait_until(lambda: {s["symbol"]: s["ticks"] for s in get_json(f"{base}/api/symbols/")} or None, 10, "ticks")
        time.sleep(1.5)
        second = {s["symbol"]: s["ticks"] for s in get_json(f"{base}/api/symbols/")}
        assert set(second) == {"BTCUSDT", "ETHUSDT"}
        assert all(second[s] > first.get(s, 0) for s in second), (first, second)
        assert get_json(f"{base}/api/health/")["status"] == "ok"
        types = asyncio.run(websocket_messages(port, seconds=2.0))
        assert types[0] == "snapshot"  # the first message is the snapshot
        assert 4 <= types.count("prices") <= 25  # live prices: 2-10 a second while ticks flow
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    log = (tmp_path / "runpairs.log").read_text()
    assert code == 0, log
    assert "Traceback" not in log, log


async def websocket_messages(port: int, seconds: float) -> list[str]:
    import websockets

    types = []
    url = f"ws://127.0.0.1:{port}/ws/pairs/1/"
    async with websockets.connect(url, origin=f"http://127.0.0.1:{port}", max_size=2**24) as ws:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                types.append(json.loads(await asyncio.wait_for(ws.recv(), left))["type"])
            except TimeoutError:
                break
    return types


def test_ingest_binance_flushes_every_received_tick_on_sigterm(env, tmp_path):
    port = free_port()
    sim = spawn(["simulate_binance", "--port", str(port), "--rate", "2000", "--seed", "3"], env, tmp_path / "sim.log")
    try:
        wait_until(lambda: port_open(port), 20, "the exchange")
        feed_env = {
            **env,
            "BINANCE_WS_URL": f"ws://127.0.0.1:{port}/market",
            "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
            # A long flush interval: at SIGTERM there is surely a pending batch.
            "INGEST_FLUSH_INTERVAL": "5",
            "INGEST_BATCH_SIZE": "1000000",
        }
        ingest = spawn(["ingest_binance"], feed_env, tmp_path / "ingest.log")

        def received() -> int:
            row = fetch_one(env["DATABASE_URL"], "SELECT ticks_received FROM ingestion_feedstatus")
            return row and row[0] > 2000 and row[0]

        wait_until(received, 30, "ticks received")
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(20) == 0, (tmp_path / "ingest.log").read_text()
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(20)
    received_total, stored, duplicates, pending = fetch_one(
        env["DATABASE_URL"], "SELECT ticks_received, ticks_stored, duplicates, pending FROM ingestion_feedstatus"
    )
    (rows,) = fetch_one(env["DATABASE_URL"], "SELECT COUNT(*) FROM ingestion_tick")
    assert pending == 0
    assert rows == stored == received_total - duplicates
    assert "flushing pending ticks" in (tmp_path / "ingest.log").read_text()


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--symbols", "BTCUSDT,not a symbol"], "symbol"),
    (["--name", "x" * 51], "--name must be 1 to 50 characters"),
    (["--symbols", "BTCUSDT,FOOUSDT,LUNAUSDT", "--max-seconds", "1"],
     r"FOOUSDT is not a symbol of Binance USD-M futures; LUNAUSDT is not trading on the exchange \(status SETTLING\)"),
])  # fmt: skip
def test_ingest_binance_refuses_bad_arguments_before_it_starts(args, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("ingest_binance", *args)
