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

from tests.processes import (
    ROOT,
    fetch_all,
    fetch_one,
    free_port,
    get_json,
    kill_group,
    port_open,
    spawn,
    stop,
    wait_until,
)

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

        def counts() -> dict[str, int]:
            return {s["symbol"]: s["ticks"] for s in get_json(f"{base}/api/symbols/")}

        first = wait_until(counts, 30, "ticks")  # a busy machine opens the market late
        time.sleep(1.5)
        second = counts()
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


def sim_get(port: int, path: str) -> dict:
    return get_json(f"http://127.0.0.1:{port}{path}")


def test_a_sigkill_in_the_middle_of_a_slow_backfill_loses_no_trade(env, tmp_path):
    """kill -9 of ingestion while a multi-page REST backfill runs; the restart fills the whole hole.

    The live trades above the hole are stored before the backfill brings the ones
    in it, so a restart that resumed after the highest stored id would lose the
    hole for good. Every id the exchange made must be stored exactly once.
    """
    port = free_port()
    sim = spawn(["simulate_binance", "--port", str(port), "--rate", "2000", "--seed", "5"], env, tmp_path / "sim.log")
    feed_env = {
        **env,
        "BINANCE_WS_URL": f"ws://127.0.0.1:{port}/market",
        "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
    }
    db = env["DATABASE_URL"]
    ingest = None
    try:
        wait_until(lambda: port_open(port), 20, "the exchange")
        ingest = spawn(["ingest_binance"], feed_env, tmp_path / "ingest-1.log")
        received = "SELECT ticks_received FROM ingestion_feedstatus"
        wait_until(lambda: (row := fetch_one(db, received)) and row[0] > 4000, 60, "ticks")
        # Ten seconds only REST can serve (about 10 pages per symbol), then every REST answer takes half a second.
        sim_get(port, "/sim/fault?kind=refuse&seconds=10")
        time.sleep(10)
        sim_get(port, "/sim/fault?kind=slow&seconds=120&delay=0.5")

        def backfilling() -> bool:
            (open_gaps,) = fetch_one(db, "SELECT COUNT(*) FROM ingestion_gap WHERE status = 'open'")
            (backfilled,) = fetch_one(db, "SELECT trades_backfilled FROM ingestion_feedstatus")
            return open_gaps > 0 and backfilled >= 2000

        wait_until(backfilling, 60, "a backfill under way")
        kill_group(ingest)
        (left_open,) = fetch_one(db, "SELECT COUNT(*) FROM ingestion_gap WHERE status = 'open'")
        assert left_open >= 1  # the hole outlived the process
        ingest = spawn(["ingest_binance"], feed_env, tmp_path / "ingest-2.log")
        open_gaps = "SELECT COUNT(*) FROM ingestion_gap WHERE status = 'open'"
        wait_until(lambda: fetch_one(db, open_gaps)[0] == 0, 120, "the gaps filled")
        sim_get(port, "/sim/pause")
        stats = sim_get(port, "/sim/stats")
        last = {s: stats[s]["last_id"] for s in ("BTCUSDT", "ETHUSDT")}

        def caught_up() -> bool:
            rows = dict(fetch_all(db, "SELECT symbol, MAX(trade_id) FROM ingestion_tick GROUP BY symbol"))
            return rows == last

        wait_until(caught_up, 60, "every trade stored")
        stop([ingest])
        ingest = None
    finally:
        if ingest is not None:
            kill_group(ingest)
        stop([sim])
    per_symbol = "SELECT symbol, COUNT(*), COUNT(DISTINCT trade_id), MIN(trade_id), MAX(trade_id) FROM ingestion_tick"
    for symbol, count, distinct, lo, hi in fetch_all(db, f"{per_symbol} GROUP BY symbol"):
        assert count == distinct, f"{symbol}: {count - distinct} duplicates"
        assert count == hi - lo + 1, f"{symbol}: {hi - lo + 1 - count} of {hi - lo + 1} trades lost"
        assert hi == last[symbol]
    statuses = fetch_all(db, "SELECT status, COUNT(*) FROM ingestion_gap GROUP BY status")
    assert dict(statuses).keys() == {"filled"}, statuses
    assert "resuming the backfill" in (tmp_path / "ingest-2.log").read_text()


def test_superuser_puts_one_account_in_every_database_migrating_each_first(tmp_path):
    """`make superuser`: the databases of `make run` and `make demo`, never migrated, each get the account."""
    urls = [f"sqlite:///{tmp_path / name}" for name in ("run.sqlite3", "demo.sqlite3")]
    env = {**os.environ, "DJANGO_SUPERUSER_USERNAME": "trader", "DJANGO_SUPERUSER_PASSWORD": "first secret"}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "manage.py", "superuser", *(f"--database-url={url}" for url in urls)]

    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert first.stdout.count("created admin account 'trader'") == 2, first.stdout
    again = subprocess.run(
        command, cwd=ROOT, env={**env, "DJANGO_SUPERUSER_PASSWORD": "second secret"}, capture_output=True, text=True
    )
    assert again.returncode == 0 and again.stdout.count("updated admin account 'trader'") == 2, again

    check = (
        "from django.contrib.auth import get_user_model as g; u = g().objects.get(username='trader'); "
        "print(u.is_staff, u.is_superuser, u.check_password('second secret'), u.check_password('first secret'))"
    )
    for url in urls:
        shown = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v0", "-c", check],
            cwd=ROOT,
            env={**env, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=True,
        )
        assert shown.stdout.split() == ["True", "True", "True", "False"], url


def test_superuser_without_a_terminal_or_credentials_says_what_to_set(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    for name in ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "manage.py", "superuser"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD" in done.stderr
    assert not (tmp_path / "db.sqlite3").exists()  # nothing half-made left behind
