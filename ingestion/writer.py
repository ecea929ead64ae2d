"""The batched tick writer: the event loop hands ticks over, one thread stores them.

``put`` is a list append, so the receiving loop never waits on the database. A
batch is flushed when it reaches ``max_batch`` ticks or every ``flush_interval``
seconds, whichever comes first, by ONE worker thread (so batches land in order and
use one database connection). A failed batch is kept and retried; ``close``
flushes what is pending, which is how SIGINT/SIGTERM lose nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .binance import Tick

logger = logging.getLogger(__name__)

#: Store a batch; return how many rows were new (duplicates are ignored).
StoreFn = Callable[[list[Tick]], int]


class TickWriter:
    def __init__(self, store: StoreFn, *, flush_interval: float = 0.25, max_batch: int = 5000) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.stored = 0  # new rows written by this writer
        self.batches = 0
        self.failures = 0
        self._pending: list[Tick] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tick-writer")
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def put(self, tick: Tick) -> None:
        self._pending.append(tick)
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    def put_many(self, ticks: list[Tick]) -> None:
        self._pending.extend(ticks)
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    async def run(self) -> None:
        """Flush on size or time until closed."""
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # logged in flush; the batch is kept for the next try
                await asyncio.sleep(min(1.0, self.flush_interval * 4))

    async def flush(self) -> int:
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            loop = asyncio.get_running_loop()
            try:
                stored = await loop.run_in_executor(self._executor, self.store, batch)
            except Exception:
                self.failures += 1
                logger.exception("storing %d ticks failed; keeping them for the next flush", len(batch))
                self._pending[:0] = batch
                raise
            self.stored += stored
            self.batches += 1
            return stored

    async def close(self, attempts: int = 5) -> None:
        """Flush everything pending (retrying a few times), then stop the thread."""
        self._closed = True
        self._wake.set()
        for attempt in range(attempts):
            try:
                while self._pending:
                    await self.flush()
                break
            except Exception:
                await asyncio.sleep(0.2 * (attempt + 1))
        if self._pending:
            logger.error("%d ticks could not be stored at shutdown", len(self._pending))
        self._executor.shutdown(wait=True)
