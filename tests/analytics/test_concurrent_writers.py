"""Resampling while several ingestion processes store ticks at once (PostgreSQL).

Ingestion can be split by symbol across processes. The resampler reads "the ticks
above the watermark" by id, so no writer may commit ids below ones another writer
has already committed: those rows would stay under the watermark for good.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from analytics import services
from analytics.models import Bar
from ingestion.binance import Tick
from ingestion.services import ticks_store
from tests.support import T0

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL only: SQLite has one writer at a time, so ids always commit in order",
    ),
]


def make_ticks(symbol: str, n: int) -> list[Tick]:
    return [Tick(T0 + i * 10, symbol, 100.0 + i, 0.5, 1_000 + i) for i in range(n)]


def test_a_tick_committed_after_a_later_writer_and_a_resample_still_reaches_its_bar():
    """Writer A inserts first but commits late; writer B (another symbol) stores meanwhile.

    The resampler runs while A's transaction is still open. Without serialised tick
    inserts, B's higher ids commit first, the watermark moves past them, and A's
    lower ids, committed afterwards, are never resampled.
    """
    slow, fast = make_ticks("BTCUSDT", 200), make_ticks("ETHUSDT", 200)
    a_inserted, resampled = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            with transaction.atomic():
                ticks_store(slow)
                a_inserted.set()
                resampled.wait(10)  # a slow commit: the resampler runs before it
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def writer_b() -> None:
        try:
            a_inserted.wait(10)
            ticks_store(fast)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    a, b = threading.Thread(target=writer_a), threading.Thread(target=writer_b)
    a.start()
    b.start()
    assert a_inserted.wait(10)
    b.join(1.0)  # B has committed by now, unless it waits for A
    services.bars_resample()
    resampled.set()
    a.join(10)
    b.join(10)
    assert not a.is_alive() and not b.is_alive()
    assert errors == []
    services.bars_resample()
    trades = dict(
        Bar.objects.filter(interval="1s").values("symbol").annotate(n=Sum("trades")).values_list("symbol", "n")
    )
    assert trades == {"BTCUSDT": len(slow), "ETHUSDT": len(fast)}
