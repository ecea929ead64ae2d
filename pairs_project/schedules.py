"""The periodic tasks, declared once: embedded mode's runner and Celery beat run these.

Each names the pipeline step it runs (``pairs_project.pipeline.Pipeline``), its
cadence and its expiry policy. Celery's interval schedule counts from whenever beat started, so per-second tasks
would land anywhere in the second. Bars close on the second: the resampling runs a
moment after it (once the tick writer has stored a tick of the new second), and the
snapshots a moment after the resampling, as the embedded beat runs them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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


@dataclass(frozen=True)
class Periodic:
    """A periodic task: the pipeline step ``step`` every ``schedule``.

    ``expires``: seconds after which a run not yet started is dropped (the next one
    does its work), so a stopped worker finds no backlog. ``single_flight``: a run
    is skipped while another is in flight (several workers, a slow cycle).
    """

    name: str
    step: str
    schedule: phased | float
    expires: float
    single_flight: bool = False

    @property
    def period(self) -> float:
        return self.schedule.period if isinstance(self.schedule, phased) else float(self.schedule)


PERIODIC = (
    # Every second, 0.35 s after it: new ticks -> 1s/1m/5m bars.
    Periodic("resample-bars", "resample", phased(1.0, RESAMPLE_PHASE), expires=2.0, single_flight=True),
    # Every second, right after resampling: a snapshot per active pair whose window moved.
    Periodic("compute-snapshots", "snapshots", phased(1.0, SNAPSHOT_PHASE), expires=2.0, single_flight=True),
    # Every 5 seconds: fetch the klines a 1m/5m pair's window still lacks, so a pair
    # added in the admin or the API is ready within seconds (a no-op otherwise).
    Periodic("warmup-pairs", "warmup", 5.0, expires=10.0),
    # Every 2 seconds: run the backtests users asked for, one at a time, oldest first
    # (their own cadence, so a long one never holds up the bars and snapshots).
    Periodic("run-backtests", "backtests", 2.0, expires=4.0, single_flight=True),
    # Every 3 seconds: run the screens users asked for (a cadence and a thread of their own).
    Periodic("run-screens", "screens", 3.0, expires=6.0, single_flight=True),
    # Every 5 minutes (a 5m bar): ask for a screen of the universe with the settings' defaults.
    Periodic("screen-universe", "screen_scheduled", 300.0, expires=300.0, single_flight=True),
    # Every hour: prune history past retention, checkpoint the SQLite WAL.
    Periodic("housekeeping", "housekeeping", 3600.0, expires=600.0),
)

#: The Celery task that runs a periodic task by name (``pairs_project.tasks``).
PERIODIC_TASK = "pairs_project.tasks.periodic_task"


def beat_schedule(periodic: tuple[Periodic, ...] = PERIODIC) -> dict[str, dict[str, Any]]:
    """``periodic`` as Celery beat's schedule (``CELERY_BEAT_SCHEDULE``)."""
    return {
        p.name: {"task": PERIODIC_TASK, "args": (p.name,), "schedule": p.schedule, "options": {"expires": p.expires}}
        for p in periodic
    }
