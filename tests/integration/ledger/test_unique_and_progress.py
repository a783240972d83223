"""Unique jobs refuse a second launch (enforced by the database), and progress writes are
throttled while the last value is always stored."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connection

from tasks_app import services
from tasks_app.models import Run, RunState
from tasks_app.services import LaunchOptions
from tasks_app.worker import lifecycle
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess


def test_two_simultaneous_launches_of_a_unique_job_let_exactly_one_through(
    worker: WorkerProcess,
) -> None:
    actor = operator()
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def launch() -> None:
        barrier.wait()
        try:
            # A countdown keeps it queued while the test looks.
            options = LaunchOptions(countdown=60)
            outcomes.append(
                services.job_launch("taskdeck.cleanup", {"days": 400}, actor=actor, options=options)
            )
        except lifecycle.AlreadyActive as refused:
            outcomes.append(refused)
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    runs = [o for o in outcomes if isinstance(o, Run)]
    refusals = [o for o in outcomes if isinstance(o, lifecycle.AlreadyActive)]
    assert (len(runs), len(refusals)) == (1, 1)
    assert refusals[0].existing is not None
    assert refusals[0].existing.task_id == runs[0].task_id
    assert runs[0].task_id in str(refusals[0])
    assert Run.objects.filter(job_name="taskdeck.cleanup").count() == 1
    # Once the first is final, the same launch is allowed again.
    services.run_cancel(runs[0], actor=actor)
    again = services.job_launch("taskdeck.cleanup", {"days": 400}, actor=actor)
    assert finished(again.task_id).state == RunState.SUCCESS


def test_progress_writes_are_throttled_and_the_last_value_is_stored(
    worker: WorkerProcess,
) -> None:
    run = services.job_launch(
        "demo.progress", {"steps": 60, "step_seconds": 0.03}, actor=operator()
    )

    done = finished(run.task_id)

    assert done.state == RunState.SUCCESS
    assert (done.progress_done, done.progress_total) == (60, 60)
    assert done.started_at is not None
    assert done.finished_at is not None
    seconds = (done.finished_at - done.started_at).total_seconds()
    # 60 progress calls; at most ~2 writes a second, plus the first and the final flush.
    assert done.progress_writes <= 2 * seconds + 2, (done.progress_writes, seconds)
    assert done.progress_writes >= 2
