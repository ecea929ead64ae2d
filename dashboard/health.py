"""The health of the whole pipeline, as ``/api/health/`` and the pages show it.

Degraded, with the reason, when anything between the exchange and the page stops:
a feed (disconnected, silent, unable to store its ticks), a gap in the trades
(being backfilled, or lost for good), the periodic tasks (resampling, snapshots),
a pair whose snapshots stop advancing, or Redis (distributed mode: the channel
layer, the cache and the broker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.utils.connection import ConnectionProxy

from analytics import selectors as analytics_selectors
from ingestion import selectors as ingestion_selectors
from pairs_project.common.masking import url_credentials_masked

#: How long the Redis probe may take (seconds): a health check must answer fast.
REDIS_TIMEOUT = 1.0


@dataclass(frozen=True)
class Record:
    """A health record, when it was made (epoch seconds) and its ``health`` websocket frame."""

    made_at: float
    health: dict[str, Any]
    frame: str


#: The newest record, in this process's own cache: every open page is told the
#: health every few seconds, and a record at most ``HEALTH_CACHE_SECONDS`` old serves them all.
RECORD_KEY = "pairs:health"
#: Held by the one caller making a new record while the others serve the one before.
MAKING_KEY = "pairs:health-making"
#: Seconds a record is kept past its freshness (what the others serve meanwhile).
RECORD_TTL = 60
#: Seconds a maker may take before another caller may make one too.
MAKING_TTL = 10

memos = ConnectionProxy(caches, "process")


def _is_fresh(record: Record | None) -> bool:
    return record is not None and time.time() - record.made_at < settings.HEALTH_CACHE_SECONDS


def _fresh() -> Record | None:
    latest = memos.get(RECORD_KEY)
    return latest if _is_fresh(latest) else None


def _latest_record() -> Record:
    """The newest record, made now when it is not fresh: by one caller while the others serve the one before."""
    latest = memos.get(RECORD_KEY)
    if _is_fresh(latest):
        return latest
    if latest is not None and not memos.add(MAKING_KEY, True, timeout=MAKING_TTL):
        return latest  # being made
    try:
        made_at = time.time()
        health = system_health_now()
        latest = Record(made_at, health, orjson.dumps({"type": "health", **health}).decode())
        memos.set(RECORD_KEY, latest, timeout=RECORD_TTL)
        return latest
    finally:
        memos.delete(MAKING_KEY)


def system_health() -> dict[str, Any]:
    """The health record, made at most once every ``HEALTH_CACHE_SECONDS`` per process."""
    return (_fresh() or _latest_record()).health


async def health_frame() -> str:
    """The pages' ``health`` websocket frame, encoded once per record (no thread hop while it is fresh)."""
    latest = _fresh()
    if latest is None:
        latest = await database_sync_to_async(_latest_record)()
    return latest.frame


def system_health_now() -> dict[str, Any]:
    """The feed record of ``ingestion.selectors.health`` plus the pipeline and Redis."""
    record = ingestion_selectors.health()
    problems = record["problems"]
    if settings.REDIS_URL:
        error = redis_error(settings.REDIS_URL)
        record["redis"] = {"ok": error is None, "error": error}
        if error is not None:
            problems.insert(
                0,
                f"Redis at {url_credentials_masked(settings.REDIS_URL)} does not answer ({error}): pages get no "
                "live updates and the periodic tasks are not scheduled",
            )
    pipeline = analytics_selectors.pipeline_health(
        now=int(time.time() * 1000), distributed=settings.RUN_MODE == "distributed"
    )
    problems.extend(pipeline.pop("problems"))
    record["pipeline"] = pipeline
    record["status"] = "degraded" if problems else "ok"
    return record


def redis_error(url: str) -> str | None:
    """Why Redis at ``url`` does not answer a PING, or None when it does."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return url_credentials_masked(f"{exc.__class__.__name__}: {exc}")
    return None
