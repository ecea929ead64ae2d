"""Storage benchmark: the database a day of BTCUSDT + ETHUSDT makes, and its size under retention.

The flow is the real recording the offline exchange replays
(``ingestion/recordings/binance-usdm-trades-20240808.jsonl.gz``, ~6 minutes of
both legs): its ``@trade`` frames grouped into aggTrades the way Binance groups
them (one taker order at one price: same trade time, price and side), looped
with their recorded timing, quantities and price steps. Every other pass runs
the price path mirrored, so the level stays where it was recorded.

It goes through the real storage path into a fresh, migrated SQLite file:
``ingestion.services.ticks_store`` in the tick writer's 250 ms batches,
``analytics.services.bars_resample`` for the 1s/1m/5m bars, and the snapshot
history of the default pair (BTCUSDT/ETHUSDT, 1 s bars, W = 300): one row per
second. The rows, file size and bytes per tick are measured on ``--hours`` of
flow and scaled linearly to 24 h; the steady state under the default retention
follows from the per-table sizes. Then ``housekeeping`` runs with its clock set
forward, to time the hourly prune.

With ``--postgres URL`` (a server, e.g. ``postgres://postgres@127.0.0.1:5432/postgres``)
the same runs in a throw-away database created there and dropped afterwards, and
sizes are PostgreSQL's (``pg_total_relation_size``, ``pg_database_size``).

    python bench/bench_storage.py [--hours 2] [--postgres URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import heapq
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson
from common import ROOT, django_on_fresh_database, remove

if TYPE_CHECKING:
    from analytics.models import Pair

RECORDING = ROOT / "ingestion" / "recordings" / "binance-usdm-trades-20240808.jsonl.gz"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, a 5-minute boundary
BATCH_MS = 250  # the tick writer's flush interval (INGEST_FLUSH_INTERVAL)
RESAMPLE_MS = 300_000  # see store_flow
REAL_SNAPSHOT_EVERY_MS = 60_000  # see snapshots_record
MIB = 2**20
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Leg:
    """One symbol's recorded aggTrades: offsets from the recording's start (ms), prices, quantities."""

    symbol: str
    offsets: np.ndarray
    prices: np.ndarray
    quantities: np.ndarray
    trades: int  # raw @trade frames before grouping


def legs_from_recording(path: Path = RECORDING) -> tuple[dict[str, Leg], int]:
    """The recording's aggTrades per symbol and the replay cycle in ms (its span + 1 s, like the replay scenario)."""
    frames: dict[str, list[tuple[int, float, float, bool]]] = {s: [] for s in SYMBOLS}
    with gzip.open(path, "rb") as fh:
        for line in fh:
            d = orjson.loads(line)["data"]
            frames[d["s"]].append((int(d["T"]), float(d["p"]), float(d["q"]), bool(d["m"])))
    start = min(rows[0][0] for rows in frames.values())
    end = max(rows[-1][0] for rows in frames.values())
    legs = {}
    for symbol, rows in frames.items():
        groups: list[list] = []
        for t, p, q, m in rows:
            if groups and groups[-1][0] == t and groups[-1][1] == p and groups[-1][3] == m:
                groups[-1][2] += q
            else:
                groups.append([t, p, q, m])
        legs[symbol] = Leg(
            symbol,
            np.array([g[0] - start for g in groups], dtype=np.int64),
            np.array([g[1] for g in groups]),
            np.round([g[2] for g in groups], 3),
            len(rows),
        )
    return legs, end - start + 1000


