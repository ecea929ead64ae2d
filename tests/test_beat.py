"""Embedded mode's beat runs the periodic tasks Celery beat runs, in-process, in order, off the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.conf import settings

from pairs_project.beat import EmbeddedBeat
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import single_flight
from pairs_project.schedules import PERIODIC, PERIODIC_TASK, Periodic
from pairs_project.tasks import periodic_task

calls: list[tuple[str, str]] = []


class Steps:
    def first(self) -> None:
        calls.append(("first", threading.current_thread().name))

    def second(self) -> None:
        calls.append(("second", threading.current_thread().name))

    def broken(self) -> None:
        raise RuntimeError("boom")


async def test_entries_of_one_period_run_in_order_in_a_worker_thread():
    calls.clear()
    beat = EmbeddedBeat(
        Steps(),
        [
            Periodic("a", "first", 0.1, expires=1.0),
            Periodic("b", "second", 0.1, expires=1.0),
            Periodic("c", "broken", 0.1, expires=1.0),
        ],
    )
    task = asyncio.create_task(beat.run())
    await asyncio.sleep(0.45)  # up to one period before the first run (phase alignment)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    beat.shutdown()
    names = [name for name, _ in calls]
    assert names[:4] == ["first", "second", "first", "second"]
    assert 2 <= beat.runs["a"] <= 5
    assert beat.failures["c"] == beat.runs["a"]  # a failing task is logged and the cycle goes on
    assert all(thread != threading.main_thread().name for _, thread in calls)


def test_the_one_schedule_names_real_tasks_with_their_cadence():
    beat = EmbeddedBeat(Steps())
    assert {period: [p.name for p in entries] for period, entries in beat.groups.items()} == {
        1.0: ["resample-bars", "compute-snapshots"],
        2.0: ["run-backtests"],  # a thread of its own: a long backtest holds up nothing else
        3.0: ["run-screens"],
        300.0: ["screen-universe"],
        5.0: ["warmup-pairs"],
        3600.0: ["housekeeping"],
    }
    beat.shutdown()
    # Celery beat's schedule is the same declarations, each sent to the one task that runs a step by name.
    assert list(settings.CELERY_BEAT_SCHEDULE) == [p.name for p in PERIODIC]
    for periodic in PERIODIC:
        entry = settings.CELERY_BEAT_SCHEDULE[periodic.name]
        assert entry["task"] == PERIODIC_TASK == periodic_task.name and entry["args"] == (periodic.name,)
        assert entry["schedule"] == periodic.schedule and entry["options"] == {"expires": periodic.expires}
        assert callable(getattr(Pipeline, periodic.step))  # a step of the pipeline


def test_cron_schedules_are_refused_in_embedded_mode():
    from celery.schedules import crontab

    with pytest.raises(ValueError, match="interval schedules only"):
        EmbeddedBeat(Steps(), [Periodic("x", "first", crontab(), expires=1.0)])


def test_a_periodic_task_is_skipped_while_another_run_of_it_is_in_flight():
    runs = []
    release = threading.Event()

    def run():
        runs.append(threading.current_thread().name)
        release.wait(5)
        return len(runs)

    def cycle():
        return single_flight("cycle", run)

    first = threading.Thread(target=cycle, name="worker-1")
    first.start()
    while not runs:
        threading.Event().wait(0.01)
    assert cycle() is None  # a second worker finds the first one still running
    release.set()
    first.join()
    assert cycle() == 2  # the lock went with the first run
    assert runs == ["worker-1", "MainThread"]


def test_the_per_second_runs_expire_instead_of_piling_up_behind_a_stopped_worker():
    for name in ("resample-bars", "compute-snapshots"):
        assert settings.CELERY_BEAT_SCHEDULE[name]["options"]["expires"] <= 2


def test_the_phased_schedule_is_due_once_per_period_at_its_phase(monkeypatch):
    from datetime import UTC, datetime

    import pairs_project.schedules as schedules
    from pairs_project.schedules import phased

    every = phased(1.0, 0.35)

    def at(seconds: float):
        monkeypatch.setattr(schedules.time, "time", lambda: seconds)
        return seconds

    def ran(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    at(1000.30)
    assert every.is_due(ran(999.36)) == (False, pytest.approx(0.05))  # this second's slot is 0.05 s away
    at(1000.36)
    assert every.is_due(ran(999.36)).is_due  # the slot at 1000.35 has not run
    assert not every.is_due(ran(1000.36)).is_due  # it has: next at 1001.35
    assert every.is_due(ran(1000.36)).next == pytest.approx(0.99)
    assert phased(1.0, 0.35) == every and every.__reduce__() == (phased, (1.0, 0.35))
    with pytest.raises(ValueError):
        phased(1.0, 1.5)


def test_celery_beat_runs_the_snapshots_after_the_resampling_of_each_second():
    schedule = settings.CELERY_BEAT_SCHEDULE
    resample, snapshots = schedule["resample-bars"]["schedule"], schedule["compute-snapshots"]["schedule"]
    assert resample.period == snapshots.period == 1.0
    assert 0.25 < resample.phase < snapshots.phase < 1.0  # after the tick writer's flush, in order
