"""Reads of bars, pairs and snapshots."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from .bars import INTERVALS, LegCloses
from .models import Bar, Pair, Snapshot, Watermark

logger = logging.getLogger(__name__)

SNAPSHOT_KEY = "pairs:snapshot:{pair_id}"
SERIES_KEY = "pairs:series:{pair_id}"
#: The series rebuilt from a recorded snapshot (``services.pair_current``), per bar.
RECORDED_SERIES_KEY = "pairs:series-recorded:{pair_id}:{as_of}"

#: When the newest finished resampling run started (ms): every tick stored before it is in the bars.
RESAMPLED_AT_WATERMARK = "resample.ran_at"
#: When the newest snapshot cycle ran (ms).
SNAPSHOTS_RAN_AT_WATERMARK = "snapshots.ran_at"
#: The periodic tasks run every second; not for this long is a problem (ms).
TASKS_LATE_AFTER_MS = 10_000
#: A snapshot is late when its newest bar ended more than a bar and this long ago (ms).
SNAPSHOT_LATE_AFTER_MS = 10_000


def pairs_active() -> list[Pair]:
    return list(Pair.objects.filter(active=True).order_by("id"))


def pair_symbols_active() -> set[str]:
    symbols: set[str] = set()
    for a, b in Pair.objects.filter(active=True).values_list("symbol_a", "symbol_b"):
        symbols.update((a, b))
    return symbols


def pairs_legs_active() -> list[tuple[int, str, str]]:
    """(id, symbol_a, symbol_b) of every active pair."""
    return list(Pair.objects.filter(active=True).values_list("id", "symbol_a", "symbol_b"))


def bars_for_symbol(
    *, symbol: str, interval: str, start: int | None = None, end: int | None = None, limit: int | None = None
) -> QuerySet[Bar]:
    """Bars oldest first; with only ``limit``, the newest ``limit`` of them."""
    qs = Bar.objects.filter(symbol=symbol, interval=interval)
    if start is not None:
        qs = qs.filter(open_time__gte=start)
    if end is not None:
        qs = qs.filter(open_time__lte=end)
    if limit is not None and start is None:
        newest = list(qs.order_by("-open_time")[:limit])
        newest.reverse()
        return newest  # type: ignore[return-value]
    qs = qs.order_by("open_time")
    return qs[:limit] if limit is not None else qs


def closes_window(*, symbol: str, interval: str, as_of: int, limit: int) -> LegCloses:
    """The newest ``limit`` closes with open time <= ``as_of``, oldest first, as columns.

    ``Bar.objects.filter(symbol=, interval=, open_time__lte=as_of).order_by("-open_time")
    .values_list("open_time", "close")[:limit]``, in SQL: the snapshot cycle reads a
    window per symbol each second, and the ORM's row-by-row iteration cost as much as
    the statistics.
    """
    qn = connection.ops.quote_name
    newest = _closes(
        f"{qn('open_time')} <= %s ORDER BY {qn('open_time')} DESC LIMIT %s", [symbol, interval, as_of, limit]
    )
    return LegCloses(np.ascontiguousarray(newest.open_time[::-1]), np.ascontiguousarray(newest.close[::-1]))


def bar_first_after(*, symbols: tuple[str, ...], interval: str, after: int) -> int | None:
    """The open time of the first bar of any of ``symbols`` after ``after``, or None when there is none yet."""
    first = (
        Bar.objects.filter(symbol__in=symbols, interval=interval, open_time__gt=after)
        .order_by("open_time")
        .values_list("open_time", flat=True)
        .first()
    )
    return int(first) if first is not None else None


def closes_between(*, symbol: str, interval: str, start: int, end: int) -> LegCloses:
    """The closes with open time in ``[start, end)``, oldest first, as columns (read as ``closes_window``)."""
    qn = connection.ops.quote_name
    return _closes(
        f"{qn('open_time')} >= %s AND {qn('open_time')} < %s ORDER BY {qn('open_time')}", [symbol, interval, start, end]
    )


def _closes(where: str, params: list[Any]) -> LegCloses:
    """The (open time, close) columns of the bars of a symbol and interval (the first two ``params``) and ``where``."""
    qn = connection.ops.quote_name
    sql = (
        f"SELECT {qn('open_time')}, {qn('close')} FROM {qn(Bar._meta.db_table)} "
        f"WHERE {qn('symbol')} = %s AND {qn('interval')} = %s AND {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    columns = np.array(rows, dtype=_CLOSE_ROW)
    return LegCloses(np.ascontiguousarray(columns["open_time"]), np.ascontiguousarray(columns["close"]))


_CLOSE_ROW = np.dtype([("open_time", np.int64), ("close", np.float64)])


def cached(key: str) -> Any:
    """A cached value, or None when it is absent or the cache does not answer (it is only a cache)."""
    try:
        return cache.get(key)
    except Exception as exc:
        logger.warning("cache read of %s failed (%s); computing instead", key, exc)
        return None


def snapshot_cached(pair_id: int) -> dict[str, Any] | None:
    return cached(SNAPSHOT_KEY.format(pair_id=pair_id))


def series_cached(pair_id: int) -> dict[str, list] | None:
    return cached(SERIES_KEY.format(pair_id=pair_id))


def snapshot_recorded_latest(pair_id: int) -> dict[str, Any] | None:
    """The newest snapshot in the history (where a cycle resumes when the cache was lost)."""
    return Snapshot.objects.filter(pair_id=pair_id).order_by("-as_of").values_list("data", flat=True).first()


def snapshots_recorded_latest(pair_ids: list[int]) -> dict[int, dict[str, Any] | None]:
    """``snapshot_recorded_latest`` of each pair, in one query (each pair's newest row through the index)."""
    newest = Snapshot.objects.filter(pair_id=OuterRef("pk")).order_by("-as_of").values("data")[:1]
    rows = Pair.objects.filter(pk__in=pair_ids).annotate(newest=Subquery(newest)).values_list("pk", "newest")
    return dict(rows)


def related_run_before(*, pair_id: int, as_of: int) -> int:
    """The ``related_run`` of the pair's snapshot recorded before ``as_of`` (0 with none): the confirmation
    an entry on the snapshot at ``as_of`` needs (docs/analytics.md, "Alert rule")."""
    data = Snapshot.objects.filter(pair_id=pair_id, as_of__lt=as_of).order_by("-as_of").values_list("data", flat=True)
    previous = data.first()
    return int((previous or {}).get("related_run") or 0)


def snapshot_recorded_at(pair_id: int, as_of: int) -> dict[str, Any] | None:
    """The snapshot recorded for the pair's bar ``as_of``, if any."""
    return Snapshot.objects.filter(pair_id=pair_id, as_of=as_of).values_list("data", flat=True).first()


def snapshot_signals(pair_id: int, first: int, last: int) -> dict[int, float | None]:
    """Each recorded bar's signal z between open times ``first`` and ``last``, as recorded when it closed."""
    rows = Snapshot.objects.filter(pair_id=pair_id, as_of__gte=first, as_of__lte=last)
    return dict(rows.values_list("as_of", "signal_zscore"))


def watermark_value(name: str) -> int | None:
    return Watermark.objects.filter(name=name).values_list("value", flat=True).first()


def pipeline_health(*, now: int, distributed: bool) -> dict[str, Any]:
    """Whether bars and snapshots keep up: the periodic tasks' last runs and each active pair's newest snapshot.

    ``problems`` says what is late and, as far as it can tell, why.
    """
    problems = []
    tasks = {
        "resampling": watermark_value(RESAMPLED_AT_WATERMARK),
        "snapshots": watermark_value(SNAPSHOTS_RAN_AT_WATERMARK),
    }
    late = {name: now - at for name, at in tasks.items() if at is not None and now - at > TASKS_LATE_AFTER_MS}
    if late:
        worst = max(late.values()) / 1000
        who = "no Celery worker with beat has run" if distributed else "nothing has run"
        hint = " (is `celery -A pairs_project worker -B` running?)" if distributed else ""
        problems.append(f"{who} the periodic {' and '.join(late)} for {worst:.0f}s{hint}")
    pairs = []
    for pair in pairs_active():
        snapshot = snapshot_cached(pair.id) or snapshot_recorded_latest(pair.id) or {}
        as_of = snapshot.get("as_of")
        interval_ms = INTERVALS[pair.interval]
        lag = now - (as_of + interval_ms) if as_of is not None else None
        pairs.append({"pair": pair.id, "as_of": as_of, "lag_ms": lag})
        if lag is not None and lag > interval_ms + SNAPSHOT_LATE_AFTER_MS:
            problems.append(f"pair {pair}: no new snapshot for {lag / 1000:.0f}s (its newest bar ended then)")
    return {"problems": problems, "tasks": tasks, "pairs": pairs}
