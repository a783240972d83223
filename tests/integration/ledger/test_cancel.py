"""Cancellation is stored in the database: queued runs never start (even when no worker is
online to hear a revoke), running runs stop at their next progress point, and terminate kills."""

from __future__ import annotations

from pathlib import Path

import pytest
from django_celery_results.models import TaskResult

from tasks_app import services
from tasks_app.jobs.registry import get_job
from tasks_app.models import AuditEntry, Run, RunState
from tasks_app.worker import lifecycle
from tests.support.runs import finished, operator, run_in
from tests.support.services import WorkerProcess, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast


def test_a_run_cancelled_while_no_worker_is_online_never_starts(
    worker: WorkerProcess, broker_url: str, tmp_path: Path
) -> None:
    # Queue a run where no worker listens, cancel it, and only then start a worker there.
    task = get_job("demo.progress").task
    queued = task.apply_async(kwargs={"steps": 5, "step_seconds": 0}, queue="nobody-yet")

    outcome = services.run_cancel(Run.objects.get(task_id=queued.id), actor=operator())

    assert outcome is lifecycle.CancelOutcome.REVOKED
    late = WorkerProcess(broker_url, tmp_path / "late.log", name="late", queues=("nobody-yet",))
    late.start()
    try:
        wait_for(lambda: b"Not running" in late.log_path.read_bytes(), timeout=30)
    finally:
        late.stop()
    run = Run.objects.get(task_id=queued.id)
    assert run.state == RunState.REVOKED
    assert (run.started_at, run.attempts, run.progress_done) == (None, 0, None)
    assert run.cancel_requested_by == "operator"
    assert AuditEntry.objects.filter(action="run.cancel", target_id=queued.id).exists()


def test_a_running_run_stops_at_its_next_progress_point(worker: WorkerProcess) -> None:
    actor = operator()
    run = services.job_launch("demo.progress", {"steps": 400, "step_seconds": 0.05}, actor=actor)
    run_in(run.task_id, {RunState.PROGRESS})

    outcome = services.run_cancel(run, actor=actor)

    assert outcome is lifecycle.CancelOutcome.REQUESTED
    done = finished(run.task_id, timeout=15)
    assert done.state == RunState.REVOKED
    assert done.progress_done is not None
    assert done.progress_done < 400
    assert TaskResult.objects.get(task_id=run.task_id).status == "REVOKED"


def test_terminate_kills_a_run_that_reports_no_progress(worker: WorkerProcess) -> None:
    actor = operator()
    run = services.job_launch("demo.progress", {"steps": 2, "step_seconds": 8}, actor=actor)
    run_in(run.task_id, {RunState.STARTED})

    services.run_cancel(run, actor=actor, terminate=True)

    done = finished(run.task_id, timeout=6)  # well before its first 8-second step ends
    assert done.state == RunState.REVOKED
    assert done.progress_done is None
    assert TaskResult.objects.get(task_id=run.task_id).status == "REVOKED"


@pytest.mark.django_db
def test_cancelling_a_finished_run_changes_nothing() -> None:
    from django.utils import timezone

    run = Run.objects.create(
        task_id="done-1", job_name="demo.add", state=RunState.SUCCESS, queued_at=timezone.now()
    )

    outcome = services.run_cancel(run, actor=operator())

    run.refresh_from_db()
    assert outcome is lifecycle.CancelOutcome.ALREADY_FINAL
    assert run.state == RunState.SUCCESS
    assert run.cancel_requested_at is None
