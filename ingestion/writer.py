"""The batched tick writer: the event loop hands ticks over, one thread stores them.

``put`` is a list append, so the receiving loop never waits on the database. A
batch is flushed when it reaches ``max_batch`` ticks or every ``flush_interval``
seconds, whichever comes first, by ONE worker thread (so batches land in order and
use one database connection). A failed batch is kept and retried; ``close``
flushes what is pending, which is how SIGINT/SIGTERM lose nothing.

A batch carries, besides the ticks, what the feed knows about them, so that it is
stored in the same transaction: the gaps it found or repaired (``GapEvent``) and
its statement of completeness (``Batch.closed_through``). Whatever reads the ticks
can then trust the two together, whatever crashes in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from .binance import Tick

logger = logging.getLogger(__name__)


class GapEvent(NamedTuple):
    """Ids ``first_id..last_id`` of ``symbol`` found missing (``missing`` None), or resolved.

    A resolution carries ``missing``: how many of those trades could not be had
    (0: the gap is filled).
    """

    symbol: str
    first_id: int
    last_id: int
    missing: int | None = None


class Batch(NamedTuple):
    """What one flush stores, in one transaction."""

    ticks: list[Tick]
    gaps: list[GapEvent]
    #: Per symbol (ms): every trade stamped before it is in this batch or an earlier one.
    closed_through: dict[str, int]


#: Store a batch; return how many ticks were new (duplicates are ignored).
StoreFn = Callable[[Batch], int]
#: The feed's statement of completeness, per symbol (ms), read at the start of a flush.
StatementFn = Callable[[], dict[str, int]]


class TickWriter:
    def __init__(
        self,
        store: StoreFn,
        *,
        flush_interval: float = 0.25,
        max_batch: int = 5000,
        statement: StatementFn | None = None,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.statement = statement
        self.stored = 0  # new rows written by this writer
        self.batches = 0
        self.failures = 0
        self.last_error = ""  # why the last flush failed ("" once one succeeds)
        self.failing_since: float | None = None  # wall clock of the first failure in a row
        self.storing_since: float | None = None  # wall clock the batch being stored was handed over
        self._pending: list[Tick] = []
        self._gaps: list[GapEvent] = []
        self._stated: dict[str, int] = {}  # what the database holds of the statement
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tick-writer")
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def blocked_since(self) -> float | None:
        """Since when (wall clock) storing has been failing, or the current batch storing; None while it flows."""
        times = [t for t in (self.failing_since, self.storing_since) if t is not None]
        return min(times) if times else None

    def put(self, tick: Tick) -> None:
        self._pending.append(tick)
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    def put_many(self, ticks: list[Tick]) -> None:
        self._pending.extend(ticks)
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    def put_gap(self, event: GapEvent) -> None:
        """Store ``event`` with the ticks put so far (none of them lands in an earlier batch)."""
        self._gaps.append(event)

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
            # The statement first, then the ticks: it speaks of ticks put before now,
            # all of which go into this batch or went into an earlier one.
            statement = self.statement() if self.statement is not None else {}
            advanced = {s: t for s, t in statement.items() if t > self._stated.get(s, -1)}
            batch = Batch(self._pending, self._gaps, advanced)
            self._pending, self._gaps = [], []
            if not batch.ticks and not batch.gaps and not advanced:
                return 0
            loop = asyncio.get_running_loop()
            self.storing_since = time.time()
            try:
                stored = await loop.run_in_executor(self._executor, self.store, batch)
            except Exception as exc:
                self.storing_since = None
                self.failures += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
                if self.failing_since is None:
                    self.failing_since = time.time()
                logger.exception("storing %d ticks failed; keeping them for the next flush", len(batch.ticks))
                self._pending[:0] = batch.ticks
                self._gaps[:0] = batch.gaps
                raise
            self.storing_since = None
            self._stated.update(advanced)
            self.stored += stored
            self.batches += 1
            self.last_error, self.failing_since = "", None
            return stored

    async def close(self, attempts: int = 5) -> None:
        """Flush everything pending (retrying a few times), then stop the thread."""
        self._closed = True
        self._wake.set()
        for attempt in range(attempts):
            try:
                while self._pending or self._gaps:
                    await self.flush()
                break
            except Exception:
                await asyncio.sleep(0.2 * (attempt + 1))
        if self._pending:
            logger.error("%d ticks could not be stored at shutdown", len(self._pending))
        self._executor.shutdown(wait=True)
