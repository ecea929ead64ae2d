"""Embedded mode's runner of the periodic tasks (``schedules.PERIODIC``), in-process on the asyncio loop.

The same declarations Celery beat schedules in distributed mode, run on the same
cadence, each by ``runtime.periodic_run`` (single-flight where declared). Entries
that share a period run one after the other in the order the schedule
declares them (so snapshots follow the resampling of the same second); each call
runs in a worker thread, so statistics never stall the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from .runtime import periodic_run
from .schedules import PERIODIC, RESAMPLE_PHASE, Periodic, phased

logger = logging.getLogger("pairs.beat")

#: Seconds after each wall-clock boundary at which short-period entries run (the
#: snapshots of a period follow its resampling in the same run, see the module doc).
PHASE = RESAMPLE_PHASE


class EmbeddedBeat:
    """Runs ``periodic``'s steps, methods of ``target`` (the pipeline), each on its cadence."""

    def __init__(self, target: object, periodic: Iterable[Periodic] = PERIODIC) -> None:
        self.target = target
        self.groups: dict[float, list[Periodic]] = {}
        for entry in periodic:
            if not isinstance(entry.schedule, phased | int | float):
                raise ValueError(f"embedded beat supports interval schedules only, not {entry.schedule!r}")
            self.groups.setdefault(entry.period, []).append(entry)
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

    async def _every(self, period: float, entries: list[Periodic]) -> None:
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
            for entry in entries:
                try:
                    # Through asgiref, not run_in_executor: pushes the task makes with
                    # async_to_sync then run on this loop (the in-memory channel
                    # layer is not thread-safe), not on a private loop of the thread.
                    await sync_to_async(self._call, thread_sensitive=False, executor=executor)(entry)
                    self.runs[entry.name] = self.runs.get(entry.name, 0) + 1
                except Exception:
                    self.failures[entry.name] = self.failures.get(entry.name, 0) + 1
                    logger.exception("periodic task %s failed", entry.name)
            next_at += period
            # A cycle that overran starts the next at once, without piling up.
            next_at = max(next_at, loop.time())
            await asyncio.sleep(next_at - loop.time())

    def _call(self, entry: Periodic) -> Any:
        try:
            return periodic_run(entry, self.target)
        finally:
            close_old_connections()  # long-lived threads must not hold broken connections
