"""Thin Celery tasks: primitives in, one service call out.

In embedded mode ``runpairs`` calls these same tasks on the same schedule
(``CELERY_BEAT_SCHEDULE``) in worker threads of its own process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.core.cache import cache

from . import services

logger = logging.getLogger(__name__)

#: Seconds a run holds its lock at most: a killed worker's lock expires by itself.
LOCK_TTL = 5


def single_flight(func: Callable[[], Any]) -> Callable[[], Any]:
    """Skip a run while another run of the same task is in flight (several workers, a slow cycle).

    The runs are idempotent, so an overlap after the lock expired costs time, not
    correctness; the lock keeps two workers from doing the same second twice. If
    the cache cannot be reached the task runs anyway.
    """
    key = f"pairs:running:{func.__name__}"

    @functools.wraps(func)
    def wrapper() -> Any:
        try:
            acquired = cache.add(key, 1, timeout=LOCK_TTL)
        except Exception as exc:
            logger.warning("%s runs unlocked: the cache did not answer (%s)", func.__name__, exc)
            return func()
        if not acquired:
            return None
        try:
            return func()
        finally:
            try:
                cache.delete(key)
            except Exception:  # the lock expires by itself
                pass

    return wrapper


@shared_task(ignore_result=True)
@single_flight
def resample_bars_task() -> int:
    return services.bars_resample()


@shared_task(ignore_result=True)
def warmup_pairs_task() -> int:
    return services.pairs_warmup()


@shared_task(ignore_result=True)
def housekeeping_task() -> dict[str, int]:
    return services.housekeeping()
