"""What one process runs with: built once at its start from the settings, and passed down.

Nothing below this module keeps a buffer, a pool or a client of its own: the
runtime makes them and hands them to the code that uses them. The mode is
chosen here, once (``RUN_MODE``: distributed when Redis is configured)::

                     embedded (``runpairs``)              distributed
    exchange         configured, or the built-in one      configured
    live buffers     this process's memory                shared through Redis
    statistics       a child process (EMBEDDED_STATS_     the worker itself (a
                     PROCESS), off the web server's GIL   process of its own)
    notifications    threads of this process,             the Celery task
    (webhook, e-mail retried as the Celery task is
    and Telegram)
    periodic tasks   the in-process runner (``beat``)     Celery beat + worker (``tasks``)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache

from analytics.bars import WidestBarTicks
from analytics.services import PairStatsOf, StatsProcess
from dashboard.broadcast import Pushes
from ingestion.binance import Exchange
from ingestion.buffers import RollingBuffers
from ingestion.journal import StoredTicks
from ingestion.services import exchange_configured, live_buffers

from .schedules import Periodic

logger = logging.getLogger(__name__)

#: Threads that deliver notifications in embedded mode (each may wait on a slow receiver).
DELIVERY_THREADS = 4


@dataclass(frozen=True)
class Runtime:
    """The resources of one process; ``close`` releases them."""

    exchange: Exchange
    buffers: RollingBuffers
    pushes: Pushes = field(default_factory=Pushes)
    #: The statistics' child process (embedded mode), else None: computed in this process.
    stats: StatsProcess | None = None
    #: Embedded mode's notification deliveries, else None: the Celery task delivers them.
    deliveries: ThreadPoolExecutor | None = None
    #: What this process's tick writer stored lately, for its resampling (``ingestion.journal``).
    journal: StoredTicks = field(default_factory=StoredTicks)
    #: The ticks of the bars this process's last resampling rebuilt, for its next (``WidestBarTicks``).
    resampled: WidestBarTicks = field(default_factory=WidestBarTicks)

    @classmethod
    def build(
        cls,
        *,
        exchange: Exchange | None = None,
        embedded: bool | None = None,
        stats_process: bool | None = None,
        buffers: RollingBuffers | None = None,
    ) -> Runtime:
        """The runtime of this process's mode (``RUN_MODE`` unless ``embedded`` says).

        ``exchange``: the exchange to follow (default: the configured one);
        ``stats_process``: whether statistics are computed in a child process
        (default: in embedded mode, as ``EMBEDDED_STATS_PROCESS`` says); ``buffers``: the live ticks,
        when the web server was handed them first (default: new ones).
        """
        embedded = settings.RUN_MODE == "embedded" if embedded is None else embedded
        if stats_process is None:
            stats_process = embedded and settings.EMBEDDED_STATS_PROCESS
        return cls(
            exchange=exchange or exchange_configured(),
            buffers=buffers if buffers is not None else live_buffers(),
            stats=StatsProcess() if stats_process else None,
            deliveries=ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="delivery") if embedded else None,
        )

    @property
    def stats_of(self) -> PairStatsOf | None:
        """What computes a window's statistics: the child process's, else None (``pair_stats`` in this process)."""
        return self.stats.pair_stats if self.stats is not None else None

    def close(self) -> None:
        """Stop the statistics process; let the notification deliveries under way finish."""
        if self.stats is not None:
            self.stats.close()
        if self.deliveries is not None:
            self.deliveries.shutdown(wait=True)


#: Seconds a periodic run holds its single-flight lock at most: a killed worker's lock expires by itself.
LOCK_TTL = 5


def single_flight(name: str, run: Callable[[], Any]) -> Any:
    """``run()``, unless another run of ``name`` is in flight (several workers, a slow cycle): then None.

    The runs are idempotent, so an overlap after the lock expired costs time, not
    correctness; the lock keeps two workers from doing the same second twice. If
    the cache cannot be reached the run goes ahead.
    """
    key = f"pairs:running:{name}"
    try:
        acquired = cache.add(key, 1, timeout=LOCK_TTL)
    except Exception as exc:
        logger.warning("%s runs unlocked: the cache did not answer (%s)", name, exc)
        return run()
    if not acquired:
        return None
    try:
        return run()
    finally:
        try:
            cache.delete(key)
        except Exception:  # the lock expires by itself
            pass


def periodic_run(periodic: Periodic, target: object) -> Any:
    """One run of ``periodic``: its step, a method of ``target`` (the pipeline)."""
    step = getattr(target, periodic.step)
    if periodic.single_flight:
        return single_flight(periodic.name, step)
    return step()
