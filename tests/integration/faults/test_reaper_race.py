"""Reapers running at the same time judge a lost idempotent run once: it is re-queued, never
LOST as well (a final state would make the worker refuse the re-queued message, leaving the run
LOST although its job could simply run again). This happens for real when a worker comes back
from an outage and takes the backlog of beat's reap tasks at once, in parallel pool processes.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from dashboard.celery import app as celery_app
from tasks_app.models import AuditEntry, Run, RunState
from tasks_app.worker import reaper

QUEUE = "reaper-race-test"  # consumed by no worker: the re-queued message stays put
REAPERS = 4
ROUNDS = 5


def reap_in_parallel() -> list[reaper.ReapOutcome]:
    """`REAPERS` threads (each with its own database connection) reap at the same moment."""
    start = threading.Barrier(REAPERS)
    outcomes: list[reaper.ReapOutcome] = []
    errors: list[BaseException] = []

    def reap() -> None:
        try:
            start.wait()
            outcomes.append(reaper.reap(lost_after=5))
        except BaseException as error:  # reported by the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=reap) for _ in range(REAPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_a_lost_idempotent_run_is_requeued_once_and_never_also_lost(broker_url: str) -> None:
    try:
        for round_ in range(ROUNDS):
            silent = timezone.now() - timedelta(minutes=1)
            run = Run.objects.create(
                task_id=f"race-{round_}", job_name="demo.recount", params={"to": 3},
                state=RunState.STARTED, queue=QUEUE, queued_at=silent, started_at=silent,
                heartbeat_at=silent, worker="gone@host",
            )  # fmt: skip

            outcomes = reap_in_parallel()

            run.refresh_from_db()
            assert (run.state, run.requeues) == (RunState.RETRY, 1), (round_, run.error)
            assert [o.requeued for o in outcomes if o.requeued] == [[run.task_id]]
            assert not any(o.lost for o in outcomes)
            actions = AuditEntry.objects.filter(target_id=run.task_id).values_list("action")
            assert list(actions) == [("run.requeue",)]
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)  # type: ignore[attr-defined]  # Redis channel
