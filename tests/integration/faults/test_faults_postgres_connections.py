"""Reliability under faults (issue 7, item 3): PostgreSQL terminates every connection to the
database (`pg_terminate_backend`, as a restart or a failover would) while a worker runs jobs.

Ten times over, with two runs going: a job that writes progress (its next progress write meets
the dead connection) and a plain task that touches the database only where Celery does (the
result is the first to meet it); and each time a moment before, with the pool processes idle
(the next task's start meets it). Every run succeeds and its result is stored; afterwards no
run fails with a closed connection and the worker log shows no such failure.

PostgreSQL only (`postgresql` marker): the SQLite pass deselects it (tests/conftest.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.db import connection
from django_celery_results.models import TaskResult

from tasks_app.jobs.registry import get_job
from tasks_app.models import Run, RunState
from tests.support import fault_tasks
from tests.support.faults import Timings
from tests.support.runs import finished, run_in
from tests.support.services import WorkerProcess, child_env

pytestmark = [pytest.mark.postgresql, pytest.mark.processes]

KILLS = 10
QUEUE = "fault-postgres"
PROGRESS = {"steps": 20, "step_seconds": 0.1}  # 2 s, a progress write every 0.5 s
SLEEP_SECONDS = 1.5
CLOSED = (b"connection is closed", b"connection already closed")


def terminate_every_other_connection() -> int:
    """What a database restart does to the workers' connections (this test's own survives)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def test_killed_database_connections_cost_no_run_and_no_result(
    transactional_db: None, broker_url: str, tmp_path: Path
) -> None:
    env = child_env(broker_url, TASKDECK_HEARTBEAT_SECONDS="0.5")
    worker = WorkerProcess(
        broker_url, tmp_path / "worker.log", name="pg-faults", queues=(QUEUE,), env=env,
        extra_args=("--include", fault_tasks.__name__),
    )  # fmt: skip
    timings = Timings()
    progress = get_job("demo.progress").task
    runs: list[str] = []
    started = time.monotonic()
    worker.start()
    try:
        for kill in range(KILLS):
            # Idle: the pool processes keep their connections between tasks (from the
            # second round on: the fresh worker has none yet).
            idle = terminate_every_other_connection()
            assert idle > 0 or kill == 0
            writer = progress.apply_async(kwargs=PROGRESS, queue=QUEUE).id
            quiet = fault_tasks.sleep.apply_async((SLEEP_SECONDS,), queue=QUEUE).id
            run_in(writer, {RunState.PROGRESS})
            run_in(quiet, {RunState.STARTED})

            assert terminate_every_other_connection() > 0  # mid-run
            killed_at = time.monotonic()
            for task_id in (writer, quiet):
                run = finished(task_id, timeout=20)
                assert run.state == RunState.SUCCESS, (task_id, run.state, run.error)
            timings.since("connections killed mid-run -> both runs SUCCESS", killed_at)
            runs += [writer, quiet]

        # Afterwards: plain work on the same pool processes, nothing left broken.
        later = [
            progress.apply_async(kwargs={"steps": 3, "step_seconds": 0}, queue=QUEUE).id
            for _ in range(6)
        ]
        for task_id in later:
            assert finished(task_id, timeout=20).state == RunState.SUCCESS
    finally:
        worker.stop()
    elapsed = time.monotonic() - started

    for task_id in runs + later:
        run = Run.objects.get(task_id=task_id)
        assert (run.state, run.error, run.attempts) == (RunState.SUCCESS, "", 1)
        assert TaskResult.objects.get(task_id=task_id).status == "SUCCESS"
    writers = Run.objects.filter(task_id__in=runs, job_name="demo.progress")
    assert {run.progress_done for run in writers} == {PROGRESS["steps"]}
    log = worker.log_path.read_bytes()
    assert not any(closed in log for closed in CLOSED), worker.log_tail(80)
    assert b"raised unexpected" not in log
    # Both recoveries were needed: a progress write and a result met a dead connection.
    assert b"database connection lost, reconnecting" in log
    assert b"Failed operation _store_result. Retrying" in log
    # How long the runs took, against what they take undisturbed: the cost of reconnecting.
    for run in Run.objects.filter(task_id__in=runs):
        assert run.started_at is not None
        assert run.finished_at is not None
        nominal = "2.0" if run.job_name == "demo.progress" else f"{SLEEP_SECONDS}"
        timings.add(
            f"{run.job_name} run time (undisturbed {nominal}s)",
            (run.finished_at - run.started_at).total_seconds(),
        )
    print(f"\n[faults] PostgreSQL connections killed {2 * KILLS}x in {elapsed:.1f}s")
    print(timings.summary())
