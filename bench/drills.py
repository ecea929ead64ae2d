"""Fault drills: distributed mode kept running through the faults real services have.

Starts the distributed system on loopback with its own Redis server (so restarting
it disturbs nothing else), a SQLite database of its own, the offline exchange,
ingestion split by symbol over two processes, a Celery worker with beat and
daphne, plus a real browser on the pair page. Beside it, embedded mode trades the
same seed with no faults: the reference for every number and alert. Then, one
after the other:

1. Redis restarted (5 s down);
2. the Celery worker killed (SIGKILL) and started again 5 s later;
3. daphne restarted (the page must reconnect by itself);
4. SIGTERM to one ingestion process, started again 5 s later;
5. the exchange answering 429 twice, then 418 twice, to the backfill after a drop;
6. SIGKILL of one ingestion process in the middle of a slow backfill, started
   again 3 s later (the gap it left open must be resumed and filled).

At the end: ticks generated vs stored (ids are contiguous per symbol, so a hole is
a lost trade), alerts expected (embedded) vs fired, every bar's snapshot, and the
numbers compared with the reference.

    python bench/drills.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT

from tests.processes import (
    PAIR,
    by_second,
    fetch_all,
    fetch_one,
    free_port,
    kill_group,
    market_args,
    port_open,
    spawn,
    stop,
    wait_until,
)

NUMBERS = ("hedge_ratio", "spread", "zscore", "correlation", "adf_pvalue", "coint_pvalue", "half_life", "quality_score")


def one(database_url: str, sql: str):
    return fetch_one(database_url, sql)[0]


class Drill:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.base |= {"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
        self.redis_port, self.exchange_port = free_port(), free_port()
        self.web_port, self.reference_port = free_port(), free_port()
        self.db = f"sqlite:///{workdir / 'distributed.sqlite3'}"
        self.reference_db = f"sqlite:///{workdir / 'embedded.sqlite3'}"
        self.env = {
            **self.base,
            "DATABASE_URL": self.db,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "BINANCE_WS_URL": f"ws://127.0.0.1:{self.exchange_port}/market",
            "BINANCE_REST_URL": f"http://127.0.0.1:{self.exchange_port}",
        }
        self.reference_env = {**self.base, "DATABASE_URL": self.reference_db}
        self.procs: dict[str, subprocess.Popen] = {}
        self.results: list[tuple[str, str]] = []
        self.starts: dict[str, int] = {}

    # -- processes -------------------------------------------------------------

    def start(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = self.workdir / f"{name}-{self.starts[name]}.log"
        if name == "redis":
            self.procs[name] = subprocess.Popen(
                [shutil.which("redis-server"), "--port", str(self.redis_port), "--save", "", "--appendonly", "no"],
                stdout=log.open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            wait_until(lambda: port_open(self.redis_port), 10, "redis")
            return
        commands = {
            "reference": (["runpairs", "--simulate", "--port", str(self.reference_port),
                           *market_args("sim-")], None, self.reference_env),
            "exchange": (["simulate_binance", "--port", str(self.exchange_port), *market_args()], None, self.env),
            "ingest-btc": (["ingest_binance", "--symbols", "BTCUSDT", "--name", "btc"], None, self.env),
            "ingest-eth": (["ingest_binance", "--symbols", "ETHUSDT", "--name", "eth"], None, self.env),
            "worker": (["-A", "pairs_project", "worker", "-B", "--concurrency=2", "--loglevel=WARNING",
                        f"--schedule={self.workdir / 'beat'}"], "celery", self.env),
            "web": (
                ["-b", "127.0.0.1", "-p", str(self.web_port), "pairs_project.asgi:application"],
                "daphne",
                self.env,
            ),
        }  # fmt: skip
        args, module, env = commands[name]
        self.procs[name] = spawn(args, env, log, module=module)

    def stop(self, name: str) -> int:
        return stop([self.procs.pop(name)])[0]

    def kill(self, name: str) -> int:
        return kill_group(self.procs.pop(name))

    def prepare(self) -> None:
        for env in (self.env, self.reference_env):
            for args in (["migrate", "-v0"], PAIR):
                subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)

    # -- what the system shows ------------------------------------------------------

    def snapshot_rows(self) -> int:
        return one(self.db, "SELECT COUNT(*) FROM analytics_snapshot")

    def ticks(self) -> int:
        return one(self.db, "SELECT COUNT(*) FROM ingestion_tick")

    def wait_for_new_snapshot(self, after: int, timeout: float = 60) -> float:
        began = time.monotonic()
        wait_until(lambda: self.snapshot_rows() > after, timeout, "a new snapshot")
        return time.monotonic() - began

    def sim(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.exchange_port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def feed(self, column: str) -> int:
        return one(self.db, f"SELECT COALESCE(SUM({column}), 0) FROM ingestion_feedstatus")

    def note(self, drill: str, result: str) -> None:
        print(f"  {drill}: {result}", flush=True)
        self.results.append((drill, result))


def run(seconds_between: float) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="pairs-drills-"))
    d = Drill(workdir)
    d.prepare()
    from playwright.sync_api import sync_playwright

    d.start("redis")
    for name in ("exchange", "reference", "ingest-btc", "ingest-eth", "worker", "web"):
        d.start(name)
    print(f"distributed system up (logs in {workdir}); waiting for the pair to warm up", flush=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--headless=new"])
        page = browser.new_page()
        wait_until(lambda: port_open(d.web_port), 30, "daphne")
        page.goto(f"http://127.0.0.1:{d.web_port}/pairs/1/")
        page.wait_for_function("window.pairsPage && window.pairsPage.connected", timeout=30_000)
        wait_until(lambda: one(d.db, "SELECT COUNT(*) FROM analytics_snapshot WHERE ready") > 3, 90, "a ready pair")

        def page_snapshots() -> int:
            return page.evaluate("window.pairsPage.messages.snapshot")

        # 1. Redis restarted.
        time.sleep(seconds_between)
        ticks_before = d.ticks()
        d.stop("redis")
        time.sleep(5)
        ticks_during = d.ticks() - ticks_before
        d.start("redis")
        back = d.wait_for_new_snapshot(d.snapshot_rows())
        on_page = page_snapshots()
        page.wait_for_function(f"window.pairsPage.messages.snapshot > {on_page}", timeout=30_000)
        alive = all(d.procs[n].poll() is None for n in ("ingest-btc", "ingest-eth", "worker", "web"))
        d.note(
            "Redis restarted (5 s down)",
            f"{ticks_during} ticks stored while it was down; snapshots again {back:.1f} s after it was back; "
            f"the page got new snapshots; every process kept running: {alive}",
        )

        # 2. Celery worker killed and restarted.
        time.sleep(seconds_between)
        d.kill("worker")
        killed_at = d.snapshot_rows()
        time.sleep(5)
        d.start("worker")
        back = d.wait_for_new_snapshot(d.snapshot_rows())
        time.sleep(5)  # the missed bars are caught up on over the next cycles
        d.note(
            "Celery worker SIGKILL, restarted 5 s later",
            f"snapshots again {back:.1f} s after the restart; {d.snapshot_rows() - killed_at} rows since the kill "
            "5 s later (the missed bars caught up)",
        )

        # 3. daphne restarted.
        time.sleep(seconds_between)
        reconnects = page.evaluate("window.pairsPage.reconnects")
        code = d.stop("web")
        time.sleep(3)
        d.start("web")
        began = time.monotonic()
        page.wait_for_function(
            f"window.pairsPage.connected && window.pairsPage.reconnects > {reconnects}", timeout=60_000
        )
        reconnected = time.monotonic() - began
        on_page = page_snapshots()
        page.wait_for_function(f"window.pairsPage.messages.snapshot > {on_page}", timeout=30_000)
        d.note(
            "daphne restarted (3 s down)",
            f"exit code {code}; the page reconnected by itself {reconnected:.1f} s after daphne was back, "
            "and live snapshots resumed",
        )

        # 4. SIGTERM to one ingestion process.
        time.sleep(seconds_between)
        code = d.stop("ingest-eth")
        flushed = "flushing pending ticks" in (workdir / "ingest-eth-1.log").read_text()
        pending = one(d.db, "SELECT pending FROM ingestion_feedstatus WHERE name = 'eth'")
        gaps_before = d.feed("gaps_filled")
        time.sleep(5)
        d.start("ingest-eth")
        wait_until(lambda: d.feed("gaps_filled") > gaps_before, 60, "the gap filled")
        d.note(
            "SIGTERM to ingest-eth, restarted 5 s later",
            f"exit code {code}, pending batch flushed: {flushed} ({pending} left pending); the 5 s gap was "
            "backfilled from REST",
        )

        # 5. The exchange answers 429, then 418, to the backfill.
        time.sleep(seconds_between)
        limited = d.feed("rate_limited")
        began = time.monotonic()
        d.sim("/sim/fault?kind=rate_limit&count=2&status=429&retry_after=1")
        d.sim("/sim/fault?kind=drop")
        wait_until(lambda: d.feed("rate_limited") >= limited + 2, 60, "two 429s")
        d.sim("/sim/fault?kind=rate_limit&count=2&status=418&retry_after=2")
        d.sim("/sim/fault?kind=drop")
        wait_until(lambda: d.feed("rate_limited") >= limited + 4, 60, "two 418s")
        wait_until(lambda: d.feed("gaps_detected") <= d.feed("gaps_filled") + d.feed("gaps_unfilled"), 60, "backfills")
        backoffs = sum(log.read_text().count("backing off") for log in workdir.glob("ingest-*.log"))
        d.note(
            "429 x2 (Retry-After 1 s), then 418 x2 (Retry-After 2 s), to the backfills after two drops",
            f"{d.feed('rate_limited') - limited} rate-limited answers, {backoffs} waits of the asked length logged; "
            f"every gap filled ({d.feed('gaps_unfilled')} unfilled) {time.monotonic() - began:.1f} s after the first",
        )

        # 6. kill -9 of an ingestion process while its backfill is under way.
        time.sleep(seconds_between)
        d.sim("/sim/fault?kind=slow&seconds=30&delay=2")
        d.sim("/sim/fault?kind=refuse&seconds=3")
        wait_until(lambda: one(d.db, "SELECT COUNT(*) FROM ingestion_gap WHERE status = 'open' AND feed = 'btc'"), 60,
                   "a gap open on ingest-btc")  # fmt: skip
        began = time.monotonic()
        d.kill("ingest-btc")
        left_open = one(d.db, "SELECT COUNT(*) FROM ingestion_gap WHERE status = 'open' AND feed = 'btc'")
        time.sleep(3)
        d.start("ingest-btc")
        open_gaps = "SELECT COUNT(*) FROM ingestion_gap WHERE status = 'open'"
        wait_until(lambda: one(d.db, open_gaps) == 0, 120, "gaps filled")
        resumed = "resuming the backfill" in (workdir / f"ingest-btc-{d.starts['ingest-btc']}.log").read_text()
        d.note(
            "SIGKILL to ingest-btc in the middle of a slow backfill (each REST answer 2 s), restarted 3 s later",
            f"{left_open} gap(s) left open by the killed process, resumed by the restart: {resumed}; every gap filled "
            f"{time.monotonic() - began:.1f} s after the kill",
        )
        time.sleep(seconds_between)
        page.screenshot(path=str(workdir / "page.png"))
        browser.close()

    for name in list(d.procs):
        if name not in ("redis", "exchange"):
            d.stop(name)
    d.stop("exchange")
    d.stop("redis")
    return report(d)


def report(d: Drill) -> int:
    print("\nafterwards", flush=True)
    lost = duplicated = 0
    for symbol, count, first, last, distinct in fetch_all(
        d.db,
        "SELECT symbol, COUNT(*), MIN(trade_id), MAX(trade_id), COUNT(DISTINCT trade_id) FROM ingestion_tick "
        "GROUP BY symbol ORDER BY symbol",
    ):
        generated = last - first + 1
        lost += generated - count
        duplicated += count - distinct
        print(f"  {symbol}: {generated} trades generated from the first stored id to the last, {count} stored")
    print(f"  ticks lost: {lost}, duplicated: {duplicated}")
    gaps = dict(fetch_all(d.db, "SELECT status, COUNT(*) FROM ingestion_gap GROUP BY status"))
    print(f"  gaps: {gaps.get('filled', 0)} filled, {gaps.get('open', 0)} open, {gaps.get('unavailable', 0)} lost")

    fired_snaps, fired = by_second(d.db)
    expected_snaps, expected = by_second(d.reference_db)
    last = min(max(fired_snaps), max(expected_snaps))
    first = min(fired_snaps)
    missing = [s for s in range(first, last + 1) if s not in fired_snaps]
    worst = 0.0
    for second in sorted(fired_snaps.keys() & expected_snaps.keys()):
        for name in NUMBERS:
            a, b = fired_snaps[second][name], expected_snaps[second][name]
            if a is not None and b is not None:
                worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
            elif (a is None) != (b is None):
                worst = float("inf")
    fired = [a for a in fired if a[0] <= last]
    expected = [a for a in expected if a[0] <= last]
    print(f"  snapshots: seconds {first}..{last}, {len(missing)} bars without one {missing[:10]}")
    print(f"  numbers vs embedded mode on the same seed: max relative difference {worst:.3g}")
    print(f"  alerts expected (embedded, no faults): {len(expected)}, fired (distributed, faults): {len(fired)}")
    print(f"    expected {expected}\n    fired    {fired}")
    ok = lost == 0 and duplicated == 0 and not missing and worst <= 1e-9 and fired == expected
    ok = ok and not gaps.get("open") and not gaps.get("unavailable")
    print("\nresult:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--between", type=float, default=8.0, help="seconds of calm between drills")
    parser.add_argument("--runs", type=int, default=1, help="run the drills this many times in a row")
    args = parser.parse_args()
    for tool in ("redis-server", "chromium"):
        if shutil.which(tool) is None:
            sys.exit(f"the drills need {tool} (apt-get install {'redis-server' if tool == 'redis-server' else tool})")
    results = []
    for n in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"\n== run {n} of {args.runs}", flush=True)
        results.append(run(args.between))
    if args.runs > 1:
        print(f"\n{results.count(0)} of {args.runs} runs passed", flush=True)
    sys.exit(max(results))


if __name__ == "__main__":
    main()
