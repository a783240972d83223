"""A worker killed mid-run leaves nothing "running": the reaper marks the run LOST, or re-queues
it once when the job is idempotent, and it then succeeds on another worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.db import close_old_connections

from tasks_app.jobs.registry import get_job
from tasks_app.models import ACTIVE_STATES, AuditEntry, Run, RunState
from tasks_app.worker import reaper
from tests.support.runs import finished, run_in
from tests.support.services import WorkerProcess, child_env, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

QUEUE = "lost-worker-test"
HEARTBEAT = 0.5
LOST_AFTER = 3.0


def doomed_worker(broker_url: str, log: Path) -> WorkerProcess:
    env = child_env(broker_url, TASKDECK_HEARTBEAT_SECONDS=str(HEARTBEAT))
    worker = WorkerProcess(broker_url, log, name="doomed", queues=(QUEUE,), env=env)
    worker.start()
    return worker


def kill(worker: WorkerProcess) -> None:
    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGKILL)  # the main process and its pool: no goodbye
    worker.process.wait()


def reap_until_settled(task_id: str, timeout: float) -> Run:
    def settled() -> Run | None:
        close_old_connections()
        reaper.reap(lost_after=LOST_AFTER)
        run = Run.objects.get(task_id=task_id)
        return run if run.state in {RunState.LOST, RunState.RETRY} else None

    run: Run = wait_for(settled, timeout, interval=0.25)
    return run


def test_a_killed_worker_leaves_its_run_lost_and_it_never_runs_again(
    worker: WorkerProcess, broker_url: str, tmp_path: Path
) -> None:
    doomed = doomed_worker(broker_url, tmp_path / "doomed.log")
    task = get_job("demo.progress").task
    result = task.apply_async(kwargs={"steps": 200, "step_seconds": 0.1}, queue=QUEUE)
    run_in(result.id, {RunState.PROGRESS})

    kill(doomed)
    killed_at = time.monotonic()
    run = reap_until_settled(result.id, timeout=LOST_AFTER + 10)

    assert run.state == RunState.LOST
    assert time.monotonic() - killed_at < LOST_AFTER + 5
    assert "Worker lost: no heartbeat" in run.error
    assert run.worker in run.error
    assert AuditEntry.objects.filter(action="run.lost", target_id=result.id).exists()
    # Acknowledged on receipt, so a new worker on the queue does not run it again.
    fresh = WorkerProcess(broker_url, tmp_path / "fresh.log", name="fresh", queues=(QUEUE,))
    fresh.start()
    try:
        time.sleep(2)
    finally:
        fresh.stop()
    run.refresh_from_db()
    assert (run.state, run.attempts) == (RunState.LOST, 1)
    assert not Run.objects.filter(state__in=sorted(ACTIVE_STATES)).exists()


def test_a_killed_idempotent_run_is_requeued_once_and_succeeds(
    worker: WorkerProcess, broker_url: str, tmp_path: Path
) -> None:
    doomed = doomed_worker(broker_url, tmp_path / "doomed.log")
    task = get_job("demo.recount").task
    result = task.apply_async(kwargs={"to": 30, "step_seconds": 0.1}, queue=QUEUE)
    run_in(result.id, {RunState.PROGRESS})

    kill(doomed)
    requeued = reap_until_settled(result.id, timeout=LOST_AFTER + 10)

    assert requeued.state == RunState.RETRY
    assert requeued.requeues == 1
    rescuer = WorkerProcess(broker_url, tmp_path / "rescuer.log", name="rescuer", queues=(QUEUE,))
    rescuer.start()
    try:
        run = finished(result.id, timeout=30)
    finally:
        rescuer.stop()
    assert run.state == RunState.SUCCESS
    assert run.attempts == 2
    assert run.worker.startswith("rescuer")
    assert AuditEntry.objects.filter(action="run.requeue", target_id=result.id).exists()


def test_the_reaper_itself_is_not_recorded_as_a_run(worker: WorkerProcess) -> None:
    from django_celery_results.models import TaskResult

    result = get_job("taskdeck.reap_lost_runs").task.delay()

    done = f"taskdeck.reap_lost_runs[{result.id}] succeeded".encode()
    wait_for(lambda: done in worker.log_path.read_bytes())
    assert not Run.objects.filter(task_id=result.id).exists()
    assert not TaskResult.objects.filter(task_id=result.id).exists()
