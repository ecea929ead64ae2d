"""Running the project's commands as real processes, on loopback, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
