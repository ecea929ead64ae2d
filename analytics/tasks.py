"""Thin Celery tasks: primitives in, one service call out.

In embedded mode ``runpairs`` calls these same tasks on the same schedule
(``CELERY_BEAT_SCHEDULE``) in worker threads of its own process.
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def resample_bars_task() -> int:
    return services.bars_resample()


@shared_task(ignore_result=True)
def compute_snapshots_task() -> int:
    return len(services.snapshots_compute())


@shared_task(ignore_result=True)
def warmup_pairs_task() -> int:
    return services.pairs_warmup()


@shared_task(ignore_result=True)
def housekeeping_task() -> dict[str, int]:
    return services.housekeeping()
