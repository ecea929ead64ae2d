"""The batched writer and the store it calls."""

from __future__ import annotations

import asyncio

import pytest

from ingestion import services
from ingestion.binance import Tick
from ingestion.models import Symbol
from ingestion.models import Tick as TickRow
from ingestion.services import last_trade_ids, ticks_store
from ingestion.writer import Batch, TickWriter


def make_ticks(symbol: str, first_id: int, n: int, t0: int = 1_700_000_000_000, price: float = 100.0) -> list[Tick]:
    return [Tick(t0 + i * 10, symbol, price + i, 0.5, first_id + i) for i in range(n)]


@pytest.mark.django_db
def test_store_writes_each_trade_once_and_keeps_symbol_totals():
    batch = make_ticks("BTCUSDT", 1000, 5) + make_ticks("ETHUSDT", 7, 3)
    assert ticks_store(batch) == 8
    assert ticks_store(batch[2:]) == 0  # replayed: all duplicates
    assert ticks_store(make_ticks("BTCUSDT", 1004, 3)) == 2  # 1004 seen, 1005-1006 new
    assert TickRow.objects.count() == 10
    btc = Symbol.objects.get(name="BTCUSDT")
    assert btc.tick_count == 7
    assert btc.last_trade_id == 1006
    assert btc.last_price == 102.0  # price of id 1006 (third of its batch)
    assert btc.first_tick_at == 1_700_000_000_000
    assert last_trade_ids(["BTCUSDT", "ETHUSDT", "XRPUSDT"]) == {"BTCUSDT": 1006, "ETHUSDT": 9}


@pytest.mark.django_db
def test_a_batch_of_many_statements_stores_each_trade_once_and_counts_the_new(monkeypatch):
    """SQLite takes a batch a few rows a statement (``SQLITE_INSERT_ROWS``): duplicates anywhere in it count once."""
    monkeypatch.setattr(services, "SQLITE_INSERT_ROWS", 7)
    first = make_ticks("BTCUSDT", 1000, 40)
    assert ticks_store(first[10:25]) == 15
    batch = first + first[30:35] + make_ticks("ETHUSDT", 7, 23)  # 15 stored before, 5 twice in the batch
    assert ticks_store(batch) == 25 + 23
    assert TickRow.objects.count() == 40 + 23
    assert list(TickRow.objects.filter(symbol="BTCUSDT").order_by("id").values_list(*Tick._fields)) == [
        tuple(t) for t in first[10:25] + first[:10] + first[25:]
    ]
    assert Symbol.objects.get(name="BTCUSDT").tick_count == 40


@pytest.mark.django_db
def test_a_late_backfilled_tick_does_not_replace_the_last_price():
    ticks_store(make_ticks("BTCUSDT", 10, 1, t0=2_000, price=50.0))
    ticks_store([Tick(1_000, "BTCUSDT", 40.0, 1.0, 5)])
    btc = Symbol.objects.get(name="BTCUSDT")
    assert (btc.last_price, btc.last_trade_id, btc.first_tick_at, btc.last_tick_at) == (50.0, 10, 1_000, 2_000)


async def test_writer_flushes_on_time_and_on_size():
    batches: list[list[Tick]] = []
    writer = TickWriter(lambda b: batches.append(b.ticks) or len(b.ticks), flush_interval=0.05, max_batch=100)
    task = asyncio.create_task(writer.run())
    writer.put_many(make_ticks("BTCUSDT", 0, 3))
    await asyncio.sleep(0.15)
    assert [len(b) for b in batches] == [3]  # by time
    for tick in make_ticks("BTCUSDT", 3, 250):
        writer.put(tick)
    await asyncio.sleep(0.02)
    assert sum(len(b) for b in batches) >= 103  # a full batch went without waiting for the timer
    await writer.close()
    task.cancel()
    assert sum(len(b) for b in batches) == 253
    assert writer.stored == 253


async def test_writer_keeps_a_failed_batch_and_flushes_everything_on_close():
    calls = {"n": 0}
    stored: list[Tick] = []

    def flaky_store(batch: Batch) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database is locked")
        stored.extend(batch.ticks)
        return len(batch.ticks)

    writer = TickWriter(flaky_store, flush_interval=10, max_batch=10_000)
    writer.put_many(make_ticks("ETHUSDT", 0, 5))
    with pytest.raises(RuntimeError):
        await writer.flush()
    writer.put_many(make_ticks("ETHUSDT", 5, 5))
    await writer.close()  # what SIGTERM does: nothing pending is lost
    assert [t.trade_id for t in stored] == list(range(10))
    assert writer.pending == 0
