"""Running the project's commands as real processes, on loopback, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The market the end-to-end runs trade (``simulate_binance`` options; ``runpairs``
#: takes them as ``--sim-*``): a 5 s half-life spread and a 4-sigma shock every 40 s.
MARKET = {"rate": "100", "seed": "11", "half-life": "5", "spread-sigma": "5", "shock-every": "40", "shock-size": "4"}
#: The default pair on a short window, so it is ready after 30 s, and confirms a relationship
#: over 3 bars: on 60 bars Engle-Granger has little power, and these runs test the plumbing
#: from ticks to an alert, not the statistics (tests/analytics, tests/alerts do).
PAIR = ["add_pair", "BTCUSDT", "ETHUSDT", "--window", "60", "--min-bars", "30", "--confirm-bars", "3", "--no-warmup"]


#: Debian's chromium as the browser tests drive it (Playwright's own browser builds cannot be downloaded).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The chromium to drive; skips the test when there is none, fails instead when REQUIRE_BROWSER=1."""
    import pytest

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); REQUIRE_BROWSER=1 makes this a failure")
    return path


#: Where the browser tests save their screenshots (ignored by git).
ARTIFACTS = ROOT / "artifacts"

#: Visible elements that cut their own text short (an ellipsis or a hidden overflow), with the text lost.
CLIPPED = """() => [...document.querySelectorAll("body *")].filter(e => {
  if (!e.textContent.trim() || e.closest("canvas, svg, [hidden]") || !e.offsetParent) return false;
  if (e.getBoundingClientRect().width <= 1) return false;  // a screen reader's text, hidden by design
  const style = getComputedStyle(e);
  if (style.overflowX !== "hidden" && style.textOverflow !== "ellipsis") return false;
  return e.scrollWidth > e.clientWidth + 1;
}).map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${e.textContent.trim().slice(0, 80)}`)"""


def at_both_widths(page, name: str) -> None:
    """The page at 1,440 px and at a phone's 390 px: no sideways scroll and no words cut short at either,
    a screenshot of each (``artifacts/<name>-1440.png``, ``<name>-390.png``); the desk's width again after."""
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)  # charts and tables settle into the new width
        page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar over the page's head otherwise
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, (name, width, scroll)
        clipped = page.evaluate(CLIPPED)
        assert clipped == [], (name, width, clipped)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def market_args(prefix: str = "") -> list[str]:
    return [f"--{prefix}{name}={value}" for name, value in MARKET.items()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def spawn(args: list[str], env: dict[str, str], log: Path, *, module: str | None = None) -> subprocess.Popen:
    """``manage.py ARGS`` (or ``python -m MODULE ARGS``) in the project, its output in ``log``.

    Each in a process group of its own, so ``kill_group`` takes its children too
    (a Celery worker's pool outlives a SIGKILL of the worker alone).
    """
    program = ["-m", module] if module else ["manage.py"]
    return subprocess.Popen(
        [sys.executable, *program, *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> int:
    """SIGKILL the process and every process of its group; return its exit code."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait(20)


def stop(processes: list[subprocess.Popen], timeout: float = 20) -> list[int]:
    """SIGTERM each process, wait for all; kill what outlives ``timeout``. Return the exit codes."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in processes:
        try:
            codes.append(proc.wait(timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


def fetch_all(database_url: str, query: str) -> list[tuple]:
    """Rows from the database of the processes under test (read directly, as they wrote it)."""
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return db.execute(query).fetchall()
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(query).fetchall()


def fetch_one(database_url: str, query: str) -> tuple | None:
    rows = fetch_all(database_url, query)
    return rows[0] if rows else None


def by_second(database_url: str) -> tuple[dict[int, dict], list[tuple[int, str, str]]]:
    """A run's ready snapshots and its alerts (second, kind, direction), keyed by seconds since its market opened."""
    (first_tick,) = fetch_one(database_url, "SELECT MIN(timestamp) FROM ingestion_tick")
    opened = first_tick // 1000 * 1000
    snapshots = {}
    for as_of, data in fetch_all(database_url, "SELECT as_of, data FROM analytics_snapshot WHERE ready"):
        snapshots[(as_of - opened) // 1000] = json.loads(data) if isinstance(data, str) else data
    rows = fetch_all(database_url, "SELECT bar_time, kind, direction FROM alerts_alert ORDER BY bar_time")
    return snapshots, [((bar_time - opened) // 1000, kind, direction) for bar_time, kind, direction in rows]
