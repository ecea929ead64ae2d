"""The health of the whole pipeline, as ``/api/health/`` and the pages show it.

Degraded, with the reason, when anything between the exchange and the page stops:
a feed (disconnected, silent, unable to store its ticks), a gap in the trades
(being backfilled, or lost for good), the periodic tasks (resampling, snapshots),
a pair whose snapshots stop advancing, or Redis (distributed mode: the channel
layer, the cache and the broker).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings

from analytics import selectors as analytics_selectors
from ingestion import selectors as ingestion_selectors
from pairs_project.security import url_credentials_masked

#: How long the Redis probe may take (seconds): a health check must answer fast.
REDIS_TIMEOUT = 1.0


def system_health() -> dict[str, Any]:
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
