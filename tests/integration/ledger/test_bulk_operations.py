"""Bulk operations over everything a filter matches, carried out by the built-in job on the real
worker: the matching set fixed at the request, keyset batches, the typed confirmation, the
permissions, and an interruption between a batch's commit and its publish that the resumed
operation recovers from without acting on any run twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections
from django.test import override_settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from dashboard.celery import app as celery_app
from tasks_app.models import AuditEntry, BulkOperation, BulkState, Run, RunSource, RunState
from tasks_app.selectors import RunFilter
from tasks_app.services import Actor, ServiceError
from tasks_app.services import bulk_operations as bulk
from tasks_app.worker import bulk_operations as ledger
from tests.support.ledger import make_run
from tests.support.runs import finished, operator
from tests.support.services import wait_for

pytestmark = pytest.mark.django_db

VOID = "bulk-test-void"  # no worker consumes it: the retries' messages stay to be counted


@pytest.fixture(autouse=True)
def void_queue(broker_url: str) -> Iterator[None]:
    purge_void()
    yield
    purge_void()


def purge_void() -> None:
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete(VOID)  # type: ignore[attr-defined]  # Redis channel


def void_ids() -> list[str]:
    """The task ids of the messages waiting in the void queue."""
    with celery_app.connection_for_write() as conn:
        client: Any = conn.default_channel.client  # type: ignore[attr-defined]  # Redis channel
        raw = client.lrange(VOID, 0, -1)
    return [str(json.loads(m)["headers"]["id"]) for m in raw]


def failed_runs(count: int, job_name: str = "demo.flaky", **fields: Any) -> list[Run]:
    return [
        make_run(
            RunState.FAILURE,
            job_name=job_name,
            queue=VOID,
            finished_at=timezone.now(),
            params={"failure_rate": 0.0} if job_name == "demo.flaky" else {},
            **fields,
        )
        for _ in range(count)
    ]


def done(operation: BulkOperation, timeout: float = 90.0) -> BulkOperation:
    def current() -> BulkOperation | None:
        close_old_connections()
        fresh = BulkOperation.objects.select_related("run").get(pk=operation.pk)
        return fresh if fresh.state in (BulkState.DONE, BulkState.FAILED) else None

    result: BulkOperation = wait_for(current, timeout)
    return result


def live_retries_of(original: Run) -> list[Run]:
    return list(original.retried_by.exclude(state=RunState.REVOKED))


def test_retry_all_matching_in_batches_on_the_worker(worker: object) -> None:
    originals = failed_runs(25)
    other = failed_runs(2, job_name="demo.progress")
    make_run(RunState.SUCCESS, job_name="demo.flaky")
    operation = bulk.bulk_operation_request(
        actor=operator(),
        action="retry",
        filters=RunFilter(job_name="demo.flaky"),
        confirm_count=None,
        batch_size=10,
    )
    assert operation.expected == 25
    operation = done(operation)
    assert operation.state == BulkState.DONE, operation.error
    assert (operation.done, operation.skipped) == (25, 0)
    assert operation.run is not None
    job_run = finished(operation.run.task_id)
    assert job_run.state == RunState.SUCCESS
    assert job_run.progress_done == 25
    assert job_run.progress_total == 25
    assert Run.objects.get(pk=job_run.pk).source == RunSource.FORM
    result = json.loads(TaskResult.objects.get(task_id=job_run.task_id).result)
    assert result["batches"] == 3
    retries = {o.pk: live_retries_of(o) for o in originals}
    assert all(len(found) == 1 for found in retries.values())
    sent = Counter(void_ids())
    assert set(sent) == {found[0].task_id for found in retries.values()}
    assert set(sent.values()) == {1}
    assert not any(o.retried_by.exists() for o in other)
    # Audited once at the request, once at the end; no entry per run.
    actions = list(
        AuditEntry.objects.filter(target_id=str(operation.pk)).values_list("action", flat=True)
    )
    assert sorted(actions) == ["runs.bulk_operation", "runs.bulk_operation_done"]
    assert not AuditEntry.objects.filter(action="run.retry").exists()


def test_the_matching_set_is_fixed_at_the_request(worker: object) -> None:
    before = failed_runs(3)
    running = make_run(RunState.STARTED, job_name="demo.flaky", queue=VOID)
    operation = bulk.bulk_operation_request(
        actor=operator(),
        action="retry",
        filters=RunFilter(job_name="demo.flaky"),
        confirm_count=3,
        start=False,
    )
    # After the request: a new failure, and the running run fails. Neither is in the set.
    after = failed_runs(2)
    Run.objects.filter(pk=running.pk).update(state=RunState.FAILURE, finished_at=timezone.now())
    bulk.bulk_operation_resume(operation, actor=operator())
    operation = done(operation)
    assert (operation.expected, operation.done, operation.skipped) == (3, 3, 0)
    assert all(len(live_retries_of(o)) == 1 for o in before)
    assert not any(o.retried_by.exists() for o in [*after, running])


def test_an_interrupted_operation_resumes_and_acts_on_no_run_twice(worker: object) -> None:
    originals = failed_runs(12)
    already = failed_runs(1)[0]
    earlier = Run.objects.create(
        task_id="earlier-retry-of-one",
        job_name="demo.flaky",
        state=RunState.SUCCESS,
        queued_at=timezone.now(),
        retry_of=already,
    )
    operation = bulk.bulk_operation_request(
        actor=operator(),
        action="retry",
        filters=RunFilter(job_name="demo.flaky", states=("FAILURE",)),
        confirm_count=13,
        start=False,
    )
    # The job's first run: a batch of 5 committed and sent; the next batch committed, and only
    # 2 of its 5 messages sent before the worker "dies" (what a crash between the batch's
    # commit and the end of its publish leaves behind).
    plan = bulk.bulk_operation_prepare(operation.pk, batch_size=5)
    assert plan is not None
    bulk.bulk_operation_publish(bulk.bulk_operation_batch(plan))
    second = bulk.bulk_operation_batch(plan)
    assert len(second.unsent) == 5
    ledger.publish(second.unsent[:2])
    operation.refresh_from_db()
    assert (operation.state, operation.cursor) == (BulkState.RUNNING, originals[9].pk)
    assert bulk.is_interrupted(operation)

    bulk.bulk_operation_resume(operation, actor=operator(), batch_size=5)
    operation = done(operation)
    assert operation.state == BulkState.DONE, operation.error
    # 12 retried once each; the one retried before the request is skipped.
    assert (operation.done, operation.skipped) == (12, 1)
    assert list(already.retried_by.all()) == [earlier]
    sent = Counter(void_ids())
    for original in originals:
        live = live_retries_of(original)
        assert len(live) == 1, original.pk  # exactly one retry that can run
        assert live[0].state == RunState.PENDING
        assert sent[live[0].task_id] == 1  # and it reached the broker, once
    # The second batch's retries were superseded: final, so a worker that gets the two sent
    # messages skips them; fresh retries replaced all five.
    superseded = Run.objects.filter(retry_of__in=originals, state=RunState.REVOKED)
    assert superseded.count() == 5
    assert all("Superseded" in run.error for run in superseded)
    assert sum(sent[run.task_id] for run in superseded) == 2

    # Running the job again for a finished operation does nothing.
    count = Run.objects.filter(retry_of__in=originals).count()
    assert bulk.bulk_operation_prepare(operation.pk) is None
    assert Run.objects.filter(retry_of__in=originals).count() == count


def test_cancel_all_matching_queued_runs(worker: object) -> None:
    queued = [make_run(RunState.PENDING, job_name="demo.flaky", queue=VOID) for _ in range(4)]
    running = make_run(RunState.PROGRESS, job_name="demo.flaky", queue=VOID)
    make_run(RunState.SUCCESS, job_name="demo.flaky")
    operation = bulk.bulk_operation_request(
        actor=operator(), action="cancel", filters=RunFilter(job_name="demo.flaky"),
        confirm_count=None, batch_size=3,
    )  # fmt: skip
    operation = done(operation)
    assert (operation.state, operation.done, operation.skipped) == (BulkState.DONE, 5, 0)
    assert {r.state for r in Run.objects.filter(pk__in=[r.pk for r in queued])} == {
        RunState.REVOKED
    }
    # A running run gets the stored request: it stops at its next progress point.
    running.refresh_from_db()
    assert running.state == RunState.PROGRESS
    assert running.cancel_requested_at is not None
    assert running.cancel_requested_by == "operator"


@override_settings(TASKDECK_BULK_LIMIT=5)
def test_above_the_cap_the_count_must_be_typed(broker: str) -> None:
    failed_runs(7)
    filters = RunFilter(job_name="demo.flaky")
    preview = bulk.bulk_operation_preview(operator(), "retry", filters)
    assert (preview.count, preview.confirm) == (7, True)
    for wrong in (None, 6, 70):
        with pytest.raises(bulk.ConfirmationRequired) as refused:
            bulk.bulk_operation_request(
                actor=operator(), action="retry", filters=filters, confirm_count=wrong, start=False
            )
        assert "type 7" in refused.value.errors["confirm_count"]
    assert not BulkOperation.objects.exists()  # nothing recorded, nothing audited
    assert not AuditEntry.objects.filter(action="runs.bulk_operation").exists()
    operation = bulk.bulk_operation_request(
        actor=operator(), action="retry", filters=filters, confirm_count=7, start=False
    )
    assert operation.expected == 7
    with pytest.raises(bulk.NothingToDo):
        bulk.bulk_operation_request(
            actor=operator(),
            action="retry",
            filters=RunFilter(job_name="nothing.here"),
            confirm_count=None,
            start=False,
        )


def _user(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    return User.objects.get(pk=user.pk)  # a fresh permission cache


def test_permissions_are_checked_for_the_action_and_each_run(worker: object) -> None:
    with pytest.raises(PermissionDenied):
        bulk.bulk_operation_request(
            actor=Actor(user=_user("viewer")), action="retry", filters=RunFilter(),
            confirm_count=None, start=False,
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        bulk.bulk_operation_request(
            actor=Actor(user=_user("retrier-only", "retry_run")), action="cancel",
            filters=RunFilter(), confirm_count=None, start=False,
        )  # fmt: skip
    plain = failed_runs(2)
    # taskdeck.cleanup asks for run_cleanup besides retry_run: its runs are skipped.
    restricted = failed_runs(2, job_name="taskdeck.cleanup")
    actor = Actor(user=_user("retrier", "retry_run"))
    operation = bulk.bulk_operation_request(
        actor=actor, action="retry", filters=RunFilter(states=("FAILURE",)), confirm_count=4
    )
    operation = done(operation)
    assert (operation.done, operation.skipped) == (2, 2)
    assert all(len(live_retries_of(o)) == 1 for o in plain)
    assert not any(o.retried_by.exists() for o in restricted)
    done_entry = AuditEntry.objects.get(action="runs.bulk_operation_done")
    assert done_entry.details["skipped_reasons"] == {"needs a permission the requester lacks": 2}


def test_resuming_while_its_job_is_already_queued_is_refused_not_a_500(broker: str) -> None:
    """The job is unique per operation: a double-clicked Resume, or the job's failed run retried
    by hand before Resume, finds it queued already."""
    failed_runs(3)
    operation = bulk.bulk_operation_request(
        actor=operator(), action="retry", filters=RunFilter(job_name="demo.flaky"),
        confirm_count=None,
    )  # fmt: skip
    queued_job = operation.run
    assert queued_job is not None
    assert queued_job.state == RunState.PENDING  # no worker here
    # The page thinks it interrupted: its recorded run failed (the queued one is a retry of it).
    operation.run = make_run(RunState.FAILURE, job_name=bulk.JOB_NAME)
    operation.save(update_fields=["run"])

    with pytest.raises(ServiceError, match="already queued or running"):
        bulk.bulk_operation_resume(operation, actor=operator())

    assert Run.objects.filter(job_name=bulk.JOB_NAME).count() == 2  # nothing more queued
    assert not AuditEntry.objects.filter(action="runs.bulk_operation_resume").exists()
