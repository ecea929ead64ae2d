"""Embedded mode's beat: the Celery schedule, run in-process on the asyncio loop.

Entries that share a period run one after the other in the order the schedule
declares them (so snapshots follow the resampling of the same second); each call
runs in a worker thread, so statistics never stall the event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from celery.schedules import schedule as celery_schedule
from django.conf import settings
from django.db import close_old_connections

from .schedules import RESAMPLE_PHASE

logger = logging.getLogger("pairs.beat")

#: Seconds after each wall-clock boundary at which short-period entries run (the
#: snapshots of a period follow its resampling in the same run, see the module doc).
PHASE = RESAMPLE_PHASE


def _resolve(dotted: str) -> Callable[[], Any]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _seconds(schedule: Any) -> float:
    if isinstance(schedule, celery_schedule):  # an interval, or ``phased``
        return schedule.run_every.total_seconds()
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, int | float):
        return float(schedule)
    raise ValueError(f"embedded beat supports interval schedules only, not {schedule!r}")


class EmbeddedBeat:
    def __init__(self, schedule: dict[str, dict] | None = None) -> None:
        schedule = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
        self.groups: dict[float, list[tuple[str, Callable[[], Any]]]] = {}
        for name, entry in schedule.items():
            self.groups.setdefault(_seconds(entry["schedule"]), []).append((name, _resolve(entry["task"])))
        self.runs: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self._executors = {
            period: ThreadPoolExecutor(1, thread_name_prefix=f"beat-{period:g}s") for period in self.groups
        }

    async def run(self) -> None:
        await asyncio.gather(*(self._every(period, entries) for period, entries in self.groups.items()))

    def shutdown(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)

    async def _every(self, period: float, entries: list[tuple[str, Callable[[], Any]]]) -> None:
        loop = asyncio.get_running_loop()
        executor = self._executors[period]
        # Short periods run at a fixed phase of the wall clock: PHASE seconds after
        # each boundary, when the first ticks of the new second are stored and the
        # bar that just ended can close. Longer periods start at once.
        next_at = loop.time()
        if period <= 60:
            wall = time.time()
            next_at += (math.floor(wall / period) + 1) * period + min(PHASE, period / 2) - wall
        while True:
            for name, task in entries:
                try:
                    # Through asgiref, not run_in_executor: pushes the task makes with
                    # async_to_sync then run on this loop (the in-memory channel
                    # layer is not thread-safe), not on a private loop of the thread.
                    await sync_to_async(self._call, thread_sensitive=False, executor=executor)(task)
                    self.runs[name] = self.runs.get(name, 0) + 1
                except Exception:
                    self.failures[name] = self.failures.get(name, 0) + 1
                    logger.exception("periodic task %s failed", name)
            next_at += period
            # A cycle that overran starts the next at once, without piling up.
            next_at = max(next_at, loop.time())
            await asyncio.sleep(next_at - loop.time())

    @staticmethod
    def _call(task: Callable[[], Any]) -> Any:
        try:
            return task()
        finally:
            close_old_connections()  # long-lived threads must not hold broken connections