def leg_ticks(leg: Leg, cycle_ms: int, end_ms: int) -> Iterator[tuple]:
    """The leg looped from T0 to ``end_ms``, ids contiguous; odd passes mirror the price path."""
    from ingestion.binance import Tick
    from ingestion.simulator import symbol_spec

    trade_id = symbol_spec(leg.symbol).first_id
    first, last = leg.prices[0], leg.prices[-1]
    mirrored = np.round(first + last - leg.prices, 2)  # starts where the forward pass ended
    offsets = leg.offsets.tolist()
    qtys = leg.quantities.tolist()
    for k in itertools.count():
        base = T0 + k * cycle_ms
        prices = (mirrored if k % 2 else leg.prices).tolist()
        for off, price, qty in zip(offsets, prices, qtys, strict=True):
            t = base + off
            if t >= end_ms:
                return
            yield Tick(t, leg.symbol, price, qty, trade_id)
            trade_id += 1


def pair_default() -> Pair:
    from analytics.services import pair_upsert

    pair, _ = pair_upsert(symbol_a="BTCUSDT", symbol_b="ETHUSDT")  # the defaults: 1 s bars, W = 300
    return pair


def snapshots_record(pair: Pair, start: int, end: int, template: dict | None) -> tuple[int, int, dict | None]:
    """The snapshot history rows of [start, end): one per second where a leg has a 1 s bar.

    The live system builds a snapshot every second (~14 ms each at W = 300, so a
    simulated day would take 20 minutes). Here one a minute is built by the real
    ``pair_snapshot_build``; the seconds in between record a copy of the latest
    real one with its times moved, which has the same fields and number widths,
    so the same row size. All go through ``snapshot_record``.
    """
    from django.db import transaction

    from analytics.models import Bar
    from analytics.services import pair_snapshot_build, snapshot_record

    grid = sorted(
        set(
            Bar.objects.filter(
                symbol__in=pair.symbols, interval="1s", open_time__gte=start, open_time__lt=end
            ).values_list("open_time", flat=True)
        )
    )
    real = 0
    with transaction.atomic():  # live, each row is its own transaction; the rows are the same
        for second in grid:
            if template is None or second % REAL_SNAPSHOT_EVERY_MS == 0:
                template, _ = pair_snapshot_build(pair=pair, event_time_ms=second + 1000, now=None)
                snapshot = template
                real += 1
            else:
                moved = second - template.as_of
                snapshot = dataclasses.replace(template, as_of=second, computed_at=template.computed_at + moved)
            snapshot_record(snapshot=snapshot)
    return len(grid), real, template


