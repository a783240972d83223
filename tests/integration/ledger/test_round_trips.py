"""What a run costs the worker in database transactions (issue 15, item 1).

A run of a job that touches no table of its own (`taskdeck.ping`) is two transactions on the
worker: STARTED, then SUCCESS, each moving the run and writing its TaskResult row in one
statement. No connection health check between runs (the result backend retries a store that
meets a broken connection, which is what the check is for), and no new connection per run.
Every state is still recorded: each run ends SUCCESS with its start stamped, each TaskResult
SUCCESS with its start and result.

Counted by PostgreSQL itself (`pg_stat_database`, the same counters `python -m bench.throughput`
prints) around a worker of its own that runs nothing else; the counts are read once the
worker's sessions have ended, so every one of them has reported its statistics. Not a timing.
PostgreSQL only (`postgresql` marker): the SQLite pass deselects it (tests/conftest.py).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_results.models import TaskResult

from tasks_app.models import Run, RunState
from tasks_app.tasks import ping
from tasks_app.worker.backend import LedgerBackend, ledger_backend
from tests.support.services import SESSION_WORKERS, WorkerProcess, child_env

pytestmark = [pytest.mark.postgresql, pytest.mark.processes]

RUNS = 200
QUEUE = "round-trips"
# Per worker, whatever the number of runs: each pool process's connection setup and its first
# read of the open failure alerts (a per-process cache), the worker's start-up checks, and three
# short connections of the main process (each a time-zone setup and one read, then closed): the
# paused queues at setup, the first periodic check of them (this test's worker checks no more
# often than every 10 minutes, so the count does not depend on how long it runs), and the job
# concurrency limits' copy in Redis, rebuilt from the database since the suite flushed Redis.
PER_WORKER = 18
MAIN_PROCESS_SESSIONS = 3
SUCCEEDED = b" succeeded in "


def counters() -> tuple[int, int]:
    """This database's sessions opened and transactions committed, as PostgreSQL counts them,
    this session's own included (a backend reports its counts at most once a second unless
    told to: `pg_stat_force_next_flush`, as this transaction ends). Three statements, each a
    transaction: the first two are counted, the third is not."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def other_sessions() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {int(row[0]) for row in cursor.fetchall()}


def wait_for_log(path: Path, count: int, timeout: float = 60.0) -> None:
    """Until the worker logged `count` successes (read from its log: polling the database
    would add this process's own transactions to the count)."""
    deadline = time.monotonic() + timeout
    while path.read_bytes().count(SUCCEEDED) < count:
        assert time.monotonic() < deadline, f"not {count} successes in {timeout} s"
        time.sleep(0.05)


def wait_gone(sessions: set[int], timeout: float = 20.0) -> None:
    """Until none of `sessions` is left: a backend reports its statistics before it leaves."""
    deadline = time.monotonic() + timeout
    while other_sessions() & sessions:
        assert time.monotonic() < deadline, "the worker's database sessions did not end"
        time.sleep(0.05)


def test_a_run_costs_the_worker_one_transaction_per_state(
    transactional_db: None, broker_url: str, tmp_path: Path
) -> None:
    task_ids = [ping.apply_async(queue=QUEUE).id for _ in range(RUNS)]
    worker = WorkerProcess(
        broker_url,
        tmp_path / "worker.log",
        name="round-trips",
        queues=(QUEUE,),
        env=child_env(broker_url, TASKDECK_HEARTBEAT_SECONDS="600"),
    )
    # The session's worker, if this process started it, does its periodic checks on this
    # database too: frozen, it counts for nothing (it consumes no queue of this test's).
    with ExitStack() as frozen:
        for session_worker in SESSION_WORKERS:
            frozen.enter_context(session_worker.frozen())
        commits, sessions = count_the_workers_cost(worker)
    assert 2 * RUNS <= commits <= 2 * RUNS + PER_WORKER, (commits / RUNS, worker.log_tail())
    # One per pool process, not per run, besides the main process's short ones.
    assert 1 <= sessions <= 3 + MAIN_PROCESS_SESSIONS

    runs = Run.objects.filter(task_id__in=task_ids)
    assert runs.filter(state=RunState.SUCCESS, attempts=1, started_at__isnull=False).count() == RUNS
    results = TaskResult.objects.filter(task_id__in=task_ids, status="SUCCESS", result='"pong"')
    assert results.filter(date_started__isnull=False).count() == RUNS


def count_the_workers_cost(worker: WorkerProcess) -> tuple[int, int]:
    """Start the worker, let it run every queued run, stop it: the transactions it committed
    and the database sessions it opened."""
    existing = other_sessions()
    with CaptureQueriesContext(connection) as own:
        sessions_before, commits_before = counters()
        worker.start()
        try:
            wait_for_log(worker.log_path, RUNS)
            workers_sessions = other_sessions() - existing
        finally:
            worker.stop()
        wait_gone(workers_sessions)
        sessions_after, commits_after = counters()

    # Less this process's own statements in between, each a transaction (see counters()).
    commits = commits_after - commits_before - (len(own) - 3)
    return commits, sessions_after - sessions_before


def test_a_store_survives_a_database_that_dropped_its_prepared_statements(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a connection pooler handing each transaction to another server connection does:
    the statement prepared for one run's STARTED is gone when the next run starts. The store
    still lands (run plain) and the process stops preparing. In this process, on the real
    database."""
    monkeypatch.setattr(LedgerBackend, "prepare_statements", True)  # restored afterwards
    backend = ledger_backend()
    task_ids = [ping.apply_async(queue=QUEUE).id for _ in range(2)]  # PENDING; no worker here

    def store(task_id: str, result: object, state: str) -> None:
        request = SimpleNamespace(
            id=task_id, task=ping.name, args=[], kwargs={}, hostname="here@test", retries=0,
            children=[], periodic_task_name=None, delivery_info={}, ignore_result=False,
        )  # fmt: skip
        backend.store_result(task_id, result, state, request=request)

    store(task_ids[0], {"pid": 1}, "STARTED")  # prepares the STARTED statement
    # Behind psycopg's back (its own DEALLOCATE would tell it): the server forgets it.
    connection.connection.pgconn.exec_(b"DEALLOCATE ALL")
    store(task_ids[1], {"pid": 1}, "STARTED")
    assert LedgerBackend.prepare_statements is False
    for task_id in task_ids:
        store(task_id, "pong", "SUCCESS")

    runs = Run.objects.filter(task_id__in=task_ids, state=RunState.SUCCESS, attempts=1)
    assert runs.count() == 2
    results = TaskResult.objects.filter(task_id__in=task_ids, status="SUCCESS", result='"pong"')
    assert results.filter(date_started__isnull=False).count() == 2
