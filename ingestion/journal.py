"""What this process stored lately, by row id: the new ticks, for a resampling in the same process.

Embedded mode stores ticks and resamples them in one process; without this, the
resampling reads back every tick the writer has just written, a row at a time
(each row taking the GIL back from the event loop). The tick writer records, once
its transaction has committed, each run of rows it inserted with consecutive ids
(``record``); the resampling asks for the ticks from an id on (``between``) and
gets the runs that hold every id from there without a hole; it reads the rest
from the database as always. The caller checks that the database holds as many
rows in the ids it takes (nothing deleted since), which with the ids makes them
the same rows.

Pure: no Django. A process's runtime makes one and hands it to both (the feed's
writer and the resampling). It records only once a consumer has asked
(``between``), so a process that stores ticks but does not resample them
(``ingest_binance``) keeps nothing, and it holds at most ``max_ticks`` ticks,
dropping the oldest.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

from .binance import Tick


class Run(NamedTuple):
    """Ticks of one symbol stored with the consecutive ids ``first_id, first_id + 1, ...``."""

    database: str
    first_id: int
    symbol: str
    ticks: list[Tick]

    @property
    def last_id(self) -> int:
        return self.first_id + len(self.ticks) - 1


class StoredTicks:
    def __init__(self, max_ticks: int = 500_000) -> None:
        self.max_ticks = max_ticks
        self.wanted = False  # set by the first ``between``: until then nothing is kept
        self._runs: deque[Run] = deque()
        self._count = 0
        self._lock = threading.Lock()

    def record(self, runs: list[Run]) -> None:
        """Keep ``runs`` (committed, ids ascending). Ids not above those kept mean a new table: forget those."""
        if not self.wanted or not runs:
            return
        with self._lock:
            if self._runs and (
                runs[0].database != self._runs[-1].database or runs[0].first_id <= self._runs[-1].last_id
            ):
                self._clear()
            for run in runs:
                self._runs.append(run)
                self._count += len(run.ticks)
            while self._count > self.max_ticks:
                self._count -= len(self._runs.popleft().ticks)

    def between(self, database: str, after_id: int, through_id: int) -> list[Run]:
        """The runs holding the ids from ``after_id + 1`` on without a hole, up to ``through_id`` at most, in id order.

        Empty when the id after ``after_id`` is not here. The runs at or below
        ``after_id`` are forgotten (the caller has them).
        """
        self.wanted = True
        with self._lock:
            while self._runs and (self._runs[0].database != database or self._runs[0].last_id <= after_id):
                self._count -= len(self._runs.popleft().ticks)
            taken = []
            expected = after_id + 1
            for run in self._runs:
                if run.first_id != expected or run.last_id > through_id:
                    break
                taken.append(run)
                expected = run.last_id + 1
            return taken

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._runs.clear()
        self._count = 0