def store_flow(legs: dict[str, Leg], cycle_ms: int, end_ms: int) -> dict[str, float]:
    """Store the flow up to ``end_ms`` as the live system does; return seconds per phase and counts.

    Ticks go in 250 ms batches (the writer's flush interval; at these rates it
    never reaches its 5,000-tick cap). Resampling runs once per 5 minutes of flow
    instead of every second: each run rebuilds every bar its new ticks touch
    from all their stored ticks, so the rows are the same, and 86,400 runs a day
    that each re-read the current 5-minute bar would dominate the benchmark.
    """
    from analytics.services import bars_resample
    from ingestion.services import ticks_store

    pair = pair_default()
    stats = {"store_s": 0.0, "resample_s": 0.0, "snapshots_s": 0.0, "batches": 0, "snapshots": 0, "real_snapshots": 0}
    template = None
    next_resample = T0 + RESAMPLE_MS

    def resample_and_record(start: int, until: int) -> None:
        nonlocal template
        started = time.perf_counter()
        while bars_resample() == 200_000:  # its max_ticks: more are waiting
            pass
        stats["resample_s"] += time.perf_counter() - started
        started = time.perf_counter()
        rows, real, template = snapshots_record(pair, start, until, template)
        stats["snapshots_s"] += time.perf_counter() - started
        stats["snapshots"] += rows
        stats["real_snapshots"] += real

    flow = heapq.merge(*(leg_ticks(leg, cycle_ms, end_ms) for leg in legs.values()))
    for window, group in itertools.groupby(flow, key=lambda tick: tick.timestamp // BATCH_MS):
        while window * BATCH_MS >= next_resample:
            resample_and_record(next_resample - RESAMPLE_MS, next_resample)
            next_resample += RESAMPLE_MS
        batch = list(group)
        started = time.perf_counter()
        ticks_store(batch)
        stats["store_s"] += time.perf_counter() - started
        stats["batches"] += 1
    resample_and_record(next_resample - RESAMPLE_MS, end_ms)
    return stats


def django_on_fresh_postgres(url: str) -> str:
    """Point Django at a new, migrated database on the PostgreSQL server at ``url``; return its name."""
    import psycopg

    name = f"pairs_bench_storage_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairs_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return name


def drop_postgres(url: str, name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def checkpoint() -> None:
    """Move SQLite's WAL into the file and truncate it (as housekeeping does)."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def database_bytes() -> tuple[int, int, int]:
    """The database's bytes: main file, WAL, and free pages inside the file (SQLite); PostgreSQL's database size."""
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor != "sqlite":
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0], 0, 0
        cursor.execute("PRAGMA freelist_count")
        free = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_size")
        free *= cursor.fetchone()[0]
    db = Path(settings.DATABASES["default"]["NAME"])
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0, free


def table_sizes() -> dict[str, dict[str, int]]:
    """Bytes of each table with its indexes, of the indexes alone, and its rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT m.tbl_name, SUM(s.pgsize), SUM(CASE WHEN m.type = 'index' THEN s.pgsize ELSE 0 END) "
                "FROM dbstat s JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name"
            )
        else:
            cursor.execute(
                "SELECT relname, pg_total_relation_size(oid), pg_indexes_size(oid) FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            )
        sizes = {name: {"total": total, "indexes": indexes} for name, total, indexes in cursor.fetchall()}
        for name, entry in sizes.items():
            cursor.execute(f'SELECT COUNT(*) FROM "{name}"')
            entry["rows"] = cursor.fetchone()[0]
    return sizes


def interval_rows() -> dict[str, int]:
    from django.db.models import Count

    from analytics.models import Bar

    return dict(Bar.objects.values_list("interval").annotate(n=Count("id")).values_list("interval", "n"))


def prune_batches(now: int, batch: int) -> int:
    """How many delete batches ``housekeeping(now=now)`` will run (it deletes per symbol, then per kind)."""
    from django.conf import settings

    from analytics.models import Bar, Snapshot
    from ingestion.models import Tick

    ticks_before = now - settings.TICK_RETENTION_SECONDS * 1000
    bars_before = now - settings.BAR_1S_RETENTION_SECONDS * 1000
    counts = [Tick.objects.filter(symbol=s, timestamp__lt=ticks_before).count() for s in SYMBOLS]
    counts.append(Bar.objects.filter(interval="1s", open_time__lt=bars_before).count())
    counts.append(Snapshot.objects.filter(as_of__lt=now - settings.SNAPSHOT_RETENTION_SECONDS * 1000).count())
    return sum(-(-n // batch) for n in counts)


def prune(hours: float) -> None:
    """Housekeeping with its clock set forward: the hourly prune of ticks, then that of 1 s bars and snapshots."""
    from django.conf import settings

    from analytics.models import Bar, Snapshot
    from analytics.services import housekeeping
    from ingestion.models import Symbol, Tick

    batch = 5000
    clocks = [
        ("the first hour of ticks past retention", settings.TICK_RETENTION_SECONDS * 1000 + HOUR_MS),
        (
            "the first hour of 1s bars and snapshots past retention, and every tick by then",
            settings.BAR_1S_RETENTION_SECONDS * 1000 + HOUR_MS,
        ),
    ]
    for what, ahead in clocks:
        batches = prune_batches(T0 + ahead, batch)
        started = time.perf_counter()
        result = housekeeping(batch=batch, now=T0 + ahead)
        elapsed = time.perf_counter() - started
        print(
            f"  clock {ahead / HOUR_MS:,.0f} h after the first tick ({what}): "
            f"{result['ticks_deleted']:,} ticks, {result['bars_deleted']:,} 1s bars, "
            f"{result['snapshots_deleted']:,} snapshots deleted in {batches} batches of {batch:,}: "
            f"{elapsed:.2f} s ({elapsed / max(batches, 1) * 1e3:.0f} ms a batch)"
        )
    # What is left is inside retention, and the per-symbol totals still match.
    now = T0 + clocks[-1][1]
    assert not Tick.objects.filter(timestamp__lt=now - settings.TICK_RETENTION_SECONDS * 1000).exists()
    for symbol in Symbol.objects.all():
        assert symbol.tick_count == Tick.objects.filter(symbol=symbol.name).count(), symbol.name
    assert not Bar.objects.filter(interval="1s", open_time__lt=now - settings.BAR_1S_RETENTION_SECONDS * 1000).exists()
    assert not Snapshot.objects.filter(as_of__lt=now - settings.SNAPSHOT_RETENTION_SECONDS * 1000).exists()
    if hours > 1:
        assert Bar.objects.filter(interval="1s").exists() and Snapshot.objects.exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0, help="hours of flow to store (scaled linearly to 24 h)")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL server instead of SQLite")
    parser.add_argument("--no-prune", action="store_true", help="skip the housekeeping timing")
    args = parser.parse_args()

    legs, cycle_ms = legs_from_recording()
    span_ms = int(args.hours * HOUR_MS)
    scale = DAY_MS / span_ms
    if args.postgres:
        workdir, pg_name = None, django_on_fresh_postgres(args.postgres)
    else:
        workdir, pg_name = django_on_fresh_database("storage"), None
    from django.conf import settings
    from django.db import connection

    vendor = "PostgreSQL" if pg_name else "SQLite"
    print(
        f"storage: {args.hours:g} h of BTCUSDT + ETHUSDT flow through the real storage path ({vendor}), "
        f"scaled x{scale:g} to 24 h"
    )
    for symbol, leg in legs.items():
        seconds = cycle_ms / 1000
        print(
            f"  {symbol}: {len(leg.offsets) / seconds:.1f} aggTrades/s ({leg.trades / seconds:.1f} trades/s grouped by "
            f"time, price and side), {np.median(leg.quantities):g} median / {leg.quantities.mean():.3f} mean quantity, "
            f"price {leg.prices.min():,.2f}-{leg.prices.max():,.2f}"
        )
    print(
        f"  rates and values from {RECORDING.name} ({cycle_ms / 1000:.0f} s of Binance USD-M trades, "
        "2024-08-08 23:54-00:00 UTC), looped"
    )
    try:
        started = time.perf_counter()
        stats = store_flow(legs, cycle_ms, T0 + span_ms)
        run_s = time.perf_counter() - started
        wal_before = database_bytes()[1]
        checkpoint()
        main_bytes, wal_bytes, _ = database_bytes()
        sizes = table_sizes()
        bars_by_interval = interval_rows()
        ticks = sizes["ingestion_tick"]["rows"]
        print(
            f"  stored in {run_s:.0f} s: {stats['batches']:,} batches of ticks {stats['store_s']:.0f} s, "
            f"resampling {stats['resample_s']:.0f} s, snapshot rows {stats['snapshots_s']:.0f} s "
            f"({stats['real_snapshots']:,} of {stats['snapshots']:,} built by pair_snapshot_build, the rest copies)"
        )
        print(f"  {'table':<20}{'rows':>12}{'MiB':>9}{'indexes':>9}{'rows/24 h':>13}{'MiB/24 h':>10}")
        shown = ("ingestion_tick", "analytics_bar", "analytics_snapshot")
        for name in shown:
            entry = sizes[name]
            print(
                f"  {name:<20}{entry['rows']:>12,}{entry['total'] / MIB:>9.1f}{entry['indexes'] / MIB:>9.1f}"
                f"{entry['rows'] * scale:>13,.0f}{entry['total'] * scale / MIB:>10.1f}"
            )
        total = main_bytes + wal_bytes
        flow = sum(sizes[name]["total"] for name in shown)
        fixed = total - flow  # other tables, the schema (PostgreSQL: its catalog): the same any day
        print(f"  {'everything else':<20}{'':>12}{fixed / MIB:>9.1f}{'':>22}{fixed / MIB:>10.1f}")
        print("  bars by interval: " + ", ".join(f"{k} {bars_by_interval.get(k, 0):,}" for k in ("1s", "1m", "5m")))
        if pg_name:
            where = f"database {main_bytes / MIB:.1f} MiB (pg_database_size)"
        else:
            where = (
                f"database file {main_bytes / MIB:.1f} MiB + WAL {wal_bytes / MIB:.1f} MiB after checkpoint "
                f"(WAL {wal_before / MIB:.1f} MiB before)"
            )
        day = fixed + flow * scale
        print(f"{where} = {total / MIB:.1f} MiB for {args.hours:g} h; {day / MIB:,.0f} MiB for 24 h (linear)")
        tick_bytes = sizes["ingestion_tick"]["total"]
        tick_indexes = sizes["ingestion_tick"]["indexes"]
        print(
            f"bytes per tick: {tick_bytes / ticks:.1f} in the tick table with its indexes "
            f"({(tick_bytes - tick_indexes) / ticks:.1f} table, {tick_indexes / ticks:.1f} indexes); "
            f"{flow / ticks:.1f} with the bars and snapshots"
        )

        # Steady state: each kind kept for its retention, plus the hour until the
        # next prune. 1s and 1m/5m bars share a table: split by rows (same row shape).
        bar_bytes = sizes["analytics_bar"]["total"]
        share_1s = bars_by_interval.get("1s", 0) / sizes["analytics_bar"]["rows"]
        per_day = {
            "ticks": tick_bytes * scale,
            "1s bars": bar_bytes * share_1s * scale,
            "snapshots": sizes["analytics_snapshot"]["total"] * scale,
            "1m/5m bars": bar_bytes * (1 - share_1s) * scale,
        }
        kept_days = {
            "ticks": (settings.TICK_RETENTION_SECONDS * 1000 + HOUR_MS) / DAY_MS,
            "1s bars": (settings.BAR_1S_RETENTION_SECONDS * 1000 + HOUR_MS) / DAY_MS,
            "snapshots": (settings.SNAPSHOT_RETENTION_SECONDS * 1000 + HOUR_MS) / DAY_MS,
            "1m/5m bars": 365.0,
        }
        steady = fixed + sum(per_day[k] * kept_days[k] for k in per_day)
        parts = ", ".join(f"{k} {per_day[k] * kept_days[k] / MIB:,.0f}" for k in per_day)
        print(
            f"steady state under the default retention (ticks 48 h, 1s bars and snapshots 7 d, each +1 h until "
            f"the hourly prune; 1m/5m bars kept, here a year of them): {steady / MIB:,.0f} MiB ({parts} MiB)"
        )
        if not args.no_prune:
            print(f"housekeeping ({vendor}, its clock set forward):")
            prune(args.hours)
            checkpoint()
            main_after, wal_after, free = database_bytes()
            if pg_name:
                print(f"  database after: {main_after / MIB:.1f} MiB (dead rows stay until autovacuum reuses them)")
            else:
                print(
                    f"  file after: {main_after / MIB:.1f} MiB + WAL {wal_after / MIB:.1f} MiB, of which "
                    f"{free / MIB:.1f} MiB free pages that new rows reuse (the file never shrinks without VACUUM)"
                )
    finally:
        connection.close()
        if pg_name:
            drop_postgres(args.postgres, pg_name)
        else:
            remove(workdir)


if __name__ == "__main__":
    main()
