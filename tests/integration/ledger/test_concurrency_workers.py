"""Per-job concurrency limits on two real workers: never more than N runs of the job execute at
once across both, the others wait queued ("waiting for a slot"), every run runs exactly once,
and an operator's change of the limit applies to runs that start afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from django.db import close_old_connections

from tasks_app import services
from tasks_app.jobs.registry import get_job
from tasks_app.models import Run, RunState
from tasks_app.services import job_limits
from tasks_app.worker import presence, slots
from tests.support.concurrency_slots import max_overlap
from tests.support.runs import finished, operator, run_in
from tests.support.services import LIMITS_REFRESH_SECONDS, WorkerProcess, child_env, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

QUEUE = "concurrency-test"
JOB = "demo.limited"  # @job(concurrency=2)


@pytest.fixture
def two_workers(worker: WorkerProcess, broker_url: str, tmp_path: Path) -> Iterator[None]:
    """Two more workers (two pool processes each) on a queue of their own: four runs could
    execute at once if nothing held them back."""
    env = child_env(broker_url, TASKDECK_SLOT_LEASE_SECONDS="6")
    started = [
        WorkerProcess(broker_url, tmp_path / f"{name}.log", name=name, queues=(QUEUE,), env=env)
        for name in ("slots-a", "slots-b")
    ]
    try:
        for process in started:
            process.start()
        yield
    finally:
        for process in started:
            process.stop()
        presence.client().delete(slots.key(JOB))


def launch(count: int, seconds: float) -> list[str]:
    task = get_job(JOB).task
    return [task.apply_async(kwargs={"seconds": seconds}, queue=QUEUE).id for _ in range(count)]


def settle(task_ids: Sequence[str], *, watch_waiting: bool = True) -> tuple[list[Run], int]:
    """Wait for every run to finish; the most runs seen waiting for a slot meanwhile."""
    most_waiting = 0

    def all_done() -> bool:
        nonlocal most_waiting
        close_old_connections()
        runs = Run.objects.filter(task_id__in=task_ids)
        waiting = runs.filter(
            state=RunState.PENDING, slot_wait_since__isnull=False, started_at__isnull=True
        ).count()
        most_waiting = max(most_waiting, waiting)
        return all(run.is_final for run in runs) and runs.count() == len(task_ids)

    wait_for(all_done, 180, interval=0.2)
    return [finished(task_id) for task_id in task_ids], most_waiting


def set_limit(value: int | None, *, use_code_default: bool = False) -> None:
    job_limits.job_limit_set(JOB, value, actor=operator(), use_code_default=use_code_default)
    # Workers read the limits again every LIMITS_REFRESH_SECONDS.
    time.sleep(LIMITS_REFRESH_SECONDS + 1)


def test_at_most_n_runs_execute_at_once_across_two_workers(two_workers: None) -> None:
    task_ids = launch(6, seconds=1.5)

    runs, most_waiting = settle(task_ids)

    assert [run.state for run in runs] == [RunState.SUCCESS] * 6
    assert [run.attempts for run in runs] == [1] * 6  # each ran exactly once
    assert max_overlap(runs) <= 2
    assert most_waiting >= 1  # the excess was visibly waiting for a slot
    assert all(run.slot_wait_since is None for run in runs)  # cleared when each started
    assert {run.worker.split("@")[0].rsplit("-", 1)[0] for run in runs} <= {"slots-a", "slots-b"}
    assert slots.counts([JOB]) == {JOB: (0, 0)}  # every slot freed, nobody waits


def test_a_limit_changed_at_runtime_applies_to_later_runs(two_workers: None) -> None:
    set_limit(1)
    try:
        runs, most_waiting = settle(launch(4, seconds=1.0))
        assert [run.state for run in runs] == [RunState.SUCCESS] * 4
        assert [run.attempts for run in runs] == [1] * 4
        assert max_overlap(runs) == 1
        assert most_waiting >= 1

        set_limit(None)  # lifted: the four pool processes of the two workers may all run it
        runs, _ = settle(launch(4, seconds=3.0))
        assert [run.state for run in runs] == [RunState.SUCCESS] * 4
        assert max_overlap(runs) >= 3
    finally:
        job_limits.job_limit_set(JOB, None, actor=operator(), use_code_default=True)


def test_a_run_cancelled_while_waiting_for_a_slot_never_starts(two_workers: None) -> None:
    running = launch(2, seconds=4.0)
    for task_id in running:
        run_in(task_id, {RunState.STARTED, RunState.PROGRESS}, timeout=60)
    (waiting,) = launch(1, seconds=0.1)

    def marked_waiting() -> Run | None:
        close_old_connections()
        run = Run.objects.get(task_id=waiting)
        return run if run.slot_wait_since is not None else None

    run = wait_for(marked_waiting, 60)
    assert run.state == RunState.PENDING
    status = job_limits.job_concurrency(JOB)
    assert (status.limit, status.running, status.waiting) == (2, 2, 1)

    services.run_cancel(run, actor=operator())
    runs, _ = settle([*running, waiting])
    assert [run.state for run in runs] == [RunState.SUCCESS, RunState.SUCCESS, RunState.REVOKED]
    assert runs[2].attempts == 0
    assert runs[2].started_at is None
