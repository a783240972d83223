"""Reliability under faults (issue 7, item 1): a worker killed mid-run, ten times over, by
SIGKILL of its main process and by SIGKILL of its pool processes.

Each kill hits a non-idempotent run (demo.progress: at most once) and an idempotent one
(demo.recount, `idempotent=True`: at least once) running side by side. Every run reaches a final
state (the idempotent one after running again) and none is left running; the non-idempotent
ones are LOST and never run again, the idempotent ones are re-queued once and succeed. A main
process's death is found by the reaper (no heartbeat for the threshold); a pool process's death
by Celery's main process at once (tasks_app.worker.request gives it the reaper's verdict). Runs
are counted by their `attempts` (one per accepted start) and by the deliveries in the logs.

The reaper is called directly from the test, in a polling loop (as test_lost_workers does),
rather than by beat on a schedule: that is the same `reaper.reap()` the scheduled
`taskdeck.reap_lost_runs` calls, without a beat process competing for the two cores, and without
beat's tick adding its own jitter to the figures: what is measured is how long the heartbeat and
the threshold take to settle a run, not how often a schedule fires.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import psutil
import pytest
from django.db import close_old_connections
from django_celery_results.models import TaskResult

from tasks_app.jobs.registry import get_job
from tasks_app.models import ACTIVE_STATES, FINAL_STATES, AuditEntry, Run, RunState
from tasks_app.worker import reaper
from tests.support.faults import (
    Timings,
    kill_group,
    kill_main_process,
    pool_pids_running,
    surviving,
    times_received,
)
from tests.support.runs import finished, run_in
from tests.support.services import WorkerProcess, child_env, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

KILLS = 10
HEARTBEAT = 0.25  # the workers' TASKDECK_HEARTBEAT_SECONDS
LOST_AFTER = 2.0  # TASKDECK_LOST_AFTER_SECONDS, for the workers and the reaper
# A run must be final this long after the kill at the latest: the threshold, plus one heartbeat
# (the last one may have landed just before the kill), plus the reaper's polling and slack for
# two shared cores.
DEADLINE = LOST_AFTER + HEARTBEAT + 1.5
# A pool process's death is seen by Celery's main process at once, or at the latest by its pool
# check every 5 s (celery.concurrency.asynpool: `timers = {maintain_pool: 5.0}`).
CHILD_DEADLINE = 5.0 + 2.0
# Long enough to be killed mid-run; demo.recount short enough to run again quickly.
LONG_PROGRESS = {"steps": 2000, "step_seconds": 0.05}  # 100 s
RECOUNT = {"to": 40, "step_seconds": 0.05}  # 2 s


@pytest.fixture
def short_thresholds(settings: object) -> None:
    settings.TASKDECK_LOST_AFTER_SECONDS = LOST_AFTER  # type: ignore[attr-defined]  # the reaper's


def fault_worker(broker_url: str, log: Path, name: str, queue: str) -> WorkerProcess:
    env = child_env(
        broker_url,
        TASKDECK_HEARTBEAT_SECONDS=str(HEARTBEAT),
        TASKDECK_LOST_AFTER_SECONDS=str(LOST_AFTER),
    )
    return WorkerProcess(broker_url, log, name=name, queues=(queue,), concurrency=2, env=env)


def launch_pair(queue: str) -> tuple[str, str]:
    """A non-idempotent and an idempotent run, both running (PROGRESS) when this returns."""
    progress = get_job("demo.progress").task.apply_async(kwargs=LONG_PROGRESS, queue=queue)
    recount = get_job("demo.recount").task.apply_async(kwargs=RECOUNT, queue=queue)
    run_in(progress.id, {RunState.PROGRESS}, timeout=20)
    run_in(recount.id, {RunState.PROGRESS}, timeout=20)
    return progress.id, recount.id


def reap_until(task_id: str, states: set[RunState], timeout: float) -> Run:
    def settled() -> Run | None:
        close_old_connections()
        reaper.reap()
        run = Run.objects.get(task_id=task_id)
        return run if run.state in states else None

    run: Run = wait_for(settled, timeout, interval=0.1)
    return run


def test_killing_the_worker_main_process_ten_times(
    transactional_db: None, broker_url: str, tmp_path: Path, short_thresholds: None
) -> None:
    """SIGKILL of the main process: the pool processes die with it (Celery sets
    PR_SET_PDEATHSIG=SIGKILL in each), nothing reports the runs, and the heartbeat stops. The
    reaper marks the non-idempotent run LOST and re-queues the idempotent one, which the next
    worker runs to SUCCESS; the non-idempotent one's message was acknowledged on receipt, so
    no later worker sees it again."""
    queue = "fault-main-kill"
    timings = Timings()
    logs: list[Path] = []
    lost: list[str] = []
    requeued: dict[str, float] = {}  # task id -> when its worker was killed
    rescued: list[str] = []
    started = time.monotonic()
    for kill in range(KILLS):
        log = tmp_path / f"doomed-{kill}.log"
        logs.append(log)
        doomed = fault_worker(broker_url, log, f"doomed{kill}", queue)
        try:
            doomed.start()
            # The idempotent run re-queued after the previous kill runs here first, to the end.
            for task_id, killed_at in requeued.items():
                done = finished(task_id, timeout=20)
                timings.since("main kill: idempotent run re-queued -> SUCCESS", killed_at)
                assert (done.state, done.attempts, done.requeues) == (RunState.SUCCESS, 2, 1)
                assert done.worker.startswith(f"doomed{kill}-")
                rescued.append(task_id)
            requeued.clear()
            progress_id, recount_id = launch_pair(queue)

            pool = kill_main_process(doomed)
            killed_at = time.monotonic()
            assert len(pool) == 2
            orphans = surviving(pool, timeout=5)
            assert orphans == [], f"pool processes outlived their main process: {orphans}"
            timings.since("main kill: pool processes gone", killed_at)

            run = reap_until(progress_id, {RunState.LOST}, timeout=DEADLINE + 5)
            timings.since("main kill: non-idempotent run -> LOST", killed_at)
            again = reap_until(recount_id, {RunState.RETRY}, timeout=DEADLINE + 5)
            timings.since("main kill: idempotent run -> re-queued", killed_at)
        finally:
            kill_group(doomed)  # nothing of it may outlive the iteration
        assert time.monotonic() - killed_at < DEADLINE + 1  # both verdicts, within the deadline
        assert (run.attempts, run.requeues) == (1, 0)
        assert run.error.startswith("Worker lost: no heartbeat")
        assert run.worker.startswith(f"doomed{kill}-")
        assert TaskResult.objects.get(task_id=progress_id).status == "FAILURE"
        assert (again.attempts, again.requeues) == (1, 1)
        lost.append(progress_id)
        requeued[recount_id] = killed_at

    rescuer = fault_worker(broker_url, tmp_path / "rescuer.log", "rescuer", queue)
    logs.append(rescuer.log_path)
    rescuer.start()
    try:
        for task_id, killed_at in requeued.items():
            done = finished(task_id, timeout=20)
            timings.since("main kill: idempotent run re-queued -> SUCCESS", killed_at)
            assert (done.state, done.attempts, done.requeues) == (RunState.SUCCESS, 2, 1)
            rescued.append(task_id)
        # Ten more workers have come and gone on the queue since the first LOST verdict: had a
        # lost run's message been left anywhere, one of them would have received it.
        time.sleep(1)
    finally:
        rescuer.stop()

    elapsed = time.monotonic() - started
    for task_id in lost:
        run = Run.objects.get(task_id=task_id)
        assert (run.state, run.attempts) == (RunState.LOST, 1), "a lost run ran again"
        assert times_received(logs, task_id) == 1
    for task_id in rescued:
        assert times_received(logs, task_id) == 2  # the first delivery and the re-queue
        assert TaskResult.objects.get(task_id=task_id).status == "SUCCESS"
    assert len(lost) == len(rescued) == KILLS
    assert AuditEntry.objects.filter(action="run.lost").count() == KILLS
    assert AuditEntry.objects.filter(action="run.requeue").count() == KILLS
    assert not Run.objects.filter(state__in=sorted(ACTIVE_STATES)).exists()
    print(f"\n[faults] worker main process killed {KILLS}x in {elapsed:.1f}s\n{timings.summary()}")


def test_killing_a_pool_process_ten_times(
    transactional_db: None, broker_url: str, tmp_path: Path, short_thresholds: None
) -> None:
    """SIGKILL of the pool processes running a pair of runs. Celery's main process notices
    (WorkerLostError, at once or at its next pool check) and Taskdeck gives the verdict the
    reaper would: the non-idempotent run is LOST (its message was acknowledged when the pool
    process took it: never delivered again), the idempotent one is re-queued once (Celery
    puts its late-acknowledged message back) and the same worker runs it again to SUCCESS.
    Neither waits for the reaper, which must not call a live run lost meanwhile."""
    queue = "fault-child-kill"
    timings = Timings()
    survivor = fault_worker(broker_url, tmp_path / "survivor.log", "survivor", queue)
    lost: list[str] = []
    rescued: list[str] = []
    started = time.monotonic()
    survivor.start()
    try:
        assert survivor.process is not None
        main = psutil.Process(survivor.process.pid)
        for _ in range(KILLS):
            progress_id, recount_id = launch_pair(queue)
            pids = pool_pids_running(survivor, [progress_id, recount_id])
            assert pids[progress_id] != pids[recount_id]

            for pid in pids.values():
                psutil.Process(pid).kill()
            killed_at = time.monotonic()
            run = wait_for(partial(final_or_none, progress_id), CHILD_DEADLINE, interval=0.05)
            timings.since("child kill: non-idempotent run -> LOST", killed_at)
            done = finished(recount_id, timeout=CHILD_DEADLINE + 5)
            timings.since("child kill: idempotent run -> re-queued -> SUCCESS", killed_at)

            outcome = reaper.reap()
            assert not {progress_id, recount_id} & {*outcome.lost, *outcome.requeued}
            assert (run.state, run.attempts, run.requeues) == (RunState.LOST, 1, 0)
            assert run.error.startswith("Worker lost: Worker exited prematurely: signal 9")
            result = TaskResult.objects.get(task_id=progress_id)
            assert (result.status, result.task_name) == ("FAILURE", "demo.progress")
            assert "WorkerLostError" in result.result
            assert (done.state, done.attempts, done.requeues) == (RunState.SUCCESS, 2, 1)
            assert TaskResult.objects.get(task_id=recount_id).status == "SUCCESS"
            lost.append(progress_id)
            rescued.append(recount_id)
        assert main.is_running()
        # The pool replaced each killed process.
        wait_for(lambda: len(main.children()) == 2, timeout=10)
        time.sleep(1)  # long enough for a stray delivery to show up in the log
    finally:
        survivor.stop()

    elapsed = time.monotonic() - started
    for task_id in lost:
        run = Run.objects.get(task_id=task_id)
        assert (run.state, run.attempts) == (RunState.LOST, 1), "a lost run ran again"
        assert times_received([survivor.log_path], task_id) == 1
    for task_id in rescued:
        assert times_received([survivor.log_path], task_id) == 2
    assert AuditEntry.objects.filter(action="run.lost", target_id__in=lost).count() == KILLS
    assert AuditEntry.objects.filter(action="run.requeue", target_id__in=rescued).count() == KILLS
    assert not Run.objects.filter(state__in=sorted(ACTIVE_STATES)).exists()
    print(f"\n[faults] pool process killed {2 * KILLS}x in {elapsed:.1f}s\n{timings.summary()}")


def test_an_idempotent_run_whose_pool_process_dies_twice_is_lost_not_rerun_forever(
    transactional_db: None, broker_url: str, tmp_path: Path
) -> None:
    """Celery re-queues a late-acknowledged message every time its pool process dies, so a job
    that gets its process killed every time (say, by the OOM killer) would run in a loop. The
    ledger re-queues it once, as the reaper does; the second death makes it LOST, and the
    delivery Celery makes anyway is refused before the job runs."""
    queue = "fault-child-kill-twice"
    survivor = fault_worker(broker_url, tmp_path / "survivor.log", "survivor", queue)
    survivor.start()
    try:
        task = get_job("demo.recount").task
        task_id = task.apply_async(kwargs={"to": 400, "step_seconds": 0.05}, queue=queue).id
        for attempt in (1, 2):
            wait_for(partial(running_attempt, task_id, attempt), timeout=CHILD_DEADLINE + 5)
            psutil.Process(pool_pids_running(survivor, [task_id])[task_id]).kill()
        run = wait_for(partial(final_or_none, task_id), CHILD_DEADLINE, interval=0.05)
        refused = f"Not running demo.recount[{task_id}]: final".encode()
        wait_for(lambda: refused in survivor.log_path.read_bytes(), timeout=10)
    finally:
        survivor.stop()

    assert (run.state, run.attempts, run.requeues) == (RunState.LOST, 2, 1)
    assert run.error.startswith("Worker lost again: Worker exited prematurely: signal 9")
    assert times_received([survivor.log_path], task_id) == 3  # the third delivery, refused
    assert Run.objects.get(task_id=task_id).attempts == 2
    assert TaskResult.objects.get(task_id=task_id).status == "FAILURE"
    actions = AuditEntry.objects.filter(target_id=task_id).order_by("id")
    assert list(actions.values_list("action", flat=True)) == ["run.requeue", "run.lost"]


def running_attempt(task_id: str, attempt: int) -> bool:
    close_old_connections()
    run = Run.objects.get(task_id=task_id)
    return run.attempts == attempt and run.state == RunState.PROGRESS


def final_or_none(task_id: str) -> Run | None:
    close_old_connections()
    run = Run.objects.get(task_id=task_id)
    return run if run.state in FINAL_STATES else None
