"""A beat schedule on a fixed phase of the wall clock, for Celery beat and the embedded beat.

Celery's interval schedule counts from whenever beat started, so per-second tasks
would land anywhere in the second. Bars close on the second: the resampling runs a
moment after it (once the tick writer has stored a tick of the new second), and the
snapshots a moment after the resampling, as the embedded beat runs them.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

from celery.schedules import schedstate, schedule

#: Seconds after each second at which the resampling runs: past the tick writer's
#: flush interval (0.25 s), so a bar that ended on the second is closed by a stored
#: tick of the next one.
RESAMPLE_PHASE = 0.35
#: The snapshots follow, in distributed mode, once the resampling is done.
SNAPSHOT_PHASE = 0.55


class phased(schedule):  # noqa: N801 - named like Celery's own ``schedule`` and ``crontab``
    """Every ``period`` seconds, ``phase`` seconds past each multiple of it (epoch time)."""

    def __init__(self, period: float, phase: float = 0.0, nowfun=None, app=None) -> None:
        if not 0 <= phase < period:
            raise ValueError(f"phase {phase} must be in [0, {period})")
        super().__init__(timedelta(seconds=period), nowfun=nowfun, app=app)
        self.period, self.phase = float(period), float(phase)

    def is_due(self, last_run_at) -> schedstate:
        now = time.time()
        slot = math.floor((now - self.phase) / self.period) * self.period + self.phase
        last = self.maybe_make_aware(last_run_at).timestamp()
        return schedstate(is_due=last < slot, next=slot + self.period - now)

    def __reduce__(self):
        return self.__class__, (self.period, self.phase)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, phased):
            return (self.period, self.phase) == (other.period, other.phase)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.period, self.phase))

    def __repr__(self) -> str:
        return f"<phased: every {self.period:g}s at +{self.phase:g}s>"
