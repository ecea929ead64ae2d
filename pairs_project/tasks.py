"""Celery tasks of the steps that cross apps (the pipeline's); each app's own are in its tasks module."""

from __future__ import annotations

from celery import shared_task

from analytics.tasks import single_flight

from . import pipeline


@shared_task(ignore_result=True)
@single_flight
def compute_snapshots_task() -> int:
    return len(pipeline.snapshots())
