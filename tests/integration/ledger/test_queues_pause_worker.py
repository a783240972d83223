"""Pausing a queue on a real worker: its runs stay queued, also across a worker restart, and
run once it is resumed; a pause or resume whose broadcast no worker heard still applies (the
worker checks the database at start-up and at every heartbeat interval)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import current_app
from django.utils import timezone

from tasks_app.models import QueuePause, Run, RunState
from tasks_app.services import LaunchOptions, job_launch
from tasks_app.services.queues import UnknownQueue, queue_pause, queue_resume
from tasks_app.worker import broker
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess, child_env, wait_for

pytestmark = pytest.mark.processes  # starts its own worker: not in make test-fast

PAUSED = "low"
EXTRA = "queues-extra"  # a queue no setting names: only this test's worker consumes it


@pytest.fixture
def queues_worker(
    broker_url: str, django_db_setup: None, transactional_db: None, tmp_path: Path
) -> Iterator[WorkerProcess]:
    """A worker of this test's own, checking the paused queues every second."""
    worker = WorkerProcess(
        broker_url,
        tmp_path / "worker.log",
        name="queues-worker",
        env=child_env(broker_url, TASKDECK_HEARTBEAT_SECONDS="1"),
    )
    worker.start()
    yield worker
    worker.stop()
    QueuePause.objects.all().delete()
    current_app.control.purge()


def consumed_by(worker: WorkerProcess) -> set[str]:
    """The queues `worker` consumes now (asked through the broker)."""
    hostname = worker.hostname.replace("%h", "")
    answers = current_app.control.inspect(timeout=2.0).active_queues() or {}
    for name, queues in answers.items():
        if name.startswith(hostname):
            return {str(q["name"]) for q in queues}
    raise AssertionError(f"{hostname} did not answer: {answers}")


def consumed_anywhere() -> set[str]:
    """The queues any online worker consumes (the session's worker too, if it runs)."""
    answers = current_app.control.inspect(timeout=2.0).active_queues() or {}
    return {str(q["name"]) for queues in answers.values() for q in queues}


def launch(queue: str) -> str:
    options = LaunchOptions(queue=queue)
    params = {"steps": 1, "step_seconds": 0}
    return job_launch("demo.progress", params, actor=operator(), options=options).task_id


def depth(queue: str) -> int:
    return next(q.messages for q in broker.queue_depths((queue,)))


def still_queued_while_the_worker_works(task_id: str) -> None:
    """A run on an unpaused queue finishes, so the worker consumes: the paused run is still
    waiting, in the ledger and in the broker."""
    assert finished(launch("default"), timeout=60).state == RunState.SUCCESS
    assert Run.objects.get(task_id=task_id).state == RunState.PENDING
    assert depth(PAUSED) == 1


def test_a_paused_queue_keeps_its_runs_across_a_restart_and_runs_them_when_resumed(
    queues_worker: WorkerProcess,
) -> None:
    assert PAUSED in consumed_by(queues_worker)

    change = queue_pause(PAUSED, actor=operator())
    assert (change.changed, change.told.sent) == (True, True)
    assert any(name.startswith("queues-worker") for name in change.told.workers)
    wait_for(lambda: PAUSED not in consumed_by(queues_worker), timeout=30)
    task_id = launch(PAUSED)
    still_queued_while_the_worker_works(task_id)

    # Restarted while paused: left out before the consumer starts, never consumed.
    queues_worker.stop()
    queues_worker.log_path = queues_worker.log_path.with_name("restarted.log")  # a fresh " ready."
    queues_worker.start()
    assert "Paused in Taskdeck, not consumed until resumed: low" in queues_worker.log_tail(200)
    assert consumed_by(queues_worker) == {"high", "default"}
    still_queued_while_the_worker_works(task_id)

    change = queue_resume(PAUSED, actor=operator())
    assert (change.changed, change.told.sent) == (True, True)
    assert finished(task_id, timeout=60).state == RunState.SUCCESS
    assert depth(PAUSED) == 0
    assert PAUSED in consumed_by(queues_worker)


def test_a_pause_and_a_resume_no_worker_heard_still_apply(queues_worker: WorkerProcess) -> None:
    """Written to the database only, as when the broadcast was missed: the worker's periodic
    check applies both."""
    QueuePause.objects.create(queue=PAUSED, paused_by_label="elsewhere", paused_at=timezone.now())
    wait_for(lambda: PAUSED not in consumed_anywhere(), timeout=60)
    task_id = launch(PAUSED)
    still_queued_while_the_worker_works(task_id)

    QueuePause.objects.filter(queue=PAUSED).delete()
    assert finished(task_id, timeout=60).state == RunState.SUCCESS
    assert consumed_by(queues_worker) == {"high", "default", PAUSED}


def test_a_worker_whose_queues_are_all_paused_starts_idle_and_consumes_once_resumed(
    broker_url: str, django_db_setup: None, transactional_db: None, tmp_path: Path
) -> None:
    queue_pause(PAUSED, actor=operator())
    QueuePause.objects.create(queue=EXTRA, paused_by_label="elsewhere", paused_at=timezone.now())
    task_id = launch(PAUSED)
    worker = WorkerProcess(
        broker_url, tmp_path / "paused.log", name="queues-all-paused", queues=(PAUSED, EXTRA)
    )
    worker.start()
    try:
        assert consumed_by(worker) == set()
        assert Run.objects.get(task_id=task_id).state == RunState.PENDING
        queue_resume(PAUSED, actor=operator())
        assert finished(task_id, timeout=60).state == RunState.SUCCESS
        assert consumed_by(worker) == {PAUSED}

        # A queue no setting names is known while paused, or while a worker consumes it.
        assert queue_resume(EXTRA, actor=operator()).changed
        wait_for(lambda: consumed_by(worker) == {PAUSED, EXTRA}, timeout=30)
        with pytest.raises(UnknownQueue):
            queue_pause("queues-nobody", actor=operator())
        assert queue_pause(EXTRA, actor=operator()).changed
        wait_for(lambda: consumed_by(worker) == {PAUSED}, timeout=30)
    finally:
        worker.stop()
        QueuePause.objects.all().delete()
        current_app.control.purge()
