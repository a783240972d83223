"""On a worker, progress writes due at a progress point go to the heartbeat thread, on its own
connection: a job holding a transaction open still shows its progress while it runs, and the
final flush stores the last value in the job's thread. PostgreSQL only: SQLite has one writer
at a time, so there the job's thread writes, within its transaction (tasks_app.worker.heartbeat)."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tasks_app.models import Run, RunState
from tasks_app.worker.heartbeat import heartbeat
from tasks_app.worker.task import worker_context

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def seen_from_outside(task_id: str) -> tuple[int | None, str]:
    """The run's progress as another connection (a dashboard request) reads it."""
    seen: list[tuple[int | None, str]] = []

    def read() -> None:
        try:
            seen.append(
                Run.objects.values_list("progress_done", "progress_message").get(task_id=task_id)
            )
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(10)
    return seen[0]


def started_run() -> str:
    task_id = f"handover-{uuid4()}"
    now = timezone.now()
    Run.objects.create(
        task_id=task_id, job_name="demo.progress", state=RunState.STARTED,
        queued_at=now, started_at=now, heartbeat_at=now,
    )  # fmt: skip
    return task_id


def test_progress_inside_a_jobs_open_transaction_is_visible_while_it_runs() -> None:
    task_id = started_run()
    ctx = worker_context(task_id, "demo.progress", retries=0)
    with heartbeat.running(task_id, ctx), transaction.atomic():
        ctx.progress(5, 10, "halfway")  # the first progress point: written at once
        deadline = time.monotonic() + 10
        while seen_from_outside(task_id) != (5, "halfway") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen_from_outside(task_id) == (5, "halfway")
        ctx.progress(10, 10, "all done")
        ctx.flush()
    assert seen_from_outside(task_id) == (10, "all done")
    assert Run.objects.get(task_id=task_id).state == RunState.PROGRESS
