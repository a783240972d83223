"""Reliability under faults (issue 7, item 4): a run cancelled while no worker is online never
runs once workers come back, here over a restart of the very worker that serves its queue.

test_cancel.py's test_a_run_cancelled_while_no_worker_is_online_never_starts covers a queue no
worker ever listened to, and a brand-new worker. This covers what it leaves out:
- the same worker (same name, same queues) going away and coming back, so nothing it held in
  memory (such as a revoke it never heard) could be what stops the runs;
- a run that worker had already taken before it stopped (a countdown it was holding: the
  worker hands the message back to Redis on its way out, and gets it again on its return);
- an idempotent, late-acknowledged job next to a plain one;
- a run that was not cancelled, queued among them, which does run: proof that the returned
  worker consumes the queue, not merely that nothing happened.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest
from django_celery_results.models import TaskResult

from tasks_app import services
from tasks_app.jobs.registry import get_job
from tasks_app.models import AuditEntry, Run, RunState
from tasks_app.worker import lifecycle
from tests.support.faults import times_received
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

QUEUE = "fault-cancel-offline"
COUNTDOWN = 6.0  # seconds: the first worker is still online when it takes this one


def logged(worker: WorkerProcess, needle: bytes) -> bool:
    return needle in worker.log_path.read_bytes()


def queue_worker(broker_url: str, log: Path) -> WorkerProcess:
    return WorkerProcess(broker_url, log, name="restarting", queues=(QUEUE,))


def test_runs_cancelled_while_their_worker_is_down_never_run_after_it_restarts(
    transactional_db: None, broker_url: str, tmp_path: Path
) -> None:
    progress, recount = get_job("demo.progress").task, get_job("demo.recount").task
    first = queue_worker(broker_url, tmp_path / "before.log")
    first.start()
    try:
        # Taken by the worker while it is up: held in memory until the countdown is due.
        held = progress.apply_async(kwargs={"steps": 3}, queue=QUEUE, countdown=COUNTDOWN).id
        wait_for(lambda: times_received([first.log_path], held) == 1, timeout=10)
    finally:
        first.stop()  # warm shutdown: what it held goes back to Redis
    assert b"Restoring 1 unacknowledged message(s)" in first.log_path.read_bytes()

    # No worker online: queue more, then cancel all but one. The revokes reach nobody.
    queued = progress.apply_async(kwargs={"steps": 3}, queue=QUEUE).id
    idempotent = recount.apply_async(kwargs={"to": 3}, queue=QUEUE).id
    control = progress.apply_async(kwargs={"steps": 2, "step_seconds": 0}, queue=QUEUE).id
    cancelled = [held, queued, idempotent]
    for task_id in cancelled:
        outcome = services.run_cancel(Run.objects.get(task_id=task_id), actor=operator())
        assert outcome is lifecycle.CancelOutcome.REVOKED

    second = queue_worker(broker_url, tmp_path / "after.log")
    assert second.hostname == first.hostname  # the same worker, restarted
    second.start()
    try:
        assert finished(control, timeout=20).state == RunState.SUCCESS
        for task_id in cancelled:
            refused = f"[{task_id}]: final".encode()
            wait_for(partial(logged, second, refused), timeout=COUNTDOWN + 10)
        time.sleep(1)  # room for anything that would (wrongly) run it after all
    finally:
        second.stop()

    logs = [first.log_path, second.log_path]
    for task_id in cancelled:
        run = Run.objects.get(task_id=task_id)
        assert run.state == RunState.REVOKED
        assert (run.started_at, run.attempts, run.progress_done) == (None, 0, None)
        assert run.cancel_requested_by == "operator"
        assert AuditEntry.objects.filter(action="run.cancel", target_id=task_id).exists()
        assert not TaskResult.objects.filter(task_id=task_id, status__in=["STARTED", "SUCCESS"])
        assert f"{task_id}] succeeded".encode() not in b"".join(p.read_bytes() for p in logs)
    assert times_received(logs, held) == 2  # taken before the restart, and again after it
    assert Run.objects.get(task_id=control).attempts == 1
