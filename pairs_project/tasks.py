"""The Celery side of the runtime (distributed mode): the periodic tasks, on the pipeline of the worker.

Celery beat sends ``periodic_task(name)`` as ``schedules.PERIODIC`` declares it
(``CELERY_BEAT_SCHEDULE``); the worker runs that step of its own pipeline, as the
embedded runner does in ``runpairs``. Each app's own tasks are in its tasks module.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from .pipeline import Pipeline
from .runtime import Runtime, periodic_run
from .schedules import PERIODIC

PERIODIC_BY_NAME = {p.name: p for p in PERIODIC}


class PipelineTask(Task):
    """A task with the worker process's pipeline, built on first use (Celery's way to keep a resource per worker)."""

    _pipeline: Pipeline | None = None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(Runtime.build(embedded=False))
        return self._pipeline


@shared_task(bind=True, base=PipelineTask, ignore_result=True)
def periodic_task(self: PipelineTask, name: str) -> Any:
    return periodic_run(PERIODIC_BY_NAME[name], self.pipeline)
